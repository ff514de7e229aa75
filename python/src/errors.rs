//! The exceptions: `QueueError` and its subclasses for what the store
//! reports; `TypeError` / `ValueError` for bad arguments. The exception
//! is chosen from the library error's variant, never from its words.

use std::path::Path;

use movie_queue::{Answerable, Error, Refusal, Until};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

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

/// `UnanswerableError(QueueError, ValueError)`, made once: PyO3 makes an
/// exception of one base, and a refusal was a `ValueError` before it had
/// a class of its own.
static UNANSWERABLE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// The docstring of `UnanswerableError`.
const UNANSWERABLE_DOC: &str = "A past state the store cannot rebuild exactly (state_at): `target` is the \
     record asked for, `reason` why (\"compacted\", \"damaged\", \"past_end\", \"future\", \"no_event_time\"), \
     and `first_record`/`last_record` (or `from_time`/`to_time`) what it can answer (None: unknown or unbounded).";

/// The `UnanswerableError` class.
///
/// # Errors
/// What creating the class raised (only when Python is out of memory).
pub fn unanswerable_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    let class = UNANSWERABLE.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let bases = PyTuple::new(py, [py.get_type::<QueueError>(), py.get_type::<PyValueError>()])?;
        let namespace = PyDict::new(py);
        namespace.set_item("__module__", "movie_queue")?;
        namespace.set_item("__doc__", UNANSWERABLE_DOC)?;
        let class = py.get_type::<PyType>().call1(("UnanswerableError", bases, namespace))?;
        Ok(class.cast_into::<PyType>()?.unbind())
    })?;
    Ok(class.bind(py))
}

/// A library error as a Python exception.
#[expect(clippy::needless_pass_by_value, reason = "a `map_err` adapter")]
pub fn to_python(error: Error) -> PyErr {
    let message = error.to_string();
    match &error {
        Error::InvalidMovie(_) | Error::InvalidArgument(_) | Error::OutOfRange { .. } => PyValueError::new_err(message),
        Error::Unanswerable {
            target,
            reason,
            answerable,
        } => Python::attach(|py| unanswerable(py, message, target, reason, answerable.as_ref())),
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

/// `UnanswerableError` with the refusal's data as attributes.
fn unanswerable(
    py: Python<'_>,
    message: String,
    target: &Until,
    reason: &Refusal,
    answerable: Option<&Answerable>,
) -> PyErr {
    let class = match unanswerable_type(py) {
        Ok(class) => class.clone(),
        Err(error) => return error,
    };
    let exception = PyErr::from_type(class, message);
    let value = exception.value(py);
    let reason = match reason {
        Refusal::Compacted { .. } => "compacted",
        Refusal::Damaged { .. } => "damaged",
        Refusal::PastEnd => "past_end",
        Refusal::Future { .. } => "future",
        Refusal::NoEventTime => "no_event_time",
        _ => "other",
    };
    let (first_record, last_record) = match answerable {
        Some(Answerable::Records { first, last }) => (Some(first.0), last.map(|last| last.0)),
        _ => (None, None),
    };
    let (from_time, to_time) = match answerable {
        Some(Answerable::Times { from, to }) => (*from, *to),
        _ => (None, None),
    };
    let _ = match target {
        Until::Seq(seq) => value.setattr("target", seq.0),
        Until::Time(time) => value.setattr("target", *time),
    };
    let _ = value.setattr("reason", reason);
    let _ = value.setattr("first_record", first_record);
    let _ = value.setattr("last_record", last_record);
    let _ = value.setattr("from_time", from_time);
    let _ = value.setattr("to_time", to_time);
    exception
}

/// The error of a call on a closed manager.
pub fn closed() -> PyErr {
    ClosedError::new_err("the QueueManager is closed")
}

/// The error of a call on a manager this process inherited through
/// `fork()` from process `owner_pid`, which opened the store in `dir`.
pub fn forked(dir: &Path, owner_pid: u32) -> PyErr {
    to_python(Error::Forked {
        dir: dir.to_path_buf(),
        owner_pid,
    })
}
