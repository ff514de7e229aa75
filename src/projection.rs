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
//! Representation: every entry lives once in a map by id, tagged with its
//! place and an order key, and is kept as its compact JSON (the documented
//! files' shape) plus the numbers its indexes need: a queue of 100,000
//! movies costs little more than their JSON. Queries hand out parsed
//! [`QueueEntry`] values. Each place keeps a `BTreeMap` from order key to
//! id (pending takes keys below its minimum for front inserts and above its
//! maximum for back inserts; the other places only append). Failed entries
//! are also indexed by `(retry_count, retry_after)`, completed ones by
//! `completed_at`, so the retry and clean-up queries cost `O(log n + k)`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use crate::event::{Event, QueueEntry};
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

/// An entry as the state keeps it: its compact JSON, its `retry_count`
/// and the time its place's index orders it by (`retry_after` in failed,
/// `completed_at` in completed, a missing one counting as 0.0).
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    json: Box<str>,
    retry_count: u32,
    index_time: f64,
}

impl Stored {
    fn new(entry: &QueueEntry, place: Place) -> Self {
        let index_time = match place {
            Place::Failed => entry.retry_after.unwrap_or(0.0),
            Place::Completed => entry.completed_at.unwrap_or(0.0),
            Place::Pending | Place::InFlight => 0.0,
        };
        let json = serde_json::to_string(entry).unwrap_or_default().into_boxed_str();
        debug_assert!(!json.is_empty(), "an entry always serializes");
        Stored {
            json,
            retry_count: entry.retry_count,
            index_time,
        }
    }

    /// The entry, parsed back. The JSON was written by [`Stored::new`], so
    /// it parses; `None` would be a bug, never a consequence of input.
    fn entry(&self) -> Option<QueueEntry> {
        let entry = serde_json::from_str(&self.json).ok();
        debug_assert!(entry.is_some(), "stored JSON does not parse: {}", self.json);
        entry
    }
}

/// A stored entry's key in its place's time index.
fn index_time(stored: &Stored) -> Time {
    Time(stored.index_time)
}

/// One known entry: where it is and its order key there.
#[derive(Debug, Clone)]
struct Slot {
    place: Place,
    key: i64,
    stored: Stored,
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
    /// Every known entry by id.
    entries: HashMap<Arc<str>, Slot>,
    /// Pending ids by order key, front first.
    pending: BTreeMap<i64, Arc<str>>,
    /// In-flight ids by order key, oldest take first.
    in_flight: BTreeMap<i64, Arc<str>>,
    /// Failed ids by order key, first arrival first.
    failed: BTreeMap<i64, Arc<str>>,
    /// Completed ids by order key, completion order.
    completed: BTreeMap<i64, Arc<str>>,
    /// Failed entries by `retry_count`, then `(retry_after, order key)`.
    /// Never holds an empty set, so it doubles as the `retry_count`
    /// histogram of the failed queue.
    retry_index: BTreeMap<u32, BTreeSet<(Time, i64)>>,
    /// Completed entries by `(completed_at, order key)`.
    completed_index: BTreeSet<(Time, i64)>,
}

impl QueueState {
    /// An empty state: the projection of no events.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
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
        self.entries.get(id).map(|slot| slot.place)
    }

    /// The movie `id`'s place and entry, if it is known.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<(Place, QueueEntry)> {
        let slot = self.entries.get(id)?;
        Some((slot.place, slot.stored.entry()?))
    }

    /// The entry the next `Taken` must name.
    #[must_use]
    pub fn front_pending(&self) -> Option<QueueEntry> {
        let (_, id) = self.pending.first_key_value()?;
        self.entries.get(id)?.stored.entry()
    }

    /// The id at the front of pending.
    #[must_use]
    pub fn front_pending_id(&self) -> Option<&str> {
        self.pending.first_key_value().map(|(_, id)| &**id)
    }

    /// The ids of one place, in queue order.
    pub fn ids(&self, place: Place) -> impl Iterator<Item = &str> {
        self.order(place).values().map(|id| &**id)
    }

    /// The entries of one place, in queue order, as the compact JSON of
    /// each (the documented files' shape, without re-serializing).
    pub fn entries_json(&self, place: Place) -> impl Iterator<Item = &str> {
        self.order(place)
            .values()
            .filter_map(|id| self.entries.get(id).map(|slot| &*slot.stored.json))
    }

    /// How many entries are pending.
    #[must_use]
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// How many entries are in flight.
    #[must_use]
    pub fn in_flight_count(&self) -> usize {
        self.in_flight.len()
    }

    /// How many entries are failed.
    #[must_use]
    pub fn failed_count(&self) -> usize {
        self.failed.len()
    }

    /// How many entries are completed.
    #[must_use]
    pub fn completed_count(&self) -> usize {
        self.completed.len()
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
        let mut due: Vec<(Time, i64)> = self
            .retry_index
            .range(..max_retries)
            .flat_map(|(_, by_time)| by_time.range(..=(Time(now), i64::MAX)))
            .copied()
            .collect();
        due.sort_unstable();
        due.into_iter()
            .filter_map(|(_, key)| self.entry_at(Place::Failed, key))
            .collect()
    }

    /// Failed entries with `retry_count >= max_retries`, in failed order.
    #[must_use]
    pub fn permanent_failures(&self, max_retries: u32) -> Vec<QueueEntry> {
        let mut keys: Vec<i64> = self
            .retry_index
            .range(max_retries..)
            .flat_map(|(_, by_time)| by_time.iter().map(|&(_, key)| key))
            .collect();
        keys.sort_unstable();
        keys.into_iter()
            .filter_map(|key| self.entry_at(Place::Failed, key))
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
        let mut keys: Vec<i64> = self
            .completed_index
            .range(..(Time(cutoff), i64::MIN))
            .map(|&(_, key)| key)
            .collect();
        keys.sort_unstable();
        keys.into_iter()
            .filter_map(|key| self.completed.get(&key).map(ToString::to_string))
            .collect()
    }

    /// Does every index agree with the queues? A full `O(n)` consistency
    /// check, asserted by `apply` in debug builds.
    #[must_use]
    pub fn indexes_agree(&self) -> bool {
        self.sizes_agree()
            && Place::ALL.into_iter().all(|place| {
                self.order(place).iter().all(|(&key, id)| {
                    self.entries
                        .get(id)
                        .is_some_and(|slot| slot.place == place && slot.key == key && self.slot_agrees(id, slot))
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
            let completed_at = self
                .entries
                .get(id.as_str())
                .map_or(Time(0.0), |slot| index_time(&slot.stored));
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
            Event::Added { movie } => self.push(Place::Pending, End::Back, &QueueEntry::new(movie.clone())),
            Event::Taken { id } => self.relocate(id, Place::InFlight, End::Back),
            Event::Failed {
                movie,
                error,
                retry_after,
            } => self.fail(ts, movie, error, *retry_after),
            Event::MovedToPending { id } => self.relocate(id, Place::Pending, End::Back),
            Event::Reset { id } => {
                if let Some(entry) = self.unlink(id).and_then(|slot| slot.stored.entry()) {
                    self.push(Place::Pending, End::Back, &QueueEntry::new(entry.movie));
                }
            }
            Event::Completed { movie } => {
                self.unlink(movie.id());
                let entry = QueueEntry {
                    completed_at: Some(ts),
                    ..QueueEntry::new(movie.clone())
                };
                self.push(Place::Completed, End::Back, &entry);
            }
            Event::CleanedUp { ids, .. } => {
                for id in ids {
                    self.unlink(id);
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
        let old = self.unlink(movie.id());
        let key = match &old {
            Some(slot) if slot.place == Place::Failed => slot.key,
            _ => self.free_key(Place::Failed, End::Back),
        };
        let retry_count = old.as_ref().map_or(0, |slot| slot.stored.retry_count).saturating_add(1);
        let first_failed_at = old
            .and_then(|slot| slot.stored.entry())
            .and_then(|entry| entry.failed_at);
        let entry = QueueEntry {
            movie: movie.clone(),
            retry_count,
            last_error: Some(error.to_owned()),
            retry_after: Some(retry_after),
            failed_at: first_failed_at.or(Some(ts)),
            completed_at: None,
        };
        self.link(
            Place::Failed,
            key,
            Arc::from(movie.id()),
            Stored::new(&entry, Place::Failed),
        );
    }

    /// Appends each entry whose id is not known yet, unchanged.
    fn import(&mut self, place: Place, entries: &[QueueEntry]) {
        for entry in entries {
            if !self.entries.contains_key(entry.id()) {
                self.push(place, End::Back, entry);
            }
        }
    }

    /// Moves `id` unchanged to one end of pending or in flight (places
    /// without a time index, so the stored entry needs no new index time).
    fn relocate(&mut self, id: &str, place: Place, end: End) {
        debug_assert!(matches!(place, Place::Pending | Place::InFlight));
        if let Some((id, slot)) = self.unlink_entry(id) {
            let key = self.free_key(place, end);
            self.link(place, key, id, slot.stored);
        }
    }

    fn push(&mut self, place: Place, end: End, entry: &QueueEntry) {
        let key = self.free_key(place, end);
        self.link(place, key, Arc::from(entry.id()), Stored::new(entry, place));
    }

    /// An order key at one end of `place`. Each insert moves an end by one,
    /// so the `i64` range outlasts any journal.
    fn free_key(&self, place: Place, end: End) -> i64 {
        let order = self.order(place);
        match end {
            End::Front => order.first_key_value().map_or(0, |(&key, _)| key - 1),
            End::Back => order.last_key_value().map_or(0, |(&key, _)| key + 1),
        }
    }

    /// Puts an entry at `key` in `place` and in that place's index.
    fn link(&mut self, place: Place, key: i64, id: Arc<str>, stored: Stored) {
        match place {
            Place::Failed => {
                let by_time = self.retry_index.entry(stored.retry_count).or_default();
                by_time.insert((index_time(&stored), key));
            }
            Place::Completed => {
                self.completed_index.insert((index_time(&stored), key));
            }
            Place::Pending | Place::InFlight => {}
        }
        self.order_mut(place).insert(key, Arc::clone(&id));
        self.entries.insert(id, Slot { place, key, stored });
    }

    /// Takes `id` out of its place and every index.
    fn unlink(&mut self, id: &str) -> Option<Slot> {
        self.unlink_entry(id).map(|(_, slot)| slot)
    }

    /// As [`QueueState::unlink`], keeping the shared id.
    fn unlink_entry(&mut self, id: &str) -> Option<(Arc<str>, Slot)> {
        let (id, slot) = self.entries.remove_entry(id)?;
        self.order_mut(slot.place).remove(&slot.key);
        match slot.place {
            Place::Failed => {
                let count = slot.stored.retry_count;
                if let Some(by_time) = self.retry_index.get_mut(&count) {
                    by_time.remove(&(index_time(&slot.stored), slot.key));
                    if by_time.is_empty() {
                        self.retry_index.remove(&count);
                    }
                }
            }
            Place::Completed => {
                self.completed_index.remove(&(index_time(&slot.stored), slot.key));
            }
            Place::Pending | Place::InFlight => {}
        }
        Some((id, slot))
    }
}

/// Lookups shared by the queries and the consistency checks.
impl QueueState {
    fn order(&self, place: Place) -> &BTreeMap<i64, Arc<str>> {
        match place {
            Place::Pending => &self.pending,
            Place::InFlight => &self.in_flight,
            Place::Failed => &self.failed,
            Place::Completed => &self.completed,
        }
    }

    fn order_mut(&mut self, place: Place) -> &mut BTreeMap<i64, Arc<str>> {
        match place {
            Place::Pending => &mut self.pending,
            Place::InFlight => &mut self.in_flight,
            Place::Failed => &mut self.failed,
            Place::Completed => &mut self.completed,
        }
    }

    fn entries_in(&self, place: Place) -> impl Iterator<Item = QueueEntry> + '_ {
        self.order(place)
            .values()
            .filter_map(|id| self.entries.get(id).and_then(|slot| slot.stored.entry()))
    }

    fn entry_at(&self, place: Place, key: i64) -> Option<QueueEntry> {
        let id = self.order(place).get(&key)?;
        self.entries.get(id)?.stored.entry()
    }

    /// Do the queues, the entry map and the indexes hold the same number of
    /// entries (and the retry index no empty set)?
    fn sizes_agree(&self) -> bool {
        let ordered: usize = Place::ALL.into_iter().map(|place| self.order(place).len()).sum();
        let retry_indexed: usize = self.retry_index.values().map(BTreeSet::len).sum();
        ordered == self.entries.len()
            && retry_indexed == self.failed.len()
            && self.retry_index.values().all(|by_time| !by_time.is_empty())
            && self.completed_index.len() == self.completed.len()
    }

    /// Is this slot under its id, in its place's order and in its index?
    fn slot_agrees(&self, id: &str, slot: &Slot) -> bool {
        let indexed = match slot.place {
            Place::Failed => self
                .retry_index
                .get(&slot.stored.retry_count)
                .is_some_and(|by_time| by_time.contains(&(index_time(&slot.stored), slot.key))),
            Place::Completed => self.completed_index.contains(&(index_time(&slot.stored), slot.key)),
            Place::Pending | Place::InFlight => true,
        };
        indexed
            && self
                .order(slot.place)
                .get(&slot.key)
                .is_some_and(|owner| &**owner == id)
    }

    /// The debug-build check after an event: everything while the state is
    /// small, the sizes and the entries the event touched when it is large.
    fn agrees_after(&self, event: &Event) -> bool {
        if self.entries.len() <= FULL_CHECK_ENTRIES_MAX {
            return self.indexes_agree();
        }
        self.sizes_agree()
            && event
                .ids()
                .all(|id| self.entries.get(id).is_none_or(|slot| self.slot_agrees(id, slot)))
    }
}

/// Equal when the four queues hold equal entries in equal order; the order
/// keys behind them do not matter.
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
        assert!(state.entries.len() > FULL_CHECK_ENTRIES_MAX);
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

    fn event_of(op: Op, state: &QueueState, step: u32) -> Event {
        let name = |id: u8| id.to_string();
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
            let mut entry = QueueEntry::new(Movie::new(id.to_string(), format!("imported at {step}"), 1));
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
