//! The one reference model of the queue, shared by the projection's unit
//! tests, the model test of `QueueManager` and the `model_ops` fuzz target.
//!
//! It is written from the seed and the spec with four plain `Vec`s and
//! linear searches; it uses nothing of the projection it checks. Each
//! operation says whether it was accepted, exactly as the store's call
//! returns; refused operations change nothing.

use std::collections::HashSet;

use crate::entry::QueueEntry;
use crate::event::Event;
use crate::movie::Movie;
use crate::projection::{Place, Statistics};

/// The four queues as plain lists, front first.
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
}

/// `retry_after` or `completed_at` as an index key: a missing time counts as 0.
fn time_of(time: Option<f64>) -> f64 {
    time.unwrap_or(0.0)
}

impl ReferenceModel {
    /// An empty queue.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The four queues with their places, in [`Place::ALL`] order.
    #[must_use]
    pub fn queues(&self) -> [(Place, &Vec<QueueEntry>); 4] {
        [
            (Place::Pending, &self.pending),
            (Place::InFlight, &self.in_flight),
            (Place::Failed, &self.failed),
            (Place::Completed, &self.completed),
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
        }
    }

    fn queue_mut(&mut self, place: Place) -> &mut Vec<QueueEntry> {
        match place {
            Place::Pending => &mut self.pending,
            Place::InFlight => &mut self.in_flight,
            Place::Failed => &mut self.failed,
            Place::Completed => &mut self.completed,
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

    /// `add_to_pending`: refused for any id already known.
    pub fn add(&mut self, movie: Movie) -> bool {
        if self.place(movie.id()).is_some() {
            return false;
        }
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

    /// `add_to_failed` at time `stamp`: refused for a completed movie and a
    /// non-finite `retry_after`. `retry_count` goes up by one, `failed_at`
    /// is set on the first failure only, a failed movie keeps its place in
    /// failed and any other joins the back.
    pub fn fail(&mut self, movie: Movie, error: &str, retry_after: f64, stamp: f64) -> bool {
        if self.place(movie.id()) == Some(Place::Completed) || !retry_after.is_finite() {
            return false;
        }
        let old = self.remove(movie.id());
        let entry = QueueEntry {
            retry_count: old.as_ref().map_or(1, |(_, _, entry)| entry.retry_count + 1),
            last_error: Some(error.to_owned()),
            retry_after: Some(retry_after),
            failed_at: old.as_ref().and_then(|(_, _, entry)| entry.failed_at).or(Some(stamp)),
            completed_at: None,
            movie,
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

    /// `move_failed_to_pending`: a failed movie to the back of pending, as it is.
    pub fn move_back(&mut self, id: &str) -> bool {
        if self.place(id) != Some(Place::Failed) {
            return false;
        }
        if let Some((_, _, entry)) = self.remove(id) {
            self.pending.push(entry);
        }
        true
    }

    /// `reset_failed_movie`: a failed movie to the back of pending with a
    /// fresh record (no retry count, error or times).
    pub fn reset(&mut self, id: &str) -> bool {
        if self.place(id) != Some(Place::Failed) {
            return false;
        }
        if let Some((_, _, entry)) = self.remove(id) {
            self.pending.push(QueueEntry::new(entry.movie));
        }
        true
    }

    /// `add_to_completed` at time `stamp`: refused when already completed;
    /// otherwise out of wherever it is, to the back of completed.
    pub fn complete(&mut self, movie: Movie, stamp: f64) -> bool {
        if self.place(movie.id()) == Some(Place::Completed) {
            return false;
        }
        self.remove(movie.id());
        self.completed.push(QueueEntry {
            completed_at: Some(stamp),
            ..QueueEntry::new(movie)
        });
        true
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
    /// queue, unchanged; returns how many did.
    pub fn import(&mut self, pending: &[QueueEntry], failed: &[QueueEntry], completed: &[QueueEntry]) -> usize {
        let mut added = 0;
        for (place, entries) in [
            (Place::Pending, pending),
            (Place::Failed, failed),
            (Place::Completed, completed),
        ] {
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
            Event::Added { movie } => self.add(movie.clone()),
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
            } => {
                self.import(pending, failed, completed);
                true
            }
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
        }
    }
}

fn distinct(ids: &[String]) -> bool {
    ids.iter().collect::<HashSet<_>>().len() == ids.len()
}
