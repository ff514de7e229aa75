//! Reading the journal back: segments in order, every record checked,
//! events handed to a callback; what to do with a torn tail; repair.
//!
//! The rule (checklist items 2–5 in the spec): only the last segment may end
//! in a torn tail — a damaged or incomplete final record with no valid record
//! after it, zero-filled space included. Everything else is corruption,
//! reported with its file and byte offset, never skipped or truncated.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::event::{EventRecord, PayloadError, Seq, decode_payload};
use crate::record::{
    self, HeaderDefect, RecordDefect, SEGMENT_HEADER_BYTES, decode_record, decode_segment_header, valid_record_follows,
};
use crate::segment::{self, BROKEN_EXTENSION, SegmentFile};
use crate::storage::{self, Storage};

/// What replay does with a torn tail in the last segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailPolicy {
    /// Cut the file back to the last valid record and log it (a writer's open).
    Truncate,
    /// Stop before it and leave the file alone (a read-only open: the tail
    /// may be a write still in progress).
    Stop,
    /// Report it as an error (`verify`).
    Reject,
}

/// A torn tail found by replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The last segment.
    pub path: PathBuf,
    /// Where its last valid record ends.
    pub offset: u64,
    /// How many bytes follow that point.
    pub bytes: u64,
    /// What was found there.
    pub reason: String,
}

/// One segment as replay found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedSegment {
    /// The file.
    pub path: PathBuf,
    /// Its first sequence number.
    pub first_seq: Seq,
    /// Bytes up to the end of its last valid record.
    pub valid_len: u64,
    /// Records it holds.
    pub records: u64,
}

/// What replay saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// The last valid record's sequence number (`Seq(0)`: none).
    pub last_seq: Seq,
    /// The first segment's first sequence number (`Seq(0)`: no segment).
    /// Records before it were compacted away.
    pub first_seq: Seq,
    /// The sequence number the next record must have.
    pub next_seq: Seq,
    /// Every segment, in order.
    pub segments: Vec<ScannedSegment>,
    /// The torn tail, if any (already cut under [`TailPolicy::Truncate`]).
    pub torn_tail: Option<TornTail>,
    /// Valid record bytes read, headers included.
    pub bytes: u64,
}

/// Where a record sits, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct RecordPlace<'a> {
    /// Its segment file.
    pub path: &'a Path,
    /// Byte offset of its header.
    pub offset: u64,
}

/// Replays the journal in `journal_dir`: every record is checked; records
/// with `seq >= decode_from` are decoded and handed to `on_event` in order.
///
/// # Errors
/// The first corruption found (with its file and offset), an I/O error, a
/// torn tail under [`TailPolicy::Reject`], or what `on_event` returned.
pub fn replay(
    storage: &dyn Storage,
    journal_dir: &Path,
    policy: TailPolicy,
    decode_from: Seq,
    on_event: &mut dyn FnMut(EventRecord, RecordPlace<'_>) -> Result<()>,
) -> Result<ReplayReport> {
    let files = segment::list_segments(storage, journal_dir)?;
    let mut report = ReplayReport::default();
    let mut expected: Option<Seq> = None;
    for (index, file) in files.iter().enumerate() {
        let is_last = index + 1 == files.len();
        let bytes = storage
            .read(&file.path)
            .map_err(|error| Error::io("read", &file.path, error))?;
        let scan = scan_segment(file, &bytes, expected, is_last, decode_from, on_event)?;
        expected = Some(scan.next_seq);
        report.bytes += scan.valid_len - SEGMENT_HEADER_BYTES as u64;
        report.segments.push(ScannedSegment {
            path: file.path.clone(),
            first_seq: file.first_seq,
            valid_len: scan.valid_len,
            records: scan.records,
        });
        if let Some(reason) = scan.torn {
            let torn = TornTail {
                path: file.path.clone(),
                offset: scan.valid_len,
                bytes: bytes.len() as u64 - scan.valid_len,
                reason,
            };
            drop(bytes);
            report.torn_tail = Some(handle_torn_tail(storage, policy, torn)?);
        }
    }
    report.first_seq = files.first().map_or(Seq(0), |file| file.first_seq);
    report.next_seq = expected.unwrap_or(Seq(1));
    report.last_seq = Seq(report.next_seq.0 - 1);
    Ok(report)
}

fn handle_torn_tail(storage: &dyn Storage, policy: TailPolicy, torn: TornTail) -> Result<TornTail> {
    match policy {
        TailPolicy::Reject => Err(Error::TruncatedRecord {
            path: torn.path,
            offset: torn.offset,
            detail: format!(
                "torn tail of {} bytes ({}); the next writer open truncates it, or run `movie-queue repair`",
                torn.bytes, torn.reason
            ),
        }),
        TailPolicy::Stop => Ok(torn),
        TailPolicy::Truncate => {
            tracing::warn!(
                path = %torn.path.display(),
                offset = torn.offset,
                bytes = torn.bytes,
                reason = %torn.reason,
                "truncating the torn tail of the journal (an incomplete last write, never acknowledged)"
            );
            storage
                .truncate(&torn.path, torn.offset)
                .map_err(|error| Error::io("truncate", &torn.path, error))?;
            Ok(torn)
        }
    }
}

struct SegmentScan {
    valid_len: u64,
    records: u64,
    next_seq: Seq,
    torn: Option<String>,
}

fn scan_segment(
    file: &SegmentFile,
    bytes: &[u8],
    expected: Option<Seq>,
    is_last: bool,
    decode_from: Seq,
    on_event: &mut dyn FnMut(EventRecord, RecordPlace<'_>) -> Result<()>,
) -> Result<SegmentScan> {
    let first_seq = check_header(file, bytes, expected)?;
    let mut scan = SegmentScan {
        valid_len: SEGMENT_HEADER_BYTES as u64,
        records: 0,
        next_seq: first_seq,
        torn: None,
    };
    let mut offset = SEGMENT_HEADER_BYTES;
    while offset < bytes.len() {
        let rest = bytes.get(offset..).unwrap_or_default();
        let place = RecordPlace {
            path: &file.path,
            offset: offset as u64,
        };
        let raw = match decode_record(rest, first_seq) {
            Ok(raw) => raw,
            Err(defect) => {
                let follows = valid_record_follows(rest.get(1..).unwrap_or_default(), first_seq, scan.next_seq);
                if is_last && follows.is_none() {
                    scan.torn = Some(describe(&defect));
                    return Ok(scan);
                }
                return Err(defect_error(place, defect, is_last));
            }
        };
        if raw.seq != scan.next_seq {
            return Err(Error::SequenceGap {
                path: file.path.clone(),
                offset: place.offset,
                expected: scan.next_seq.0,
                found: raw.seq.0,
            });
        }
        if raw.seq >= decode_from {
            let (ts, event) = decode_payload(raw.payload).map_err(|error| payload_error(place, error))?;
            on_event(
                EventRecord {
                    seq: raw.seq,
                    ts,
                    event,
                },
                place,
            )?;
        }
        offset += raw.framed_len();
        scan.valid_len = offset as u64;
        scan.records += 1;
        scan.next_seq = raw.seq.next();
    }
    Ok(scan)
}

fn check_header(file: &SegmentFile, bytes: &[u8], expected: Option<Seq>) -> Result<Seq> {
    let first_seq = decode_segment_header(bytes).map_err(|defect| match defect {
        HeaderDefect::Version(version) => Error::UnsupportedVersion {
            path: file.path.clone(),
            offset: 8,
            version,
            supported: record::FORMAT_VERSION,
        },
        HeaderDefect::Checksum { expected, found } => Error::ChecksumMismatch {
            path: file.path.clone(),
            offset: 0,
            expected,
            found,
        },
        HeaderDefect::Magic => Error::Corrupt {
            path: file.path.clone(),
            offset: 0,
            detail: "not a movie-queue journal segment (bad magic number)".into(),
        },
        HeaderDefect::Reserved => Error::Corrupt {
            path: file.path.clone(),
            offset: 28,
            detail: "segment header's reserved word is not zero".into(),
        },
        HeaderDefect::SeqOutOfRange(seq) => Error::Corrupt {
            path: file.path.clone(),
            offset: 16,
            detail: format!("segment header's first sequence number {seq} is out of range"),
        },
        HeaderDefect::Short(len) => Error::Corrupt {
            path: file.path.clone(),
            offset: len as u64,
            detail: format!("segment header is {len} bytes, needs {SEGMENT_HEADER_BYTES}"),
        },
    })?;
    if first_seq != file.first_seq || first_seq.0 == 0 {
        return Err(Error::Corrupt {
            path: file.path.clone(),
            offset: 16,
            detail: format!(
                "segment header says it starts at record {first_seq}, its name says {}",
                file.first_seq
            ),
        });
    }
    if let Some(expected) = expected
        && expected != first_seq
    {
        return Err(Error::SequenceGap {
            path: file.path.clone(),
            offset: 16,
            expected: expected.0,
            found: first_seq.0,
        });
    }
    Ok(first_seq)
}

fn describe(defect: &RecordDefect) -> String {
    match defect {
        RecordDefect::ShortHeader(len) => format!("{len} bytes, less than a record header"),
        RecordDefect::Empty => "zero-filled space".into(),
        RecordDefect::TooLarge(length) => format!("a length of {length} bytes, over the format's limit"),
        RecordDefect::PastEnd { length, available } => {
            format!("a record of {length} bytes with only {available} written")
        }
        RecordDefect::Checksum { expected, found } => {
            format!("a checksum mismatch (stored {expected:#010x}, computed {found:#010x})")
        }
    }
}

fn defect_error(place: RecordPlace<'_>, defect: RecordDefect, is_last: bool) -> Error {
    let path = place.path.to_path_buf();
    let offset = place.offset;
    let followed = if is_last {
        "with valid records after it"
    } else {
        "in a segment that is not the last"
    };
    match defect {
        RecordDefect::Checksum { expected, found } => Error::ChecksumMismatch {
            path,
            offset,
            expected,
            found,
        },
        RecordDefect::TooLarge(length) => Error::RecordTooLarge {
            path,
            offset,
            length: u64::from(length),
            limit: u64::from(record::RECORD_PAYLOAD_BYTES_MAX),
        },
        other @ (RecordDefect::ShortHeader(_) | RecordDefect::PastEnd { .. }) => Error::TruncatedRecord {
            path,
            offset,
            detail: format!("{} {followed}", describe(&other)),
        },
        RecordDefect::Empty => Error::Corrupt {
            path,
            offset,
            detail: format!("zero-filled space {followed}"),
        },
    }
}

fn payload_error(place: RecordPlace<'_>, error: PayloadError) -> Error {
    match error {
        PayloadError::Version(version) => Error::UnsupportedVersion {
            path: place.path.to_path_buf(),
            offset: place.offset,
            version,
            supported: crate::event::EVENT_VERSION,
        },
        PayloadError::Malformed(detail) => Error::Corrupt {
            path: place.path.to_path_buf(),
            offset: place.offset,
            detail: format!("record's checksum is valid but its event is not: {detail}"),
        },
    }
}

/// The file and offset an error names, if it names one.
#[must_use]
pub fn error_place(error: &Error) -> Option<(&Path, u64)> {
    match error {
        Error::ChecksumMismatch { path, offset, .. }
        | Error::TruncatedRecord { path, offset, .. }
        | Error::RecordTooLarge { path, offset, .. }
        | Error::SequenceGap { path, offset, .. }
        | Error::UnsupportedVersion { path, offset, .. }
        | Error::Corrupt { path, offset, .. } => Some((path, *offset)),
        _ => None,
    }
}

/// What [`repair`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// The damage found (`None`: the journal was sound and nothing changed).
    pub damage: Option<String>,
    /// Files written with the bytes set aside (`*.broken`).
    pub set_aside: Vec<PathBuf>,
    /// The last sequence number kept.
    pub last_seq: Seq,
}

/// Repairs the journal: finds the first damage (as replay with `on_event`
/// sees it), copies everything from there on aside to `*.broken` files,
/// truncates the damaged segment to its last valid record, and fsyncs.
/// Every valid record before the damage is kept; nothing is deleted.
///
/// # Errors
/// An I/O error naming its path; a damage this cannot locate.
pub fn repair(
    storage: &dyn Storage,
    journal_dir: &Path,
    on_event: &mut dyn FnMut(EventRecord, RecordPlace<'_>) -> Result<()>,
) -> Result<RepairReport> {
    let damage = match replay(storage, journal_dir, TailPolicy::Reject, Seq(0), on_event) {
        Ok(report) => {
            return Ok(RepairReport {
                damage: None,
                set_aside: Vec::new(),
                last_seq: report.last_seq,
            });
        }
        Err(error) => error,
    };
    let Some((path, offset)) = error_place(&damage).map(|(path, offset)| (path.to_path_buf(), offset)) else {
        return Err(damage);
    };
    let files = segment::list_segments(storage, journal_dir)?;
    let mut set_aside = Vec::new();
    let mut after_damage = false;
    for file in &files {
        if file.path == path {
            after_damage = true;
            let keep = if offset < SEGMENT_HEADER_BYTES as u64 {
                0
            } else {
                offset
            };
            set_aside.push(cut_segment(storage, &file.path, keep)?);
        } else if after_damage {
            set_aside.push(move_aside(storage, &file.path)?);
        }
    }
    storage::sync_parent(storage, &path)?;
    let last_seq = replay(storage, journal_dir, TailPolicy::Reject, Seq(u64::MAX), &mut |_, _| {
        Ok(())
    })?
    .last_seq;
    Ok(RepairReport {
        damage: Some(damage.to_string()),
        set_aside,
        last_seq,
    })
}

fn broken_path(path: &Path, offset: u64) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{offset}.{BROKEN_EXTENSION}"));
    path.with_file_name(name)
}

/// Copies `path[keep..]` aside, then truncates `path` to `keep` (or moves
/// the whole file aside when not even its header is sound).
fn cut_segment(storage: &dyn Storage, path: &Path, keep: u64) -> Result<PathBuf> {
    if keep == 0 {
        return move_aside(storage, path);
    }
    let bytes = storage.read(path).map_err(|error| Error::io("read", path, error))?;
    let start = usize::try_from(keep).unwrap_or(usize::MAX).min(bytes.len());
    let aside = broken_path(path, keep);
    storage::write_synced(storage, &aside, bytes.get(start..).unwrap_or_default())?;
    storage::sync_parent(storage, &aside)?;
    drop(bytes);
    storage
        .truncate(path, keep)
        .map_err(|error| Error::io("truncate", path, error))?;
    tracing::warn!(path = %path.display(), offset = keep, aside = %aside.display(), "repair cut the segment");
    Ok(aside)
}

fn move_aside(storage: &dyn Storage, path: &Path) -> Result<PathBuf> {
    let aside = broken_path(path, 0);
    storage
        .rename(path, &aside)
        .map_err(|error| Error::io("rename aside", path, error))?;
    tracing::warn!(path = %path.display(), aside = %aside.display(), "repair set the segment aside");
    Ok(aside)
}
