//! Fuzz target `model_ops`: see `common/model_ops.rs` for the input format and the
//! properties checked. `tests/integration/fuzz_regressions.rs` replays the committed
//! inputs through the same code on the stable toolchain.
#![no_main]

#[path = "common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::model_ops::run(data));
