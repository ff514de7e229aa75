//! Following the journal as it grows: the records from a sequence number
//! on, read incrementally — each poll reads only the bytes after the last
//! record handed on — across segment rolls, a compaction (the segment
//! being read is held open, so deleting its name loses nothing) and a
//! writer's restart (a torn tail it cuts and writes over is read again).
//! Knows bytes and sequence numbers, never events.
//!
//! A record is handed on only once it is whole and its checksum holds,
//! so a write in progress is never seen half. Damage with a valid record
//! after it, a sequence gap, or records compacted away before they were
//! read are errors; an incomplete or damaged end of the last segment is
//! "nothing more yet" (a crashed writer's torn tail, cut by the next
//! writer's open).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{
    RecordDefect, Resync, SEGMENT_HEADER_BYTES, decode_record, decode_segment_header, valid_record_follows,
};
use super::reader::{Damage, DamageKind, damage_error};
use super::segment::{self, SegmentFile};
use crate::error::{Error, Result};
use crate::seq::Seq;
use crate::storage::{ReadableFile, Storage};

/// A record as the follower hands it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    /// Its sequence number.
    pub seq: Seq,
    /// Its payload, as written.
    pub payload: Vec<u8>,
    /// Its segment file.
    pub path: PathBuf,
    /// The byte offset of its header there.
    pub offset: u64,
}

/// The segment being read.
struct Current {
    file: SegmentFile,
    reader: Box<dyn ReadableFile>,
    /// Bytes read from file offset `base` on; those before `pos` are handed on.
    bytes: Vec<u8>,
    base: u64,
    pos: usize,
}

/// What the bytes at the read position hold.
enum Step {
    Record(OwnedRecord),
    /// An incomplete record, damage, or nothing.
    Stuck(Option<RecordDefect>),
}

impl Current {
    fn open(storage: &dyn Storage, file: SegmentFile) -> Result<Self> {
        let mut reader = storage
            .open_read(&file.path)
            .map_err(|error| Error::io("open", &file.path, error))?;
        let bytes = reader
            .read_from(0)
            .map_err(|error| Error::io("read", &file.path, error))?;
        match decode_segment_header(&bytes) {
            Ok(first) if first == file.first_seq => {}
            _ => {
                return Err(Error::Corrupt {
                    path: file.path.clone(),
                    offset: 0,
                    detail: "segment header does not hold up (`movie-queue verify` says more)".into(),
                });
            }
        }
        Ok(Current {
            file,
            reader,
            bytes,
            base: 0,
            pos: SEGMENT_HEADER_BYTES,
        })
    }

    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn step(&mut self) -> Step {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        if rest.is_empty() {
            return Step::Stuck(None);
        }
        match decode_record(rest, self.file.first_seq) {
            Ok(raw) => {
                let record = OwnedRecord {
                    seq: raw.seq,
                    payload: raw.payload.to_vec(),
                    path: self.file.path.clone(),
                    offset: self.offset(),
                };
                self.pos += raw.framed_len();
                Step::Record(record)
            }
            Err(RecordDefect::ShortHeader { .. } | RecordDefect::PastEnd { .. }) => Step::Stuck(None),
            Err(defect) => Step::Stuck(Some(defect)),
        }
    }

    /// Reads the file again from the read position (a writer may have
    /// appended, or cut a torn tail and written over it). Says whether
    /// more bytes than before are there.
    fn refill(&mut self) -> Result<bool> {
        let before = self.bytes.len() - self.pos.min(self.bytes.len());
        let offset = self.offset();
        self.bytes = self
            .reader
            .read_from(offset)
            .map_err(|error| Error::io("read", &self.file.path, error))?;
        self.base = offset;
        self.pos = 0;
        Ok(self.bytes.len() > before)
    }

    /// Is there a valid record (due `next` or later) after damage at the read position?
    fn valid_after(&self, next: Seq) -> bool {
        let after = self.bytes.get(self.pos + 1..).unwrap_or_default();
        !matches!(valid_record_follows(after, self.file.first_seq, next), Resync::Nothing)
    }
}

/// Reads the journal in `journal_dir` from a sequence number on, as it grows.
pub struct Follower {
    storage: Arc<dyn Storage>,
    journal_dir: PathBuf,
    next: Seq,
    current: Option<Current>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Follower")
            .field("journal_dir", &self.journal_dir)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Follower {
    /// A follower whose first record will be `from`; `Seq(0)`: the first
    /// record the journal holds (later than 1 after a compaction).
    #[must_use]
    pub fn new(storage: Arc<dyn Storage>, journal_dir: &Path, from: Seq) -> Self {
        Follower {
            storage,
            journal_dir: journal_dir.to_path_buf(),
            next: from,
            current: None,
        }
    }

    /// The sequence number of the next record it will hand on.
    #[must_use]
    pub fn next_seq(&self) -> Seq {
        self.next
    }

    /// The next record, if it is on disk and at most `limit`; `Ok(None)`:
    /// not (yet).
    ///
    /// # Errors
    /// [`Error::Io`]; corruption naming the file and offset where the
    /// records from the next one due cannot be read (damage with valid
    /// records after it, a gap, records compacted away before they were read).
    pub fn poll(&mut self, limit: Seq) -> Result<Option<OwnedRecord>> {
        let mut refilled = false;
        while self.next <= limit {
            if self.current.is_none() && !self.open_segment()? {
                return Ok(None);
            }
            let Some(current) = self.current.as_mut() else {
                return Ok(None);
            };
            match current.step() {
                Step::Record(record) if record.seq < self.next => {}
                Step::Record(record) if record.seq == self.next => {
                    self.next = self.next.next();
                    return Ok(Some(record));
                }
                Step::Record(record) => {
                    return Err(Error::SequenceGap {
                        path: record.path,
                        offset: record.offset,
                        expected: self.next.0,
                        found: record.seq.0,
                    });
                }
                Step::Stuck(defect) => {
                    if !refilled && current.refill()? {
                        refilled = true;
                        continue;
                    }
                    if !self.move_on(defect)? {
                        return Ok(None);
                    }
                    refilled = false;
                }
            }
        }
        Ok(None)
    }

    /// Nothing new at the read position: the journal may have gone on to
    /// the next segment (then it is opened: `true`), or the bytes there
    /// are damage with valid records after them (an error).
    fn move_on(&mut self, defect: Option<RecordDefect>) -> Result<bool> {
        let files = segment::list_segments(self.storage.as_ref(), &self.journal_dir)?;
        let Some(current) = self.current.as_mut() else {
            return Ok(false);
        };
        // The segment that holds the next record: the last one after the
        // current one that starts at or before it (records before it are
        // skipped), else the first after the current one (a gap).
        let later = || files.iter().filter(|file| file.first_seq > current.file.first_seq);
        let successor = later()
            .rfind(|file| file.first_seq <= self.next)
            .or_else(|| later().next());
        if let Some(successor) = successor {
            // The old segment is complete before the new one exists: read it once more.
            if current.refill()? {
                return Ok(true);
            }
            if successor.first_seq > self.next {
                return Err(Error::SequenceGap {
                    path: successor.path.clone(),
                    offset: 16,
                    expected: self.next.0,
                    found: successor.first_seq.0,
                });
            }
            self.current = Some(Current::open(self.storage.as_ref(), successor.clone())?);
            return Ok(true);
        }
        if let Some(defect) = defect
            && current.valid_after(self.next)
        {
            let damage = Damage {
                offset: current.offset(),
                end: current.offset(),
                expected: self.next,
                kind: DamageKind::Record(defect),
                valid_after: true,
            };
            return Err(damage_error(&current.file.path, &damage, false));
        }
        Ok(false)
    }

    /// Opens the segment that holds the next record; `false`: the journal
    /// holds no segment yet.
    fn open_segment(&mut self) -> Result<bool> {
        let files = segment::list_segments(self.storage.as_ref(), &self.journal_dir)?;
        if self.next == Seq(0)
            && let Some(first) = files.first()
        {
            self.next = first.first_seq;
        }
        let holder = files.iter().rev().find(|file| file.first_seq <= self.next);
        match (holder, files.first()) {
            (Some(file), _) => {
                self.current = Some(Current::open(self.storage.as_ref(), file.clone())?);
                Ok(true)
            }
            (None, Some(first)) => Err(Error::Corrupt {
                path: first.path.clone(),
                offset: 0,
                detail: format!(
                    "records {} to {} are no longer in the journal (compacted away); it begins at record {}",
                    self.next,
                    first.first_seq.previous(),
                    first.first_seq
                ),
            }),
            (None, None) => Ok(false),
        }
    }
}
