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
//! writer's open). Records already handed on that are cut or written over
//! (by `repair`, or lost to a power loss before their fsync), and the
//! segment being read set aside with none after it, are errors: a reader
//! never goes on to print a second, different history.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{
    RECORD_HEADER_BYTES, RecordDefect, Resync, SEGMENT_HEADER_BYTES, decode_record, decode_segment_header,
    valid_record_follows, written_end,
};
use super::holes::{self, Hole};
use super::reader::{Damage, DamageKind, damage_error};
use super::segment::{self, SegmentFile};
use crate::error::{Error, Result};
use crate::seq::Seq;
use crate::storage::{ReadableFile, Storage};

/// How much an idle poll reads at the read position (a record's header
/// and then some): while it is zeros and the file's length is the same,
/// nothing new was written.
const PROBE_BYTES: usize = 4096;
/// The longest an idle follower goes without reading the rest of its
/// segment whole: a record handed on and then cut, or damage with valid
/// records after it, is found within it.
const QUIET_FOR: std::time::Duration = std::time::Duration::from_secs(1);

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
    /// Where the written bytes of `bytes` end: zeros after it are the
    /// room the writer laid down ahead of its records, not yet written.
    written: usize,
    /// The file's length at the last whole read, and when that was (see
    /// [`Current::quiet`]; `None`: the next read is whole).
    len_read: u64,
    read_whole: Option<std::time::Instant>,
    /// The last record read here: its offset and its 16-byte frame header
    /// (length, checksum, sequence number). A refill reads from it again
    /// and checks it is still there, so a journal cut and written over
    /// below what was handed on is an error, never a second history.
    last: Option<(u64, [u8; RECORD_HEADER_BYTES])>,
}

/// Which records a caller wants, by their payload (the journal never
/// decodes one: the caller's test is opaque to it).
pub type Keep<'a> = &'a dyn Fn(&[u8]) -> bool;

/// What the bytes at the read position hold.
enum Step {
    /// A valid record: its number, where it starts, and its copy when it
    /// is the one due and the caller wants it (else it is stepped over
    /// without one).
    Record {
        seq: Seq,
        offset: u64,
        copy: Option<OwnedRecord>,
    },
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
            written: written_end(&bytes),
            len_read: bytes.len() as u64,
            read_whole: Some(std::time::Instant::now()),
            bytes,
            base: 0,
            pos: SEGMENT_HEADER_BYTES,
            last: None,
        })
    }

    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Reads the record at the read position and moves past it; copies it
    /// out only when it is `due` and `keep` (if any) accepts its payload.
    fn step(&mut self, due: Seq, keep: Option<Keep<'_>>) -> Step {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        if rest.is_empty() || self.pos >= self.written {
            return Step::Stuck(None);
        }
        match decode_record(rest, self.file.first_seq) {
            Ok(raw) => {
                let offset = self.offset();
                let wanted = raw.seq == due && keep.is_none_or(|keep| keep(raw.payload));
                let copy = wanted.then(|| OwnedRecord {
                    seq: raw.seq,
                    payload: raw.payload.to_vec(),
                    path: self.file.path.clone(),
                    offset,
                });
                let mut frame = [0_u8; RECORD_HEADER_BYTES];
                frame.copy_from_slice(&rest[..RECORD_HEADER_BYTES]);
                self.last = Some((offset, frame));
                self.pos += raw.framed_len();
                Step::Record {
                    seq: raw.seq,
                    offset,
                    copy,
                }
            }
            Err(RecordDefect::ShortHeader { .. } | RecordDefect::PastEnd { .. }) => Step::Stuck(None),
            Err(defect) => Step::Stuck(Some(defect)),
        }
    }

    /// Reads the file again from the last record read (a writer may have
    /// written records over its zeros or past them, or set a torn tail
    /// aside and written over it) and checks that record is still there.
    /// Says whether more written bytes than before are there after the
    /// read position.
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::Corrupt`] when the last record read is gone
    /// or replaced: records this follower handed on were cut (by `repair`,
    /// or a power loss took records that were never synced).
    fn refill(&mut self) -> Result<bool> {
        if self.quiet()? {
            return Ok(false);
        }
        let before = self.written.saturating_sub(self.pos);
        let offset = self.offset();
        let (from, kept) = match self.last {
            Some((at, _)) => (at, usize::try_from(offset - at).unwrap_or(usize::MAX)),
            None => (offset, 0),
        };
        let bytes = self
            .reader
            .read_from(from)
            .map_err(|error| Error::io("read", &self.file.path, error))?;
        if let Some((at, frame)) = self.last
            && (bytes.len() < kept || bytes.get(..RECORD_HEADER_BYTES) != Some(&frame[..]))
        {
            return Err(rewritten(&self.file.path, at, frame));
        }
        self.written = written_end(&bytes);
        self.len_read = from + bytes.len() as u64;
        self.read_whole = Some(std::time::Instant::now());
        self.bytes = bytes;
        self.base = from;
        self.pos = kept;
        Ok(self.written.saturating_sub(kept) > before)
    }

    /// Has nothing been written at the read position since the last whole
    /// read? A poll of an idle journal reads [`PROBE_BYTES`] there and the
    /// file's length, not the zeros after the last record (up to a
    /// mebibyte the writer laid down): only zeros at the read position,
    /// the same length, and a whole read less than [`QUIET_FOR`] ago
    /// (which also checks that the last record read is still there, and
    /// finds damage with valid records after it).
    fn quiet(&mut self) -> Result<bool> {
        let io = |error| Error::io("read", &self.file.path, error);
        let recent = self.read_whole.is_some_and(|at| at.elapsed() < QUIET_FOR);
        if self.pos < self.written || !recent {
            return Ok(false);
        }
        let len = self.reader.file_len().map_err(io)?;
        if len != self.len_read {
            return Ok(false);
        }
        let mut probe = [0_u8; PROBE_BYTES];
        let read = self.reader.read_at(self.offset(), &mut probe).map_err(io)?;
        if probe[..read].iter().any(|&byte| byte != 0) {
            return Ok(false);
        }
        self.forget_handed_on();
        Ok(true)
    }

    /// Lets go of the bytes handed on before the last record read (a
    /// whole segment's, after a catch-up): an idle follower holds only
    /// that record's frame and what follows it.
    fn forget_handed_on(&mut self) {
        let keep_from = match self.last {
            Some((at, _)) => usize::try_from(at - self.base).unwrap_or(0),
            None => self.pos,
        }
        .min(self.pos);
        if keep_from == 0 {
            return;
        }
        self.bytes.drain(..keep_from);
        self.bytes.shrink_to_fit();
        self.base += keep_from as u64;
        self.pos -= keep_from;
        self.written = self.written.saturating_sub(keep_from);
    }

    /// Is there a valid record (due `next` or later) after damage at the read position?
    fn valid_after(&self, next: Seq) -> bool {
        let after = self.bytes.get(self.pos + 1..).unwrap_or_default();
        !matches!(valid_record_follows(after, self.file.first_seq, next), Resync::Nothing)
    }
}

/// The error for damage (`defect`) at the read position of `current`
/// when a valid record (`next` or later) follows it there; `None`: none
/// follows (an incomplete or torn end, or nothing).
fn damage_here(current: &Current, defect: Option<RecordDefect>, next: Seq) -> Option<Error> {
    let defect = defect.filter(|_| current.valid_after(next))?;
    let damage = Damage {
        offset: current.offset(),
        end: current.offset(),
        expected: next,
        kind: DamageKind::Record(defect),
        valid_after: true,
    };
    Some(damage_error(&current.file.path, &damage, false))
}

/// The error for a segment whose record at `offset` (framed by `frame`),
/// already handed on, is no longer there.
fn rewritten(path: &Path, offset: u64, frame: [u8; RECORD_HEADER_BYTES]) -> Error {
    let mut seq = [0_u8; 8];
    seq.copy_from_slice(&frame[8..16]);
    Error::FollowedRecordGone {
        path: path.to_path_buf(),
        offset,
        seq: u64::from_le_bytes(seq),
    }
}

/// Reads the journal in `journal_dir` from a sequence number on, as it grows.
pub struct Follower {
    storage: Arc<dyn Storage>,
    journal_dir: PathBuf,
    next: Seq,
    current: Option<Current>,
    /// The holes stepped over, oldest first, until [`Follower::take_skipped`].
    skipped: std::collections::VecDeque<Hole>,
    /// Runs of records (each a whole sealed segment's) the caller knows it
    /// does not want: never read ([`Follower::spare`]).
    spared: Vec<(Seq, Seq)>,
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
            skipped: std::collections::VecDeque::new(),
            spared: Vec::new(),
        }
    }

    /// Records `first..=last` of each run are never read: the caller knows
    /// none of them is one it wants (a segment's id filter said so). A run
    /// that holds the next record due is stepped over as a whole.
    pub fn spare(&mut self, runs: Vec<(Seq, Seq)>) {
        self.spared = runs;
    }

    /// Steps over the spared run that holds the next record due (for
    /// `Seq(0)`, the journal's first); says whether it did.
    fn step_over_spared(&mut self) -> Result<bool> {
        if self.spared.is_empty() {
            return Ok(false);
        }
        let due = if self.next.0 == 0 {
            match segment::list_segments(self.storage.as_ref(), &self.journal_dir)?.first() {
                Some(first) => first.first_seq,
                None => return Ok(false),
            }
        } else {
            self.next
        };
        let Some(&(_, last)) = self.spared.iter().find(|(first, last)| *first <= due && due <= *last) else {
            return Ok(false);
        };
        self.next = last.next();
        self.current = None;
        Ok(true)
    }

    /// The hole (`journal/holes`) it stepped over since this was last
    /// asked, if any: records `repair` set aside, named where they were.
    pub fn take_skipped(&mut self) -> Option<Hole> {
        self.skipped.pop_front()
    }

    /// The sequence number of the next record it will hand on.
    #[must_use]
    pub fn next_seq(&self) -> Seq {
        self.next
    }

    /// Goes on from record `seq` (later than the next one due): the
    /// records before it are known not to be in the journal.
    pub fn skip_to(&mut self, seq: Seq) {
        if seq > self.next {
            self.next = seq;
            self.current = None;
        }
    }

    /// Where the records read end (the segment and the offset after the
    /// last one), when nothing was found after them: no bytes left in the
    /// segment read last, which holds the last record read (or no record,
    /// and is named for the next one), and no later segment. Meaningful
    /// once a poll has found nothing more; `None` otherwise (a torn tail,
    /// an empty segment named for another record, or no segment read yet).
    #[must_use]
    pub fn clean_end(&self) -> Option<(PathBuf, Seq, u64)> {
        let current = self.current.as_ref()?;
        let holds_the_end = current.last.is_some() || current.file.first_seq == self.next;
        (holds_the_end && current.pos >= current.written)
            .then(|| (current.file.path.clone(), current.file.first_seq, current.offset()))
    }

    /// The first record of the segment the reading ended in, when it read
    /// no record there (the segment holds only its header). Such a segment
    /// may be named for records an earlier one holds, which this follower,
    /// starting in it, never saw: only a scan of the whole journal tells,
    /// unless it is the journal's first segment.
    #[must_use]
    pub fn empty_end(&self) -> Option<Seq> {
        let current = self.current.as_ref()?;
        current.last.is_none().then_some(current.file.first_seq)
    }

    /// The next record, if it is on disk and at most `limit`; `Ok(None)`:
    /// not (yet). With `keep`, records whose payload it refuses are
    /// stepped over without being copied: the next record it accepts.
    ///
    /// # Errors
    /// [`Error::Io`]; corruption naming the file and offset where the
    /// records from the next one due cannot be read (damage with valid
    /// records after it, a gap, records compacted away before they were read).
    pub fn poll_where(&mut self, limit: Seq, keep: Option<Keep<'_>>) -> Result<Option<OwnedRecord>> {
        let mut refilled = false;
        while self.next <= limit {
            if self.current.is_none() && self.step_over_spared()? {
                continue;
            }
            if self.current.is_none() && !self.open_segment()? {
                return Ok(None);
            }
            let Some(current) = self.current.as_mut() else {
                return Ok(None);
            };
            match current.step(self.next, keep) {
                Step::Record { seq, .. } if seq < self.next => {}
                Step::Record { seq, copy, .. } if seq == self.next => {
                    self.next = self.next.next();
                    match copy {
                        Some(record) => return Ok(Some(record)),
                        None => refilled = false,
                    }
                }
                Step::Record { seq, offset, .. } => {
                    return Err(Error::SequenceGap {
                        path: current.file.path.clone(),
                        offset,
                        expected: self.next.0,
                        found: seq.0,
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
        if self.skip_recorded_hole() {
            return Ok(true);
        }
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
            // The old segment is complete before the new one exists: read it
            // once more, whole.
            current.read_whole = None;
            if current.refill()? {
                return Ok(true);
            }
            // Damage with valid records after it in this segment is that
            // damage, not a gap before the next segment.
            if let Some(error) = damage_here(current, defect, self.next) {
                return Err(error);
            }
            if successor.first_seq > self.next && !files.iter().any(|file| file.path == current.file.path) {
                // The segment read was deleted under this reader, and the
                // records after it with it: a `compact` it fell behind.
                return Err(Error::CompactedAway {
                    from: self.next.0,
                    last: successor.first_seq.previous().0,
                    resumes: successor.first_seq.0,
                });
            }
            if successor.first_seq > self.next {
                return Err(Error::SequenceGap {
                    path: successor.path.clone(),
                    offset: 16,
                    expected: self.next.0,
                    found: successor.first_seq.0,
                });
            }
            // The next segment, unless it is spared: then the records
            // after it are due, and the caller's loop opens their segment.
            self.current = None;
            if !self.step_over_spared()? {
                self.current = Some(Current::open(self.storage.as_ref(), successor.clone())?);
            }
            return Ok(true);
        }
        if !files.iter().any(|file| file.path == current.file.path) {
            // Compaction never removes the last segment: this one was set
            // aside (by `repair`) or deleted, with records it handed on.
            return Err(match current.last {
                Some((at, frame)) => rewritten(&current.file.path, at, frame),
                None => Error::FollowedRecordGone {
                    path: current.file.path.clone(),
                    offset: current.offset(),
                    seq: self.next.previous().0,
                },
            });
        }
        match damage_here(current, defect, self.next) {
            Some(error) => Err(error),
            None => Ok(false),
        }
    }

    /// Steps over damaged bytes at the read position that `repair` set
    /// aside and recorded as a hole (`journal/holes`) for the record due:
    /// the next record due is then the one after the hole. Only bytes
    /// that are there are stepped over, and only where the hole begins.
    fn skip_recorded_hole(&mut self) -> bool {
        let Some(current) = self.current.as_mut() else {
            return false;
        };
        if current.pos >= current.written {
            // A clean end (the common case while following): no damage here.
            return false;
        }
        let holes = holes::read(self.storage.as_ref(), &self.journal_dir);
        // The record due is the hole's first, or one of its records or a
        // later one (a reader from a later record steps over it in silence).
        let Some(hole) = holes
            .starting_at(current.file.first_seq, current.offset())
            .filter(|hole| hole.first <= self.next)
        else {
            return false;
        };
        let span = usize::try_from(hole.end - current.offset()).unwrap_or(usize::MAX);
        if current.bytes.len() - current.pos < span {
            return false;
        }
        current.pos += span;
        if hole.last >= self.next {
            tracing::info!(
                path = %current.file.path.display(), offset = hole.offset, from = %self.next, to = %hole.last,
                "stepping over records `repair` set aside"
            );
            self.skipped.push_back(Hole {
                first: self.next,
                ..hole.clone()
            });
            self.next = hole.last.next();
        }
        true
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
            (None, Some(first)) => Err(Error::CompactedAway {
                from: self.next.0,
                last: first.first_seq.previous().0,
                resumes: first.first_seq.0,
            }),
            (None, None) => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::format::{encode_record, encode_segment_header};
    use crate::storage::RealStorage;

    /// A segment starting at record 1 holding `payloads` as records 1, 2, ...
    fn segment_bytes(payloads: &[&[u8]]) -> Vec<u8> {
        let mut bytes = encode_segment_header(Seq(1)).to_vec();
        for (seq, payload) in (1..).zip(payloads) {
            encode_record(&mut bytes, Seq(1), Seq(seq), payload);
        }
        bytes
    }

    /// A journal directory with one segment of `payloads`, a follower from
    /// record 1 that has read all of them, and the segment's path.
    fn followed(payloads: &[&[u8]]) -> (tempfile::TempDir, Follower, PathBuf) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join(crate::layout::segment_name(Seq(1)));
        std::fs::write(&path, segment_bytes(payloads)).expect("file system");
        let mut follower = Follower::new(Arc::new(RealStorage), dir.path(), Seq(1));
        for (seq, payload) in (1..).zip(payloads) {
            let record = follower
                .poll_where(Seq(u64::MAX), None)
                .expect("a poll")
                .expect("a record");
            assert_eq!((record.seq, record.payload.as_slice()), (Seq(seq), *payload));
        }
        assert_eq!(follower.poll_where(Seq(u64::MAX), None).expect("a poll"), None);
        (dir, follower, path)
    }

    fn assert_cut_reported(follower: &mut Follower) {
        match follower.poll_where(Seq(u64::MAX), None) {
            Err(Error::FollowedRecordGone { .. }) => {}
            other => panic!("expected the cut to be reported, got {other:?}"),
        }
    }

    /// `segment_bytes(payloads)` followed by a mebibyte of zeros, as a
    /// preallocating writer leaves a segment.
    fn preallocated(payloads: &[&[u8]]) -> Vec<u8> {
        let mut bytes = segment_bytes(payloads);
        bytes.resize(1 << 20, 0);
        bytes
    }

    #[test]
    fn an_idle_poll_reads_a_probe_not_the_zeros_and_sees_a_record_written_over_them() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join(crate::layout::segment_name(Seq(1)));
        std::fs::write(&path, preallocated(&[b"{\"a\":1}"])).expect("file system");
        let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = Arc::clone(&read);
        let storage = crate::storage::CountingStorage::new(
            Arc::new(RealStorage),
            Arc::new(move |bytes| {
                counted.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
            }),
        );
        let mut follower = Follower::new(Arc::new(storage), dir.path(), Seq(1));
        let first = follower
            .poll_where(Seq(u64::MAX), None)
            .expect("a poll")
            .expect("record 1");
        assert_eq!(first.seq, Seq(1));
        assert_eq!(follower.poll_where(Seq(u64::MAX), None).expect("a poll"), None);
        read.store(0, std::sync::atomic::Ordering::Relaxed);
        for _ in 0..50 {
            assert_eq!(follower.poll_where(Seq(u64::MAX), None).expect("a poll"), None);
        }
        let idle = read.load(std::sync::atomic::Ordering::Relaxed);
        assert!(idle <= 50 * PROBE_BYTES as u64, "50 idle polls read {idle} bytes");
        // A record written over the zeros, the file's length unchanged.
        std::fs::write(&path, preallocated(&[b"{\"a\":1}", b"{\"a\":2}"])).expect("file system");
        let second = follower
            .poll_where(Seq(u64::MAX), None)
            .expect("a poll")
            .expect("record 2");
        assert_eq!((second.seq, second.payload.as_slice()), (Seq(2), &b"{\"a\":2}"[..]));
    }

    #[test]
    fn records_written_over_with_zeros_below_what_was_handed_on_are_an_error_within_a_second() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join(crate::layout::segment_name(Seq(1)));
        std::fs::write(&path, preallocated(&[b"{\"a\":1}", b"{\"a\":2}"])).expect("file system");
        let mut follower = Follower::new(Arc::new(RealStorage), dir.path(), Seq(1));
        while follower.poll_where(Seq(u64::MAX), None).expect("a poll").is_some() {}
        // `repair` sets record 2 aside: zeros over it, the size kept.
        std::fs::write(&path, preallocated(&[b"{\"a\":1}"])).expect("file system");
        let started = std::time::Instant::now();
        let reported = std::iter::repeat_with(|| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            follower.poll_where(Seq(u64::MAX), None).err()
        })
        .take_while(|_| started.elapsed() < QUIET_FOR * 5)
        .find_map(|error| error);
        assert!(
            matches!(reported, Some(Error::FollowedRecordGone { .. })),
            "{reported:?}"
        );
    }

    #[test]
    fn growth_after_the_last_record_is_read_on() {
        let (_dir, mut follower, path) = followed(&[b"{\"a\":1}", b"{\"a\":2}"]);
        std::fs::write(&path, segment_bytes(&[b"{\"a\":1}", b"{\"a\":2}", b"{\"a\":3}"])).expect("file system");
        let record = follower
            .poll_where(Seq(u64::MAX), None)
            .expect("a poll")
            .expect("the new record");
        assert_eq!((record.seq, record.payload.as_slice()), (Seq(3), &b"{\"a\":3}"[..]));
    }

    #[test]
    fn records_cut_below_what_was_handed_on_are_an_error_not_silence() {
        let (_dir, mut follower, path) = followed(&[b"{\"a\":1}", b"{\"a\":2}", b"{\"a\":3}"]);
        std::fs::write(&path, segment_bytes(&[b"{\"a\":1}"])).expect("file system");
        assert_cut_reported(&mut follower);
    }

    #[test]
    fn records_rewritten_below_what_was_handed_on_are_an_error_not_a_second_history() {
        // Same lengths: the new record 4 starts exactly where the old
        // record 3 ended, so without the check it would be handed on.
        let (_dir, mut follower, path) = followed(&[b"{\"a\":1}", b"{\"a\":2}", b"{\"a\":3}"]);
        std::fs::write(
            &path,
            segment_bytes(&[b"{\"a\":1}", b"{\"b\":2}", b"{\"b\":3}", b"{\"b\":4}"]),
        )
        .expect("file system");
        assert_cut_reported(&mut follower);
    }

    #[test]
    fn records_compacted_away_under_a_reader_that_fell_behind_are_an_error_not_a_jump() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let journal = dir.path();
        let write = |first: u64, payloads: &[&[u8]]| {
            let mut bytes = encode_segment_header(Seq(first)).to_vec();
            for (seq, payload) in (first..).zip(payloads) {
                encode_record(&mut bytes, Seq(first), Seq(seq), payload);
            }
            let path = journal.join(crate::layout::segment_name(Seq(first)));
            std::fs::write(&path, bytes).expect("file system");
            path
        };
        let first = write(1, &[b"{\"a\":1}", b"{\"a\":2}"]);
        let second = write(3, &[b"{\"a\":3}"]);
        write(4, &[b"{\"a\":4}"]);
        let mut follower = Follower::new(Arc::new(RealStorage), journal, Seq(1));
        for seq in 1..=2 {
            let record = follower
                .poll_where(Seq(u64::MAX), None)
                .expect("a poll")
                .expect("a record");
            assert_eq!(record.seq, Seq(seq));
        }
        // `compact` deletes the segment being read and the next one.
        std::fs::remove_file(first).expect("file system");
        std::fs::remove_file(second).expect("file system");
        match follower.poll_where(Seq(u64::MAX), None) {
            Err(Error::CompactedAway {
                from: 3,
                last: 3,
                resumes: 4,
            }) => {}
            other => panic!("expected records 3 to 3 compacted away, got {other:?}"),
        }
    }

    #[test]
    fn damage_with_records_after_it_in_a_segment_that_is_not_the_last_is_that_damage_not_a_gap() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let first = dir.path().join(crate::layout::segment_name(Seq(1)));
        let mut bytes = segment_bytes(&[b"{\"a\":1}", b"{\"a\":2}", b"{\"a\":3}"]);
        let second_payload = SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES + 7 + RECORD_HEADER_BYTES + 2;
        bytes[second_payload] ^= 0x01;
        std::fs::write(&first, bytes).expect("file system");
        let mut next = encode_segment_header(Seq(4)).to_vec();
        encode_record(&mut next, Seq(4), Seq(4), b"{\"a\":4}");
        std::fs::write(dir.path().join(crate::layout::segment_name(Seq(4))), next).expect("file system");
        let mut follower = Follower::new(Arc::new(RealStorage), dir.path(), Seq(1));
        assert_eq!(
            follower
                .poll_where(Seq(u64::MAX), None)
                .expect("a poll")
                .map(|record| record.seq),
            Some(Seq(1))
        );
        match follower.poll_where(Seq(u64::MAX), None) {
            Err(Error::ChecksumMismatch { offset, .. }) => {
                assert_eq!(offset, (SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES + 7) as u64);
            }
            other => panic!("expected the damage to record 2, got {other:?}"),
        }
    }

    #[test]
    fn the_segment_being_read_set_aside_is_an_error_not_silence() {
        let (dir, mut follower, path) = followed(&[b"{\"a\":1}"]);
        std::fs::rename(&path, dir.path().join("00000000000000000001.seg.broken")).expect("file system");
        assert_cut_reported(&mut follower);
    }
}
