//! The code each fuzz target runs, shared with the stable-toolchain replay
//! test `tests/integration/fuzz_regressions.rs` (which includes this directory with
//! `#[path]`), so a committed input is checked by exactly the code that
//! found it.
//!
//! Only `movie_queue`, `serde_json` and `tempfile` are used here: those are
//! dependencies (or dev-dependencies) of the main crate, so the replay test
//! builds on stable without touching the main `Cargo.toml`. Inputs are
//! decoded by the small [`bytes::Cursor`] instead of `arbitrary` for the
//! same reason.
#![allow(dead_code, reason = "each fuzz target uses one of these modules")]

pub mod bytes;
pub mod memory;
pub mod model_ops;
pub mod movie_round_trip;
pub mod record_decoder;
pub mod recovery_dir;
pub mod snapshot_loader;
