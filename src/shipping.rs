//! What shipping the journal off the machine needs of the store (the
//! shipper and its network client are the tool's): the positions shippers
//! register, which `compact` keeps records for, and a store rebuilt from
//! records that came back ([`Restore`]).
//!
//! A shipper registers `shippers/<name>` in the store directory: one line,
//! `MVQSHIP1 <last record shipped>\n`, rewritten atomically as it ships.
//! The stream it ships to is the truth of where it resumes; the file only
//! tells `compact` which records it still needs. While one is registered,
//! `compact` keeps every record after its position, unless that is more
//! than [`UNSHIPPED_KEPT_MAX`] records behind the compaction base (a
//! shipper gone for good must not keep the journal growing forever): then
//! `compact` goes on as if it were not registered, says so in its log, and
//! the shipper, when it comes back, stops at the records it lost with an
//! error naming them, never skipping silently.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::event::{EventRecord, encode_record_payload};
use crate::journal::format::RECORD_PAYLOAD_BYTES_MAX;
use crate::journal::identity::{self, StoreId};
use crate::journal::staging::{self, StagedJournal, install_staged};
use crate::journal::writer::WriterConfig;
use crate::layout::{Layout, SHIPPERS_DIR};
use crate::lock::{self, WriterLock};
use crate::projection::QueueState;
use crate::seq::Seq;
use crate::storage::{self, Entry, RealStorage, Storage};

/// The most records `compact` keeps for a registered shipper behind the
/// compaction base: one further behind than this loses its records to the
/// compaction (and stops, naming them, when it comes back).
pub const UNSHIPPED_KEPT_MAX: u64 = 1_000_000;

const POSITION_MAGIC: &str = "MVQSHIP1";

/// Is `name` a shipper's name the store accepts: 1 to 64 ASCII letters,
/// digits, `-` and `_` (a `JetStream` stream name fits)?
#[must_use]
pub fn is_shipper_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

fn position_path(dir: &Path, name: &str) -> Result<PathBuf> {
    if !is_shipper_name(name) {
        return Err(Error::InvalidArgument(format!(
            "{name:?} is not a shipper's name: 1 to 64 letters, digits, `-` or `_`"
        )));
    }
    Ok(Layout::new(dir).dir().join(SHIPPERS_DIR).join(name))
}

/// Registers the shipper `name` of the store in `dir` as having shipped
/// every record through `shipped` (`Seq(0)`: none yet), atomically
/// (`shippers/<name>`, fsynced). Needs no lock: a shipper is a reader.
///
/// # Errors
/// [`Error::InvalidArgument`] for a name [`is_shipper_name`] refuses;
/// [`Error::Io`] naming the file.
pub fn register_shipper(dir: &Path, name: &str, shipped: Seq) -> Result<()> {
    lock::require_directory(dir)?;
    let path = position_path(dir, name)?;
    let folder = storage::parent_of(&path);
    if !RealStorage.exists(folder) {
        RealStorage
            .create_dir_all(folder)
            .map_err(|error| Error::io("create directory", folder, error))?;
        storage::sync_parent(&RealStorage, folder)?;
    }
    storage::write_atomic(
        &RealStorage,
        &path,
        format!("{POSITION_MAGIC} {}\n", shipped.0).as_bytes(),
    )
}

/// Removes the registration of the shipper `name`; `false` if there was
/// none. `compact` no longer keeps records for it.
///
/// # Errors
/// As [`register_shipper`].
pub fn unregister_shipper(dir: &Path, name: &str) -> Result<bool> {
    lock::require_directory(dir)?;
    let path = position_path(dir, name)?;
    if !RealStorage.exists(&path) {
        return Ok(false);
    }
    storage::remove_if_present(&RealStorage, &path)?;
    storage::sync_parent(&RealStorage, &path)?;
    Ok(true)
}

/// The shippers registered in the store in `dir` and the last record each
/// has shipped, by name. A file that does not parse is left out, with a
/// warning in the log (it can only make `compact` keep fewer records,
/// which a shipper then reports when it finds them gone).
///
/// # Errors
/// [`Error::Io`] when the folder cannot be listed.
pub fn shippers(dir: &Path) -> Result<Vec<(String, Seq)>> {
    shippers_with(&RealStorage, dir)
}

pub(crate) fn shippers_with(storage: &dyn Storage, dir: &Path) -> Result<Vec<(String, Seq)>> {
    let folder = Layout::new(dir).dir().join(SHIPPERS_DIR);
    match storage.entry(&folder) {
        Ok(Entry::Directory) => {}
        Ok(_) => return Ok(Vec::new()),
        Err(error) => return Err(Error::io("inspect", &folder, error)),
    }
    let mut names = storage
        .list_dir(&folder)
        .map_err(|error| Error::io("list", &folder, error))?;
    names.sort();
    let mut found = Vec::new();
    for name in names.into_iter().filter(|name| is_shipper_name(name)) {
        let path = folder.join(&name);
        let position = match storage.entry(&path) {
            Ok(Entry::File(_)) => storage.read(&path).ok().and_then(|bytes| parse_position(&bytes)),
            _ => None,
        };
        match position {
            Some(seq) => found.push((name, seq)),
            None => {
                tracing::warn!(path = %path.display(), "a shipper's registration does not parse: compact ignores it");
            }
        }
    }
    Ok(found)
}

fn parse_position(bytes: &[u8]) -> Option<Seq> {
    let text = std::str::from_utf8(bytes).ok()?.strip_suffix('\n')?;
    let number = text.strip_prefix(POSITION_MAGIC)?.strip_prefix(' ')?;
    (!number.is_empty() && number.bytes().all(|byte| byte.is_ascii_digit()))
        .then(|| number.parse().ok().map(Seq))
        .flatten()
}

/// The first record a compaction to `base` must keep for the registered
/// shippers (`Seq(u64::MAX)`: none needs any): the last shipped by the
/// one furthest behind that is within [`UNSHIPPED_KEPT_MAX`] of `base`.
pub(crate) fn kept_for_shippers(storage: &dyn Storage, dir: &Path, base: Seq) -> Seq {
    let registered = match shippers_with(storage, dir) {
        Ok(registered) => registered,
        Err(error) => {
            tracing::warn!(%error, "the shippers' registrations cannot be read: compact keeps no record for them");
            return Seq(u64::MAX);
        }
    };
    let mut keep = Seq(u64::MAX);
    for (name, shipped) in registered {
        let behind = base.0.saturating_sub(shipped.0);
        if behind > UNSHIPPED_KEPT_MAX {
            tracing::warn!(
                shipper = %name,
                shipped = shipped.0,
                base = base.0,
                "a registered shipper is more than {UNSHIPPED_KEPT_MAX} records behind: compact no longer keeps its records"
            );
        } else {
            // The last record shipped too: the shipper compares it with
            // the stream's last message when it resumes.
            keep = keep.min(Seq(shipped.0.max(1)));
        }
    }
    keep
}

/// A store rebuilt from its records, in order from record 1 (a shipped
/// stream read back, say): each record is written as given (its number,
/// time, event version and event), after it was checked to apply to the
/// state the records before it made, so the store opens to exactly that
/// state. The journal is built aside (`journal.import/`) under the store's
/// lock and installed at [`Restore::finish`] in one rename; until then the
/// directory holds no store. Dropped unfinished, it removes what it made.
pub struct Restore {
    dir: PathBuf,
    created: bool,
    lock: Option<WriterLock>,
    journal: Option<StagedJournal<'static>>,
    state: QueueState,
    next: Seq,
}

impl Restore {
    /// Starts a store in `dir`, which must be an empty directory, or not
    /// exist in a directory that does (no folders are made above it).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `dir` is not an empty directory
    /// (nothing in it is touched); [`Error::Io`] naming the path.
    pub fn create(dir: impl AsRef<Path>) -> Result<Restore> {
        let dir = dir.as_ref();
        let storage = &RealStorage;
        let created = match storage.entry(dir) {
            Ok(Entry::Missing) => {
                let parent = storage::parent_of(dir);
                if !matches!(storage.entry(parent), Ok(Entry::Directory)) {
                    return Err(Error::InvalidArgument(format!(
                        "{} is not a directory: a store is restored into a new directory of one that exists",
                        parent.display()
                    )));
                }
                true
            }
            Ok(Entry::Directory) => {
                let names = storage.list_dir(dir).map_err(|error| Error::io("list", dir, error))?;
                if let Some(name) = names.first() {
                    return Err(Error::InvalidArgument(format!(
                        "{} is not empty (it holds {name:?}): a store is restored only into a new or empty directory",
                        dir.display()
                    )));
                }
                false
            }
            Ok(_) => {
                return Err(Error::InvalidArgument(format!(
                    "{} is not a directory: a store is restored only into a new or empty directory",
                    dir.display()
                )));
            }
            Err(error) => return Err(Error::io("inspect", dir, error)),
        };
        let mut restore = Restore {
            dir: dir.to_path_buf(),
            created,
            lock: None,
            journal: None,
            state: QueueState::new(),
            next: Seq(1),
        };
        restore.lock = Some(lock::create_and_lock(storage, dir)?);
        let staging = staging::staging_dir(&Layout::new(dir).journal());
        restore.journal = Some(StagedJournal::create(
            &RealStorage,
            &staging,
            WriterConfig::default().segment_bytes_max,
        )?);
        Ok(restore)
    }

    /// Appends `record`, which must be the next one (record 1 first).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the record when it is not the
    /// next, is of an event version this build does not read, is larger
    /// than a record may be, or does not apply to the state before it;
    /// [`Error::Io`] naming the segment it could not write. The store is
    /// not finished: drop it.
    pub fn push(&mut self, record: &EventRecord) -> Result<()> {
        if record.seq != self.next {
            return Err(Error::InvalidArgument(format!(
                "record {} came where record {} was due: a store is restored from its records in order, from record 1",
                record.seq, self.next
            )));
        }
        let payload = encode_record_payload(record)?;
        if payload.len() > RECORD_PAYLOAD_BYTES_MAX as usize {
            return Err(Error::InvalidArgument(format!(
                "record {} is {} bytes, more than a record may hold ({RECORD_PAYLOAD_BYTES_MAX})",
                record.seq,
                payload.len()
            )));
        }
        self.state.apply_record(record)?;
        let journal = self.journal.as_mut().ok_or_else(finished)?;
        journal.push(&payload)?;
        self.next = record.seq.next();
        Ok(())
    }

    /// The last record pushed (`Seq(0)`: none yet).
    #[must_use]
    pub fn last_seq(&self) -> Seq {
        self.next.previous()
    }

    /// The state the records pushed so far make.
    #[must_use]
    pub fn state(&self) -> &QueueState {
        &self.state
    }

    /// Makes every record durable and installs the journal; the store
    /// gets an identity of its own (it is a new store with the same
    /// history: the shipper refuses to mix its records with its source's
    /// in one stream). Returns that identity.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when no record was pushed; [`Error::Io`]
    /// naming the file.
    pub fn finish(mut self) -> Result<StoreId> {
        if self.next == Seq(1) {
            return Err(Error::InvalidArgument(
                "no record to restore: a store is restored from at least one record".to_owned(),
            ));
        }
        let journal = self.journal.take().ok_or_else(finished)?;
        let journal_dir = Layout::new(&self.dir).journal();
        let staging = staging::staging_dir(&journal_dir);
        journal.finish()?;
        install_staged(&RealStorage, &staging, &journal_dir)?;
        let id = identity::ensure(&RealStorage, &journal_dir)?;
        self.created = false;
        self.lock = None;
        Ok(id)
    }
}

impl std::fmt::Debug for Restore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restore")
            .field("dir", &self.dir)
            .field("last_seq", &self.last_seq())
            .finish_non_exhaustive()
    }
}

fn finished() -> Error {
    Error::InvalidArgument("the restore is finished".to_owned())
}

impl Drop for Restore {
    fn drop(&mut self) {
        if self.journal.take().is_none() && self.lock.is_none() {
            return;
        }
        let layout = Layout::new(&self.dir);
        let staging = staging::staging_dir(&layout.journal());
        let cleared = staging::remove_staging(&RealStorage, &staging)
            .and_then(|()| storage::remove_if_present(&RealStorage, &layout.lock()));
        if let Err(error) = cleared {
            tracing::warn!(%error, "an unfinished restore could not remove what it wrote");
        }
        self.lock = None;
        if self.created
            && let Err(error) = RealStorage.remove_dir(&self.dir)
        {
            tracing::warn!(%error, dir = %self.dir.display(), "an unfinished restore could not remove the directory it made");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_keeps_records_for_the_shipper_furthest_behind_within_the_cap_only() {
        let scratch = tempfile::tempdir().expect("scratch");
        let dir = scratch.path();
        let base = Seq(3_000_000);
        assert_eq!(
            kept_for_shippers(&RealStorage, dir, base),
            Seq(u64::MAX),
            "none registered"
        );
        register_shipper(dir, "near", Seq(2_900_000)).expect("register");
        register_shipper(dir, "at-the-cap", Seq(base.0 - UNSHIPPED_KEPT_MAX)).expect("register");
        register_shipper(dir, "gone", Seq(base.0 - UNSHIPPED_KEPT_MAX - 1)).expect("register");
        assert_eq!(
            kept_for_shippers(&RealStorage, dir, base),
            Seq(base.0 - UNSHIPPED_KEPT_MAX),
            "the one at the cap is kept for, the one past it is not"
        );
        register_shipper(dir, "new", Seq(0)).expect("register");
        assert_eq!(
            kept_for_shippers(&RealStorage, dir, Seq(10)),
            Seq(1),
            "a shipper that shipped nothing keeps everything"
        );
    }

    #[test]
    fn a_position_parses_only_as_written() {
        assert_eq!(parse_position(b"MVQSHIP1 42\n"), Some(Seq(42)));
        for bad in [
            &b"MVQSHIP1 42"[..],
            b"MVQSHIP1 \n",
            b"MVQSHIP1 -1\n",
            b"MVQSHIP2 4\n",
            b"MVQSHIP1 4 2\n",
        ] {
            assert_eq!(parse_position(bad), None, "{bad:?}");
        }
    }
}
