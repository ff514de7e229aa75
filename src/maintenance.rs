//! Maintenance on disk: repair a damaged store, compact the journal behind
//! its base, write a state's documented files into a directory.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::journal::format::RECORD_PAYLOAD_BYTES_MAX;
use crate::journal::segment;
use crate::journal::writer::WriterConfig;
use crate::layout::Layout;
use crate::lock;
use crate::projection::QueueState;
use crate::recovery::{self, ImportLimits, RepairReport};
use crate::seq::Seq;
use crate::snapshot::{SnapshotData, base, files};
use crate::storage::{self, RealStorage, Storage};

/// What `compact` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// The record the snapshot and compaction base cover.
    pub seq: Seq,
    /// Segment files deleted.
    pub removed: Vec<PathBuf>,
}

/// The identity of the store in `dir`: 128 random bits its journal got
/// from the first writer that opened it (shown as 32 hex digits), which
/// tell its records from another store's wherever they are copied. `None`
/// when no writer has opened the store since identities began; a copy of
/// the directory has the same one, and a journal replaced whole (`import`)
/// gets a new one. Reads one small file; needs no lock.
///
/// # Errors
/// [`Error::Corrupt`] when the file does not parse or is a link (the next
/// writer open sets it aside and gives the store a new identity);
/// [`Error::Io`] when it cannot be read.
pub fn store_id(dir: &Path) -> Result<Option<crate::journal::identity::StoreId>> {
    lock::require_directory(dir)?;
    crate::journal::identity::read(&RealStorage, &Layout::new(dir).journal())
}

/// Repairs the (closed) store in `dir` so that it opens, keeping every
/// acknowledged change that survives anywhere in it: the starting point
/// whose records reach furthest is kept, damage after it is set aside as
/// `*.broken` files, and nothing is deleted (see `recovery/repair.rs`).
/// Takes the writer lock. A store that opens already is left as a writer's
/// open would leave it.
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
    lock::require_directory(dir)?;
    let _lock = lock::lock(dir)?;
    let limits = ImportLimits {
        event_bytes_max: RECORD_PAYLOAD_BYTES_MAX as usize,
        segment_bytes_max: WriterConfig::default().segment_bytes_max,
        now: crate::clock::now(),
    };
    let report = recovery::repair_store(storage, dir, limits)?;
    // The identity a writer's open would give or mend.
    let journal_dir = Layout::new(dir).journal();
    if storage.exists(&journal_dir) {
        crate::journal::identity::ensure(storage, &journal_dir)?;
    }
    Ok(report)
}

/// Records `data` as the journal's compaction base (`journal/base.json`,
/// fsynced), then deletes the segments whose every record comes before
/// the base's own record and before `keep_from` (the segment holding the
/// base's record is kept, so the time of the state the base holds stays
/// known; so is the last segment, the segments a subscription still has
/// to read, and those holding records a registered shipper has yet to
/// ship, within `shipping::UNSHIPPED_KEPT_MAX`) and fsyncs the directory.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn compact_journal(
    storage: &dyn Storage,
    dir: &Path,
    data: &SnapshotData,
    keep_from: Seq,
) -> Result<CompactReport> {
    let seq = data.seq;
    let keep_from = keep_from.min(crate::shipping::kept_for_shippers(storage, dir, seq));
    let journal_dir = Layout::new(dir).journal();
    base::write_base(storage, &journal_dir, data)?;
    let segments = segment::list_segments(storage, &journal_dir)?;
    let mut removed = Vec::new();
    for pair in segments.windows(2) {
        if let [segment, next] = pair
            && next.first_seq <= seq.min(keep_from)
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
    for (name, bytes) in crate::layout::QUEUE_FILES.iter().zip(&rendered) {
        storage::write_atomic(storage, &dir.join(name), bytes)?;
    }
    Ok(())
}
