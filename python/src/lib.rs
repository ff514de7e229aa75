//! `movie_queue._native`: the Movie Sync application's `QueueManager` as a
//! Python class over the crash-safe `movie_queue` library.
//!
//! Every call runs with the GIL released (`Python::detach`) while it takes
//! the store's lock and waits for its fsync, so the application's threads
//! share group commit; Python values are converted before and after.
//!
//! A manager belongs to the process that opened it: in a child made by
//! `fork()` (`os.fork()`, `multiprocessing`'s fork start method) every
//! call raises `ForkedError` before it takes any lock (a lock another
//! thread held at the fork is never released in the child).
#![forbid(unsafe_code)]

mod convert;
mod errors;

use std::path::PathBuf;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use movie_queue::{EventRecord, GRACE_PERIOD_DEFAULT, Place, QueueState, Seq};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::{Map, Value};

type Store = movie_queue::QueueManager;

/// The queue manager: the seed's `QueueManager`, crash-safe.
#[pyclass(module = "movie_queue", name = "QueueManager", frozen)]
struct QueueManager {
    /// `None` once closed.
    inner: RwLock<Option<Store>>,
    dir: PathBuf,
    max_retries: u32,
    /// The process that opened the store.
    owner_pid: u32,
}

impl QueueManager {
    /// `ForkedError` in a child that inherited this manager through
    /// `fork()`, checked before any lock is taken.
    fn check_owner(&self) -> PyResult<()> {
        if std::process::id() == self.owner_pid {
            Ok(())
        } else {
            Err(errors::forked(&self.dir, self.owner_pid))
        }
    }

    /// Runs `work` on the open store with the GIL released.
    fn with<T: Send>(&self, py: Python<'_>, work: impl FnOnce(&Store) -> movie_queue::Result<T> + Send) -> PyResult<T> {
        self.check_owner()?;
        py.detach(|| {
            let guard = self.inner.read().unwrap_or_else(PoisonError::into_inner);
            match guard.as_ref() {
                // The library checks too (a process id can be reused).
                Some(store) => store.check_owner().and_then(|()| work(store)),
                None => Err(movie_queue::Error::Closed),
            }
        })
        .map_err(|error| match error {
            movie_queue::Error::Closed => errors::closed(),
            error => errors::to_python(error),
        })
    }

    /// One queue's entries as a list of dicts.
    fn queue<'py>(&self, py: Python<'py>, place: Place) -> PyResult<Bound<'py, PyList>> {
        let entries = self.with(py, |store| Ok(store.list(place)))?;
        convert::entries(py, &entries)
    }
}

#[pymethods]
impl QueueManager {
    /// Opens (creating if missing) the store in `config_dir`;
    /// `None`: `~/.movie_sync`, the application's place. Movies a crashed
    /// process left in flight go back to the front of pending. While it is
    /// open, it serves the store's control socket (`control.sock`), through
    /// which `movie-queue` commands act on the store; `control_socket=False`
    /// turns it off.
    #[new]
    #[pyo3(signature = (config_dir=None, *, control_socket=true))]
    fn new(py: Python<'_>, config_dir: Option<PathBuf>, control_socket: bool) -> PyResult<Self> {
        let dir = match config_dir {
            Some(dir) => dir,
            None => movie_queue::default_dir().map_err(errors::to_python)?,
        };
        let store = py
            .detach(|| Store::options().control_socket(control_socket).open(&dir))
            .map_err(errors::to_python)?;
        let max_retries = store.max_retries();
        Ok(QueueManager {
            inner: RwLock::new(Some(store)),
            dir,
            max_retries,
            owner_pid: std::process::id(),
        })
    }

    // ----- the seed's API ---------------------------------------------------

    /// Adds a movie to the back of pending; False: a duplicate (pending,
    /// failed, completed or removed).
    fn add_to_pending(&self, py: Python<'_>, movie: &Bound<'_, PyAny>) -> PyResult<bool> {
        let movie = convert::movie(movie)?;
        self.with(py, move |store| store.add_to_pending(movie))
    }

    /// Takes the next pending movie (FIFO); None when pending is empty.
    fn get_next_pending<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let taken = self.with(py, Store::take_next_pending)?;
        taken.map(|entry| convert::entry(py, &entry)).transpose()
    }

    /// Records a failure; False: the movie is completed or removed.
    #[pyo3(signature = (movie, error, retry_after=None))]
    fn add_to_failed(
        &self,
        py: Python<'_>,
        movie: &Bound<'_, PyAny>,
        error: &Bound<'_, PyAny>,
        retry_after: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let movie = convert::movie(movie)?;
        let error = error.str()?.to_cow()?.into_owned();
        let retry_after = retry_after
            .filter(|value| !value.is_none())
            .map(|value| convert::seconds(value, "retry_after"))
            .transpose()?;
        self.with(py, move |store| store.add_to_failed(movie, error, retry_after))
    }

    /// Failed movies with `now >= retry_after` and `retry_count < max_retries`.
    #[pyo3(signature = (max_retries=5))]
    fn get_movies_ready_for_retry<'py>(&self, py: Python<'py>, max_retries: u32) -> PyResult<Bound<'py, PyList>> {
        let entries = self.with(py, |store| Ok(store.get_movies_ready_for_retry(max_retries)))?;
        convert::entries(py, &entries)
    }

    /// Moves a failed movie (a dict or an id) to the back of pending,
    /// keeping its retry count; False: it is not failed.
    fn move_failed_to_pending(&self, py: Python<'_>, movie: &Bound<'_, PyAny>) -> PyResult<bool> {
        let id = convert::movie_id(movie)?;
        self.with(py, move |store| store.move_failed_to_pending(id))
    }

    /// Failed movies with `retry_count >= max_retries`.
    #[pyo3(signature = (max_retries=5))]
    fn get_permanent_failures<'py>(&self, py: Python<'py>, max_retries: u32) -> PyResult<Bound<'py, PyList>> {
        let entries = self.with(py, |store| Ok(store.get_permanent_failures(max_retries)))?;
        convert::entries(py, &entries)
    }

    /// A failed movie back to pending with a fresh retry count; False: it is not failed.
    fn reset_failed_movie(&self, py: Python<'_>, movie_id: &Bound<'_, PyAny>) -> PyResult<bool> {
        let id = convert::movie_id(movie_id)?;
        self.with(py, move |store| store.reset_failed_movie(id))
    }

    /// Marks a movie downloaded; False: already completed, or removed.
    fn add_to_completed(&self, py: Python<'_>, movie: &Bound<'_, PyAny>) -> PyResult<bool> {
        let movie = convert::movie(movie)?;
        self.with(py, move |store| store.add_to_completed(movie))
    }

    fn is_completed(&self, py: Python<'_>, movie_id: &Bound<'_, PyAny>) -> PyResult<bool> {
        let id = convert::movie_id(movie_id)?;
        self.with(py, move |store| Ok(store.is_completed(id)))
    }

    fn get_pending_count(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |store| Ok(store.get_pending_count()))
    }

    fn get_in_flight_count(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |store| Ok(store.get_in_flight_count()))
    }

    fn get_failed_count(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |store| Ok(store.get_failed_count()))
    }

    fn get_completed_count(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |store| Ok(store.get_completed_count()))
    }

    fn get_removed_count(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |store| Ok(store.get_removed_count()))
    }

    /// `{"pending", "failed", "completed", "permanent_failures", "in_flight", "removed"}`.
    fn get_statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.with(py, |store| Ok(store.get_statistics()))?;
        let dict = PyDict::new(py);
        dict.set_item("pending", stats.pending)?;
        dict.set_item("failed", stats.failed)?;
        dict.set_item("completed", stats.completed)?;
        dict.set_item("permanent_failures", stats.permanent_failures)?;
        dict.set_item("in_flight", stats.in_flight)?;
        dict.set_item("removed", stats.removed)?;
        Ok(dict)
    }

    /// Removes completed entries older than `days`; returns how many.
    #[pyo3(signature = (days=30))]
    fn cleanup_old_completed(&self, py: Python<'_>, days: u32) -> PyResult<usize> {
        self.with(py, move |store| store.cleanup_old_completed(days))
    }

    // ----- the removed queue -------------------------------------------------

    /// Moves a movie to removed (from wherever it is), stamping `removed_at`
    /// and `status`; False: it is already removed.
    fn add_to_removed(&self, py: Python<'_>, movie: &Bound<'_, PyAny>) -> PyResult<bool> {
        let movie = convert::movie(movie)?;
        self.with(py, move |store| store.add_to_removed(movie))
    }

    /// Every pending or completed movie whose id is not in
    /// `current_watchlist_ids` moves to removed; returns how many.
    fn mark_movies_as_removed(&self, py: Python<'_>, current_watchlist_ids: &Bound<'_, PyAny>) -> PyResult<usize> {
        let ids = convert::ids(current_watchlist_ids, "current_watchlist_ids")?;
        self.with(py, move |store| store.mark_movies_as_removed(&ids))
    }

    /// Removed movies with `now >= removed_at + grace_period` (seconds).
    #[pyo3(signature = (grace_period=None))]
    fn get_movies_ready_for_deletion<'py>(
        &self,
        py: Python<'py>,
        grace_period: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let grace = match grace_period {
            None => GRACE_PERIOD_DEFAULT,
            Some(value) => Duration::try_from_secs_f64(convert::seconds(value, "grace_period")?)
                .map_err(|error| PyValueError::new_err(format!("grace_period: {error}")))?,
        };
        let entries = self.with(py, move |store| Ok(store.get_movies_ready_for_deletion(grace)))?;
        convert::entries(py, &entries)
    }

    /// Drops a removed movie (after its files were deleted); False: not removed.
    fn remove_from_removed_queue(&self, py: Python<'_>, movie_id: &Bound<'_, PyAny>) -> PyResult<bool> {
        let id = convert::movie_id(movie_id)?;
        self.with(py, move |store| store.remove_from_removed_queue(id))
    }

    /// A removed movie back to the end of pending; False: not removed.
    fn restore_removed_movie(&self, py: Python<'_>, movie_id: &Bound<'_, PyAny>) -> PyResult<bool> {
        let id = convert::movie_id(movie_id)?;
        self.with(py, move |store| store.restore_removed_movie(id))
    }

    // ----- beyond the seed ---------------------------------------------------

    /// Every movie in flight back to the front of pending; returns how many.
    fn requeue_in_flight(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, Store::requeue_in_flight)
    }

    /// Every journaled event of one movie, oldest first.
    fn history<'py>(&self, py: Python<'py>, movie_id: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let id = convert::movie_id(movie_id)?;
        let records = self.with(py, move |store| store.history(id))?;
        events_list(py, &records)
    }

    /// The events from record `since` on, that record included, in order
    /// (`since=0`: every event the journal still holds): what `movie-queue
    /// log --since` and the event stream mean by it. A consumer that handled
    /// record `seq` resumes with `since=seq + 1`.
    #[pyo3(signature = (since=0))]
    fn events<'py>(&self, py: Python<'py>, since: u64) -> PyResult<Bound<'py, PyList>> {
        let from = Seq(since);
        let records: Vec<EventRecord> = self.with(py, move |store| store.events_from(from)?.collect())?;
        events_list(py, &records)
    }

    /// The queues as of record `seq`: a dict of lists (`pending`,
    /// `in_flight`, `failed`, `completed`, `removed`).
    fn state_at<'py>(&self, py: Python<'py>, seq: u64) -> PyResult<Bound<'py, PyDict>> {
        let state = self.with(py, move |store| store.state_at(Seq(seq)).map(|replayed| replayed.state))?;
        state_dict(py, &state)
    }

    /// The sequence number of the last event.
    fn last_seq(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |store| Ok(store.last_seq().0))
    }

    /// Waits until every change so far is durable (they already are after
    /// each call returns; kept for explicitness).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, Store::flush)
    }

    /// Writes the documented files (`queue_*.json`) and their manifest now,
    /// covering every change so far; returns the last record they cover.
    /// For a program that reads the files itself: `close()` writes them only
    /// when a snapshot is due.
    fn snapshot(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |store| store.snapshot().map(|seq| seq.0))
    }

    /// Flushes, writes the documented files when a snapshot is due (the
    /// store has none, or the policy's count or age is reached; `snapshot()`
    /// writes them at once) and releases the store. Later
    /// calls raise `ClosedError`; closing twice does nothing. In a forked
    /// child it raises `ForkedError` and does nothing to the store.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.check_owner()?;
        let store = py.detach(|| self.inner.write().unwrap_or_else(PoisonError::into_inner).take());
        match store {
            Some(store) => py.detach(|| store.close()).map_err(errors::to_python),
            None => Ok(()),
        }
    }

    /// Is the manager closed? (A forked child's copy is not: every call
    /// on it raises `ForkedError`.)
    #[getter]
    fn closed(&self) -> bool {
        if self.check_owner().is_err() {
            return false;
        }
        self.inner.read().unwrap_or_else(PoisonError::into_inner).is_none()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("QueueManager({:?})", self.dir.display().to_string())
    }

    // ----- the attributes the application reads ------------------------------

    /// The store's directory.
    #[getter]
    fn config_dir(&self) -> PathBuf {
        self.dir.clone()
    }

    /// The store's identity, 32 hex digits: 128 random bits its journal got
    /// from the first writer that opened it (`None` when it has none or it
    /// could not be read).
    #[getter]
    fn store_id(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.with(py, |store| Ok(store.store_id().map(|id| id.to_string())))
    }

    /// The failure count at which `get_statistics` counts a permanent failure.
    #[getter]
    fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The pending movies as of now (a copy; changing it changes nothing).
    #[getter]
    fn pending_queue<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.queue(py, Place::Pending)
    }

    /// The movies taken and not yet completed or failed (a copy).
    #[getter]
    fn in_flight_queue<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.queue(py, Place::InFlight)
    }

    /// The failed movies as of now (a copy).
    #[getter]
    fn failed_queue<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.queue(py, Place::Failed)
    }

    /// The completed movies as of now (a copy).
    #[getter]
    fn completed_queue<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.queue(py, Place::Completed)
    }

    /// The removed movies as of now (a copy).
    #[getter]
    fn removed_queue<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.queue(py, Place::Removed)
    }

    #[getter]
    fn pending_file(&self) -> PathBuf {
        self.dir.join("queue_pending.json")
    }

    #[getter]
    fn failed_file(&self) -> PathBuf {
        self.dir.join("queue_failed.json")
    }

    #[getter]
    fn completed_file(&self) -> PathBuf {
        self.dir.join("queue_completed.json")
    }

    #[getter]
    fn removed_file(&self) -> PathBuf {
        self.dir.join("queue_removed.json")
    }
}

/// An event as one flat dict: `{"seq", "ts", "v", "type", ...its fields}`,
/// the shape of `movie-queue log --json`.
fn event_value(record: &EventRecord) -> Value {
    let mut map = Map::new();
    map.insert("seq".into(), Value::from(record.seq.0));
    map.insert("ts".into(), Value::from(record.ts));
    map.insert("v".into(), Value::from(record.version));
    map.insert("type".into(), Value::from(record.event.kind()));
    if let Ok(Value::Object(outer)) = serde_json::to_value(&record.event) {
        for (_, inner) in outer {
            if let Value::Object(fields) = inner {
                map.extend(fields);
            }
        }
    }
    Value::Object(map)
}

fn events_list<'py>(py: Python<'py>, records: &[EventRecord]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for record in records {
        list.append(convert::to_python(py, &event_value(record))?)?;
    }
    Ok(list)
}

fn state_dict<'py>(py: Python<'py>, state: &QueueState) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (name, place) in [
        ("pending", Place::Pending),
        ("in_flight", Place::InFlight),
        ("failed", Place::Failed),
        ("completed", Place::Completed),
        ("removed", Place::Removed),
    ] {
        let entries: Vec<_> = state.entries(place).collect();
        dict.set_item(name, convert::entries(py, &entries)?)?;
    }
    Ok(dict)
}

/// The native module: `QueueManager` and the exceptions.
#[pymodule]
#[pyo3(name = "_native")]
fn movie_queue_native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add_class::<QueueManager>()?;
    module.add("QueueError", py.get_type::<errors::QueueError>())?;
    module.add("CorruptionError", py.get_type::<errors::CorruptionError>())?;
    module.add("LockedError", py.get_type::<errors::LockedError>())?;
    module.add("PoisonedError", py.get_type::<errors::PoisonedError>())?;
    module.add("ClosedError", py.get_type::<errors::ClosedError>())?;
    module.add("ForkedError", py.get_type::<errors::ForkedError>())?;
    module.add("UnanswerableError", errors::unanswerable_type(py)?)?;
    module.add("GRACE_PERIOD_DEFAULT", GRACE_PERIOD_DEFAULT.as_secs())?;
    Ok(())
}
