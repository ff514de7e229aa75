//! Gathering the evidence, changing nothing: every segment scanned record
//! by record, the snapshot (manifest and documented files) and the
//! compaction base each loaded and checked.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
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
    /// The compaction base, checked: the record it covers, or why it does
    /// not hold up; `None` if there is none. Its state is loaded
    /// ([`Evidence::load_base`]) only when the state starts from it.
    pub base: Option<std::result::Result<Seq, Rejected>>,
    /// Documented files that are missing but that the manifest pins as
    /// empty queues (the snapshot holds without them; a writer's close or
    /// `repair` writes them again).
    pub pinned_empty: Vec<PathBuf>,
    /// Why the store's identity file does not hold up (it does not parse,
    /// or is a link), if it does not: the next writer open sets it aside
    /// and gives the store a new identity.
    pub identity_damaged: Option<String>,
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
        // The base is checked before the snapshot is loaded: what checking
        // it takes (its bytes, its ids) is freed before the state is built.
        let base = match base::check_base(storage, &journal_dir.join(BASE_FILE)) {
            Ok(None) => None,
            Ok(Some(data)) => Some(Ok(data)),
            Err(rejected) => Some(Err(rejected)),
        };
        let mut pinned_empty = Vec::new();
        let snapshot = match manifest::load_snapshot_noting(storage, dir, &mut pinned_empty) {
            Ok(None) => None,
            Ok(Some(data)) => Some(Ok(data)),
            Err(rejected) => Some(Err(rejected)),
        };
        let identity_damaged = match crate::journal::identity::read(storage, &journal_dir) {
            Err(Error::Corrupt { path, detail, .. }) => Some(format!("{}: {detail}", path.display())),
            _ => None,
        };
        Ok(Evidence {
            dir: dir.to_path_buf(),
            journal_dir,
            journal,
            snapshot,
            base,
            pinned_empty,
            identity_damaged,
        })
    }

    /// The record the checkpoint of this kind covers, if it holds up.
    #[must_use]
    pub fn checkpoint(&self, kind: CheckpointKind) -> Option<Seq> {
        match kind {
            CheckpointKind::Snapshot => self.snapshot().map(|data| data.seq),
            CheckpointKind::Base => self.base.as_ref()?.as_ref().ok().copied(),
        }
    }

    /// The snapshot, if it holds up.
    #[must_use]
    pub fn snapshot(&self) -> Option<&SnapshotData> {
        self.snapshot.as_ref()?.as_ref().ok()
    }

    /// The compaction base's state, read again from its file (it was
    /// checked, not kept, when the evidence was gathered: a compacted
    /// store's open holds one state, not two).
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the file when it no longer holds up or
    /// covers another record than it did (another process compacted the
    /// store meanwhile).
    pub fn load_base(&self, storage: &dyn Storage) -> Result<SnapshotData> {
        let path = self.journal_dir.join(BASE_FILE);
        let changed = |detail: String| Error::Corrupt {
            path: path.clone(),
            offset: 0,
            detail,
        };
        let checked = self.checkpoint(CheckpointKind::Base);
        match base::load_base(storage, &path) {
            Ok(Some(data)) if Some(data.seq) == checked => Ok(data),
            Ok(_) => Err(changed(
                "the compaction base changed while the store was read (another process compacted it?)".into(),
            )),
            Err(rejected) => Err(changed(format!(
                "{} (it held up when the store was first read: another process changed it?)",
                rejected.detail
            ))),
        }
    }

    /// The rejections of checkpoints that do not hold up.
    pub fn rejected(&self) -> impl Iterator<Item = &Rejected> {
        let snapshot = self.snapshot.as_ref().and_then(|loaded| loaded.as_ref().err());
        let base = self.base.as_ref().and_then(|checked| checked.as_ref().err());
        snapshot.into_iter().chain(base)
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
            .filter_map(|kind| self.checkpoint(kind))
            .max()
            .unwrap_or_default()
    }
}
