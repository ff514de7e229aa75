//! The journal: append-only, checksummed segment files, the source of truth.
//!
//! It knows bytes and sequence numbers, never events: a record's payload is
//! opaque here, and decoding it into an event happens one layer up
//! (`recovery.rs`, `audit.rs`).
//!
//! | file | its one job |
//! |---|---|
//! | `format.rs` | the bytes: segment header, record frame, CRC, limits |
//! | `segment.rs` | segment files: naming, listing, durable creation |
//! | `writer.rs` (+ `writer/`) | the handle callers hold, the one writer thread, its linger |
//! | `reader.rs` | every record checked in order (resuming after damage), opaque payloads handed on |
//! | `chain.rs` | how far valid records continue a starting point, and what lies after them |
//! | `follow.rs` | the records from a sequence number on, read incrementally as the journal grows |
//! | `repair.rs` | setting damaged bytes aside, never destroying them |
//! | `staging.rs` | a whole journal built aside and renamed into place (the legacy import) |
//! | `tail.rs` | the marker of the last segment the journal went on to |
//! | `times.rs` | the time index: each sealed segment's first and highest event time |

pub(crate) mod chain;
pub(crate) mod damage;
pub(crate) mod follow;
pub(crate) mod format;
pub(crate) mod holes;
pub(crate) mod identity;
pub(crate) mod ids;
pub(crate) mod reader;
pub(crate) mod repair;
pub(crate) mod segment;
pub(crate) mod staging;
pub(crate) mod tail;
pub(crate) mod times;
pub(crate) mod writer;
