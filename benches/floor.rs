//! The floor: what one durable write costs on the file system under test,
//! measured in the same run as the queue and its peer (issue 16), all in
//! scratch directories on that file system (`MOVIE_QUEUE_BENCH_DIR`, else
//! `target/tmp`):
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
//! Figures are per writing operation (one journal event, one SQLite
//! transaction; `lifecycle::writes`) and per floor write.
//!
//! Targets (issue 16): one caller, the queue ≤ 1.15× floor 2 and ≥ 1.2×
//! faster than SQLite; eight callers ≥ 8× SQLite.
//! Run: `cargo bench --bench floor`.

mod common;
mod lifecycle;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkGroup, SamplingMode, Throughput, measurement::WallTime};
use lifecycle::MakeSubject;
use movie_queue::Durability;

const GROUP: &str = "floor";
/// The bytes of one floor write: about one lifecycle event's record.
const RECORD_BYTES: usize = 150;

/// Floor 1: append + `fdatasync`, the file growing each time.
fn append(group: &mut BenchmarkGroup<'_, WallTime>) {
    group.throughput(Throughput::Elements(1));
    group.bench_function("append_fdatasync", |bencher| {
        let dir = common::scratch_dir();
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(dir.path().join("append.bin"))
            .expect("create the append file");
        sync_directory(dir.path());
        let record = [b'x'; RECORD_BYTES];
        bencher.iter(|| {
            file.write_all(&record).expect("append");
            file.sync_data().expect("fdatasync");
        });
    });
}

/// Floor 2: overwrite in place + `fdatasync`, in a file whose every byte
/// was written (zeros) and synced first, as is its directory entry.
fn overwrite(group: &mut BenchmarkGroup<'_, WallTime>, file_bytes: u64) {
    group.throughput(Throughput::Elements(1));
    group.bench_function("overwrite_fdatasync", |bencher| {
        let dir = common::scratch_dir();
        let file = preallocated(&dir.path().join("overwrite.bin"), file_bytes);
        sync_directory(dir.path());
        let record = [b'x'; RECORD_BYTES];
        let mut offset = 0;
        bencher.iter(|| {
            if offset + RECORD_BYTES as u64 > file_bytes {
                offset = 0; // start over: still in place, still allocated
            }
            file.write_all_at(&record, offset).expect("overwrite");
            file.sync_data().expect("fdatasync");
            offset += RECORD_BYTES as u64;
        });
    });
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

/// The lifecycle workload on a fresh store per iteration; per writing operation.
fn workload(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, make: &MakeSubject, movies: u64, threads: usize) {
    group.throughput(Throughput::Elements(lifecycle::writes(movies)));
    group.bench_function(name, |bencher| {
        bencher.iter_custom(|iterations| lifecycle::timed_runs(make, movies, threads, iterations));
    });
}

/// The figures of this run: µs per operation, and the ratios.
fn print_figures(movies_1: u64, movies_8: u64) {
    let micros_per = |function: &str, operations: u64| {
        common::median_ns(GROUP, function).map(|nanos| nanos / operations as f64 / 1e3)
    };
    let (writes_1, writes_8) = (lifecycle::writes(movies_1), lifecycle::writes(movies_8));
    let figures = [
        ("append_fdatasync", micros_per("append_fdatasync", 1)),
        ("overwrite_fdatasync", micros_per("overwrite_fdatasync", 1)),
        (
            "queue_immediate_1_caller",
            micros_per("queue_immediate_1_caller", writes_1),
        ),
        ("sqlite_full_1_caller", micros_per("sqlite_full_1_caller", writes_1)),
        (
            "queue_immediate_8_callers",
            micros_per("queue_immediate_8_callers", writes_8),
        ),
        ("sqlite_full_8_callers", micros_per("sqlite_full_8_callers", writes_8)),
    ];
    for (name, micros) in figures {
        common::print_figure(name, micros, "µs/operation");
    }
    let [append, overwrite, queue_1, sqlite_1, queue_8, sqlite_8] = figures.map(|(_, micros)| micros);
    let ratio = |numerator: Option<f64>, denominator: Option<f64>| numerator.zip(denominator).map(|(a, b)| a / b);
    common::print_figure("append floor / overwrite floor", ratio(append, overwrite), "×");
    common::print_figure("queue 1 caller / append floor", ratio(queue_1, append), "×");
    common::print_ratio(
        "queue 1 caller / overwrite floor",
        ratio(queue_1, overwrite),
        "<= 1.15",
        |ratio| ratio <= 1.15,
    );
    common::print_ratio(
        "SQLite 1 caller / queue 1 caller",
        ratio(sqlite_1, queue_1),
        ">= 1.2",
        |ratio| ratio >= 1.2,
    );
    common::print_ratio(
        "SQLite 8 callers / queue 8 callers",
        ratio(sqlite_8, queue_8),
        ">= 8",
        |ratio| ratio >= 8.0,
    );
    common::print_figure(
        "overwrite floor / queue 8 callers (records per floor write)",
        ratio(overwrite, queue_8),
        "×",
    );
}

fn main() {
    let movies_1 = common::size(200, 10) as u64;
    let movies_8 = common::size(500, 40) as u64;
    let file_bytes = common::size(32 << 20, 1 << 20) as u64;
    let mut criterion = common::criterion();
    let mut group = criterion.benchmark_group(GROUP);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    let queue = lifecycle::make_movie_queue(Durability::Immediate);
    let sqlite = lifecycle::make_sqlite("FULL");
    append(&mut group);
    overwrite(&mut group, file_bytes);
    workload(&mut group, "queue_immediate_1_caller", &queue, movies_1, 1);
    workload(&mut group, "sqlite_full_1_caller", &sqlite, movies_1, 1);
    workload(&mut group, "queue_immediate_8_callers", &queue, movies_8, 8);
    workload(&mut group, "sqlite_full_8_callers", &sqlite, movies_8, 8);
    group.finish();
    criterion.final_summary();
    print_figures(movies_1, movies_8);
}
