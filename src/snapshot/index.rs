//! The snapshot's index `queue_snapshot.idx`: where each entry of the
//! documented files starts, so a reader finds one movie without reading
//! the files (`audit/lean.rs`). Written with the files (step 2 of
//! `manifest.rs`), named in the manifest with its length and CRC32, and
//! trusted only as a whole: an index that does not match its manifest is
//! not read at all, and every entry it points to is checked again against
//! its own CRC32 before it is used.
//!
//! Format (little-endian): the 8 bytes `MVQIDX1\n`, then one record of 24
//! bytes per entry, sorted by the hash of the id (FNV-1a, 64 bits):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | the id's hash |
//! | 8 | the place (top byte: 0 pending, 1 in flight, 2 failed, 3 completed, 4 removed) and the byte offset of the entry in its documented file (the other 56 bits) |
//! | 4 | the entry's length in bytes (its JSON object, braces included) |
//! | 4 | CRC32 of the place byte followed by the entry's bytes |

use crate::projection::Place;

/// The index's first bytes.
const MAGIC: &[u8; 8] = b"MVQIDX1\n";
/// The size of one record.
const RECORD: usize = 24;
/// The offset bits of a record's second field.
const OFFSET_MASK: u64 = (1 << 56) - 1;

/// The hash an index sorts by: FNV-1a, 64 bits, of the id's UTF-8 bytes
/// (fixed here, so every version of the library finds what another wrote).
#[must_use]
pub fn id_hash(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Where one entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    /// Its place (in flight and pending share `queue_pending.json`).
    pub place: Place,
    /// Its first byte in the documented file of its place.
    pub offset: u64,
    /// Its length in bytes.
    pub length: u32,
    /// CRC32 of the place's code and the entry's bytes.
    pub crc32: u32,
}

/// The code of a place in a record (as [`Place::ALL`]).
fn place_code(place: Place) -> u8 {
    match place {
        Place::Pending => 0,
        Place::InFlight => 1,
        Place::Failed => 2,
        Place::Completed => 3,
        Place::Removed => 4,
    }
}

/// CRC32 of an entry's bytes as a record covers them: with its place.
#[must_use]
pub fn entry_crc(place: Place, bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[place_code(place)]);
    hasher.update(bytes);
    hasher.finalize()
}

/// An index being written: one record per entry, in any order.
#[derive(Debug, Default)]
pub struct IndexBuilder {
    records: Vec<(u64, Located)>,
}

impl IndexBuilder {
    /// Notes the entry `id` of `place` at `offset` of its file.
    pub fn push(&mut self, id: &str, place: Place, offset: u64, bytes: &[u8]) {
        self.records.push((
            id_hash(id),
            Located {
                place,
                offset,
                length: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
                crc32: entry_crc(place, bytes),
            },
        ));
    }

    /// Notes an entry another index located (a documented file kept as
    /// it is, its records carried over).
    pub fn push_located(&mut self, hash: u64, located: Located) {
        self.records.push((hash, located));
    }

    /// The index's bytes.
    #[must_use]
    pub fn finish(mut self) -> Vec<u8> {
        // Stable: equal hashes stay in file order.
        self.records.sort_by_key(|&(hash, _)| hash);
        let mut out = Vec::with_capacity(MAGIC.len() + RECORD * self.records.len());
        out.extend_from_slice(MAGIC);
        for (hash, located) in self.records {
            out.extend_from_slice(&hash.to_le_bytes());
            let field = (u64::from(place_code(located.place)) << 56) | (located.offset & OFFSET_MASK);
            out.extend_from_slice(&field.to_le_bytes());
            out.extend_from_slice(&located.length.to_le_bytes());
            out.extend_from_slice(&located.crc32.to_le_bytes());
        }
        out
    }
}

/// A read index (its bytes already checked against the manifest).
#[derive(Debug)]
pub struct Index {
    bytes: Vec<u8>,
}

impl Index {
    /// Takes an index's bytes.
    ///
    /// # Errors
    /// A message when they are not an index.
    pub fn parse(bytes: Vec<u8>) -> Result<Index, String> {
        if !bytes.starts_with(MAGIC) || !(bytes.len() - MAGIC.len()).is_multiple_of(RECORD) {
            return Err("not a snapshot index".into());
        }
        Ok(Index { bytes })
    }

    /// How many entries it lists.
    fn len(&self) -> usize {
        (self.bytes.len() - MAGIC.len()) / RECORD
    }

    fn record(&self, at: usize) -> &[u8] {
        let start = MAGIC.len() + at * RECORD;
        &self.bytes[start..start + RECORD]
    }

    fn hash_at(&self, at: usize) -> u64 {
        read_u64(self.record(at), 0)
    }

    /// Every entry whose id has `id`'s hash (usually none or one; the
    /// caller compares the ids). `Err`: a record with a place code that
    /// does not exist.
    ///
    /// # Errors
    /// A message naming the record.
    pub fn candidates(&self, id: &str) -> Result<Vec<Located>, String> {
        let hash = id_hash(id);
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let middle = low + (high - low) / 2;
            if self.hash_at(middle) < hash {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        let mut found = Vec::new();
        while low < self.len() && self.hash_at(low) == hash {
            found.push(self.located_at(low)?);
            low += 1;
        }
        Ok(found)
    }

    /// Every record, in index order: the id's hash and where its entry is.
    ///
    /// # Errors
    /// A message naming the first record whose place does not exist.
    pub fn records(&self) -> impl Iterator<Item = Result<(u64, Located), String>> + '_ {
        (0..self.len()).map(|at| Ok((self.hash_at(at), self.located_at(at)?)))
    }

    /// The entry record `at` locates.
    fn located_at(&self, at: usize) -> Result<Located, String> {
        let record = self.record(at);
        let field = read_u64(record, 8);
        let code = field >> 56;
        let place = usize::try_from(code)
            .ok()
            .and_then(|code| Place::ALL.get(code).copied())
            .filter(|&place| u64::from(place_code(place)) == code)
            .ok_or_else(|| format!("record {at} names place {code}, which does not exist"))?;
        Ok(Located {
            place,
            offset: field & OFFSET_MASK,
            length: read_u32(record, 16),
            crc32: read_u32(record, 20),
        })
    }
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fnv_1a_as_published() {
        // The reference values of the FNV test suite.
        assert_eq!(id_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(id_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(id_hash("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn every_entry_is_found_at_its_place_and_nothing_else_is() {
        let mut builder = IndexBuilder::default();
        let ids: Vec<String> = (0..500).map(|n| format!("tt{n:07}")).collect();
        for (n, id) in ids.iter().enumerate() {
            let place = Place::ALL[n % 5];
            builder.push(id, place, n as u64 * 100, id.as_bytes());
        }
        let index = Index::parse(builder.finish()).expect("an index");
        assert_eq!(index.len(), 500);
        for (n, id) in ids.iter().enumerate() {
            let place = Place::ALL[n % 5];
            let found = index.candidates(id).expect("places that exist");
            assert!(
                found.contains(&Located {
                    place,
                    offset: n as u64 * 100,
                    length: u32::try_from(id.len()).expect("short"),
                    crc32: entry_crc(place, id.as_bytes()),
                }),
                "{id}: {found:?}"
            );
        }
        assert!(index.candidates("tt9999999").expect("places that exist").is_empty());
        assert!(Index::parse(b"MVQIDX1\n123".to_vec()).is_err());
        assert!(Index::parse(b"MVQIDX2\n".to_vec()).is_err());
        assert!(Index::parse(b"MVQ".to_vec()).is_err());
    }

    #[test]
    fn a_place_code_that_does_not_exist_is_refused() {
        let mut builder = IndexBuilder::default();
        builder.push("7", Place::Removed, 0, b"{}");
        let mut bytes = builder.finish();
        bytes[MAGIC.len() + 15] = 9;
        let index = Index::parse(bytes).expect("an index");
        assert!(index.candidates("7").expect_err("no place 9").contains("place 9"));
    }
}
