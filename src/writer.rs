//! The single writer thread: the only code that appends to a segment.
//!
//! Callers hand it `(seq, payload)` pairs in sequence order through a bounded
//! channel. It drains what is queued into one batch, frames the records,
//! does one write and one `fdatasync` per batch (group commit), then
//! publishes the new "synced through" sequence number and wakes every
//! waiter. The first failed write or fsync poisons it: the batch fails,
//! every later append returns [`Error::Poisoned`], nothing is retried.
//!
//! Adaptive group commit (`Immediate`). When a batch's fsync returns, the
//! events queued meanwhile are ready, but the callers the batch covered
//! have yet to be woken and to queue their next ones: taking only what is
//! queued would split the callers into groups that alternate, each paying
//! its own fsync. So the writer remembers how many events the last round
//! saw (its batch plus what was queued when its fsync returned: with one
//! event outstanding per caller, the number of callers) and, while fewer
//! are queued, lingers until that many have arrived or as long as the last
//! fsync took (at most [`LINGER_MAX`]). A lone caller is never delayed (its
//! rounds see one event), nor is an explicit flush. Lingering only delays a
//! write: every event is still acknowledged after the fsync that covers it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::error::{Error, Result};
use crate::event::Seq;
use crate::record::{self, RECORD_PAYLOAD_BYTES_MAX};
use crate::segment;
use crate::storage::{Storage, WritableFile};

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
    /// The most events one batch (one write, one fsync) holds.
    pub batch_events_max: usize,
    /// The most events queued for the writer before callers block.
    pub channel_events_max: usize,
    /// The largest payload accepted (at most [`RECORD_PAYLOAD_BYTES_MAX`]).
    pub event_bytes_max: u32,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            durability: Durability::Immediate,
            segment_bytes_max: 64 << 20,
            batch_events_max: 4096,
            channel_events_max: 16_384,
            event_bytes_max: RECORD_PAYLOAD_BYTES_MAX,
        }
    }
}

/// The longest the writer lingers for more events before a batch.
const LINGER_MAX: Duration = Duration::from_millis(1);

/// How long a lingering writer polls the channel, yielding its core to the
/// callers, before it sleeps until the last expected event wakes it. The
/// callers a batch released usually queue their next events within this
/// (waking a sleeping writer costs a few tens of microseconds more).
const LINGER_SPIN: Duration = Duration::from_micros(100);

/// Why the writer stopped lingering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LingerEnd {
    /// As many commands as it waited for are queued.
    Arrived,
    /// A flush is queued: it is written at once.
    Flush,
    /// The writer is being closed.
    Stopped,
    /// Its time ran out.
    Deadline,
}

/// `Shared::linger_for` while the writer polls (senders need not wake it).
const POLLING: usize = usize::MAX;

/// Whether the writer lingers before taking its next batch, and for what:
/// only in `Immediate` mode, and only if the last round saw more than one
/// event (`expected`, already capped at the batch size). Returns how many
/// queued commands to wait for and for how long: as long as the last fsync
/// took (waiting longer would cost more than another fsync), at most
/// [`LINGER_MAX`].
fn linger_plan(durability: Durability, expected: usize, last_sync: Duration) -> Option<(usize, Duration)> {
    if durability != Durability::Immediate || expected <= 1 {
        return None;
    }
    let budget = last_sync.min(LINGER_MAX);
    (!budget.is_zero()).then_some((expected, budget))
}

enum Command {
    Append { seq: Seq, payload: Vec<u8> },
    Flush,
}

#[derive(Debug, Default)]
struct Shared {
    /// Why the writer is poisoned, once it is.
    poison: Mutex<Option<String>>,
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
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Option<String>> {
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
            Some(cause) => Err(Error::Poisoned { cause: cause.clone() }),
            None => Ok(()),
        }
    }

    /// Waits until `seq` is durable or the writer is poisoned.
    fn wait_for(&self, seq: Seq) -> Result<()> {
        if self.is_synced(seq) {
            return Ok(());
        }
        let mut poison = self.lock();
        loop {
            if self.is_synced(seq) {
                return Ok(());
            }
            if let Some(cause) = &*poison {
                return Err(Error::Poisoned { cause: cause.clone() });
            }
            poison = self
                .synced
                .wait(poison)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Publishes a batch's outcome: the last durable sequence number, or the
    /// cause of the failure that poisons the writer (a cause recorded
    /// earlier is kept). Then wakes every waiter.
    fn publish(&self, outcome: std::result::Result<Seq, String>) {
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

/// An appended event's claim on durability; see [`JournalWriter::append`].
#[derive(Debug)]
#[must_use = "an Immediate append is acknowledged only once `wait` returns Ok"]
pub struct Ticket {
    seq: Seq,
    shared: Arc<Shared>,
}

impl Ticket {
    /// The event's sequence number.
    #[must_use]
    pub fn seq(&self) -> Seq {
        self.seq
    }

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
        let (file, segment_first_seq, segment_len) = if let Some((path, first_seq, len)) = end.last_segment {
            let file = storage
                .open_append(&path)
                .map_err(|error| Error::io("open", &path, error))?;
            (file, first_seq, len)
        } else {
            storage
                .create_dir_all(journal_dir)
                .map_err(|error| Error::io("create directory", journal_dir, error))?;
            let (_, file) = segment::create_segment(storage.as_ref(), journal_dir, end.next_seq)?;
            (file, end.next_seq, record::SEGMENT_HEADER_BYTES as u64)
        };
        let shared = Arc::new(Shared::default());
        shared.synced_through.store(end.next_seq.0 - 1, Ordering::Release);
        let (sender, receiver) = crossbeam_channel::bounded(config.channel_events_max.max(1));
        let thread_state = WriterThread {
            storage,
            journal_dir: journal_dir.to_path_buf(),
            file,
            segment_first_seq,
            segment_len,
            next_seq: end.next_seq,
            config,
            buffer: Vec::new(),
            expected: 1,
            last_sync: Duration::ZERO,
        };
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("movie-queue-writer".into())
            .spawn(move || thread_state.run(&receiver, &thread_shared))
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
        let limit = self.config.event_bytes_max.min(RECORD_PAYLOAD_BYTES_MAX);
        if payload.len() > limit as usize {
            return Err(Error::EventTooLarge {
                length: payload.len() as u64,
                limit: u64::from(limit),
            });
        }
        Ok(())
    }

    /// Queues the record `seq` (callers append in sequence order, one after
    /// the other). The returned ticket's `wait` returns once it is durable.
    ///
    /// # Errors
    /// [`Error::Poisoned`], [`Error::EventTooLarge`], [`Error::Closed`].
    pub fn append(&self, seq: Seq, payload: Vec<u8>) -> Result<Ticket> {
        self.check()?;
        self.check_size(&payload)?;
        self.send(Command::Append { seq, payload })?;
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

    /// The last sequence number known durable.
    #[must_use]
    pub fn synced_through(&self) -> Seq {
        Seq(self.shared.synced_through.load(Ordering::Acquire))
    }

    /// The configured durability.
    #[must_use]
    pub fn durability(&self) -> Durability {
        self.config.durability
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
        self.shared.stop_linger();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            self.shared.publish(Err("the writer thread panicked".into()));
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

struct WriterThread {
    storage: Arc<dyn Storage>,
    journal_dir: PathBuf,
    file: Box<dyn WritableFile>,
    segment_first_seq: Seq,
    segment_len: u64,
    next_seq: Seq,
    config: WriterConfig,
    buffer: Vec<u8>,
    /// The events the last round saw: its batch plus what was queued when
    /// its fsync returned (see the module's documentation).
    expected: usize,
    /// How long the last fsync took.
    last_sync: Duration,
}

impl WriterThread {
    fn run(mut self, receiver: &Receiver<Command>, shared: &Shared) {
        shared.writer.get_or_init(std::thread::current);
        let mut batch = Vec::new();
        while self.collect(receiver, shared, &mut batch) {
            let result = self.write_batch(&mut batch);
            // Counted before the batch's callers are released: what is
            // queued now was queued by others.
            self.expected = batch.len() + receiver.len();
            let outcome = result.map(|()| Seq(self.next_seq.0 - 1)).map_err(|error| {
                tracing::error!(%error, "journal write failed; the store is poisoned until reopened");
                self.discard_unsynced();
                error.to_string()
            });
            let poisoned = outcome.is_err();
            shared.publish(outcome);
            if poisoned {
                return;
            }
        }
    }

    /// Blocks for the first command, then gathers more: whatever is queued
    /// (Immediate, after lingering as [`linger_plan`] says) or what arrives
    /// within `max_delay` (Batched). Returns false once the channel is
    /// closed and drained.
    fn collect(&self, receiver: &Receiver<Command>, shared: &Shared, batch: &mut Vec<(Seq, Vec<u8>)>) -> bool {
        batch.clear();
        let batch_max = self.config.batch_events_max.max(1);
        let expected = self.expected.min(batch_max).min(self.config.channel_events_max.max(1));
        if let Some((wanted, budget)) = linger_plan(self.config.durability, expected, self.last_sync) {
            let end = Self::linger(receiver, shared, wanted, Instant::now() + budget);
            tracing::trace!(?end, wanted, "writer lingered");
        }
        let Ok(first) = receiver.recv() else {
            return false;
        };
        let mut flush = Self::take(first, batch, shared);
        let deadline = match self.config.durability {
            Durability::Batched { max_delay } if !flush => Some(Instant::now() + max_delay),
            _ => None,
        };
        while batch.len() < batch_max {
            let next = match deadline {
                Some(deadline) if !flush => match receiver.recv_deadline(deadline) {
                    Ok(command) => command,
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                },
                _ => match receiver.try_recv() {
                    Ok(command) => command,
                    Err(_) => break,
                },
            };
            flush |= Self::take(next, batch, shared);
        }
        true
    }

    /// Waits until `wanted` commands are queued, a flush is asked for, the
    /// writer is stopped, or `deadline`: first polling (for [`LINGER_SPIN`]),
    /// then asleep until the sender of the last expected command wakes it
    /// (see [`Shared::nudge`]). Says which ended it.
    fn linger(receiver: &Receiver<Command>, shared: &Shared, wanted: usize, deadline: Instant) -> LingerEnd {
        let poll_until = (Instant::now() + LINGER_SPIN).min(deadline);
        shared.linger_for.store(POLLING, Ordering::SeqCst);
        let end = loop {
            if shared.flushes.load(Ordering::SeqCst) != 0 {
                break LingerEnd::Flush;
            }
            if receiver.len() >= wanted {
                break LingerEnd::Arrived;
            }
            let now = Instant::now();
            if now >= deadline {
                break LingerEnd::Deadline;
            }
            match shared.linger_for.load(Ordering::SeqCst) {
                // Woken: by the last expected command (queued before it
                // woke us, so the channel shows it now), a flush or `stop`.
                0 if receiver.len() >= wanted => break LingerEnd::Arrived,
                0 if shared.flushes.load(Ordering::SeqCst) != 0 => break LingerEnd::Flush,
                0 => break LingerEnd::Stopped,
                POLLING if now < poll_until => std::thread::yield_now(),
                POLLING => {
                    // From now on, the sender of the last expected command
                    // wakes the writer; a failed exchange means it was
                    // woken meanwhile, which the next turn reports.
                    let _ = shared
                        .linger_for
                        .compare_exchange(POLLING, wanted, Ordering::SeqCst, Ordering::SeqCst);
                    // Pairs with the fence in `Shared::nudge`; the loop looks
                    // at the channel again before sleeping.
                    fence(Ordering::SeqCst);
                }
                _ => std::thread::park_timeout(deadline - now),
            }
        };
        shared.linger_for.store(0, Ordering::SeqCst);
        end
    }

    fn take(command: Command, batch: &mut Vec<(Seq, Vec<u8>)>, shared: &Shared) -> bool {
        match command {
            Command::Append { seq, payload } => {
                batch.push((seq, payload));
                false
            }
            Command::Flush => {
                shared.flushes.fetch_sub(1, Ordering::SeqCst);
                true
            }
        }
    }

    fn write_batch(&mut self, batch: &mut [(Seq, Vec<u8>)]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.buffer.clear();
        for (seq, payload) in batch.iter() {
            if *seq != self.next_seq {
                return Err(Error::Poisoned {
                    cause: format!("bug: record {seq} queued when {} was due", self.next_seq),
                });
            }
            let framed = record::framed_len(payload.len()) as u64;
            let over = self.segment_len + self.buffer.len() as u64 + framed > self.config.segment_bytes_max;
            let has_records = self.segment_len + self.buffer.len() as u64 > record::SEGMENT_HEADER_BYTES as u64;
            if over && has_records {
                self.write_buffer()?;
                self.roll_segment()?;
            }
            record::encode_record(&mut self.buffer, self.segment_first_seq, *seq, payload);
            self.next_seq = seq.next();
        }
        self.write_buffer()
    }

    /// Writes the buffer to the current segment and fdatasyncs it.
    fn write_buffer(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let path = self.segment_path();
        self.file
            .write_all(&self.buffer)
            .map_err(|error| Error::io("write", &path, error))?;
        let started = Instant::now();
        self.file
            .sync_data()
            .map_err(|error| Error::io("fdatasync", &path, error))?;
        self.last_sync = started.elapsed();
        self.segment_len += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    /// After a failed write or fsync, cuts the current segment back to its
    /// last synced length, so the failed batch cannot come back on reopen
    /// (after a failed fsync its bytes may or may not ever reach the disk).
    fn discard_unsynced(&self) {
        let path = self.segment_path();
        if let Err(error) = self.storage.truncate(&path, self.segment_len) {
            tracing::error!(%error, path = %path.display(), "could not cut the failed batch off the segment");
        }
    }

    fn roll_segment(&mut self) -> Result<()> {
        let (_, file) = segment::create_segment(self.storage.as_ref(), &self.journal_dir, self.next_seq)?;
        self.file = file;
        self.segment_first_seq = self.next_seq;
        self.segment_len = record::SEGMENT_HEADER_BYTES as u64;
        Ok(())
    }

    fn segment_path(&self) -> PathBuf {
        self.journal_dir.join(segment::segment_name(self.segment_first_seq))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::thread;
    use std::time::{Duration, Instant};

    use crossbeam_channel::{Receiver, Sender};

    use super::{Command, Durability, LINGER_MAX, LingerEnd, Shared, WriterThread, linger_plan};
    use crate::event::Seq;

    /// A channel like the writer's and the state it shares with senders.
    fn channel() -> (Sender<Command>, Receiver<Command>, Arc<Shared>) {
        let (sender, receiver) = crossbeam_channel::bounded(16);
        (sender, receiver, Arc::new(Shared::default()))
    }

    /// Runs `linger` for `wanted` commands on a thread registered as the
    /// writer, with a deadline a minute away: an end before it was a
    /// wake-up (the thread reports `Deadline` for an end after it, whatever
    /// ended it).
    fn lingering(receiver: Receiver<Command>, shared: &Arc<Shared>, wanted: usize) -> thread::JoinHandle<LingerEnd> {
        let shared = Arc::clone(shared);
        thread::spawn(move || {
            shared.writer.get_or_init(thread::current);
            let deadline = Instant::now() + Duration::from_secs(60);
            let end = WriterThread::linger(&receiver, &shared, wanted, deadline);
            if Instant::now() < deadline {
                end
            } else {
                LingerEnd::Deadline
            }
        })
    }

    /// Waits until the lingering writer has stopped polling and sleeps,
    /// waiting to be woken for `wanted` commands (or has ended, wrongly).
    fn until_asleep(shared: &Shared, wanted: usize, writer: &thread::JoinHandle<LingerEnd>) {
        while shared.linger_for.load(Ordering::SeqCst) != wanted && !writer.is_finished() {
            thread::yield_now();
        }
    }

    /// Queues an append as `JournalWriter::send` does.
    fn send(sender: &Sender<Command>, shared: &Shared, seq: u64) {
        sender
            .send(Command::Append {
                seq: Seq(seq),
                payload: b"{}".to_vec(),
            })
            .expect("send");
        shared.nudge(|| sender.len());
    }

    #[test]
    fn lingers_only_for_concurrent_immediate_callers_and_at_most_linger_max() {
        let fsync = Duration::from_micros(200);
        assert_eq!(linger_plan(Durability::Immediate, 1, fsync), None, "a lone caller");
        assert_eq!(linger_plan(Durability::Immediate, 0, fsync), None, "a flush alone");
        let batched = Durability::Batched {
            max_delay: Duration::from_millis(5),
        };
        assert_eq!(linger_plan(batched, 8, fsync), None, "Batched waits its own way");
        assert_eq!(linger_plan(Durability::Immediate, 8, fsync), Some((8, fsync)));
        assert_eq!(
            linger_plan(Durability::Immediate, 8, Duration::from_secs(1)),
            Some((8, LINGER_MAX)),
            "a slow disk does not make the linger longer than LINGER_MAX"
        );
        assert_eq!(
            linger_plan(Durability::Immediate, 8, Duration::ZERO),
            None,
            "no fsync yet"
        );
    }

    #[test]
    fn a_sleeping_linger_is_woken_by_the_last_expected_command() {
        let (sender, receiver, shared) = channel();
        let writer = lingering(receiver, &shared, 3);
        until_asleep(&shared, 3, &writer);
        for seq in 1..=3 {
            send(&sender, &shared, seq);
        }
        assert_eq!(writer.join().expect("writer"), LingerEnd::Arrived);
        assert_eq!(shared.linger_for.load(Ordering::SeqCst), 0, "no linger left behind");
    }

    #[test]
    fn commands_already_queued_end_a_linger_at_once() {
        let (sender, receiver, shared) = channel();
        send(&sender, &shared, 1);
        send(&sender, &shared, 2);
        let writer = lingering(receiver, &shared, 2);
        assert_eq!(writer.join().expect("writer"), LingerEnd::Arrived);
    }

    #[test]
    fn a_flush_ends_a_sleeping_linger() {
        let (sender, receiver, shared) = channel();
        let writer = lingering(receiver, &shared, 8);
        until_asleep(&shared, 8, &writer);
        send(&sender, &shared, 1);
        shared.queue_flush(&sender).expect("flush queued");
        assert_eq!(writer.join().expect("writer"), LingerEnd::Flush);
    }

    #[test]
    fn closing_ends_a_sleeping_linger() {
        let (_sender, receiver, shared) = channel();
        let writer = lingering(receiver, &shared, 8);
        until_asleep(&shared, 8, &writer);
        shared.stop_linger();
        assert_eq!(writer.join().expect("writer"), LingerEnd::Stopped);
    }

    #[test]
    fn a_linger_nobody_joins_ends_at_its_deadline() {
        let (_sender, receiver, shared) = channel();
        let deadline = Instant::now() + Duration::from_millis(2);
        assert_eq!(
            WriterThread::linger(&receiver, &shared, 2, deadline),
            LingerEnd::Deadline
        );
        assert!(Instant::now() >= deadline);
    }
}
