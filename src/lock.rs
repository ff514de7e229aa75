//! The writer's lock: one writer per store directory, held for the
//! process's lifetime (the kernel releases it when the process dies).

use std::fs::{File, OpenOptions};
use std::path::Path;

use crate::error::{Error, Result};

/// The lock file a writer holds for its lifetime.
pub const LOCK_FILE: &str = "LOCK";

/// Takes the store's writer lock, or fails at once with [`Error::Locked`].
///
/// # Errors
/// [`Error::Locked`] if another writer holds it; [`Error::Io`].
pub fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(&path).map_err(|error| Error::io("open", &path, error))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked { dir: dir.to_path_buf() }),
        Err(std::fs::TryLockError::Error(error)) => Err(Error::io("lock", &path, error)),
    }
}

/// Fails unless `dir` is an existing directory (a reader never creates one,
/// and a regular file is not an empty store).
///
/// # Errors
/// [`Error::Io`] naming `dir`: not found, or not a directory.
pub fn require_directory(dir: &Path) -> Result<()> {
    let metadata = std::fs::metadata(dir).map_err(|error| Error::io("open store", dir, error))?;
    if metadata.is_dir() {
        Ok(())
    } else {
        Err(Error::io(
            "open store",
            dir,
            std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        ))
    }
}
