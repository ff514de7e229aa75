//! The id filters `journal/ids`: for each sealed segment (every one but the
//! last) whose records are one clean run, a Bloom filter of the movie ids
//! its records name, so one movie's history (`log --id`, `show`) reads only
//! the segments that may hold its records.
//!
//! The journal knows no events: the caller says which ids a payload names.
//! The writer's open rewrites the file when a sealed segment is not in it.
//! It is a hint, never trusted blindly: a filter counts only while its
//! segment still has the name and length it recorded and no hole of
//! `journal/holes` lies in it, and a file whose checksum fails is ignored.
//! A Bloom filter never says "absent" of an id it holds, so a filter that
//! holds up never hides a record; a missing, stale or damaged file costs
//! the time to read the segments it would have spared.
//!
//! Format (little-endian): the 8 bytes `MVQIDS1\n`, the number of filters
//! (u32), then per filter its segment's first and last record and byte
//! length (u64 each), its number of bits `m` (u64, a multiple of 64) and of
//! hashes `k` (u32), and the `m / 8` bytes of its bits; then the CRC32 of
//! every byte before it (u32). An id sets the bits `(h1 + i·h2) mod m` for
//! `i < k`, with `h1` the FNV-1a 64-bit hash of its UTF-8 bytes and `h2`
//! that hash's bits mixed by the `splitmix64` finalizer, or'ed with 1.

use std::path::Path;

use super::reader::{self, JournalScan};
use crate::error::Result;
use crate::layout::IDS_FILE;
use crate::seq::Seq;
use crate::storage::{self, Entry, Storage};

const MAGIC: &[u8; 8] = b"MVQIDS1\n";
/// Bits per id: about 1% of absent ids read as maybe present.
const BITS_PER_ID: u64 = 10;
/// Hashes per id.
const HASHES: u32 = 7;

/// One sealed segment's filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentIds {
    /// Its first record (and name).
    pub first_seq: Seq,
    /// Its last record.
    pub last_seq: Seq,
    /// Its length in bytes when its filter was made.
    pub len: u64,
    hashes: u32,
    bits: Vec<u64>,
}

impl SegmentIds {
    fn new(first_seq: Seq, last_seq: Seq, len: u64, ids: &[String]) -> SegmentIds {
        let words = (ids.len() as u64 * BITS_PER_ID).div_ceil(64).max(1);
        let mut filter = SegmentIds {
            first_seq,
            last_seq,
            len,
            hashes: HASHES,
            bits: vec![0; usize::try_from(words).unwrap_or(usize::MAX)],
        };
        let m = words * 64;
        for id in ids {
            for bit in positions(m, HASHES, id) {
                filter.bits[bit / 64] |= 1 << (bit % 64);
            }
        }
        filter
    }

    /// May a record of this segment name `id`? `false` only when none does.
    #[must_use]
    pub fn may_hold(&self, id: &str) -> bool {
        positions(self.bits.len() as u64 * 64, self.hashes, id).all(|bit| self.bits[bit / 64] & (1 << (bit % 64)) != 0)
    }
}

/// The bits of a filter of `m` bits and `hashes` hashes that `id` sets.
fn positions(m: u64, hashes: u32, id: &str) -> impl Iterator<Item = usize> {
    let h1 = fnv1a(id.as_bytes());
    let h2 = mix(h1) | 1;
    (0..u64::from(hashes)).map(move |i| usize::try_from(h1.wrapping_add(i.wrapping_mul(h2)) % m).unwrap_or(0))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn mix(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

fn render(filters: &[SegmentIds]) -> Vec<u8> {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&u32::try_from(filters.len()).unwrap_or(u32::MAX).to_le_bytes());
    for filter in filters {
        for number in [
            filter.first_seq.0,
            filter.last_seq.0,
            filter.len,
            filter.bits.len() as u64 * 64,
        ] {
            bytes.extend_from_slice(&number.to_le_bytes());
        }
        bytes.extend_from_slice(&filter.hashes.to_le_bytes());
        for word in &filter.bits {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

fn parse(bytes: &[u8]) -> Option<Vec<SegmentIds>> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    let mut rest = body.strip_prefix(MAGIC)?;
    let mut take = |count: usize| -> Option<&[u8]> {
        let (taken, after) = rest.split_at_checked(count)?;
        rest = after;
        Some(taken)
    };
    let u64_of = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().unwrap_or_default());
    let count = u32::from_le_bytes(take(4)?.try_into().ok()?);
    let mut filters = Vec::new();
    for _ in 0..count {
        let (first_seq, last_seq, len, m) = (u64_of(take(8)?), u64_of(take(8)?), u64_of(take(8)?), u64_of(take(8)?));
        let hashes = u32::from_le_bytes(take(4)?.try_into().ok()?);
        if m == 0 || m % 64 != 0 || hashes == 0 || hashes > 64 {
            return None;
        }
        let words = take(usize::try_from(m / 8).ok()?)?;
        filters.push(SegmentIds {
            first_seq: Seq(first_seq),
            last_seq: Seq(last_seq),
            len,
            hashes,
            bits: words.chunks_exact(8).map(u64_of).collect(),
        });
    }
    rest.is_empty().then_some(filters)
}

/// The filters that still describe a sealed segment of `journal_dir`
/// (same first record, same length, not the last segment, no recorded
/// hole in it), by first record; none if there is no file or it does not
/// hold up.
#[must_use]
pub fn read(storage: &dyn Storage, journal_dir: &Path) -> Vec<SegmentIds> {
    let Ok(bytes) = storage.read(&journal_dir.join(IDS_FILE)) else {
        return Vec::new();
    };
    let Ok(files) = super::segment::list_segments(storage, journal_dir) else {
        return Vec::new();
    };
    let holes = super::holes::read(storage, journal_dir);
    let sealed = files.len().saturating_sub(1);
    let mut filters = parse(&bytes).unwrap_or_default();
    filters.retain(|filter| {
        files[..sealed].iter().any(|file| {
            file.first_seq == filter.first_seq
                && matches!(storage.entry(&file.path), Ok(Entry::File(len)) if len == filter.len)
                && !holes.touches(filter.first_seq, filter.last_seq)
        })
    });
    filters
}

/// Brings the filters up to date with the sealed segments of `scan` (a
/// whole journal, scanned): a filter is kept where it still holds, made
/// for each sealed segment of clean records (one run, no damage) it lacks
/// from the ids `ids_of` reads in each payload (a payload it cannot read
/// leaves that segment without a filter), and the file is written only
/// when that changes it.
///
/// # Errors
/// [`crate::error::Error::Io`] reading a segment or writing the file.
pub fn refresh(storage: &dyn Storage, scan: &JournalScan, ids_of: &dyn Fn(&[u8]) -> Option<Vec<String>>) -> Result<()> {
    let journal_dir = &scan.dir;
    let held = read(storage, journal_dir);
    let mut filters = Vec::new();
    'segments: for (segment, run) in scan.sealed_clean_runs() {
        if let Some(filter) = held
            .iter()
            .find(|filter| filter.first_seq == segment.first_seq && filter.len == segment.len)
        {
            filters.push(filter.clone());
            continue;
        }
        let bytes = storage
            .read(&segment.path)
            .map_err(|error| crate::error::Error::io("read", &segment.path, error))?;
        let mut ids = Vec::new();
        for record in reader::run_records(segment, &bytes, &run) {
            match ids_of(record?.payload) {
                Some(named) => ids.extend(named),
                None => continue 'segments,
            }
        }
        filters.push(SegmentIds::new(run.first, run.last, segment.len, &ids));
    }
    storage::write_hint(
        storage,
        &journal_dir.join(IDS_FILE),
        &render(&filters),
        filters.is_empty(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(range: std::ops::Range<u32>) -> Vec<String> {
        range.map(|number| format!("tt{number:07}")).collect()
    }

    #[test]
    fn a_filter_holds_every_id_it_was_made_of_and_few_others() {
        let filter = SegmentIds::new(Seq(1), Seq(5_000), 1 << 20, &ids(0..5_000));
        assert!(ids(0..5_000).iter().all(|id| filter.may_hold(id)), "no false negative");
        let false_positives = ids(5_000..105_000).iter().filter(|id| filter.may_hold(id)).count();
        assert!(
            false_positives < 2_000,
            "{false_positives} of 100,000 absent ids read as present"
        );
        let empty = SegmentIds::new(Seq(1), Seq(1), 100, &[]);
        assert!(!empty.may_hold("tt1"), "a filter of no id holds none");
    }

    #[test]
    fn filters_round_trip_exactly_and_a_flipped_bit_voids_the_file() {
        let filters = vec![
            SegmentIds::new(Seq(1), Seq(40), 4_096, &ids(0..40)),
            SegmentIds::new(Seq(41), Seq(90), 8_192, &ids(40..300)),
        ];
        let bytes = render(&filters);
        assert_eq!(parse(&bytes), Some(filters.clone()));
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(
                parse(&flipped),
                Some(filters.clone()),
                "flip of bit {bit} went unnoticed"
            );
        }
        assert_eq!(parse(&bytes[..bytes.len() - 1]), None, "cut short");
    }
}
