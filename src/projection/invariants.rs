//! The invariants: the lists, the slab, the id table and the time indexes
//! agree. Checked fully by `indexes_agree`, and after every event in debug
//! builds.

use std::collections::BTreeSet;

use super::slab::{Index, NIL, Node};
use super::{Place, QueueState};
use crate::event::Event;

/// The largest state (in entries) that `apply` checks completely against its
/// indexes in debug builds; above it only the entries an event touches are
/// checked, so debug-build replay of a large journal stays linear.
pub(super) const FULL_CHECK_ENTRIES_MAX: usize = 1_024;

impl QueueState {
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

    /// Do the lists, the slab, the id table and the indexes hold the same
    /// number of entries (and the retry index no empty set)?
    pub(super) fn sizes_agree(&self) -> bool {
        let listed: usize = self.lists.iter().map(|list| list.len).sum();
        let live = self.slab.iter().filter(|slot| slot.is_some()).count();
        let retry_indexed: usize = self.retry_index.values().map(BTreeSet::len).sum();
        listed == self.by_id.len()
            && live == listed
            && live + self.free.len() == self.slab.len()
            && retry_indexed == self.failed_count()
            && self.retry_index.values().all(|by_time| !by_time.is_empty())
            && self.completed_index.len() == self.completed_count()
            && self.removed_index.len() == self.removed_count()
    }

    /// Is this node under its id, linked to its neighbours and in its
    /// place's index?
    pub(super) fn node_agrees(&self, index: Index, node: &Node) -> bool {
        let time_key = node.time_key(index);
        let indexed = match node.place {
            Place::Failed => self
                .retry_index
                .get(&node.retry_count)
                .is_some_and(|by_time| by_time.contains(&time_key)),
            Place::Completed => self.completed_index.contains(&time_key),
            Place::Removed => self.removed_index.contains(&time_key),
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
    pub(super) fn agrees_after(&self, event: &Event) -> bool {
        if self.len() <= FULL_CHECK_ENTRIES_MAX {
            return self.indexes_agree();
        }
        self.sizes_agree()
            && event
                .ids()
                .all(|id| self.find(id).is_none_or(|(index, node)| self.node_agrees(index, node)))
    }
}
