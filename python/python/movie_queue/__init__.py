"""movie_queue: the Movie Sync application's QueueManager, crash-safe.

A drop-in for the JSON-file QueueManager: the same methods, defaults and
return types, the same queue files in ``config_dir`` (``~/.movie_sync`` by
default), over an append-only, checksummed journal written in Rust. Every
change is durable when its call returns; a movie taken by
``get_next_pending`` and never completed or failed goes back to pending
when the store is next opened.

A QueueManager belongs to the process that opened it: in a child made by
fork() every call on the copy it inherited raises ForkedError, and the
child never keeps the store locked. Fork before opening, or open the store
in the child once the parent has closed it.

    from movie_queue import QueueManager
"""

from ._native import (
    GRACE_PERIOD_DEFAULT,
    ClosedError,
    CorruptionError,
    ForkedError,
    LockedError,
    PoisonedError,
    QueueError,
    QueueManager,
    UnanswerableError,
)

__all__ = [
    "GRACE_PERIOD_DEFAULT",
    "ClosedError",
    "CorruptionError",
    "ForkedError",
    "LockedError",
    "PoisonedError",
    "QueueError",
    "QueueManager",
    "UnanswerableError",
]
