//! # `movie_queue`
//!
//! A crash-safe, event-sourced work queue for the Movie Sync application:
//! the seed's Queue Manager API (`add_to_pending`, `get_next_pending`,
//! `add_to_failed`, ...) over an append-only, checksummed journal with group
//! commit, in-memory projections, and snapshots written in the application's
//! documented JSON format.
//!
//! ```no_run
//! use movie_queue::{Movie, QueueManager};
//!
//! let qm = QueueManager::open("some/dir")?;
//! qm.add_to_pending(Movie::new("1", "Movie 1", "2020"))?;
//! if let Some(movie) = qm.get_next_pending()? {
//!     qm.add_to_completed(movie)?;
//! }
//! println!("{:?}", qm.get_statistics());
//! qm.close()?;
//! # Ok::<(), movie_queue::Error>(())
//! ```
//!
//! See `docs/ARCHITECTURE.md` for the code map, `docs/DURABILITY.md` for
//! the guarantees and `docs/FORMAT.md` for the bytes on disk.
#![deny(unsafe_code)]
#![deny(missing_docs, clippy::unwrap_used)]
#![warn(clippy::pedantic)]
#![cfg_attr(test, allow(clippy::unreadable_literal))]

mod audit;
mod clock;
mod control;
mod entry;
mod error;
mod event;
mod fork;
mod journal;
mod json;
mod layout;
mod lock;
mod maintenance;
mod manager;
mod movie;
mod options;
mod projection;
mod recovery;
mod retry;
mod seq;
mod shipping;
mod snapshot;
mod storage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use crate::audit::{
    Events, JournalEnd, Replayed, SkipReason, Skipped, Until, VerifyReport, events, follow, journal_files, replay,
    verify,
};
pub use crate::clock::now;
pub use crate::control::{Control, Holder};
pub use crate::entry::QueueEntry;
pub use crate::error::{Answerable, DamageSituation, Error, RecordDefect, Refusal, Result};
pub use crate::event::{Event, EventRecord};
pub use crate::journal::identity::StoreId;
pub use crate::journal::writer::Durability;
pub use crate::layout::Layout;
pub use crate::maintenance::export_state;
pub use crate::maintenance::{CompactReport, repair, store_id};
pub use crate::manager::{GRACE_PERIOD_DEFAULT, MovieId, QueueManager, default_dir};
pub use crate::movie::{MOVIE_NESTING_MAX, Movie, Year};
pub use crate::options::Options;
pub use crate::projection::{Place, QueueState, Statistics};
pub use crate::recovery::{RepairReport, Start, holds_store};
pub use crate::retry::RetryPolicy;
pub use crate::seq::Seq;
pub use crate::shipping::{
    Restore, UNSHIPPED_KEPT_MAX, is_shipper_name, register_shipper, shippers, unregister_shipper,
};

// `QueueManager` is shared across threads as `Arc<QueueManager>`.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<QueueManager>();
};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
