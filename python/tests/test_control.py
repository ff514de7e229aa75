"""The Python package as the holder and the `movie-queue` tool as the
operator: while the application's QueueManager is open, a command such as
`movie-queue reset ID` goes through its control socket, and the change is
in the application's own queue at once (its next `get_next_pending()`
sees it). `$MOVIE_QUEUE_BIN` names the tool (the harness builds it)."""

import json
import os
import stat
import subprocess

import pytest

from movie_queue import QueueManager
from conftest import movie


def tool():
    binary = os.environ.get("MOVIE_QUEUE_BIN")
    assert binary and os.path.isfile(binary), "MOVIE_QUEUE_BIN names the movie-queue binary: %r" % binary
    return binary


def mq(store_dir, *args):
    env = {key: value for key, value in os.environ.items() if key != "MOVIE_QUEUE_DIR"}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [tool(), "--dir", str(store_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def test_the_tool_acts_on_a_store_the_application_holds(qm, store_dir):
    socket = store_dir / "control.sock"
    assert stat.S_ISSOCK(os.lstat(socket).st_mode)
    assert stat.S_IMODE(os.lstat(socket).st_mode) == 0o600
    qm.add_to_pending(movie(603, title="The Matrix"))
    qm.add_to_pending(movie(604))
    taken = qm.get_next_pending()
    qm.add_to_failed(taken, "timeout", retry_after=4e9)

    run = mq(store_dir, "reset", "603")
    assert run.returncode == 0, run
    assert run.stdout.startswith("reset 603  The Matrix (2020): back to pending"), run.stdout
    # The application's own queue saw it at once: 604 is first, then 603.
    assert [entry["id"] for entry in qm.pending_queue] == ["604", "603"]
    assert qm.get_next_pending()["id"] == "604"
    assert qm.get_next_pending()["id"] == "603"

    stats = json.loads(mq(store_dir, "stats", "--json").stdout)
    assert stats["in_flight"] == 2 and stats["failed"] == 0, stats
    refused = mq(store_dir, "reset", "nosuch")
    assert refused.returncode == 1 and "no movie with id" in refused.stderr, refused
    audit = [event["type"] for event in qm.events(since=0)]
    assert "reset" in audit, audit


def test_with_the_socket_turned_off_the_tool_says_so(store_dir):
    with QueueManager(str(store_dir), control_socket=False) as quiet:
        quiet.add_to_pending(movie(1))
        assert not (store_dir / "control.sock").exists()
        run = mq(store_dir, "complete", "1")
        assert run.returncode == 1, run
        assert "does not answer" in run.stderr and "hint:" in run.stderr, run.stderr
        assert quiet.get_statistics()["completed"] == 0
    assert not (store_dir / "control.sock").exists()
