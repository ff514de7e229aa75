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

use std::path::Path;

use crate::entry::QueueEntry;
use crate::error::{Error, Result};
use crate::projection::{Place, QueueState};
use crate::seq::Seq;

/// Movies waiting (and, first, those in flight).
pub const PENDING_FILE: &str = "queue_pending.json";
/// Movies that failed, with their retry information.
pub const FAILED_FILE: &str = "queue_failed.json";
/// Movies done.
pub const COMPLETED_FILE: &str = "queue_completed.json";
/// The manifest naming the sequence number the files cover and their checksums.
pub const MANIFEST_FILE: &str = "queue_snapshot.json";
/// The three documented files, in the order the manifest lists them.
pub const QUEUE_FILES: [&str; 3] = [PENDING_FILE, FAILED_FILE, COMPLETED_FILE];
/// The manifest format this build writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// Why a snapshot was not used (logged; start-up then falls back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

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
}

impl SnapshotData {
    /// Builds the state this content describes; `source` names the file
    /// in an error.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the content cannot be a state (an id twice).
    pub fn into_state(self, source: &Path) -> Result<QueueState> {
        let mut state = QueueState::new();
        state.reserve(self.in_flight.len() + self.pending.len() + self.failed.len() + self.completed.len());
        let places = [
            (Place::InFlight, self.in_flight),
            (Place::Pending, self.pending),
            (Place::Failed, self.failed),
            (Place::Completed, self.completed),
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
        }
    }
}
