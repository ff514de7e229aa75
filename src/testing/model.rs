//! The one reference model of the queue, shared by the projection's unit
//! tests, the model test of `QueueManager` and the `model_ops` fuzz target.
//!
//! It is written from the seed, the spec and issue 13 (the removed queue,
//! the application's stamped fields) with five plain `Vec`s and linear
//! searches; it uses nothing of the projection it checks. Each operation
//! says whether it was accepted, exactly as the store's call returns;
//! refused operations change nothing. Stamps follow event schema version
//! 2: `queued_at`, `last_failed_at`, `completed_at`, `removed_at` are the
//! operation's time in whole seconds, `failed_at` the time itself.

use std::collections::HashSet;

use serde_json::Value;

use crate::entry::QueueEntry;
use crate::event::Event;
use crate::movie::{Movie, Stamp, StampValue};
use crate::projection::{Place, Statistics};

/// A movie with stamps applied as an entry's serialization applies them:
/// a stamped key keeps its place, a new one goes last, an absent one goes.
pub(crate) trait Stamped {
    /// The movie, stamped.
    fn stamped(self, stamps: &[Stamp]) -> Self;
}

impl Stamped for Movie {
    fn stamped(mut self, stamps: &[Stamp]) -> Self {
        let extra = self.extra_mut();
        for &(key, stamp) in stamps {
            match stamp {
                StampValue::Int(number) => {
                    extra.insert(key.to_owned(), Value::from(number));
                }
                StampValue::Text(text) => {
                    extra.insert(key.to_owned(), Value::from(text));
                }
                StampValue::Absent => {
                    extra.shift_remove(key);
                }
            }
        }
        self
    }
}

/// The five queues as plain lists, front first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReferenceModel {
    /// Waiting, first in first out.
    pub pending: Vec<QueueEntry>,
    /// Taken, oldest first.
    pub in_flight: Vec<QueueEntry>,
    /// Failed, in order of first arrival in failed.
    pub failed: Vec<QueueEntry>,
    /// Completed, in completion order.
    pub completed: Vec<QueueEntry>,
    /// Removed, in removal order.
    pub removed: Vec<QueueEntry>,
}

/// `retry_after`, `completed_at` or `removed_at` as an index key: a missing
/// time counts as 0.
fn time_of(time: Option<f64>) -> f64 {
    time.unwrap_or(0.0)
}

/// A time in whole seconds, as the application stamps it.
#[expect(clippy::cast_possible_truncation, reason = "test times fit an i64")]
fn seconds(time: f64) -> i64 {
    time.floor() as i64
}

fn status(word: &'static str) -> (&'static str, StampValue) {
    ("status", StampValue::Text(word))
}

impl ReferenceModel {
    /// An empty queue.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The five queues with their places, in [`Place::ALL`] order.
    #[must_use]
    pub fn queues(&self) -> [(Place, &Vec<QueueEntry>); 5] {
        [
            (Place::Pending, &self.pending),
            (Place::InFlight, &self.in_flight),
            (Place::Failed, &self.failed),
            (Place::Completed, &self.completed),
            (Place::Removed, &self.removed),
        ]
    }

    /// One queue.
    #[must_use]
    pub fn queue(&self, place: Place) -> &Vec<QueueEntry> {
        match place {
            Place::Pending => &self.pending,
            Place::InFlight => &self.in_flight,
            Place::Failed => &self.failed,
            Place::Completed => &self.completed,
            Place::Removed => &self.removed,
        }
    }

    fn queue_mut(&mut self, place: Place) -> &mut Vec<QueueEntry> {
        match place {
            Place::Pending => &mut self.pending,
            Place::InFlight => &mut self.in_flight,
            Place::Failed => &mut self.failed,
            Place::Completed => &mut self.completed,
            Place::Removed => &mut self.removed,
        }
    }

    /// Where `id` is and its entry.
    #[must_use]
    pub fn find(&self, id: &str) -> Option<(Place, &QueueEntry)> {
        self.queues()
            .into_iter()
            .find_map(|(place, list)| list.iter().find(|entry| entry.id() == id).map(|entry| (place, entry)))
    }

    /// Where `id` is.
    #[must_use]
    pub fn place(&self, id: &str) -> Option<Place> {
        self.find(id).map(|(place, _)| place)
    }

    /// Takes `id` out of wherever it is: its place, its index there, its entry.
    pub fn remove(&mut self, id: &str) -> Option<(Place, usize, QueueEntry)> {
        let place = self.place(id)?;
        let list = self.queue_mut(place);
        let index = list.iter().position(|entry| entry.id() == id)?;
        Some((place, index, list.remove(index)))
    }

    /// Completed and removed movies are done with.
    fn is_done(&self, id: &str) -> bool {
        matches!(self.place(id), Some(Place::Completed | Place::Removed))
    }

    /// `add_to_pending` at time `stamp`: refused for any id already known;
    /// `queued_at` and `status: "pending"` stamped.
    pub fn add(&mut self, movie: Movie, stamp: f64) -> bool {
        if self.place(movie.id()).is_some() {
            return false;
        }
        let movie = movie.stamped(&[("queued_at", StampValue::Int(seconds(stamp))), status("pending")]);
        self.pending.push(QueueEntry::new(movie));
        true
    }

    /// `get_next_pending`: the front of pending goes in flight.
    pub fn take(&mut self) -> Option<Movie> {
        if self.pending.is_empty() {
            return None;
        }
        let entry = self.pending.remove(0);
        let movie = entry.movie.clone();
        self.in_flight.push(entry);
        Some(movie)
    }

    /// `add_to_failed` at time `stamp`: refused for a completed or removed
    /// movie and a non-finite `retry_after`. `retry_count` goes up by one,
    /// `failed_at` is set on the first failure only, `last_failed_at` and
    /// `status: "failed"` on each; a failed movie keeps its place in failed
    /// and any other joins the back.
    pub fn fail(&mut self, movie: Movie, error: &str, retry_after: f64, stamp: f64) -> bool {
        if self.is_done(movie.id()) || !retry_after.is_finite() {
            return false;
        }
        let old = self.remove(movie.id());
        let entry = QueueEntry {
            retry_count: old.as_ref().map_or(1, |(_, _, entry)| entry.retry_count + 1),
            last_error: Some(error.to_owned()),
            retry_after: Some(retry_after),
            failed_at: old.as_ref().and_then(|(_, _, entry)| entry.failed_at).or(Some(stamp)),
            completed_at: None,
            removed_at: None,
            movie: movie.stamped(&[status("failed"), ("last_failed_at", StampValue::Int(seconds(stamp)))]),
        };
        match old {
            Some((Place::Failed, index, _)) => self.failed.insert(index, entry),
            _ => self.failed.push(entry),
        }
        true
    }

    /// Would `fail` stamp a new `failed_at`?
    #[must_use]
    pub fn first_failure(&self, id: &str) -> bool {
        self.find(id).and_then(|(_, entry)| entry.failed_at).is_none()
    }

    /// `move_failed_to_pending`: a failed movie to the back of pending with
    /// its retry fields, `status: "pending"` and `retry_attempt` (its retry
    /// count) stamped.
    pub fn move_back(&mut self, id: &str) -> bool {
        if self.place(id) != Some(Place::Failed) {
            return false;
        }
        if let Some((_, _, mut entry)) = self.remove(id) {
            let attempt = ("retry_attempt", StampValue::Int(i64::from(entry.retry_count)));
            entry.movie = entry.movie.stamped(&[status("pending"), attempt]);
            self.pending.push(entry);
        }
        true
    }

    /// `reset_failed_movie`: a failed movie to the back of pending with a
    /// fresh record (no retry count, error or times; no `retry_attempt` or
    /// `last_failed_at`), `status: "pending"`.
    pub fn reset(&mut self, id: &str) -> bool {
        if self.place(id) != Some(Place::Failed) {
            return false;
        }
        if let Some((_, _, entry)) = self.remove(id) {
            let movie = entry.movie.stamped(&[
                status("pending"),
                ("retry_attempt", StampValue::Absent),
                ("last_failed_at", StampValue::Absent),
            ]);
            self.pending.push(QueueEntry::new(movie));
        }
        true
    }

    /// `add_to_completed` at time `stamp`: refused when already completed
    /// or removed; otherwise out of wherever it is, to the back of
    /// completed, `completed_at` (whole seconds) and `status` stamped.
    pub fn complete(&mut self, movie: Movie, stamp: f64) -> bool {
        if self.is_done(movie.id()) {
            return false;
        }
        self.remove(movie.id());
        self.completed.push(QueueEntry {
            completed_at: Some(stamp.floor()),
            ..QueueEntry::new(movie.stamped(&[status("completed")]))
        });
        true
    }

    /// `add_to_removed` at time `stamp`: refused when already removed;
    /// otherwise out of wherever it is (keeping what the queue knew of
    /// it, the movie's fields replaced by those given), to the back of
    /// removed with `removed_at` (whole seconds) and `status` stamped.
    pub fn remove_movie(&mut self, movie: Movie, stamp: f64) -> bool {
        if self.place(movie.id()) == Some(Place::Removed) {
            return false;
        }
        let mut entry = self
            .remove(movie.id())
            .map_or_else(|| QueueEntry::new(movie.clone()), |(_, _, entry)| entry);
        entry.movie = movie;
        self.push_removed(entry, stamp);
        true
    }

    fn push_removed(&mut self, mut entry: QueueEntry, stamp: f64) {
        entry.movie = entry.movie.stamped(&[status("removed")]);
        entry.removed_at = Some(stamp.floor());
        self.removed.push(entry);
    }

    /// The ids `mark_movies_as_removed(watchlist)` moves: pending, then
    /// completed, each in queue order, not on the watchlist.
    #[must_use]
    pub fn not_on_watchlist(&self, watchlist: &[String]) -> Vec<String> {
        self.pending
            .iter()
            .chain(&self.completed)
            .map(|entry| entry.id().to_owned())
            .filter(|id| !watchlist.contains(id))
            .collect()
    }

    /// `mark_movies_as_removed(watchlist)` at time `stamp`: returns how many moved.
    pub fn mark_removed(&mut self, watchlist: &[String], stamp: f64) -> usize {
        let ids = self.not_on_watchlist(watchlist);
        self.mark_ids_removed(&ids, stamp);
        ids.len()
    }

    /// A `marked_removed` event: valid when the ids are distinct and each
    /// pending or completed.
    pub fn mark_ids_removed(&mut self, ids: &[String], stamp: f64) -> bool {
        let movable = |id: &String| matches!(self.place(id), Some(Place::Pending | Place::Completed));
        if !distinct(ids) || !ids.iter().all(movable) {
            return false;
        }
        for id in ids {
            if let Some((_, _, entry)) = self.remove(id) {
                self.push_removed(entry, stamp);
            }
        }
        true
    }

    /// `restore_removed_movie`: a removed movie to the back of pending,
    /// `removed_at` dropped, `status: "pending"`.
    pub fn restore(&mut self, id: &str) -> bool {
        if self.place(id) != Some(Place::Removed) {
            return false;
        }
        if let Some((_, _, mut entry)) = self.remove(id) {
            entry.removed_at = None;
            entry.movie = entry.movie.stamped(&[status("pending")]);
            self.pending.push(entry);
        }
        true
    }

    /// `remove_from_removed_queue`: a removed movie is dropped.
    pub fn forget(&mut self, id: &str) -> bool {
        if self.place(id) != Some(Place::Removed) {
            return false;
        }
        self.remove(id);
        true
    }

    /// Removed entries with `removed_at <= now - grace_period` (missing
    /// counts as 0), in removed order.
    #[must_use]
    pub fn ready_for_deletion(&self, now: f64, grace_period: f64) -> Vec<QueueEntry> {
        let cutoff = now - grace_period;
        self.removed
            .iter()
            .filter(|entry| time_of(entry.removed_at).total_cmp(&cutoff).is_le())
            .cloned()
            .collect()
    }

    /// Ids of completed entries with `completed_at < cutoff`, in completed order.
    #[must_use]
    pub fn completed_before(&self, cutoff: f64) -> Vec<String> {
        self.completed
            .iter()
            .filter(|entry| time_of(entry.completed_at).total_cmp(&cutoff).is_lt())
            .map(|entry| entry.id().to_owned())
            .collect()
    }

    /// `cleanup_completed_before`: every completed entry before `cutoff` goes.
    pub fn cleanup_before(&mut self, cutoff: f64) -> usize {
        let ids = self.completed_before(cutoff);
        self.completed.retain(|entry| !ids.iter().any(|id| id == entry.id()));
        ids.len()
    }

    /// A `cleaned_up` event: valid when the ids are distinct, completed and
    /// each completed before `cutoff`.
    pub fn clean_up(&mut self, cutoff: f64, ids: &[String]) -> bool {
        let before = self.completed_before(cutoff);
        let valid = cutoff.is_finite() && distinct(ids) && ids.iter().all(|id| before.contains(id));
        if valid {
            self.completed.retain(|entry| !ids.iter().any(|id| id == entry.id()));
        }
        valid
    }

    /// `requeue_in_flight`: every movie in flight back to the front of
    /// pending, oldest first.
    pub fn requeue(&mut self) -> usize {
        let count = self.in_flight.len();
        let mut pending = std::mem::take(&mut self.in_flight);
        pending.append(&mut self.pending);
        self.pending = pending;
        count
    }

    /// A `requeued` event: the listed movies in flight to the front of
    /// pending, in the order given; valid when they are distinct and in flight.
    pub fn requeue_ids(&mut self, ids: &[String]) -> bool {
        let valid = distinct(ids) && ids.iter().all(|id| self.place(id) == Some(Place::InFlight));
        if valid {
            let mut front: Vec<QueueEntry> = ids
                .iter()
                .filter_map(|id| self.remove(id))
                .map(|(_, _, entry)| entry)
                .collect();
            front.append(&mut self.pending);
            self.pending = front;
        }
        valid
    }

    /// `import`: each entry whose id is not known yet joins the back of its
    /// queue (pending, failed, completed, removed), unchanged; returns how
    /// many did.
    pub fn import(&mut self, queues: [&[QueueEntry]; 4]) -> usize {
        let mut added = 0;
        let places = [Place::Pending, Place::Failed, Place::Completed, Place::Removed];
        for (place, entries) in places.into_iter().zip(queues) {
            for entry in entries {
                if self.place(entry.id()).is_none() {
                    self.queue_mut(place).push(entry.clone());
                    added += 1;
                }
            }
        }
        added
    }

    /// Applies one journal event at time `ts`, if it is valid; says whether
    /// it was (the projection must accept exactly these).
    pub fn apply(&mut self, ts: f64, event: &Event) -> bool {
        match event {
            Event::Added { movie } => self.add(movie.clone(), ts),
            Event::Taken { id } => self.pending.first().is_some_and(|entry| entry.id() == id) && self.take().is_some(),
            Event::Failed {
                movie,
                error,
                retry_after,
            } => self.fail(movie.clone(), error, *retry_after, ts),
            Event::MovedToPending { id } => self.move_back(id),
            Event::Reset { id } => self.reset(id),
            Event::Completed { movie } => self.complete(movie.clone(), ts),
            Event::CleanedUp { cutoff, ids } => self.clean_up(*cutoff, ids),
            Event::Requeued { ids } => self.requeue_ids(ids),
            Event::Imported {
                pending,
                failed,
                completed,
                removed,
            } => {
                self.import([pending, failed, completed, removed]);
                true
            }
            Event::Removed { movie } => self.remove_movie(movie.clone(), ts),
            Event::MarkedRemoved { ids } => self.mark_ids_removed(ids, ts),
            Event::Restored { id } => self.restore(id),
            Event::Forgotten { id } => self.forget(id),
        }
    }

    /// Failed entries due at `now` with fewer than `max_retries` failures,
    /// earliest `retry_after` first (ties in failed order).
    #[must_use]
    pub fn ready_for_retry(&self, now: f64, max_retries: u32) -> Vec<QueueEntry> {
        let mut ready: Vec<QueueEntry> = self
            .failed
            .iter()
            .filter(|entry| time_of(entry.retry_after).total_cmp(&now).is_le() && entry.retry_count < max_retries)
            .cloned()
            .collect();
        ready.sort_by(|a, b| time_of(a.retry_after).total_cmp(&time_of(b.retry_after)));
        ready
    }

    /// Failed entries with `retry_count >= max_retries`, in failed order.
    #[must_use]
    pub fn permanent_failures(&self, max_retries: u32) -> Vec<QueueEntry> {
        self.failed
            .iter()
            .filter(|entry| entry.retry_count >= max_retries)
            .cloned()
            .collect()
    }

    /// The counts, with permanent failures at `max_retries`.
    #[must_use]
    pub fn statistics(&self, max_retries: u32) -> Statistics {
        Statistics {
            pending: self.pending.len(),
            in_flight: self.in_flight.len(),
            failed: self.failed.len(),
            completed: self.completed.len(),
            permanent_failures: self.permanent_failures(max_retries).len(),
            removed: self.removed.len(),
        }
    }
}

fn distinct(ids: &[String]) -> bool {
    ids.iter().collect::<HashSet<_>>().len() == ids.len()
}
