//! Maintenance on disk: repair a damaged store, compact the journal behind
//! its base, write a state's documented files into a directory.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::journal::repair::{self as journal_repair, RepairReport};
use crate::journal::segment;
use crate::lock;
use crate::projection::QueueState;
use crate::recovery::{self, JOURNAL_DIR};
use crate::seq::Seq;
use crate::snapshot::{self, SnapshotData, base, files, manifest};
use crate::storage::{self, RealStorage, Storage};

/// What `compact` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// The record the snapshot and compaction base cover.
    pub seq: Seq,
    /// Segment files deleted.
    pub removed: Vec<PathBuf>,
}

/// Repairs the journal of the (closed) store in `dir`: keeps every valid
/// record before the first damage, sets the rest aside as `*.broken` files
/// (never deleting anything), and sets aside a snapshot that covers records
/// that are no longer there. Takes the writer lock.
///
/// # Errors
/// [`Error::Locked`] if a writer has the store open; [`Error::Io`].
pub fn repair(dir: &Path) -> Result<RepairReport> {
    repair_with(&RealStorage, dir)
}

/// [`repair`] through a given storage.
///
/// # Errors
/// As [`repair`].
pub fn repair_with(storage: &dyn Storage, dir: &Path) -> Result<RepairReport> {
    let _lock = lock::lock(dir)?;
    let journal_dir = dir.join(JOURNAL_DIR);
    let (mut state, base_seq) = recovery::journal_base(storage, &journal_dir)?;
    let report = journal_repair::repair(storage, &journal_dir, &mut |raw| {
        if raw.seq <= base_seq {
            return Ok(());
        }
        let record = recovery::decode_record(raw)?;
        recovery::apply_record(&mut state, &record, raw.place)
    })?;
    if report.damage.is_some()
        && let Ok(Some(data)) = manifest::load_snapshot(storage, dir)
        && data.seq > report.last_seq
    {
        let manifest = dir.join(snapshot::MANIFEST_FILE);
        let aside = dir.join(format!("{}.broken", snapshot::MANIFEST_FILE));
        storage
            .rename(&manifest, &aside)
            .map_err(|error| Error::io("rename aside", &manifest, error))?;
        storage::sync_parent(storage, &manifest)?;
        tracing::warn!(manifest = %manifest.display(), "the snapshot covered records repair set aside; it was set aside too");
    }
    Ok(report)
}

/// Records `data` as the journal's compaction base (`journal/base.json`,
/// fsynced), then deletes the segments whose every record it covers (the
/// last segment is kept) and fsyncs the directory.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn compact_journal(storage: &dyn Storage, dir: &Path, data: SnapshotData) -> Result<CompactReport> {
    let seq = data.seq;
    let journal_dir = dir.join(JOURNAL_DIR);
    base::write_base(storage, &journal_dir, data)?;
    let segments = segment::list_segments(storage, &journal_dir)?;
    let mut removed = Vec::new();
    for pair in segments.windows(2) {
        if let [segment, next] = pair
            && next.first_seq <= seq.next()
        {
            storage
                .remove_file(&segment.path)
                .map_err(|error| Error::io("remove", &segment.path, error))?;
            removed.push(segment.path.clone());
        }
    }
    if !removed.is_empty() {
        storage
            .sync_dir(&journal_dir)
            .map_err(|error| Error::io("fsync directory", &journal_dir, error))?;
    }
    Ok(CompactReport { seq, removed })
}

/// Writes the three documented files of `state` (a replayed past state,
/// say) into `dir` (created if missing), each atomically; no manifest.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn export_state(state: &QueueState, dir: &Path) -> Result<()> {
    export_state_with(&RealStorage, state, dir)
}

/// [`export_state`] through a given storage.
///
/// # Errors
/// As [`export_state`].
pub fn export_state_with(storage: &dyn Storage, state: &QueueState, dir: &Path) -> Result<()> {
    storage
        .create_dir_all(dir)
        .map_err(|error| Error::io("create directory", dir, error))?;
    let rendered = files::render_files(state);
    for (name, bytes) in snapshot::QUEUE_FILES.iter().zip(&rendered) {
        storage::write_atomic(storage, &dir.join(name), bytes)?;
    }
    Ok(())
}
