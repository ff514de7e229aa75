//! The exceptions: `QueueError` and its subclasses for what the store
//! reports; `TypeError` / `ValueError` for bad arguments.

use std::path::Path;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

create_exception!(
    movie_queue,
    QueueError,
    PyException,
    "Base class of every error the queue store reports."
);
create_exception!(
    movie_queue,
    CorruptionError,
    QueueError,
    "The journal or a file is damaged; `path` and `offset` say where (`movie-queue repair` fixes it)."
);
create_exception!(
    movie_queue,
    LockedError,
    QueueError,
    "Another process (or another QueueManager) has the store open for writing."
);
create_exception!(
    movie_queue,
    PoisonedError,
    QueueError,
    "A write or fsync of the journal failed; nothing more is written until the store is reopened."
);
create_exception!(movie_queue, ClosedError, QueueError, "The QueueManager was closed.");
create_exception!(
    movie_queue,
    ForkedError,
    QueueError,
    "This process is a child made by fork() of the process that opened the QueueManager: the copy it \
     inherited cannot be used (its writer stays in the parent). Open the store again in the child after \
     the parent closes it, or let one process own the store."
);

/// A library error as a Python exception.
#[expect(clippy::needless_pass_by_value, reason = "a `map_err` adapter")]
pub fn to_python(error: movie_queue::Error) -> PyErr {
    use movie_queue::Error;
    let message = error.to_string();
    match &error {
        Error::InvalidMovie(_) | Error::InvalidArgument(_) | Error::OutOfRange { .. } | Error::Unanswerable { .. } => {
            PyValueError::new_err(message)
        }
        Error::Locked { .. } => LockedError::new_err(message),
        Error::Poisoned { .. } => PoisonedError::new_err(message),
        Error::Closed => ClosedError::new_err(message),
        Error::Forked { .. } => ForkedError::new_err(message),
        _ if error.is_corruption() => {
            let place = error.place().map(|(path, offset)| (path.to_path_buf(), offset));
            Python::attach(|py| {
                let exception = CorruptionError::new_err(message);
                if let Some((path, offset)) = place {
                    let value = exception.value(py);
                    let _ = value.setattr("path", path);
                    let _ = value.setattr("offset", offset);
                }
                exception
            })
        }
        _ => QueueError::new_err(message),
    }
}

/// The error of a call on a closed manager.
pub fn closed() -> PyErr {
    ClosedError::new_err("the QueueManager is closed")
}

/// The error of a call on a manager this process inherited through
/// `fork()` from process `owner_pid`, which opened the store in `dir`.
pub fn forked(dir: &Path, owner_pid: u32) -> PyErr {
    to_python(movie_queue::Error::Forked {
        dir: dir.to_path_buf(),
        owner_pid,
    })
}
