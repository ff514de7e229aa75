//! Fuzz target `snapshot_loader`: see `common/snapshot_loader.rs` for the input format and the
//! properties checked. `tests/integration/fuzz_regressions.rs` replays the committed
//! inputs through the same code on the stable toolchain.
#![no_main]

#[path = "common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::snapshot_loader::run(data));
