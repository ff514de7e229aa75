//! Fuzz target `movie_round_trip`: see `common/movie_round_trip.rs` for the input format
//! and the properties checked. `tests/integration/fuzz_regressions.rs` replays the
//! committed inputs through the same code on the stable toolchain.
#![no_main]

#[path = "common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::movie_round_trip::run(data));
