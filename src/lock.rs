//! The writer's lock: one writer per store directory, held for the
//! process's lifetime (the kernel releases it when the process dies).
//!
//! The lock is taken on the store directory itself, which cannot be
//! unlinked while the writer works in it, so deleting a file cannot let a
//! second writer in; the `LOCK` file is locked as well, for the tools of
//! the first release that lock only it. Neither is followed if it is a
//! symbolic link.
//!
//! A child made by `fork()` does not keep the lock: both descriptors are
//! closed in the child at the fork (`fork.rs`), which leaves the parent's
//! lock held; they are close-on-exec as well.

use std::fs::{File, OpenOptions};
use std::path::Path;

use crate::error::{Error, Result};
use crate::fork::CloseInChild;
use crate::storage::{self, Entry, Storage};

use crate::layout::Layout;

/// The locks a writer holds: the store directory's and `LOCK`'s.
#[derive(Debug)]
pub struct WriterLock {
    /// Declared (so dropped) before the files: a descriptor leaves the
    /// table the fork handler closes before it is closed.
    _close_in_child: [CloseInChild; 2],
    _directory: File,
    _file: File,
}

/// Creates the store directory if it is missing (0700, made durable in
/// its parent) and takes the writer's lock.
///
/// # Errors
/// [`Error::Locked`] if another writer holds it; [`Error::Io`] naming the path.
pub fn create_and_lock(storage: &dyn Storage, dir: &Path) -> Result<WriterLock> {
    let missing = matches!(storage.entry(dir), Ok(Entry::Missing));
    if missing {
        storage
            .create_dir_all(dir)
            .map_err(|error| Error::io("create directory", dir, error))?;
        storage::sync_parent(storage, dir)?;
    }
    require_directory(dir)?;
    lock(dir)
}

/// Takes the store's writer lock, or fails at once with [`Error::Locked`].
///
/// # Errors
/// [`Error::Locked`] if another writer holds it; [`Error::Io`].
pub fn lock(dir: &Path) -> Result<WriterLock> {
    let directory = File::open(dir).map_err(|error| Error::io("open", dir, error))?;
    try_lock(&directory, dir, dir)?;
    let path = Layout::new(dir).lock();
    set_aside_if_not_a_file(&path)?;
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let file = options.open(&path).map_err(|error| Error::io("open", &path, error))?;
    try_lock(&file, &path, dir)?;
    Ok(WriterLock {
        _close_in_child: [close_in_child(&directory), close_in_child(&file)],
        _directory: directory,
        _file: file,
    })
}

/// With the directory's lock held (no other writer of this version can be
/// at work), anything but a regular file at `LOCK` — a link, a directory, a
/// FIFO — is renamed aside (never followed, never deleted), so a planted
/// name cannot keep every writer out.
fn set_aside_if_not_a_file(path: &Path) -> Result<()> {
    let storage = crate::storage::RealStorage;
    match storage.entry(path) {
        Ok(Entry::File(_) | Entry::Missing) => Ok(()),
        Ok(_) => {
            let aside = storage::free_aside_name(&storage, path, crate::layout::NOT_A_FILE_TAG)?;
            std::fs::rename(path, &aside).map_err(|error| Error::io("rename aside", path, error))?;
            tracing::warn!(path = %path.display(), aside = %aside.display(), "LOCK was not a regular file; set it aside");
            Ok(())
        }
        Err(error) => Err(Error::io("inspect", path, error)),
    }
}

/// `file`'s descriptor, closed in every child made by `fork()`.
fn close_in_child(file: &File) -> CloseInChild {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        CloseInChild::register(file.as_raw_fd())
    }
    #[cfg(not(unix))]
    {
        CloseInChild::none()
    }
}

fn try_lock(file: &File, path: &Path, dir: &Path) -> Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked { dir: dir.to_path_buf() }),
        Err(std::fs::TryLockError::Error(error)) => Err(Error::io("lock", path, error)),
    }
}

/// Fails unless `dir` is an existing directory the process may read (a
/// reader never creates one, and a regular file is not an empty store).
///
/// # Errors
/// [`Error::Io`] naming `dir`: not found, not a directory, permission denied.
pub fn require_directory(dir: &Path) -> Result<()> {
    let metadata = std::fs::metadata(dir).map_err(|error| Error::io("open store", dir, error))?;
    if !metadata.is_dir() {
        return Err(Error::io(
            "open store",
            dir,
            std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        ));
    }
    std::fs::read_dir(dir).map_err(|error| Error::io("open store", dir, error))?;
    Ok(())
}
