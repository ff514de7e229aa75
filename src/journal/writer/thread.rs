//! The writer thread: the only code that writes records to a segment. It
//! drains the channel into batches, frames the records, does one write and
//! one `fdatasync` per batch, and publishes the outcome.
//!
//! Records go over zeros laid down ahead of them (preallocation), so the
//! acknowledging `fdatasync` carries data only, never a change of the
//! file's size: a segment is created with [`WriterConfig::room_ahead`]
//! bytes of zeros, and once less than half of that is left the writer lays
//! more down after it has answered its callers. A batch larger than the
//! zeros left gets its room first (written and synced before the batch),
//! so a full disk fails the room, not a record: nothing is acknowledged
//! into a segment that cannot hold it.

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
    /// Where the records end: the next one is written there.
    segment_len: u64,
    /// The segment file's length: zeros from `segment_len` to it.
    file_len: u64,
    /// Did the last attempt to lay zeros down ahead fail (a full disk)?
    /// Then it is tried again only when a batch needs the room.
    ahead_failed: bool,
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
    /// A writer of `file`, the segment starting at `segment.0` whose valid
    /// bytes end at `segment.1` and whose file (zeros after them) ends at
    /// `segment.2`.
    pub(super) fn new(
        storage: Arc<dyn Storage>,
        journal_dir: PathBuf,
        file: Box<dyn WritableFile>,
        segment: (Seq, u64, u64),
        next_seq: Seq,
        config: WriterConfig,
    ) -> Self {
        WriterThread {
            storage,
            journal_dir,
            file,
            segment_first_seq: segment.0,
            segment_len: segment.1,
            file_len: segment.2,
            ahead_failed: false,
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
            self.keep_room_ahead();
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

    /// Writes the buffer to the current segment, over its zeros, and
    /// fdatasyncs it. When the zeros left cannot hold it, more are laid
    /// down and synced first.
    fn write_buffer(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let path = self.segment_path();
        let end = self.segment_len + self.buffer.len() as u64;
        if end > self.file_len && self.config.room_ahead() > 0 {
            self.lay_zeros(end + self.config.room_ahead())?;
        }
        self.file
            .write_all_at(self.segment_len, &self.buffer)
            .map_err(|error| Error::io("write", &path, error))?;
        let started = Instant::now();
        self.file
            .sync_data()
            .map_err(|error| Error::io("fdatasync", &path, error))?;
        self.last_sync = started.elapsed();
        self.segment_len = end;
        self.file_len = self.file_len.max(end);
        self.buffer.clear();
        Ok(())
    }

    /// Lays zeros down from the file's end to `to` and syncs them.
    fn lay_zeros(&mut self, to: u64) -> Result<()> {
        let path = self.segment_path();
        crate::storage::write_zeros(self.file.as_mut(), self.file_len, to)
            .and_then(|()| self.file.sync_data())
            .map_err(|error| Error::io("preallocate", &path, error))?;
        self.file_len = to;
        self.ahead_failed = false;
        Ok(())
    }

    /// Between batches, once its callers are answered: once less than
    /// half of [`WriterConfig::room_ahead`] is left, lays down zeros for
    /// the next records (up to the segment's size). A failure (a full
    /// disk) is logged, not fatal: a batch that then finds no room fails
    /// before it is written.
    fn keep_room_ahead(&mut self) {
        let ahead = self.config.room_ahead();
        let to = (self.segment_len + ahead).min(self.config.segment_bytes_max);
        if self.ahead_failed || to <= self.file_len || self.file_len - self.segment_len >= ahead / 2 {
            return;
        }
        match self.lay_zeros(to) {
            Ok(()) => {}
            Err(error) => {
                tracing::warn!(%error, "could not lay zeros down ahead of the journal's records; a batch that needs the room will fail");
                self.ahead_failed = true;
            }
        }
    }

    /// After a failed write or fsync, writes zeros over what the current
    /// segment holds past its last synced record, so the failed batch
    /// cannot come back on reopen (after a failed fsync its bytes may or
    /// may not ever reach the disk). The file keeps its size: a segment is
    /// never shortened under a reader.
    fn discard_unsynced(&self) {
        let path = self.segment_path();
        if let Err(error) = self.storage.zero_from(&path, self.segment_len) {
            tracing::error!(%error, path = %path.display(), "could not write zeros over the failed batch");
        }
    }

    fn roll_segment(&mut self) -> Result<()> {
        let room = self.config.room_ahead().max(format::SEGMENT_HEADER_BYTES as u64);
        let (_, file) = segment::create_segment(self.storage.as_ref(), &self.journal_dir, self.next_seq, room)?;
        self.file = file;
        self.segment_first_seq = self.next_seq;
        self.segment_len = format::SEGMENT_HEADER_BYTES as u64;
        self.file_len = room;
        self.ahead_failed = false;
        Ok(())
    }

    fn segment_path(&self) -> PathBuf {
        self.journal_dir
            .join(crate::layout::segment_name(self.segment_first_seq))
    }
}
