//! Legacy stores: the documented files of a Movie Sync installation that
//! has no journal yet, and the event that imports them.

use std::path::Path;

use super::files::parse_entries;
use super::{QUEUE_FILES, SnapshotData};
use crate::entry::QueueEntry;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::seq::Seq;
use crate::storage::Storage;

/// Reads the documented files of a store that has no manifest (a legacy
/// Movie Sync installation, or a directory given to `import`). Missing
/// files are empty queues; an unreadable one is an error, never emptied.
///
/// # Errors
/// [`Error::BadQueueFile`] naming the file; [`Error::Io`].
pub fn load_legacy(storage: &dyn Storage, dir: &Path) -> Result<Option<SnapshotData>> {
    let mut lists: [Vec<QueueEntry>; 3] = Default::default();
    let mut found = false;
    for (name, list) in QUEUE_FILES.iter().zip(&mut lists) {
        let path = dir.join(name);
        if !storage.exists(&path) {
            continue;
        }
        found = true;
        let bytes = storage.read(&path).map_err(|error| Error::io("read", &path, error))?;
        *list = parse_entries(&bytes).map_err(|detail| Error::BadQueueFile {
            path: path.clone(),
            detail: format!("{detail}; there is no journal to rebuild it from, so fix or move the file"),
        })?;
    }
    let [pending, failed, completed] = lists;
    Ok(found.then_some(SnapshotData {
        seq: Seq(0),
        in_flight: Vec::new(),
        pending,
        failed,
        completed,
    }))
}

/// The event that imports a legacy store's files: the writer journals it
/// as its first record; a reader applies it to an empty state, so both see
/// the same queues (an id listed twice keeps its first entry).
#[must_use]
pub fn legacy_import(data: SnapshotData) -> Event {
    let mut pending = data.in_flight;
    pending.extend(data.pending);
    Event::Imported {
        pending,
        failed: data.failed,
        completed: data.completed,
    }
}
