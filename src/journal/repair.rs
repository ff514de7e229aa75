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
/// its directory), then writes zeros over it in `path` (fsynced). Zero
/// bytes hold nothing and are not copied. Returns the copy's path, if one
/// was made.
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
    copy_span_aside(storage, path, keep, u64::MAX)
}

/// Copies `path[from..to]` (to the end of the file at most), unless it is
/// all zeros, to a new `*.broken` file beside it (`<name>.<from>.broken`),
/// durably, without the zeros it ends with. Changes nothing else.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn copy_span_aside(storage: &dyn Storage, path: &Path, from: u64, to: u64) -> Result<Option<PathBuf>> {
    let bytes = storage.read(path).map_err(|error| Error::io("read", path, error))?;
    let index = |at: u64| usize::try_from(at).unwrap_or(usize::MAX).min(bytes.len());
    let span = bytes.get(index(from)..index(to).max(index(from))).unwrap_or_default();
    let span = &span[..super::format::written_end(span)];
    if span.is_empty() {
        return Ok(None);
    }
    let copy = free_broken_name(storage, path, &from.to_string())?;
    storage::write_new(storage, &copy, span)?;
    storage::sync_parent(storage, &copy)?;
    tracing::warn!(path = %path.display(), offset = from, aside = %copy.display(), "set damaged bytes aside");
    Ok(Some(copy))
}

/// Writes the header of the segment at `path` (whose name says it starts
/// at `first_seq`) anew, after a copy of the damaged one is durable beside
/// it: the whole file is written to a temporary name, fsynced and renamed
/// over it. Only for a segment whose records hold up: their checksums are
/// seeded with `first_seq`, so the header holds nothing they and the name
/// do not. Returns the copy's path, if one was made (not for zeros).
///
/// # Errors
/// [`Error::Io`] naming the file of the failed step; the segment is
/// unchanged unless the rename happened.
pub fn rewrite_header(storage: &dyn Storage, path: &Path, first_seq: crate::seq::Seq) -> Result<Option<PathBuf>> {
    let header_len = super::format::SEGMENT_HEADER_BYTES;
    let aside = copy_span_aside(storage, path, 0, header_len as u64)?;
    let bytes = storage.read(path).map_err(|error| Error::io("read", path, error))?;
    let mut fixed = super::format::encode_segment_header(first_seq).to_vec();
    fixed.extend_from_slice(bytes.get(header_len..).unwrap_or_default());
    storage::write_atomic(storage, path, &fixed)?;
    tracing::warn!(path = %path.display(), "wrote a damaged segment header anew");
    Ok(aside)
}

/// The second half of [`cut_aside`]: writes zeros over `path` from `keep`
/// on, if anything but zeros is there (fsynced). The file keeps its size:
/// a segment is never shortened, so a reader that has it open never finds
/// it shorter, and the writer's next records go over the zeros.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn cut(storage: &dyn Storage, path: &Path, keep: u64) -> Result<()> {
    match storage.entry(path) {
        Ok(storage::Entry::File(len)) if len > keep => {}
        Ok(_) => return Ok(()),
        Err(error) => return Err(Error::io("inspect", path, error)),
    }
    let written = super::reader::written_len(storage, path).map_err(|error| Error::io("read", path, error))?;
    if written > keep {
        storage
            .zero_from(path, keep)
            .map_err(|error| Error::io("write zeros over", path, error))?;
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
