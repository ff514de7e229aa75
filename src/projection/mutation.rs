//! Mutation: what each accepted event changes, by the rules of its schema
//! version (`stamps.rs`). Runs only after `check` passed, so nothing here
//! can fail.

use super::lists::End;
use super::rewrite;
use super::slab::{Index, Node};
use super::stamps::Stamping;
use super::{ApplyError, Place, QueueState};
use crate::entry::{EntryFields, QueueEntry};
use crate::event::Event;
use crate::movie::{Movie, Stamp};

impl QueueState {
    pub(super) fn mutate(&mut self, version: u32, ts: f64, event: &Event) {
        let stamping = Stamping::new(version, ts);
        match event {
            Event::Added { movie } => {
                let stamps = stamping.added();
                let entry = EntryFields {
                    stamps: &stamps,
                    ..EntryFields::fresh(movie)
                };
                let node = Node::new(entry, Place::Pending, &mut self.scratch);
                let index = self.insert(node);
                self.attach(index, End::Back);
            }
            // `check` accepted it, so it names the front of pending; a
            // partial state knows only that it is pending, and finds it.
            Event::Taken { id } if self.partial => self.relocate(id, Place::InFlight, End::Back),
            Event::Taken { .. } => self.move_to(self.list(Place::Pending).head, Place::InFlight, End::Back),
            Event::Failed {
                movie,
                error,
                retry_after,
            } => self.fail(stamping, movie, error, *retry_after),
            Event::MovedToPending { id } => self.move_back(stamping, id),
            Event::Reset { id } => self.reset(stamping, id),
            Event::Completed { movie } => {
                let stamps = stamping.completed();
                let entry = EntryFields {
                    completed_at: Some(stamping.completed_at()),
                    stamps: &stamps,
                    ..EntryFields::fresh(movie)
                };
                let node = Node::new(entry, Place::Completed, &mut self.scratch);
                self.place_back(movie.id(), node);
            }
            Event::CleanedUp { ids, .. } => ids.iter().for_each(|id| self.remove(id)),
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
                removed,
            } => {
                self.import(Place::Pending, pending);
                self.import(Place::Failed, failed);
                self.import(Place::Completed, completed);
                self.import(Place::Removed, removed);
            }
            Event::Removed { movie } => self.move_to_removed(stamping, movie.id(), Some(movie)),
            Event::MarkedRemoved { ids } => ids.iter().for_each(|id| self.move_to_removed(stamping, id, None)),
            Event::Restored { id } => self.restore(id),
            Event::Forgotten { id } => self.remove(id),
        }
    }

    /// The `Failed` event: a failure from anywhere but completed. A failed
    /// entry is updated where it stands; any other joins the back of failed.
    fn fail(&mut self, stamping: Stamping, movie: &Movie, error: &str, retry_after: f64) {
        let old = self
            .find(movie.id())
            .map(|(index, node)| (index, node.place, node.retry_count));
        // Only `failed_at` is wanted: read from the text, not parsed whole.
        let first_failed_at = old
            .and_then(|(index, _, _)| self.node(index))
            .and_then(|node| rewrite::number_field(node.json(), "failed_at"));
        let stamps = stamping.failed();
        let entry = EntryFields {
            retry_count: old.map_or(0, |(_, _, count)| count).saturating_add(1),
            last_error: Some(error),
            retry_after: Some(retry_after),
            failed_at: first_failed_at.or(Some(stamping.ts())),
            stamps: &stamps,
            ..EntryFields::fresh(movie)
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
            _ => self.place_back(movie.id(), node),
        }
    }

    /// `moved_to_pending`: a failed entry to the back of pending, its
    /// retry fields kept (and, in version 2, `retry_attempt` stamped).
    fn move_back(&mut self, stamping: Stamping, id: &str) {
        // The stamps are rewritten in the entry's text: no parse of it.
        let mut scratch = std::mem::take(&mut self.scratch);
        let found = self.find(id).map(|(index, node)| {
            let retry_count = node.retry_count;
            let stamps = stamping.moved_to_pending(retry_count);
            let restamped = (!stamps.is_empty()).then(|| {
                rewrite::restamped(node.json(), &stamps, &mut scratch);
                Node::of_text(&scratch, id, Place::Pending, retry_count, 0.0)
            });
            (index, restamped)
        });
        self.scratch = scratch;
        match found {
            Some((index, None)) => self.move_to(index, Place::Pending, End::Back),
            Some((index, Some(node))) => {
                self.detach(index);
                self.replace(index, node);
                self.attach(index, End::Back);
            }
            None => {}
        }
    }

    /// `reset`: a failed entry to the back of pending as a fresh record.
    fn reset(&mut self, stamping: Stamping, id: &str) {
        let Some(entry) = self.find(id).and_then(|(_, node)| node.entry()) else {
            return;
        };
        let stamps = stamping.reset();
        let fresh = QueueEntry::new(entry.movie);
        if let Some((index, _)) = self.find(id) {
            self.restamp(index, &fresh, Place::Pending, &stamps, |fields| fields);
        }
    }

    /// `removed` / `marked_removed`: from wherever `id` is (or nowhere,
    /// with `movie` given) to the back of removed, keeping what the queue
    /// knew of it, `removed_at` stamped; a `movie` given replaces its fields.
    fn move_to_removed(&mut self, stamping: Stamping, id: &str, movie: Option<&Movie>) {
        let stamps = Stamping::removed();
        let old = self.find(id).and_then(|(index, node)| Some((index, node.entry()?)));
        let mut entry = match (&old, movie) {
            (Some((_, entry)), _) => entry.clone(),
            (None, Some(movie)) => QueueEntry::new(movie.clone()),
            // `check` accepted it: an id without a movie is known.
            (None, None) => return,
        };
        if let Some(movie) = movie {
            entry.movie = movie.clone();
        }
        entry.removed_at = Some(stamping.removed_at());
        if let Some((index, _)) = old {
            self.restamp(index, &entry, Place::Removed, &stamps, |fields| fields);
        } else {
            let fields = EntryFields {
                stamps: &stamps,
                ..entry.fields()
            };
            let node = Node::new(fields, Place::Removed, &mut self.scratch);
            let index = self.insert(node);
            self.attach(index, End::Back);
        }
    }

    /// `restored`: a removed entry to the back of pending, `removed_at` dropped.
    fn restore(&mut self, id: &str) {
        let Some((index, node)) = self.find(id) else { return };
        if let Some(entry) = node.entry() {
            let stamps = Stamping::restored();
            self.restamp(index, &entry, Place::Pending, &stamps, |fields| EntryFields {
                removed_at: None,
                ..fields
            });
        }
    }

    /// Rewrites the entry in slot `index` from `entry` (its fields adjusted
    /// by `adjust`, `stamps` applied) and moves it to the back of `place`.
    fn restamp(
        &mut self,
        index: Index,
        entry: &QueueEntry,
        place: Place,
        stamps: &[Stamp],
        adjust: impl FnOnce(EntryFields<'_>) -> EntryFields<'_>,
    ) {
        let fields = adjust(EntryFields {
            stamps,
            ..entry.fields()
        });
        let node = Node::new(fields, place, &mut self.scratch);
        self.detach(index);
        self.replace(index, node);
        self.attach(index, End::Back);
    }

    /// Puts `node` (the entry of `id`) at the back of its place: in the
    /// slot `id` has (taken out of its old place), or a new one.
    fn place_back(&mut self, id: &str, node: Node) {
        let index = match self.find(id).map(|(index, _)| index) {
            Some(index) => {
                self.detach(index);
                self.replace(index, node);
                index
            }
            None => self.insert(node),
        };
        self.attach(index, End::Back);
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
            return Err(already_listed(entry.id()));
        }
        let node = Node::new(entry.fields(), place, &mut self.scratch);
        let index = self.insert(node);
        self.attach(index, End::Back);
        Ok(())
    }

    /// An entry made ready for `place` apart from any state (its compact
    /// JSON written, the numbers its indexes need read): what a loader
    /// prepares on a thread of its own, then hands to
    /// [`QueueState::push_prepared`] in order.
    pub(crate) fn prepare(entry: &QueueEntry, place: Place, scratch: &mut Vec<u8>) -> Prepared {
        Prepared(Node::new(entry.fields(), place, scratch))
    }

    /// Appends a prepared entry to the back of `place` (its own place, or
    /// in flight for one prepared as pending: they keep no index time), as
    /// [`QueueState::push_new`] does.
    pub(crate) fn push_prepared(&mut self, prepared: Prepared, place: Place) -> Result<(), ApplyError> {
        let mut node = prepared.0;
        debug_assert!(
            node.place == place || matches!((node.place, place), (Place::Pending, Place::InFlight)),
            "prepared for the place it goes to"
        );
        if self.find(node.id()).is_some() {
            return Err(already_listed(node.id()));
        }
        node.place = place;
        let index = self.insert(node);
        self.attach(index, End::Back);
        Ok(())
    }

    /// Moves the pending entry `id` unchanged to the front of pending (a
    /// partial state placing what it loads).
    pub(crate) fn move_to_front_of_pending(&mut self, id: &str) {
        if self.place(id) == Some(Place::Pending) {
            self.relocate(id, Place::Pending, End::Front);
        }
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

/// An entry prepared by [`QueueState::prepare`], not yet in a state.
#[derive(Debug)]
pub(crate) struct Prepared(Node);

/// The refusal of an entry whose id a state being loaded already holds.
fn already_listed(id: &str) -> ApplyError {
    ApplyError(format!("{id:?} is already listed"))
}
