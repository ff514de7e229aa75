//! Snapshots: the documented JSON files the application reads, the
//! manifest that says which journal record they cover, the legacy files of
//! a store being upgraded, and the compaction base.
//!
//! | file | its one job |
//! |---|---|
//! | `files.rs` | the documented files: rendering (as Python's `json.dump(..., indent=2)`) and parsing |
//! | `manifest.rs` | writing a snapshot atomically; loading it only when every checksum agrees |
//! | `legacy.rs` | reading a legacy store's files; the event that imports them |
//! | `base.rs` | the compaction base `journal/base.json` |

pub(crate) mod base;
pub(crate) mod files;
pub(crate) mod legacy;
pub(crate) mod manifest;

use std::path::{Path, PathBuf};

use crate::entry::QueueEntry;
use crate::error::{Error, Result};
use crate::projection::{Place, QueueState};
use crate::seq::Seq;

use crate::layout::{MANIFEST_FILE, PENDING_FILE, QUEUE_FILES};

/// The manifest format this build writes: version 3 lists the four files;
/// versions 2 (sealed) and 1 (without a checksum of its own) list the
/// first three and are still read (their state has no removed movie).
pub const MANIFEST_VERSION: u32 = 3;

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

/// A snapshot's content: the queues as of journal record `seq`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapshotData {
    /// The last journal record the snapshot covers (`Seq(0)`: a legacy
    /// store's files, which no journal record covers).
    pub seq: Seq,
    /// Movies in flight, oldest first.
    pub in_flight: Vec<QueueEntry>,
    /// Pending, front first.
    pub pending: Vec<QueueEntry>,
    /// Failed, in failed order.
    pub failed: Vec<QueueEntry>,
    /// Completed, in completion order.
    pub completed: Vec<QueueEntry>,
    /// Removed, in removal order.
    pub removed: Vec<QueueEntry>,
}

impl SnapshotData {
    /// Builds the state this content describes; `source` names the file
    /// in an error.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the content cannot be a state (an id twice).
    pub fn into_state(self, source: &Path) -> Result<QueueState> {
        let mut state = QueueState::new();
        state.reserve(
            self.in_flight.len() + self.pending.len() + self.failed.len() + self.completed.len() + self.removed.len(),
        );
        let places = [
            (Place::InFlight, self.in_flight),
            (Place::Pending, self.pending),
            (Place::Failed, self.failed),
            (Place::Completed, self.completed),
            (Place::Removed, self.removed),
        ];
        for (place, entries) in places {
            for entry in entries {
                state.push_new(place, &entry).map_err(|error| Error::Corrupt {
                    path: source.to_path_buf(),
                    offset: 0,
                    detail: format!("{}; it appears again among the {place} entries", error.0),
                })?;
            }
        }
        Ok(state)
    }

    /// The content of `state`, covering record `seq`.
    #[must_use]
    pub fn of_state(state: &QueueState, seq: Seq) -> Self {
        SnapshotData {
            seq,
            in_flight: state.in_flight().collect(),
            pending: state.pending().collect(),
            failed: state.failed().collect(),
            completed: state.completed().collect(),
            removed: state.removed().collect(),
        }
    }
}
