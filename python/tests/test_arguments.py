"""Arguments that cannot be what the caller meant are refused, a refusal
is an exception a program can act on, and the rule for the fields the
queue writes itself is kept as the README states.

* A bare str (or bytes) where a collection of ids is expected is a
  TypeError: mark_movies_as_removed("603") would otherwise read the ids
  "6", "0", "3" and move every other movie to removed.
* TypeError or ValueError is decided from the Python value (a declared
  field of the wrong type is a TypeError), never from a message's words.
* A movie carrying the queue's own fields (as the entries the application
  gets back and hands to add_to_failed / add_to_completed do) is taken:
  the queue's values win, and the fields it stamps take the stamped value
  in their place.
* A state_at record the store cannot answer is UnanswerableError (a
  QueueError and a ValueError) carrying the reason and the range it can
  answer.
"""

import pytest

from conftest import movie
from movie_queue import QueueError, QueueManager, UnanswerableError


@pytest.mark.parametrize("bare", ["603", b"603", bytearray(b"603"), ""])
def test_a_bare_str_or_bytes_is_no_collection_of_ids(qm, bare):
    for movie_id in ("603", "6", "0"):
        qm.add_to_pending(movie(movie_id))
    with pytest.raises(TypeError) as refused:
        qm.mark_movies_as_removed(bare)
    assert "current_watchlist_ids" in str(refused.value)
    assert qm.get_removed_count() == 0, "nothing moved"
    assert qm.mark_movies_as_removed(["603"]) == 2, "a list of one id is the way"


def test_every_collection_of_str_ids_is_one(qm):
    for movie_id in ("1", "2", "3", "4"):
        qm.add_to_pending(movie(movie_id))
    assert qm.mark_movies_as_removed(("1", "2", "3")) == 1
    assert qm.mark_movies_as_removed({"1": "a dict's keys", "2": None}) == 1
    assert qm.mark_movies_as_removed(iter(["1"])) == 1
    for bad in (5, None, [b"1"], [1]):
        with pytest.raises(TypeError):
            qm.mark_movies_as_removed(bad)


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("title", 5, TypeError),
        ("title", ["x"], TypeError),
        ("slug", 1.5, TypeError),
        ("imdb_id", {"a": 1}, TypeError),
        ("year", 1999.0, TypeError),
        ("year", 1999.5, TypeError),
        ("year", True, TypeError),
        ("year", [1999], TypeError),
        ("id", "", ValueError),
        ("id", 603, TypeError),
    ],
)
def test_a_declared_field_of_the_wrong_type_is_a_type_error(qm, field, value, error):
    bad = movie(1, **{field: value})
    with pytest.raises(error) as refused:
        qm.add_to_pending(bad)
    assert not isinstance(refused.value, QueueError)
    assert qm.get_pending_count() == 0


def test_declared_fields_of_the_right_types_are_taken(qm):
    assert qm.add_to_pending({"id": "1", "title": None, "year": 1999, "slug": "s", "imdb_id": None})
    assert qm.add_to_pending({"id": "2", "year": "1999"})
    assert qm.pending_queue[0] == {"id": "1", "title": None, "year": 1999, "slug": "s", "imdb_id": None,
                                   "queued_at": qm.pending_queue[0]["queued_at"], "status": "pending"}


QUEUE_FIELDS = {"retry_count": 7, "last_error": "forged", "retry_after": 1.0, "failed_at": 2.0,
                "completed_at": 3.0, "removed_at": 4.0}


def test_the_queues_own_fields_in_a_movie_given_are_ignored(qm):
    given = movie(1, status="completed", queued_at=5, rating=8, **QUEUE_FIELDS)
    assert qm.add_to_pending(given) is True
    pending = qm.pending_queue[0]
    assert not set(QUEUE_FIELDS) & set(pending), "the queue keeps its own: none yet"
    assert pending["status"] == "pending" and pending["queued_at"] != 5, "stamped in place"
    assert list(pending) == ["id", "title", "year", "status", "queued_at", "rating"]

    # The seed's loop: the entry it got back goes to add_to_failed, then
    # (after a retry) to add_to_completed, queue fields and all.
    taken = qm.get_next_pending()
    taken["retry_count"] = 7
    assert qm.add_to_failed(taken, "boom", 1.0) is True
    failed = qm.failed_queue[0]
    assert failed["retry_count"] == 1, "the queue's count goes on, not the one given"
    assert failed["status"] == "failed" and failed["last_error"] == "boom"
    assert qm.move_failed_to_pending(failed) is True
    retried = qm.get_next_pending()
    assert retried["retry_count"] == 1 and retried["retry_attempt"] == 1
    retried["completed_at"] = 3.0
    assert qm.add_to_completed(retried) is True
    completed = qm.completed_queue[0]
    assert completed["status"] == "completed"
    assert completed["completed_at"] != 3.0, "stamped by the queue, not given"


def test_a_record_the_store_cannot_answer_is_unanswerable_with_its_range(qm):
    for movie_id in range(1, 4):
        qm.add_to_pending(movie(movie_id))
    with pytest.raises(UnanswerableError) as refused:
        qm.state_at(10)
    error = refused.value
    assert isinstance(error, QueueError) and isinstance(error, ValueError)
    assert (error.target, error.reason) == (10, "past_end")
    assert (error.first_record, error.last_record) == (0, 3)
    assert (error.from_time, error.to_time) == (None, None)
    assert "past the end of the journal, whose last record is 3" in str(error)
    assert qm.state_at(3)["pending"][2]["id"] == "3"


def test_a_record_behind_damage_is_unanswerable_naming_what_it_can_answer(store_dir):
    with QueueManager(store_dir) as qm:
        for movie_id in range(1, 11):
            qm.add_to_pending(movie(movie_id))
        (store_dir / "queue_snapshot.json").unlink(missing_ok=True)
        segment = sorted((store_dir / "journal").glob("*.seg"))[-1]
        data = bytearray(segment.read_bytes())
        # The middle of its records, not of the zeros laid down after them.
        written = len(data.rstrip(b"\0"))
        data[written // 2] ^= 0x20
        segment.write_bytes(bytes(data))
        with pytest.raises(UnanswerableError) as refused:
            qm.state_at(10)
        error = refused.value
        assert error.reason == "damaged" and error.first_record == 0
        assert 0 < error.last_record < 10
        assert qm.state_at(error.last_record) is not None, "the range it names is answered"


def nested(levels, leaf=1):
    """A value of `levels` nested lists around `leaf`."""
    for _ in range(levels):
        leaf = [leaf]
    return leaf


def test_a_movie_nests_at_most_64_levels_and_reads_back_after_a_reopen(tmp_path):
    qm = QueueManager(tmp_path)
    deepest = {"id": "1", "title": "Deep", "year": "2020", "deep": nested(63)}
    assert qm.add_to_pending(deepest)
    for too_deep in (
        {"id": "2", "deep": nested(64)},
        {"id": "3", "deep": {"k": nested(63)}},
        {"id": "4", "deep": nested(100_000)},
    ):
        with pytest.raises(ValueError) as refused:
            qm.add_to_pending(too_deep)
        assert "limit of 64" in str(refused.value)
    assert qm.get_pending_count() == 1, "nothing refused was written"
    qm.close()
    reopened = QueueManager(tmp_path)
    entry = reopened.pending_queue[0]
    assert entry["deep"] == nested(63)
    reopened.close()
