//! The tool's tests: each runs the `movie-queue` binary the way a user or a
//! script does (one module per area), plus the two that race the binary
//! against a writer in another process: `log --follow` beside a writer
//! killed with `kill -9` (`follow_kill9`) and readers beside a writer
//! (`readers`). The library's own tests are in the repository's `tests/`;
//! the helpers they share are included from `tests/support/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actions;
mod add_and_take;
mod browser;
mod control;
mod demo;
mod durable_success;
mod errors;
mod escaping;
mod fail_retry;
mod follow;
mod follow_kill9;
mod full_disk;
mod help_and_messages;
mod inspect;
mod maintenance;
mod out_dir;
mod progress;
mod readers;
mod readme;
mod removed;
mod replay;
mod serve;
mod serve_bounds;
mod serve_changes;
mod serve_memory;
#[cfg(feature = "nats")]
mod ship;
mod special_files;
mod time_limits;
mod verify_repair;
mod wording;

/// The library's test helpers, plus the two that start the binary.
mod support {
    pub use crate::shared::*;
    pub mod cli;
    pub mod http;
    #[cfg(feature = "nats")]
    pub mod nats;
}
#[path = "../../../tests/support/mod.rs"]
mod shared;
