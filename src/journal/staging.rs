//! A whole journal built aside and installed at once: the legacy import
//! writes its records into a staging directory no reader looks at, makes
//! every byte durable, then renames the directory into place. Until the
//! rename is durable the store has no journal (its legacy files are the
//! truth and the next open imports them again); after it, the journal holds
//! the whole import. There is no moment in between.

use std::path::{Path, PathBuf};

use super::format::{self, SEGMENT_HEADER_BYTES, encode_record, encode_segment_header};
use crate::error::{Error, Result};
use crate::layout::segment_name;
use crate::seq::Seq;
use crate::storage::{self, Entry, Storage};

use crate::layout::STAGING_DIR;

/// The staging directory of the store whose journal is `journal_dir`.
#[must_use]
pub fn staging_dir(journal_dir: &Path) -> PathBuf {
    journal_dir.with_file_name(STAGING_DIR)
}

/// Removes a staging directory an interrupted import left (its files, then
/// the directory). Nothing in it was ever part of the store.
///
/// # Errors
/// [`Error::Io`] naming the path.
pub fn remove_staging(storage: &dyn Storage, staging: &Path) -> Result<()> {
    match storage.entry(staging) {
        Ok(Entry::Missing) => return Ok(()),
        Ok(Entry::Directory) => {}
        Ok(_) => return storage::remove_if_present(storage, staging),
        Err(error) => return Err(Error::io("inspect", staging, error)),
    }
    let names = storage
        .list_dir(staging)
        .map_err(|error| Error::io("list", staging, error))?;
    for name in names {
        storage::remove_if_present(storage, &staging.join(name))?;
    }
    storage
        .remove_dir(staging)
        .map_err(|error| Error::io("remove directory", staging, error))
}

/// Writes `payloads` as records `1..=n` into segments of at most
/// `segment_bytes_max` bytes in a fresh staging directory, each segment
/// fsynced, then the directory.
///
/// # Errors
/// [`Error::Io`] naming the file; nothing outside the staging directory
/// is touched.
pub fn write_staged(storage: &dyn Storage, staging: &Path, payloads: &[Vec<u8>], segment_bytes_max: u64) -> Result<()> {
    let mut journal = StagedJournal::create(storage, staging, segment_bytes_max)?;
    for payload in payloads {
        journal.push(payload)?;
    }
    journal.finish()
}

/// A journal written record by record into a fresh staging directory:
/// records `1..=n` in segments of at most `segment_bytes_max` bytes, each
/// written whole and fsynced when the next begins (or at
/// [`StagedJournal::finish`]), so it holds at most one segment in memory.
pub struct StagedJournal<'a> {
    storage: &'a dyn Storage,
    staging: PathBuf,
    segment_bytes_max: u64,
    segment_first: Seq,
    next: Seq,
    bytes: Vec<u8>,
}

impl<'a> StagedJournal<'a> {
    /// Empties (or creates) the staging directory `staging`.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    pub fn create(storage: &'a dyn Storage, staging: &Path, segment_bytes_max: u64) -> Result<Self> {
        remove_staging(storage, staging)?;
        storage
            .create_dir_all(staging)
            .map_err(|error| Error::io("create directory", staging, error))?;
        Ok(StagedJournal {
            storage,
            staging: staging.to_path_buf(),
            segment_bytes_max,
            segment_first: Seq(1),
            next: Seq(1),
            bytes: encode_segment_header(Seq(1)).to_vec(),
        })
    }

    /// Appends `payload` as the next record; returns its number.
    ///
    /// # Errors
    /// [`Error::Io`] naming the segment it could not write.
    pub fn push(&mut self, payload: &[u8]) -> Result<Seq> {
        let seq = self.next;
        let framed = format::framed_len(payload.len()) as u64;
        let has_records = self.bytes.len() > SEGMENT_HEADER_BYTES;
        if has_records && self.bytes.len() as u64 + framed > self.segment_bytes_max {
            self.write_segment()?;
            self.segment_first = seq;
            self.bytes = encode_segment_header(seq).to_vec();
        }
        encode_record(&mut self.bytes, self.segment_first, seq, payload);
        self.next = seq.next();
        Ok(seq)
    }

    fn write_segment(&self) -> Result<()> {
        storage::write_new(
            self.storage,
            &self.staging.join(segment_name(self.segment_first)),
            &self.bytes,
        )
    }

    /// Writes the last segment and the tail marker, then fsyncs the
    /// staging directory: it is ready for [`install_staged`].
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn finish(self) -> Result<()> {
        self.write_segment()?;
        super::tail::write(self.storage, &self.staging, self.segment_first)?;
        self.storage
            .sync_dir(&self.staging)
            .map_err(|error| Error::io("fsync directory", &self.staging, error))
    }
}

/// Installs the staged journal as `journal_dir`. An existing journal
/// directory (it holds no record: the import is chosen only then) is
/// removed if empty, else set aside whole (`journal.<n>.broken`); then the
/// staging directory is renamed into place and the store directory fsynced.
///
/// # Errors
/// [`Error::Io`] naming the path.
pub fn install_staged(storage: &dyn Storage, staging: &Path, journal_dir: &Path) -> Result<()> {
    if storage.exists(journal_dir) {
        let left = storage
            .list_dir(journal_dir)
            .map_err(|error| Error::io("list", journal_dir, error))?;
        if left.is_empty() {
            storage
                .remove_dir(journal_dir)
                .map_err(|error| Error::io("remove directory", journal_dir, error))?;
        } else {
            super::repair::move_aside(storage, journal_dir, crate::layout::BEFORE_IMPORT_TAG)?;
        }
    }
    storage
        .rename(staging, journal_dir)
        .map_err(|error| Error::io("rename to", journal_dir, error))?;
    storage::sync_parent(storage, journal_dir)
}
