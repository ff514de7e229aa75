//! The library's integration tests that start processes: `kill -9` of a
//! child writer (`kill9`), a second process meeting the lock (`store`), and
//! `chattr` for the permission cases (`permissions`), and the memory guard
//! (`memory`: a fresh process opening a store, its RSS measured). The tests that run
//! the `movie-queue` binary are the tool's, in `tool/tests/cli/`. Kept apart from `tests/integration/` because a fork
//! lends every open `LOCK` of the process to the child until it execs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kill9;
mod memory;
mod permissions;
mod store;
#[path = "../support/mod.rs"]
mod support;
