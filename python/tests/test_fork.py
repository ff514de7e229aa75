"""A store opened before a fork: the child's copy of the QueueManager
raises ForkedError on every call, at once (nothing blocks, nothing panics,
not even at the child's interpreter exit), and the child never keeps the
store locked: the parent goes on writing, and once it closes, the store
opens again while the child still lives. With os.fork() and with
multiprocessing's fork and spawn start methods.

How: os.fork() runs in a script of its own (python -c), so the child ends
by a normal interpreter exit, which drops the inherited manager; its
output is checked for a panic or a traceback. The multiprocessing children
wait on an Event while the parent closes and reopens the store.
"""

import multiprocessing
import subprocess
import sys
import textwrap

import pytest

from conftest import movie
from movie_queue import ForkedError, QueueError, QueueManager

FORK_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from movie_queue import ForkedError, LockedError, QueueManager

    store = sys.argv[1]
    qm = QueueManager(store)
    qm.add_to_pending({"id": "1", "title": "One", "year": "2020"})
    pid = os.fork()
    if pid == 0:
        failures = []
        started = time.monotonic()
        calls = {
            "add_to_pending": lambda: qm.add_to_pending({"id": "2"}),
            "get_next_pending": qm.get_next_pending,
            "add_to_failed": lambda: qm.add_to_failed({"id": "1"}, "boom"),
            "mark_movies_as_removed": lambda: qm.mark_movies_as_removed([]),
            "get_pending_count": qm.get_pending_count,
            "get_statistics": qm.get_statistics,
            "is_completed": lambda: qm.is_completed("1"),
            "pending_queue": lambda: qm.pending_queue,
            "history": lambda: qm.history("1"),
            "events": qm.events,
            "state_at": lambda: qm.state_at(1),
            "last_seq": qm.last_seq,
            "flush": qm.flush,
            "close": qm.close,
        }
        for name, call in calls.items():
            try:
                call()
                failures.append(name + " did not raise")
            except ForkedError as error:
                if "fork" not in str(error) or str(os.getppid()) not in str(error):
                    failures.append(name + ": " + str(error))
            except BaseException as error:
                failures.append(name + ": " + repr(error))
        if time.monotonic() - started > 5:
            failures.append("the calls were not at once")
        try:
            QueueManager(store)
            failures.append("the child opened the store its parent holds")
        except LockedError:
            pass
        print("CHILD", "OK" if not failures else failures, flush=True)
        sys.exit(0)  # a normal interpreter exit: the inherited manager is dropped now
    _, status = os.waitpid(pid, 0)
    print("CHILD STATUS", status, flush=True)
    assert qm.add_to_pending({"id": "3", "title": "Three", "year": "2020"}) is True
    qm.close()
    with QueueManager(store) as again:
        print("PENDING", again.get_pending_count(), flush=True)
    """
)


def test_an_os_fork_child_fails_every_call_at_once_and_exits_cleanly(store_dir):
    run = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, str(store_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "CHILD OK" in run.stdout, output
    assert "CHILD STATUS 0" in run.stdout, output
    assert "PENDING 2" in run.stdout, "the parent went on writing: " + output
    for sign in ("panicked", "PanicException", "Traceback", "RUST_BACKTRACE"):
        assert sign not in output, output


def test_forked_error_is_a_queue_error():
    assert issubclass(ForkedError, QueueError)


def _live_until(ready, stop):
    """A child that lives until told to stop."""
    ready.set()
    stop.wait(60)


# The manager a fork-method child inherits (set by the test before it starts).
_INHERITED = None


def _use_inherited(results):
    """A fork-method child: every call on the inherited manager fails."""
    for name in ("get_pending_count", "get_next_pending", "flush"):
        try:
            getattr(_INHERITED, name)()
            results.put(name + " did not raise")
        except ForkedError:
            results.put("forked")
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            results.put(name + ": " + repr(error))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_multiprocessing_child_never_keeps_the_store_locked(store_dir, method):
    context = multiprocessing.get_context(method)
    qm = QueueManager(str(store_dir))
    qm.add_to_pending(movie(1))
    ready, stop = context.Event(), context.Event()
    child = context.Process(target=_live_until, args=(ready, stop))
    child.start()
    try:
        assert ready.wait(60), "the child started"
        assert qm.add_to_pending(movie(2)) is True, "the parent writes while the child lives"
        qm.close()
        again = QueueManager(str(store_dir))  # no LockedError while the child lives
        assert child.is_alive()
        assert again.get_pending_count() == 2
        again.close()
    finally:
        stop.set()
        child.join(60)
    assert child.exitcode == 0


def test_a_fork_method_child_fails_every_call_on_the_manager_it_inherited(store_dir):
    global _INHERITED
    context = multiprocessing.get_context("fork")
    _INHERITED = QueueManager(str(store_dir))
    try:
        _INHERITED.add_to_pending(movie(1))
        results = context.Queue()
        child = context.Process(target=_use_inherited, args=(results,))
        child.start()
        child.join(60)
        assert child.exitcode == 0
        assert [results.get(timeout=10) for _ in range(3)] == ["forked"] * 3
        assert _INHERITED.get_pending_count() == 1, "the parent's manager is untouched"
        assert _INHERITED.add_to_pending(movie(2)) is True
    finally:
        _INHERITED.close()
        _INHERITED = None
