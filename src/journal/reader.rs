//! Reading the journal back: segments in order, every record checked, each
//! record's opaque payload handed to a callback; what to do with a torn
//! tail. The reader knows bytes and sequence numbers, never events.
//!
//! The rule (checklist items 2–5 in the spec): only the last segment may end
//! in a torn tail — a damaged or incomplete final record with no valid record
//! after it, zero-filled space included. Everything else is corruption,
//! reported with its file and byte offset, never skipped or truncated.

use std::path::{Path, PathBuf};

use super::format::{
    self, HeaderDefect, RecordDefect, SEGMENT_HEADER_BYTES, decode_record, decode_segment_header, valid_record_follows,
};
use super::segment::{self, SegmentFile};
use crate::error::{DamageSituation, Error, Result};
use crate::seq::Seq;
use crate::storage::Storage;

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
    pub defect: RecordDefect,
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

/// Replays the journal in `journal_dir`: every record is checked; records
/// with `seq >= from` are handed to `on_record` in order.
///
/// # Errors
/// The first corruption found (with its file and offset), an I/O error, a
/// torn tail under [`TailPolicy::Reject`], or what `on_record` returned.
pub fn replay(
    storage: &dyn Storage,
    journal_dir: &Path,
    policy: TailPolicy,
    from: Seq,
    on_record: &mut OnRecord<'_>,
) -> Result<ReplayReport> {
    let files = segment::list_segments(storage, journal_dir)?;
    let mut report = ReplayReport::default();
    let mut expected: Option<Seq> = None;
    for (index, file) in files.iter().enumerate() {
        let is_last = index + 1 == files.len();
        let bytes = storage
            .read(&file.path)
            .map_err(|error| Error::io("read", &file.path, error))?;
        let scan = scan_segment(file, &bytes, expected, is_last, from, on_record)?;
        expected = Some(scan.next_seq);
        report.bytes += scan.valid_len - SEGMENT_HEADER_BYTES as u64;
        report.segments.push(ScannedSegment {
            path: file.path.clone(),
            first_seq: file.first_seq,
            valid_len: scan.valid_len,
            records: scan.records,
        });
        if let Some(defect) = scan.torn {
            let torn = TornTail {
                path: file.path.clone(),
                offset: scan.valid_len,
                bytes: bytes.len() as u64 - scan.valid_len,
                defect,
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
            defect: torn.defect,
            situation: DamageSituation::TornTail { bytes: torn.bytes },
        }),
        TailPolicy::Stop => Ok(torn),
        TailPolicy::Truncate => {
            tracing::warn!(
                path = %torn.path.display(),
                offset = torn.offset,
                bytes = torn.bytes,
                defect = %torn.defect,
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
    torn: Option<RecordDefect>,
}

fn scan_segment(
    file: &SegmentFile,
    bytes: &[u8],
    expected: Option<Seq>,
    is_last: bool,
    from: Seq,
    on_record: &mut OnRecord<'_>,
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
                    scan.torn = Some(defect);
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
        if raw.seq >= from {
            on_record(RawRecord {
                seq: raw.seq,
                payload: raw.payload,
                place,
            })?;
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
            supported: format::FORMAT_VERSION,
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

fn defect_error(place: RecordPlace<'_>, defect: RecordDefect, is_last: bool) -> Error {
    let path = place.path.to_path_buf();
    let offset = place.offset;
    let situation = if is_last {
        DamageSituation::ValidRecordsFollow
    } else {
        DamageSituation::NotLastSegment
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
            limit: u64::from(format::RECORD_PAYLOAD_BYTES_MAX),
        },
        defect => Error::TruncatedRecord {
            path,
            offset,
            defect,
            situation,
        },
    }
}
