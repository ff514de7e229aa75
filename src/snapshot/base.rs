//! The compaction base `journal/base.json`: the state as of a record,
//! kept in the journal's own directory. `compact` writes it before it
//! deletes the segments it covers; recovery writes it when a snapshot is
//! the only bridge over records the journal no longer holds (damage it set
//! aside), so the journal never depends on the documented files.
//!
//! Version 2 is sealed: `{"crc32":C,"base":{"version":2,"seq":S,...}}`, with
//! `C` over the stored bytes of the `base` value, so the checksum covers the
//! sequence number too. Version 1 (checksum over the re-serialized lists,
//! not over `seq`) is still read.

use std::path::Path;

use serde::{Deserialize, Serialize};

use serde_json::value::RawValue;

use super::entries::Entries;
use super::{LIST_PLACES, Lists, Rejected, SnapshotData, Unsealed, push, seal, unseal};
use crate::entry::QueueEntry;
use crate::error::{Error, Result};
use crate::projection::{Place, QueueState};
use crate::seq::{SEQ_MAX, Seq};
use crate::storage::{self, Entry, Storage};

use crate::layout::BASE_FILE;

/// The base format this build writes: version 3 holds the removed queue;
/// version 2 (sealed, without it) is still read.
const BASE_VERSION: u32 = 3;

#[derive(Serialize, Deserialize)]
struct Base {
    version: u32,
    seq: Seq,
    in_flight: Vec<QueueEntry>,
    pending: Vec<QueueEntry>,
    failed: Vec<QueueEntry>,
    completed: Vec<QueueEntry>,
    #[serde(default)]
    removed: Vec<QueueEntry>,
}

impl Base {
    fn into_data(self) -> std::result::Result<SnapshotData, String> {
        let lists = [self.in_flight, self.pending, self.failed, self.completed, self.removed];
        SnapshotData::from_lists(self.seq, lists)
    }
}

/// Version 1: the checksum beside the lists, over their re-serialization.
#[derive(Deserialize)]
struct BaseVersion1 {
    version: u32,
    seq: Seq,
    crc32: u32,
    in_flight: Vec<QueueEntry>,
    pending: Vec<QueueEntry>,
    failed: Vec<QueueEntry>,
    completed: Vec<QueueEntry>,
}

/// Writes the compaction base (the state as of `data.seq`) atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_base(storage: &dyn Storage, journal_dir: &Path, data: &SnapshotData) -> Result<()> {
    let [in_flight, pending, failed, completed, removed] = data.lists();
    let base = Base {
        version: BASE_VERSION,
        seq: data.seq,
        in_flight,
        pending,
        failed,
        completed,
        removed,
    };
    let body = serde_json::to_vec(&base).map_err(|error| Error::InvalidArgument(error.to_string()))?;
    storage::write_atomic(storage, &journal_dir.join(BASE_FILE), &seal("base", &body))
}

/// Loads and checks the compaction base, building its state entry by
/// entry (no list of parsed entries is held beside it). `Ok(None)`: there
/// is none.
///
/// # Errors
/// [`Rejected`] naming the file when it is unreadable or its checksum,
/// version, sequence number or entries do not hold.
pub fn load_base(storage: &dyn Storage, path: &Path) -> std::result::Result<Option<SnapshotData>, Rejected> {
    read_base(storage, path, &mut |seq, lists| {
        let mut state = QueueState::new();
        lists.each(&mut |place, entry| push(&mut state, place, &entry))?;
        Ok(SnapshotData::new(seq, state))
    })
}

/// Checks the compaction base as [`load_base`] does (checksum, version,
/// sequence number, every entry, no id twice) without building its state,
/// and returns the record it covers: what recovery decides from. The
/// state is loaded (by [`load_base`]) only when an open starts from it.
///
/// # Errors
/// As [`load_base`].
pub fn check_base(storage: &dyn Storage, path: &Path) -> std::result::Result<Option<Seq>, Rejected> {
    read_base(storage, path, &mut |seq, lists| {
        let mut ids = hashbrown::HashSet::new();
        lists.each(&mut |place, entry| {
            if ids.insert(entry.id().to_owned()) {
                Ok(())
            } else {
                Err(super::listed_again(
                    &format!("{:?} is already listed", entry.id()),
                    place,
                ))
            }
        })?;
        Ok(seq)
    })
}

/// The record the compaction base covers, its checksum and version
/// checked but not its entries, the file read whole: [`sealed_seq`] for a
/// base not in the sealed shape this build writes.
fn base_seq(storage: &dyn Storage, path: &Path) -> std::result::Result<Option<Seq>, Rejected> {
    read_base(storage, path, &mut |seq, _| Ok(seq))
}

/// The record the compaction base covers when its checksum holds, read
/// in pieces (the file is never held whole, its JSON never parsed past
/// its first fields, its entries not checked: read them with
/// [`load_base`] before starting from it): what a lean reader checks
/// before it trusts that the journal, from the base, rebuilds the
/// snapshot's state, and what a replay chooses its starting point by. A
/// base this build did not write in its sealed shape is read whole.
/// `None`: no base, or one that does not hold up.
#[must_use]
pub fn sealed_seq(storage: &dyn Storage, path: &Path) -> Option<Seq> {
    const PIECE: usize = 1 << 20;
    let Ok(Entry::File(length)) = storage.entry(path) else {
        return None;
    };
    let mut file = storage.open_read(path).ok()?;
    let mut piece = vec![0; PIECE];
    let read = file.read_at(0, &mut piece).ok()?;
    let head = sealed_head(&piece[..read]);
    let Some((crc32, body_start, seq)) = head else {
        return base_seq(storage, path).ok().flatten();
    };
    // The body runs to the closing `}` and newline `seal` writes.
    let body_end = length.checked_sub(2).filter(|&end| end >= body_start as u64)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut at = body_start as u64;
    while at < body_end {
        let want = usize::try_from(body_end - at).map_or(PIECE, |left| left.min(PIECE));
        let read = file.read_at(at, &mut piece[..want]).ok()?;
        if read == 0 {
            return None;
        }
        hasher.update(&piece[..read]);
        at += read as u64;
    }
    let mut tail = [0; 3];
    let read = file.read_at(body_end, &mut tail).ok()?;
    (&tail[..read] == b"}\n" && hasher.finalize() == crc32 && seq.0 < SEQ_MAX).then_some(seq)
}

/// The sealed shape's first bytes, as `seal` and `write_base` write them:
/// `{"crc32":C,"base":{"version":V,"seq":S,` with a version this build
/// reads. Its checksum, where its body starts, and its record.
fn sealed_head(bytes: &[u8]) -> Option<(u32, usize, Seq)> {
    let number = |bytes: &[u8]| -> Option<(u64, usize)> {
        let digits = bytes.iter().take_while(|byte| byte.is_ascii_digit()).count();
        let text = std::str::from_utf8(&bytes[..digits]).ok()?;
        Some((text.parse().ok()?, digits))
    };
    let rest = bytes.strip_prefix(b"{\"crc32\":")?;
    let (crc32, digits) = number(rest)?;
    let rest = rest[digits..].strip_prefix(b",\"base\":")?;
    let body_start = bytes.len() - rest.len();
    let rest = rest.strip_prefix(b"{\"version\":")?;
    let (version, digits) = number(rest)?;
    let rest = rest[digits..].strip_prefix(b",\"seq\":")?;
    let (seq, digits) = number(rest)?;
    rest[digits..].starts_with(b",").then_some(())?;
    (2..=u64::from(BASE_VERSION))
        .contains(&version)
        .then(|| Some((u32::try_from(crc32).ok()?, body_start, Seq(seq))))
        .flatten()
}

/// Reads the base at `path` and hands its record and lists to `make`.
fn read_base<T>(
    storage: &dyn Storage,
    path: &Path,
    make: &mut dyn FnMut(Seq, BaseLists<'_>) -> std::result::Result<T, String>,
) -> std::result::Result<Option<T>, Rejected> {
    if !storage.exists(path) {
        return Ok(None);
    }
    let reject = |detail: String| Rejected::new(path, detail);
    let bytes = storage.read(path).map_err(|error| reject(error.to_string()))?;
    let (seq, found) = parse_base(&bytes, make).map_err(reject)?;
    // A checkpoint at the last sequence number there is leaves no room
    // for a record after it: a writer could not go on (fuzz regression
    // `writer_past_seq_max`).
    if seq.0 >= SEQ_MAX {
        return Err(reject(format!(
            "sequence number {seq} is out of range (no record could follow it)"
        )));
    }
    Ok(Some(found))
}

/// The lists of a base, as they are stored.
enum BaseLists<'a> {
    /// Versions 2 and 3: each list's JSON text, read entry by entry.
    Raw([Option<&'a RawValue>; 5]),
    /// Version 1: parsed whole (its checksum is over their re-serialization).
    Parsed(Lists),
}

impl BaseLists<'_> {
    /// Hands each entry with its place to `each`, in place order.
    fn each(
        self,
        each: &mut dyn FnMut(Place, QueueEntry) -> std::result::Result<(), String>,
    ) -> std::result::Result<(), String> {
        match self {
            BaseLists::Raw(lists) => {
                for (place, list) in LIST_PLACES.into_iter().zip(lists) {
                    let Some(list) = list else { continue };
                    let mut handle = |entry: QueueEntry| each(place, entry);
                    let mut entries = Entries::new(&mut handle);
                    entries
                        .feed(list.get().as_bytes(), true)
                        .map_err(|error| format!("its {place} entries: {error}"))?;
                }
            }
            BaseLists::Parsed(lists) => {
                for (place, entries) in LIST_PLACES.into_iter().zip(lists) {
                    for entry in entries {
                        each(place, entry)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A sealed base's body, its lists left as text.
#[derive(Deserialize)]
struct RawBase<'a> {
    version: u32,
    seq: Seq,
    #[serde(borrow)]
    in_flight: &'a RawValue,
    #[serde(borrow)]
    pending: &'a RawValue,
    #[serde(borrow)]
    failed: &'a RawValue,
    #[serde(borrow)]
    completed: &'a RawValue,
    #[serde(borrow, default)]
    removed: Option<&'a RawValue>,
}

fn parse_base<T>(
    bytes: &[u8],
    make: &mut dyn FnMut(Seq, BaseLists<'_>) -> std::result::Result<T, String>,
) -> std::result::Result<(Seq, T), String> {
    match unseal(bytes)? {
        Unsealed::Body(body) => {
            let base: RawBase<'_> = serde_json::from_str(body).map_err(|error| error.to_string())?;
            // Version 2 has no removed queue: an empty one is its own.
            let removed_allowed = base.version >= 3
                || base.removed.is_none_or(|list| {
                    serde_json::from_str::<Vec<serde::de::IgnoredAny>>(list.get()).is_ok_and(|list| list.is_empty())
                });
            if !(2..=BASE_VERSION).contains(&base.version) || !removed_allowed {
                return Err(format!("unsupported base version {}", base.version));
            }
            let lists = [
                Some(base.in_flight),
                Some(base.pending),
                Some(base.failed),
                Some(base.completed),
                base.removed,
            ];
            Ok((base.seq, make(base.seq, BaseLists::Raw(lists))?))
        }
        Unsealed::NotSealed => {
            let (seq, lists) = parse_version_1(bytes)?;
            Ok((seq, make(seq, BaseLists::Parsed(lists))?))
        }
    }
}

fn parse_version_1(bytes: &[u8]) -> std::result::Result<(Seq, Lists), String> {
    let file: BaseVersion1 = serde_json::from_slice(bytes).map_err(|error| error.to_string())?;
    if file.version != 1 {
        return Err(format!("unsupported base version {}", file.version));
    }
    let lists = (&file.in_flight, &file.pending, &file.failed, &file.completed);
    let found = serde_json::to_vec(&lists)
        .map(|json| crc32fast::hash(&json))
        .unwrap_or_default();
    if found != file.crc32 {
        return Err(format!(
            "checksum {found:#010x} does not match the recorded {:#010x}",
            file.crc32
        ));
    }
    Ok((
        file.seq,
        [file.in_flight, file.pending, file.failed, file.completed, Vec::new()],
    ))
}

/// Reads a base whose checksum does not hold, for `repair`'s last resort
/// when nothing else knows the state it records: its content if it parses.
#[must_use]
pub fn load_base_leniently(storage: &dyn Storage, path: &Path) -> Option<SnapshotData> {
    #[derive(Deserialize)]
    struct Loose {
        #[serde(alias = "base")]
        body: Base,
    }
    let bytes = storage.read(path).ok()?;
    let base = serde_json::from_slice::<Loose>(&bytes)
        .map(|loose| loose.body)
        .or_else(|_| serde_json::from_slice::<Base>(&bytes))
        .ok()?;
    (base.seq.0 < SEQ_MAX).then(|| base.into_data().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RealStorage;

    #[test]
    fn a_sealed_base_is_checked_in_pieces_and_any_changed_byte_fails_it() {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let mut state = QueueState::new();
        for n in 0..50 {
            let entry = crate::entry::QueueEntry::new(crate::movie::Movie::new(format!("m{n}"), "T", "2000"));
            state.push_new(Place::Pending, &entry).expect("new");
        }
        write_base(&RealStorage, dir.path(), &SnapshotData::new(Seq(77), state)).expect("write");
        let path = dir.path().join(BASE_FILE);
        assert_eq!(sealed_seq(&RealStorage, &path), Some(Seq(77)));
        let bytes = std::fs::read(&path).expect("read");
        for at in [0, 10, bytes.len() / 2, bytes.len() - 3, bytes.len() - 1] {
            let mut changed = bytes.clone();
            changed[at] ^= 0x01;
            std::fs::write(&path, &changed).expect("write");
            assert_eq!(sealed_seq(&RealStorage, &path), None, "a byte changed at {at}");
            assert!(
                base_seq(&RealStorage, &path).is_err() || at == bytes.len() - 1,
                "the whole read agrees at {at}"
            );
        }
        std::fs::write(&path, &bytes[..bytes.len() - 1]).expect("write");
        assert_eq!(sealed_seq(&RealStorage, &path), None, "cut short");
        std::fs::remove_file(&path).expect("remove");
        assert_eq!(sealed_seq(&RealStorage, &path), None, "none");
    }
}
