//! Flat per-operation cost: µs per `add_to_pending` + `get_next_pending`
//! pair (Batched, 5 ms: fsync is not the measure; automatic snapshots off)
//! with 1,000 and with 100,000 movies already queued. Each pair adds a new
//! movie at the back and takes the front one, so pending keeps its size;
//! every 1,000 pairs the clock stops while the taken movies are completed
//! and cleaned up, so in flight and completed stay small too.
//!
//! Reference line: the seed's design, which rewrites a JSON array file of
//! the whole pending queue per change (pretty-printed, written to `.tmp`
//! and renamed, no fsync, as the seed documents), at 1,000 and 10,000.
//!
//! Target (issue 6): the 100,000 figure ≤ 1.5× the 1,000 figure.
//! Run: `cargo bench --bench flat_cost`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use movie_queue::{Movie, QueueEntry, QueueManager};

const GROUP: &str = "flat_cost";
/// Pairs timed in one go before the untimed clean-up.
const CHUNK_PAIRS: u64 = 1_000;

fn prefilled(dir: &Path, queued: u64) -> QueueManager {
    let manager = common::options(common::batched()).open(dir).expect("open");
    let added = manager
        .add_many_to_pending((0..queued).map(common::movie))
        .expect("prefill");
    assert_eq!(added as u64, queued);
    manager.flush().expect("flush");
    manager
}

/// The timed part: `pairs` × (add a new movie, take the front one).
/// Not inlined, so a profiler can attribute samples to it alone.
#[inline(never)]
fn timed_pairs(manager: &QueueManager, next: &mut u64, pairs: u64) -> Vec<Movie> {
    let mut taken = Vec::with_capacity(pairs as usize);
    for _ in 0..pairs {
        assert!(manager.add_to_pending(common::movie(*next)).expect("add"));
        *next += 1;
        taken.push(manager.get_next_pending().expect("take").expect("pending"));
    }
    taken
}

/// Untimed: the movies taken are completed and cleaned up, so neither the
/// in-flight nor the completed set grows with the number of iterations.
fn clear_in_flight(manager: &QueueManager, taken: Vec<Movie>) {
    for movie in taken {
        assert!(manager.add_to_completed(movie).expect("complete"));
    }
    manager
        .cleanup_completed_before(common::unix_now() + 1e6)
        .expect("cleanup");
}

fn movie_queue(criterion: &mut Criterion, sizes: &[u64]) {
    let mut group = criterion.benchmark_group(GROUP);
    group
        .throughput(Throughput::Elements(1))
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for &queued in sizes {
        group.bench_function(BenchmarkId::new("add_take", queued), |bencher| {
            let dir = common::scratch_dir();
            let manager = prefilled(dir.path(), queued);
            let mut next = queued;
            bencher.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                let mut left = iterations;
                while left > 0 {
                    let chunk = left.min(CHUNK_PAIRS);
                    let start = Instant::now();
                    let taken = timed_pairs(&manager, &mut next, chunk);
                    total += start.elapsed();
                    clear_in_flight(&manager, taken);
                    left -= chunk;
                }
                total
            });
        });
    }
    group.finish();
}

/// The seed's persistence: the whole queue rewritten per change.
fn rewrite(path: &Path, queue: &[serde_json::Value]) {
    let temporary = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(queue).expect("serialize");
    std::fs::write(&temporary, bytes).expect("write");
    std::fs::rename(&temporary, path).expect("rename");
}

fn seed_design(criterion: &mut Criterion, sizes: &[u64]) {
    let mut group = criterion.benchmark_group(GROUP);
    group
        .throughput(Throughput::Elements(1))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for &queued in sizes {
        group.bench_function(BenchmarkId::new("seed_json_rewrite", queued), |bencher| {
            let dir = common::scratch_dir();
            let path = dir.path().join("queue_pending.json");
            let mut queue: std::collections::VecDeque<serde_json::Value> = (0..queued)
                .map(|number| QueueEntry::new(common::movie(number)).to_value())
                .collect();
            let mut next = queued;
            bencher.iter(|| {
                queue.push_back(QueueEntry::new(common::movie(next)).to_value());
                next += 1;
                rewrite(&path, queue.make_contiguous());
                assert!(queue.pop_front().is_some());
                rewrite(&path, queue.make_contiguous());
            });
        });
    }
    group.finish();
}

fn main() {
    let small = common::size(1_000, 100) as u64;
    let large = common::size(100_000, 1_000) as u64;
    let seed_large = common::size(10_000, 200) as u64;
    let mut criterion = common::criterion();
    movie_queue(&mut criterion, &[small, large]);
    seed_design(&mut criterion, &[small, seed_large]);
    criterion.final_summary();
    let micros = |function: &str, queued: u64| {
        common::median_ns(GROUP, &format!("{function}/{queued}")).map(|nanos| nanos / 1e3)
    };
    for (function, queued) in [
        ("add_take", small),
        ("add_take", large),
        ("seed_json_rewrite", small),
        ("seed_json_rewrite", seed_large),
    ] {
        common::print_figure(
            &format!("{function} with {queued} queued"),
            micros(function, queued),
            "µs/pair",
        );
    }
    common::print_ratio(
        &format!("add_take {large} / add_take {small}"),
        micros("add_take", large)
            .zip(micros("add_take", small))
            .map(|(large, small)| large / small),
        "<= 1.5",
        |ratio| ratio <= 1.5,
    );
}
