//! Maintenance: repair a damaged journal, compact it behind a snapshot,
//! export and import the documented files.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::event::{Event, Seq};
use crate::manager::QueueManager;
use crate::recovery::{self, RepairReport};
use crate::segment;
use crate::snapshot::{self, SnapshotData};
use crate::storage::{self, RealStorage, Storage};
use crate::store::{self, JOURNAL_DIR};

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
    let _lock = store::lock(dir)?;
    let journal_dir = dir.join(JOURNAL_DIR);
    let (mut state, base_seq) = store::journal_base(storage, &journal_dir)?;
    let report = recovery::repair(storage, &journal_dir, &mut |record, place| {
        if record.seq <= base_seq {
            return Ok(());
        }
        store::apply_record(&mut state, &record, place)
    })?;
    if report.damage.is_some()
        && let Ok(Some(data)) = snapshot::load_snapshot(storage, dir)
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

impl QueueManager {
    /// Writes a snapshot, records the state it covers as the journal's
    /// compaction base (`journal/base.json`, fsynced), then deletes the
    /// segments whose every record the base covers. The live segment is
    /// kept. History before the base is gone from `history` and `log`.
    ///
    /// # Errors
    /// [`Error::ReadOnly`]; [`Error::Io`] naming the file.
    pub fn compact(&self) -> Result<CompactReport> {
        let seq = self.snapshot()?;
        let storage = self.options_ref().storage.clone();
        let journal_dir = self.dir().join(JOURNAL_DIR);
        let state = self.state_at(seq)?;
        let data = SnapshotData {
            seq,
            in_flight: state.in_flight().collect(),
            pending: state.pending().collect(),
            failed: state.failed().collect(),
            completed: state.completed().collect(),
        };
        store::write_base(storage.as_ref(), &journal_dir, data)?;
        let segments = segment::list_segments(storage.as_ref(), &journal_dir)?;
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

    /// Writes the three documented files of the current state into `dir`
    /// (created if missing), each atomically; no manifest.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn export(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let storage = self.options_ref().storage.clone();
        storage
            .create_dir_all(dir)
            .map_err(|error| Error::io("create directory", dir, error))?;
        let files = snapshot::render_files(&self.state());
        for (name, bytes) in snapshot::QUEUE_FILES.iter().zip(&files) {
            storage::write_atomic(storage.as_ref(), &dir.join(name), bytes)?;
        }
        Ok(())
    }

    /// Imports the documented files found in `dir` as one event; entries
    /// whose id the store already knows are skipped. Returns how many
    /// entries were added.
    ///
    /// # Errors
    /// [`Error::BadQueueFile`] naming a file that cannot be read as a
    /// queue; [`Error::InvalidArgument`] if `dir` holds none of the files.
    pub fn import(&self, dir: impl AsRef<Path>) -> Result<usize> {
        let dir = dir.as_ref();
        let storage = self.options_ref().storage.clone();
        let Some(data) = snapshot::load_legacy(storage.as_ref(), dir)? else {
            return Err(Error::InvalidArgument(format!(
                "{} holds none of {:?}",
                dir.display(),
                snapshot::QUEUE_FILES
            )));
        };
        let before = self.state();
        let mut pending = data.in_flight;
        pending.extend(data.pending);
        let event = Event::Imported {
            pending,
            failed: data.failed,
            completed: data.completed,
        };
        let mut after = before.clone();
        after
            .apply(0.0, &event)
            .map_err(|error| Error::InvalidArgument(error.0))?;
        let count = |state: &crate::projection::QueueState| {
            state.pending_count() + state.in_flight_count() + state.failed_count() + state.completed_count()
        };
        let added = count(&after) - count(&before);
        if added > 0 {
            self.commit_event(event)?;
        }
        Ok(added)
    }
}
