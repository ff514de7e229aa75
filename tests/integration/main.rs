//! The in-process integration tests, one binary with a module per area
//! (`crash`, `journal`, `recovery`, `seed`, ...), one scenario per test
//! function. Run one area with `cargo test --test integration recovery::`.
//!
//! Nothing here starts a child process: a fork copies every open `LOCK`
//! file of the process, holding its lock until the child execs, so another
//! test's reopen would meet `Locked`. Tests that run the command-line tool
//! or other processes are in `tests/processes/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod architecture;
mod audit;
mod control;
mod crash;
mod fuzz_regressions;
mod hostile;
mod journal;
mod legacy;
mod model;
mod recovery;
mod seed;
mod snapshot;
#[path = "../support/mod.rs"]
mod support;
