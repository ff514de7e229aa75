//! `Options`: everything configurable about a `QueueManager`, as a builder.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::journal::writer::{Durability, WriterConfig};
use crate::retry::RetryPolicy;
use crate::storage::{CountingStorage, RealStorage, Storage};

/// The builder returned by [`crate::QueueManager::options`]; its `open`
/// opens the store.
#[derive(Debug, Clone)]
#[expect(clippy::struct_excessive_bools, reason = "each is one switch of the builder")]
pub struct Options {
    pub(crate) writer: WriterConfig,
    pub(crate) retry_policy: RetryPolicy,
    pub(crate) requeue_in_flight_on_open: bool,
    pub(crate) snapshot_every_events: u64,
    pub(crate) snapshot_every: Option<Duration>,
    pub(crate) read_only: bool,
    pub(crate) load_on_demand: bool,
    pub(crate) control_socket: bool,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) clock: Clock,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            writer: WriterConfig::default(),
            retry_policy: RetryPolicy::default(),
            requeue_in_flight_on_open: true,
            snapshot_every_events: 10_000,
            snapshot_every: Some(Duration::from_secs(300)),
            read_only: false,
            load_on_demand: false,
            control_socket: true,
            storage: Arc::new(RealStorage),
            clock: Clock::default(),
        }
    }
}

impl Options {
    /// Opens a writer without loading the queues (default `false`): the
    /// open reads the snapshot's manifest and index and the journal
    /// records after the snapshot, and each call loads what it asks about
    /// before it decides — a movie by id through the index, the front of
    /// pending from the start of `queue_pending.json` — so it decides
    /// exactly as over the whole state. A call about every movie (counts,
    /// lists, [`crate::QueueManager::state`], a watchlist, cleanup,
    /// requeue, import, export) loads the whole state first, once; so does
    /// [`crate::QueueManager::load`], which returns the error if that
    /// fails (an infallible query panics with it instead). For short-lived
    /// writers that change a few movies of a big store, such as one
    /// command of the `movie-queue` tool.
    ///
    /// The open loads on demand only from a store in the shape the lean
    /// reads answer from ([`Options::statistics`]: a current snapshot with
    /// its index and its files of the lengths its manifest recorded, the
    /// journal after it whole and ending cleanly in a segment that holds
    /// its last record, and a journal that reaches back to record 1 or
    /// has its compaction base); otherwise, and read-only, it opens as
    /// usual (which repairs what that shape lacks). Either way it appends
    /// where the usual open would, and a damaged index or entry is never
    /// trusted: the call loads the whole state instead (and close then
    /// writes a sound snapshot). The open reads neither the journal before
    /// the snapshot, nor the compaction base, nor the documented files'
    /// entries it does not need, so damage there is found by the next
    /// usual open or `verify`, not by this one. In a child made by
    /// `fork()`, a manager still holding only some movies answers its
    /// infallible queries as an empty state does.
    #[must_use]
    pub fn load_on_demand(mut self, on_demand: bool) -> Self {
        self.load_on_demand = on_demand;
        self
    }

    /// Serves the control socket while the store is open for writing
    /// (default `true`): `control.sock` in the store directory, where the
    /// `movie-queue` tool and [`crate::Control`] (the same user, or root)
    /// ask this process to make changes and answer queries while it holds
    /// the store. Read-only opens never serve it. When the socket cannot
    /// be made (a read-only directory, say), the store opens without it
    /// and a warning is logged. See `docs/FORMAT.md`, "The control socket".
    #[must_use]
    pub fn control_socket(mut self, serve: bool) -> Self {
        self.control_socket = serve;
        self
    }

    /// When mutating calls return (default [`Durability::Immediate`]).
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.writer.durability = durability;
        self
    }

    /// Failures after which a movie counts as a permanent failure in
    /// `get_statistics()` (default 5). Also the retry policy's limit.
    #[must_use]
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.retry_policy.max_retries = max_retries;
        self
    }

    /// The backoff used by `fail_with_backoff` (default: 1 h doubling, 5 retries).
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = policy;
        self
    }

    /// Whether movies left in flight by an earlier process go back to the
    /// front of pending on open (default true; the CLI keeps them).
    #[must_use]
    pub fn requeue_in_flight_on_open(mut self, requeue: bool) -> Self {
        self.requeue_in_flight_on_open = requeue;
        self
    }

    /// Write a snapshot after this many events (default 10,000; 0: never by count).
    #[must_use]
    pub fn snapshot_every_events(mut self, events: u64) -> Self {
        self.snapshot_every_events = events;
        self
    }

    /// Write a snapshot when the last one is older than this and events
    /// happened since (checked at each mutation; default 5 minutes; `None`: never by time).
    #[must_use]
    pub fn snapshot_every(mut self, interval: Option<Duration>) -> Self {
        self.snapshot_every = interval;
        self
    }

    /// Journal segments roll over past this size (default 64 MiB).
    #[must_use]
    pub fn segment_bytes_max(mut self, bytes: u64) -> Self {
        self.writer.segment_bytes_max = bytes;
        self
    }

    /// How many bytes of zeros the journal's writer keeps laid down ahead of
    /// its records (default 1 MiB, at most a segment's size; 0: none, every
    /// write grows the file). Records are written over them, so the
    /// fdatasync that acknowledges a change carries no change of the
    /// file's size; a full disk fails the zeros, before a record is written.
    #[must_use]
    pub fn preallocate_bytes(mut self, bytes: u64) -> Self {
        self.writer.preallocate_bytes = bytes;
        self
    }

    /// The largest event accepted, in bytes of JSON (default and maximum 64 MiB).
    #[must_use]
    pub fn event_bytes_max(mut self, bytes: u32) -> Self {
        self.writer.event_bytes_max = bytes;
        self
    }

    /// The most payload bytes waiting for the writer before callers wait for
    /// room (default 64 MiB; a single event always fits). Bounds the memory
    /// a slow disk can make the queue hold.
    #[must_use]
    pub fn channel_bytes_max(mut self, bytes: usize) -> Self {
        self.writer.channel_bytes_max = bytes;
        self
    }

    /// The most events one group commit holds (default 4,096).
    #[must_use]
    pub fn batch_events_max(mut self, events: usize) -> Self {
        self.writer.batch_events_max = events;
        self
    }

    /// Open without the writer lock: queries, audit and replay only; a
    /// torn tail (maybe a write in progress) is left alone.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// The file-system seam (default: the real one). Tests pass a
    /// `FaultyStorage` (the `testing` feature).
    #[cfg(feature = "testing")]
    #[must_use]
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }

    /// The clock events are stamped from (default: the wall clock). Tests
    /// pass one that steps back; stamps stay monotonic whatever it says.
    #[cfg(feature = "testing")]
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Fn() -> f64 + Send + Sync>) -> Self {
        self.clock = Clock::from_fn(clock);
        self
    }

    /// Calls `on_read` with the number of bytes of every file read (an
    /// open, `compact`, `import`, and [`Options::verify`] and
    /// [`Options::replay`]): the progress of long work, against the size
    /// of the store's files. Called on the reading thread.
    #[must_use]
    pub fn on_read(mut self, on_read: Arc<dyn Fn(u64) + Send + Sync>) -> Self {
        self.storage = Arc::new(CountingStorage::new(self.storage, on_read));
        self
    }

    /// [`crate::verify`] with these options (their storage and `on_read`).
    ///
    /// # Errors
    /// As [`crate::verify`].
    pub fn verify(&self, dir: impl AsRef<std::path::Path>) -> crate::error::Result<crate::VerifyReport> {
        crate::lock::require_directory(dir.as_ref())?;
        crate::audit::verify_with(self.storage.as_ref(), dir.as_ref())
    }

    /// The counts of the store in `dir` (permanent failures at these
    /// options' `max_retries`), as [`crate::QueueManager::get_statistics`]
    /// of a read-only open gives them, at a cost that does not grow with
    /// the queues: read from the snapshot's manifest, plus the journal
    /// records after it (the movies they name are read from the documented
    /// files through the snapshot's index). A store that is not in that
    /// shape — an older manifest, a damaged index, damage in the records
    /// after the snapshot — is rebuilt whole, as a read-only open would.
    /// Needs no lock, changes nothing.
    ///
    /// # Errors
    /// As [`crate::QueueManager::open_read_only`].
    pub fn statistics(&self, dir: impl AsRef<std::path::Path>) -> crate::error::Result<crate::Statistics> {
        crate::lock::require_directory(dir.as_ref())?;
        crate::audit::statistics(&self.storage, dir.as_ref(), self.retry_policy.max_retries)
    }

    /// The movie `id`'s place and entry in the store in `dir`, as
    /// [`crate::QueueManager::get`] of a read-only open gives them, read as
    /// [`Options::statistics`] reads: the snapshot's index, one entry of
    /// its documented file, and the journal records after the snapshot.
    ///
    /// # Errors
    /// As [`Options::statistics`].
    pub fn lookup(
        &self,
        dir: impl AsRef<std::path::Path>,
        id: &str,
    ) -> crate::error::Result<Option<(crate::Place, crate::QueueEntry)>> {
        crate::lock::require_directory(dir.as_ref())?;
        crate::audit::lookup(&self.storage, dir.as_ref(), id)
    }

    /// Hands the entries of `place` in the store in `dir`, in queue order
    /// from the `skip`-th on, to `each` until it returns `false`: what
    /// [`crate::QueueManager::list`] of a read-only open gives, read as
    /// [`Options::statistics`] reads, so its memory does not grow with the
    /// queue. The movies the journal records after the snapshot name are
    /// held; the rest stream from the documented file, checked whole against
    /// the manifest before the first entry is handed on.
    ///
    /// # Errors
    /// As [`Options::statistics`]; [`crate::Error::BadQueueFile`] naming
    /// the documented file when it changed in place while it was read.
    pub fn list(
        &self,
        dir: impl AsRef<std::path::Path>,
        place: crate::Place,
        skip: usize,
        mut each: impl FnMut(crate::QueueEntry) -> bool,
    ) -> crate::error::Result<()> {
        crate::lock::require_directory(dir.as_ref())?;
        crate::audit::list(&self.storage, dir.as_ref(), place, skip, &mut each)
    }

    /// [`crate::replay`] with these options (their storage and `on_read`).
    ///
    /// # Errors
    /// As [`crate::replay`].
    pub fn replay(
        &self,
        dir: impl AsRef<std::path::Path>,
        until: crate::Until,
    ) -> crate::error::Result<crate::Replayed> {
        crate::lock::require_directory(dir.as_ref())?;
        crate::audit::replay_with(self.storage.as_ref(), dir.as_ref(), until)
    }
}
