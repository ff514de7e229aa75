"""Shared fixtures: a fresh store directory and a QueueManager over it."""

import pytest

from movie_queue import QueueManager


@pytest.fixture
def store_dir(tmp_path):
    return tmp_path / "movie_sync"


@pytest.fixture
def qm(store_dir):
    manager = QueueManager(str(store_dir))
    yield manager
    manager.close()


def movie(movie_id, **fields):
    """A movie as the application builds it."""
    return {"id": str(movie_id), "title": f"Movie {movie_id}", "year": "2020", **fields}
