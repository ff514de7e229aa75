//! The time index `journal/times`: for each sealed segment (every one but
//! the last), its records and byte length and the first and highest event
//! time among its records, so a time query finds the segment that holds
//! its answer without reading the segments before it.
//!
//! The journal knows no events: the caller says how to read a payload's
//! time. The writer's open rewrites the index when a sealed segment is not
//! in it. It is a hint, never trusted blindly: an entry counts only while
//! its segment still has the name and length it recorded, and an index
//! that does not parse is ignored, so a stale or damaged one only costs
//! the time to read the segments it should have spared.
//!
//! Format: a line `MVQTIMES1`, then one line a segment
//! `<first seq> <last seq> <bytes> <first ts> <highest ts>` (the times as
//! the 16 hex digits of their IEEE 754 bits, so they round-trip exactly),
//! then `<crc32 hex>` of every byte before that line.

use std::path::Path;

use super::reader::{self, JournalScan};
use crate::error::Result;
use crate::seq::Seq;
use crate::storage::{self, Entry, Storage};

use crate::layout::TIMES_FILE;

const MAGIC: &str = "MVQTIMES1";

/// One sealed segment's entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentTimes {
    /// Its first record (and name).
    pub first_seq: Seq,
    /// Its last record.
    pub last_seq: Seq,
    /// Its length in bytes when indexed.
    pub len: u64,
    /// Its first record's time.
    pub first_ts: f64,
    /// The highest time among its records.
    pub max_ts: f64,
}

fn render(entries: &[SegmentTimes]) -> String {
    use std::fmt::Write as _;
    let mut text = format!("{MAGIC}\n");
    for entry in entries {
        let _ = writeln!(
            text,
            "{} {} {} {:016x} {:016x}",
            entry.first_seq.0,
            entry.last_seq.0,
            entry.len,
            entry.first_ts.to_bits(),
            entry.max_ts.to_bits()
        );
    }
    let crc = crc32fast::hash(text.as_bytes());
    let _ = writeln!(text, "{crc:08x}");
    text
}

fn parse(bytes: &[u8]) -> Option<Vec<SegmentTimes>> {
    let text = std::str::from_utf8(bytes).ok()?.strip_suffix('\n')?;
    let (body, crc) = text.rsplit_once('\n')?;
    let body = format!("{body}\n");
    if crc != format!("{:08x}", crc32fast::hash(body.as_bytes())) {
        return None;
    }
    let mut lines = body.lines();
    if lines.next()? != MAGIC {
        return None;
    }
    lines
        .map(|line| {
            let mut words = line.split(' ');
            let mut number = || words.next().and_then(|word| word.parse::<u64>().ok());
            let (first_seq, last_seq, len) = (number()?, number()?, number()?);
            let mut time = || {
                words
                    .next()
                    .and_then(|word| u64::from_str_radix(word, 16).ok())
                    .map(f64::from_bits)
            };
            Some(SegmentTimes {
                first_seq: Seq(first_seq),
                last_seq: Seq(last_seq),
                len,
                first_ts: time()?,
                max_ts: time()?,
            })
        })
        .collect()
}

/// The index's entries that still describe a sealed segment of
/// `journal_dir` (same first record, same length, not the last segment),
/// by first record; none if there is no index or it does not hold up.
#[must_use]
pub fn read(storage: &dyn Storage, journal_dir: &Path) -> Vec<SegmentTimes> {
    let Ok(bytes) = storage.read(&journal_dir.join(TIMES_FILE)) else {
        return Vec::new();
    };
    let Ok(files) = super::segment::list_segments(storage, journal_dir) else {
        return Vec::new();
    };
    let sealed = files.len().saturating_sub(1);
    let entries = parse(&bytes).unwrap_or_default();
    files[..sealed]
        .iter()
        .filter_map(|file| {
            let entry = entries.iter().find(|entry| entry.first_seq == file.first_seq)?;
            let Ok(Entry::File(len)) = storage.entry(&file.path) else {
                return None;
            };
            (len == entry.len).then_some(*entry)
        })
        .collect()
}

/// Brings the index up to date with the sealed segments of `scan` (a
/// whole journal, scanned): an entry is kept where it still holds, made
/// for each sealed segment of clean records (one run, no damage) it lacks
/// by reading that segment's times with `ts_of`, and the file is written
/// only when that changes it.
///
/// # Errors
/// [`crate::error::Error::Io`] reading a segment or writing the index.
pub fn refresh(storage: &dyn Storage, scan: &JournalScan, ts_of: &dyn Fn(&[u8]) -> Option<f64>) -> Result<()> {
    let journal_dir = &scan.dir;
    let held = read(storage, journal_dir);
    let mut entries = Vec::new();
    for (segment, run) in scan.sealed_clean_runs() {
        if let Some(entry) = held
            .iter()
            .find(|entry| entry.first_seq == segment.first_seq && entry.len == segment.len)
        {
            entries.push(*entry);
            continue;
        }
        let bytes = storage
            .read(&segment.path)
            .map_err(|error| crate::error::Error::io("read", &segment.path, error))?;
        let mut times = Vec::new();
        for record in reader::run_records(segment, &bytes, &run) {
            times.extend(ts_of(record?.payload));
        }
        if times.len() as u64 != run.last.0 - run.first.0 + 1 {
            continue;
        }
        entries.push(SegmentTimes {
            first_seq: run.first,
            last_seq: run.last,
            len: segment.len,
            first_ts: times[0],
            max_ts: times.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        });
    }
    let text = render(&entries);
    storage::write_hint(
        storage,
        &journal_dir.join(TIMES_FILE),
        text.as_bytes(),
        entries.is_empty(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_exactly_and_a_flipped_bit_voids_the_index() {
        let entries = vec![SegmentTimes {
            first_seq: Seq(1),
            last_seq: Seq(40),
            len: 4_096,
            first_ts: 1_760_806_482.123_456_7,
            max_ts: 1_760_806_490.5,
        }];
        let text = render(&entries);
        assert_eq!(parse(text.as_bytes()), Some(entries.clone()));
        for bit in 0..text.len() * 8 {
            let mut flipped = text.clone().into_bytes();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(
                parse(&flipped),
                Some(entries.clone()),
                "flip of bit {bit} went unnoticed"
            );
        }
    }
}
