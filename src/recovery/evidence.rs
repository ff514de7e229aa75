//! Gathering the evidence, changing nothing: every segment scanned record
//! by record, the snapshot (manifest and documented files) and the
//! compaction base each loaded and checked.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::journal::reader::{self, JournalScan};
use crate::layout::{BASE_FILE, Layout};
use crate::seq::Seq;
use crate::snapshot::base;
use crate::snapshot::{Rejected, SnapshotData, manifest};
use crate::storage::Storage;

/// A state the store records apart from the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointKind {
    /// The documented files and their manifest.
    Snapshot,
    /// The compaction base in `journal/`.
    Base,
}

/// Everything on disk that says what the queues hold.
#[derive(Debug)]
pub struct Evidence {
    /// The store directory.
    pub dir: PathBuf,
    /// Its journal directory.
    pub journal_dir: PathBuf,
    /// Every segment, scanned.
    pub journal: JournalScan,
    /// The snapshot: `None` if there is no manifest.
    pub snapshot: Option<std::result::Result<SnapshotData, Rejected>>,
    /// The compaction base: `None` if there is none.
    pub base: Option<std::result::Result<SnapshotData, Rejected>>,
    /// Documented files that are missing but that the manifest pins as
    /// empty queues (the snapshot holds without them; a writer's close or
    /// `repair` writes them again).
    pub pinned_empty: Vec<PathBuf>,
}

impl Evidence {
    /// Reads everything; changes nothing.
    ///
    /// # Errors
    /// [`crate::error::Error::Io`] reading the journal; [`crate::error::Error::Corrupt`]
    /// for a file in `journal/` that has no business there.
    pub fn gather(storage: &dyn Storage, dir: &Path) -> Result<Self> {
        let journal_dir = Layout::new(dir).journal();
        let journal = reader::scan(storage, &journal_dir)?;
        let mut pinned_empty = Vec::new();
        let snapshot = match manifest::load_snapshot_noting(storage, dir, &mut pinned_empty) {
            Ok(None) => None,
            Ok(Some(data)) => Some(Ok(data)),
            Err(rejected) => Some(Err(rejected)),
        };
        let base = match base::load_base(storage, &journal_dir.join(BASE_FILE)) {
            Ok(None) => None,
            Ok(Some(data)) => Some(Ok(data)),
            Err(rejected) => Some(Err(rejected)),
        };
        Ok(Evidence {
            dir: dir.to_path_buf(),
            journal_dir,
            journal,
            snapshot,
            base,
            pinned_empty,
        })
    }

    /// The checkpoint of this kind, if it holds up.
    #[must_use]
    pub fn checkpoint(&self, kind: CheckpointKind) -> Option<&SnapshotData> {
        match kind {
            CheckpointKind::Snapshot => self.snapshot.as_ref()?.as_ref().ok(),
            CheckpointKind::Base => self.base.as_ref()?.as_ref().ok(),
        }
    }

    /// The rejections of checkpoints that do not hold up.
    pub fn rejected(&self) -> impl Iterator<Item = &Rejected> {
        [self.snapshot.as_ref(), self.base.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|loaded| loaded.as_ref().err())
    }

    /// Does the store hold nothing but (maybe) documented files: no record
    /// in the journal, no manifest, no base? Then those files are a legacy
    /// store's.
    #[must_use]
    pub fn is_legacy(&self) -> bool {
        self.journal.last_seq().is_none() && self.snapshot.is_none() && self.base.is_none()
    }

    /// The highest record a valid checkpoint covers (`Seq(0)`: none).
    #[must_use]
    pub fn covered_through(&self) -> Seq {
        [CheckpointKind::Snapshot, CheckpointKind::Base]
            .into_iter()
            .filter_map(|kind| self.checkpoint(kind).map(|data| data.seq))
            .max()
            .unwrap_or_default()
    }
}
