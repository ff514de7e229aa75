//! The file-system seam: every byte the store writes or reads goes through
//! [`Storage`]. [`RealStorage`] is the operating system; `FaultyStorage`
//! (in `storage/faulty.rs`, behind the `testing` feature) wraps it to
//! inject the failures trusted storage engines test against: power loss,
//! torn and reordered writes, a killed process, EIO/ENOSPC, bit rot.
//!
//! Two rules hold for every implementation:
//! * files are read into owned buffers, never memory-mapped;
//! * a segment is never shortened: the writer lays zeros down ahead of its
//!   records and writes its records over them, and bytes set aside (a torn
//!   tail, a failed batch) are overwritten with zeros
//!   ([`Storage::zero_from`]), the file's size kept, so that a reader which
//!   has the file open never finds it shorter than when it looked;
//! * a file is created only if nothing is at its name, and no symbolic link
//!   is ever followed when a file is created, opened for writing or read
//!   (`create_new` plus `O_NOFOLLOW`).

mod counting;
#[cfg(any(test, feature = "testing"))]
mod faulty;
mod real;

use crate::layout;
use std::fmt::Debug;
use std::io;
use std::path::{Path, PathBuf};

pub use self::counting::CountingStorage;
#[cfg(any(test, feature = "testing"))]
pub use self::faulty::{Fault, FaultyStorage, PowerLoss};
pub use self::real::RealStorage;

/// A file opened for writing.
pub trait WritableFile: Send {
    /// Writes every byte at the current position (where the file was
    /// opened at) and moves the position past them, or fails.
    ///
    /// # Errors
    /// The operating system's error.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Writes every byte at `offset` (over what is there, or past the end,
    /// growing the file), leaving the position alone, or fails.
    ///
    /// # Errors
    /// The operating system's error.
    fn write_all_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Makes what was written durable (`fdatasync`).
    ///
    /// # Errors
    /// The operating system's error; the caller must then treat every byte
    /// written since the last good sync as lost.
    fn sync_data(&mut self) -> io::Result<()>;
}

/// A file opened for reading: a follower keeps reading a segment through
/// it even after `compact` deleted the file's name.
pub trait ReadableFile: Send {
    /// The bytes from `offset` to the current end of the file (none past it).
    ///
    /// # Errors
    /// The operating system's error.
    fn read_from(&mut self, offset: u64) -> io::Result<Vec<u8>>;

    /// Reads into `buffer` from `offset` as much as the file holds, up to
    /// the buffer's length; returns how much (0 at the end). A reader of a
    /// large file in pieces holds one piece at a time.
    ///
    /// # Errors
    /// The operating system's error.
    fn read_at(&mut self, offset: u64, buffer: &mut [u8]) -> io::Result<usize> {
        let bytes = self.read_from(offset)?;
        let length = bytes.len().min(buffer.len());
        buffer[..length].copy_from_slice(&bytes[..length]);
        Ok(length)
    }

    /// The file's length now (a follower asks at every idle poll: never
    /// by reading the file).
    ///
    /// # Errors
    /// The operating system's error.
    fn file_len(&mut self) -> io::Result<u64>;
}

/// What is at a path, without following a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Nothing.
    Missing,
    /// A regular file of this many bytes.
    File(u64),
    /// A directory.
    Directory,
    /// Anything else: a symbolic link, a socket, a device.
    Other,
}

/// The file-system operations the store uses, and nothing else.
pub trait Storage: Send + Sync + Debug {
    /// Creates a directory and its missing parents; new directories are
    /// user-only (0700). An existing directory is kept as it is.
    ///
    /// # Errors
    /// The operating system's error.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of a directory, sorted.
    ///
    /// # Errors
    /// The operating system's error.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// What is at `path` (a symbolic link is reported as [`Entry::Other`],
    /// never followed).
    ///
    /// # Errors
    /// The operating system's error other than "not found".
    fn entry(&self, path: &Path) -> io::Result<Entry>;
    /// The whole content of a regular file, read into memory.
    ///
    /// # Errors
    /// The operating system's error; `path` being a symbolic link.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Opens an existing regular file for reading, without following a link.
    ///
    /// # Errors
    /// The operating system's error; `path` being a symbolic link.
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn ReadableFile>>;
    /// Creates a new file for writing, user-only (0600); fails if anything
    /// (a file, a link) is already at `path`.
    ///
    /// # Errors
    /// The operating system's error (`AlreadyExists`).
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Opens an existing regular file to write to it from `offset` on
    /// (over the bytes there: a segment's zeros), without following a link.
    ///
    /// # Errors
    /// The operating system's error; `path` being a symbolic link.
    fn open_write(&self, path: &Path, offset: u64) -> io::Result<Box<dyn WritableFile>>;
    /// Makes an existing file's content durable (`fdatasync`), whoever
    /// wrote it (a killed predecessor's writes may be in the page cache only).
    ///
    /// # Errors
    /// The operating system's error.
    fn sync_file(&self, path: &Path) -> io::Result<()>;
    /// Renames a file or directory (atomic on POSIX; durable after
    /// [`Storage::sync_dir`] of both parents).
    ///
    /// # Errors
    /// The operating system's error.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file or a symbolic link, never what a link points to
    /// (durable after [`Storage::sync_dir`]).
    ///
    /// # Errors
    /// The operating system's error.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes an empty directory (durable after [`Storage::sync_dir`] of
    /// its parent).
    ///
    /// # Errors
    /// The operating system's error (the directory is not empty, say).
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Writes zeros over a file's bytes from `offset` to its end and syncs
    /// it (`fdatasync`). The file keeps its size: a segment is never
    /// shortened, so a reader that has it open never finds it shorter.
    ///
    /// # Errors
    /// The operating system's error.
    fn zero_from(&self, path: &Path, offset: u64) -> io::Result<()>;
    /// Makes a directory's entries durable (`fsync` of the directory).
    ///
    /// # Errors
    /// The operating system's error.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Does anything (a file, a directory, a link) exist at `path`?
    fn exists(&self, path: &Path) -> bool {
        !matches!(self.entry(path), Ok(Entry::Missing))
    }
}

/// Writes a hint file (see `journal/times.rs`, `journal/ids.rs`) with
/// [`write_atomic`] only when `bytes` differ from what `path` holds; an
/// `empty` hint is not written where there is no file.
///
/// # Errors
/// As [`write_atomic`].
pub fn write_hint(storage: &dyn Storage, path: &Path, bytes: &[u8], empty: bool) -> crate::error::Result<()> {
    let on_disk = storage.read(path).ok();
    if (empty && on_disk.is_none()) || on_disk.as_deref() == Some(bytes) {
        return Ok(());
    }
    write_atomic(storage, path, bytes)
}

/// Writes `bytes` to `path` atomically and durably: a stale `.tmp` sibling
/// (file or link) is removed, a new one written and fsynced, renamed over
/// `path`, and the directory fsynced.
///
/// # Errors
/// [`crate::error::Error::Io`] naming the file of the step that failed.
pub fn write_atomic(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> crate::error::Result<()> {
    let temporary = layout::temporary_path(path);
    remove_if_present(storage, &temporary)?;
    write_new(storage, &temporary, bytes)?;
    set_directory_aside(storage, path)?;
    storage
        .rename(&temporary, path)
        .map_err(|error| crate::error::Error::io("rename to", path, error))?;
    sync_parent(storage, path)
}

/// Writes `bytes` to a new file at `path` (nothing may be there yet) and
/// fsyncs it (no rename, no directory fsync). A write or fsync that fails
/// (a full disk) removes the file it created: a partial file must never
/// pass for the bytes (a segment's zeros, a copy set aside).
///
/// # Errors
/// [`crate::error::Error::Io`] naming the file.
pub fn write_new(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> crate::error::Result<()> {
    let mut file = storage
        .create_new(path)
        .map_err(|error| crate::error::Error::io("create", path, error))?;
    let written = file
        .write_all(bytes)
        .map_err(|error| crate::error::Error::io("write", path, error))
        .and_then(|()| {
            file.sync_data()
                .map_err(|error| crate::error::Error::io("fsync", path, error))
        });
    if written.is_err() {
        let _ = storage.remove_file(path);
    }
    written
}

/// Removes what is at `path` (a file or a link), if anything.
///
/// # Errors
/// [`crate::error::Error::Io`] naming the path; a directory there.
pub fn remove_if_present(storage: &dyn Storage, path: &Path) -> crate::error::Result<()> {
    match storage.entry(path) {
        Ok(Entry::Missing) => Ok(()),
        Ok(Entry::Directory) => set_directory_aside(storage, path),
        Ok(_) => storage
            .remove_file(path)
            .map_err(|error| crate::error::Error::io("remove", path, error)),
        Err(error) => Err(crate::error::Error::io("inspect", path, error)),
    }
}

/// Renames a directory that is where a file goes aside
/// (`<name>.in-the-way.broken`): not ours to delete (someone made it, with
/// who knows what in it), and the name is free all the same. Nothing
/// happens unless a directory is there.
///
/// # Errors
/// [`crate::error::Error::Io`] naming the path.
pub fn set_directory_aside(storage: &dyn Storage, path: &Path) -> crate::error::Result<()> {
    if !matches!(storage.entry(path), Ok(Entry::Directory)) {
        return Ok(());
    }
    let aside = free_aside_name(storage, path, layout::IN_THE_WAY_TAG)?;
    storage
        .rename(path, &aside)
        .map_err(|error| crate::error::Error::io("rename aside", path, error))?;
    tracing::warn!(path = %path.display(), aside = %aside.display(), "a directory was where a file goes; set it aside");
    sync_parent(storage, path)
}

/// A name beside `path` that nothing uses yet: `<name>.<tag>.broken`, or
/// `<name>.<tag>.<n>.broken` for the first free `n`.
///
/// # Errors
/// [`crate::error::Error::Io`] inspecting the directory.
pub fn free_aside_name(storage: &dyn Storage, path: &Path, tag: &str) -> crate::error::Result<PathBuf> {
    for attempt in 0_u32.. {
        let candidate = layout::aside_path(path, tag, attempt);
        let entry = storage
            .entry(&candidate)
            .map_err(|error| crate::error::Error::io("inspect", &candidate, error))?;
        if entry == Entry::Missing {
            return Ok(candidate);
        }
    }
    unreachable!("a free name is found long before u32 runs out")
}

/// Fsyncs the directory holding `path`.
///
/// # Errors
/// [`crate::error::Error::Io`] naming the directory.
pub fn sync_parent(storage: &dyn Storage, path: &Path) -> crate::error::Result<()> {
    let parent = parent_of(path);
    storage
        .sync_dir(parent)
        .map_err(|error| crate::error::Error::io("fsync directory", parent, error))
}

/// The directory holding `path` (`.` for a bare name).
#[must_use]
pub fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Writes zeros over `file[from..to]`, a megabyte at a time (not synced).
///
/// # Errors
/// The operating system's error.
pub fn write_zeros(file: &mut dyn WritableFile, from: u64, to: u64) -> io::Result<()> {
    const PIECE: u64 = 1 << 20;
    let zeros = vec![0_u8; usize::try_from(to.saturating_sub(from).min(PIECE)).unwrap_or(0)];
    let mut at = from;
    while at < to {
        let length = (to - at).min(PIECE);
        file.write_all_at(at, &zeros[..usize::try_from(length).unwrap_or(0)])?;
        at += length;
    }
    Ok(())
}
