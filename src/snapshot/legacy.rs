//! Legacy stores: the documented files of a Movie Sync installation that
//! has no journal yet, and the events that import them.
//!
//! A legacy store of any size is imported in bounded records: the entries
//! are cut into `imported` events of at most [`IMPORT_CHUNK_BYTES`] (and
//! the store's event limit) each, journaled as records `1..=n` in a staging
//! directory and installed at once (`journal/staging.rs`). The legacy files
//! are never rewritten before the import is durable.

use std::path::{Path, PathBuf};

use super::QUEUE_FILES;
use super::files::{parse_entries, parse_entries_prefix};
use crate::entry::QueueEntry;
use crate::error::{Error, Result};
use crate::event::{Event, encode_payload};
use crate::storage::Storage;

/// The largest `imported` event a legacy import writes (a single entry
/// larger than this gets an event of its own, up to the event limit).
pub const IMPORT_CHUNK_BYTES: usize = 4 << 20;

/// Room left in an event for what wraps its entries (`{"v":1,"ts":…,
/// "event":{"imported":{"pending":[…],"failed":[…],"completed":[…]}}}`).
const EVENT_WRAPPER_BYTES: usize = 256;

/// Reads the documented files of a store that has no manifest (a legacy
/// Movie Sync installation, or a directory given to `import`). Missing
/// files are empty queues; an unreadable one is an error, never emptied.
///
/// # Errors
/// [`Error::BadQueueFile`] naming the file; [`Error::Io`].
pub fn load_legacy(storage: &dyn Storage, dir: &Path) -> Result<Option<LegacyFiles>> {
    let mut lists: [Vec<QueueEntry>; 4] = Default::default();
    let mut found = false;
    for (name, list) in QUEUE_FILES.iter().zip(&mut lists) {
        let path = dir.join(name);
        if !storage.exists(&path) {
            continue;
        }
        found = true;
        if !is_regular(storage, &path) {
            return Err(Error::BadQueueFile {
                path,
                detail: NOT_REGULAR.into(),
            });
        }
        let bytes = storage.read(&path).map_err(|error| Error::io("read", &path, error))?;
        *list = parse_entries(&bytes).map_err(|detail| Error::BadQueueFile {
            path: path.clone(),
            detail: format!(
                "{detail}; nothing else holds these entries: fix the file, or run `movie-queue repair` \
                 to keep every entry before the damage and set the file aside"
            ),
        })?;
        if let Some((index, detail)) = too_deep(list) {
            return Err(Error::BadQueueFile {
                path,
                detail: format!(
                    "entry {index}: {detail}; the store cannot take it in (nothing was changed): fix the entry, \
                     or run `movie-queue repair` to keep every entry before it and set the file aside"
                ),
            });
        }
    }
    Ok(found.then(|| into_data(lists)))
}

/// Reads what holds up of the documented files in `dir`: each file's
/// entries before its first damage. Returns them and the files that were
/// damaged (for `repair`, which sets those aside after the import).
///
/// # Errors
/// [`Error::Io`] reading a file.
pub fn salvage_legacy(storage: &dyn Storage, dir: &Path) -> Result<(LegacyFiles, Vec<PathBuf>)> {
    let mut lists: [Vec<QueueEntry>; 4] = Default::default();
    let mut damaged = Vec::new();
    for (name, list) in QUEUE_FILES.iter().zip(&mut lists) {
        let path = dir.join(name);
        if !storage.exists(&path) {
            continue;
        }
        if !is_regular(storage, &path) {
            tracing::warn!(path = %path.display(), "not a regular file where a documented file belongs; nothing read from it");
            damaged.push(path);
            continue;
        }
        let bytes = storage.read(&path).map_err(|error| Error::io("read", &path, error))?;
        let (mut entries, mut error) = parse_entries_prefix(&bytes);
        if let Some((index, detail)) = too_deep(&entries) {
            entries.truncate(index);
            error = Some(format!("entry {index}: {detail}"));
        }
        if let Some(error) = error {
            tracing::warn!(path = %path.display(), %error, kept = entries.len(), "salvaging a damaged documented file");
            damaged.push(path);
        }
        *list = entries;
    }
    Ok((into_data(lists), damaged))
}

/// The first entry whose movie nests past [`crate::MOVIE_NESTING_MAX`]
/// (a door refuses it, so an import refuses it too), with why.
fn too_deep(entries: &[QueueEntry]) -> Option<(usize, String)> {
    entries.iter().enumerate().find_map(|(index, entry)| {
        entry.movie.validate().err().map(|error| match error {
            Error::InvalidMovie(detail) => (index, detail),
            other => (index, other.to_string()),
        })
    })
}

const NOT_REGULAR: &str = "not a regular file (a symbolic link, a directory or a special file): the store never \
                           follows links or reads special files; put the real file there, or run `movie-queue repair` \
                           to set it aside (its entries are then not imported)";

/// Is `path` a regular file (never a link followed)?
fn is_regular(storage: &dyn Storage, path: &Path) -> bool {
    matches!(storage.entry(path), Ok(crate::storage::Entry::File(_)))
}

/// A legacy store's documented files, as the entries they list, in file
/// order (an id may be listed twice: the import keeps its first entry).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LegacyFiles {
    /// `queue_pending.json`.
    pub pending: Vec<QueueEntry>,
    /// `queue_failed.json`.
    pub failed: Vec<QueueEntry>,
    /// `queue_completed.json`.
    pub completed: Vec<QueueEntry>,
    /// `queue_removed.json`.
    pub removed: Vec<QueueEntry>,
}

fn into_data(lists: [Vec<QueueEntry>; 4]) -> LegacyFiles {
    let [pending, failed, completed, removed] = lists;
    LegacyFiles {
        pending,
        failed,
        completed,
        removed,
    }
}

/// The event that imports a legacy store's files in one piece: a reader
/// of a legacy store applies it to an empty state, so it sees the same
/// queues the writer's import journals (an id listed twice keeps its
/// first entry).
#[must_use]
pub fn legacy_import(data: LegacyFiles) -> Event {
    Event::Imported {
        pending: data.pending,
        failed: data.failed,
        completed: data.completed,
        removed: data.removed,
    }
}

/// The import of `data` as journal payloads of at most `event_bytes_max`
/// bytes each (and [`IMPORT_CHUNK_BYTES`] where entries allow), stamped
/// `ts`, in file order: applied in order they give the state
/// [`legacy_import`] gives.
///
/// # Errors
/// [`Error::EventTooLarge`] when one entry alone is over the limit (the
/// message names its queue and index); nothing is written.
pub fn import_payloads(data: LegacyFiles, ts: f64, event_bytes_max: usize) -> Result<Vec<Vec<u8>>> {
    let room = event_bytes_max.saturating_sub(EVENT_WRAPPER_BYTES);
    let target = IMPORT_CHUNK_BYTES.min(room);
    let mut payloads = Vec::new();
    let mut chunk: [Vec<QueueEntry>; 4] = Default::default();
    let mut chunk_bytes = 0_usize;
    for (queue, entries) in [data.pending, data.failed, data.completed, data.removed]
        .into_iter()
        .enumerate()
    {
        for (index, entry) in entries.into_iter().enumerate() {
            let size = serde_json::to_vec(&entry).map_or(usize::MAX, |json| json.len() + 1);
            if chunk_bytes > 0 && chunk_bytes + size > target {
                payloads.push(encode_chunk(&mut chunk, ts, event_bytes_max)?);
                chunk_bytes = 0;
            }
            if size > room {
                return Err(Error::InvalidMovie(format!(
                    "{} entry {index} ({:?}) is {size} bytes of JSON: with what wraps it in an event, over the \
                     event limit of {event_bytes_max} ({room} bytes are left for an entry); the legacy store cannot \
                     be imported; nothing was changed",
                    QUEUE_FILES[queue],
                    entry.id()
                )));
            }
            chunk[queue].push(entry);
            chunk_bytes += size;
        }
    }
    if chunk_bytes > 0 || payloads.is_empty() {
        payloads.push(encode_chunk(&mut chunk, ts, event_bytes_max)?);
    }
    Ok(payloads)
}

fn encode_chunk(chunk: &mut [Vec<QueueEntry>; 4], ts: f64, event_bytes_max: usize) -> Result<Vec<u8>> {
    let [pending, failed, completed, removed] = std::mem::take(chunk);
    let payload = encode_payload(
        ts,
        &Event::Imported {
            pending,
            failed,
            completed,
            removed,
        },
    )?;
    if payload.len() > event_bytes_max {
        return Err(Error::EventTooLarge {
            length: payload.len() as u64,
            limit: event_bytes_max as u64,
        });
    }
    Ok(payload)
}
