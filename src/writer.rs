//! The single writer thread: the only code that appends to a segment.
//!
//! Callers hand it `(seq, payload)` pairs in sequence order through a bounded
//! channel. It drains what is queued into one batch, frames the records,
//! does one write and one `fdatasync` per batch (group commit), then
//! publishes the new "synced through" sequence number and wakes every
//! waiter. The first failed write or fsync poisons it: the batch fails,
//! every later append returns [`Error::Poisoned`], nothing is retried.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
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
    /// share one fsync). Nothing acknowledged is lost.
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

enum Command {
    Append { seq: Seq, payload: Vec<u8> },
    Flush,
}

#[derive(Debug, Default)]
struct SyncState {
    synced_through: Seq,
    poison: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<SyncState>,
    synced: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until `seq` is durable or the writer is poisoned.
    fn wait_for(&self, seq: Seq) -> Result<()> {
        let mut state = self.lock();
        loop {
            if state.synced_through >= seq {
                return Ok(());
            }
            if let Some(cause) = &state.poison {
                return Err(Error::Poisoned { cause: cause.clone() });
            }
            state = self
                .synced
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        shared.lock().synced_through = Seq(end.next_seq.0 - 1);
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
        match &self.shared.lock().poison {
            Some(cause) => Err(Error::Poisoned { cause: cause.clone() }),
            None => Ok(()),
        }
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
        self.shared.lock().synced_through
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
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            let mut state = self.shared.lock();
            state.poison.get_or_insert_with(|| "the writer thread panicked".into());
        }
    }

    fn send(&self, command: Command) -> Result<()> {
        let sender = self.sender.as_ref().ok_or(Error::Closed)?;
        sender
            .send(command)
            .map_err(|_| self.check().err().unwrap_or(Error::Closed))
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
        {
            let state = self.shared.lock();
            if state.synced_through >= through {
                return Ok(());
            }
            if let Some(cause) = &state.poison {
                return Err(Error::Poisoned { cause: cause.clone() });
            }
        }
        self.sender
            .send(Command::Flush)
            .map_err(|_| match &self.shared.lock().poison {
                Some(cause) => Error::Poisoned { cause: cause.clone() },
                None => Error::Closed,
            })?;
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
}

impl WriterThread {
    fn run(mut self, receiver: &Receiver<Command>, shared: &Shared) {
        let mut batch = Vec::new();
        while self.collect(receiver, &mut batch) {
            let result = self.write_batch(&mut batch);
            let mut state = shared.lock();
            match result {
                Ok(()) => state.synced_through = Seq(self.next_seq.0 - 1),
                Err(error) => {
                    tracing::error!(%error, "journal write failed; the store is poisoned until reopened");
                    self.discard_unsynced();
                    state.poison = Some(error.to_string());
                }
            }
            let poisoned = state.poison.is_some();
            drop(state);
            shared.synced.notify_all();
            if poisoned {
                return;
            }
        }
    }

    /// Blocks for the first command, then gathers more: whatever is queued
    /// (Immediate) or what arrives within `max_delay` (Batched). Returns
    /// false once the channel is closed and drained.
    fn collect(&self, receiver: &Receiver<Command>, batch: &mut Vec<(Seq, Vec<u8>)>) -> bool {
        batch.clear();
        let Ok(first) = receiver.recv() else {
            return false;
        };
        let mut flush = Self::take(first, batch);
        let deadline = match self.config.durability {
            Durability::Batched { max_delay } if !flush => Some(Instant::now() + max_delay),
            _ => None,
        };
        while batch.len() < self.config.batch_events_max.max(1) {
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
            flush |= Self::take(next, batch);
        }
        true
    }

    fn take(command: Command, batch: &mut Vec<(Seq, Vec<u8>)>) -> bool {
        match command {
            Command::Append { seq, payload } => {
                batch.push((seq, payload));
                false
            }
            Command::Flush => true,
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
        self.file
            .sync_data()
            .map_err(|error| Error::io("fdatasync", &path, error))?;
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
