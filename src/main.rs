//! `movie-queue`: the command-line tool over the `movie_queue` library.
//! It operates, inspects, audits, replays, verifies and repairs a store,
//! and knows nothing of the on-disk format beyond the library's public API.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(clippy::pedantic)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
