//! `QueueManager`: the seed's Queue Manager API over the projection and the
//! journal writer.
//!
//! Every mutation follows the same path (`commit`): under the state's
//! write lock, decide the event from the projection (a rejected operation
//! writes nothing), hand it to the writer, apply it to the projection;
//! then, outside the lock, wait for the fsync (in `Immediate` mode).
//! Every query answers from the projection under a read lock.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::audit::{self, Until};
use crate::error::{Error, Result};
use crate::event::{Event, QueueEntry, Seq, encode_payload};
use crate::movie::Movie;
use crate::options::Options;
use crate::projection::{Place, QueueState};
use crate::recovery::TailPolicy;
use crate::snapshot::{self, SnapshotData};
use crate::storage::Storage;
use crate::store::{self, JOURNAL_DIR};
use crate::writer::{Durability, Flusher, JournalEnd, JournalWriter, Ticket};

/// The queue counts, as `get_statistics()` returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Statistics {
    /// Movies waiting.
    pub pending: usize,
    /// Movies taken by `get_next_pending` and not yet reported.
    pub in_flight: usize,
    /// Movies that failed (permanent failures included).
    pub failed: usize,
    /// Movies done.
    pub completed: usize,
    /// Failed movies with `retry_count >= max_retries`.
    pub permanent_failures: usize,
}

/// Something that names a movie: a [`Movie`], a [`QueueEntry`] or an id.
pub trait MovieId {
    /// The movie's id.
    fn movie_id(&self) -> &str;
}

impl MovieId for Movie {
    fn movie_id(&self) -> &str {
        self.id()
    }
}

impl MovieId for QueueEntry {
    fn movie_id(&self) -> &str {
        self.id()
    }
}

impl MovieId for str {
    fn movie_id(&self) -> &str {
        self
    }
}

impl MovieId for String {
    fn movie_id(&self) -> &str {
        self
    }
}

impl<T: MovieId + ?Sized> MovieId for &T {
    fn movie_id(&self) -> &str {
        (**self).movie_id()
    }
}

struct Live {
    state: QueueState,
    next_seq: Seq,
    writer: Option<JournalWriter>,
    events_since_snapshot: u64,
    last_snapshot_at: Instant,
}

/// The queue manager: thread-safe (`Send + Sync`; share it as
/// `Arc<QueueManager>`), crash-safe, every change journaled.
pub struct QueueManager {
    dir: PathBuf,
    options: Options,
    live: RwLock<Live>,
    snapshot_thread: Mutex<Option<JoinHandle<()>>>,
    _lock: Option<File>,
}

impl std::fmt::Debug for QueueManager {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("QueueManager")
            .field("dir", &self.dir)
            .field("read_only", &self.options.read_only)
            .finish_non_exhaustive()
    }
}

/// The current time, Unix seconds.
#[must_use]
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// The seed's place for the queue files: `~/.movie_sync/`.
///
/// # Errors
/// [`Error::InvalidArgument`] when no home directory is known.
pub fn default_dir() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| PathBuf::from(home).join(".movie_sync"))
        .ok_or_else(|| Error::InvalidArgument("HOME is not set; pass a directory".into()))
}

fn check_time(name: &str, time: f64) -> Result<f64> {
    if time.is_finite() {
        Ok(time)
    } else {
        Err(Error::InvalidArgument(format!(
            "{name} {time} is not a finite Unix time"
        )))
    }
}

impl QueueManager {
    /// Opens the store at the seed's place, `~/.movie_sync/`.
    ///
    /// # Errors
    /// See [`QueueManager::open`].
    pub fn open_default() -> Result<Self> {
        Self::open(default_dir()?)
    }

    /// Opens (creating if missing) the store in `dir` with default options.
    ///
    /// # Errors
    /// [`Error::Locked`] if another writer holds it; corruption naming file
    /// and offset; [`Error::Io`] naming the path.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::options().open(dir)
    }

    /// A builder for everything configurable.
    #[must_use]
    pub fn options() -> Options {
        Options::default()
    }

    /// Opens `dir` read-only: no lock, no writes; sees a consistent prefix
    /// of a journal another process may be appending to.
    ///
    /// # Errors
    /// As [`QueueManager::open`], except [`Error::Locked`].
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Self> {
        Self::options().read_only(true).open(dir)
    }

    pub(crate) fn open_with(dir: &Path, options: Options) -> Result<Self> {
        let storage = options.storage.clone();
        let lock = if options.read_only {
            store::require_directory(dir)?;
            None
        } else {
            storage
                .create_dir_all(dir)
                .map_err(|error| Error::io("create directory", dir, error))?;
            Some(store::lock(dir)?)
        };
        let policy = if options.read_only {
            TailPolicy::Stop
        } else {
            TailPolicy::Truncate
        };
        let recovered = store::recover(storage.as_ref(), dir, policy)?;
        let writer = if options.read_only {
            None
        } else {
            let last_segment = recovered
                .report
                .segments
                .last()
                .map(|segment| (segment.path.clone(), segment.first_seq, segment.valid_len));
            let end = JournalEnd {
                next_seq: recovered.last_seq.next(),
                last_segment,
            };
            Some(JournalWriter::start(
                storage,
                &dir.join(JOURNAL_DIR),
                end,
                options.writer,
            )?)
        };
        let manager = QueueManager {
            dir: dir.to_path_buf(),
            live: RwLock::new(Live {
                state: recovered.state,
                next_seq: recovered.last_seq.next(),
                writer,
                events_since_snapshot: recovered.uncovered,
                last_snapshot_at: Instant::now(),
            }),
            options,
            snapshot_thread: Mutex::new(None),
            _lock: lock,
        };
        manager.after_open(recovered.legacy)?;
        Ok(manager)
    }

    fn after_open(&self, legacy: Option<SnapshotData>) -> Result<()> {
        if let Some(data) = legacy {
            tracing::info!(dir = %self.dir.display(), "importing the legacy queue files as the first event");
            let event = store::legacy_import(data);
            if let Some(ticket) = self.commit(|_| Ok(Some(event)))? {
                ticket.wait()?;
            }
        }
        if self.options.requeue_in_flight_on_open && !self.options.read_only {
            self.requeue_in_flight()?;
        }
        Ok(())
    }

    /// The store's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn read(&self) -> RwLockReadGuard<'_, Live> {
        self.live.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Live> {
        self.live.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The single path of every mutation: `decide` looks at the state and
    /// returns the event to journal (or `None`: rejected, nothing written).
    /// Returns the ticket to wait on in `Immediate` mode.
    fn commit(&self, decide: impl FnOnce(&QueueState) -> Result<Option<Event>>) -> Result<Option<Ticket>> {
        let mut live = self.write();
        let live = &mut *live;
        let writer = live.writer.as_ref().ok_or_else(|| self.not_writable())?;
        writer.check()?;
        let Some(event) = decide(&live.state)? else {
            return Ok(None);
        };
        live.state
            .check(&event)
            .map_err(|error| Error::InvalidArgument(error.0))?;
        let ts = now();
        let payload = encode_payload(ts, &event)?;
        let seq = live.next_seq;
        let ticket = writer.append(seq, payload)?;
        live.state.apply_checked(ts, &event);
        live.next_seq = seq.next();
        live.events_since_snapshot += 1;
        if self.snapshot_due(live) {
            self.start_background_snapshot(live);
        }
        Ok(Some(ticket))
    }

    /// Commits and, in `Immediate` mode, waits for durability. Returns
    /// whether an event was written.
    fn commit_and_wait(&self, decide: impl FnOnce(&QueueState) -> Result<Option<Event>>) -> Result<bool> {
        match self.commit(decide)? {
            None => Ok(false),
            Some(ticket) => {
                if self.options.writer.durability == Durability::Immediate {
                    ticket.wait()?;
                }
                Ok(true)
            }
        }
    }

    fn not_writable(&self) -> Error {
        if self.options.read_only {
            Error::ReadOnly { dir: self.dir.clone() }
        } else {
            Error::Closed
        }
    }

    // ----- the seed's API -------------------------------------------------

    /// Adds a movie to the back of pending. `Ok(false)`: a movie with this
    /// id is already pending, in flight, failed or completed.
    ///
    /// # Errors
    /// [`Error::InvalidMovie`] (empty id); [`Error::EventTooLarge`];
    /// [`Error::Poisoned`] / [`Error::Io`] if it could not be made durable.
    pub fn add_to_pending(&self, movie: Movie) -> Result<bool> {
        movie.validate()?;
        self.commit_and_wait(|state| Ok(state.place(movie.id()).is_none().then(|| Event::Added { movie })))
    }

    /// Adds many movies in one batch (one lock, one fsync); returns how
    /// many were added (duplicates are skipped, also within `movies`).
    ///
    /// # Errors
    /// As [`QueueManager::add_to_pending`]; movies before a failing one stay added.
    pub fn add_many_to_pending(&self, movies: impl IntoIterator<Item = Movie>) -> Result<usize> {
        let mut last = None;
        let mut added = 0;
        for movie in movies {
            movie.validate()?;
            if let Some(ticket) =
                self.commit(|state| Ok(state.place(movie.id()).is_none().then(|| Event::Added { movie })))?
            {
                last = Some(ticket);
                added += 1;
            }
        }
        if let (Some(ticket), Durability::Immediate) = (last, self.options.writer.durability) {
            ticket.wait()?;
        }
        Ok(added)
    }

    /// Takes the movie at the front of pending (FIFO); it is now in flight
    /// until completed, failed or requeued. `Ok(None)`: pending is empty.
    ///
    /// # Errors
    /// [`Error::Poisoned`] / [`Error::Io`] if the take could not be made durable.
    pub fn get_next_pending(&self) -> Result<Option<Movie>> {
        let mut taken = None;
        self.commit_and_wait(|state| {
            Ok(state.front_pending().map(|entry| {
                taken = Some(entry.movie.clone());
                Event::Taken {
                    id: entry.id().to_owned(),
                }
            }))
        })?;
        Ok(taken)
    }

    /// Records a failure: `retry_count` + 1, `last_error`, `retry_after`
    /// (`None`: now), `failed_at` on the first failure only. Takes the movie
    /// out of pending or in flight; a movie already failed is updated in
    /// place. `Ok(false)`: the movie is completed (nothing changes).
    ///
    /// # Errors
    /// [`Error::InvalidMovie`], [`Error::InvalidArgument`] (non-finite
    /// `retry_after`), [`Error::Poisoned`] / [`Error::Io`].
    pub fn add_to_failed(&self, movie: Movie, error: impl Into<String>, retry_after: Option<f64>) -> Result<bool> {
        movie.validate()?;
        let retry_after = check_time("retry_after", retry_after.unwrap_or_else(now))?;
        let error = error.into();
        self.commit_and_wait(|state| {
            Ok(
                (state.place(movie.id()) != Some(Place::Completed)).then(|| Event::Failed {
                    movie,
                    error,
                    retry_after,
                }),
            )
        })
    }

    /// As [`QueueManager::add_to_failed`], with `retry_after` from the retry
    /// policy (default: 1 h doubling per failure). Returns the `retry_after`
    /// chosen, or `None` if the movie is completed.
    ///
    /// # Errors
    /// As [`QueueManager::add_to_failed`].
    pub fn fail_with_backoff(&self, movie: Movie, error: impl Into<String>) -> Result<Option<f64>> {
        movie.validate()?;
        let error = error.into();
        let policy = self.options.retry_policy;
        let mut chosen = None;
        self.commit_and_wait(|state| {
            let retry_count = match state.get(movie.id()) {
                Some((Place::Completed, _)) => return Ok(None),
                Some((_, entry)) => entry.retry_count + 1,
                None => 1,
            };
            let retry_after = now() + policy.delay(retry_count).as_secs_f64();
            chosen = Some(retry_after);
            Ok(Some(Event::Failed {
                movie,
                error,
                retry_after,
            }))
        })?;
        Ok(chosen)
    }

    /// Failed movies whose `retry_after` has passed and whose
    /// `retry_count < max_retries`, earliest `retry_after` first.
    #[must_use]
    pub fn get_movies_ready_for_retry(&self, max_retries: u32) -> Vec<QueueEntry> {
        let now = now();
        self.read().state.ready_for_retry(now, max_retries)
    }

    /// Moves a failed movie to the back of pending, keeping its
    /// `retry_count`. `Ok(false)`: it is not in failed.
    ///
    /// # Errors
    /// [`Error::Poisoned`] / [`Error::Io`].
    pub fn move_failed_to_pending(&self, movie: impl MovieId) -> Result<bool> {
        let id = movie.movie_id().to_owned();
        self.commit_and_wait(|state| {
            Ok((state.place(&id) == Some(Place::Failed)).then_some(Event::MovedToPending { id }))
        })
    }

    /// Failed movies with `retry_count >= max_retries`, in failed order.
    #[must_use]
    pub fn get_permanent_failures(&self, max_retries: u32) -> Vec<QueueEntry> {
        self.read().state.permanent_failures(max_retries)
    }

    /// Manual intervention: a failed movie goes back to pending with
    /// `retry_count` 0 and its error, `retry_after` and `failed_at`
    /// cleared. `Ok(false)`: it is not in failed.
    ///
    /// # Errors
    /// [`Error::Poisoned`] / [`Error::Io`].
    pub fn reset_failed_movie(&self, movie_id: impl MovieId) -> Result<bool> {
        let id = movie_id.movie_id().to_owned();
        self.commit_and_wait(|state| Ok((state.place(&id) == Some(Place::Failed)).then_some(Event::Reset { id })))
    }

    /// Marks a movie done (stamped `completed_at`), taking it out of pending,
    /// in flight or failed. `Ok(false)`: it was already completed.
    ///
    /// # Errors
    /// [`Error::InvalidMovie`], [`Error::Poisoned`] / [`Error::Io`].
    pub fn add_to_completed(&self, movie: Movie) -> Result<bool> {
        movie.validate()?;
        self.commit_and_wait(|state| {
            Ok((state.place(movie.id()) != Some(Place::Completed)).then(|| Event::Completed { movie }))
        })
    }

    /// Is a movie with this id completed?
    #[must_use]
    pub fn is_completed(&self, movie_id: impl MovieId) -> bool {
        self.read().state.place(movie_id.movie_id()) == Some(Place::Completed)
    }

    /// Movies pending (not counting those in flight).
    #[must_use]
    pub fn get_pending_count(&self) -> usize {
        self.read().state.pending_count()
    }

    /// Movies in flight.
    #[must_use]
    pub fn get_in_flight_count(&self) -> usize {
        self.read().state.in_flight_count()
    }

    /// Movies failed.
    #[must_use]
    pub fn get_failed_count(&self) -> usize {
        self.read().state.failed_count()
    }

    /// Movies completed.
    #[must_use]
    pub fn get_completed_count(&self) -> usize {
        self.read().state.completed_count()
    }

    /// The counts, with permanent failures by the configured `max_retries`.
    #[must_use]
    pub fn get_statistics(&self) -> Statistics {
        statistics(&self.read().state, self.options.retry_policy.max_retries)
    }

    /// Removes completed entries older than `days` days; returns how many.
    ///
    /// # Errors
    /// [`Error::Poisoned`] / [`Error::Io`].
    pub fn cleanup_old_completed(&self, days: u32) -> Result<usize> {
        self.cleanup_completed_before(now() - f64::from(days) * 86_400.0)
    }

    /// Removes completed entries with `completed_at` before `cutoff` (Unix
    /// seconds); returns how many.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a non-finite cutoff; [`Error::Poisoned`] / [`Error::Io`].
    pub fn cleanup_completed_before(&self, cutoff: f64) -> Result<usize> {
        let cutoff = check_time("cutoff", cutoff)?;
        let mut removed = 0;
        self.commit_and_wait(|state| {
            let ids = state.completed_before(cutoff);
            removed = ids.len();
            Ok((!ids.is_empty()).then_some(Event::CleanedUp { cutoff, ids }))
        })?;
        Ok(removed)
    }

    // ----- additions ------------------------------------------------------

    /// Puts every movie in flight back at the front of pending (oldest
    /// first); returns how many.
    ///
    /// # Errors
    /// [`Error::Poisoned`] / [`Error::Io`].
    pub fn requeue_in_flight(&self) -> Result<usize> {
        let mut count = 0;
        self.commit_and_wait(|state| {
            let ids: Vec<String> = state.in_flight().map(|entry| entry.id().to_owned()).collect();
            count = ids.len();
            Ok((!ids.is_empty()).then_some(Event::Requeued { ids }))
        })?;
        Ok(count)
    }

    /// One movie's place and entry, if the store knows it.
    #[must_use]
    pub fn get(&self, movie_id: impl MovieId) -> Option<(Place, QueueEntry)> {
        self.read()
            .state
            .get(movie_id.movie_id())
            .map(|(place, entry)| (place, entry.clone()))
    }

    /// Every entry of one place, in queue order.
    #[must_use]
    pub fn list(&self, place: Place) -> Vec<QueueEntry> {
        let live = self.read();
        let state = &live.state;
        match place {
            Place::Pending => state.pending().collect(),
            Place::InFlight => state.in_flight().collect(),
            Place::Failed => state.failed().collect(),
            Place::Completed => state.completed().collect(),
        }
    }

    /// A copy of the whole projection as it is now.
    #[must_use]
    pub fn state(&self) -> QueueState {
        self.read().state.clone()
    }

    /// The sequence number of the last event applied (`Seq(0)`: none).
    #[must_use]
    pub fn last_seq(&self) -> Seq {
        Seq(self.read().next_seq.0 - 1)
    }

    /// The retry policy's `max_retries` (the default for statistics).
    #[must_use]
    pub fn max_retries(&self) -> u32 {
        self.options.retry_policy.max_retries
    }

    /// Waits until every event so far is durable (in `Batched` mode the
    /// only way to know; in `Immediate` mode a no-op).
    ///
    /// # Errors
    /// [`Error::Poisoned`] if a write or fsync failed.
    pub fn flush(&self) -> Result<()> {
        let live = self.read();
        let through = Seq(live.next_seq.0 - 1);
        match &live.writer {
            Some(writer) => {
                let flusher = writer.flusher()?;
                drop(live);
                flusher.flush(through)
            }
            None => Ok(()),
        }
    }

    // ----- snapshots and closing -----------------------------------------

    fn snapshot_due(&self, live: &Live) -> bool {
        let by_count =
            self.options.snapshot_every_events > 0 && live.events_since_snapshot >= self.options.snapshot_every_events;
        let by_time = self
            .options
            .snapshot_every
            .is_some_and(|interval| live.events_since_snapshot > 0 && live.last_snapshot_at.elapsed() >= interval);
        by_count || by_time
    }

    /// Starts a snapshot of record `seq` on a thread of its own. The thread
    /// rebuilds that state from disk — the previous snapshot plus the
    /// journal records after it — so writers never wait for it: nothing is
    /// cloned or held under the lock.
    fn start_background_snapshot(&self, live: &mut Live) {
        let Ok(mut running) = self.snapshot_thread.try_lock() else {
            return;
        };
        if running.as_ref().is_some_and(|thread| !thread.is_finished()) {
            return;
        }
        let Some(flusher) = live.writer.as_ref().and_then(|writer| writer.flusher().ok()) else {
            return;
        };
        let seq = Seq(live.next_seq.0 - 1);
        live.events_since_snapshot = 0;
        live.last_snapshot_at = Instant::now();
        let storage = self.options.storage.clone();
        let dir = self.dir.clone();
        let spawned = std::thread::Builder::new()
            .name("movie-queue-snapshot".into())
            .spawn(move || {
                if let Err(error) = snapshot_from_disk(storage.as_ref(), &dir, &flusher, seq) {
                    tracing::warn!(%error, "background snapshot failed; the journal still holds every event");
                }
            });
        match spawned {
            Ok(thread) => *running = Some(thread),
            Err(error) => tracing::warn!(%error, "could not start the snapshot thread"),
        }
    }

    fn join_snapshot_thread(&self) {
        let thread = self
            .snapshot_thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::warn!("the snapshot thread panicked");
        }
    }

    /// Writes a snapshot now (waiting for it): the three documented files
    /// and the manifest, covering every event so far.
    ///
    /// # Errors
    /// [`Error::ReadOnly`]; [`Error::Poisoned`]; [`Error::Io`] naming the file.
    pub fn snapshot(&self) -> Result<Seq> {
        self.join_snapshot_thread();
        let (flusher, seq) = {
            let mut live = self.write();
            let writer = live.writer.as_ref().ok_or_else(|| self.not_writable())?;
            let flusher = writer.flusher()?;
            live.events_since_snapshot = 0;
            live.last_snapshot_at = Instant::now();
            (flusher, Seq(live.next_seq.0 - 1))
        };
        snapshot_from_disk(self.options.storage.as_ref(), &self.dir, &flusher, seq)?;
        Ok(seq)
    }

    /// Flushes the journal, writes the final snapshot and stops the writer.
    ///
    /// # Errors
    /// The first failure among these steps.
    pub fn close(self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&self) -> Result<()> {
        self.join_snapshot_thread();
        let mut live = self.write();
        let Some(writer) = live.writer.take() else {
            return Ok(());
        };
        let seq = Seq(live.next_seq.0 - 1);
        let snapshot = writer.flush(seq).and_then(|()| {
            if live.events_since_snapshot > 0 || !self.dir.join(snapshot::MANIFEST_FILE).exists() {
                snapshot::write_snapshot(self.options.storage.as_ref(), &self.dir, &live.state, seq)
            } else {
                Ok(())
            }
        });
        let closed = writer.close();
        snapshot.and(closed)
    }

    /// Journals one event as it is (import); `Ok(false)`: it changed nothing.
    pub(crate) fn commit_event(&self, event: Event) -> Result<bool> {
        self.commit_and_wait(|_| Ok(Some(event)))
    }

    pub(crate) fn options_ref(&self) -> &Options {
        &self.options
    }
}

impl Drop for QueueManager {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            tracing::warn!(%error, dir = %self.dir.display(), "closing the queue manager on drop failed");
        }
    }
}

/// Writes the snapshot of record `seq` from what is on disk: waits until
/// the journal is durable through `seq`, rebuilds that state from the
/// previous snapshot plus the journal after it, and writes the files. Runs
/// without any lock of the manager's.
fn snapshot_from_disk(storage: &dyn Storage, dir: &Path, flusher: &Flusher, seq: Seq) -> Result<()> {
    flusher.flush(seq)?;
    let state = audit::state_until(storage, dir, Until::Seq(seq))?;
    snapshot::write_snapshot(storage, dir, &state, seq)
}

/// The counts of a state.
#[must_use]
pub fn statistics(state: &QueueState, max_retries: u32) -> Statistics {
    Statistics {
        pending: state.pending_count(),
        in_flight: state.in_flight_count(),
        failed: state.failed_count(),
        completed: state.completed_count(),
        permanent_failures: state.permanent_failure_count(max_retries),
    }
}
