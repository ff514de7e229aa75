//! A writer that loads on demand ([`crate::Options::load_on_demand`]):
//! the open reads the snapshot's manifest and index and the records after
//! the snapshot, and the state holds only the movies those records name.
//! Each call then loads what it asks about before it decides, so it
//! decides exactly as it would over the whole state:
//!
//! * a movie by id, through the index (each entry checked against its
//!   CRC32);
//! * the front of pending: the movies moved to the front since the
//!   snapshot come first; else the first entry of the snapshot's pending
//!   file, in file order, that is still where the file has it (read from
//!   the start only as far as that entry, each entry vouched for by the
//!   index);
//! * anything about every movie (counts, lists, a watchlist): the whole
//!   state, rebuilt from disk once, after which the manager is an ordinary
//!   one.
//!
//! The pending queue of the partial state is kept in three regions around
//! two markers (entries no event names): before the first, the movies
//! moved to the front since the snapshot (and a front found in the file);
//! between them, the movies the records name that never left their place
//! in the file; after the second, the movies that joined the back, and
//! those loaded by id later (which are still in their place in the file
//! while no event named them: `untouched`).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use crate::audit::lean::{self, AfterSnapshot};
use crate::event::Event;
use crate::journal::writer::JournalEnd;
use crate::projection::{Place, QueueState};
use crate::seq::Seq;
use crate::snapshot::index::Index;
use crate::snapshot::manifest::Summary;
use crate::storage::Storage;

/// What a call needs the state to hold before it decides.
#[derive(Debug, Clone, Copy)]
pub(super) enum Need<'a> {
    /// Nothing of the queues.
    Nothing,
    /// The movie with this id (or the knowledge that there is none).
    Id(&'a str),
    /// The front of pending.
    Front,
    /// Every movie.
    Whole,
}

/// What a state that loads on demand knows about where its movies come from.
pub(super) struct Partial {
    summary: Summary,
    index: Index,
    /// The ids whose entry the state holds as the store does, or that the
    /// store does not hold at all.
    known: HashSet<String>,
    /// Loaded from the snapshot's pending queue by id, named by no event
    /// since: still where the pending file has them.
    untouched: HashSet<String>,
    /// The ids of the two markers of pending.
    markers: [String; 2],
}

impl std::fmt::Debug for Partial {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Partial")
            .field("seq", &self.summary.seq())
            .field("known", &self.known.len())
            .finish_non_exhaustive()
    }
}

/// A writer's start from the snapshot and the records after it.
pub(super) struct Opened {
    pub partial: Partial,
    pub state: QueueState,
    pub last_seq: Seq,
    pub last_ts: f64,
    pub events_since_snapshot: u64,
    pub oldest_change: Option<f64>,
    pub end: JournalEnd,
}

impl Partial {
    /// The start of a writer that holds the store's lock, when the store is
    /// in the shape the lean answers come from (see `audit/lean.rs`) and
    /// its journal ends cleanly (no torn tail to set aside): the open of
    /// the whole state would then start from this snapshot and append
    /// where this does. `None`: open the whole state.
    pub(super) fn open(storage: &Arc<dyn Storage>, dir: &Path) -> Option<Opened> {
        let AfterSnapshot { summary, records, end } = AfterSnapshot::read(storage, dir)?;
        let (path, first_seq, length) = end?;
        // A documented file of another length than the manifest's: the
        // whole open rejects the snapshot (and its close writes a sound
        // one). (A journal that cannot rebuild the snapshot's state by
        // itself is left to the whole open by `AfterSnapshot::read`: it
        // records the snapshot as the base.)
        if !summary.files_sized(storage.as_ref(), dir) {
            return None;
        }
        let index = lean::loaded(summary.load_index(storage.as_ref(), dir))?;
        let known: HashSet<String> = records
            .iter()
            .flat_map(|record| record.event.ids().map(str::to_owned))
            .collect();
        let markers = [lean::marker(&known, "front"), lean::marker(&known, "back")];
        let touched = lean::load_touched(
            storage.as_ref(),
            dir,
            &summary,
            &index,
            known.iter().map(String::as_str),
        )?;
        let mut state = QueueState::partial();
        state.push_marker(Place::Pending, &markers[0]).ok()?;
        for (_, entry) in touched.iter().filter(|(place, _)| *place == Place::Pending) {
            state.push_new(Place::Pending, entry).ok()?;
        }
        state.push_marker(Place::Pending, &markers[1]).ok()?;
        for (place, entry) in touched.iter().filter(|(place, _)| *place != Place::Pending) {
            state.push_new(*place, entry).ok()?;
        }
        lean::apply(&mut state, &records)?;
        let last_seq = records.last().map_or(summary.seq(), |record| record.seq);
        let last_ts = match records.last() {
            Some(record) => record.ts,
            None => lean::record_ts(storage, dir, summary.seq())?,
        };
        Some(Opened {
            events_since_snapshot: records.len() as u64,
            oldest_change: records.first().map(|record| record.ts),
            partial: Partial {
                summary,
                index,
                known,
                untouched: HashSet::new(),
                markers: markers.map(|marker| marker.id().to_owned()),
            },
            state,
            last_seq,
            last_ts,
            end: JournalEnd {
                next_seq: last_seq.next(),
                last_segment: Some((path, first_seq, length)),
            },
        })
    }

    /// Loads into `state` what `need` asks for. `false`: it cannot (the
    /// whole state is needed, or an entry does not hold up against the
    /// index): the caller loads the whole state, which decides exactly as
    /// an open does and names what is wrong.
    pub(super) fn prepare(
        &mut self,
        storage: &dyn Storage,
        dir: &Path,
        state: &mut QueueState,
        need: Need<'_>,
    ) -> bool {
        match need {
            Need::Nothing => true,
            Need::Whole => false,
            Need::Id(id) => self.load_id(storage, dir, state, id),
            Need::Front => self.load_front(storage, dir, state),
        }
    }

    /// Notes an event the manager applied: the movies it names are known,
    /// and no longer where the snapshot's file has them.
    pub(super) fn committed(&mut self, event: &Event) {
        for id in event.ids() {
            self.untouched.remove(id);
            if !self.known.contains(id) {
                self.known.insert(id.to_owned());
            }
        }
    }

    fn load_id(&mut self, storage: &dyn Storage, dir: &Path, state: &mut QueueState, id: &str) -> bool {
        if state.is_marker(id) {
            return false;
        }
        if self.known.contains(id) {
            return true;
        }
        let Some(found) = lean::load_touched(storage, dir, &self.summary, &self.index, std::iter::once(id)) else {
            return false;
        };
        for (place, entry) in found {
            if state.push_new(place, &entry).is_err() {
                return false;
            }
            if place == Place::Pending {
                self.untouched.insert(id.to_owned());
            }
        }
        self.known.insert(id.to_owned());
        true
    }

    /// Puts the front of pending first in `state`'s pending queue (before
    /// the first marker), unless a movie moved to the front is there already.
    fn load_front(&mut self, storage: &dyn Storage, dir: &Path, state: &mut QueueState) -> bool {
        let mut pending = state.ids_in(Place::Pending);
        if pending.next() != Some(self.markers[0].as_str()) {
            return true;
        }
        let mut in_place: HashSet<String> = pending
            .take_while(|id| *id != self.markers[1])
            .map(str::to_owned)
            .collect();
        in_place.extend(self.untouched.iter().cloned());
        let known = &self.known;
        let mut wanted =
            |entry: &crate::entry::QueueEntry| !known.contains(entry.id()) || in_place.contains(entry.id());
        let found = match self
            .summary
            .first_entry_where(storage, dir, &self.index, Place::Pending, &mut wanted)
        {
            Ok(found) => found,
            Err(error) => {
                tracing::debug!(%error, "loading the whole state");
                return false;
            }
        };
        // None: no movie of the file is still in its place; the front is
        // the first that joined the back.
        if let Some(entry) = found {
            if !self.known.contains(entry.id()) {
                if state.push_new(Place::Pending, &entry).is_err() {
                    return false;
                }
                self.known.insert(entry.id().to_owned());
            }
            self.untouched.remove(entry.id());
            state.move_to_front_of_pending(entry.id());
        }
        true
    }
}
