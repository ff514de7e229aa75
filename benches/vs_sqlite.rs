//! movie-queue against SQLite (rusqlite, WAL) on the same lifecycle
//! workload, defined identically for both in `lifecycle/mod.rs` (add,
//! take, complete or fail, retry; 3.9 writing operations per movie).
//!
//! Targets (issue 6): movie-queue `Immediate` with 8 threads ≥ 5× SQLite
//! `synchronous=FULL` with 8 threads; movie-queue `Batched { 5 ms }` single
//! threaded ≥ 20× SQLite `synchronous=NORMAL` single threaded.
//! Run: `cargo bench --bench vs_sqlite`.

mod common;
mod lifecycle;

use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use lifecycle::MakeSubject;
use movie_queue::Durability;

const GROUP: &str = "vs_sqlite";

// ----- the benches -------------------------------------------------------

fn bench_pair(criterion: &mut Criterion, movies: u64, threads: usize, pair: [(&str, &MakeSubject); 2]) {
    let mut group = criterion.benchmark_group(GROUP);
    group
        .throughput(Throughput::Elements(movies))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(8));
    for (name, make) in pair {
        group.bench_function(name, |bencher| {
            bencher.iter_custom(|iterations| lifecycle::timed_runs(make, movies, threads, iterations));
        });
    }
    group.finish();
}

fn print_ratios(movies_8: usize, movies_1: usize) {
    let median = |function| common::median_ns(GROUP, function);
    let rate = |function, movies: usize| median(function).map(|nanos| movies as f64 * 1e9 / nanos);
    common::print_figure(
        "movie-queue Immediate, 8 threads",
        rate("movie_queue_immediate_8_threads", movies_8),
        "movies/s",
    );
    common::print_figure(
        "SQLite FULL, 8 threads",
        rate("sqlite_full_8_threads", movies_8),
        "movies/s",
    );
    common::print_figure(
        "movie-queue Batched, 1 thread",
        rate("movie_queue_batched_1_thread", movies_1),
        "movies/s",
    );
    common::print_figure(
        "SQLite NORMAL, 1 thread",
        rate("sqlite_normal_1_thread", movies_1),
        "movies/s",
    );
    let ratio = |slow, fast| median(slow).zip(median(fast)).map(|(slow, fast)| slow / fast);
    common::print_ratio(
        "SQLite FULL 8 threads time / movie-queue Immediate 8 threads time",
        ratio("sqlite_full_8_threads", "movie_queue_immediate_8_threads"),
        ">= 5",
        |ratio| ratio >= 5.0,
    );
    common::print_ratio(
        "SQLite NORMAL 1 thread time / movie-queue Batched 1 thread time",
        ratio("sqlite_normal_1_thread", "movie_queue_batched_1_thread"),
        ">= 20",
        |ratio| ratio >= 20.0,
    );
}

fn main() {
    let movies_8 = common::size(1_000, 40);
    let movies_1 = common::size(2_000, 40);
    let mut criterion = common::criterion();
    let immediate = lifecycle::make_movie_queue(Durability::Immediate);
    let full = lifecycle::make_sqlite("FULL");
    let batched = lifecycle::make_movie_queue(common::batched());
    let normal = lifecycle::make_sqlite("NORMAL");
    bench_pair(
        &mut criterion,
        movies_8 as u64,
        8,
        [
            ("movie_queue_immediate_8_threads", &immediate),
            ("sqlite_full_8_threads", &full),
        ],
    );
    bench_pair(
        &mut criterion,
        movies_1 as u64,
        1,
        [
            ("movie_queue_batched_1_thread", &batched),
            ("sqlite_normal_1_thread", &normal),
        ],
    );
    criterion.final_summary();
    print_ratios(movies_8, movies_1);
}
