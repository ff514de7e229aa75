//! Loading a big documented file in two halves at once: the second half,
//! from a boundary between two entries near the middle, is split and
//! parsed on a thread of its own while this one loads the first half into
//! the state; its entries are then placed after the first half's, in
//! order. The result is the sequential load's, entry for entry: the
//! boundary is a guess (the `},\n  {` that the renderer writes between
//! entries, which no JSON string can hold, as a string cannot hold a raw
//! newline), confirmed only when the first half's splitter, fed up to it,
//! stands between two entries; otherwise, or when the second half does not
//! parse, that half is read again here, in order, so a message names the
//! same entry at the same byte as the sequential load.

use std::path::Path;

use super::entries::{Entries, Pieces, parse_entry};
use crate::entry::QueueEntry;
use crate::projection::{Place, Prepared, QueueState};
use crate::storage::{ReadableFile, Storage};

/// Files smaller than this load on one thread: they load in a few tenths
/// of a second, and the second thread's allocations (glibc gives it an
/// arena of its own) cost more memory than the time they save (at 100,000
/// movies, a 20 MB file: 1.82x the JSON in resident memory after the open
/// in halves, 1.31x on one thread; at 1,000,000, 200 MB, the same
/// resident memory either way).
const HALVES_MIN: u64 = 32 << 20;

/// How far past the middle a boundary is looked for.
const SEARCH: usize = 1 << 20;

/// What the renderer writes between two entries of a documented file; a
/// boundary is right after its `,`.
const BETWEEN: &[u8] = b"},\n  {";

/// Where the second half starts: right after the `,` of the first
/// [`BETWEEN`] at or after the middle of the file (`None`: none nearby).
fn boundary(file: &mut dyn ReadableFile, length: u64) -> Option<u64> {
    let middle = length / 2;
    let mut window = vec![0; SEARCH];
    let read = file.read_at(middle, &mut window).ok()?;
    let found = memchr::memmem::find(&window[..read], BETWEEN)?;
    Some(middle + (found + 2) as u64)
}

/// The second half's entries, prepared for the state in order, each with
/// its byte offset; and the length and CRC32 hasher of the bytes read.
struct SecondHalf {
    entries: Vec<(u64, Prepared)>,
    length: u64,
    hasher: crc32fast::Hasher,
}

/// Reads `path` from byte `from` to its end through a reader of its own,
/// splitting and preparing each entry for `place`.
fn second_half(
    storage: &dyn Storage,
    path: &Path,
    from: u64,
    place: Place,
    piece: usize,
) -> Result<SecondHalf, String> {
    let mut file = storage.open_read(path).map_err(|error| error.to_string())?;
    let (mut entries, mut scratch) = (Vec::new(), Vec::new());
    let mut each = |offset: u64, value: &[u8]| {
        let entry = parse_entry(value)?;
        entries.push((offset, QueueState::prepare(&entry, place, &mut scratch)));
        Ok(())
    };
    let mut splitter = Entries::raw(&mut each).after_comma_at(from);
    let mut pieces = Pieces::new(file.as_mut(), from, piece);
    pieces.feed(&mut splitter, None)?;
    let (length, hasher) = pieces.read();
    Ok(SecondHalf {
        entries,
        length,
        hasher,
    })
}

/// Loads the documented file `path` (whose open reader is `file`, of
/// `length` bytes as its manifest says) into `state`: its first
/// `first_count` entries in `places.0`, the rest in `places.1`. Returns how
/// many entries it held, and the length and CRC32 of the bytes it read (the
/// caller compares them with the manifest's: bytes that changed since it
/// checked them are refused). A file under [`HALVES_MIN`], or a machine of
/// one core, loads on this thread alone.
///
/// # Errors
/// A message naming the entry and what is wrong with it, as the
/// sequential load's.
#[allow(clippy::too_many_arguments, reason = "the load's own arguments, and the reader's")]
pub fn load(
    storage: &dyn Storage,
    path: &Path,
    file: &mut dyn ReadableFile,
    length: u64,
    state: &mut QueueState,
    places: (Place, Place),
    first_count: usize,
    piece: usize,
) -> Result<(usize, (u64, u32)), String> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let halves_min = if cores > 1 { HALVES_MIN } else { u64::MAX };
    let target = Target {
        state,
        places,
        first_count,
    };
    load_from(storage, path, file, length, target, piece, halves_min)
}

/// Where a load puts its entries.
struct Target<'s> {
    state: &'s mut QueueState,
    places: (Place, Place),
    first_count: usize,
}

/// [`load`], in halves when the file has at least `halves_min` bytes.
fn load_from(
    storage: &dyn Storage,
    path: &Path,
    file: &mut dyn ReadableFile,
    length: u64,
    target: Target<'_>,
    piece: usize,
    halves_min: u64,
) -> Result<(usize, (u64, u32)), String> {
    let Target {
        state,
        places,
        first_count,
    } = target;
    let split = if length >= halves_min {
        boundary(file, length)
    } else {
        None
    };
    let mut index = 0;
    let mut each = |entry: QueueEntry| {
        let place = if index < first_count { places.0 } else { places.1 };
        index += 1;
        super::push(state, place, &entry)
    };
    let mut splitter = Entries::new(&mut each);
    let mut pieces = Pieces::new(file, 0, piece);
    let second = match split {
        Some(split) => {
            let (first, second) = std::thread::scope(|scope| {
                let second = scope.spawn(|| second_half(storage, path, split, places.1, piece));
                let first = pieces.feed(&mut splitter, Some(split));
                (first, second.join())
            });
            first?;
            match second {
                Ok(Ok(second)) if pieces.stands_at(split) && splitter.between_entries() => Some(second),
                // Not a boundary after all (the second half then does
                // not parse either: what follows a guess inside an entry
                // closes one bracket too many), or the second half does
                // not parse (read again below, to say where), or its
                // thread panicked.
                _ => None,
            }
        }
        None => None,
    };
    let Some(second) = second else {
        pieces.feed(&mut splitter, None)?;
        let (length, hasher) = pieces.read();
        return Ok((index, (length, hasher.finalize())));
    };
    let mut count = splitter.count();
    for (offset, prepared) in second.entries {
        let place = if count < first_count { places.0 } else { places.1 };
        state.push_prepared(prepared, place).map_err(|error| {
            format!(
                "entry {count} (at byte {offset}): {}",
                super::listed_again(&error.0, place)
            )
        })?;
        count += 1;
    }
    let (length, mut hasher) = pieces.read();
    hasher.combine(&second.hasher);
    Ok((count, (length + second.length, hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RealStorage;
    use proptest::prelude::*;

    /// Loads `text` from a file, in halves (any size) or alone: the state
    /// or the message, the count, the length and CRC32 read.
    fn load_text(text: &[u8], first_count: usize, halves: bool) -> Result<(QueueState, usize, (u64, u32)), String> {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let path = dir.path().join(crate::layout::PENDING_FILE);
        std::fs::write(&path, text).expect("write");
        let mut file = RealStorage.open_read(&path).expect("open");
        let mut state = QueueState::new();
        let target = Target {
            state: &mut state,
            places: (Place::InFlight, Place::Pending),
            first_count,
        };
        let halves_min = if halves { 0 } else { u64::MAX };
        let (count, read) = load_from(
            &RealStorage,
            &path,
            file.as_mut(),
            text.len() as u64,
            target,
            64,
            halves_min,
        )?;
        Ok((state, count, read))
    }

    /// An entry: its id, and whether it is malformed (`year` an object)
    /// or holds the renderer's boundary inside a nested value.
    fn entry_text(id: u16, malformed: bool, nested_boundary: bool) -> serde_json::Value {
        let mut entry = serde_json::json!({"id": format!("m{id}"), "title": "T", "year": "2000"});
        if malformed {
            entry["year"] = serde_json::json!({"not": "a year"});
        }
        if nested_boundary {
            // Rendered compactly inside the entry below: `},\n  {` in a
            // nested array, not between entries.
            entry["x"] = serde_json::json!("NESTED");
        }
        entry
    }

    fn file_text(entries: &[serde_json::Value]) -> Vec<u8> {
        let pretty = String::from_utf8(serde_json::to_vec_pretty(entries).expect("JSON")).expect("UTF-8");
        pretty.replace("\"NESTED\"", "[{\"a\": 1},\n  {\"b\": 2}]").into_bytes()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// In halves or alone: the same state, count and bytes read, or the
        /// same message naming the same entry at the same byte.
        #[test]
        fn halves_load_as_one_thread_does(
            entries in proptest::collection::vec((0_u16..40, proptest::bool::weighted(0.03), proptest::bool::weighted(0.2)), 0..60),
            first_count in 0_usize..30,
        ) {
            let entries: Vec<_> = entries
                .into_iter()
                .map(|(id, malformed, nested)| entry_text(id, malformed, nested))
                .collect();
            let text = file_text(&entries);
            let alone = load_text(&text, first_count, false);
            let halves = load_text(&text, first_count, true);
            match (alone, halves) {
                (Ok(alone), Ok(halves)) => {
                    prop_assert!(alone.0 == halves.0, "the same state");
                    prop_assert_eq!((alone.1, alone.2), (halves.1, halves.2));
                }
                (alone, halves) => prop_assert_eq!(alone.err(), halves.err()),
            }
        }
    }

    #[test]
    fn a_boundary_guess_inside_an_entry_loads_as_one_thread_does() {
        // Every entry holds the renderer's boundary in a nested array, so
        // the first one after the middle is inside an entry.
        let entries: Vec<_> = (0..20).map(|id| entry_text(id, false, true)).collect();
        let text = file_text(&entries);
        let middle = text.len() / 2;
        let guess = memchr::memmem::find(&text[middle..], BETWEEN).expect("a guess") + middle;
        assert!(
            text[..guess].ends_with(b"1"),
            "the guess is the nested one: {}",
            String::from_utf8_lossy(&text[guess - 20..guess + 10])
        );
        let (alone, halves) = (
            load_text(&text, 3, false).expect("loads"),
            load_text(&text, 3, true).expect("loads"),
        );
        assert!(alone.0 == halves.0);
        assert_eq!(halves.1, 20);
    }
}
