"""movie_queue: the Movie Sync application's QueueManager, crash-safe.

A drop-in for the JSON-file QueueManager: the same methods, defaults and
return types, the same queue files in ``config_dir`` (``~/.movie_sync`` by
default), over an append-only, checksummed journal written in Rust. Every
change is durable when its call returns; a movie taken by
``get_next_pending`` and never completed or failed goes back to pending
when the store is next opened.

    from movie_queue import QueueManager
"""

from ._native import (
    GRACE_PERIOD_DEFAULT,
    ClosedError,
    CorruptionError,
    LockedError,
    PoisonedError,
    QueueError,
    QueueManager,
)

__all__ = [
    "GRACE_PERIOD_DEFAULT",
    "ClosedError",
    "CorruptionError",
    "LockedError",
    "PoisonedError",
    "QueueError",
    "QueueManager",
]
