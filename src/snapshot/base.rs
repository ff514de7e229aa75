//! The compaction base `journal/base.json`: the state the journal's first
//! remaining segment continues, written by `compact` before any segment
//! is deleted.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::SnapshotData;
use crate::entry::QueueEntry;
use crate::error::{Error, Result};
use crate::seq::Seq;
use crate::storage::{self, Storage};

pub use crate::journal::segment::BASE_FILE;

#[derive(Serialize, Deserialize)]
struct BaseFile {
    version: u32,
    seq: Seq,
    crc32: u32,
    in_flight: Vec<QueueEntry>,
    pending: Vec<QueueEntry>,
    failed: Vec<QueueEntry>,
    completed: Vec<QueueEntry>,
}

fn base_crc(data: &SnapshotData) -> Result<u32> {
    let lists = (&data.in_flight, &data.pending, &data.failed, &data.completed);
    let bytes = serde_json::to_vec(&lists).map_err(|error| Error::InvalidArgument(error.to_string()))?;
    Ok(crc32fast::hash(&bytes))
}

/// Writes the compaction base (the state as of `data.seq`) atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_base(storage: &dyn Storage, journal_dir: &Path, data: SnapshotData) -> Result<()> {
    let crc32 = base_crc(&data)?;
    let file = BaseFile {
        version: 1,
        seq: data.seq,
        crc32,
        in_flight: data.in_flight,
        pending: data.pending,
        failed: data.failed,
        completed: data.completed,
    };
    let bytes = serde_json::to_vec(&file).map_err(|error| Error::InvalidArgument(error.to_string()))?;
    storage::write_atomic(storage, &journal_dir.join(BASE_FILE), &bytes)
}

/// Loads and checks the compaction base.
///
/// # Errors
/// [`Error::Corrupt`] naming the file when it is missing, unreadable or its CRC disagrees.
pub fn load_base(storage: &dyn Storage, path: &Path) -> Result<SnapshotData> {
    let corrupt = |detail: String| Error::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        detail,
    };
    if !storage.exists(path) {
        return Err(corrupt(
            "the journal was compacted but its base file is missing and no usable snapshot covers the gap".into(),
        ));
    }
    let bytes = storage.read(path).map_err(|error| Error::io("read", path, error))?;
    let file: BaseFile = serde_json::from_slice(&bytes).map_err(|error| corrupt(error.to_string()))?;
    let data = SnapshotData {
        seq: file.seq,
        in_flight: file.in_flight,
        pending: file.pending,
        failed: file.failed,
        completed: file.completed,
    };
    let found = base_crc(&data)?;
    if data.seq.0 > crate::seq::SEQ_MAX {
        return Err(corrupt(format!("sequence number {} is out of range", data.seq)));
    }
    if found != file.crc32 || file.version != 1 {
        return Err(corrupt(format!(
            "checksum {found:#010x} does not match the recorded {:#010x}",
            file.crc32
        )));
    }
    Ok(data)
}
