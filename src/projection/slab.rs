//! The slab: every entry once, in a slot, as its compact JSON plus the
//! numbers its indexes need; and the id table, which maps an id's hash to
//! its slot and stores no id of its own.

use std::hash::BuildHasher;

use super::{Place, QueueState};
use crate::entry::{EntryFields, QueueEntry};

/// A slot of the entry slab.
pub(super) type Index = u32;

/// "No entry" in a list link.
pub(super) const NIL: Index = Index::MAX;

/// What opens an entry's compact JSON when the id follows verbatim.
const ID_PREFIX: &str = "{\"id\":\"";

/// One entry as the state keeps it: its compact JSON, where it is, the
/// numbers its indexes need, and its links in its place's list.
#[derive(Debug, Clone)]
pub(super) struct Node {
    /// The compact JSON, preceded by the id when the JSON does not hold
    /// it verbatim right after [`ID_PREFIX`] (an id with escaped characters).
    pub(super) text: Box<str>,
    /// The id's length in bytes.
    pub(super) id_len: u32,
    /// Whether the id is inside the JSON (else it precedes it).
    pub(super) id_inline: bool,
    pub(super) place: Place,
    pub(super) retry_count: u32,
    /// `retry_after` in failed, `completed_at` in completed, `removed_at`
    /// in removed (a missing one counts as 0.0); unused elsewhere.
    pub(super) index_time: f64,
    /// The order key in its place: ascending from front to back.
    pub(super) key: i64,
    pub(super) prev: Index,
    pub(super) next: Index,
}

impl Node {
    /// An entry to be placed in `place`; links and key are set by `attach`.
    /// The JSON is written into `scratch` first, so the entry's text is one
    /// allocation of exactly its size (no growing and shrinking buffers
    /// that leave holes in the heap).
    pub(super) fn new(entry: EntryFields<'_>, place: Place, scratch: &mut Vec<u8>) -> Self {
        let index_time = match place {
            Place::Failed => entry.retry_after.unwrap_or(0.0),
            Place::Completed => entry.completed_at.unwrap_or(0.0),
            Place::Removed => entry.removed_at.unwrap_or(0.0),
            Place::Pending | Place::InFlight => 0.0,
        };
        scratch.clear();
        let serialized = serde_json::to_writer(&mut *scratch, &entry);
        debug_assert!(serialized.is_ok(), "an entry always serializes");
        Node::of_text(scratch, entry.movie.id(), place, entry.retry_count, index_time)
    }

    /// An entry whose compact JSON is `json` (written by `serde_json` for
    /// an entry of `id`), to be placed in `place`.
    pub(super) fn of_text(json: &[u8], id: &str, place: Place, retry_count: u32, index_time: f64) -> Self {
        let json = std::str::from_utf8(json).unwrap_or_default();
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
            retry_count,
            index_time,
            key: 0,
            prev: NIL,
            next: NIL,
        }
    }

    pub(super) fn id(&self) -> &str {
        let start = if self.id_inline { ID_PREFIX.len() } else { 0 };
        self.text.get(start..start + self.id_len as usize).unwrap_or_default()
    }

    pub(super) fn json(&self) -> &str {
        if self.id_inline {
            &self.text
        } else {
            self.text.get(self.id_len as usize..).unwrap_or_default()
        }
    }

    /// The entry, parsed back. The JSON was written by [`Node::new`], so
    /// it parses; `None` would be a bug, never a consequence of input.
    pub(super) fn entry(&self) -> Option<QueueEntry> {
        let entry = crate::json::from_slice(self.json().as_bytes()).ok();
        debug_assert!(entry.is_some(), "stored JSON does not parse: {}", self.json());
        entry
    }
}

/// An id table entry: the entry's slot and the upper half of its id's
/// hash, so the table grows (rehashes) without reading any id, and a probe
/// reads an entry's id only when the hashes agree.
#[derive(Debug, Clone, Copy)]
pub(super) struct IdSlot {
    pub(super) index: Index,
    pub(super) hash: u32,
}

impl IdSlot {
    /// Is this the slot of `id` (whose hash is `hash`)?
    pub(super) fn holds(self, slab: &[Option<Node>], hash: u32, id: &str) -> bool {
        self.hash == hash && id_in(slab, self.index) == id
    }
}

/// The table's 64-bit hash of a stored 32-bit id hash: both its halves,
/// so the bucket (low bits) and the tag (top bits) both vary with it.
pub(super) fn table_hash(hash: u32) -> u64 {
    (u64::from(hash) << 32) | u64::from(hash)
}

/// The id of the entry in `slot` of `slab`. Every slot the id table and
/// the lists hold is live; a free one would read as the empty id, which no
/// entry has.
pub(super) fn id_in(slab: &[Option<Node>], index: Index) -> &str {
    slab.get(index as usize).and_then(Option::as_ref).map_or("", Node::id)
}

/// Slots and the id table.
impl QueueState {
    /// Puts a detached entry in a free slot of the slab and the id table.
    pub(super) fn insert(&mut self, node: Node) -> Index {
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
    pub(super) fn replace(&mut self, index: Index, node: Node) {
        debug_assert_eq!(self.node_mut(index).id(), node.id());
        *self.node_mut(index) = node;
    }

    /// Takes `id` out of its place, its index and the id table.
    pub(super) fn remove(&mut self, id: &str) {
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

    pub(super) fn node(&self, index: Index) -> Option<&Node> {
        self.slab.get(index as usize)?.as_ref()
    }

    /// The live node at `index`; the callers hold an index they just found.
    pub(super) fn node_mut(&mut self, index: Index) -> &mut Node {
        match self.slab.get_mut(index as usize) {
            Some(Some(node)) => node,
            _ => unreachable!("slot {index} is not live"),
        }
    }

    /// The upper half of `id`'s hash (see [`IdSlot`]).
    pub(super) fn id_hash(&self, id: &str) -> u32 {
        u32::try_from(self.hasher.hash_one(id) >> 32).unwrap_or_default()
    }

    /// The slot and node of `id`.
    pub(super) fn find(&self, id: &str) -> Option<(Index, &Node)> {
        let hash = self.id_hash(id);
        let index = self
            .by_id
            .find(table_hash(hash), |slot| slot.holds(&self.slab, hash, id))?
            .index;
        Some((index, self.node(index)?))
    }

    /// How many entries the state holds.
    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }
}
