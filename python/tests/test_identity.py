"""The store's identity: 32 hex digits the first writer gives the journal,
the same across reopens, another for another store."""

import re

from movie_queue import QueueManager


def test_the_store_id_is_the_journals_and_stays(tmp_path):
    with QueueManager(tmp_path / "a") as qm:
        first = qm.store_id
    assert re.fullmatch(r"[0-9a-f]{32}", first), first
    assert (tmp_path / "a" / "journal" / "identity").read_text() == first + "\n"
    with QueueManager(tmp_path / "a") as qm:
        assert qm.store_id == first
    with QueueManager(tmp_path / "b") as other:
        assert other.store_id != first
