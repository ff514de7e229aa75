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

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use super::stream::Events;
use crate::entry::QueueEntry;
use crate::error::Result;
use crate::event::EventRecord;
use crate::layout::{Layout, STAGING_DIR, is_journal_companion, is_leftover, parse_segment_name};
use crate::projection::{Place, QueueState, Statistics};
use crate::recovery;
use crate::seq::{SEQ_MAX, Seq};
use crate::snapshot::Rejected;
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

/// The entries of `place` in queue order, from the `skip`-th on, handed
/// to `each` until it returns `false`, as a read-only open would list
/// them, holding only the movies the records after the snapshot name: the
/// rest stream from the documented file (checked whole first).
///
/// # Errors
/// As [`statistics`]; a documented file that changed while it was read.
pub fn list(
    storage: &Arc<dyn Storage>,
    dir: &Path,
    place: Place,
    mut skip: usize,
    each: &mut dyn FnMut(QueueEntry) -> bool,
) -> Result<()> {
    let mut skip_then = |entry| {
        if skip > 0 {
            skip -= 1;
            return true;
        }
        each(entry)
    };
    if let Some(plan) = ListPlan::new(storage, dir, place) {
        match plan.run(storage.as_ref(), dir, place, &mut skip_then) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(rejected) => {
                return Err(crate::error::Error::BadQueueFile {
                    path: rejected.path,
                    detail: rejected.detail,
                });
            }
        }
    }
    let state = recovery::recover_read_only(storage.as_ref(), dir)?.state;
    for entry in state.entries(place) {
        if !skip_then(entry) {
            break;
        }
    }
    Ok(())
}

/// [`list`] of a whole place from the snapshot file and the records after
/// it; `None` when the store is not in the shape it lists from.
#[must_use]
#[cfg(any(test, feature = "testing"))]
pub fn lean_list(storage: &Arc<dyn Storage>, dir: &Path, place: Place) -> Option<Vec<QueueEntry>> {
    let mut entries = Vec::new();
    let plan = ListPlan::new(storage, dir, place)?;
    let listed = plan.run(storage.as_ref(), dir, place, &mut |entry| {
        entries.push(entry);
        true
    });
    listed.ok()?.then_some(entries)
}

/// How a place lists from its snapshot file and the records after it:
/// the movies those records name, by where they now stand in the place.
struct ListPlan {
    summary: Summary,
    /// Every movie the records name.
    named: HashSet<String>,
    /// Moved to the front of the place (`requeued`), in order.
    front: Vec<QueueEntry>,
    /// Still where the snapshot had them (a failure updated in place).
    kept: HashMap<String, QueueEntry>,
    /// Joined the back of the place, in order.
    back: Vec<QueueEntry>,
}

impl ListPlan {
    /// Applies the records after the snapshot to the movies they name,
    /// each place's movies between two markers no event names: what ends
    /// before the first was moved to the front, what ends after the second
    /// joined the back, what stays between never left its place.
    fn new(storage: &Arc<dyn Storage>, dir: &Path, place: Place) -> Option<ListPlan> {
        let (summary, records) = after_snapshot(storage, dir)?;
        let mut plan = ListPlan {
            summary,
            named: HashSet::new(),
            front: Vec::new(),
            kept: HashMap::new(),
            back: Vec::new(),
        };
        if records.is_empty() {
            return Some(plan);
        }
        let index = loaded(plan.summary.load_index(storage.as_ref(), dir))?;
        plan.named = records
            .iter()
            .flat_map(|record| record.event.ids().map(str::to_owned))
            .collect();
        let touched = load_touched(
            storage.as_ref(),
            dir,
            &plan.summary,
            &index,
            plan.named.iter().map(String::as_str),
        )?;
        let markers = [marker(&plan.named, "front"), marker(&plan.named, "back")];
        let mut state = QueueState::partial();
        state.push_new(place, &markers[0]).ok()?;
        for (at, entry) in touched.iter().filter(|(at, _)| *at == place) {
            state.push_new(*at, entry).ok()?;
        }
        state.push_new(place, &markers[1]).ok()?;
        for (at, entry) in touched.iter().filter(|(at, _)| *at != place) {
            state.push_new(*at, entry).ok()?;
        }
        apply(&mut state, &records)?;
        let mut region = 0;
        for entry in state.entries(place) {
            if region < 2 && entry.id() == markers[region].id() {
                region += 1;
                continue;
            }
            match region {
                0 => plan.front.push(entry),
                1 => drop(plan.kept.insert(entry.id().to_owned(), entry)),
                _ => plan.back.push(entry),
            }
        }
        Some(plan)
    }

    /// Hands on the front, then the snapshot file's entries (a movie the
    /// records name only where it never left), then the back. `Ok(false)`:
    /// the file did not match its manifest, and nothing was handed on.
    fn run(
        mut self,
        storage: &dyn Storage,
        dir: &Path,
        place: Place,
        each: &mut dyn FnMut(QueueEntry) -> bool,
    ) -> std::result::Result<bool, Rejected> {
        let front = std::mem::take(&mut self.front);
        let mut going = true;
        let mut from_file = |entry: Option<QueueEntry>| {
            going = match entry {
                // The file holds up: the front comes first.
                None => front.iter().all(|entry| each(entry.clone())),
                Some(entry) if self.named.contains(entry.id()) => match self.kept.remove(entry.id()) {
                    Some(now) => each(now),
                    None => true,
                },
                Some(entry) => each(entry),
            };
            going
        };
        if !self.summary.each_entry(storage, dir, place, &mut from_file)? {
            return Ok(false);
        }
        if going {
            for entry in self.back {
                if !each(entry) {
                    break;
                }
            }
        }
        Ok(true)
    }
}

/// An entry no record names, to mark a place's ends in a partial state.
pub(crate) fn marker(named: &HashSet<String>, end: &str) -> QueueEntry {
    let mut id = format!("\u{0}movie-queue {end} marker");
    while named.contains(&id) {
        id.push('\u{0}');
    }
    QueueEntry::new(crate::movie::Movie::new(id, "", "0"))
}

/// The manifest's summary and every record after the snapshot, when the
/// store is in the shape the lean answers come from.
fn after_snapshot(storage: &Arc<dyn Storage>, dir: &Path) -> Option<(Summary, Vec<EventRecord>)> {
    let after = AfterSnapshot::read(storage, dir)?;
    Some((after.summary, after.records))
}

/// What the store holds after its snapshot, in the shape the lean answers
/// (and a writer that loads on demand) come from.
pub(crate) struct AfterSnapshot {
    /// The manifest's summary.
    pub summary: Summary,
    /// Every record after the snapshot, in order, one by one to the end.
    pub records: Vec<EventRecord>,
    /// Where the journal ends (see [`Events::clean_end`]): `None` when
    /// bytes follow the last record (a torn tail) or no segment was read.
    pub end: Option<(std::path::PathBuf, Seq, u64)>,
}

impl AfterSnapshot {
    /// `None` when the store is not in that shape: no version-4 manifest,
    /// an import staged, a foreign file in `journal/`, records after the
    /// snapshot that do not follow it one by one to the end (a hole,
    /// damage, a gap), a last segment read that holds no record, or a
    /// snapshot that is the only copy of its state.
    pub(crate) fn read(storage: &Arc<dyn Storage>, dir: &Path) -> Option<AfterSnapshot> {
        if storage.exists(&dir.join(STAGING_DIR)) || !journal_in_shape(storage.as_ref(), &Layout::new(dir).journal()) {
            return None;
        }
        let summary = loaded(manifest::read_summary(storage.as_ref(), dir))??;
        // The snapshot as the only copy of its state (no journal reaching
        // back to record 1, no compaction base): the whole open trusts it
        // only once every file holds up, so answers come from there.
        if !journal_reaches_back(storage.as_ref(), dir, summary.seq()) {
            return None;
        }
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
        // A segment with no record where reading ended may be named for
        // records an earlier segment holds (a hand-made or restored
        // journal), unless it is the first: the whole rebuild reads every
        // segment and decides.
        if let Some(empty) = events.empty_end() {
            let segments =
                crate::journal::segment::list_segments(storage.as_ref(), &Layout::new(dir).journal()).ok()?;
            if segments.first().map(|first| first.first_seq) != Some(empty) {
                return None;
            }
        }
        let end = events.clean_end();
        Some(AfterSnapshot { summary, records, end })
    }
}

/// Can the store rebuild the snapshot's state without its files: the
/// snapshot covers no record, or the journal's first segment starts at
/// record 1, or right after the record of a compaction base whose
/// checksum holds (its entries the whole open and `verify` check)?
/// Otherwise the snapshot is the only copy of its state: a damage the
/// lean reads do not look at would go unseen, and a writer must record it
/// as the base, so both rebuild whole.
pub(crate) fn journal_reaches_back(storage: &dyn Storage, dir: &Path, covered: Seq) -> bool {
    let journal = Layout::new(dir).journal();
    if covered.0 == 0 {
        return true;
    }
    let Ok(segments) = crate::journal::segment::list_segments(storage, &journal) else {
        return false;
    };
    let first = segments.first().map_or(covered.next(), |first| first.first_seq);
    first == Seq(1)
        || crate::snapshot::base::sealed_seq(storage, &journal.join(crate::layout::BASE_FILE))
            .is_some_and(|base| base.next() >= first)
}

/// Does the journal folder hold only what a store puts there? The stream
/// from the snapshot on does not look at files it does not read; the whole
/// rebuild refuses a foreign one, naming it. (A last segment the tail
/// marker names but that is gone ends the stream with an error.)
fn journal_in_shape(storage: &dyn Storage, journal: &Path) -> bool {
    let Ok(names) = storage.list_dir(journal) else {
        // No journal folder: a backup of the snapshot, which the whole
        // rebuild opens as it is; anything else there is its to name.
        return !storage.exists(journal);
    };
    names
        .iter()
        .all(|name| parse_segment_name(name).is_some() || is_journal_companion(name) || is_leftover(name))
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
    for (place, entry) in load_touched(storage, dir, summary, index, ids)? {
        state.push_new(place, &entry).ok()?;
    }
    Some(state)
}

/// The movies `ids` names that the snapshot holds (each once), with their
/// places, read through the index.
pub(crate) fn load_touched<'a>(
    storage: &dyn Storage,
    dir: &Path,
    summary: &Summary,
    index: &Index,
    ids: impl Iterator<Item = &'a str>,
) -> Option<Vec<(Place, QueueEntry)>> {
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for id in ids {
        if !seen.insert(id) {
            continue;
        }
        for located in loaded(index.candidates(id))? {
            let entry = loaded(summary.read_entry(storage, dir, &located))?;
            if entry.id() == id {
                found.push((located.place, entry));
                break;
            }
        }
    }
    Some(found)
}

pub(crate) fn apply(state: &mut QueueState, records: &[EventRecord]) -> Option<()> {
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
pub(crate) fn loaded<T>(result: std::result::Result<T, String>) -> Option<T> {
    result
        .map_err(|error| tracing::debug!(%error, "answering from the whole state"))
        .ok()
}

/// The time of record `seq` (0 for none): the next event is never stamped
/// below it. `None` when the journal does not hold it.
pub(crate) fn record_ts(storage: &Arc<dyn Storage>, dir: &Path, seq: Seq) -> Option<f64> {
    if seq.0 == 0 {
        return Some(0.0);
    }
    match Events::to_end(Arc::clone(storage), dir, seq, seq).next() {
        Some(Ok(record)) if record.seq == seq => Some(record.ts),
        _ => None,
    }
}
