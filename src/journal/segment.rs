//! Segment files: their names, listing them in order, creating one durably.
//!
//! A segment is `journal/<first_seq, 20 digits>.seg`. It is created under a
//! `.tmp` name, its header and the zeros its first records will be written
//! over written and fsynced, renamed into place and the directory fsynced,
//! so a segment file either has a whole header and its zeros or does not
//! exist.

use std::path::{Path, PathBuf};

use super::format::{SEGMENT_HEADER_BYTES, encode_segment_header};
use crate::error::{Error, Result};
use crate::layout::{self, BASE_FILE, HOLES_FILE, IDENTITY_FILE, TAIL_FILE, parse_segment_name, segment_name};
use crate::seq::Seq;
use crate::storage::{self, Entry, Storage, WritableFile};

/// A segment file found in the journal directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    /// Its path.
    pub path: PathBuf,
    /// The first sequence number its name announces.
    pub first_seq: Seq,
}

/// Lists the segments of `journal_dir` in order. Leftover `.tmp` files of
/// an interrupted segment creation are removed; files set aside by repair
/// (`*.broken`) are ignored; any other file is an error, never skipped.
///
/// # Errors
/// [`Error::Io`] on a listing failure, [`Error::Corrupt`] for a foreign file.
pub fn list_segments(storage: &dyn Storage, journal_dir: &Path) -> Result<Vec<SegmentFile>> {
    match storage.entry(journal_dir) {
        Ok(Entry::Missing) => return Ok(Vec::new()),
        Ok(Entry::Directory) => {}
        Ok(_) => {
            return Err(Error::Corrupt {
                path: journal_dir.to_path_buf(),
                offset: 0,
                detail: "not a directory (a file, a symbolic link or a special file) where the journal belongs: \
                         the store never follows links; `movie-queue repair` sets it aside"
                    .into(),
            });
        }
        Err(error) => return Err(Error::io("inspect", journal_dir, error)),
    }
    let names = storage
        .list_dir(journal_dir)
        .map_err(|error| Error::io("list", journal_dir, error))?;
    let mut segments = Vec::new();
    for name in names {
        let path = journal_dir.join(&name);
        if let Some(first_seq) = parse_segment_name(&name) {
            match storage.entry(&path) {
                Ok(Entry::File(_)) => {}
                Ok(Entry::Missing) => continue,
                Ok(_) => {
                    return Err(Error::Corrupt {
                        path,
                        offset: 0,
                        detail: "not a regular file (a symbolic link, a directory or a special file) where a \
                                 segment belongs: the store never follows links or reads special files; \
                                 `movie-queue repair` sets it aside"
                            .into(),
                    });
                }
                Err(error) => return Err(Error::io("inspect", &path, error)),
            }
            segments.push(SegmentFile { path, first_seq });
        } else if layout::is_leftover(&name) || layout::is_journal_companion(&name) {
            // Not part of the journal: the base, the markers, an interrupted
            // creation or repair's leftovers.
        } else {
            return Err(Error::Corrupt {
                path,
                offset: 0,
                detail: "unexpected file in the journal directory (not a segment); move it elsewhere".into(),
            });
        }
    }
    segments.sort_by_key(|segment| segment.first_seq);
    Ok(segments)
}

/// Removes the `.tmp` leftovers of an interrupted segment creation (writer only).
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn remove_leftovers(storage: &dyn Storage, journal_dir: &Path) -> Result<()> {
    if !storage.exists(journal_dir) {
        return Ok(());
    }
    let names = storage
        .list_dir(journal_dir)
        .map_err(|error| Error::io("list", journal_dir, error))?;
    let ours = [BASE_FILE, TAIL_FILE, HOLES_FILE, IDENTITY_FILE];
    for name in names.iter().filter(|name| {
        layout::temporary_of(name).is_some_and(|stem| parse_segment_name(stem).is_some() || ours.contains(&stem))
    }) {
        let path = journal_dir.join(name);
        tracing::info!(path = %path.display(), "removing the leftover of an interrupted write");
        storage::remove_if_present(storage, &path)?;
    }
    Ok(())
}

/// Creates the segment starting at `first_seq` durably, `room` bytes long
/// (its header, then zeros: the writer's records go over them, so the
/// fdatasync that acknowledges them carries no change of the file's size),
/// and opens it for writing after its header: header and zeros to a `.tmp`
/// file, fsync, rename, directory fsync. A full disk fails it here, before
/// any record is written into it.
///
/// # Errors
/// [`Error::Io`] naming the file of the failed step.
pub fn create_segment(
    storage: &dyn Storage,
    journal_dir: &Path,
    first_seq: Seq,
    room: u64,
) -> Result<(PathBuf, Box<dyn WritableFile>)> {
    let path = journal_dir.join(segment_name(first_seq));
    if storage.exists(&path) {
        return Err(Error::io(
            "create segment",
            &path,
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "a file is already there"),
        ));
    }
    let temporary = crate::layout::temporary_path(&path);
    storage::remove_if_present(storage, &temporary)?;
    write_preallocated(storage, &temporary, first_seq, room)?;
    storage
        .rename(&temporary, &path)
        .map_err(|error| Error::io("rename to", &path, error))?;
    storage::sync_parent(storage, &path)?;
    super::tail::write(storage, journal_dir, first_seq)?;
    let file = storage
        .open_write(&path, SEGMENT_HEADER_BYTES as u64)
        .map_err(|error| Error::io("open", &path, error))?;
    Ok((path, file))
}

/// A new file at `path`: the header of the segment starting at
/// `first_seq`, zeros to `room` bytes, fsynced.
fn write_preallocated(storage: &dyn Storage, path: &Path, first_seq: Seq, room: u64) -> Result<()> {
    let header = encode_segment_header(first_seq);
    let mut bytes = vec![0_u8; usize::try_from(room).unwrap_or(0).max(header.len())];
    bytes[..header.len()].copy_from_slice(&header);
    storage::write_new(storage, path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_refused() {
        assert_eq!(segment_name(Seq(7)), "00000000000000000007.seg");
        assert_eq!(parse_segment_name("00000000000000000007.seg"), Some(Seq(7)));
        assert_eq!(parse_segment_name("7.seg"), None);
        assert_eq!(parse_segment_name("0000000000000000000x.seg"), None);
        assert_eq!(parse_segment_name("00000000000000000007.seg.tmp"), None);
    }
}
