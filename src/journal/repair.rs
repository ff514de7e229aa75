//! Setting damaged bytes aside. Nothing here destroys anything: bytes are
//! cut from a file only after a copy of them is durable beside it, and a
//! whole file is set aside by renaming it. A set-aside name (`*.broken`)
//! is never reused, so a second repair never replaces the first one's file.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::storage::{self, Storage};

/// A name beside `path` that nothing uses yet (see
/// [`storage::free_aside_name`]).
///
/// # Errors
/// [`Error::Io`] inspecting the directory.
pub fn free_broken_name(storage: &dyn Storage, path: &Path, tag: &str) -> Result<PathBuf> {
    storage::free_aside_name(storage, path, tag)
}

/// Copies `path[keep..]` to a new `*.broken` file beside it (fsynced, and
/// its directory), then cuts `path` to `keep` bytes (fsynced). Zero bytes
/// hold nothing and are not copied. Returns the copy's path, if one was made.
///
/// # Errors
/// [`Error::Io`] naming the file of the failed step; nothing is cut unless
/// the copy is durable.
pub fn cut_aside(storage: &dyn Storage, path: &Path, keep: u64) -> Result<Option<PathBuf>> {
    let aside = copy_aside(storage, path, keep)?;
    cut(storage, path, keep)?;
    Ok(aside)
}

/// The first half of [`cut_aside`]: copies `path[keep..]` (unless it is
/// all zeros) to a new `*.broken` file beside it, durably. Changes nothing
/// else.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn copy_aside(storage: &dyn Storage, path: &Path, keep: u64) -> Result<Option<PathBuf>> {
    let bytes = storage.read(path).map_err(|error| Error::io("read", path, error))?;
    let start = usize::try_from(keep).unwrap_or(usize::MAX).min(bytes.len());
    let tail = bytes.get(start..).unwrap_or_default();
    if tail.iter().all(|&byte| byte == 0) {
        return Ok(None);
    }
    let copy = free_broken_name(storage, path, &keep.to_string())?;
    storage::write_new(storage, &copy, tail)?;
    storage::sync_parent(storage, &copy)?;
    tracing::warn!(path = %path.display(), offset = keep, aside = %copy.display(), "set damaged bytes aside");
    Ok(Some(copy))
}

/// The second half of [`cut_aside`]: cuts `path` to `keep` bytes, if it is
/// longer (the truncation is fsynced).
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn cut(storage: &dyn Storage, path: &Path, keep: u64) -> Result<()> {
    let len = match storage.entry(path) {
        Ok(storage::Entry::File(len)) => len,
        Ok(_) => return Ok(()),
        Err(error) => return Err(Error::io("inspect", path, error)),
    };
    if len > keep {
        storage
            .truncate(path, keep)
            .map_err(|error| Error::io("truncate", path, error))?;
    }
    Ok(())
}

/// Renames the whole file at `path` aside (`<name>.<tag>.broken`) and
/// fsyncs its directory. Returns the new name.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn move_aside(storage: &dyn Storage, path: &Path, tag: &str) -> Result<PathBuf> {
    let aside = free_broken_name(storage, path, tag)?;
    storage
        .rename(path, &aside)
        .map_err(|error| Error::io("rename aside", path, error))?;
    storage::sync_parent(storage, &aside)?;
    tracing::warn!(path = %path.display(), aside = %aside.display(), "set a file aside");
    Ok(aside)
}
