//! The tail marker `journal/tail`: which segment the journal last went on
//! to. It is written (atomically, durably) each time a segment is created,
//! before a record is appended to it, so a last segment that disappears
//! (deleted by hand, lost with its directory entry) is noticed instead of
//! reading as a journal that simply ends earlier.
//!
//! Format: one line, `MVQTAIL1 <first seq of the segment> <crc32 hex>\n`,
//! the CRC32 over `MVQTAIL1 <first seq>`. A marker that does not parse is
//! ignored (and reported by `verify`); a missing one checks nothing.

use std::path::Path;

use crate::error::Result;
use crate::seq::Seq;
use crate::storage::{self, Storage};

use crate::layout::TAIL_FILE;

const MAGIC: &str = "MVQTAIL1";

/// What the marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailMarker {
    /// There is none (a journal of the first release, or an empty store).
    Missing,
    /// The journal went on to the segment starting at this record.
    Segment(Seq),
    /// It does not parse: ignored.
    Damaged,
}

fn line(seq: Seq) -> String {
    let body = format!("{MAGIC} {}", seq.0);
    format!("{body} {:08x}\n", crc32fast::hash(body.as_bytes()))
}

/// Records that the journal went on to the segment starting at `seq`.
///
/// # Errors
/// [`crate::error::Error::Io`] naming the file.
pub fn write(storage: &dyn Storage, journal_dir: &Path, seq: Seq) -> Result<()> {
    storage::write_atomic(storage, &journal_dir.join(TAIL_FILE), line(seq).as_bytes())
}

/// Makes the marker name the segment starting at `seq` (the last one, at
/// a writer's open): a marker that does not parse, or a journal from
/// before the marker, checks nothing until it is written again.
///
/// # Errors
/// [`crate::error::Error::Io`] naming the file.
pub fn ensure(storage: &dyn Storage, journal_dir: &Path, seq: Seq) -> Result<()> {
    if read(storage, journal_dir) == TailMarker::Segment(seq) {
        return Ok(());
    }
    write(storage, journal_dir, seq)
}

/// Removes the marker (a journal set aside whole by `repair`).
///
/// # Errors
/// [`crate::error::Error::Io`] naming the file.
pub fn remove(storage: &dyn Storage, journal_dir: &Path) -> Result<()> {
    storage::remove_if_present(storage, &journal_dir.join(TAIL_FILE))?;
    storage::sync_parent(storage, &journal_dir.join(TAIL_FILE))
}

/// The error for a segment the marker names that is not there: the
/// journal went on to it, so records are lost (reader and recovery say the
/// same).
#[must_use]
pub fn missing_segment(journal_dir: &Path, first_seq: Seq) -> crate::error::Error {
    crate::error::Error::Corrupt {
        path: journal_dir.join(crate::layout::segment_name(first_seq)),
        offset: 0,
        detail: format!(
            "this segment is missing, yet the journal went on to it (journal/{TAIL_FILE} says so): \
             the records it held are lost unless a copy of the file is put back"
        ),
    }
}

/// The segment the marker of `journal_dir` names, when it is not there.
#[must_use]
pub fn names_missing_segment(storage: &dyn Storage, journal_dir: &Path) -> Option<Seq> {
    match read(storage, journal_dir) {
        TailMarker::Segment(first) if !storage.exists(&journal_dir.join(crate::layout::segment_name(first))) => {
            Some(first)
        }
        _ => None,
    }
}

/// Reads the marker.
#[must_use]
pub fn read(storage: &dyn Storage, journal_dir: &Path) -> TailMarker {
    let path = journal_dir.join(TAIL_FILE);
    if !storage.exists(&path) {
        return TailMarker::Missing;
    }
    let Ok(bytes) = storage.read(&path) else {
        return TailMarker::Damaged;
    };
    parse(&bytes).map_or(TailMarker::Damaged, TailMarker::Segment)
}

fn parse(bytes: &[u8]) -> Option<Seq> {
    let text = std::str::from_utf8(bytes).ok()?.strip_suffix('\n')?;
    let (body, crc) = text.rsplit_once(' ')?;
    let digits = body.strip_prefix(MAGIC)?.strip_prefix(' ')?;
    let canonical = |text: &str, allowed: fn(&u8) -> bool| !text.is_empty() && text.bytes().all(|byte| allowed(&byte));
    if !canonical(digits, u8::is_ascii_digit)
        || crc.len() != 8
        || !canonical(crc, |byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(byte))
    {
        return None;
    }
    let seq: u64 = digits.parse().ok()?;
    (u32::from_str_radix(crc, 16).ok()? == crc32fast::hash(body.as_bytes()) && seq <= crate::seq::SEQ_MAX)
        .then_some(Seq(seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_round_trips_and_every_bit_flip_is_caught() {
        let written = line(Seq(4097));
        assert_eq!(parse(written.as_bytes()), Some(Seq(4097)));
        for bit in 0..written.len() * 8 {
            let mut flipped = written.clone().into_bytes();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(parse(&flipped), Some(Seq(4097)), "flip of bit {bit} went unnoticed");
        }
    }
}
