"""The README's Python usage example (the seed's, unchanged) runs against
this module as printed, in a fresh home directory."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_usage_example_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert any("from movie_queue import QueueManager" in block for block in blocks[:1])
    example = next(block for block in blocks if "qm = QueueManager()" in block)
    env = dict(os.environ, HOME=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", example], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "Pending: 1, Failed: 0\n"
    assert (tmp_path / ".movie_sync" / "queue_completed.json").is_file()
