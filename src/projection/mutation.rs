//! Mutation: what each accepted event changes. Runs only after `check`
//! passed, so nothing here can fail.

use super::lists::End;
use super::slab::{Index, Node};
use super::{ApplyError, Place, QueueState};
use crate::entry::{EntryFields, QueueEntry};
use crate::event::Event;
use crate::movie::Movie;

impl QueueState {
    pub(super) fn mutate(&mut self, ts: f64, event: &Event) {
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
}
