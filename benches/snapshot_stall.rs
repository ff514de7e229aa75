//! Snapshot stall: with 100,000 pending entries, how long does a writer's
//! `add_to_pending` (Batched, 5 ms) wait while a snapshot is written?
//!
//! Both snapshot paths (automatic, every N events, on a background
//! thread; explicit, `QueueManager::snapshot()`, on the caller's thread)
//! take the state's lock only to read the sequence number; the snapshot
//! itself flushes the journal, rebuilds the state as of that number from
//! disk (previous snapshot + journal) and writes the files.
//!
//! Criterion times `explicit_snapshot_100k` (a whole snapshot: the
//! snapshot's duration) and `write_snapshot_100k` (only rendering and
//! writing the three documented files + manifest with their fsyncs and
//! renames, from a state in memory). Then, outside criterion, an adder
//! thread calls `add_to_pending` every ~100 µs for a few seconds, recording
//! each call's latency, while snapshots happen:
//! * *automatic*: `snapshot_every_events(5_000)`, so several background
//!   snapshots start during each round (3 rounds);
//! * *explicit*: the main thread calls `snapshot()` once mid-round.
//!
//! Target (issue 6): the worst latency of the automatic path < 10% of the
//! snapshot's duration. Run: `cargo bench --bench snapshot_stall`.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use movie_queue::QueueManager;
use movie_queue::testing::RealStorage;
use movie_queue::testing::{MANIFEST_FILE, write_snapshot};

const GROUP: &str = "snapshot_stall";
const AUTOMATIC_EVERY_EVENTS: u64 = 5_000;

fn prefill(dir: &Path, entries: u64) {
    let manager = common::options(common::batched()).open(dir).expect("open");
    let added = manager
        .add_many_to_pending((0..entries).map(common::movie))
        .expect("prefill");
    assert_eq!(added as u64, entries);
    manager.close().expect("close");
}

fn pieces(criterion: &mut Criterion, dir: &Path) {
    let manager = common::options(common::batched()).open(dir).expect("open");
    let state = manager.state();
    let seq = manager.last_seq();
    let mut group = criterion.benchmark_group(GROUP);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(8));
    group.bench_function("write_snapshot_100k", |bencher| {
        let scratch = common::scratch_dir();
        bencher.iter(|| write_snapshot(&RealStorage, scratch.path(), &state, seq).expect("write"));
    });
    group.bench_function("explicit_snapshot_100k", |bencher| {
        bencher.iter(|| manager.snapshot().expect("snapshot"));
    });
    group.finish();
}

/// Latencies of one round, sorted.
struct Round {
    latencies: Vec<Duration>,
    snapshots: usize,
}

impl Round {
    fn quantile(&self, quantile: f64) -> Duration {
        let index = ((self.latencies.len() - 1) as f64 * quantile).round() as usize;
        self.latencies[index]
    }
    fn worst(&self) -> Duration {
        *self.latencies.last().expect("latencies")
    }
}

fn manifest_seq(dir: &Path) -> Option<u64> {
    let bytes = std::fs::read(dir.join(MANIFEST_FILE)).ok()?;
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    manifest.get("seq")?.as_u64()
}

/// Adds movies every ~100 µs for `length`, timing each call, while
/// `during` runs on the calling thread. Counts the snapshots that
/// completed (manifest changes seen by a poller).
fn round(manager: &QueueManager, first: u64, length: Duration, during: impl FnOnce()) -> Round {
    let stop = AtomicBool::new(false);
    let mut snapshots = 0;
    let latencies = std::thread::scope(|scope| {
        let adder = scope.spawn(|| {
            let mut latencies = Vec::with_capacity(50_000);
            let start = Instant::now();
            let mut number = first;
            while start.elapsed() < length {
                let movie = common::movie(number);
                number += 1;
                let before = Instant::now();
                assert!(manager.add_to_pending(movie).expect("add"));
                latencies.push(before.elapsed());
                std::thread::sleep(Duration::from_micros(100));
            }
            latencies
        });
        let poller = scope.spawn(|| {
            let mut seen = manifest_seq(manager.dir());
            let mut changes = 0;
            while !stop.load(Ordering::Relaxed) {
                let now = manifest_seq(manager.dir());
                if now != seen {
                    changes += 1;
                    seen = now;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            changes
        });
        during();
        let latencies = adder.join().expect("adder");
        stop.store(true, Ordering::Relaxed);
        snapshots = poller.join().expect("poller");
        latencies
    });
    let mut latencies = latencies;
    latencies.sort_unstable();
    Round { latencies, snapshots }
}

fn print_round(name: &str, round: &Round) {
    eprintln!(
        "ROUND {name}: {} adds, {} snapshots completed, p50 {:?}, p99 {:?}, p99.9 {:?}, worst {:?}",
        round.latencies.len(),
        round.snapshots,
        round.quantile(0.5),
        round.quantile(0.99),
        round.quantile(0.999),
        round.worst()
    );
}

fn stalls(dir: &Path, rounds: usize, length: Duration) -> (Vec<Round>, Round, Duration) {
    let mut number = 10_000_000;
    let manager = QueueManager::options()
        .durability(common::batched())
        .snapshot_every_events(AUTOMATIC_EVERY_EVENTS)
        .snapshot_every(None)
        .open(dir)
        .expect("open");
    let mut automatic = Vec::new();
    for index in 0..rounds {
        let result = round(&manager, number, length, || {});
        number += result.latencies.len() as u64;
        print_round(&format!("automatic {index}"), &result);
        automatic.push(result);
    }
    drop(manager);
    let manager = common::options(common::batched()).open(dir).expect("open");
    let mut explicit_duration = Duration::ZERO;
    let explicit = round(&manager, number, length, || {
        std::thread::sleep(length / 4);
        let start = Instant::now();
        manager.snapshot().expect("snapshot");
        explicit_duration = start.elapsed();
    });
    print_round("explicit", &explicit);
    eprintln!("ROUND explicit: snapshot() took {explicit_duration:?}");
    (automatic, explicit, explicit_duration)
}

fn main() {
    let entries = common::size(100_000, 1_000) as u64;
    let dir = common::scratch_dir();
    prefill(dir.path(), entries);
    let mut criterion = common::criterion();
    pieces(&mut criterion, dir.path());
    criterion.final_summary();
    let length = Duration::from_millis(common::size(3_000, 200) as u64);
    let (automatic, explicit, explicit_duration) = stalls(dir.path(), 3, length);
    let snapshot_ns = common::median_ns(GROUP, "explicit_snapshot_100k");
    let write_ns = common::median_ns(GROUP, "write_snapshot_100k");
    common::print_figure(
        "snapshot duration (explicit_snapshot median)",
        snapshot_ns.map(|ns| ns / 1e6),
        "ms",
    );
    common::print_figure(
        "of which writing the files (write_snapshot median)",
        write_ns.map(|ns| ns / 1e6),
        "ms",
    );
    let worst_automatic = automatic.iter().map(Round::worst).max().unwrap_or_default();
    let mut worsts: Vec<Duration> = automatic.iter().map(Round::worst).collect();
    worsts.sort_unstable();
    let median_worst = worsts.get(worsts.len() / 2).copied().unwrap_or_default();
    common::print_figure(
        "automatic: worst add latency, all rounds",
        Some(worst_automatic.as_secs_f64() * 1e3),
        "ms",
    );
    common::print_figure(
        "automatic: median of per-round worst",
        Some(median_worst.as_secs_f64() * 1e3),
        "ms",
    );
    common::print_figure(
        "explicit: worst add latency",
        Some(explicit.worst().as_secs_f64() * 1e3),
        "ms",
    );
    common::print_ratio(
        "automatic worst latency / snapshot duration",
        snapshot_ns.map(|ns| worst_automatic.as_secs_f64() * 1e9 / ns),
        "< 0.1",
        |ratio| ratio < 0.1,
    );
    common::print_ratio(
        "explicit worst latency / its snapshot() duration",
        Some(explicit.worst().as_secs_f64() / explicit_duration.as_secs_f64()),
        "< 0.1",
        |ratio| ratio < 0.1,
    );
}
