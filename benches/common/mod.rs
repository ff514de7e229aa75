//! Helpers shared by the benches: scratch directories on the repository's
//! disk, a realistic movie, the criterion configuration, and reading back
//! criterion's medians of this run so each bench can print its ratios.
#![allow(dead_code, reason = "each bench uses a different subset of these helpers")]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use criterion::Criterion;
use movie_queue::{Durability, Movie, Options, QueueManager};

/// When this bench process started: estimates older than this are from an
/// earlier run (or a filtered-out bench) and are not used for ratios.
static STARTED: OnceLock<SystemTime> = OnceLock::new();

/// Where criterion writes its estimates (and this bench reads them back).
pub fn criterion_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or(Path::new("target"))
        .join("criterion")
}

/// Long-lived data a bench builds once and reuses (`target/bench-data`).
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or(Path::new("target"))
        .join("bench-data")
}

/// Is criterion measuring (`cargo bench`), rather than smoke-testing each
/// bench once (`cargo test --benches`)? Sizes shrink in the latter.
pub fn measuring() -> bool {
    std::env::args().any(|argument| argument == "--bench")
}

/// `full` when measuring, `quick` when smoke-testing.
pub fn size(full: usize, quick: usize) -> usize {
    if measuring() { full } else { quick }
}

/// The criterion instance every bench uses (command-line filters honoured).
pub fn criterion() -> Criterion {
    STARTED.get_or_init(SystemTime::now);
    Criterion::default()
        .output_directory(&criterion_dir())
        .configure_from_args()
}

/// Where scratch directories go: `MOVIE_QUEUE_BENCH_DIR` if set (the
/// file system under test), else `target/tmp` on the repository's disk.
pub const BENCH_DIR_VARIABLE: &str = "MOVIE_QUEUE_BENCH_DIR";

/// A scratch directory on the file system under test (see
/// [`BENCH_DIR_VARIABLE`]), removed when dropped.
pub fn scratch_dir() -> tempfile::TempDir {
    let root =
        std::env::var_os(BENCH_DIR_VARIABLE).map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from);
    std::fs::create_dir_all(&root).expect("create the scratch root");
    tempfile::tempdir_in(&root).expect("create a scratch directory")
}

/// A movie as the application queues them: the documented five fields.
pub fn movie(number: u64) -> Movie {
    Movie::new(
        format!("{number}"),
        format!("Movie number {number}"),
        format!("{}", 1950 + number % 75),
    )
    .with_slug(format!("movie-number-{number}"))
    .with_imdb_id(format!("tt{:07}", number % 10_000_000))
}

/// Options with automatic snapshots off (none may fire mid-measurement).
pub fn options(durability: Durability) -> Options {
    QueueManager::options()
        .durability(durability)
        .snapshot_every_events(0)
        .snapshot_every(None)
}

/// `Batched { max_delay: 5 ms }`, the batched mode every bench uses.
pub fn batched() -> Durability {
    Durability::Batched {
        max_delay: Duration::from_millis(5),
    }
}

/// Criterion's median time per iteration (nanoseconds) of `group/function`,
/// if that bench ran in this process.
pub fn median_ns(group: &str, function: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(function)
        .join("new")
        .join("estimates.json");
    let started = *STARTED.get()?;
    let modified = std::fs::metadata(&path).and_then(|meta| meta.modified()).ok()?;
    if modified < started {
        return None;
    }
    let bytes = std::fs::read(&path).ok()?;
    let estimates: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    estimates.get("median")?.get("point_estimate")?.as_f64()
}

/// Prints one derived figure of this run (to stderr, beside criterion's output).
pub fn print_ratio(name: &str, value: Option<f64>, target: &str, pass: impl FnOnce(f64) -> bool) {
    match value {
        Some(value) => {
            let verdict = if pass(value) { "PASS" } else { "MISS" };
            eprintln!("RATIO {name}: {value:.3} (target {target}) {verdict}");
        }
        None => eprintln!("RATIO {name}: not measured in this run (target {target})"),
    }
}

/// Prints a plain figure of this run.
pub fn print_figure(name: &str, value: Option<f64>, unit: &str) {
    match value {
        Some(value) => eprintln!("FIGURE {name}: {value:.3} {unit}"),
        None => eprintln!("FIGURE {name}: not measured in this run"),
    }
}

/// The Unix time now, seconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// Builds (or reuses) a store of `adds` adds followed by as many takes,
/// with its time index and without a snapshot (so a replay starts from
/// nothing), cached in `target/bench-data/audit-<events>/`: the audit and
/// shipping benches' store.
pub fn audit_store(adds: u64) -> PathBuf {
    let dir = data_dir().join(format!("audit-{}", adds * 2));
    let complete = dir.join("COMPLETE");
    if complete.exists() {
        return dir;
    }
    eprintln!("building {} with {} events (once)", dir.display(), adds * 2);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the store directory");
    let options = || options(batched()).requeue_in_flight_on_open(false);
    let manager = options().open(&dir).expect("open");
    for number in 0..adds {
        assert!(manager.add_to_pending(movie(number)).expect("add"));
    }
    for _ in 0..adds {
        assert!(manager.get_next_pending().expect("take").is_some());
    }
    manager.close().expect("close");
    // A writer's open writes the time index of the sealed segments.
    options().open(&dir).expect("reopen").close().expect("close");
    for name in movie_queue::testing::QUEUE_FILES
        .iter()
        .chain([&movie_queue::testing::MANIFEST_FILE])
    {
        std::fs::remove_file(dir.join(name)).expect("remove the snapshot");
    }
    std::fs::write(&complete, b"").expect("mark complete");
    dir
}
