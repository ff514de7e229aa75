"""The removed queue (grace period, restore, forget), in-flight safety
across a reopen, the audit queries (history, events, state_at), the
context manager, and the exceptions for a closed, locked or corrupt store."""

import json
import time

import pytest

from movie_queue import (GRACE_PERIOD_DEFAULT, ClosedError, CorruptionError, LockedError, QueueError,
                         QueueManager)
from conftest import movie


def test_add_to_removed_moves_a_movie_from_anywhere_once(qm):
    qm.add_to_pending(movie(1))
    qm.add_to_completed(movie(2))
    assert qm.add_to_removed(qm.pending_queue[0]) is True
    assert qm.add_to_removed(movie(1)) is False
    assert qm.add_to_removed(movie(2)) is True
    assert qm.add_to_removed(movie(3)) is True, "a movie the queue never saw"
    assert [m["id"] for m in qm.removed_queue] == ["1", "2", "3"]
    done = qm.removed_queue[1]
    assert done["status"] == "removed" and isinstance(done["removed_at"], int)
    assert isinstance(done["completed_at"], int), "what the queue knew is kept"
    assert qm.get_removed_count() == 3 and qm.get_statistics()["removed"] == 3
    assert qm.add_to_pending(movie(1)) is False, "removed is not forgotten"
    assert qm.add_to_completed(movie(1)) is False


def test_mark_movies_as_removed_keeps_the_watchlist(qm):
    for movie_id in range(1, 7):
        qm.add_to_pending(movie(movie_id))
    qm.add_to_completed(qm.get_next_pending())  # 1 completed
    qm.get_next_pending()  # 2 in flight
    qm.add_to_failed(movie(3), "boom")  # 3 failed
    assert qm.mark_movies_as_removed(["4", "1"]) == 2  # 5, 6 pending leave
    assert [m["id"] for m in qm.removed_queue] == ["5", "6"]
    assert qm.mark_movies_as_removed({"4"}) == 1  # 1, completed, leaves; 2 and 3 stay
    assert [m["id"] for m in qm.removed_queue] == ["5", "6", "1"]
    assert qm.mark_movies_as_removed(m["id"] for m in qm.pending_queue) == 0
    with pytest.raises(TypeError):
        qm.mark_movies_as_removed([4])


def test_grace_period_restore_and_forget(qm):
    qm.add_to_pending(movie(1))
    qm.add_to_pending(movie(2))
    qm.mark_movies_as_removed([])
    assert GRACE_PERIOD_DEFAULT == 604800
    assert qm.get_movies_ready_for_deletion() == []
    assert qm.get_movies_ready_for_deletion(grace_period=3600) == []
    time.sleep(1.1)
    assert [m["id"] for m in qm.get_movies_ready_for_deletion(grace_period=0)] == ["1", "2"]
    assert [m["id"] for m in qm.get_movies_ready_for_deletion(0.5)] == ["1", "2"]
    with pytest.raises(ValueError):
        qm.get_movies_ready_for_deletion(-1)
    assert qm.restore_removed_movie("1") is True
    assert qm.restore_removed_movie("1") is False
    restored = qm.pending_queue[0]
    assert restored["status"] == "pending" and "removed_at" not in restored
    assert qm.remove_from_removed_queue("2") is True
    assert qm.remove_from_removed_queue("2") is False
    assert qm.removed_queue == []
    assert qm.add_to_pending(movie(2)) is True, "a forgotten id can come back"


def test_a_movie_in_flight_returns_to_pending_when_the_store_is_reopened(store_dir):
    first = QueueManager(store_dir)
    for movie_id in (1, 2, 3):
        first.add_to_pending(movie(movie_id))
    assert first.get_next_pending()["id"] == "1"
    first.close()  # the process "crashed" between taking and reporting
    with QueueManager(store_dir) as second:
        assert [m["id"] for m in second.pending_queue] == ["1", "2", "3"]
        assert second.get_statistics()["in_flight"] == 0


def test_history_events_and_state_at(qm):
    qm.add_to_pending(movie(1))
    qm.add_to_pending(movie(2))
    qm.add_to_failed(qm.get_next_pending(), "boom", 1.0)
    history = qm.history("1")
    assert [e["type"] for e in history] == ["added", "taken", "failed"]
    assert [e["seq"] for e in history] == [1, 3, 4]
    assert history[2]["error"] == "boom" and history[2]["v"] == 2
    assert isinstance(history[0]["ts"], float)
    assert [e["seq"] for e in qm.events()] == [1, 2, 3, 4]
    # `since` includes its record, as `movie-queue log --since` does.
    assert [e["seq"] for e in qm.events(since=2)] == [2, 3, 4]
    assert [e["seq"] for e in qm.events(since=4)] == [4]
    assert qm.events(since=5) == []
    assert qm.last_seq() == 4
    then = qm.state_at(2)
    assert [m["id"] for m in then["pending"]] == ["1", "2"]
    assert then["failed"] == [] and set(then) == {"pending", "in_flight", "failed", "completed", "removed"}
    assert qm.state_at(4)["failed"][0]["id"] == "1"
    qm.flush()


def test_closed_and_locked(store_dir):
    with QueueManager(store_dir) as qm:
        with pytest.raises(LockedError) as locked:
            QueueManager(store_dir)
        assert isinstance(locked.value, QueueError)
        assert not qm.closed
    assert qm.closed
    with pytest.raises(ClosedError):
        qm.add_to_pending(movie(1))
    with pytest.raises(ClosedError):
        _ = qm.pending_queue
    qm.close()  # twice: nothing


def test_a_damaged_journal_is_a_corruption_error_naming_file_and_offset(store_dir):
    with QueueManager(store_dir) as qm:
        for movie_id in range(1, 4):
            qm.add_to_pending(movie(movie_id))
    for name in ("queue_snapshot.json",):
        (store_dir / name).unlink()
    segment = sorted((store_dir / "journal").glob("*.seg"))[0]
    data = bytearray(segment.read_bytes())
    offset = 32 + 16 + 5  # inside the first record's payload
    data[offset] ^= 0x20
    segment.write_bytes(bytes(data))
    with pytest.raises(CorruptionError) as damaged:
        QueueManager(store_dir)
    assert damaged.value.path == segment
    assert damaged.value.offset == 32
    assert str(segment) in str(damaged.value)


def test_close_leaves_the_files_until_a_snapshot_is_due_and_snapshot_writes_them(store_dir):
    with QueueManager(str(store_dir)) as qm:
        qm.add_to_pending(movie(1))
    pending = store_dir / "queue_pending.json"
    assert [m["id"] for m in json.loads(pending.read_text())] == ["1"], "the first close: no snapshot yet"
    with QueueManager(str(store_dir)) as qm:
        qm.add_to_pending(movie(2))
    assert [m["id"] for m in json.loads(pending.read_text())] == ["1"], "one change is not worth the files"
    with QueueManager(str(store_dir)) as qm:
        assert [m["id"] for m in qm.pending_queue] == ["1", "2"], "the journal has it"
        last = qm.snapshot()
        assert last == qm.last_seq()
    assert [m["id"] for m in json.loads(pending.read_text())] == ["1", "2"]
