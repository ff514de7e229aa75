//! Audit and replay: one movie's history, the events from a sequence
//! number, the state as of a record or a time, and `verify`, over a store
//! directory as it is on disk (the manager flushes first). All of it reads
//! the journal; none of it writes.
//!
//! | file | its one job |
//! |---|---|
//! | `replay.rs` | the state as of a record, from the best checkpoint and the prefix only |
//! | `stream.rs` | the events from a sequence number on, lazily, to the end or following the writer |
//! | `time.rs` | a time target turned into the last record stamped at or before it |
//! | `verify.rs` | the store checked as an open would, changing nothing |

use std::path::Path;

pub(crate) mod lean;
mod replay;
mod stream;
mod time;
mod verify;

#[cfg(any(test, feature = "testing"))]
pub use self::lean::{lean_list, lean_lookup, lean_statistics};
pub use self::lean::{list, lookup, statistics};
#[cfg(any(test, feature = "testing"))]
pub use self::replay::full_replay;
pub use self::replay::{Replayed, replay, replay_with};
pub use self::stream::{Events, JournalEnd, SkipReason, Skipped, events, follow};
#[cfg(any(test, feature = "testing"))]
pub use self::time::time_target;
pub use self::verify::{VerifyReport, verify, verify_with};
use crate::layout::Layout;
pub use crate::seq::Until;
use crate::storage::{Entry, RealStorage, Storage};

/// The journal's files (segments and what lies beside them) and their
/// sizes, sorted by name: what changes when the journal does.
#[must_use]
pub fn journal_files(dir: &Path) -> Vec<(String, u64)> {
    let storage = RealStorage;
    let journal = Layout::new(dir).journal();
    let mut files: Vec<(String, u64)> = storage
        .list_dir(&journal)
        .unwrap_or_default()
        .into_iter()
        .map(|name| {
            let size = match storage.entry(&journal.join(&name)) {
                Ok(Entry::File(size)) => size,
                _ => 0,
            };
            (name, size)
        })
        .collect();
    files.sort();
    files
}
