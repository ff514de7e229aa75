//! Answers that cost what they touch, not the whole store: the counts and
//! one movie's entry, from the snapshot's manifest and index plus the
//! journal records after the snapshot, without loading the queues.
//!
//! The records after the snapshot are applied to a partial state holding
//! only the movies they name, loaded from the documented files through the
//! index (each entry checked against its CRC32). Every rule of the
//! projection but the front of pending is a rule about the movies an event
//! names (`projection/rules.rs`), so those movies end where the whole
//! state would put them, and the counts are the snapshot's less theirs
//! before plus theirs after.
//!
//! It answers only from a clean shape: a version-4 manifest whose index
//! matches it, no import being staged, and journal records that continue
//! the snapshot one by one to the end, without a hole or damage. Anything
//! else is left to the whole rebuild (`recovery::recover_read_only`),
//! which decides exactly as open does and names what is wrong.

use std::path::Path;
use std::sync::Arc;

use super::stream::Events;
use crate::entry::QueueEntry;
use crate::error::Result;
use crate::event::EventRecord;
use crate::layout::STAGING_DIR;
use crate::projection::{Place, QueueState, Statistics};
use crate::recovery;
use crate::seq::{SEQ_MAX, Seq};
use crate::snapshot::index::Index;
use crate::snapshot::manifest::{self, Summary};
use crate::storage::Storage;

/// The counts of the store in `dir` (permanent failures at
/// `max_retries`), as a read-only open would give them.
///
/// # Errors
/// As [`recovery::recover_read_only`], when the store is not in the shape
/// the counts are read from and the whole state is rebuilt.
pub fn statistics(storage: &Arc<dyn Storage>, dir: &Path, max_retries: u32) -> Result<Statistics> {
    match lean_statistics(storage, dir, max_retries) {
        Some(statistics) => Ok(statistics),
        None => Ok(recovery::recover_read_only(storage.as_ref(), dir)?
            .state
            .statistics(max_retries)),
    }
}

/// The movie `id`'s place and entry in the store in `dir`, as a read-only
/// open would give them.
///
/// # Errors
/// As [`statistics`].
pub fn lookup(storage: &Arc<dyn Storage>, dir: &Path, id: &str) -> Result<Option<(Place, QueueEntry)>> {
    match lean_lookup(storage, dir, id) {
        Some(found) => Ok(found),
        None => Ok(recovery::recover_read_only(storage.as_ref(), dir)?.state.get(id)),
    }
}

/// [`statistics`] from the summary and the records after it; `None` when
/// the store is not in the shape it answers from.
#[must_use]
pub fn lean_statistics(storage: &Arc<dyn Storage>, dir: &Path, max_retries: u32) -> Option<Statistics> {
    let (summary, records) = after_snapshot(storage, dir)?;
    let (before, after) = if records.is_empty() {
        let none = QueueState::new().statistics(max_retries);
        (none, none)
    } else {
        let index = loaded(summary.load_index(storage.as_ref(), dir))?;
        let ids = records.iter().flat_map(|record| record.event.ids());
        let mut state = partial_state(storage.as_ref(), dir, &summary, &index, ids)?;
        let before = state.statistics(max_retries);
        apply(&mut state, &records)?;
        (before, state.statistics(max_retries))
    };
    let count = |place: Place, before: usize, after: usize| {
        usize::try_from(summary.count(place))
            .ok()?
            .checked_sub(before)?
            .checked_add(after)
    };
    let permanent = usize::try_from(summary.permanent_failures(max_retries)).ok()?;
    Some(Statistics {
        pending: count(Place::Pending, before.pending, after.pending)?,
        in_flight: count(Place::InFlight, before.in_flight, after.in_flight)?,
        failed: count(Place::Failed, before.failed, after.failed)?,
        completed: count(Place::Completed, before.completed, after.completed)?,
        permanent_failures: permanent
            .checked_sub(before.permanent_failures)?
            .checked_add(after.permanent_failures)?,
        removed: count(Place::Removed, before.removed, after.removed)?,
    })
}

/// [`lookup`] from the index and the records after the snapshot; `None`
/// when the store is not in the shape it answers from.
#[must_use]
#[allow(clippy::option_option)] // "cannot answer" and "no such movie" differ.
pub fn lean_lookup(storage: &Arc<dyn Storage>, dir: &Path, id: &str) -> Option<Option<(Place, QueueEntry)>> {
    let (summary, records) = after_snapshot(storage, dir)?;
    let index = loaded(summary.load_index(storage.as_ref(), dir))?;
    // Every movie the records name, not only this one's: a record about
    // several movies is checked against each of them, and their own
    // records put them where it finds them.
    let ids = std::iter::once(id).chain(records.iter().flat_map(|record| record.event.ids()));
    let mut state = partial_state(storage.as_ref(), dir, &summary, &index, ids)?;
    apply(&mut state, &records)?;
    Some(state.get(id))
}

/// The manifest's summary and every record after the snapshot, when the
/// store is in the shape the lean answers come from.
fn after_snapshot(storage: &Arc<dyn Storage>, dir: &Path) -> Option<(Summary, Vec<EventRecord>)> {
    if storage.exists(&dir.join(STAGING_DIR)) {
        return None;
    }
    let summary = loaded(manifest::read_summary(storage.as_ref(), dir))??;
    let from = Seq(summary.seq().0 + 1);
    let mut events = Events::to_end(Arc::clone(storage), dir, from, Seq(SEQ_MAX));
    let mut records = Vec::new();
    for item in events.by_ref() {
        let record = item.ok()?;
        let due = Seq(from.0 + records.len() as u64);
        if record.seq != due {
            return None;
        }
        records.push(record);
    }
    if events.take_skipped().is_some() {
        return None;
    }
    Some((summary, records))
}

/// The movies `ids` names (each once), as the snapshot holds them, in a
/// partial state.
fn partial_state<'a>(
    storage: &dyn Storage,
    dir: &Path,
    summary: &Summary,
    index: &Index,
    ids: impl Iterator<Item = &'a str>,
) -> Option<QueueState> {
    let mut state = QueueState::partial();
    for id in ids {
        if state.place(id).is_some() {
            continue;
        }
        for located in loaded(index.candidates(id))? {
            let entry = loaded(summary.read_entry(storage, dir, &located))?;
            if entry.id() == id {
                state.push_new(located.place, &entry).ok()?;
                break;
            }
        }
    }
    Some(state)
}

fn apply(state: &mut QueueState, records: &[EventRecord]) -> Option<()> {
    for record in records {
        if let Err(error) = state.apply_version(record.version, record.ts, &record.event) {
            tracing::debug!(seq = record.seq.0, %error, "a record does not apply to the partial state");
            return None;
        }
    }
    Some(())
}

/// `Some` of what loaded; `None`, with the reason in the debug log, of
/// what did not.
fn loaded<T>(result: std::result::Result<T, String>) -> Option<T> {
    result
        .map_err(|error| tracing::debug!(%error, "answering from the whole state"))
        .ok()
}
