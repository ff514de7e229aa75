//! Reading the journal back. The reader knows bytes and sequence numbers,
//! never events; it changes nothing.
//!
//! [`scan`] checks every record of every segment and describes what it
//! found: the runs of valid, contiguous records and the damage between
//! them, resuming after damage at the next valid record (records are bound
//! to their segment by their CRC, so stale or foreign bytes never pass as
//! records). `chain.rs` then answers the question recovery asks of a scan
//! for each possible starting point. [`replay`] hands on the payloads of a
//! range of records.

use std::path::{Path, PathBuf};

pub use super::damage::{Damage, DamageKind, damage_error};
use super::format::{
    self, HeaderDefect, RecordDefect, Resync, SEGMENT_HEADER_BYTES, decode_record, decode_segment_header,
    framed_len_at, valid_record_follows,
};
use super::holes::{self, Holes};
use super::segment::{self, SegmentFile};
use super::tail::{self, TailMarker};
use crate::error::{Error, Result};
use crate::seq::Seq;
use crate::storage::Storage;

/// Where a record sits, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct RecordPlace<'a> {
    /// Its segment file.
    pub path: &'a Path,
    /// Byte offset of its header.
    pub offset: u64,
}

/// One record as the reader hands it on: its sequence number, its payload
/// (opaque bytes) and where it sits.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    /// The record's sequence number.
    pub seq: Seq,
    /// The payload, as written.
    pub payload: &'a [u8],
    /// Where the record sits, for error messages.
    pub place: RecordPlace<'a>,
}

/// What the reader calls for each record it hands on.
pub type OnRecord<'a> = dyn FnMut(RawRecord<'_>) -> Result<()> + 'a;

/// Valid records with contiguous sequence numbers, back to back in one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The first record's sequence number.
    pub first: Seq,
    /// The last record's sequence number.
    pub last: Seq,
    /// Byte offset of the first record's header.
    pub start: u64,
    /// Byte offset of the last record's header (so that record can be read
    /// alone).
    pub last_start: u64,
    /// Byte offset just past the last record.
    pub end: u64,
}

/// One segment as [`scan`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    /// The file.
    pub path: PathBuf,
    /// The first sequence number its name announces.
    pub first_seq: Seq,
    /// Its length in bytes.
    pub len: u64,
    /// Where its written bytes end: only zeros follow, to `len` (the room
    /// its writer laid down ahead of its records), and the log ends there.
    pub end: u64,
    /// Its runs of valid records, in file order.
    pub runs: Vec<Run>,
    /// Its damaged spans, in file order.
    pub damages: Vec<Damage>,
    /// Bytes that are not zeros in the room after the records of a sealed
    /// segment, where the next segment goes on at the very next record:
    /// they hide no record (every record is there), so readers step over
    /// them; `verify` names them and `repair` sets them aside
    /// ([`JournalScan::settle_strays`]). `(offset, end)`.
    pub stray: Option<(u64, u64)>,
}

impl SegmentScan {
    /// Byte offset just past its last valid record (the header's end if none).
    #[must_use]
    pub fn valid_end(&self) -> u64 {
        self.runs.last().map_or(SEGMENT_HEADER_BYTES as u64, |run| run.end)
    }

    /// Does its header hold up (no damage at offset 0)?
    #[must_use]
    pub fn header_ok(&self) -> bool {
        !self
            .damages
            .first()
            .is_some_and(|damage| matches!(damage.kind, DamageKind::Header(_) | DamageKind::NameMismatch { .. }))
    }

    /// The error describing `damage` of this segment, as a reader reports it.
    #[must_use]
    pub fn error(&self, damage: &Damage, is_last: bool) -> Error {
        damage_error(&self.path, damage, is_last)
    }
}

/// The whole journal as [`scan`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalScan {
    /// The journal directory.
    pub dir: PathBuf,
    /// Every segment, in order of the sequence number its name announces.
    pub segments: Vec<SegmentScan>,
    /// What the tail marker says.
    pub tail: TailMarker,
    /// The holes `repair` recorded (`journal/holes`).
    pub holes: Holes,
    /// Were records or segments after those a bounded scan (the audit
    /// queries') needed left unread?
    pub unread: bool,
}

/// Scans every segment of the journal in `journal_dir` (none if it does not
/// exist), checking every record. Changes nothing.
///
/// # Errors
/// [`Error::Io`] reading a file or the directory; [`Error::Corrupt`] for a
/// file in the journal directory that has no business there.
pub fn scan(storage: &dyn Storage, journal_dir: &Path) -> Result<JournalScan> {
    // The marker first: a writer creates a segment before it names it
    // there, so a reader racing a roll never sees the marker ahead of the
    // listing.
    let tail = tail::read(storage, journal_dir);
    let holes = holes::read(storage, journal_dir);
    let files = segment::list_segments(storage, journal_dir)?;
    let mut segments = Vec::with_capacity(files.len());
    for file in &files {
        let bytes = read_segment(storage, file)?;
        segments.push(scan_segment(file, &bytes));
    }
    let mut scan = JournalScan {
        dir: journal_dir.to_path_buf(),
        segments,
        tail,
        holes,
        unread: false,
    };
    scan.settle_strays();
    Ok(scan)
}

impl JournalScan {
    /// Moves damage that hides no record out of the way: bytes that are
    /// not zeros after the last record of a sealed segment (bit rot in the
    /// room its writer laid down, say), with no valid record after them in
    /// it, when the next segment's header holds and it starts at the very
    /// record due. Every record is there, so they become the segment's
    /// [`SegmentScan::stray`] bytes, not damage that breaks the journal.
    pub fn settle_strays(&mut self) {
        for index in 1..self.segments.len() {
            let (before, after) = self.segments.split_at_mut(index);
            let (segment, next) = (&mut before[index - 1], &after[0]);
            let Some(damage) = segment.damages.last() else {
                continue;
            };
            let at_records_end = damage.offset == segment.valid_end()
                && segment.runs.last().is_none_or(|run| run.last.next() == damage.expected);
            let hides_nothing = matches!(damage.kind, DamageKind::Record(_))
                && !damage.valid_after
                && damage.end == segment.end
                && at_records_end
                && next.header_ok()
                && next.first_seq == damage.expected;
            if hides_nothing {
                segment.stray = Some((damage.offset, damage.end));
                segment.damages.pop();
            }
        }
    }

    /// The sealed segments (every one but the last) whose records are one
    /// clean run, each with that run: what the journal's hints (the time
    /// index, the id filters) describe.
    pub fn sealed_clean_runs(&self) -> impl Iterator<Item = (&SegmentScan, Run)> {
        let sealed = self.segments.len().saturating_sub(1);
        self.segments[..sealed]
            .iter()
            .filter(|segment| segment.damages.is_empty())
            .filter_map(|segment| match segment.runs[..] {
                [run] => Some((segment, run)),
                _ => None,
            })
    }
}

/// The bytes of a segment file.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn read_segment(storage: &dyn Storage, file: &SegmentFile) -> Result<Vec<u8>> {
    storage
        .read(&file.path)
        .map_err(|error| Error::io("read", &file.path, error))
}

/// Where the written bytes of the file at `path` end (past it only
/// zeros), read from its end backwards a piece at a time, so only the
/// zeros after the last record and one piece are read.
///
/// # Errors
/// The operating system's error.
pub fn written_len(storage: &dyn Storage, path: &Path) -> std::io::Result<u64> {
    const PIECE: usize = 64 << 10;
    let mut file = storage.open_read(path)?;
    let mut end = file.file_len()?;
    let mut piece = vec![0_u8; PIECE];
    while end > 0 {
        let start = end.saturating_sub(PIECE as u64);
        let wanted = usize::try_from(end - start).unwrap_or(PIECE).min(PIECE);
        let read = file.read_at(start, &mut piece[..wanted])?;
        let written = format::written_end(&piece[..read]);
        if written > 0 {
            return Ok(start + written as u64);
        }
        end = start;
    }
    Ok(0)
}

/// Scans one segment's bytes.
#[must_use]
pub fn scan_segment(file: &SegmentFile, bytes: &[u8]) -> SegmentScan {
    scan_segment_through(file, bytes, Seq(u64::MAX))
}

/// Scans one segment's bytes, stopping after record `through`.
#[must_use]
pub fn scan_segment_through(file: &SegmentFile, bytes: &[u8], through: Seq) -> SegmentScan {
    let mut scan = SegmentScan {
        path: file.path.clone(),
        first_seq: file.first_seq,
        len: bytes.len() as u64,
        end: format::written_end(bytes).max(SEGMENT_HEADER_BYTES.min(bytes.len())) as u64,
        runs: Vec::new(),
        damages: Vec::new(),
        stray: None,
    };
    let first_seq = match decode_segment_header(bytes) {
        Ok(header) if header == file.first_seq && header.0 != 0 => header,
        Ok(header) => {
            scan.damages
                .push(whole_file(bytes, file.first_seq, DamageKind::NameMismatch { header }));
            return scan;
        }
        // A header whose CRC fails (a flipped bit) still leaves the records
        // readable under the name's sequence number; anything else (another
        // format, another kind of file) leaves nothing to trust.
        Err(defect @ HeaderDefect::Checksum { .. }) if file.first_seq.0 != 0 => {
            scan.damages.push(Damage {
                offset: 0,
                end: SEGMENT_HEADER_BYTES as u64,
                expected: file.first_seq,
                kind: DamageKind::Header(defect),
                valid_after: true,
            });
            file.first_seq
        }
        Err(defect) => {
            scan.damages
                .push(whole_file(bytes, file.first_seq, DamageKind::Header(defect)));
            return scan;
        }
    };
    scan_records(&mut scan, bytes, first_seq, through);
    scan.end = scan.end.max(scan.valid_end());
    if let Some(header) = scan.damages.first_mut().filter(|damage| damage.offset == 0) {
        header.valid_after = !scan.runs.is_empty();
    }
    scan
}

fn whole_file(bytes: &[u8], expected: Seq, kind: DamageKind) -> Damage {
    Damage {
        offset: 0,
        end: bytes.len() as u64,
        expected,
        kind,
        valid_after: false,
    }
}

/// Walks the records after the header, resuming after damage, until
/// record `through` or the zeros after the written bytes (`scan.end`).
fn scan_records(scan: &mut SegmentScan, bytes: &[u8], first_seq: Seq, through: Seq) {
    let written = usize::try_from(scan.end).unwrap_or(usize::MAX);
    let mut offset = SEGMENT_HEADER_BYTES;
    let mut expected = first_seq;
    let mut run: Option<Run> = None;
    while offset < written {
        let rest = bytes.get(offset..).unwrap_or_default();
        match decode_record(rest, first_seq) {
            Ok(raw) if raw.seq == expected => {
                extend_run(&mut run, raw.seq, offset as u64, (offset + raw.framed_len()) as u64);
                expected = raw.seq.next();
                offset += raw.framed_len();
                if raw.seq >= through {
                    break;
                }
            }
            Ok(raw) => {
                scan.runs.extend(run.take());
                scan.damages.push(Damage {
                    offset: offset as u64,
                    end: offset as u64,
                    expected,
                    kind: DamageKind::Sequence { found: raw.seq },
                    valid_after: true,
                });
                expected = raw.seq;
            }
            Err(defect) => {
                scan.runs.extend(run.take());
                let after = rest.get(1..).unwrap_or_default();
                let resumed = match valid_record_follows(after, first_seq, expected) {
                    Resync::Found(at) => Some(offset + 1 + at),
                    Resync::Nothing => None,
                    Resync::GaveUp => {
                        scan.damages
                            .push(damage_to_end(offset, written, expected, defect, true));
                        return;
                    }
                };
                let Some(resumed) = resumed else {
                    scan.damages
                        .push(damage_to_end(offset, written, expected, defect, false));
                    return;
                };
                scan.damages.push(Damage {
                    offset: offset as u64,
                    end: resumed as u64,
                    expected,
                    kind: DamageKind::Record(defect),
                    valid_after: true,
                });
                // The record found decides what is due from there on.
                let found = bytes
                    .get(resumed..)
                    .and_then(|rest| decode_record(rest, first_seq).ok());
                expected = found.map_or(expected, |raw| raw.seq);
                offset = resumed;
            }
        }
    }
    scan.runs.extend(run);
}

/// Adds the record `seq` at `start..end` to the current run (or starts one).
fn extend_run(run: &mut Option<Run>, seq: Seq, start: u64, end: u64) {
    match run {
        Some(current) => {
            current.last = seq;
            current.last_start = start;
            current.end = end;
        }
        None => {
            *run = Some(Run {
                first: seq,
                last: seq,
                start,
                last_start: start,
                end,
            });
        }
    }
}

fn damage_to_end(offset: usize, len: usize, expected: Seq, defect: RecordDefect, valid_after: bool) -> Damage {
    Damage {
        offset: offset as u64,
        end: len as u64,
        expected,
        kind: DamageKind::Record(defect),
        valid_after,
    }
}

/// Hands on the payloads of records `from..=through` (those the chain
/// recovery chose), reading only the segments that hold them. Each record
/// is checked again as it is read.
///
/// # Errors
/// [`Error::Io`]; corruption if a record is no longer what the scan found
/// (the file changed meanwhile); what `on_record` returned.
pub fn replay(
    storage: &dyn Storage,
    scan: &JournalScan,
    from: Seq,
    through: Seq,
    on_record: &mut OnRecord<'_>,
) -> Result<()> {
    if from > through {
        return Ok(());
    }
    for segment in &scan.segments {
        let wanted = segment
            .runs
            .iter()
            .filter(|run| run.last >= from && run.first <= through);
        for run in wanted {
            replay_run(storage, segment, run, from, through, on_record)?;
        }
    }
    Ok(())
}

/// How much of a segment [`replay`] reads at a time (more when one record
/// is larger): the records are handed on from a window, never from the
/// whole segment, so a replay beside a growing state costs the window.
const REPLAY_WINDOW: usize = 4 << 20;

/// Hands on the records `from..=through` of `run`, reading its bytes in
/// windows of [`REPLAY_WINDOW`], each record checked again (the file may
/// have changed since the scan).
fn replay_run(
    storage: &dyn Storage,
    segment: &SegmentScan,
    run: &Run,
    from: Seq,
    through: Seq,
    on_record: &mut OnRecord<'_>,
) -> Result<()> {
    let mut file = storage
        .open_read(&segment.path)
        .map_err(|error| Error::io("read", &segment.path, error))?;
    let (mut offset, mut seq) = (run.start, run.first);
    let mut window = Vec::new();
    while seq <= run.last && seq <= through {
        let changed = |seq: Seq, offset: u64| Error::Corrupt {
            path: segment.path.clone(),
            offset,
            detail: format!("record {seq} changed while it was read (another process is repairing the store?)"),
        };
        // The window from `offset`: at least the next record whole.
        let left = usize::try_from(run.end.saturating_sub(offset)).unwrap_or(usize::MAX);
        let mut wanted = left.min(REPLAY_WINDOW);
        read_window(file.as_mut(), &segment.path, offset, wanted, &mut window)?;
        if let Some(framed) = framed_len_at(&window, 0).filter(|&framed| framed > window.len() && framed <= left) {
            wanted = framed;
            read_window(file.as_mut(), &segment.path, offset, wanted, &mut window)?;
        }
        let mut at = 0;
        while seq <= run.last && seq <= through {
            let Some(framed) = framed_len_at(&window, at).filter(|&framed| at + framed <= window.len()) else {
                break;
            };
            let record_offset = offset + at as u64;
            let Some(raw) = decode_record(&window[at..at + framed], segment.first_seq)
                .ok()
                .filter(|raw| raw.seq == seq)
            else {
                return Err(changed(seq, record_offset));
            };
            if seq >= from {
                on_record(RawRecord {
                    seq,
                    payload: raw.payload,
                    place: RecordPlace {
                        path: &segment.path,
                        offset: record_offset,
                    },
                })?;
            }
            at += framed;
            seq = if seq == run.last { Seq(u64::MAX) } else { seq.next() };
        }
        if at == 0 && seq <= run.last && seq <= through {
            // Not one whole record where the scan found one.
            return Err(changed(seq, offset));
        }
        offset += at as u64;
    }
    Ok(())
}

/// Reads `wanted` bytes of `file` from `offset` into `window` (fewer at
/// the end of the file).
fn read_window(
    file: &mut dyn crate::storage::ReadableFile,
    path: &Path,
    offset: u64,
    wanted: usize,
    window: &mut Vec<u8>,
) -> Result<()> {
    window.clear();
    window.resize(wanted, 0);
    let mut filled = 0;
    while filled < wanted {
        let read = file
            .read_at(offset + filled as u64, &mut window[filled..])
            .map_err(|error| Error::io("read", path, error))?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    window.truncate(filled);
    Ok(())
}

/// Hands on record `seq` alone. When it ends a run (the journal's last
/// record, say) only its own bytes are read, not its whole segment: a writer's open asks for the last record's time after
/// the state is built, and a segment read then would leave a hole of its
/// size in the heap.
///
/// # Errors
/// As [`replay`].
pub fn replay_one(storage: &dyn Storage, scan: &JournalScan, seq: Seq, on_record: &mut OnRecord<'_>) -> Result<()> {
    // The last run that holds `seq` (the one `replay` hands on last),
    // when `seq` ends it.
    let found = scan.segments.iter().rev().find_map(|segment| {
        segment
            .runs
            .iter()
            .rev()
            .find(|run| run.first <= seq && seq <= run.last)
            .map(|run| (segment, run))
    });
    let Some((segment, run)) = found.filter(|(_, run)| run.last == seq) else {
        return replay(storage, scan, seq, seq, on_record);
    };
    let mut bytes = vec![0; usize::try_from(run.end.saturating_sub(run.last_start)).unwrap_or(0)];
    let read = storage
        .open_read(&segment.path)
        .and_then(|mut file| file.read_at(run.last_start, &mut bytes))
        .map_err(|error| Error::io("read", &segment.path, error))?;
    bytes.truncate(read);
    let Some(raw) = decode_record(&bytes, segment.first_seq)
        .ok()
        .filter(|raw| raw.seq == seq)
    else {
        return Err(Error::Corrupt {
            path: segment.path.clone(),
            offset: run.last_start,
            detail: format!("record {seq} changed while it was read (another process is repairing the store?)"),
        });
    };
    on_record(RawRecord {
        seq,
        payload: raw.payload,
        place: RecordPlace {
            path: &segment.path,
            offset: run.last_start,
        },
    })
}

/// The records of a segment's `bytes` from its header on, each checked,
/// while they are valid and in order: `Ok(record)` for each, then one
/// `Err(())` where damage, a gap or a bad header interrupts them (a caller
/// that needs to know more scans the segment whole). Ends cleanly at the
/// end of the written bytes (the zeros after them are the end of the log).
pub fn clean_records<'a>(
    file: &'a SegmentFile,
    bytes: &'a [u8],
) -> impl Iterator<Item = std::result::Result<RawRecord<'a>, ()>> + 'a {
    let header = decode_segment_header(bytes)
        .ok()
        .filter(|&first| first == file.first_seq);
    let written = format::written_end(bytes);
    let mut offset = SEGMENT_HEADER_BYTES;
    let mut expected = header;
    std::iter::from_fn(move || {
        let due = expected?;
        if offset >= written {
            return None;
        }
        let decoded = bytes
            .get(offset..)
            .and_then(|rest| decode_record(rest, file.first_seq).ok())
            .filter(|raw| raw.seq == due);
        let Some(raw) = decoded else {
            expected = None;
            return Some(Err(()));
        };
        let record = RawRecord {
            seq: due,
            payload: raw.payload,
            place: RecordPlace {
                path: &file.path,
                offset: offset as u64,
            },
        };
        offset += raw.framed_len();
        expected = Some(due.next());
        Some(Ok(record))
    })
    .chain(std::iter::once(Err(())).filter(move |_| header.is_none()))
}

/// The records of `run`, a run the scan found in these very `bytes` (so
/// their checksums are not computed again: only each header is read back
/// and its sequence number compared).
pub fn scanned_records<'a>(
    segment: &'a SegmentScan,
    bytes: &'a [u8],
    run: &Run,
) -> impl Iterator<Item = RawRecord<'a>> + 'a {
    let mut offset = usize::try_from(run.start).unwrap_or(usize::MAX);
    let mut seq = run.first;
    let last = run.last;
    std::iter::from_fn(move || {
        if seq > last {
            return None;
        }
        let (frame_seq, payload) = format::frame_at(bytes, offset)?;
        if frame_seq != seq {
            return None;
        }
        let record = RawRecord {
            seq,
            payload,
            place: RecordPlace {
                path: &segment.path,
                offset: offset as u64,
            },
        };
        offset += format::framed_len(payload.len());
        seq = if seq == last { Seq(u64::MAX) } else { seq.next() };
        Some(record)
    })
}

/// The records of `run`, a run `scan` found in `bytes` (the segment's
/// content), each checked again as it is read.
///
/// # Errors
/// (Each item) corruption if a record is no longer what the scan found.
pub fn run_records<'a>(
    segment: &'a SegmentScan,
    bytes: &'a [u8],
    run: &Run,
) -> impl Iterator<Item = Result<RawRecord<'a>>> + 'a {
    let mut offset = usize::try_from(run.start).unwrap_or(usize::MAX);
    let mut seq = run.first;
    let last = run.last;
    std::iter::from_fn(move || {
        if seq > last {
            return None;
        }
        let changed = Error::Corrupt {
            path: segment.path.clone(),
            offset: offset as u64,
            detail: format!("record {seq} changed while it was read (another process is repairing the store?)"),
        };
        let decoded = bytes
            .get(offset..)
            .and_then(|rest| decode_record(rest, segment.first_seq).ok())
            .filter(|raw| raw.seq == seq);
        let Some(raw) = decoded else {
            seq = Seq(u64::MAX);
            return Some(Err(changed));
        };
        let record = RawRecord {
            seq,
            payload: raw.payload,
            place: RecordPlace {
                path: &segment.path,
                offset: offset as u64,
            },
        };
        offset += raw.framed_len();
        seq = if seq == last { Seq(u64::MAX) } else { seq.next() };
        Some(Ok(record))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RealStorage;

    #[test]
    fn the_written_length_is_found_from_the_end_through_the_zeros() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("file");
        for (len, last) in [
            (0, None),
            (10, Some(0)),
            (1 << 20, Some(5)),
            (1 << 20, Some((1 << 20) - 1)),
            (200_000, Some(70_000)),
            (200_000, None),
        ] {
            let mut bytes = vec![0_u8; len];
            if let Some(at) = last {
                bytes[at] = 1;
            }
            std::fs::write(&path, &bytes).expect("file system");
            assert_eq!(
                written_len(&RealStorage, &path).ok(),
                Some(last.map_or(0, |at| at as u64 + 1)),
                "{len} bytes, the last non-zero at {last:?}"
            );
        }
        assert!(written_len(&RealStorage, &dir.path().join("missing")).is_err());
    }
}
