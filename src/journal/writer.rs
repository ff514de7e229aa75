//! The single writer thread: the only code that appends to a segment.
//!
//! Callers hand it `(seq, payload)` pairs in sequence order through a bounded
//! channel. It drains what is queued into one batch, frames the records,
//! does one write and one `fdatasync` per batch (group commit), then
//! publishes the new "synced through" sequence number and wakes every
//! waiter. The first failed write or fsync poisons it: the batch fails,
//! every later append returns [`Error::Poisoned`], nothing is retried.
//!
//! This file is the handle callers hold ([`JournalWriter`], [`Ticket`],
//! [`Flusher`]) and the state they share with the thread; the thread is in
//! `writer/thread.rs`, its linger policy in `writer/linger.rs`.

mod linger;
mod thread;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use crossbeam_channel::Sender;

use self::linger::POLLING;
use self::thread::WriterThread;
pub use self::watch::DurableWatch;
use super::format::{self, RECORD_PAYLOAD_BYTES_MAX};
use super::segment;
use crate::error::{Error, Result};
use crate::seq::Seq;
use crate::storage::{self, Storage};

/// The zeros a writer keeps laid down ahead of its records by default
/// (1 MiB): records are written over them, so the fdatasync that
/// acknowledges a record carries no change of the file's size; once less
/// than half is left, the writer lays more down after it has answered its
/// callers.
pub const PREALLOCATE_BYTES: u64 = 1 << 20;

/// How long a caller waiting alone for its fsync spins before it sleeps.
const SPIN_FOR: Duration = Duration::from_micros(300);

/// When a mutating call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// After the fsync that covers its event succeeded (concurrent callers
    /// share one fsync; while there are several, the writer waits up to
    /// 1 ms for them before each one). Nothing acknowledged is lost.
    #[default]
    Immediate,
    /// As soon as its event is queued; the writer syncs within `max_delay`.
    /// A crash loses at most the events of the last `max_delay` (plus the
    /// time of one write and fsync); [`crate::QueueManager::flush`] waits.
    Batched {
        /// The longest an event waits before its batch is written.
        max_delay: Duration,
    },
}

/// The writer's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    /// When the journal is made durable.
    pub durability: Durability,
    /// A segment rolls over once it would grow past this many bytes.
    pub segment_bytes_max: u64,
    /// How many bytes of zeros the writer keeps laid down ahead of its
    /// records ([`WriterConfig::room_ahead`]: at most a segment's size).
    pub preallocate_bytes: u64,
    /// The most events one batch (one write, one fsync) holds.
    pub batch_events_max: usize,
    /// The most events queued for the writer before callers block (they
    /// wait for room before they take the state's lock).
    pub channel_events_max: usize,
    /// The most payload bytes queued for the writer before callers block
    /// (one event more than this may be queued: a single event always fits).
    pub channel_bytes_max: usize,
    /// The largest payload accepted (at most [`RECORD_PAYLOAD_BYTES_MAX`]).
    pub event_bytes_max: u32,
}

impl WriterConfig {
    /// The largest payload accepted: the configured limit, at most the format's.
    #[must_use]
    pub fn event_bytes_limit(&self) -> usize {
        self.event_bytes_max.min(RECORD_PAYLOAD_BYTES_MAX) as usize
    }

    /// The zeros kept ahead of the records: [`WriterConfig::preallocate_bytes`],
    /// no more than a segment holds.
    #[must_use]
    pub fn room_ahead(&self) -> u64 {
        self.preallocate_bytes.min(self.segment_bytes_max)
    }
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            durability: Durability::Immediate,
            segment_bytes_max: 64 << 20,
            preallocate_bytes: PREALLOCATE_BYTES,
            batch_events_max: 4096,
            channel_events_max: 16_384,
            channel_bytes_max: 64 << 20,
            event_bytes_max: RECORD_PAYLOAD_BYTES_MAX,
        }
    }
}

enum Command {
    Append { seq: Seq, payload: Vec<u8> },
    Flush,
}

/// Why the writer is poisoned: the first failure, kept for every later caller.
#[derive(Debug, Clone)]
struct Poison {
    cause: String,
    kind: Option<std::io::ErrorKind>,
}

impl Poison {
    /// The poison of a failed write or fsync (or a bug the writer caught).
    fn of(error: &Error) -> Self {
        let kind = match error {
            Error::Io { source, .. } => Some(source.kind()),
            Error::Poisoned { kind, .. } => *kind,
            _ => None,
        };
        Poison {
            cause: error.to_string(),
            kind,
        }
    }

    fn error(&self) -> Error {
        Error::Poisoned {
            cause: self.cause.clone(),
            kind: self.kind,
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    /// Why the writer is poisoned, once it is.
    poison: Mutex<Option<Poison>>,
    /// Notified (with `poison` locked and released) when `synced_through`
    /// advances or the writer is poisoned.
    synced: Condvar,
    /// The last durable sequence number; written with `poison` locked (so a
    /// waiter checking it under that lock cannot miss the notification),
    /// read without it.
    synced_through: AtomicU64,
    /// Whether `poison` is set, readable without the lock.
    poisoned: AtomicBool,
    /// Nonzero while the writer lingers: the number of queued commands at
    /// which a sender must wake it, or [`POLLING`].
    linger_for: AtomicUsize,
    /// Flushes queued and not yet taken by the writer (it does not linger
    /// while there are any).
    flushes: AtomicUsize,
    /// The writer thread, unparked to end a linger.
    writer: OnceLock<Thread>,
    /// Callers waiting for their record to be durable (see `wait_for`).
    waiting: AtomicUsize,
    /// Events and payload bytes reserved or queued and not yet taken by
    /// the writer; `true` once no more may be queued (the writer is gone).
    queued: Mutex<Queued>,
    /// Notified when the writer takes commands, is poisoned or stops.
    room_freed: Condvar,
    /// The bounds of `queued`.
    limits: OnceLock<(usize, usize)>,
}

/// What is queued for the writer.
#[derive(Debug, Default, Clone, Copy)]
struct Queued {
    events: usize,
    bytes: usize,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Option<Poison>> {
        self.poison.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn is_synced(&self, seq: Seq) -> bool {
        self.synced_through.load(Ordering::Acquire) >= seq.0
    }

    /// Fails with [`Error::Poisoned`] once the writer is poisoned.
    fn check(&self) -> Result<()> {
        if !self.poisoned.load(Ordering::Acquire) {
            return Ok(());
        }
        match &*self.lock() {
            Some(poison) => Err(poison.error()),
            None => Ok(()),
        }
    }

    /// Waits until `seq` is durable or the writer is poisoned. A caller
    /// that waits alone spins for up to [`SPIN_FOR`] first: the writer's
    /// fsync is about that long, and a caller that is not asleep when it
    /// returns does not wait for the scheduler to wake it (the one download
    /// thread's every change; with other callers waiting the CPUs are
    /// theirs and the writer's, and it sleeps at once).
    fn wait_for(&self, seq: Seq) -> Result<()> {
        if self.is_synced(seq) {
            return Ok(());
        }
        let alone = self.waiting.fetch_add(1, Ordering::AcqRel) == 0;
        let outcome = self.spin_then_wait(seq, alone);
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        outcome
    }

    fn spin_then_wait(&self, seq: Seq, alone: bool) -> Result<()> {
        if alone {
            let started = std::time::Instant::now();
            while started.elapsed() < SPIN_FOR && !self.poisoned.load(Ordering::Acquire) {
                if self.is_synced(seq) {
                    return Ok(());
                }
                if self.waiting.load(Ordering::Acquire) > 1 {
                    break;
                }
                std::hint::spin_loop();
            }
        }
        let mut poison = self.lock();
        loop {
            if self.is_synced(seq) {
                return Ok(());
            }
            if let Some(poison) = &*poison {
                return Err(poison.error());
            }
            poison = self
                .synced
                .wait(poison)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn queued(&self) -> MutexGuard<'_, Queued> {
        self.queued.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Blocks until an event may be queued, then holds a place for it.
    fn reserve(&self) -> Result<()> {
        let (events_max, bytes_max) = self.limits.get().copied().unwrap_or((usize::MAX, usize::MAX));
        let mut queued = self.queued();
        loop {
            self.check()?;
            if queued.closed {
                return Err(Error::Closed);
            }
            if queued.events < events_max && (queued.bytes < bytes_max || queued.events == 0) {
                queued.events += 1;
                return Ok(());
            }
            // A poison published meanwhile notifies; the timeout is a backstop.
            queued = self
                .room_freed
                .wait_timeout(queued, Duration::from_millis(100))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Gives back `events` places and `bytes` bytes (taken by the writer,
    /// or a reservation not used).
    fn release(&self, events: usize, bytes: usize) {
        {
            let mut queued = self.queued();
            queued.events = queued.events.saturating_sub(events);
            queued.bytes = queued.bytes.saturating_sub(bytes);
        }
        self.room_freed.notify_all();
    }

    /// No more may be queued (the writer is stopping); waiters wake.
    fn close_room(&self) {
        self.queued().closed = true;
        self.room_freed.notify_all();
    }

    /// Publishes a batch's outcome: the last durable sequence number, or the
    /// cause of the failure that poisons the writer (a cause recorded
    /// earlier is kept). Then wakes every waiter.
    fn publish(&self, outcome: std::result::Result<Seq, Poison>) {
        {
            let mut poison = self.lock();
            match outcome {
                Ok(synced_through) => self.synced_through.store(synced_through.0, Ordering::Release),
                Err(cause) => {
                    poison.get_or_insert(cause);
                    self.poisoned.store(true, Ordering::Release);
                }
            }
        }
        self.synced.notify_all();
        self.room_freed.notify_all();
    }

    /// Called after a command was queued (`queued`: the channel's length):
    /// wakes the sleeping writer once as many commands as it lingers for are
    /// queued. A missed wake-up only lets the linger run to its deadline.
    fn nudge(&self, queued: impl FnOnce() -> usize) {
        // Pairs with the fence in `WriterThread::linger`: either the writer
        // sees this command in the channel, or this sees it sleeping.
        fence(Ordering::SeqCst);
        let wanted = self.linger_for.load(Ordering::SeqCst);
        if wanted != 0
            && wanted != POLLING
            && queued() >= wanted
            && self
                .linger_for
                .compare_exchange(wanted, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            self.unpark_writer();
        }
    }

    /// Asks the writer to write and sync what it has at once: counted in
    /// `flushes` before it is queued (so a linger starting meanwhile ends at
    /// once), then any linger in progress is ended.
    fn queue_flush(&self, sender: &Sender<Command>) -> Result<()> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        if sender.send(Command::Flush).is_err() {
            self.flushes.fetch_sub(1, Ordering::SeqCst);
            self.check()?;
            return Err(Error::Closed);
        }
        self.stop_linger();
        Ok(())
    }

    /// Ends the writer's linger now, if it lingers.
    fn stop_linger(&self) {
        if self.linger_for.swap(0, Ordering::SeqCst) != 0 {
            self.unpark_writer();
        }
    }

    fn unpark_writer(&self) {
        if let Some(writer) = self.writer.get() {
            writer.unpark();
        }
    }
}

/// Where the journal ends when the writer starts.
#[derive(Debug, Clone)]
pub struct JournalEnd {
    /// The sequence number of the next record.
    pub next_seq: Seq,
    /// The last segment (its path, first sequence number and valid length),
    /// to append to; `None` starts a new segment at `next_seq`.
    pub last_segment: Option<(PathBuf, Seq, u64)>,
}

/// The handle to the writer thread.
#[derive(Debug)]
pub struct JournalWriter {
    sender: Option<Sender<Command>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    config: WriterConfig,
}

/// A place held in the writer's queue for one event; see [`Reserver`].
/// Dropped unused, it gives the place back.
#[derive(Debug)]
#[must_use = "a reservation holds a place in the writer's queue until it is used or dropped"]
pub struct Reservation {
    shared: Arc<Shared>,
    used: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.used {
            self.shared.release(1, 0);
        }
    }
}

/// Reserves places in the writer's queue: a caller waits for room here,
/// holding no lock of its own, before it decides and queues an event
/// under the state's lock (where it must never wait for the writer).
#[derive(Debug, Clone)]
pub struct Reserver {
    shared: Arc<Shared>,
}

impl Reserver {
    /// Blocks until an event may be queued (fewer than the configured
    /// events and bytes are waiting for the writer), then holds its place.
    ///
    /// # Errors
    /// [`Error::Poisoned`]; [`Error::Closed`] once the writer stops.
    pub fn reserve(&self) -> Result<Reservation> {
        self.shared.reserve()?;
        Ok(Reservation {
            shared: Arc::clone(&self.shared),
            used: false,
        })
    }
}

/// An appended event's claim on durability; see [`JournalWriter::append`].
#[derive(Debug)]
#[must_use = "an Immediate append is acknowledged only once `wait` returns Ok"]
pub struct Ticket {
    seq: Seq,
    shared: Arc<Shared>,
}

impl Ticket {
    /// Waits until the event is durable.
    ///
    /// # Errors
    /// [`Error::Poisoned`] if the write or fsync covering it failed.
    pub fn wait(self) -> Result<()> {
        self.shared.wait_for(self.seq)
    }
}

impl JournalWriter {
    /// Starts the writer thread at `end` of the journal in `journal_dir`.
    ///
    /// # Errors
    /// [`Error::Io`] if the segment cannot be opened or created.
    pub fn start(storage: Arc<dyn Storage>, journal_dir: &Path, end: JournalEnd, config: WriterConfig) -> Result<Self> {
        let (file, segment_first_seq, segment_len, file_len) = if let Some((path, first_seq, len)) = end.last_segment {
            // A killed predecessor's writes may be in the page cache only:
            // they become durable before anything (a snapshot, a record
            // after them) relies on them.
            storage
                .sync_file(&path)
                .map_err(|error| Error::io("fdatasync", &path, error))?;
            let file = storage
                .open_write(&path, len)
                .map_err(|error| Error::io("open", &path, error))?;
            let file_len = match storage.entry(&path) {
                Ok(storage::Entry::File(file_len)) => file_len.max(len),
                _ => len,
            };
            super::tail::ensure(storage.as_ref(), journal_dir, first_seq)?;
            (file, first_seq, len, file_len)
        } else {
            storage
                .create_dir_all(journal_dir)
                .map_err(|error| Error::io("create directory", journal_dir, error))?;
            let room = config.room_ahead().max(format::SEGMENT_HEADER_BYTES as u64);
            let (_, file) = segment::create_segment(storage.as_ref(), journal_dir, end.next_seq, room)?;
            (file, end.next_seq, format::SEGMENT_HEADER_BYTES as u64, room)
        };
        // The journal directory and the store directory hold their entries durably.
        storage::sync_parent(
            storage.as_ref(),
            &journal_dir.join(crate::layout::segment_name(end.next_seq)),
        )?;
        storage::sync_parent(storage.as_ref(), journal_dir)?;
        let shared = Arc::new(Shared::default());
        shared.synced_through.store(end.next_seq.0 - 1, Ordering::Release);
        let _ = shared
            .limits
            .set((config.channel_events_max.max(1), config.channel_bytes_max.max(1)));
        // Unbounded: the room callers reserve first bounds it.
        let (sender, receiver) = crossbeam_channel::unbounded();
        let thread_state = WriterThread::new(
            storage,
            journal_dir.to_path_buf(),
            file,
            (segment_first_seq, segment_len, file_len),
            end.next_seq,
            config,
        );
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("movie-queue-writer".into())
            .spawn(move || {
                let run = std::panic::AssertUnwindSafe(|| thread_state.run(&receiver, &thread_shared));
                if let Err(panic) = std::panic::catch_unwind(run) {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|text| (*text).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(%message, "the journal writer thread panicked; the store is poisoned");
                    thread_shared.publish(Err(Poison {
                        cause: format!("the writer thread panicked: {message}"),
                        kind: None,
                    }));
                    thread_shared.close_room();
                }
            })
            .map_err(|error| Error::io("spawn writer thread for", journal_dir, error))?;
        Ok(JournalWriter {
            sender: Some(sender),
            thread: Some(thread),
            shared,
            config,
        })
    }

    /// Fails with [`Error::Poisoned`] once a write or fsync has failed.
    ///
    /// # Errors
    /// As described.
    pub fn check(&self) -> Result<()> {
        self.shared.check()
    }

    /// Refuses a payload over the configured limit, before anything is queued.
    ///
    /// # Errors
    /// [`Error::EventTooLarge`].
    pub fn check_size(&self, payload: &[u8]) -> Result<()> {
        let limit = self.config.event_bytes_limit();
        if payload.len() > limit {
            return Err(Error::EventTooLarge {
                length: payload.len() as u64,
                limit: limit as u64,
            });
        }
        Ok(())
    }

    /// A handle to reserve places in the queue (see [`Reserver`]).
    #[must_use]
    pub fn reserver(&self) -> Reserver {
        Reserver {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Queues the record `seq` in the place `reservation` holds (callers
    /// append in sequence order, one after the other). The returned
    /// ticket's `wait` returns once it is durable. Never blocks.
    ///
    /// # Errors
    /// [`Error::Poisoned`], [`Error::EventTooLarge`], [`Error::Closed`].
    pub fn append(&self, seq: Seq, payload: Vec<u8>, mut reservation: Reservation) -> Result<Ticket> {
        self.check()?;
        self.check_size(&payload)?;
        let bytes = payload.len();
        self.shared.queued().bytes += bytes;
        if let Err(error) = self.send(Command::Append { seq, payload }) {
            self.shared.release(0, bytes);
            return Err(error);
        }
        reservation.used = true;
        Ok(Ticket {
            seq,
            shared: Arc::clone(&self.shared),
        })
    }

    /// Waits until every record queued so far is durable.
    ///
    /// # Errors
    /// [`Error::Poisoned`] if a write or fsync failed.
    pub fn flush(&self, through: Seq) -> Result<()> {
        self.flusher()?.flush(through)
    }

    /// A handle that can wait for durability from another thread (the
    /// snapshot thread flushes through the sequence number it covers).
    ///
    /// # Errors
    /// [`Error::Closed`] once the writer is closed.
    pub fn flusher(&self) -> Result<Flusher> {
        Ok(Flusher {
            sender: self.sender.clone().ok_or(Error::Closed)?,
            shared: Arc::clone(&self.shared),
        })
    }

    /// A handle that follows "synced through" (see [`DurableWatch`]).
    #[must_use]
    pub fn durable_watch(&self) -> DurableWatch {
        DurableWatch::new(Arc::downgrade(&self.shared))
    }

    /// Stops the thread after it has written what was queued.
    ///
    /// # Errors
    /// [`Error::Poisoned`] if the last writes failed.
    pub fn close(mut self) -> Result<()> {
        self.stop();
        self.check()
    }

    fn stop(&mut self) {
        self.sender = None;
        self.shared.close_room();
        self.shared.stop_linger();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            self.shared.publish(Err(Poison {
                cause: "the writer thread panicked".into(),
                kind: None,
            }));
        }
    }

    fn send(&self, command: Command) -> Result<()> {
        let sender = self.sender.as_ref().ok_or(Error::Closed)?;
        sender
            .send(command)
            .map_err(|_| self.check().err().unwrap_or(Error::Closed))?;
        self.shared.nudge(|| sender.len());
        Ok(())
    }
}

/// Waits for durability on behalf of another thread; see [`JournalWriter::flusher`].
#[derive(Debug, Clone)]
pub struct Flusher {
    sender: Sender<Command>,
    shared: Arc<Shared>,
}

impl Flusher {
    /// Waits until every record through `through` is durable.
    ///
    /// # Errors
    /// [`Error::Poisoned`] if a write or fsync failed; [`Error::Closed`].
    pub fn flush(&self, through: Seq) -> Result<()> {
        if self.shared.is_synced(through) {
            return Ok(());
        }
        self.shared.check()?;
        self.shared.queue_flush(&self.sender)?;
        self.shared.wait_for(through)
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        self.stop();
    }
}
