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

pub mod audit;
pub mod error;
pub mod event;
pub mod maintenance;
pub mod manager;
pub mod movie;
pub mod options;
pub mod projection;
pub mod record;
pub mod recovery;
pub mod retry;
pub mod segment;
pub mod snapshot;
pub mod storage;
pub mod store;
pub mod writer;

pub use audit::{Until, VerifyReport, verify};
pub use error::{Error, Result};
pub use event::{Event, EventRecord, QueueEntry, Seq};
pub use maintenance::{CompactReport, repair};
pub use manager::{MovieId, QueueManager, Statistics};
pub use movie::{Movie, Year};
pub use options::Options;
pub use projection::{ApplyError, Place, QueueState};
pub use recovery::RepairReport;
pub use retry::RetryPolicy;
pub use writer::Durability;
