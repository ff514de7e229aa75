//! Group commit: `Immediate` `add_to_pending` throughput with 1 and 8
//! threads, and the bare fsync rate of the same disk (append 150 bytes +
//! `fdatasync`, in a loop) measured in the same run.
//!
//! Targets (issue 6): 8 threads ≥ 5× 1 thread; bare fsync rate ≤ 1.5× the
//! 1-thread rate. Run: `cargo bench --bench group_commit`.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use movie_queue::{Durability, QueueManager};

const GROUP: &str = "group_commit";
const THREADS: u64 = 8;

fn bare_fsync(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group(GROUP);
    configure(&mut group);
    group.bench_function("bare_fsync", |bencher| {
        let dir = common::scratch_dir();
        let path = dir.path().join("fsync.bin");
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open the fsync file");
        let record = [b'x'; 150];
        bencher.iter(|| {
            file.write_all(&record).expect("append");
            file.sync_data().expect("fdatasync");
        });
    });
    group.finish();
}

fn immediate_1_thread(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group(GROUP);
    configure(&mut group);
    group.bench_function("immediate_1_thread", |bencher| {
        let dir = common::scratch_dir();
        let manager = open(dir.path());
        let mut next = 0;
        bencher.iter(|| {
            next += 1;
            assert!(manager.add_to_pending(common::movie(next)).expect("add"));
        });
    });
    group.finish();
}

fn immediate_8_threads(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group(GROUP);
    configure(&mut group);
    group.bench_function("immediate_8_threads", |bencher| {
        let dir = common::scratch_dir();
        let manager = open(dir.path());
        let next = AtomicU64::new(0);
        bencher.iter_custom(|iterations| {
            let start = Instant::now();
            std::thread::scope(|scope| {
                for thread in 0..THREADS {
                    let share = iterations / THREADS + u64::from(thread < iterations % THREADS);
                    let (manager, next) = (&manager, &next);
                    scope.spawn(move || {
                        for _ in 0..share {
                            let number = next.fetch_add(1, Ordering::Relaxed) + 1;
                            assert!(manager.add_to_pending(common::movie(number)).expect("add"));
                        }
                    });
                }
            });
            start.elapsed()
        });
    });
    group.finish();
}

fn configure(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .throughput(Throughput::Elements(1))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
}

fn open(dir: &std::path::Path) -> QueueManager {
    common::options(Durability::Immediate)
        .open(dir)
        .expect("open the store")
}

fn print_ratios() {
    let rate = |function| common::median_ns(GROUP, function).map(|nanos| 1e9 / nanos);
    let (fsync, one, eight) = (
        rate("bare_fsync"),
        rate("immediate_1_thread"),
        rate("immediate_8_threads"),
    );
    common::print_figure("bare fsync rate", fsync, "fsyncs/s");
    common::print_figure("Immediate add_to_pending, 1 thread", one, "events/s");
    common::print_figure("Immediate add_to_pending, 8 threads", eight, "events/s");
    common::print_ratio(
        "8 threads / 1 thread",
        eight.zip(one).map(|(eight, one)| eight / one),
        ">= 5",
        |ratio| ratio >= 5.0,
    );
    common::print_ratio(
        "bare fsync rate / 1 thread",
        fsync.zip(one).map(|(fsync, one)| fsync / one),
        "<= 1.5",
        |ratio| ratio <= 1.5,
    );
}

fn main() {
    let mut criterion = common::criterion();
    bare_fsync(&mut criterion);
    immediate_1_thread(&mut criterion);
    immediate_8_threads(&mut criterion);
    criterion.final_summary();
    print_ratios();
}
