//! Test seams, behind the `testing` cargo feature: for this crate's own
//! integration tests, benches and fuzz targets. Not part of the stable API.
//!
//! * the file-system seam and the fault-injecting storage;
//! * the journal's byte format, to build and damage segments by hand;
//! * the names of the store's files;
//! * the lower-level entry points the durability tests drive directly;
//! * [`ReferenceModel`], the one reference model of the queue.

mod model;

pub use self::model::ReferenceModel;
#[cfg(test)]
pub(crate) use self::model::Stamped;
pub use crate::audit::{full_replay, replay_with, time_target, verify_with};
pub use crate::audit::{lean_list, lean_lookup, lean_statistics};
pub use crate::event::{decode_payload, encode_payload};
pub use crate::journal::chain::{Chain, ChainEnd};
pub use crate::journal::format::{
    HeaderDefect, RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX, RecordDefect, Resync, SEGMENT_HEADER_BYTES,
    decode_record, decode_segment_header, encode_record, encode_segment_header, valid_record_follows,
};
pub use crate::journal::reader::{JournalScan, scan as scan_journal};
pub use crate::journal::segment::list_segments;
pub use crate::journal::tail::write as write_tail;
pub use crate::journal::writer::{JournalEnd, JournalWriter, WriterConfig};
pub use crate::layout::{
    BASE_FILE, COMPLETED_FILE, FAILED_FILE, INDEX_FILE, JOURNAL_DIR, LOCK_FILE, MANIFEST_FILE, PENDING_FILE,
    QUEUE_FILES, REMOVED_FILE, TAIL_FILE, TIMES_FILE, parse_segment_name, segment_name,
};
pub use crate::maintenance::repair_with;
pub use crate::recovery::replay_events;
pub use crate::seq::SEQ_MAX;
pub use crate::snapshot::SnapshotData;
pub use crate::snapshot::base::write_base;
pub use crate::snapshot::files::{parse_entries, parse_entries_prefix, render_files};
pub use crate::snapshot::legacy::load_legacy;
pub use crate::snapshot::manifest::{load_snapshot, renders_as_files, write_files, write_snapshot};
pub use crate::storage::{
    Entry, Fault, FaultyStorage, PowerLoss, ReadableFile, RealStorage, Storage, WritableFile, write_atomic,
};
