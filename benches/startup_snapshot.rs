//! Start-up with a snapshot: a store whose documented files hold 100,000
//! entries (70,000 pending, 10,000 failed, 20,000 completed) plus a tail of
//! 10,000 journal events after the snapshot (5,000 adds, 5,000 takes).
//! `QueueManager::open_read_only` against serde_json parsing the three
//! documented files alone (already in memory) into `Vec<serde_json::Value>`.
//!
//! Built once into `target/bench-data/startup-100k/` (delete it to rebuild).
//! Target (issue 6): open ≤ 2× the parse time.
//! Run: `cargo bench --bench startup_snapshot`.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use movie_queue::testing::{MANIFEST_FILE, QUEUE_FILES};
use movie_queue::{QueueManager, Seq};

const GROUP: &str = "startup_snapshot";

/// Builds (or reuses) the store; returns it and its last sequence number.
fn store(entries: u64, tail: u64) -> (PathBuf, Seq) {
    let dir = common::data_dir().join(format!("startup-{entries}-{tail}"));
    let complete = dir.join("COMPLETE");
    if let Ok(seq) = std::fs::read_to_string(&complete) {
        return (dir, Seq(seq.trim().parse().expect("a sequence number")));
    }
    eprintln!("building {} (once)", dir.display());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the store directory");
    let manager = common::options(common::batched()).open(&dir).expect("open");
    for number in 0..entries {
        assert!(manager.add_to_pending(common::movie(number)).expect("add"));
    }
    let later = common::unix_now() + 86_400.0;
    for index in 0..entries * 3 / 10 {
        let movie = manager.get_next_pending().expect("take").expect("pending");
        if index < entries / 5 {
            assert!(manager.add_to_completed(movie).expect("complete"));
        } else {
            assert!(
                manager
                    .add_to_failed(movie, "Not found on tracker", Some(later))
                    .expect("fail")
            );
        }
    }
    manager.snapshot().expect("snapshot");
    let aside = dir.join("aside");
    std::fs::create_dir_all(&aside).expect("create the aside directory");
    for name in QUEUE_FILES.iter().chain([&MANIFEST_FILE]) {
        std::fs::copy(dir.join(name), aside.join(name)).expect("keep the snapshot");
    }
    for number in entries..entries + tail / 2 {
        assert!(manager.add_to_pending(common::movie(number)).expect("add"));
    }
    for _ in 0..tail / 2 {
        assert!(manager.get_next_pending().expect("take").is_some());
    }
    let last_seq = manager.last_seq();
    manager.close().expect("close");
    // Put the earlier snapshot back, so the tail is replayed at open.
    for name in QUEUE_FILES.iter().chain([&MANIFEST_FILE]) {
        std::fs::rename(aside.join(name), dir.join(name)).expect("restore the snapshot");
    }
    std::fs::remove_dir(&aside).expect("remove the aside directory");
    std::fs::write(&complete, last_seq.0.to_string()).expect("mark complete");
    (dir, last_seq)
}

/// `movies`: how many movies the store holds after the tail.
fn bench(criterion: &mut Criterion, dir: &Path, last_seq: Seq, movies: u64) {
    let files: Vec<Vec<u8>> = QUEUE_FILES
        .iter()
        .map(|name| std::fs::read(dir.join(name)).expect("read a documented file"))
        .collect();
    let bytes: usize = files.iter().map(Vec::len).sum();
    let mut group = criterion.benchmark_group(GROUP);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(10));
    group.bench_function("open_read_only", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let start = Instant::now();
                let manager = QueueManager::open_read_only(dir).expect("open");
                total += start.elapsed();
                assert_eq!(manager.last_seq(), last_seq);
                let statistics = manager.get_statistics();
                let held = statistics.pending + statistics.in_flight + statistics.failed + statistics.completed;
                assert_eq!(held as u64, movies);
                drop(manager);
            }
            total
        });
    });
    group.bench_function("parse_files_serde_json", |bencher| {
        bencher.iter_with_large_drop(|| {
            files
                .iter()
                .map(|bytes| serde_json::from_slice::<Vec<serde_json::Value>>(bytes).expect("a JSON array"))
                .collect::<Vec<_>>()
        });
    });
    group.finish();
    common::print_figure("documented files", Some(bytes as f64), "bytes");
    common::print_figure(
        "open_read_only",
        common::median_ns(GROUP, "open_read_only").map(|nanos| nanos / 1e6),
        "ms",
    );
    common::print_figure(
        "parse three files",
        common::median_ns(GROUP, "parse_files_serde_json").map(|nanos| nanos / 1e6),
        "ms",
    );
    common::print_ratio(
        "open time / parse time",
        common::median_ns(GROUP, "open_read_only")
            .zip(common::median_ns(GROUP, "parse_files_serde_json"))
            .map(|(open, parse)| open / parse),
        "<= 2",
        |ratio| ratio <= 2.0,
    );
}

fn main() {
    let entries = common::size(100_000, 1_000) as u64;
    let tail = common::size(10_000, 100) as u64;
    let (dir, last_seq) = store(entries, tail);
    let mut criterion = common::criterion();
    bench(&mut criterion, &dir, last_seq, entries + tail / 2);
    criterion.final_summary();
}
