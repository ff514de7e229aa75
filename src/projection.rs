//! The queue views as a pure function of the events.
//!
//! [`QueueState`] holds the four queues (pending, in flight, failed,
//! completed) and the indexes the manager's queries need. It changes only
//! through [`QueueState::apply`], one [`Event`] at a time, so replaying a
//! journal rebuilds exactly the state the live queue had.
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
//! `(retry_count, retry_after)`, completed ones by `completed_at`, so the
//! retry and clean-up queries cost `O(log n + k)`. Queries hand out parsed
//! [`QueueEntry`] values.
//!
//! The id table's hasher is seeded per process; the seed changes where ids
//! sit in memory, never a result.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::event::{EntryFields, Event, QueueEntry};
use crate::movie::Movie;

/// The largest state (in entries) that `apply` checks completely against its
/// indexes in debug builds; above it only the entries an event touches are
/// checked, so debug-build replay of a large journal stays linear.
const FULL_CHECK_ENTRIES_MAX: usize = 1_024;

/// Which of the four queues an entry is in.
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
}

impl Place {
    /// The four places, in the order the queues are listed.
    pub const ALL: [Place; 4] = [Place::Pending, Place::InFlight, Place::Failed, Place::Completed];
}

impl fmt::Display for Place {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Place::Pending => "pending",
            Place::InFlight => "in flight",
            Place::Failed => "failed",
            Place::Completed => "completed",
        })
    }
}

/// Why an event cannot apply to this state (a bug or a corrupt journal);
/// carries a human message naming the event kind and the id.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ApplyError(pub String);

/// A Unix time ordered by [`f64::total_cmp`], so it can key a `BTreeSet`.
#[derive(Debug, Clone, Copy)]
struct Time(f64);

impl PartialEq for Time {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Time {}

impl PartialOrd for Time {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Time {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A slot of the entry slab.
type Index = u32;

/// "No entry" in a list link.
const NIL: Index = Index::MAX;

/// What opens an entry's compact JSON when the id follows verbatim.
const ID_PREFIX: &str = "{\"id\":\"";

/// A place's key in a time index: the time, then the order key (ties in
/// queue order), then the slot.
type TimeKey = (Time, i64, Index);

/// One entry as the state keeps it: its compact JSON, where it is, the
/// numbers its indexes need, and its links in its place's list.
#[derive(Debug, Clone)]
struct Node {
    /// The compact JSON, preceded by the id when the JSON does not hold
    /// it verbatim right after [`ID_PREFIX`] (an id with escaped characters).
    text: Box<str>,
    /// The id's length in bytes.
    id_len: u32,
    /// Whether the id is inside the JSON (else it precedes it).
    id_inline: bool,
    place: Place,
    retry_count: u32,
    /// `retry_after` in failed, `completed_at` in completed (a missing one
    /// counts as 0.0); unused elsewhere.
    index_time: f64,
    /// The order key in its place: ascending from front to back.
    key: i64,
    prev: Index,
    next: Index,
}

impl Node {
    /// An entry to be placed in `place`; links and key are set by `attach`.
    /// The JSON is written into `scratch` first, so the entry's text is one
    /// allocation of exactly its size (no growing and shrinking buffers
    /// that leave holes in the heap).
    fn new(entry: EntryFields<'_>, place: Place, scratch: &mut Vec<u8>) -> Self {
        let index_time = match place {
            Place::Failed => entry.retry_after.unwrap_or(0.0),
            Place::Completed => entry.completed_at.unwrap_or(0.0),
            Place::Pending | Place::InFlight => 0.0,
        };
        let id = entry.movie.id();
        scratch.clear();
        let serialized = serde_json::to_writer(&mut *scratch, &entry);
        debug_assert!(serialized.is_ok(), "an entry always serializes");
        let json = std::str::from_utf8(scratch).unwrap_or_default();
        let id_inline = json
            .strip_prefix(ID_PREFIX)
            .and_then(|rest| rest.strip_prefix(id))
            .is_some_and(|rest| rest.starts_with('"'));
        let text: Box<str> = if id_inline {
            Box::from(json)
        } else {
            format!("{id}{json}").into_boxed_str()
        };
        Node {
            text,
            id_len: u32::try_from(id.len()).unwrap_or(u32::MAX),
            id_inline,
            place,
            retry_count: entry.retry_count,
            index_time,
            key: 0,
            prev: NIL,
            next: NIL,
        }
    }

    fn id(&self) -> &str {
        let start = if self.id_inline { ID_PREFIX.len() } else { 0 };
        self.text.get(start..start + self.id_len as usize).unwrap_or_default()
    }

    fn json(&self) -> &str {
        if self.id_inline {
            &self.text
        } else {
            self.text.get(self.id_len as usize..).unwrap_or_default()
        }
    }

    /// The entry, parsed back. The JSON was written by [`Node::new`], so
    /// it parses; `None` would be a bug, never a consequence of input.
    fn entry(&self) -> Option<QueueEntry> {
        let entry = serde_json::from_str(self.json()).ok();
        debug_assert!(entry.is_some(), "stored JSON does not parse: {}", self.json());
        entry
    }

    fn time_key(&self, index: Index) -> TimeKey {
        (Time(self.index_time), self.key, index)
    }
}

/// An id table entry: the entry's slot and the upper half of its id's
/// hash, so the table grows (rehashes) without reading any id, and a probe
/// reads an entry's id only when the hashes agree.
#[derive(Debug, Clone, Copy)]
struct IdSlot {
    index: Index,
    hash: u32,
}

impl IdSlot {
    /// Is this the slot of `id` (whose hash is `hash`)?
    fn holds(self, slab: &[Option<Node>], hash: u32, id: &str) -> bool {
        self.hash == hash && id_in(slab, self.index) == id
    }
}

/// The table's 64-bit hash of a stored 32-bit id hash: both its halves,
/// so the bucket (low bits) and the tag (top bits) both vary with it.
fn table_hash(hash: u32) -> u64 {
    (u64::from(hash) << 32) | u64::from(hash)
}

/// One place's entries as a doubly linked list through the slab.
#[derive(Debug, Clone)]
struct List {
    head: Index,
    tail: Index,
    len: usize,
    /// The key the last front insert took (the next one takes one less).
    front_key: i64,
    /// The key the last back insert took (the next one takes one more).
    back_key: i64,
}

impl Default for List {
    fn default() -> Self {
        List {
            head: NIL,
            tail: NIL,
            len: 0,
            front_key: 1,
            back_key: 0,
        }
    }
}

/// Which end of a queue an entry joins.
#[derive(Debug, Clone, Copy)]
enum End {
    Front,
    Back,
}

/// The four queues and their indexes, as a pure function of the events.
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
    /// Pending, in flight, failed, completed (as [`Place::ALL`]).
    lists: [List; 4],
    /// Failed entries by `retry_count`, then `(retry_after, order key)`.
    /// Never holds an empty set, so it doubles as the `retry_count`
    /// histogram of the failed queue.
    retry_index: BTreeMap<u32, BTreeSet<TimeKey>>,
    /// Completed entries by `(completed_at, order key)`.
    completed_index: BTreeSet<TimeKey>,
    /// Where entries are serialized before they are stored.
    scratch: Vec<u8>,
}

impl QueueState {
    /// An empty state: the projection of no events.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes room for `additional` more entries without growing (replay
    /// and snapshot loading know roughly how many are coming).
    pub fn reserve(&mut self, additional: usize) {
        self.slab.reserve(additional.saturating_sub(self.free.len()));
        self.by_id.reserve(additional, |slot: &IdSlot| table_hash(slot.hash));
    }

    /// Applies one event that happened at time `ts` (Unix seconds).
    ///
    /// # Errors
    /// [`ApplyError`] when the event cannot apply to this state (see
    /// [`QueueState::check`]); the state is then unchanged.
    pub fn apply(&mut self, ts: f64, event: &Event) -> Result<(), ApplyError> {
        self.check(event)?;
        self.apply_checked(ts, event);
        Ok(())
    }

    /// Applies an event that [`QueueState::check`] has just accepted on
    /// this very state (the manager checks before journaling, under the
    /// same lock), without checking it a second time.
    pub(crate) fn apply_checked(&mut self, ts: f64, event: &Event) {
        debug_assert!(
            self.check(event).is_ok(),
            "apply_checked of an unchecked event {event:?}"
        );
        self.mutate(ts, event);
        debug_assert!(self.agrees_after(event), "projection indexes disagree after {event:?}");
    }

    /// Would [`QueueState::apply`] accept this event? The same checks, no
    /// change. The manager calls it before journaling an event.
    ///
    /// # Errors
    /// [`ApplyError`] naming the event kind, the id and what is wrong, such
    /// as `taken: "7" is not at the front of pending (it is failed)`.
    pub fn check(&self, event: &Event) -> Result<(), ApplyError> {
        let kind = event.kind();
        match event {
            Event::Added { movie } => self.expect_unknown(kind, movie.id()),
            Event::Taken { id } => self.expect_front(kind, id),
            Event::Failed { movie, retry_after, .. } => {
                expect_finite(kind, "retry_after", *retry_after)?;
                self.expect_not_completed(kind, movie.id())
            }
            Event::MovedToPending { id } | Event::Reset { id } => self.expect_in(kind, id, Place::Failed),
            Event::Completed { movie } => self.expect_not_completed(kind, movie.id()),
            Event::CleanedUp { cutoff, ids } => self.expect_cleanable(kind, *cutoff, ids),
            Event::Requeued { ids } => {
                expect_distinct(kind, ids)?;
                ids.iter().try_for_each(|id| self.expect_in(kind, id, Place::InFlight))
            }
            Event::Imported { .. } => Ok(()),
        }
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

    /// The entry the next `Taken` must name.
    #[must_use]
    pub fn front_pending(&self) -> Option<QueueEntry> {
        self.node(self.list(Place::Pending).head)?.entry()
    }

    /// The id at the front of pending.
    #[must_use]
    pub fn front_pending_id(&self) -> Option<&str> {
        self.node(self.list(Place::Pending).head).map(Node::id)
    }

    /// The ids of one place, in queue order.
    pub fn ids(&self, place: Place) -> impl Iterator<Item = &str> {
        self.nodes(place).map(|(_, node)| node.id())
    }

    /// The entries of one place, in queue order, as the compact JSON of
    /// each (the documented files' shape, without re-serializing).
    pub fn entries_json(&self, place: Place) -> impl Iterator<Item = &str> {
        self.nodes(place).map(|(_, node)| node.json())
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

    /// Failed entries due for a retry: `retry_after <= now` (missing counts
    /// as 0.0) and `retry_count < max_retries`, ordered by `retry_after`,
    /// ties in failed order. Costs `O(r log n + k log k)` for `r` distinct
    /// retry counts below `max_retries` and `k` entries returned; permanent
    /// failures are never visited.
    #[must_use]
    pub fn ready_for_retry(&self, now: f64, max_retries: u32) -> Vec<QueueEntry> {
        let mut due: Vec<TimeKey> = self
            .retry_index
            .range(..max_retries)
            .flat_map(|(_, by_time)| by_time.range(..=(Time(now), i64::MAX, NIL)))
            .copied()
            .collect();
        due.sort_unstable();
        due.into_iter()
            .filter_map(|(_, _, index)| self.node(index)?.entry())
            .collect()
    }

    /// Failed entries with `retry_count >= max_retries`, in failed order.
    #[must_use]
    pub fn permanent_failures(&self, max_retries: u32) -> Vec<QueueEntry> {
        let mut keys: Vec<(i64, Index)> = self
            .retry_index
            .range(max_retries..)
            .flat_map(|(_, by_time)| by_time.iter().map(|&(_, key, index)| (key, index)))
            .collect();
        keys.sort_unstable();
        keys.into_iter()
            .filter_map(|(_, index)| self.node(index)?.entry())
            .collect()
    }

    /// How many failed entries have `retry_count >= max_retries`, without
    /// visiting them: `O(log n)` plus one step per distinct retry count.
    #[must_use]
    pub fn permanent_failure_count(&self, max_retries: u32) -> usize {
        self.retry_index
            .range(max_retries..)
            .map(|(_, by_time)| by_time.len())
            .sum()
    }

    /// Ids of completed entries with `completed_at < cutoff` (missing counts
    /// as 0.0), in completed order: exactly the ids a `CleanedUp` event with
    /// this cutoff may name.
    #[must_use]
    pub fn completed_before(&self, cutoff: f64) -> Vec<String> {
        let mut keys: Vec<(i64, Index)> = self
            .completed_index
            .range(..(Time(cutoff), i64::MIN, 0))
            .map(|&(_, key, index)| (key, index))
            .collect();
        keys.sort_unstable();
        keys.into_iter()
            .filter_map(|(_, index)| self.node(index).map(|node| node.id().to_owned()))
            .collect()
    }

    /// Does every index agree with the queues? A full `O(n)` consistency
    /// check, asserted by `apply` in debug builds.
    #[must_use]
    pub fn indexes_agree(&self) -> bool {
        self.sizes_agree()
            && Place::ALL.into_iter().all(|place| {
                let mut previous: Option<(Index, i64)> = None;
                self.nodes(place).all(|(index, node)| {
                    let in_order = previous.is_none_or(|(before, key)| node.prev == before && key < node.key);
                    previous = Some((index, node.key));
                    node.place == place && in_order && self.node_agrees(index, node)
                })
            })
    }
}

/// The checks behind [`QueueState::check`].
impl QueueState {
    /// Says where `id` is, for an error message.
    fn whereabouts(&self, id: &str) -> String {
        match self.place(id) {
            Some(place) => format!("it is {place}"),
            None => "it is in no queue".to_owned(),
        }
    }

    fn expect_unknown(&self, kind: &str, id: &str) -> Result<(), ApplyError> {
        match self.place(id) {
            None => Ok(()),
            Some(_) => Err(ApplyError(format!(
                "{kind}: {id:?} is already known ({})",
                self.whereabouts(id)
            ))),
        }
    }

    fn expect_front(&self, kind: &str, id: &str) -> Result<(), ApplyError> {
        let front = self.front_pending_id();
        if front == Some(id) {
            return Ok(());
        }
        let detail = match (self.place(id), front) {
            (Some(Place::Pending), Some(front)) => format!("the front is {front:?}"),
            _ => self.whereabouts(id),
        };
        Err(ApplyError(format!(
            "{kind}: {id:?} is not at the front of pending ({detail})"
        )))
    }

    fn expect_in(&self, kind: &str, id: &str, wanted: Place) -> Result<(), ApplyError> {
        if self.place(id) == Some(wanted) {
            Ok(())
        } else {
            Err(ApplyError(format!(
                "{kind}: {id:?} is not {wanted} ({})",
                self.whereabouts(id)
            )))
        }
    }

    fn expect_not_completed(&self, kind: &str, id: &str) -> Result<(), ApplyError> {
        if self.place(id) == Some(Place::Completed) {
            Err(ApplyError(format!("{kind}: {id:?} is already completed")))
        } else {
            Ok(())
        }
    }

    fn expect_cleanable(&self, kind: &str, cutoff: f64, ids: &[String]) -> Result<(), ApplyError> {
        expect_finite(kind, "cutoff", cutoff)?;
        expect_distinct(kind, ids)?;
        for id in ids {
            self.expect_in(kind, id, Place::Completed)?;
            let completed_at = self.find(id).map_or(Time(0.0), |(_, node)| Time(node.index_time));
            if completed_at >= Time(cutoff) {
                return Err(ApplyError(format!(
                    "{kind}: {id:?} was completed at {}, not before the cutoff {cutoff}",
                    completed_at.0
                )));
            }
        }
        Ok(())
    }
}

/// Refuses a time that cannot be journaled (JSON has no NaN or infinity).
fn expect_finite(kind: &str, name: &str, time: f64) -> Result<(), ApplyError> {
    if time.is_finite() {
        Ok(())
    } else {
        Err(ApplyError(format!("{kind}: {name} {time} is not a finite time")))
    }
}

fn expect_distinct(kind: &str, ids: &[String]) -> Result<(), ApplyError> {
    let mut seen = HashSet::with_capacity(ids.len());
    match ids.iter().find(|id| !seen.insert(id.as_str())) {
        Some(id) => Err(ApplyError(format!("{kind}: {id:?} is listed twice"))),
        None => Ok(()),
    }
}

/// The changes behind [`QueueState::apply`], run only after `check` passed.
impl QueueState {
    fn mutate(&mut self, ts: f64, event: &Event) {
        match event {
            Event::Added { movie } => {
                let node = Node::new(EntryFields::fresh(movie), Place::Pending, &mut self.scratch);
                let index = self.insert(node);
                self.attach(index, End::Back);
            }
            // `check` accepted it, so it names the front of pending.
            Event::Taken { .. } => self.move_to(self.list(Place::Pending).head, Place::InFlight, End::Back),
            Event::Failed {
                movie,
                error,
                retry_after,
            } => self.fail(ts, movie, error, *retry_after),
            Event::MovedToPending { id } => self.relocate(id, Place::Pending, End::Back),
            Event::Reset { id } => {
                if let Some(index) = self.find(id).map(|(index, _)| index) {
                    self.detach(index);
                    if let Some(entry) = self.node(index).and_then(Node::entry) {
                        let node = Node::new(EntryFields::fresh(&entry.movie), Place::Pending, &mut self.scratch);
                        self.replace(index, node);
                    }
                    self.attach(index, End::Back);
                }
            }
            Event::Completed { movie } => {
                let entry = EntryFields {
                    completed_at: Some(ts),
                    ..EntryFields::fresh(movie)
                };
                let node = Node::new(entry, Place::Completed, &mut self.scratch);
                let index = match self.find(movie.id()).map(|(index, _)| index) {
                    Some(index) => {
                        self.detach(index);
                        self.replace(index, node);
                        index
                    }
                    None => self.insert(node),
                };
                self.attach(index, End::Back);
            }
            Event::CleanedUp { ids, .. } => {
                for id in ids {
                    self.remove(id);
                }
            }
            Event::Requeued { ids } => {
                // Pushing to the front in reverse leaves ids[0] first.
                for id in ids.iter().rev() {
                    self.relocate(id, Place::Pending, End::Front);
                }
            }
            Event::Imported {
                pending,
                failed,
                completed,
            } => {
                self.import(Place::Pending, pending);
                self.import(Place::Failed, failed);
                self.import(Place::Completed, completed);
            }
        }
    }

    /// The `Failed` event: a failure from anywhere but completed. A failed
    /// entry is updated where it stands; any other joins the back of failed.
    fn fail(&mut self, ts: f64, movie: &Movie, error: &str, retry_after: f64) {
        let old = self
            .find(movie.id())
            .map(|(index, node)| (index, node.place, node.retry_count));
        let first_failed_at = old
            .and_then(|(index, _, _)| self.node(index)?.entry())
            .and_then(|entry| entry.failed_at);
        let entry = EntryFields {
            movie,
            retry_count: old.map_or(0, |(_, _, count)| count).saturating_add(1),
            last_error: Some(error),
            retry_after: Some(retry_after),
            failed_at: first_failed_at.or(Some(ts)),
            completed_at: None,
        };
        let node = Node::new(entry, Place::Failed, &mut self.scratch);
        match old {
            Some((index, Place::Failed, _)) => {
                // In place: same key, same neighbours, new index entry.
                self.unindex(index);
                let slot = self.node_mut(index);
                let (key, prev, next) = (slot.key, slot.prev, slot.next);
                *slot = Node {
                    key,
                    prev,
                    next,
                    ..node
                };
                self.index(index);
            }
            Some((index, _, _)) => {
                self.detach(index);
                self.replace(index, node);
                self.attach(index, End::Back);
            }
            None => {
                let index = self.insert(node);
                self.attach(index, End::Back);
            }
        }
    }

    /// Appends each entry whose id is not known yet, unchanged.
    fn import(&mut self, place: Place, entries: &[QueueEntry]) {
        for entry in entries {
            if self.find(entry.id()).is_none() {
                let node = Node::new(entry.fields(), place, &mut self.scratch);
                let index = self.insert(node);
                self.attach(index, End::Back);
            }
        }
    }

    /// Appends a known-new entry (the snapshot loader's path).
    pub(crate) fn push_new(&mut self, place: Place, entry: &QueueEntry) -> Result<(), ApplyError> {
        if self.find(entry.id()).is_some() {
            return Err(ApplyError(format!("{:?} is already listed", entry.id())));
        }
        let node = Node::new(entry.fields(), place, &mut self.scratch);
        let index = self.insert(node);
        self.attach(index, End::Back);
        Ok(())
    }

    /// Moves `id` unchanged to one end of pending or in flight (places
    /// without a time index, so the entry needs no new index time).
    fn relocate(&mut self, id: &str, place: Place, end: End) {
        debug_assert!(matches!(place, Place::Pending | Place::InFlight));
        if let Some((index, _)) = self.find(id) {
            self.move_to(index, place, end);
        }
    }

    /// Moves a live slot unchanged to one end of pending or in flight.
    fn move_to(&mut self, index: Index, place: Place, end: End) {
        debug_assert!(matches!(place, Place::Pending | Place::InFlight));
        if self.node(index).is_some() {
            self.detach(index);
            self.node_mut(index).place = place;
            self.attach(index, end);
        }
    }

    /// Puts a detached entry in a free slot of the slab and the id table.
    fn insert(&mut self, node: Node) -> Index {
        let hash = self.id_hash(node.id());
        let index = if let Some(index) = self.free.pop() {
            self.slab[index as usize] = Some(node);
            index
        } else {
            // 2^32 - 1 entries would take ~1 TB of memory first.
            let index = Index::try_from(self.slab.len())
                .ok()
                .filter(|&index| index != NIL)
                .expect("a state holds fewer than 2^32 - 1 entries");
            self.slab.push(Some(node));
            index
        };
        self.by_id
            .insert_unique(table_hash(hash), IdSlot { index, hash }, |slot: &IdSlot| {
                table_hash(slot.hash)
            });
        index
    }

    /// Replaces a detached entry's content (same id), keeping its slot.
    fn replace(&mut self, index: Index, node: Node) {
        debug_assert_eq!(self.node_mut(index).id(), node.id());
        *self.node_mut(index) = node;
    }

    /// Takes `id` out of its place, its index and the id table.
    fn remove(&mut self, id: &str) {
        let hash = self.id_hash(id);
        let slab = &self.slab;
        if let Ok(found) = self
            .by_id
            .find_entry(table_hash(hash), |slot| slot.holds(slab, hash, id))
        {
            let (IdSlot { index, .. }, _) = found.remove();
            self.detach(index);
            self.slab[index as usize] = None;
            self.free.push(index);
        }
    }

    /// Links a slot at one end of its node's place, with a fresh order key,
    /// and into that place's time index.
    fn attach(&mut self, index: Index, end: End) {
        let place = self.node_mut(index).place;
        let list = &mut self.lists[place as usize];
        let (prev, next, key) = match end {
            End::Front => {
                list.front_key -= 1;
                (NIL, list.head, list.front_key)
            }
            End::Back => {
                list.back_key += 1;
                (list.tail, NIL, list.back_key)
            }
        };
        list.len += 1;
        match end {
            End::Front => list.head = index,
            End::Back => list.tail = index,
        }
        if list.len == 1 {
            list.head = index;
            list.tail = index;
        }
        let node = self.node_mut(index);
        node.prev = prev;
        node.next = next;
        node.key = key;
        if prev != NIL {
            self.node_mut(prev).next = index;
        }
        if next != NIL {
            self.node_mut(next).prev = index;
        }
        self.index(index);
    }

    /// Unlinks a slot from its place's list and time index (it stays in
    /// the slab and the id table).
    fn detach(&mut self, index: Index) {
        self.unindex(index);
        let node = self.node_mut(index);
        let (place, prev, next) = (node.place, node.prev, node.next);
        node.prev = NIL;
        node.next = NIL;
        if prev == NIL {
            self.lists[place as usize].head = next;
        } else {
            self.node_mut(prev).next = next;
        }
        if next == NIL {
            self.lists[place as usize].tail = prev;
        } else {
            self.node_mut(next).prev = prev;
        }
        self.lists[place as usize].len -= 1;
    }

    /// Adds a slot to its place's time index (failed and completed only).
    fn index(&mut self, index: Index) {
        let node = self.node_mut(index);
        let (place, count, time_key) = (node.place, node.retry_count, node.time_key(index));
        match place {
            Place::Failed => {
                self.retry_index.entry(count).or_default().insert(time_key);
            }
            Place::Completed => {
                self.completed_index.insert(time_key);
            }
            Place::Pending | Place::InFlight => {}
        }
    }

    /// Removes a slot from its place's time index.
    fn unindex(&mut self, index: Index) {
        let node = self.node_mut(index);
        let (place, count, time_key) = (node.place, node.retry_count, node.time_key(index));
        match place {
            Place::Failed => {
                if let Some(by_time) = self.retry_index.get_mut(&count) {
                    by_time.remove(&time_key);
                    if by_time.is_empty() {
                        self.retry_index.remove(&count);
                    }
                }
            }
            Place::Completed => {
                self.completed_index.remove(&time_key);
            }
            Place::Pending | Place::InFlight => {}
        }
    }
}

/// The id of the entry in `slot` of `slab`. Every slot the id table and
/// the lists hold is live; a free one would read as the empty id, which no
/// entry has.
fn id_in(slab: &[Option<Node>], index: Index) -> &str {
    slab.get(index as usize).and_then(Option::as_ref).map_or("", Node::id)
}

/// Lookups shared by the queries and the consistency checks.
impl QueueState {
    fn list(&self, place: Place) -> &List {
        &self.lists[place as usize]
    }

    fn node(&self, index: Index) -> Option<&Node> {
        self.slab.get(index as usize)?.as_ref()
    }

    /// The live node at `index`; the callers hold an index they just found.
    fn node_mut(&mut self, index: Index) -> &mut Node {
        match self.slab.get_mut(index as usize) {
            Some(Some(node)) => node,
            _ => unreachable!("slot {index} is not live"),
        }
    }

    /// The upper half of `id`'s hash (see [`IdSlot`]).
    fn id_hash(&self, id: &str) -> u32 {
        u32::try_from(self.hasher.hash_one(id) >> 32).unwrap_or_default()
    }

    /// The slot and node of `id`.
    fn find(&self, id: &str) -> Option<(Index, &Node)> {
        let hash = self.id_hash(id);
        let index = self
            .by_id
            .find(table_hash(hash), |slot| slot.holds(&self.slab, hash, id))?
            .index;
        Some((index, self.node(index)?))
    }

    /// The slots and nodes of one place, in queue order.
    fn nodes(&self, place: Place) -> impl Iterator<Item = (Index, &Node)> {
        let mut next = self.list(place).head;
        std::iter::from_fn(move || {
            let index = next;
            let node = self.node(index)?;
            next = node.next;
            Some((index, node))
        })
    }

    fn entries_in(&self, place: Place) -> impl Iterator<Item = QueueEntry> + '_ {
        self.nodes(place).filter_map(|(_, node)| node.entry())
    }

    /// How many entries the state holds.
    fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Do the lists, the slab, the id table and the indexes hold the same
    /// number of entries (and the retry index no empty set)?
    fn sizes_agree(&self) -> bool {
        let listed: usize = self.lists.iter().map(|list| list.len).sum();
        let live = self.slab.iter().filter(|slot| slot.is_some()).count();
        let retry_indexed: usize = self.retry_index.values().map(BTreeSet::len).sum();
        listed == self.by_id.len()
            && live == listed
            && live + self.free.len() == self.slab.len()
            && retry_indexed == self.failed_count()
            && self.retry_index.values().all(|by_time| !by_time.is_empty())
            && self.completed_index.len() == self.completed_count()
    }

    /// Is this node under its id, linked to its neighbours and in its
    /// place's index?
    fn node_agrees(&self, index: Index, node: &Node) -> bool {
        let time_key = node.time_key(index);
        let indexed = match node.place {
            Place::Failed => self
                .retry_index
                .get(&node.retry_count)
                .is_some_and(|by_time| by_time.contains(&time_key)),
            Place::Completed => self.completed_index.contains(&time_key),
            Place::Pending | Place::InFlight => true,
        };
        let list = self.list(node.place);
        let linked_before = match self.node(node.prev) {
            Some(prev) => prev.next == index && prev.place == node.place && prev.key < node.key,
            None => node.prev == NIL && list.head == index,
        };
        let linked_after = match self.node(node.next) {
            Some(next) => next.prev == index && next.place == node.place && node.key < next.key,
            None => node.next == NIL && list.tail == index,
        };
        indexed && linked_before && linked_after && self.find(node.id()).is_some_and(|(found, _)| found == index)
    }

    /// The debug-build check after an event: everything while the state is
    /// small, the sizes and the entries the event touched when it is large.
    fn agrees_after(&self, event: &Event) -> bool {
        if self.len() <= FULL_CHECK_ENTRIES_MAX {
            return self.indexes_agree();
        }
        self.sizes_agree()
            && event
                .ids()
                .all(|id| self.find(id).is_none_or(|(index, node)| self.node_agrees(index, node)))
    }
}

/// Equal when the four queues hold equal entries in equal order; the slots
/// and order keys behind them do not matter.
impl PartialEq for QueueState {
    fn eq(&self, other: &Self) -> bool {
        Place::ALL
            .into_iter()
            .all(|place| self.entries_json(place).eq(other.entries_json(place)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn movie(id: &str) -> Movie {
        Movie::new(id, format!("Movie {id}"), 2000)
    }

    fn added(id: &str) -> Event {
        Event::Added { movie: movie(id) }
    }

    fn taken(id: &str) -> Event {
        Event::Taken { id: id.into() }
    }

    fn failed(id: &str, retry_after: f64) -> Event {
        Event::Failed {
            movie: movie(id),
            error: format!("error for {id}"),
            retry_after,
        }
    }

    fn completed(id: &str) -> Event {
        Event::Completed { movie: movie(id) }
    }

    fn strings(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|&id| id.to_owned()).collect()
    }

    /// Applies every event at times 1.0, 2.0, ..., panicking on a refusal.
    fn state_of(events: &[Event]) -> QueueState {
        let mut state = QueueState::new();
        for (time, event) in (1..).map(f64::from).zip(events) {
            state.apply(time, event).expect("event applies");
        }
        state
    }

    fn ids(entries: impl IntoIterator<Item = QueueEntry>) -> Vec<String> {
        entries.into_iter().map(|entry| entry.id().to_owned()).collect()
    }

    /// The memory budget of docs/PERFORMANCE.md counts 56 bytes per slot
    /// and 8 per id-table bucket.
    #[test]
    fn a_slot_and_an_id_table_entry_stay_small() {
        assert!(
            std::mem::size_of::<Option<Node>>() <= 56,
            "{}",
            std::mem::size_of::<Option<Node>>()
        );
        assert_eq!(std::mem::size_of::<IdSlot>(), 8);
    }

    #[test]
    fn ids_that_json_escapes_are_kept_beside_the_entry() {
        let odd = ["a\"b", "back\\slash", "tab\there", "\u{e9}t\u{e9}", "a"];
        let state = state_of(&odd.map(added));
        assert_eq!(state.ids(Place::Pending).collect::<Vec<_>>(), odd);
        for id in odd {
            let (place, entry) = state.get(id).expect("known");
            assert_eq!((place, entry.id()), (Place::Pending, id));
        }
        let parsed: Vec<QueueEntry> = state
            .entries_json(Place::Pending)
            .map(|json| serde_json::from_str(json).expect("entry JSON"))
            .collect();
        assert_eq!(ids(parsed), odd);
        let beside: Vec<bool> = state.nodes(Place::Pending).map(|(_, node)| !node.id_inline).collect();
        assert_eq!(beside, [true, true, true, false, false]);
    }

    #[test]
    fn added_joins_the_back_of_pending_once() {
        let mut state = state_of(&[added("1"), added("2")]);
        assert_eq!(ids(state.pending()), ["1", "2"]);
        assert_eq!(state.get("2"), Some((Place::Pending, QueueEntry::new(movie("2")))));
        let error = state.apply(3.0, &added("1")).expect_err("duplicate");
        assert_eq!(error.0, r#"added: "1" is already known (it is pending)"#);
    }

    #[test]
    fn taken_needs_the_front_of_pending() {
        let mut state = state_of(&[added("1"), added("2"), added("7"), failed("7", 0.0)]);
        let error = state.check(&taken("2")).expect_err("not the front");
        assert_eq!(
            error.0,
            r#"taken: "2" is not at the front of pending (the front is "1")"#
        );
        let error = state.check(&taken("7")).expect_err("failed");
        assert_eq!(error.0, r#"taken: "7" is not at the front of pending (it is failed)"#);
        state.apply(5.0, &taken("1")).expect("front");
        state.apply(6.0, &taken("2")).expect("front");
        assert_eq!(ids(state.in_flight()), ["1", "2"]);
        assert_eq!(state.front_pending(), None);
        assert_eq!(state.in_flight().next(), Some(QueueEntry::new(movie("1"))));
    }

    #[test]
    fn failures_count_up_across_moves_and_keep_the_first_failure_time() {
        let mut state = state_of(&[added("1"), taken("1")]);
        for (round, time) in (1..=3).zip([10.0, 20.0, 30.0]) {
            let renamed = Movie::new("1", format!("Title {round}"), 1999);
            let event = Event::Failed {
                movie: renamed.clone(),
                error: format!("error {round}"),
                retry_after: time + 5.0,
            };
            state.apply(time, &event).expect("fails");
            let (place, entry) = state.get("1").expect("known");
            assert_eq!(place, Place::Failed);
            assert_eq!(entry.retry_count, round);
            assert_eq!(entry.movie, renamed);
            assert_eq!(entry.last_error.as_deref(), Some(format!("error {round}").as_str()));
            assert_eq!(entry.retry_after, Some(time + 5.0));
            assert_eq!(entry.failed_at, Some(10.0));
            state
                .apply(time + 1.0, &Event::MovedToPending { id: "1".into() })
                .expect("moves");
            let (place, entry) = state.get("1").expect("known");
            assert_eq!(place, Place::Pending);
            assert_eq!((entry.retry_count, entry.failed_at), (round, Some(10.0)));
            assert_eq!(entry.retry_after, Some(time + 5.0));
        }
    }

    #[test]
    fn failing_again_while_failed_keeps_the_position() {
        let mut state = state_of(&[added("1"), added("2"), added("3"), failed("1", 1.0), failed("2", 1.0)]);
        state.apply(6.0, &failed("3", 1.0)).expect("fails");
        state.apply(7.0, &failed("1", 9.0)).expect("fails again");
        assert_eq!(ids(state.failed()), ["1", "2", "3"]);
        let (_, entry) = state.get("1").expect("known");
        assert_eq!(
            (entry.retry_count, entry.retry_after, entry.failed_at),
            (2, Some(9.0), Some(4.0))
        );
        // An unknown id fails for the first time: count 1, at the back.
        state.apply(8.0, &failed("new", 1.0)).expect("fails");
        assert_eq!(ids(state.failed()), ["1", "2", "3", "new"]);
        assert_eq!(state.get("new").map(|(_, entry)| entry.retry_count), Some(1));
    }

    #[test]
    fn reset_clears_the_failure_and_moved_to_pending_needs_failed() {
        let mut state = state_of(&[added("1"), added("2"), failed("1", 50.0), failed("1", 60.0)]);
        let error = state.check(&Event::Reset { id: "2".into() }).expect_err("pending");
        assert_eq!(error.0, r#"reset: "2" is not failed (it is pending)"#);
        state.apply(5.0, &Event::Reset { id: "1".into() }).expect("resets");
        assert_eq!(ids(state.pending()), ["2", "1"]);
        assert_eq!(state.get("1"), Some((Place::Pending, QueueEntry::new(movie("1")))));
        let error = state
            .check(&Event::MovedToPending { id: "9".into() })
            .expect_err("unknown");
        assert_eq!(error.0, r#"moved_to_pending: "9" is not failed (it is in no queue)"#);
    }

    #[test]
    fn completed_comes_from_anywhere_once() {
        let mut state = state_of(&[added("1"), added("2"), added("3"), taken("1"), failed("2", 0.0)]);
        for (time, id) in [(10.0, "2"), (11.0, "1"), (12.0, "3"), (13.0, "4")] {
            state.apply(time, &completed(id)).expect("completes");
        }
        assert_eq!(ids(state.completed()), ["2", "1", "3", "4"]);
        assert_eq!(
            state.pending_count() + state.in_flight_count() + state.failed_count(),
            0
        );
        let entry = QueueEntry {
            completed_at: Some(10.0),
            ..QueueEntry::new(movie("2"))
        };
        assert_eq!(state.get("2"), Some((Place::Completed, entry)));
        let error = state.check(&completed("2")).expect_err("twice");
        assert_eq!(error.0, r#"completed: "2" is already completed"#);
        let error = state.check(&failed("2", 0.0)).expect_err("completed");
        assert_eq!(error.0, r#"failed: "2" is already completed"#);
        assert!(state.check(&added("2")).is_err());
    }

    #[test]
    fn cleaned_up_removes_only_completed_entries_before_the_cutoff() {
        let mut state = state_of(&[added("p"), completed("a"), completed("b"), completed("c")]);
        assert_eq!(state.completed_before(4.0), strings(&["a", "b"]));
        assert_eq!(state.completed_before(2.0), Vec::<String>::new());
        let late = Event::CleanedUp {
            cutoff: 4.0,
            ids: strings(&["a", "c"]),
        };
        let error = state.check(&late).expect_err("too late");
        assert_eq!(
            error.0,
            r#"cleaned_up: "c" was completed at 4, not before the cutoff 4"#
        );
        let twice = Event::CleanedUp {
            cutoff: 4.0,
            ids: strings(&["a", "a"]),
        };
        assert_eq!(
            state.check(&twice).expect_err("twice").0,
            r#"cleaned_up: "a" is listed twice"#
        );
        let pending = Event::CleanedUp {
            cutoff: 4.0,
            ids: strings(&["p"]),
        };
        assert!(state.check(&pending).is_err());
        let event = Event::CleanedUp {
            cutoff: 4.0,
            ids: state.completed_before(4.0),
        };
        state.apply(5.0, &event).expect("cleans");
        assert_eq!(ids(state.completed()), ["c"]);
        assert_eq!(state.place("a"), None);
        state.apply(6.0, &added("a")).expect("a cleaned id is unknown again");
    }

    #[test]
    fn requeued_goes_to_the_front_of_pending_in_the_given_order() {
        let mut state = state_of(&[
            added("1"),
            added("2"),
            added("3"),
            added("4"),
            taken("1"),
            taken("2"),
            taken("3"),
        ]);
        let event = Event::Requeued {
            ids: strings(&["3", "1"]),
        };
        state.apply(8.0, &event).expect("requeues");
        assert_eq!(ids(state.pending()), ["3", "1", "4"]);
        assert_eq!(ids(state.in_flight()), ["2"]);
        state.apply(9.0, &taken("3")).expect("3 is the front");
        assert_eq!(ids(state.in_flight()), ["2", "3"]);
        let error = state
            .check(&Event::Requeued { ids: strings(&["4"]) })
            .expect_err("pending");
        assert_eq!(error.0, r#"requeued: "4" is not in flight (it is pending)"#);
        let twice = Event::Requeued {
            ids: strings(&["2", "2"]),
        };
        assert!(state.check(&twice).is_err());
    }

    #[test]
    fn refused_events_leave_the_state_unchanged() {
        let mut state = state_of(&[added("1"), added("2"), taken("1"), failed("3", 5.0), completed("4")]);
        let before = state.clone();
        let refused = [
            added("2"),
            taken("3"),
            taken("9"),
            failed("4", 1.0),
            failed("1", f64::NAN),
            Event::MovedToPending { id: "1".into() },
            Event::Reset { id: "2".into() },
            completed("4"),
            Event::CleanedUp {
                cutoff: 100.0,
                ids: strings(&["4", "3"]),
            },
            Event::CleanedUp {
                cutoff: f64::INFINITY,
                ids: strings(&["4"]),
            },
            Event::Requeued {
                ids: strings(&["1", "2"]),
            },
        ];
        for event in &refused {
            let checked = state.check(event).expect_err("check refuses");
            let applied = state.apply(10.0, event).expect_err("apply refuses");
            assert_eq!(checked, applied);
            assert!(checked.0.starts_with(event.kind()), "{checked}");
            assert_eq!(state, before, "{event:?} changed the state");
            assert!(state.indexes_agree());
        }
    }

    #[test]
    fn ready_for_retry_orders_by_retry_after_then_failed_order() {
        let mut state = state_of(&[
            failed("late", 30.0),
            failed("tie-a", 10.0),
            failed("early", 5.0),
            failed("tie-b", 10.0),
            failed("future", 99.0),
            failed("spent", 1.0),
        ]);
        for time in 7..10 {
            state
                .apply(f64::from(time), &failed("spent", 1.0))
                .expect("fails again");
        }
        // "spent" now has retry_count 4, the others 1.
        let due = |state: &QueueState, now, max| ids(state.ready_for_retry(now, max));
        assert_eq!(due(&state, 30.0, 4), ["early", "tie-a", "tie-b", "late"]);
        assert_eq!(due(&state, 30.0, 5), ["spent", "early", "tie-a", "tie-b", "late"]);
        assert_eq!(due(&state, 9.9, 5), ["spent", "early"]);
        assert!(due(&state, 30.0, 0).is_empty());
        // Failing again keeps tie-a's place in failed, so it still precedes
        // tie-b; with retry_count 2 it drops out under max_retries 2.
        state.apply(20.0, &failed("tie-a", 10.0)).expect("fails again");
        assert_eq!(due(&state, 10.0, 2), ["early", "tie-b"]);
        assert_eq!(due(&state, 10.0, 3), ["early", "tie-a", "tie-b"]);
    }

    #[test]
    fn a_missing_retry_after_counts_as_zero() {
        let mut entry = QueueEntry::new(movie("imported"));
        entry.retry_count = 1;
        let state = state_of(&[
            failed("1", -5.0),
            Event::Imported {
                pending: vec![],
                failed: vec![entry],
                completed: vec![],
            },
        ]);
        assert_eq!(ids(state.ready_for_retry(0.0, 5)), ["1", "imported"]);
        assert_eq!(ids(state.ready_for_retry(-1.0, 5)), ["1"]);
    }

    #[test]
    fn permanent_failures_agree_with_their_count() {
        let mut events = vec![];
        for (id, failures) in [("a", 1), ("b", 4), ("c", 2), ("d", 3), ("e", 5)] {
            events.extend((0..failures).map(|_| failed(id, 0.0)));
        }
        let state = state_of(&events);
        for max_retries in 0..7 {
            let permanent = state.permanent_failures(max_retries);
            assert_eq!(permanent.len(), state.permanent_failure_count(max_retries));
            assert!(permanent.iter().all(|entry| entry.retry_count >= max_retries));
        }
        assert_eq!(ids(state.permanent_failures(2)), ["b", "c", "d", "e"]);
        assert_eq!(state.permanent_failure_count(0), 5);
        assert_eq!(state.permanent_failure_count(5), 1);
        assert_eq!(state.permanent_failure_count(6), 0);
    }

    #[test]
    fn completed_before_follows_completed_order_not_time_order() {
        let stamped = |id: &str, completed_at| QueueEntry {
            completed_at,
            ..QueueEntry::new(movie(id))
        };
        let state = state_of(&[
            completed("live"),
            Event::Imported {
                pending: vec![],
                failed: vec![],
                completed: vec![
                    stamped("old", Some(0.5)),
                    stamped("unstamped", None),
                    stamped("new", Some(9.0)),
                ],
            },
        ]);
        assert_eq!(ids(state.completed()), ["live", "old", "unstamped", "new"]);
        assert_eq!(state.completed_before(1.5), strings(&["live", "old", "unstamped"]));
        assert_eq!(state.completed_before(0.5), strings(&["unstamped"]));
        assert_eq!(state.completed_before(0.0), Vec::<String>::new());
    }

    #[test]
    fn imported_appends_unknown_entries_unchanged_and_skips_known_ones() {
        let mut failed_entry = QueueEntry::new(movie("f"));
        failed_entry.retry_count = 2;
        failed_entry.last_error = Some("Not found".into());
        failed_entry.retry_after = Some(100.0);
        failed_entry.failed_at = Some(50.0);
        let mut state = state_of(&[added("known"), completed("done")]);
        let import = Event::Imported {
            pending: vec![
                QueueEntry::new(movie("p")),
                QueueEntry::new(Movie::new("known", "Other", 1)),
            ],
            failed: vec![
                failed_entry.clone(),
                QueueEntry::new(movie("done")),
                QueueEntry::new(movie("p")),
            ],
            completed: vec![
                QueueEntry::new(Movie::new("f", "Again", 1)),
                QueueEntry::new(movie("c")),
            ],
        };
        state.check(&import).expect("never refused");
        state.apply(3.0, &import).expect("imports");
        assert_eq!(ids(state.pending()), ["known", "p"]);
        assert_eq!(
            state.get("known").map(|(_, entry)| entry.movie.title().to_owned()),
            Some("Movie known".to_owned())
        );
        assert_eq!(ids(state.failed()), ["f"]);
        assert_eq!(state.get("f"), Some((Place::Failed, failed_entry)));
        assert_eq!(ids(state.completed()), ["done", "c"]);
        assert_eq!(state.get("c").map(|(_, entry)| entry.completed_at), Some(None));
        assert_eq!(ids(state.ready_for_retry(100.0, 3)), ["f"]);
    }

    #[test]
    fn equality_ignores_order_keys() {
        // Requeued gives pending keys below zero; the same order built by
        // plain adds has other keys but is the same state.
        let requeued = state_of(&[
            added("1"),
            added("2"),
            taken("1"),
            Event::Requeued { ids: strings(&["1"]) },
        ]);
        let added_only = state_of(&[added("1"), added("2")]);
        assert_eq!(requeued, added_only);
        assert_ne!(requeued, state_of(&[added("2"), added("1")]));
        assert_ne!(QueueState::new(), state_of(&[completed("1")]));
    }

    #[test]
    fn place_displays_as_words() {
        let words: Vec<String> = Place::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(words, ["pending", "in flight", "failed", "completed"]);
    }

    /// A deterministic generator for the long mixed sequence (tests only).
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, bound: u32) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            u32::try_from((self.0 >> 33) % u64::from(bound)).expect("below a u32")
        }
    }

    #[test]
    fn indexes_agree_after_a_long_mixed_sequence() {
        // 3000 ids, so the state passes FULL_CHECK_ENTRIES_MAX and apply's
        // debug check switches to touched entries; the full check runs here.
        let mut state = QueueState::new();
        let mut random = Lcg(7);
        let (mut applied, mut step) = (0_u32, 0_u32);
        while applied < 20_000 {
            step += 1;
            let id = random.below(3_000).to_string();
            let event = match random.below(8) {
                0 | 1 => added(&id),
                2 => state
                    .front_pending()
                    .map_or_else(|| added(&id), |entry| taken(entry.id())),
                3 => failed(&id, f64::from(random.below(50))),
                4 => Event::MovedToPending { id },
                5 => Event::Reset { id },
                6 => completed(&id),
                _ => Event::CleanedUp {
                    cutoff: f64::from(step),
                    ids: state.completed_before(f64::from(step)).into_iter().take(3).collect(),
                },
            };
            if state.check(&event).is_ok() {
                state.apply(f64::from(step), &event).expect("checked");
                applied += 1;
                if applied % 5_000 == 0 {
                    assert!(state.indexes_agree());
                }
            }
        }
        assert!(state.indexes_agree());
        assert!(state.len() > FULL_CHECK_ENTRIES_MAX);
        assert_eq!(state.permanent_failures(2).len(), state.permanent_failure_count(2));
    }

    /// A plain reference model: four vectors, linear searches.
    #[derive(Debug, Default)]
    struct Model {
        pending: Vec<QueueEntry>,
        in_flight: Vec<QueueEntry>,
        failed: Vec<QueueEntry>,
        completed: Vec<QueueEntry>,
    }

    impl Model {
        fn queue_mut(&mut self, place: Place) -> &mut Vec<QueueEntry> {
            match place {
                Place::Pending => &mut self.pending,
                Place::InFlight => &mut self.in_flight,
                Place::Failed => &mut self.failed,
                Place::Completed => &mut self.completed,
            }
        }

        fn place(&self, id: &str) -> Option<Place> {
            let queues = [&self.pending, &self.in_flight, &self.failed, &self.completed];
            Place::ALL
                .into_iter()
                .zip(queues)
                .find_map(|(place, queue)| queue.iter().any(|entry| entry.id() == id).then_some(place))
        }

        fn take_out(&mut self, id: &str) -> Option<(Place, usize, QueueEntry)> {
            let place = self.place(id)?;
            let queue = self.queue_mut(place);
            let index = queue.iter().position(|entry| entry.id() == id)?;
            Some((place, index, queue.remove(index)))
        }

        fn distinct(ids: &[String]) -> bool {
            ids.iter().collect::<HashSet<_>>().len() == ids.len()
        }

        /// Applies the event if it is valid; says whether it was.
        fn apply(&mut self, ts: f64, event: &Event) -> bool {
            match event {
                Event::Added { movie } if self.place(movie.id()).is_none() => {
                    self.pending.push(QueueEntry::new(movie.clone()));
                }
                Event::Taken { id } if self.pending.first().is_some_and(|entry| entry.id() == id) => {
                    let entry = self.pending.remove(0);
                    self.in_flight.push(entry);
                }
                Event::Failed { movie, .. } | Event::Completed { movie }
                    if self.place(movie.id()) == Some(Place::Completed) =>
                {
                    return false;
                }
                Event::Failed {
                    movie,
                    error,
                    retry_after,
                } if retry_after.is_finite() => self.fail(ts, movie, error, *retry_after),
                Event::MovedToPending { id } | Event::Reset { id } if self.place(id) == Some(Place::Failed) => {
                    let (_, _, mut entry) = self.take_out(id).expect("failed");
                    if matches!(event, Event::Reset { .. }) {
                        entry = QueueEntry::new(entry.movie);
                    }
                    self.pending.push(entry);
                }
                Event::Completed { movie } => {
                    self.take_out(movie.id());
                    let entry = QueueEntry {
                        completed_at: Some(ts),
                        ..QueueEntry::new(movie.clone())
                    };
                    self.completed.push(entry);
                }
                Event::CleanedUp { cutoff, ids } => return self.clean_up(*cutoff, ids),
                Event::Requeued { ids } => return self.requeue(ids),
                Event::Imported {
                    pending,
                    failed,
                    completed,
                } => {
                    for (place, entries) in [
                        (Place::Pending, pending),
                        (Place::Failed, failed),
                        (Place::Completed, completed),
                    ] {
                        for entry in entries {
                            if self.place(entry.id()).is_none() {
                                self.queue_mut(place).push(entry.clone());
                            }
                        }
                    }
                }
                _ => return false,
            }
            true
        }

        fn fail(&mut self, ts: f64, movie: &Movie, error: &str, retry_after: f64) {
            let old = self.take_out(movie.id());
            let entry = QueueEntry {
                movie: movie.clone(),
                retry_count: old.as_ref().map_or(0, |(_, _, old)| old.retry_count) + 1,
                last_error: Some(error.to_owned()),
                retry_after: Some(retry_after),
                failed_at: old.as_ref().and_then(|(_, _, old)| old.failed_at).or(Some(ts)),
                completed_at: None,
            };
            match old {
                Some((Place::Failed, index, _)) => self.failed.insert(index, entry),
                _ => self.failed.push(entry),
            }
        }

        fn clean_up(&mut self, cutoff: f64, ids: &[String]) -> bool {
            let before = |entry: &QueueEntry| entry.completed_at.unwrap_or(0.0).total_cmp(&cutoff).is_lt();
            let valid = cutoff.is_finite()
                && Self::distinct(ids)
                && ids
                    .iter()
                    .all(|id| self.completed.iter().any(|entry| entry.id() == id && before(entry)));
            if valid {
                self.completed.retain(|entry| !ids.iter().any(|id| id == entry.id()));
            }
            valid
        }

        fn requeue(&mut self, ids: &[String]) -> bool {
            let valid = Self::distinct(ids) && ids.iter().all(|id| self.in_flight.iter().any(|entry| entry.id() == id));
            if valid {
                let mut front: Vec<QueueEntry> = ids
                    .iter()
                    .filter_map(|id| self.take_out(id))
                    .map(|(_, _, entry)| entry)
                    .collect();
                front.append(&mut self.pending);
                self.pending = front;
            }
            valid
        }

        fn ready_for_retry(&self, now: f64, max_retries: u32) -> Vec<QueueEntry> {
            let retry_time = |entry: &QueueEntry| Time(entry.retry_after.unwrap_or(0.0));
            let mut ready: Vec<QueueEntry> = self
                .failed
                .iter()
                .filter(|entry| retry_time(entry) <= Time(now) && entry.retry_count < max_retries)
                .cloned()
                .collect();
            ready.sort_by_key(|entry| retry_time(entry)); // stable: ties keep failed order
            ready
        }
    }

    /// One step of a random run, turned into an event against the state.
    #[derive(Debug, Clone)]
    enum Op {
        Add(u8),
        TakeFront,
        Take(u8),
        Fail(u8, u8),
        MoveToPending(u8),
        Reset(u8),
        Complete(u8),
        CleanUp(u8, Vec<u8>),
        CleanUpBefore(u8),
        Requeue(Vec<u8>),
        RequeueInFlight(bool),
        Import(Vec<(u8, u8, u32, Option<u8>)>),
    }

    const ID_POOL: u8 = 8;

    fn op() -> impl Strategy<Value = Op> {
        let id = || 0..ID_POOL;
        let time = || 0..40_u8;
        let ids = move || prop::collection::vec(id(), 0..4);
        let imported = (id(), 0..3_u8, 0..4_u32, prop::option::of(time()));
        prop_oneof![
            3 => id().prop_map(Op::Add),
            3 => Just(Op::TakeFront),
            1 => id().prop_map(Op::Take),
            3 => (id(), time()).prop_map(|(id, time)| Op::Fail(id, time)),
            2 => id().prop_map(Op::MoveToPending),
            1 => id().prop_map(Op::Reset),
            2 => id().prop_map(Op::Complete),
            1 => (time(), ids()).prop_map(|(cutoff, ids)| Op::CleanUp(cutoff, ids)),
            1 => time().prop_map(Op::CleanUpBefore),
            1 => ids().prop_map(Op::Requeue),
            1 => any::<bool>().prop_map(Op::RequeueInFlight),
            1 => prop::collection::vec(imported, 0..5).prop_map(Op::Import),
        ]
    }

    /// The id of pool member `id`: the last two need escaping in JSON, so
    /// the state keeps them beside the entry's JSON instead of inside it.
    fn name(id: u8) -> String {
        match id {
            6 => "6 \"quoted\"".to_owned(),
            7 => "7 back\\slash\nnew line, café".to_owned(),
            _ => id.to_string(),
        }
    }

    fn event_of(op: Op, state: &QueueState, step: u32) -> Event {
        // The title changes with the step, so replaced fields are visible.
        let movie_of = |id: u8| Movie::new(name(id), format!("step {step}"), 2000);
        let names = |ids: Vec<u8>| ids.into_iter().map(name).collect();
        match op {
            Op::Add(id) => Event::Added { movie: movie_of(id) },
            Op::TakeFront => taken(state.front_pending_id().unwrap_or("none")),
            Op::Take(id) => taken(&name(id)),
            Op::Fail(id, time) => Event::Failed {
                movie: movie_of(id),
                error: format!("error at {step}"),
                retry_after: f64::from(time),
            },
            Op::MoveToPending(id) => Event::MovedToPending { id: name(id) },
            Op::Reset(id) => Event::Reset { id: name(id) },
            Op::Complete(id) => Event::Completed { movie: movie_of(id) },
            Op::CleanUp(cutoff, ids) => Event::CleanedUp {
                cutoff: f64::from(cutoff),
                ids: names(ids),
            },
            Op::CleanUpBefore(cutoff) => Event::CleanedUp {
                cutoff: f64::from(cutoff),
                ids: state.completed_before(f64::from(cutoff)),
            },
            Op::Requeue(ids) => Event::Requeued { ids: names(ids) },
            Op::RequeueInFlight(reversed) => {
                let mut ids = ids(state.in_flight());
                if reversed {
                    ids.reverse();
                }
                Event::Requeued { ids }
            }
            Op::Import(entries) => import_of(entries, step),
        }
    }

    fn import_of(entries: Vec<(u8, u8, u32, Option<u8>)>, step: u32) -> Event {
        let (mut pending, mut failed, mut completed) = (vec![], vec![], vec![]);
        for (id, place, retry_count, time) in entries {
            let time = time.map(f64::from);
            let mut entry = QueueEntry::new(Movie::new(name(id), format!("imported at {step}"), 1));
            match place {
                0 => pending.push(entry),
                1 => {
                    entry.retry_count = retry_count;
                    entry.retry_after = time;
                    failed.push(entry);
                }
                _ => {
                    entry.completed_at = time;
                    completed.push(entry);
                }
            }
        }
        Event::Imported {
            pending,
            failed,
            completed,
        }
    }

    fn assert_matches_model(state: &QueueState, model: &Model, now: f64) {
        assert!(state.pending().eq(model.pending.iter().cloned()));
        assert!(state.in_flight().eq(model.in_flight.iter().cloned()));
        assert!(state.failed().eq(model.failed.iter().cloned()));
        assert!(state.completed().eq(model.completed.iter().cloned()));
        for max_retries in 0..4 {
            assert_eq!(
                state.ready_for_retry(now, max_retries),
                model.ready_for_retry(now, max_retries)
            );
            let permanent: Vec<QueueEntry> = model
                .failed
                .iter()
                .filter(|entry| entry.retry_count >= max_retries)
                .cloned()
                .collect();
            assert_eq!(state.permanent_failure_count(max_retries), permanent.len());
            assert_eq!(state.permanent_failures(max_retries), permanent);
        }
        let before: Vec<String> = ids(model
            .completed
            .iter()
            .filter(|entry| entry.completed_at.unwrap_or(0.0) < now)
            .cloned());
        assert_eq!(state.completed_before(now), before);
    }

    proptest! {
        #[test]
        fn random_runs_match_the_model(ops in prop::collection::vec(op(), 0..80)) {
            let (mut state, mut model) = (QueueState::new(), Model::default());
            for (step, op) in (1..).zip(ops) {
                let ts = f64::from(step);
                let event = event_of(op, &state, step);
                let before = state.clone();
                let checked = state.check(&event);
                let applied = state.apply(ts, &event);
                prop_assert_eq!(&checked, &applied);
                prop_assert_eq!(checked.is_ok(), model.apply(ts, &event), "{:?}", event);
                if applied.is_err() {
                    prop_assert!(state == before);
                }
                prop_assert!(state.indexes_agree());
                assert_matches_model(&state, &model, ts / 2.0);
            }
        }
    }
}
