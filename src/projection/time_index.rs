//! The time indexes: failed entries by `(retry_count, retry_after)`,
//! completed ones by `completed_at`, removed ones by `removed_at`, for the
//! retry, clean-up and deletion queries in `O(log n + k)`.

use std::cmp::Ordering;

use super::slab::{Index, NIL, Node};
use super::{Place, QueueState, Statistics};
use crate::entry::QueueEntry;

/// A Unix time ordered by [`f64::total_cmp`], so it can key a `BTreeSet`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Time(pub(super) f64);

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

/// A place's key in a time index: the time, then the order key (ties in
/// queue order), then the slot.
pub(super) type TimeKey = (Time, i64, Index);

impl Node {
    /// This entry's key in its place's time index, were it in slot `index`.
    pub(super) fn time_key(&self, index: Index) -> TimeKey {
        (Time(self.index_time), self.key, index)
    }
}

/// Keeping the indexes and querying them.
impl QueueState {
    /// Adds a slot to its place's time index (failed, completed, removed),
    /// and records that its place changed: every entry that joins a list
    /// or is rewritten in it passes here.
    pub(super) fn index(&mut self, index: Index) {
        let node = self.node_mut(index);
        let (place, count, time_key) = (node.place, node.retry_count, node.time_key(index));
        self.changed |= super::place_bit(place);
        match place {
            Place::Failed => {
                self.retry_index.entry(count).or_default().insert(time_key);
            }
            Place::Completed => {
                self.completed_index.insert(time_key);
            }
            Place::Removed => {
                self.removed_index.insert(time_key);
            }
            Place::Pending | Place::InFlight => {}
        }
    }

    /// Removes a slot from its place's time index, and records that its
    /// place changed: every entry that leaves a list or is rewritten in it
    /// passes here.
    pub(super) fn unindex(&mut self, index: Index) {
        let node = self.node_mut(index);
        let (place, count, time_key) = (node.place, node.retry_count, node.time_key(index));
        self.changed |= super::place_bit(place);
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
            Place::Removed => {
                self.removed_index.remove(&time_key);
            }
            Place::Pending | Place::InFlight => {}
        }
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

    /// The counts, with permanent failures at `max_retries`.
    #[must_use]
    pub fn statistics(&self, max_retries: u32) -> Statistics {
        Statistics {
            pending: self.pending_count(),
            in_flight: self.in_flight_count(),
            failed: self.failed_count(),
            completed: self.completed_count(),
            permanent_failures: self.permanent_failure_count(max_retries),
            removed: self.removed_count(),
        }
    }

    /// How many failed entries have each `retry_count`, ascending (the
    /// histogram a snapshot's manifest keeps, for [`QueueState::statistics`]
    /// at any `max_retries` without the entries).
    #[must_use]
    pub(crate) fn failed_retry_counts(&self) -> Vec<(u32, u64)> {
        self.retry_index
            .iter()
            .map(|(&count, by_time)| (count, by_time.len() as u64))
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
}

/// The removed queue's grace period.
impl QueueState {
    /// Removed entries whose grace period is over at `now`:
    /// `removed_at <= now - grace_period_secs` (a missing `removed_at`
    /// counts as 0.0), in removed order. `O(log n + k log k)`.
    #[must_use]
    pub fn ready_for_deletion(&self, now: f64, grace_period_secs: f64) -> Vec<QueueEntry> {
        let cutoff = now - grace_period_secs;
        let mut keys: Vec<(i64, Index)> = self
            .removed_index
            .range(..=(Time(cutoff), i64::MAX, NIL))
            .map(|&(_, key, index)| (key, index))
            .collect();
        keys.sort_unstable();
        keys.into_iter()
            .filter_map(|(_, index)| self.node(index)?.entry())
            .collect()
    }
}
