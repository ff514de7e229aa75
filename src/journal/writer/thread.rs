//! The writer thread: the only code that appends to a segment. It drains
//! the channel into batches, frames the records, does one write and one
//! `fdatasync` per batch, and publishes the outcome.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::linger::{linger, linger_plan};
use super::{Command, Durability, Poison, Shared, WriterConfig};
use crate::error::{Error, Result};
use crate::journal::{format, segment};
use crate::seq::Seq;
use crate::storage::{Storage, WritableFile};

pub(super) struct WriterThread {
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
    /// A writer appending to `file`, the segment starting at
    /// `segment.0` whose valid bytes end at `segment.1`.
    pub(super) fn new(
        storage: Arc<dyn Storage>,
        journal_dir: PathBuf,
        file: Box<dyn WritableFile>,
        segment: (Seq, u64),
        next_seq: Seq,
        config: WriterConfig,
    ) -> Self {
        WriterThread {
            storage,
            journal_dir,
            file,
            segment_first_seq: segment.0,
            segment_len: segment.1,
            next_seq,
            config,
            buffer: Vec::new(),
            expected: 1,
            last_sync: Duration::ZERO,
        }
    }

    pub(super) fn run(mut self, receiver: &Receiver<Command>, shared: &Shared) {
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
                Poison::of(&error)
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
            let end = linger(receiver, shared, wanted, Instant::now() + budget);
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

    /// Adds a received command to the batch: an append's record (its room
    /// in the channel released), or a flush request. Says whether it asked
    /// for a flush, so the batch is written without waiting for more.
    fn take(command: Command, batch: &mut Vec<(Seq, Vec<u8>)>, shared: &Shared) -> bool {
        match command {
            Command::Append { seq, payload } => {
                shared.release(1, payload.len());
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
                    kind: None,
                });
            }
            let framed = format::framed_len(payload.len()) as u64;
            let over = self.segment_len + self.buffer.len() as u64 + framed > self.config.segment_bytes_max;
            let has_records = self.segment_len + self.buffer.len() as u64 > format::SEGMENT_HEADER_BYTES as u64;
            if over && has_records {
                self.write_buffer()?;
                self.roll_segment()?;
            }
            format::encode_record(&mut self.buffer, self.segment_first_seq, *seq, payload);
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
        self.segment_len = format::SEGMENT_HEADER_BYTES as u64;
        Ok(())
    }

    fn segment_path(&self) -> PathBuf {
        self.journal_dir
            .join(crate::layout::segment_name(self.segment_first_seq))
    }
}
