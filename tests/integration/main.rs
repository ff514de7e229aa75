//! The integration tests, one binary with a module per area (`cli`,
//! `crash`, `journal`, `recovery`, `seed`, ...), one scenario per test
//! function. Run one area with `cargo test --test integration recovery::`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod cli;
mod crash;
mod fuzz_regressions;
mod journal;
mod kill9;
mod legacy;
mod model;
mod recovery;
mod seed;
mod snapshot;
mod store;
mod support;
