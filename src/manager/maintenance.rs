//! Maintenance of a running manager: compaction, export and import.

use std::path::Path;

use super::QueueManager;
use crate::error::{Error, Result};
use crate::maintenance::{self, CompactReport};
use crate::projection::{Place, QueueState};
use crate::snapshot::{SnapshotData, legacy};

impl QueueManager {
    /// Writes a snapshot, records the state it covers as the journal's
    /// compaction base (`journal/base.json`, fsynced), then deletes the
    /// segments whose every record the base covers. The live segment is
    /// kept, and so are the segments a live subscription (see
    /// [`QueueManager::subscribe`]) has yet to read. History before the
    /// base is gone from `history` and `log`.
    ///
    /// # Errors
    /// [`Error::ReadOnly`]; [`Error::Io`] naming the file.
    pub fn compact(&self) -> Result<CompactReport> {
        let seq = self.snapshot()?;
        let state = self.state_at(seq)?.state;
        maintenance::compact_journal(
            self.core.options.storage.as_ref(),
            self.dir(),
            &SnapshotData::new(seq, state),
            self.earliest_subscribed(),
        )
    }

    /// Writes the three documented files of the current state into `dir`
    /// (created if missing), each atomically; no manifest.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn export(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.check_owner()?;
        maintenance::export_state_with(self.core.options.storage.as_ref(), &self.state(), dir.as_ref())
    }

    /// Imports the documented files found in `dir` as one event; entries
    /// whose id the store already knows are skipped. Returns how many
    /// entries were added.
    ///
    /// # Errors
    /// [`Error::BadQueueFile`] naming a file that cannot be read as a
    /// queue; [`Error::InvalidArgument`] if `dir` holds none of the files.
    pub fn import(&self, dir: impl AsRef<Path>) -> Result<usize> {
        self.check_owner()?;
        let dir = dir.as_ref();
        let Some(data) = legacy::load_legacy(self.core.options.storage.as_ref(), dir)? else {
            return Err(Error::InvalidArgument(format!(
                "{} holds none of {:?}",
                dir.display(),
                crate::layout::QUEUE_FILES
            )));
        };
        let before = self.state();
        let event = legacy::legacy_import(data);
        let mut after = before.clone();
        after
            .apply(0.0, &event)
            .map_err(|error| Error::InvalidArgument(error.0))?;
        let count = |state: &QueueState| Place::ALL.into_iter().map(|place| state.count(place)).sum::<usize>();
        let added = count(&after) - count(&before);
        if added > 0 {
            self.commit_event(event)?;
        }
        Ok(added)
    }
}
