"""The README's Python blocks run as printed: the import that swaps this
module in, and the application's usage example (unchanged) against it, in
a fresh home directory."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_import_swaps_this_module_in():
    swap = blocks()[0]
    assert swap.startswith("# from queue_manager import QueueManager\n"), swap
    names = {}
    exec(swap, names)
    assert names["QueueManager"].__module__.startswith("movie_queue")


def test_the_readme_usage_example_runs(tmp_path):
    blocks_ = blocks()
    example = next(block for block in blocks_ if "qm = QueueManager()" in block)
    env = dict(os.environ, HOME=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", example], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "Pending: 1, Failed: 0\n"
    assert (tmp_path / ".movie_sync" / "queue_completed.json").is_file()
