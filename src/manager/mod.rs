//! `QueueManager`: the seed's Queue Manager API over the projection and the
//! journal writer.
//!
//! Every mutation follows the same path (`commit`): under the state's
//! write lock, decide the event from the projection (a rejected operation
//! writes nothing), hand it to the writer, apply it to the projection;
//! then, outside the lock, wait for the fsync (in `Immediate` mode).
//! Every query answers from the projection under a read lock.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::thread::JoinHandle;
use std::time::Instant;

pub use crate::clock::now;

mod api;
mod audit;
mod control;
mod maintenance;
mod partial;
mod removed;
mod snapshots;

pub use self::removed::GRACE_PERIOD_DEFAULT;

use crate::entry::QueueEntry;
use crate::error::{Error, Result};
use crate::event::{Event, encode_payload_with};
use crate::fork::Origin;
use crate::journal::writer::{Durability, JournalWriter, Reserver, Ticket};
use crate::layout::Layout;
use crate::lock::{self, WriterLock};
use crate::movie::Movie;
use crate::options::Options;
use crate::projection::QueueState;
use crate::recovery::{self, ImportLimits};
use crate::seq::Seq;
use crate::snapshot::manifest::OnDisk;

use self::partial::{Need, Partial};

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

/// What the state lock guards: the projection, the next sequence number,
/// the writer, and the snapshot bookkeeping.
struct Inner {
    state: QueueState,
    next_seq: Seq,
    writer: Option<JournalWriter>,
    events_since_snapshot: u64,
    last_snapshot_at: Instant,
    /// The time of the oldest event the snapshot on disk does not reflect
    /// (`None`: none, or not known): the closing snapshot policy's age.
    oldest_change: Option<f64>,
    /// The documented files the state started from (its changes since
    /// are recorded): the closing snapshot keeps those whose queues did
    /// not change.
    on_disk: OnDisk,
    /// Set while the state holds only some movies
    /// ([`Options::load_on_demand`]).
    partial: Option<Partial>,
    /// Was the store opened from something other than its snapshot (a
    /// damaged or missing one, the journal alone)? Then close writes one,
    /// whatever the policy says.
    snapshot_stale: bool,
    /// The last event's time: the next is never stamped below it.
    last_ts: f64,
    /// Where each payload is encoded before its exact-size copy goes to
    /// the writer (one allocation per event, no growing buffer).
    payload_scratch: Vec<u8>,
}

/// The queue manager: thread-safe (`Send + Sync`; share it as
/// `Arc<QueueManager>`), crash-safe, every change journaled.
///
/// One process owns it: a child made by `fork()` (without `exec`) gets a
/// copy but not its writer thread, so every fallible call on the copy
/// returns [`Error::Forked`] at once ([`QueueManager::check_owner`]),
/// dropping the copy does nothing to the store, and the child does not
/// hold the store's lock (it is released when the owner closes, however
/// long the child lives). A child opens the store itself, once the owner
/// has closed it; or it opens it read-only.
pub struct QueueManager {
    /// What every handle shares: the application's and the control
    /// socket's (which holds it only while it answers a request).
    core: Arc<Core>,
    /// The control socket this manager serves (`None`: read-only, turned
    /// off, or this is the socket's own handle).
    control: Option<crate::control::Server>,
    /// Is this the application's handle (closing it closes the store),
    /// not the control socket's?
    owner: bool,
}

/// A manager's state and resources, shared by its handles.
struct Core {
    dir: PathBuf,
    options: Options,
    inner: RwLock<Inner>,
    snapshot_thread: Mutex<Option<JoinHandle<()>>>,
    /// Held while a snapshot's files are written: the background thread,
    /// an explicit `snapshot()` and the close take turns, never writing
    /// the same temporary files at once.
    snapshot_writing: Arc<Mutex<()>>,
    /// Reserves room in the writer's queue without any lock held (`None`:
    /// read-only).
    reserver: Option<Reserver>,
    /// Set once the open completed: only then may closing (or dropping)
    /// write a snapshot of the state.
    opened: AtomicBool,
    /// Does the state hold only some movies (`Inner::partial`)? Read
    /// without the lock, so a whole state's queries never take the write lock.
    partial: AtomicBool,
    /// Where each live subscription reads: `compact` keeps those segments.
    subscriptions: Mutex<Vec<Weak<AtomicU64>>>,
    /// The process that opened it: in a child made by `fork()`, every
    /// call fails with [`Error::Forked`] and dropping it does nothing.
    origin: Origin,
    /// The store's identity (`None`: it has none yet, or it could not be
    /// read or given; see [`QueueManager::store_id`]).
    store_id: Option<crate::journal::identity::StoreId>,
    /// The writer's lock (`None`: read-only): held until the core drops.
    _lock: Option<WriterLock>,
}

impl std::fmt::Debug for QueueManager {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("QueueManager")
            .field("dir", &self.core.dir)
            .field("read_only", &self.core.options.read_only)
            .finish_non_exhaustive()
    }
}

/// The seed's place for the queue files: `~/.movie_sync/`.
///
/// # Errors
/// [`Error::InvalidArgument`] when no home directory is known.
pub fn default_dir() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| PathBuf::from(home).join(crate::layout::DEFAULT_DIR))
        .ok_or_else(|| Error::InvalidArgument("HOME is not set; pass a directory".into()))
}

/// `time` if it is finite, else [`Error::OutOfRange`] naming it.
fn check_time(name: &'static str, time: f64) -> Result<f64> {
    if time.is_finite() {
        Ok(time)
    } else {
        Err(Error::OutOfRange {
            name,
            value: time,
            min: f64::MIN,
            max: f64::MAX,
        })
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
        let (lock, began) = if options.read_only {
            lock::require_directory(dir)?;
            (None, Began::whole(recovery::recover_read_only(storage.as_ref(), dir)?))
        } else {
            let lock = lock::create_and_lock(storage.as_ref(), dir)?;
            let partial = if options.load_on_demand {
                Partial::open(&storage, dir)
            } else {
                None
            };
            let began = if let Some(opened) = partial {
                recovery::remove_leftovers(storage.as_ref(), dir)?;
                Began::partial(opened)
            } else {
                let limits = ImportLimits {
                    event_bytes_max: options.writer.event_bytes_limit(),
                    segment_bytes_max: options.writer.segment_bytes_max,
                    now: options.clock.now(),
                };
                Began::whole(recovery::recover_for_writer(storage.as_ref(), dir, limits)?)
            };
            (Some(lock), began)
        };
        let writer = match lock {
            Some(_) => Some(JournalWriter::start(
                storage,
                &Layout::new(dir).journal(),
                began.end,
                options.writer,
            )?),
            None => None,
        };
        let reserver = writer.as_ref().map(JournalWriter::reserver);
        let store_id = identity(options.storage.as_ref(), dir, writer.is_some());
        let core = Core {
            dir: dir.to_path_buf(),
            snapshot_writing: Arc::new(Mutex::new(())),
            reserver,
            partial: AtomicBool::new(began.partial.is_some()),
            inner: RwLock::new(Inner {
                state: began.state,
                next_seq: began.last_seq.next(),
                writer,
                events_since_snapshot: began.events_since_snapshot,
                last_snapshot_at: Instant::now(),
                oldest_change: began.oldest_change,
                on_disk: began.on_disk,
                partial: began.partial,
                snapshot_stale: began.snapshot_stale,
                last_ts: began.last_ts,
                payload_scratch: Vec::new(),
            }),
            options,
            snapshot_thread: Mutex::new(None),
            opened: AtomicBool::new(false),
            subscriptions: Mutex::new(Vec::new()),
            origin: Origin::here(),
            store_id,
            _lock: lock,
        };
        Self::finish_open(core)
    }

    /// The open's last steps: movies in flight back to pending (if the
    /// options say so), the open marked complete, the control socket served.
    fn finish_open(core: Core) -> Result<Self> {
        let mut manager = QueueManager {
            core: Arc::new(core),
            control: None,
            owner: true,
        };
        if manager.core.options.requeue_in_flight_on_open && !manager.core.options.read_only {
            manager.requeue_in_flight()?;
        }
        manager.core.opened.store(true, Ordering::Release);
        if manager.core.options.control_socket && !manager.core.options.read_only {
            manager.control = control::start(&manager);
        }
        Ok(manager)
    }

    /// The store's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.core.dir
    }

    /// The store's identity: given to its journal by the first writer that
    /// opened it, and kept for the journal's life (see
    /// [`crate::store_id`]). `None` in a read-only manager of a store no
    /// writer has opened since identities began, or when it could not be
    /// read or written (the open says so in a warning).
    #[must_use]
    pub fn store_id(&self) -> Option<crate::journal::identity::StoreId> {
        self.core.store_id
    }

    /// Fails with [`Error::Forked`] in a child process made by `fork()`
    /// (without `exec`) that inherited this manager from the process that
    /// opened it; `Ok` in that process. Every fallible method checks it
    /// first, so a call in a child fails at once instead of waiting
    /// forever for a writer thread the child does not have. The
    /// infallible queries (counts, lists, [`QueueManager::get`],
    /// [`QueueManager::state`]) cannot fail: in a child they answer from
    /// the state the child inherited (see [`QueueManager::state`]), or as
    /// an empty state when that state holds only some movies
    /// ([`crate::Options::load_on_demand`]); a program that forks checks
    /// this first.
    ///
    /// # Errors
    /// [`Error::Forked`].
    pub fn check_owner(&self) -> Result<()> {
        if self.core.origin.is_forked() {
            Err(Error::Forked {
                dir: self.core.dir.clone(),
                owner_pid: self.core.origin.pid(),
            })
        } else {
            Ok(())
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.core
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Answers a query from the projection and the last record applied,
    /// once the state holds what `need` asks for (see [`Need`]; a state
    /// that cannot load it panics, as [`QueueManager::load`] says).
    /// In a forked child it never waits: a lock a thread of the parent
    /// held at the fork is never released there, and what it guarded may
    /// be half changed. There the state inherited at the fork answers, or
    /// an empty one if a change was under way in another thread just then.
    fn query<T>(&self, need: Need<'_>, answer: impl FnOnce(&QueueState, Seq) -> T) -> T {
        let last = |inner: &Inner| Seq(inner.next_seq.0 - 1);
        if !self.core.origin.is_forked() {
            if self.core.partial.load(Ordering::Acquire)
                && let Err(error) = self.prepare(&mut self.write(), need)
            {
                panic!("{error} (call QueueManager::load first to have it as an error)");
            }
            let inner = self.read();
            return answer(&inner.state, last(&inner));
        }
        // A state that holds only some movies answers nothing there: the
        // child gets the empty state's answers (it cannot load the rest).
        let whole = |inner: &Inner| inner.partial.is_none();
        match self.core.inner.try_read() {
            Ok(inner) if whole(&inner) => answer(&inner.state, last(&inner)),
            Err(std::sync::TryLockError::Poisoned(poisoned)) if whole(poisoned.get_ref()) => {
                let inner = poisoned.into_inner();
                answer(&inner.state, last(&inner))
            }
            _ => answer(&QueueState::new(), Seq(0)),
        }
    }

    /// What a call about the movie `id` needs: the id, copied only while
    /// the state loads on demand (a whole state needs nothing loaded).
    fn need_id(&self, id: &str) -> NeededId {
        NeededId(self.core.partial.load(Ordering::Acquire).then(|| id.to_owned()))
    }

    /// Makes a state that loads on demand hold what `need` asks for: the
    /// movies it names, or every movie (then it is a whole state for good).
    fn prepare(&self, inner: &mut Inner, need: Need<'_>) -> Result<()> {
        let Some(partial) = inner.partial.as_mut() else {
            return Ok(());
        };
        if partial.prepare(
            self.core.options.storage.as_ref(),
            &self.core.dir,
            &mut inner.state,
            need,
        ) {
            return Ok(());
        }
        let seq = Seq(inner.next_seq.0 - 1);
        if let Some(writer) = inner.writer.as_ref() {
            writer.flush(seq)?;
        }
        let replayed = crate::audit::replay_with(
            self.core.options.storage.as_ref(),
            &self.core.dir,
            crate::seq::Until::Seq(seq),
        )?;
        tracing::debug!(%seq, start = replayed.start.name(), "loaded the whole state");
        // Not from the snapshot (it does not hold up): close writes a
        // sound one, as after a whole open that did not start from it.
        inner.snapshot_stale |= replayed.start != recovery::Start::Snapshot;
        inner.state = replayed.state;
        inner.partial = None;
        self.core.partial.store(false, Ordering::Release);
        Ok(())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.core
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The single path of every mutation: `decide` looks at the state and
    /// returns the event to journal (or `None`: rejected, nothing written).
    /// Returns the ticket to wait on in `Immediate` mode.
    fn commit(
        &self,
        need: Need<'_>,
        decide: impl FnOnce(&QueueState) -> Result<Option<Event>>,
    ) -> Result<Option<Ticket>> {
        self.check_owner()?;
        // Room in the writer's queue is waited for here, holding no lock:
        // readers never stall behind a full queue.
        let reservation = self
            .core
            .reserver
            .as_ref()
            .ok_or_else(|| self.not_writable())?
            .reserve()?;
        let mut inner = self.write();
        let inner = &mut *inner;
        inner.writer.as_ref().ok_or_else(|| self.not_writable())?.check()?;
        self.prepare(inner, need)?;
        let writer = inner.writer.as_ref().ok_or_else(|| self.not_writable())?;
        let Some(event) = decide(&inner.state)? else {
            return Ok(None);
        };
        inner
            .state
            .check(&event)
            .map_err(|error| Error::InvalidArgument(error.0))?;
        // Stamped under the write lock, so times are monotonic in
        // sequence order (a clock stepped back stamps the previous time).
        let ts = crate::clock::stamp(self.core.options.clock.now(), inner.last_ts);
        let payload = encode_payload_with(&mut inner.payload_scratch, ts, &event)?;
        let seq = inner.next_seq;
        let ticket = writer.append(seq, payload, reservation)?;
        inner.state.apply_checked(ts, &event);
        if let Some(partial) = inner.partial.as_mut() {
            partial.committed(&event);
        }
        inner.next_seq = seq.next();
        inner.last_ts = ts;
        inner.events_since_snapshot += 1;
        inner.oldest_change = inner.oldest_change.or(Some(ts));
        if self.snapshot_due(inner) {
            self.start_background_snapshot(inner);
        }
        Ok(Some(ticket))
    }

    /// Commits and, in `Immediate` mode, waits for durability. Returns
    /// whether an event was written.
    fn commit_and_wait(
        &self,
        need: Need<'_>,
        decide: impl FnOnce(&QueueState) -> Result<Option<Event>>,
    ) -> Result<bool> {
        match self.commit(need, decide)? {
            None => Ok(false),
            Some(ticket) => {
                if self.core.options.writer.durability == Durability::Immediate {
                    ticket.wait()?;
                }
                Ok(true)
            }
        }
    }

    /// `Ok` while the writer holds up: a poisoned writer's state may hold
    /// an event that never became durable, so the control socket answers
    /// no question from it.
    pub(crate) fn check_writer(&self) -> Result<()> {
        match &self.read().writer {
            Some(writer) => writer.check(),
            None => Err(self.not_writable()),
        }
    }

    fn not_writable(&self) -> Error {
        if self.core.options.read_only {
            Error::ReadOnly {
                dir: self.core.dir.clone(),
            }
        } else {
            Error::Closed
        }
    }

    /// Waits until every event so far is durable (in `Batched` mode the
    /// only way to know; in `Immediate` mode a no-op).
    ///
    /// # Errors
    /// [`Error::Poisoned`] if a write or fsync failed.
    pub fn flush(&self) -> Result<()> {
        self.check_owner()?;
        let inner = self.read();
        let through = Seq(inner.next_seq.0 - 1);
        match &inner.writer {
            Some(writer) => {
                let flusher = writer.flusher()?;
                drop(inner);
                flusher.flush(through)
            }
            None => Ok(()),
        }
    }

    /// Registers a subscription's reading position.
    fn register_subscription(&self) -> Arc<AtomicU64> {
        let position = Arc::new(AtomicU64::new(0));
        let mut subscriptions = self
            .core
            .subscriptions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        subscriptions.retain(|live| live.strong_count() > 0);
        subscriptions.push(Arc::downgrade(&position));
        position
    }

    /// The earliest record a live subscription has yet to read (`SEQ_MAX`: none).
    fn earliest_subscribed(&self) -> Seq {
        let mut subscriptions = self
            .core
            .subscriptions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        subscriptions.retain(|live| live.strong_count() > 0);
        Seq(subscriptions
            .iter()
            .filter_map(Weak::upgrade)
            .map(|position| position.load(Ordering::Acquire))
            .min()
            .unwrap_or(crate::seq::SEQ_MAX))
    }

    /// Journals one event as it is (import); `Ok(false)`: it changed nothing.
    pub(crate) fn commit_event(&self, event: Event) -> Result<bool> {
        self.commit_and_wait(Need::Whole, |_| Ok(Some(event)))
    }
}

impl Drop for QueueManager {
    fn drop(&mut self) {
        if !self.owner {
            // The control socket's handle: the application's closes.
            return;
        }
        if self.core.origin.is_forked() {
            self.abandon();
            return;
        }
        if let Err(error) = self.shutdown() {
            tracing::warn!(%error, dir = %self.core.dir.display(), "closing the queue manager on drop failed");
        }
    }
}

impl QueueManager {
    /// In a forked child, lets go of the inherited copy without touching
    /// the store or anything of the parent's: no flush, no snapshot, no
    /// join of threads the child does not have, no close of the lock's
    /// descriptors (the fork handler closed them). What a lock guards may
    /// be half changed by a thread of the parent at the fork, so it is
    /// forgotten, never dropped (its pages are the parent's, shared until
    /// written). Logs nothing: a logger's lock may be held as well.
    fn abandon(&mut self) {
        // The whole core is forgotten (one more count that never drops),
        // and the control socket's server with it: its threads are the parent's.
        std::mem::forget(Arc::clone(&self.core));
        std::mem::forget(self.control.take());
    }
}

impl Options {
    /// Opens (creating if missing) the store in `dir`.
    ///
    /// # Errors
    /// See [`QueueManager::open`].
    pub fn open(self, dir: impl AsRef<Path>) -> Result<QueueManager> {
        QueueManager::open_with(dir.as_ref(), self)
    }
}

/// Where an open starts: the state, where the journal ends, and what the
/// snapshot policy needs to know.
struct Began {
    state: QueueState,
    last_seq: Seq,
    last_ts: f64,
    end: crate::journal::writer::JournalEnd,
    events_since_snapshot: u64,
    snapshot_stale: bool,
    oldest_change: Option<f64>,
    on_disk: OnDisk,
    partial: Option<Partial>,
}

impl Began {
    fn whole(recovered: recovery::Recovered) -> Began {
        Began {
            state: recovered.state,
            last_seq: recovered.last_seq,
            last_ts: recovered.last_ts,
            end: recovered.end,
            events_since_snapshot: recovered.events_since_snapshot,
            snapshot_stale: !recovered.snapshot_used,
            oldest_change: recovered.oldest_change,
            on_disk: recovered.on_disk,
            partial: None,
        }
    }

    fn partial(opened: partial::Opened) -> Began {
        Began {
            state: opened.state,
            last_seq: opened.last_seq,
            last_ts: opened.last_ts,
            end: opened.end,
            events_since_snapshot: opened.events_since_snapshot,
            snapshot_stale: false,
            oldest_change: opened.oldest_change,
            on_disk: OnDisk::default(),
            partial: Some(opened.partial),
        }
    }
}

/// The id a call needs loaded, owned, so the call can hand its movie on.
struct NeededId(Option<String>);

impl NeededId {
    fn need(&self) -> Need<'_> {
        match &self.0 {
            Some(id) => Need::Id(id),
            None => Need::Nothing,
        }
    }
}

/// The store's identity as an open finds it: a writer gives the journal one
/// if it has none (or sets aside one that does not parse); a failure there
/// is a warning, never a failed open (the queue works without it).
fn identity(
    storage: &dyn crate::storage::Storage,
    dir: &Path,
    writer: bool,
) -> Option<crate::journal::identity::StoreId> {
    let journal_dir = Layout::new(dir).journal();
    let found = if writer {
        crate::journal::identity::ensure(storage, &journal_dir).map(Some)
    } else {
        crate::journal::identity::read(storage, &journal_dir)
    };
    found.unwrap_or_else(|error| {
        if writer {
            tracing::warn!(%error, "the store's identity could not be read or given");
        } else {
            // `verify` names it; a reader works without it.
            tracing::debug!(%error, "the store's identity could not be read");
        }
        None
    })
}
