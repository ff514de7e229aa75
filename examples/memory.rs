//! Whole-process numbers: resident memory per queued movie and start-up time.
//!
//! `cargo run --release --example memory [-- MOVIES]` (default 100,000):
//! 1. *build*: opens a fresh store (under `target/`), adds MOVIES movies
//!    (Batched, automatic snapshots off), flushes, and reads `VmRSS` before
//!    and after; writes a snapshot and compares the RSS growth per movie
//!    with the bytes per movie of `queue_pending.json`;
//! 2. *open*: runs itself again as a fresh process (`--open DIR`) that
//!    opens the store from its snapshot, printing the open time and the
//!    RSS growth of that process.
//!
//! Target (issue 6): RSS growth per movie ≤ 2× its JSON in `queue_pending.json`.
//! `tests/processes/memory.rs` holds a fresh open to it in `cargo test`,
//! with this file's workload.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use movie_queue::testing::PENDING_FILE;
use movie_queue::{Durability, Movie, QueueManager};

/// This process's memory, from `/proc/self/status`, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: the peak of `rss`.
    pub peak: u64,
    /// `RssAnon`: resident heap and stacks (not file pages).
    anonymous: u64,
    /// `RssFile`: resident file-backed pages (the binary, mapped segments).
    file: u64,
}

/// This process's memory now.
pub fn memory() -> Memory {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    Memory {
        rss: field("VmRSS:"),
        peak: field("VmHWM:"),
        anonymous: field("RssAnon:"),
        file: field("RssFile:"),
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "RSS {} KiB (anonymous {} KiB, file {} KiB), peak {} KiB",
            self.rss / 1024,
            self.anonymous / 1024,
            self.file / 1024,
            self.peak / 1024
        )
    }
}

/// The `number`-th movie of the workload (about 200 bytes of JSON in
/// `queue_pending.json`, with the stamped fields).
pub fn movie(number: u64) -> Movie {
    Movie::new(
        format!("{number}"),
        format!("Movie number {number}"),
        format!("{}", 1950 + number % 75),
    )
    .with_slug(format!("movie-number-{number}"))
    .with_imdb_id(format!("tt{:07}", number % 10_000_000))
}

/// `Batched`, no automatic snapshot.
pub fn options() -> movie_queue::Options {
    QueueManager::options()
        .durability(Durability::Batched {
            max_delay: Duration::from_millis(5),
        })
        .snapshot_every_events(0)
        .snapshot_every(None)
}

fn build(movies: u64) -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("tmp");
    std::fs::create_dir_all(&root)?;
    let dir = tempfile::tempdir_in(&root)?;
    let before = memory();
    let manager = options().open(dir.path())?;
    let opened = memory();
    for number in 0..movies {
        manager.add_to_pending(movie(number))?;
    }
    manager.flush()?;
    let after = memory();
    manager.snapshot()?;
    let json_bytes = std::fs::metadata(dir.path().join(PENDING_FILE))?.len();
    report(
        "build (in this process)",
        movies,
        after.rss.saturating_sub(opened.rss),
        json_bytes,
    );
    println!("  before open: {before}\n  after open:  {opened}\n  after adds:  {after}");
    manager.close()?;
    let status = Command::new(std::env::current_exe()?)
        .arg("--open")
        .arg(dir.path())
        .arg(json_bytes.to_string())
        .status()?;
    if !status.success() {
        return Err(format!("the --open child failed: {status}").into());
    }
    Ok(())
}

fn open(dir: &Path, json_bytes: u64) -> Result<(), Box<dyn std::error::Error>> {
    let before = memory();
    let start = Instant::now();
    let manager = options().open(dir)?;
    let elapsed = start.elapsed();
    let after = memory();
    let statistics = manager.get_statistics();
    let held = statistics.pending + statistics.in_flight + statistics.failed + statistics.completed;
    report(
        "fresh process, open from snapshot",
        held as u64,
        after.rss.saturating_sub(before.rss),
        json_bytes,
    );
    println!(
        "  open took {:.1} ms\n  before open: {before}\n  after open:  {after}",
        elapsed.as_secs_f64() * 1e3
    );
    drop(manager);
    Ok(())
}

fn report(name: &str, movies: u64, growth: u64, json_bytes: u64) {
    let per_movie = growth as f64 / movies as f64;
    let json_per_movie = json_bytes as f64 / movies as f64;
    let ratio = per_movie / json_per_movie;
    let verdict = if ratio <= 2.0 { "PASS" } else { "MISS" };
    println!(
        "{name}: {movies} movies, RSS growth {} KiB = {per_movie:.0} B/movie; \
         {PENDING_FILE} {json_bytes} B = {json_per_movie:.0} B/movie; \
         ratio {ratio:.2} (target <= 2) {verdict}",
        growth / 1024
    );
    // The line `scripts/performance` collects.
    println!("RATIO memory, {name}: {ratio:.3} (target <= 2x the JSON) {verdict}");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match arguments.as_slice() {
        [flag, dir, json_bytes] if flag == "--open" => open(&PathBuf::from(dir), json_bytes.parse()?),
        [] => build(100_000),
        [movies] => build(movies.parse()?),
        _ => Err("usage: memory [MOVIES]".into()),
    }
}
