//! Fuzz target `record_decoder`: see `common/record_decoder.rs` for the input format and the
//! properties checked. `tests/integration/fuzz_regressions.rs` replays the committed
//! inputs through the same code on the stable toolchain.
#![no_main]

#[path = "common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::record_decoder::run(data));
