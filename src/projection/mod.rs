//! The queue views as a pure function of the events.
//!
//! [`QueueState`] holds the five queues (pending, in flight, failed,
//! completed, removed) and the indexes the manager's queries need. It
//! changes only through [`QueueState::apply`], one [`Event`] at a time, by
//! the rules of the event's schema version, so replaying a journal rebuilds
//! exactly the state the live queue had.
//!
//! **Architecture invariant:** this module does no I/O, reads no clock and
//! draws no random numbers; every time it uses comes from the event or the
//! caller.
//!
//! Representation: every entry lives once, in a slot of a slab, as its
//! compact JSON (the documented files' shape; the id is read from it) plus
//! the numbers its indexes need, so a queue of 100,000 movies costs little
//! more than their JSON. A hash table maps each id to its slot (it stores
//! slot numbers only: hashes are of the id read from the slot). Each place
//! is a doubly linked list through the slots, so every move is `O(1)`;
//! each entry also carries an order key that ascends from its place's
//! front to its back (front inserts take keys below the front's, back
//! inserts above the back's). Failed entries are also indexed by
//! `(retry_count, retry_after)`, completed ones by `completed_at`, removed
//! ones by `removed_at`, so the retry, clean-up and deletion queries cost
//! `O(log n + k)`. Queries hand out parsed [`QueueEntry`] values.
//!
//! The id table's hasher is seeded per process; the seed changes where ids
//! sit in memory, never a result.

mod invariants;
mod lists;
mod mutation;
mod rewrite;
mod rules;
mod slab;
mod stamps;
#[cfg(test)]
mod tests;
mod time_index;

pub(crate) use self::mutation::Prepared;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use hashbrown::{DefaultHashBuilder, HashTable};
use serde::{Deserialize, Serialize};

use self::lists::List;
use self::slab::{IdSlot, Index, Node, table_hash};
use self::time_index::TimeKey;
use crate::entry::QueueEntry;
use crate::error::{Error, Result};
use crate::event::{EVENT_VERSION, Event, EventRecord};

/// Which of the five queues an entry is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Place {
    /// Waiting to be taken, first in first out.
    Pending,
    /// Taken and being worked on.
    InFlight,
    /// Failed; waiting for a retry, a reset or a give-up.
    Failed,
    /// Done.
    Completed,
    /// Left the watchlist; its files are deleted after a grace period.
    Removed,
}

impl Place {
    /// The five places, in the order the queues are listed.
    pub const ALL: [Place; 5] = [
        Place::Pending,
        Place::InFlight,
        Place::Failed,
        Place::Completed,
        Place::Removed,
    ];

    /// The place's name in JSON and on the wire: `pending`, `in_flight`,
    /// `failed`, `completed`, `removed` (`Display` gives the words).
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Place::Pending => "pending",
            Place::InFlight => "in_flight",
            Place::Failed => "failed",
            Place::Completed => "completed",
            Place::Removed => "removed",
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Place::Pending => "pending",
            Place::InFlight => "in flight",
            Place::Failed => "failed",
            Place::Completed => "completed",
            Place::Removed => "removed",
        })
    }
}

/// Why an event cannot apply to this state (a bug or a corrupt journal);
/// carries a human message naming the event kind and the id.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ApplyError(pub(crate) String);

/// The queue counts, as `get_statistics()` returns them. `default()` is
/// no movies; [`Statistics::count`] tallies movies into it one by one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Statistics {
    /// Movies waiting.
    pub pending: usize,
    /// Movies taken by `get_next_pending` and not yet reported.
    pub in_flight: usize,
    /// Movies that failed (permanent failures included).
    pub failed: usize,
    /// Movies done.
    pub completed: usize,
    /// Failed movies with `retry_count >= max_retries`.
    pub permanent_failures: usize,
    /// Movies that left the watchlist, waiting for their files' deletion.
    pub removed: usize,
}

impl Statistics {
    /// Counts one more movie in `place` that has failed `retry_count`
    /// times: the same rule [`QueueState::statistics`] applies (a failed
    /// movie with `retry_count >= max_retries` is also a permanent failure).
    pub fn count(&mut self, place: Place, retry_count: u32, max_retries: u32) {
        match place {
            Place::Pending => self.pending += 1,
            Place::InFlight => self.in_flight += 1,
            Place::Failed => {
                self.failed += 1;
                if retry_count >= max_retries {
                    self.permanent_failures += 1;
                }
            }
            Place::Completed => self.completed += 1,
            Place::Removed => self.removed += 1,
        }
    }
}

/// The five queues and their indexes, as a pure function of the events.
#[derive(Debug, Clone, Default)]
pub struct QueueState {
    /// Every known entry; `None` marks a free slot.
    slab: Vec<Option<Node>>,
    /// Free slots of `slab`, reused before it grows.
    free: Vec<Index>,
    /// The slot of every known entry, by the hash of its id (the id itself
    /// is read from the entry, so it is stored once).
    by_id: HashTable<IdSlot>,
    hasher: DefaultHashBuilder,
    /// Pending, in flight, failed, completed, removed (as [`Place::ALL`]).
    lists: [List; 5],
    /// Failed entries by `retry_count`, then `(retry_after, order key)`.
    /// Never holds an empty set, so it doubles as the `retry_count`
    /// histogram of the failed queue.
    retry_index: BTreeMap<u32, BTreeSet<TimeKey>>,
    /// Completed entries by `(completed_at, order key)`.
    completed_index: BTreeSet<TimeKey>,
    /// Removed entries by `(removed_at, order key)`.
    removed_index: BTreeSet<TimeKey>,
    /// Where entries are serialized before they are stored.
    scratch: Vec<u8>,
    /// Does it hold only some of a store's entries (`audit/lean.rs`)? Then
    /// the front of pending is unknown, and `taken` is checked only for
    /// naming a pending movie.
    partial: bool,
    /// Entries of a partial state that stand for the ends of a place's
    /// snapshot file (no event names them): the front of pending skips them.
    markers: Vec<String>,
    /// The places whose lists changed since [`QueueState::forget_changes`]
    /// (a bit per place, as [`Place::ALL`]): a snapshot rewrites only the
    /// documented files of those (`snapshot/manifest.rs`).
    changed: u8,
}

impl QueueState {
    /// An empty state: the projection of no events.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty state that will hold only some of a store's entries: the
    /// ones a run of events concerns, loaded from a snapshot one by one.
    /// Every rule but the front of pending is a rule about the movies an
    /// event names, so those events apply to it as they apply to the whole.
    #[must_use]
    pub(crate) fn partial() -> Self {
        QueueState {
            partial: true,
            ..Self::default()
        }
    }

    /// Has any list of these places changed (an entry in, out, moved or
    /// rewritten) since [`QueueState::forget_changes`]?
    #[must_use]
    pub(crate) fn changed_any(&self, places: &[Place]) -> bool {
        places.iter().any(|&place| self.changed & place_bit(place) != 0)
    }

    /// From now on, reports only the changes after this point (the state
    /// as it is matches the documented files just read or written).
    pub(crate) fn forget_changes(&mut self) {
        self.changed = 0;
    }

    /// Makes room for `additional` more entries without growing (replay
    /// and snapshot loading know roughly how many are coming).
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.slab.reserve(additional.saturating_sub(self.free.len()));
        self.by_id.reserve(additional, |slot: &IdSlot| table_hash(slot.hash));
    }

    /// Applies one event of the current schema version that happened at
    /// time `ts` (Unix seconds).
    ///
    /// # Errors
    /// [`ApplyError`] when the event cannot apply to this state (see
    /// [`QueueState::check`]); the state is then unchanged.
    pub(crate) fn apply(&mut self, ts: f64, event: &Event) -> Result<(), ApplyError> {
        self.apply_version(EVENT_VERSION, ts, event)
    }

    /// Applies one event written in schema `version` by that version's
    /// rules (version 1 stamps nothing; see `docs/FORMAT.md`).
    ///
    /// # Errors
    /// As [`QueueState::apply`].
    pub(crate) fn apply_version(&mut self, version: u32, ts: f64, event: &Event) -> Result<(), ApplyError> {
        self.check(event)?;
        self.mutate(version, ts, event);
        debug_assert!(self.agrees_after(event), "projection indexes disagree after {event:?}");
        Ok(())
    }

    /// Applies an event of the current schema version that
    /// [`QueueState::check`] has just accepted on this very state (the
    /// manager checks before journaling, under the same lock), without
    /// checking it a second time.
    pub(crate) fn apply_checked(&mut self, ts: f64, event: &Event) {
        debug_assert!(
            self.check(event).is_ok(),
            "apply_checked of an unchecked event {event:?}"
        );
        self.mutate(EVENT_VERSION, ts, event);
        debug_assert!(self.agrees_after(event), "projection indexes disagree after {event:?}");
    }

    /// Applies one journal record by the rules of the schema version it
    /// was written in: the one way to move a state on by an event, which
    /// the manager, replay, recovery and every reader outside the library
    /// (the tool's dashboard) share, so no copy of the movement rules
    /// exists elsewhere.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the record, its kind and why, when
    /// the event cannot apply to this state (a record of another store, or
    /// one out of order); the state is then unchanged.
    pub fn apply_record(&mut self, record: &EventRecord) -> Result<()> {
        self.apply_version(record.version, record.ts, &record.event)
            .map_err(|error| {
                Error::InvalidArgument(format!(
                    "record {} ({}) does not apply to this state: {error}",
                    record.seq,
                    record.event.kind()
                ))
            })
    }

    /// Where the movie `id` stands: its place and its order key there
    /// (ascending from the front of the place to its back). A key is
    /// assigned when the movie joins the place and kept while it stays, and
    /// keys in one place are never reused, so the keys of the members a
    /// place had at any earlier record, sorted, give its order then.
    #[must_use]
    pub fn position(&self, id: &str) -> Option<(Place, i64)> {
        self.find(id).map(|(_, node)| (node.place, node.key))
    }

    /// Where the movie `id` is, if anywhere.
    #[must_use]
    pub fn place(&self, id: &str) -> Option<Place> {
        self.find(id).map(|(_, node)| node.place)
    }

    /// The movie `id`'s place and entry, if it is known.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<(Place, QueueEntry)> {
        let (_, node) = self.find(id)?;
        Some((node.place, node.entry()?))
    }

    /// The entry the next `Taken` must name (in a partial state: the first
    /// pending entry that is not a marker).
    #[must_use]
    pub fn front_pending(&self) -> Option<QueueEntry> {
        self.front_pending_node()?.entry()
    }

    /// The id at the front of pending.
    #[must_use]
    pub(crate) fn front_pending_id(&self) -> Option<&str> {
        self.front_pending_node().map(Node::id)
    }

    fn front_pending_node(&self) -> Option<&Node> {
        self.nodes(Place::Pending)
            .map(|(_, node)| node)
            .find(|node| !self.is_marker(node.id()))
    }

    /// Is `id` one of a partial state's markers?
    pub(crate) fn is_marker(&self, id: &str) -> bool {
        self.markers.iter().any(|marker| marker == id)
    }

    /// Adds `entry` to the back of `place` as a marker of a partial state.
    ///
    /// # Errors
    /// As [`QueueState::push_new`].
    pub(crate) fn push_marker(&mut self, place: Place, entry: &QueueEntry) -> Result<(), ApplyError> {
        debug_assert!(self.partial, "a marker in a whole state");
        self.push_new(place, entry)?;
        self.markers.push(entry.id().to_owned());
        Ok(())
    }

    /// The ids of one place, in queue order.
    pub(crate) fn ids_in(&self, place: Place) -> impl Iterator<Item = &str> {
        self.nodes(place).map(|(_, node)| node.id())
    }

    /// The entries of one place, in queue order, as the compact JSON of
    /// each (the documented files' shape, without re-serializing).
    pub(crate) fn entries_json(&self, place: Place) -> impl Iterator<Item = &str> {
        self.nodes(place).map(|(_, node)| node.json())
    }

    /// The entries of one place, in queue order, as (id, compact JSON).
    pub(crate) fn entries_stored(&self, place: Place) -> impl Iterator<Item = (&str, &str)> {
        self.nodes(place).map(|(_, node)| (node.id(), node.json()))
    }

    /// How many entries are pending.
    #[must_use]
    pub fn pending_count(&self) -> usize {
        self.list(Place::Pending).len
    }

    /// How many entries are in flight.
    #[must_use]
    pub fn in_flight_count(&self) -> usize {
        self.list(Place::InFlight).len
    }

    /// How many entries are failed.
    #[must_use]
    pub fn failed_count(&self) -> usize {
        self.list(Place::Failed).len
    }

    /// How many entries are completed.
    #[must_use]
    pub fn completed_count(&self) -> usize {
        self.list(Place::Completed).len
    }

    /// How many entries are removed.
    #[must_use]
    pub fn removed_count(&self) -> usize {
        self.list(Place::Removed).len
    }

    /// How many entries the place holds.
    #[must_use]
    pub fn count(&self, place: Place) -> usize {
        self.list(place).len
    }

    /// The pending entries, front first.
    pub fn pending(&self) -> impl Iterator<Item = QueueEntry> + '_ {
        self.entries_in(Place::Pending)
    }

    /// The in-flight entries in the order they were taken, oldest first.
    pub fn in_flight(&self) -> impl Iterator<Item = QueueEntry> + '_ {
        self.entries_in(Place::InFlight)
    }

    /// The failed entries in order of first arrival in failed (failing
    /// again while failed keeps the position).
    pub fn failed(&self) -> impl Iterator<Item = QueueEntry> + '_ {
        self.entries_in(Place::Failed)
    }

    /// The completed entries in completion order.
    pub fn completed(&self) -> impl Iterator<Item = QueueEntry> + '_ {
        self.entries_in(Place::Completed)
    }

    /// The removed entries in the order they were removed.
    pub fn removed(&self) -> impl Iterator<Item = QueueEntry> + '_ {
        self.entries_in(Place::Removed)
    }

    /// The ids of one place, in queue order, without reading an entry:
    /// a page of a long queue reads only its own entries.
    pub fn ids(&self, place: Place) -> impl Iterator<Item = &str> + '_ {
        self.ids_in(place)
    }

    /// The entries of one place, in queue order.
    pub fn entries(&self, place: Place) -> impl Iterator<Item = QueueEntry> + '_ {
        self.entries_in(place)
    }
}

/// A place's bit in [`QueueState`]'s record of changes.
fn place_bit(place: Place) -> u8 {
    1 << (place as u8)
}

/// Equal when the five queues hold equal entries in equal order; the slots
/// and order keys behind them do not matter.
impl PartialEq for QueueState {
    fn eq(&self, other: &Self) -> bool {
        Place::ALL
            .into_iter()
            .all(|place| self.entries_json(place).eq(other.entries_json(place)))
    }
}
