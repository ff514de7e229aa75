"""The seed's QueueManager API with the application's semantics: every
method, its defaults and return types, duplicates, FIFO, retry counts
through pending, permanent failures, reset, cleanup by days, statistics,
the attributes the application's tests read, persistence across instances,
and the fields the application stamps (and their types)."""

import json
import time
from pathlib import Path

import pytest

from movie_queue import QueueManager
from conftest import movie


def test_config_dir_and_the_queue_files(qm, store_dir):
    assert qm.config_dir == Path(store_dir)
    assert isinstance(qm.config_dir, Path)
    assert qm.pending_file == store_dir / "queue_pending.json"
    assert qm.failed_file == store_dir / "queue_failed.json"
    assert qm.completed_file == store_dir / "queue_completed.json"
    assert qm.removed_file == store_dir / "queue_removed.json"
    assert (qm.pending_queue, qm.failed_queue, qm.completed_queue, qm.removed_queue) == ([], [], [], [])


def test_default_config_dir_is_home_movie_sync(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with QueueManager() as default:
        assert default.config_dir == tmp_path / ".movie_sync"
        assert default.config_dir.is_dir()


def test_add_prevents_duplicates_and_completed_movies(qm):
    assert qm.add_to_pending(movie(1)) is True
    assert qm.add_to_pending(movie(1)) is False
    assert qm.add_to_pending({"id": "1", "title": "Other"}) is False
    assert qm.add_to_pending(movie(2)) is True
    qm.add_to_completed(movie(3))
    assert qm.add_to_pending(movie(3)) is False, "completed movies cannot be re-added"
    assert qm.get_pending_count() == 2
    assert qm.pending_queue[0]["id"] == "1"


def test_get_next_pending_is_fifo_and_none_when_empty(qm):
    assert qm.get_next_pending() is None
    for movie_id in range(1, 6):
        qm.add_to_pending(movie(movie_id))
    taken = [qm.get_next_pending()["id"] for _ in range(5)]
    assert taken == ["1", "2", "3", "4", "5"]
    assert qm.get_next_pending() is None
    assert qm.get_statistics()["in_flight"] == 5


def test_every_key_comes_back_as_it_went_in(qm):
    given = {"id": "603", "title": "The Matrix", "year": 1999, "slug": "the-matrix",
             "imdb_id": "tt0133093", "rating": 8.7, "tags": ["sci-fi", None, True],
             "source": {"list": "watchlist", "rank": 3}, "poster": None}
    qm.add_to_pending(dict(given))
    back = qm.get_next_pending()
    for key, value in given.items():
        assert back[key] == value and type(back[key]) is type(value), key
    assert isinstance(back["year"], int), "an int year stays an int"
    assert list(back)[: len(given)] == list(given)


def test_failures_count_up_through_pending_and_keep_the_first_failed_at(qm):
    qm.add_to_pending(movie(1))
    m = qm.get_next_pending()
    assert qm.add_to_failed(m, "Not found on tracker", time.time() - 10) is True
    first = qm.failed_queue[0]
    assert (first["retry_count"], first["last_error"]) == (1, "Not found on tracker")
    assert isinstance(first["failed_at"], float)
    for expected in (2, 3):
        ready = qm.get_movies_ready_for_retry(max_retries=5)
        assert [r["id"] for r in ready] == ["1"]
        assert qm.move_failed_to_pending(ready[0]) is True
        assert qm.pending_queue[0]["retry_count"] == expected - 1
        assert qm.pending_queue[0]["retry_attempt"] == expected - 1
        m = qm.get_next_pending()
        assert m["retry_count"] == expected - 1
        qm.add_to_failed(m, f"error {expected}", time.time() - 1)
        entry = qm.failed_queue[0]
        assert entry["retry_count"] == expected
        assert entry["failed_at"] == first["failed_at"], "failed_at is set on the first failure only"
        assert entry["last_error"] == f"error {expected}"


def test_retry_waits_for_retry_after_and_default_retry_after_is_now(qm):
    qm.add_to_failed(movie(1), "later", time.time() + 3600)
    qm.add_to_failed(movie(2), "now")
    qm.add_to_failed(movie(3), "int time", int(time.time()) - 5)
    ready = [m["id"] for m in qm.get_movies_ready_for_retry()]
    assert ready == ["3", "2"]
    assert isinstance(qm.failed_queue[2]["retry_after"], int)
    assert qm.move_failed_to_pending("2") is True
    assert qm.move_failed_to_pending("2") is False


def test_permanent_failures_and_reset(qm):
    for _ in range(5):
        qm.add_to_failed(movie(1), "boom", time.time() - 1)
    qm.add_to_failed(movie(2), "boom", time.time() - 1)
    assert [m["id"] for m in qm.get_permanent_failures()] == ["1"]
    assert [m["id"] for m in qm.get_permanent_failures(max_retries=1)] == ["1", "2"]
    assert [m["id"] for m in qm.get_movies_ready_for_retry()] == ["2"]
    assert qm.get_statistics()["permanent_failures"] == 1
    assert qm.reset_failed_movie("1") is True
    assert qm.reset_failed_movie("1") is False
    entry = qm.pending_queue[0]
    assert entry["id"] == "1" and entry["status"] == "pending"
    for field in ("retry_count", "last_error", "retry_after", "failed_at", "last_failed_at"):
        assert field not in entry, field


def test_completed_removes_from_failed_and_is_completed(qm):
    qm.add_to_failed(movie(1), "boom")
    assert qm.add_to_completed(movie(1)) is True
    assert qm.add_to_completed(movie(1)) is False
    assert qm.is_completed("1") and not qm.is_completed("2")
    assert qm.get_failed_count() == 0 and qm.get_completed_count() == 1
    assert qm.add_to_failed(movie(1), "late") is False, "a completed movie stays completed"


def test_statistics(qm):
    for movie_id in range(1, 6):
        qm.add_to_pending(movie(movie_id))
    qm.get_next_pending()
    qm.add_to_completed(qm.get_next_pending())
    for _ in range(5):
        qm.add_to_failed(movie(3), "e")
    assert qm.get_statistics() == {"pending": 2, "failed": 1, "completed": 1, "permanent_failures": 1,
                                   "in_flight": 1, "removed": 0}


def test_cleanup_old_completed_by_days(qm, store_dir):
    qm.add_to_completed(movie(1))
    assert qm.cleanup_old_completed() == 0, "30 days by default"
    assert qm.cleanup_old_completed(days=1) == 0
    time.sleep(1.1)
    assert qm.cleanup_old_completed(days=0) == 1
    assert qm.completed_queue == []


def test_stamped_fields_and_their_types(qm):
    before = int(time.time())
    qm.add_to_pending(movie(1))
    pending = qm.pending_queue[0]
    assert pending["status"] == "pending" and isinstance(pending["queued_at"], int)
    assert before <= pending["queued_at"] <= time.time()
    m = qm.get_next_pending()
    qm.add_to_failed(m, "boom", time.time() - 1)
    failed = qm.failed_queue[0]
    assert failed["status"] == "failed"
    assert isinstance(failed["last_failed_at"], int) and isinstance(failed["failed_at"], float)
    assert isinstance(failed["retry_after"], float) and isinstance(failed["retry_count"], int)
    qm.move_failed_to_pending(failed)
    assert qm.pending_queue[0]["retry_attempt"] == 1
    qm.add_to_completed(qm.get_next_pending())
    done = qm.completed_queue[0]
    assert done["status"] == "completed" and isinstance(done["completed_at"], int)
    assert done["queued_at"] == pending["queued_at"], "the movie's own fields are kept"


def test_persistence_across_instances_and_the_files_the_application_reads(store_dir):
    qm = QueueManager(str(store_dir))
    qm.add_to_pending(movie(1, year=1999))
    qm.add_to_pending(movie(2))
    qm.add_to_failed(movie(3), "boom", 1760813282.5)
    qm.add_to_completed(movie(4))
    qm.close()
    files = {name: json.loads((store_dir / f"queue_{name}.json").read_text())
             for name in ("pending", "failed", "completed", "removed")}
    assert [m["id"] for m in files["pending"]] == ["1", "2"]
    assert files["pending"][0]["year"] == 1999
    assert files["failed"][0]["retry_after"] == 1760813282.5
    assert files["removed"] == []
    again = QueueManager(str(store_dir))
    assert again.pending_queue == files["pending"]
    assert again.failed_queue == files["failed"]
    assert again.completed_queue == files["completed"]
    again.close()


def test_bad_arguments_are_type_and_value_errors(qm):
    for bad, error in [
        ([("id", "1")], TypeError), ("1", TypeError), ({"title": "no id"}, ValueError),
        ({"id": 1}, TypeError), ({"id": ""}, ValueError), ({"id": "1", "x": float("nan")}, ValueError),
        ({"id": "1", "x": {2: "int key"}}, TypeError), ({"id": "1", "x": object()}, TypeError),
        ({"id": "1", "title": 5}, TypeError), ({"id": "1", "x": 2**70}, ValueError),
    ]:
        with pytest.raises(error):
            qm.add_to_pending(bad)
    with pytest.raises(ValueError):
        qm.add_to_failed(movie(1), "e", float("nan"))
    with pytest.raises(TypeError):
        qm.add_to_failed(movie(1), "e", "tomorrow")
    with pytest.raises(TypeError):
        qm.move_failed_to_pending(5)
    assert qm.get_statistics()["pending"] == 0, "nothing was written"
