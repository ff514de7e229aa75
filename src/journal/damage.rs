//! Damage: what is wrong at a place of a segment, and the error a reader
//! reports for it. The reader (`reader.rs`) finds it, the chain
//! (`chain.rs`) decides what it breaks, the follower (`follow.rs`) meets it
//! as it reads.

use std::path::{Path, PathBuf};

use super::format::{self, HeaderDefect, RecordDefect, SEGMENT_HEADER_BYTES};
use crate::error::{DamageSituation, Error};
use crate::seq::Seq;

/// What is wrong at a place of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DamageKind {
    /// The segment header cannot be read.
    Header(HeaderDefect),
    /// The header's first sequence number is not the one the name says.
    NameMismatch {
        /// What the header says.
        header: Seq,
    },
    /// A record that fails its checks.
    Record(RecordDefect),
    /// A valid record with another sequence number than the one due.
    Sequence {
        /// The sequence number found.
        found: Seq,
    },
}

/// A damaged span of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Where it starts.
    pub offset: u64,
    /// Where valid records resume (or the end of the file).
    pub end: u64,
    /// The sequence number the record at `offset` should have had.
    pub expected: Seq,
    /// What is wrong.
    pub kind: DamageKind,
    /// Does a valid record follow it in its segment (or might one: the
    /// search for one gave up)?
    pub valid_after: bool,
}

/// The error a reader reports for `damage` in the segment at `path`.
#[must_use]
pub fn damage_error(path: &Path, damage: &Damage, is_last: bool) -> Error {
    let path = path.to_path_buf();
    let offset = damage.offset;
    match &damage.kind {
        DamageKind::Header(defect) => header_error(path, defect),
        DamageKind::NameMismatch { header } => Error::Corrupt {
            path,
            offset: 16,
            detail: format!(
                "segment header says it starts at record {header}, its name says {}",
                damage.expected
            ),
        },
        DamageKind::Sequence { found } => Error::SequenceGap {
            path,
            offset,
            expected: damage.expected.0,
            found: found.0,
        },
        DamageKind::Record(RecordDefect::Checksum { expected, found }) if damage.valid_after || !is_last => {
            Error::ChecksumMismatch {
                path,
                offset,
                expected: *expected,
                found: *found,
            }
        }
        DamageKind::Record(RecordDefect::TooLarge(length)) if damage.valid_after || !is_last => Error::RecordTooLarge {
            path,
            offset,
            length: u64::from(*length),
            limit: u64::from(format::RECORD_PAYLOAD_BYTES_MAX),
        },
        DamageKind::Record(defect) => Error::TruncatedRecord {
            path,
            offset,
            defect: defect.clone(),
            situation: if damage.valid_after {
                DamageSituation::ValidRecordsFollow
            } else if !is_last {
                DamageSituation::NotLastSegment
            } else {
                DamageSituation::TornTail {
                    bytes: damage.end - damage.offset,
                }
            },
        },
    }
}

fn header_error(path: PathBuf, defect: &HeaderDefect) -> Error {
    match *defect {
        HeaderDefect::Version(version) => Error::UnsupportedVersion {
            path,
            offset: 8,
            version,
            supported: format::FORMAT_VERSION,
        },
        HeaderDefect::Checksum { expected, found } => Error::ChecksumMismatch {
            path,
            offset: 0,
            expected,
            found,
        },
        HeaderDefect::Magic => Error::Corrupt {
            path,
            offset: 0,
            detail: "not a movie-queue journal segment (bad magic number)".into(),
        },
        HeaderDefect::Reserved => Error::Corrupt {
            path,
            offset: 28,
            detail: "segment header's reserved word is not zero".into(),
        },
        HeaderDefect::SeqOutOfRange(seq) => Error::Corrupt {
            path,
            offset: 16,
            detail: format!("segment header's first sequence number {seq} is out of range"),
        },
        HeaderDefect::Short(len) => Error::Corrupt {
            path,
            offset: len as u64,
            detail: format!("segment header is {len} bytes, needs {SEGMENT_HEADER_BYTES}"),
        },
    }
}
