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

use super::{Rejected, SnapshotData, Unsealed, seal, unseal};
use crate::entry::QueueEntry;
use crate::error::{Error, Result};
use crate::seq::{SEQ_MAX, Seq};
use crate::storage::{self, Storage};

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

/// Loads and checks the compaction base. `Ok(None)`: there is none.
///
/// # Errors
/// [`Rejected`] naming the file when it is unreadable or its checksum,
/// version or sequence number does not hold.
pub fn load_base(storage: &dyn Storage, path: &Path) -> std::result::Result<Option<SnapshotData>, Rejected> {
    if !storage.exists(path) {
        return Ok(None);
    }
    let reject = |detail: String| Rejected::new(path, detail);
    let bytes = storage.read(path).map_err(|error| reject(error.to_string()))?;
    let data = parse_base(&bytes).map_err(reject)?;
    // A checkpoint at the last sequence number there is leaves no room
    // for a record after it: a writer could not go on (fuzz regression
    // `writer_past_seq_max`).
    if data.seq.0 >= SEQ_MAX {
        return Err(reject(format!(
            "sequence number {} is out of range (no record could follow it)",
            data.seq
        )));
    }
    Ok(Some(data))
}

fn parse_base(bytes: &[u8]) -> std::result::Result<SnapshotData, String> {
    match unseal(bytes)? {
        Unsealed::Body(body) => {
            let base: Base = serde_json::from_str(body).map_err(|error| error.to_string())?;
            let removed_allowed = base.version >= 3 || base.removed.is_empty();
            if !(2..=BASE_VERSION).contains(&base.version) || !removed_allowed {
                return Err(format!("unsupported base version {}", base.version));
            }
            base.into_data()
        }
        Unsealed::NotSealed => parse_version_1(bytes),
    }
}

fn parse_version_1(bytes: &[u8]) -> std::result::Result<SnapshotData, String> {
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
    let lists = [file.in_flight, file.pending, file.failed, file.completed, Vec::new()];
    SnapshotData::from_lists(file.seq, lists)
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
