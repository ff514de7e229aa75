//! The intrusive lists: one doubly linked list per place through the
//! slab's slots, so every move is `O(1)` and allocates nothing.

use super::slab::{Index, NIL, Node};
use super::{Place, QueueState};
use crate::entry::QueueEntry;

/// One place's entries as a doubly linked list through the slab.
#[derive(Debug, Clone)]
pub(super) struct List {
    pub(super) head: Index,
    pub(super) tail: Index,
    pub(super) len: usize,
    /// The key the last front insert took (the next one takes one less).
    pub(super) front_key: i64,
    /// The key the last back insert took (the next one takes one more).
    pub(super) back_key: i64,
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
pub(super) enum End {
    Front,
    Back,
}

/// Linking and walking the lists.
impl QueueState {
    /// Links a slot at one end of its node's place, with a fresh order key,
    /// and into that place's time index.
    pub(super) fn attach(&mut self, index: Index, end: End) {
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
    pub(super) fn detach(&mut self, index: Index) {
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

    pub(super) fn list(&self, place: Place) -> &List {
        &self.lists[place as usize]
    }

    /// The slots and nodes of one place, in queue order.
    pub(super) fn nodes(&self, place: Place) -> impl Iterator<Item = (Index, &Node)> {
        let mut next = self.list(place).head;
        std::iter::from_fn(move || {
            let index = next;
            let node = self.node(index)?;
            next = node.next;
            Some((index, node))
        })
    }

    pub(super) fn entries_in(&self, place: Place) -> impl Iterator<Item = QueueEntry> + '_ {
        self.nodes(place).filter_map(|(_, node)| node.entry())
    }
}
