//! The file-system seam: every byte the store writes or reads goes through
//! [`Storage`]. [`RealStorage`] is the operating system; `FaultyStorage`
//! (in `storage/faulty.rs`, behind the `testing` feature) wraps it to
//! inject the failures trusted storage engines test against: power loss,
//! torn writes, EIO/ENOSPC, bit rot.

#[cfg(any(test, feature = "testing"))]
mod faulty;
mod mapped;
mod real;

use std::fmt::Debug;
use std::io;
use std::path::{Path, PathBuf};

#[cfg(any(test, feature = "testing"))]
pub use self::faulty::{Fault, FaultyStorage};
pub use self::mapped::FileBytes;
pub use self::real::RealStorage;

/// A file opened for appending.
pub trait WritableFile: Send {
    /// Writes every byte or fails.
    ///
    /// # Errors
    /// The operating system's error.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes what was written durable (`fdatasync`).
    ///
    /// # Errors
    /// The operating system's error; the caller must then treat every byte
    /// written since the last good sync as lost.
    fn sync_data(&mut self) -> io::Result<()>;
}

/// The file-system operations the store uses, and nothing else.
pub trait Storage: Send + Sync + Debug {
    /// Creates a directory and its parents; new directories are user-only (0700).
    ///
    /// # Errors
    /// The operating system's error.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of a directory, sorted.
    ///
    /// # Errors
    /// The operating system's error.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Does `path` exist?
    fn exists(&self, path: &Path) -> bool;
    /// The whole content of a file (memory-mapped where possible).
    ///
    /// # Errors
    /// The operating system's error.
    fn read(&self, path: &Path) -> io::Result<FileBytes>;
    /// Creates (or truncates) a file for writing, user-only (0600).
    ///
    /// # Errors
    /// The operating system's error.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Opens an existing file to append to it.
    ///
    /// # Errors
    /// The operating system's error.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Renames a file (atomic on POSIX; durable after [`Storage::sync_dir`]).
    ///
    /// # Errors
    /// The operating system's error.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file (durable after [`Storage::sync_dir`]).
    ///
    /// # Errors
    /// The operating system's error.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Cuts a file to `len` bytes and syncs it.
    ///
    /// # Errors
    /// The operating system's error.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Makes a directory's entries durable (`fsync` of the directory).
    ///
    /// # Errors
    /// The operating system's error.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

/// Writes `bytes` to `path` atomically and durably: a `.tmp` sibling is
/// written and fsynced, renamed over `path`, and the directory fsynced.
///
/// # Errors
/// [`crate::Error::Io`] naming the file of the step that failed.
pub fn write_atomic(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> crate::Result<()> {
    let temporary = temporary_path(path);
    write_synced(storage, &temporary, bytes)?;
    storage
        .rename(&temporary, path)
        .map_err(|error| crate::Error::io("rename to", path, error))?;
    sync_parent(storage, path)
}

/// Writes `bytes` to a new file at `path` and fsyncs it (no rename).
///
/// # Errors
/// [`crate::Error::Io`] naming the file.
pub fn write_synced(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> crate::Result<()> {
    let mut file = storage
        .create(path)
        .map_err(|error| crate::Error::io("create", path, error))?;
    file.write_all(bytes)
        .map_err(|error| crate::Error::io("write", path, error))?;
    file.sync_data().map_err(|error| crate::Error::io("fsync", path, error))
}

/// Fsyncs the directory holding `path`.
///
/// # Errors
/// [`crate::Error::Io`] naming the directory.
pub fn sync_parent(storage: &dyn Storage, path: &Path) -> crate::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    storage
        .sync_dir(parent)
        .map_err(|error| crate::Error::io("fsync directory", parent, error))
}

/// `name.tmp` beside `path`.
#[must_use]
pub fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}
