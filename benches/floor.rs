//! The floor: what one durable write costs on the file system under test,
//! measured in the same run as the queue and its peer (issues 16 and 23),
//! all in scratch directories on that file system
//! (`MOVIE_QUEUE_BENCH_DIR`, else `target/tmp`):
//!
//! * movie-queue `Immediate` and SQLite (rusqlite, WAL,
//!   `synchronous=FULL`) on the lifecycle workload of `lifecycle/mod.rs`
//!   (the one of `vs_sqlite`), one caller and eight callers;
//! * floor 1, *append*: 150 bytes appended to a file, then `fdatasync`
//!   (the file grows each time, so the sync also commits its new size);
//! * floor 2, *overwrite*: 150 bytes written in place at increasing
//!   offsets of a file preallocated with real zeros and fsynced beforehand
//!   (`write_at`, then `fdatasync`: data only).
//!
//! So that the machine's load cannot decide a verdict, the six are
//! **interleaved**: one round measures each once, in turn (queue, SQLite,
//! append, overwrite, then the eight-caller pair), and the run is
//! `MOVIE_QUEUE_FLOOR_ROUNDS` rounds (default 7, at least 5). Each ratio
//! is taken within a round, and the medians of the rounds are reported
//! with their spread (lowest and highest round).
//!
//! Figures are per writing operation (one journal event, one SQLite
//! transaction; `lifecycle::writes`) and per floor write.
//!
//! Targets (issue 23): one caller, the queue ≤ 1.15× floor 2 and ≥ 1.2×
//! faster than SQLite; eight callers ≥ 8× SQLite.
//! Run: `cargo bench --bench floor`.

mod common;
mod lifecycle;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use lifecycle::MakeSubject;
use movie_queue::Durability;

/// The bytes of one floor write: about one lifecycle event's record.
const RECORD_BYTES: usize = 150;

/// Floor 1: `writes` appends of a record + `fdatasync`, the file growing
/// each time; the time of one.
fn append(writes: u64) -> f64 {
    let dir = common::scratch_dir();
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(dir.path().join("append.bin"))
        .expect("create the append file");
    sync_directory(dir.path());
    let record = [b'x'; RECORD_BYTES];
    let started = Instant::now();
    for _ in 0..writes {
        file.write_all(&record).expect("append");
        file.sync_data().expect("fdatasync");
    }
    started.elapsed().as_secs_f64() / writes as f64
}

/// Floor 2: `writes` records written in place + `fdatasync`, in a file
/// whose every byte was written (zeros) and synced first, as is its
/// directory entry; the time of one.
fn overwrite(writes: u64) -> f64 {
    let dir = common::scratch_dir();
    let file_bytes = writes * RECORD_BYTES as u64;
    let file = preallocated(&dir.path().join("overwrite.bin"), file_bytes);
    sync_directory(dir.path());
    let record = [b'x'; RECORD_BYTES];
    let started = Instant::now();
    for write in 0..writes {
        file.write_all_at(&record, write * RECORD_BYTES as u64)
            .expect("overwrite");
        file.sync_data().expect("fdatasync");
    }
    started.elapsed().as_secs_f64() / writes as f64
}

/// A file of `bytes` real zeros (not a hole), synced whole.
fn preallocated(path: &Path, bytes: u64) -> File {
    let mut file = OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(path)
        .expect("create the preallocated file");
    let zeros = vec![0_u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let chunk = left.min(zeros.len() as u64);
        file.write_all(&zeros[..chunk as usize]).expect("write zeros");
        left -= chunk;
    }
    file.sync_all().expect("fsync the preallocated file");
    file
}

fn sync_directory(dir: &Path) {
    File::open(dir)
        .and_then(|directory| directory.sync_all())
        .expect("fsync the directory");
}

/// The lifecycle workload on a fresh store; the time of one writing operation.
fn workload(make: &MakeSubject, movies: u64, threads: usize) -> f64 {
    lifecycle::timed_runs(make, movies, threads, 1).as_secs_f64() / lifecycle::writes(movies) as f64
}

/// The median and the spread (lowest, highest) of `values`.
fn median_spread(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    let median = if sorted.len().is_multiple_of(2) {
        f64::midpoint(sorted[middle - 1], sorted[middle])
    } else {
        sorted[middle]
    };
    (median, sorted[0], sorted[sorted.len() - 1])
}

/// One round: each subject once, in turn. Seconds per operation.
struct Round {
    queue_1: f64,
    sqlite_1: f64,
    append: f64,
    overwrite: f64,
    queue_8: f64,
    sqlite_8: f64,
}

fn main() {
    let movies_1 = common::size(200, 10) as u64;
    let movies_8 = common::size(500, 40) as u64;
    let rounds: usize = std::env::var("MOVIE_QUEUE_FLOOR_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(if common::measuring() { 7 } else { 1 });
    let queue = lifecycle::make_movie_queue(Durability::Immediate);
    let sqlite = lifecycle::make_sqlite("FULL");
    let floor_writes = lifecycle::writes(movies_1);
    let mut measured = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let result = Round {
            queue_1: workload(&queue, movies_1, 1),
            sqlite_1: workload(&sqlite, movies_1, 1),
            append: append(floor_writes),
            overwrite: overwrite(floor_writes),
            queue_8: workload(&queue, movies_8, 8),
            sqlite_8: workload(&sqlite, movies_8, 8),
        };
        eprintln!(
            "round {round}: queue 1 {:.1} µs, SQLite 1 {:.1} µs, append {:.1} µs, overwrite {:.1} µs, queue 8 {:.1} µs, SQLite 8 {:.1} µs",
            result.queue_1 * 1e6,
            result.sqlite_1 * 1e6,
            result.append * 1e6,
            result.overwrite * 1e6,
            result.queue_8 * 1e6,
            result.sqlite_8 * 1e6
        );
        measured.push(result);
    }
    let figure = |name: &str, of: &dyn Fn(&Round) -> f64, scale: f64, unit: &str| {
        let values: Vec<f64> = measured.iter().map(of).collect();
        let (median, low, high) = median_spread(&values);
        common::print_figure(name, Some(median * scale), unit);
        common::print_figure(&format!("{name} (spread)"), Some((high - low) * scale), unit);
        (median, low, high)
    };
    figure("append_fdatasync", &|round| round.append, 1e6, "µs/operation");
    figure("overwrite_fdatasync", &|round| round.overwrite, 1e6, "µs/operation");
    figure("queue_immediate_1_caller", &|round| round.queue_1, 1e6, "µs/operation");
    figure("sqlite_full_1_caller", &|round| round.sqlite_1, 1e6, "µs/operation");
    figure("queue_immediate_8_callers", &|round| round.queue_8, 1e6, "µs/operation");
    figure("sqlite_full_8_callers", &|round| round.sqlite_8, 1e6, "µs/operation");
    let ratio = |name: &str, of: &dyn Fn(&Round) -> f64, target: &str, pass: &dyn Fn(f64) -> bool| {
        let values: Vec<f64> = measured.iter().map(of).collect();
        let (median, low, high) = median_spread(&values);
        common::print_ratio(name, Some(median), target, pass);
        common::print_figure(&format!("{name}, lowest of {} rounds", values.len()), Some(low), "×");
        common::print_figure(&format!("{name}, highest of {} rounds", values.len()), Some(high), "×");
    };
    ratio(
        "append floor / overwrite floor",
        &|round| round.append / round.overwrite,
        "-",
        &|_| true,
    );
    ratio(
        "queue 1 caller / overwrite floor",
        &|round| round.queue_1 / round.overwrite,
        "<= 1.15",
        &|ratio| ratio <= 1.15,
    );
    ratio(
        "SQLite 1 caller / queue 1 caller",
        &|round| round.sqlite_1 / round.queue_1,
        ">= 1.2",
        &|ratio| ratio >= 1.2,
    );
    ratio(
        "SQLite 8 callers / queue 8 callers",
        &|round| round.sqlite_8 / round.queue_8,
        ">= 8",
        &|ratio| ratio >= 8.0,
    );
    ratio(
        "overwrite floor / queue 8 callers (records per floor write)",
        &|round| round.overwrite / round.queue_8,
        "-",
        &|_| true,
    );
}
