//! Snapshots: the documented JSON files the application reads, the
//! manifest that says which journal record they cover, the legacy files of
//! a store being upgraded, and the compaction base.
//!
//! | file | its one job |
//! |---|---|
//! | `files.rs` | the documented files: rendering (as Python's `json.dump(..., indent=2)`) and parsing |
//! | `entries.rs` | reading a documented file entry by entry as its bytes come, never whole |
//! | `halves.rs` | loading a big documented file in two halves at once, as the sequential load would |
//! | `manifest.rs` | writing a snapshot atomically; loading it only when every checksum agrees |
//! | `legacy.rs` | reading a legacy store's files; the event that imports them |
//! | `base.rs` | the compaction base `journal/base.json` |

pub(crate) mod base;
pub(crate) mod entries;
pub(crate) mod files;
pub(crate) mod halves;
pub(crate) mod index;
pub(crate) mod legacy;
pub(crate) mod manifest;

use std::path::{Path, PathBuf};

use crate::entry::QueueEntry;
use crate::projection::{Place, QueueState};
use crate::seq::Seq;

use crate::layout::{MANIFEST_FILE, PENDING_FILE, QUEUE_FILES};

/// The manifest format this build writes: version 4 adds the index and the
/// counts (`index.rs`); version 3 lists the four files; versions 2 (sealed)
/// and 1 (without a checksum of its own) list the first three and are
/// still read (their state has no removed movie).
pub const MANIFEST_VERSION: u32 = 4;

/// Wraps a JSON `body` as `{"crc32":C,"<key>":BODY}`, where `C` is the
/// CRC32 of `body`'s bytes exactly as they are stored: the file checksums
/// everything it asserts, and a flipped digit anywhere is caught.
#[must_use]
pub fn seal(key: &str, body: &[u8]) -> Vec<u8> {
    let mut sealed = format!("{{\"crc32\":{},\"{key}\":", crc32fast::hash(body)).into_bytes();
    sealed.extend_from_slice(body);
    sealed.extend_from_slice(b"}\n");
    sealed
}

#[derive(serde::Deserialize)]
struct Sealed<'a> {
    crc32: u32,
    #[serde(borrow, alias = "manifest", alias = "base")]
    body: &'a serde_json::value::RawValue,
}

/// What [`unseal`] found.
#[derive(Debug)]
pub enum Unsealed<'a> {
    /// A sealed body whose checksum holds.
    Body(&'a str),
    /// Not a sealed file (an older format, read its own way).
    NotSealed,
}

/// Opens a file written by [`seal`], checking its checksum over the
/// stored bytes.
///
/// # Errors
/// A message saying what does not hold (the checksum, the JSON).
pub fn unseal(bytes: &[u8]) -> std::result::Result<Unsealed<'_>, String> {
    match serde_json::from_slice::<Sealed<'_>>(bytes) {
        Ok(sealed) => {
            let found = crc32fast::hash(sealed.body.get().as_bytes());
            if found == sealed.crc32 {
                Ok(Unsealed::Body(sealed.body.get()))
            } else {
                Err(format!(
                    "checksum {found:#010x} of its content does not match the recorded {:#010x}",
                    sealed.crc32
                ))
            }
        }
        Err(_)
            if serde_json::from_slice::<serde_json::Value>(bytes).is_ok_and(|value| value.get("crc32").is_none()) =>
        {
            Ok(Unsealed::NotSealed)
        }
        Err(error) => Err(format!("not a sealed JSON file: {error}")),
    }
}

/// Why a snapshot (or a compaction base) was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The file that does not hold up.
    pub path: PathBuf,
    /// What is wrong with it.
    pub detail: String,
}

impl Rejected {
    /// `path` is rejected for `detail`.
    #[must_use]
    pub fn new(path: &Path, detail: String) -> Self {
        Rejected {
            path: path.to_path_buf(),
            detail,
        }
    }
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}: {}", self.path.display(), self.detail)
    }
}

/// A snapshot's content: the queues as of journal record `seq`, held as
/// the state they describe. Each entry is stored once, compactly, as the
/// state stores it: a checkpoint of a million movies costs what its queues
/// cost, and loading one builds the state entry by entry, with no list of
/// parsed entries beside it (a fresh open's memory is the state's).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapshotData {
    /// The last journal record the snapshot covers.
    pub seq: Seq,
    /// The queues as of `seq`.
    pub state: QueueState,
    /// The documented files it was loaded from (a snapshot's, with an
    /// index), which a later snapshot may keep.
    pub(crate) on_disk: manifest::OnDisk,
}

/// A checkpoint's entries by place, in place order (front first), for the
/// formats that list them: in flight, pending, failed, completed, removed.
pub type Lists = [Vec<QueueEntry>; 5];

/// The places of [`Lists`], in order.
pub const LIST_PLACES: [Place; 5] = [
    Place::InFlight,
    Place::Pending,
    Place::Failed,
    Place::Completed,
    Place::Removed,
];

impl SnapshotData {
    /// The queues as of `seq`.
    #[must_use]
    pub fn new(seq: Seq, state: QueueState) -> Self {
        SnapshotData {
            seq,
            state,
            on_disk: manifest::OnDisk::default(),
        }
    }

    /// The content `lists` describe, as of `seq`.
    ///
    /// # Errors
    /// A message if the lists cannot be a state (an id listed twice).
    pub fn from_lists(seq: Seq, lists: Lists) -> std::result::Result<Self, String> {
        let mut state = QueueState::new();
        state.reserve(lists.iter().map(Vec::len).sum());
        for (place, entries) in LIST_PLACES.into_iter().zip(lists) {
            for entry in entries {
                push(&mut state, place, &entry)?;
            }
        }
        Ok(SnapshotData::new(seq, state))
    }

    /// The entries by place (parsed back from the state).
    #[must_use]
    pub fn lists(&self) -> Lists {
        LIST_PLACES.map(|place| self.state.entries(place).collect())
    }

    /// The state.
    #[must_use]
    pub fn into_state(self) -> QueueState {
        self.state
    }

    /// The state, its record of changes starting here, and the files it
    /// was loaded from: what a snapshot written later from it keeps
    /// ([`manifest::write_snapshot_keeping`]).
    #[must_use]
    pub(crate) fn into_tracked(self) -> (QueueState, manifest::OnDisk) {
        let mut state = self.state;
        state.forget_changes();
        (state, self.on_disk)
    }
}

/// Adds `entry` at the back of `place` in a state being loaded.
///
/// # Errors
/// A message if its id is already in the state.
pub fn push(state: &mut QueueState, place: Place, entry: &QueueEntry) -> std::result::Result<(), String> {
    state
        .push_new(place, entry)
        .map_err(|error| listed_again(&error.0, place))
}

/// The message for an entry whose id a checkpoint lists twice.
#[must_use]
pub fn listed_again(detail: &str, place: Place) -> String {
    format!("{detail}; it appears again among the {place} entries")
}
