//! The memory guard (issue 21): a fresh process that opens a store of
//! 100,000 movies from its snapshot grows its resident memory by at most
//! twice the bytes of `queue_pending.json`, steady and at its peak. RSS is
//! steady from run to run (the allocations an open makes do not depend on
//! the machine's speed), so this is a test; the open's time is in the
//! benches.
//!
//! How: this test builds the store, then runs this test binary again as a
//! child (`memory_child_open`, given the store in
//! `MOVIE_QUEUE_MEMORY_CHILD`) that reads `VmRSS` before the open and
//! `VmRSS` and `VmHWM` after it, and prints them. A 3x regression shipped
//! unseen before this guard (715 B per movie, 3.6x the JSON).

use std::path::Path;
use std::process::Command;

use crate::support::common::{scratch, test_name};

/// The workload of `examples/memory.rs` (its movies, options and memory
/// reading), shared.
#[path = "../../examples/memory.rs"]
#[allow(dead_code, reason = "the example's own main and report are not used here")]
mod example;

use example::{memory, movie, options};

const CHILD_ENV: &str = "MOVIE_QUEUE_MEMORY_CHILD";
const MOVIES: u64 = 100_000;
/// Resident growth allowed, as a multiple of `queue_pending.json`'s bytes.
const RATIO_MAX: f64 = 2.0;

#[test]
#[ignore = "the child process of the memory guard; does nothing unless MOVIE_QUEUE_MEMORY_CHILD is set"]
fn memory_child_open() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let before = memory().rss;
    let manager = options().open(Path::new(&dir)).expect("the child opens the store");
    let example::Memory { rss: after, peak, .. } = memory();
    let movies = manager.get_pending_count();
    println!("memory before={before} after={after} peak={peak} movies={movies}");
    drop(manager);
}

#[test]
fn a_fresh_open_from_a_snapshot_holds_at_most_twice_the_json_steady_and_at_its_peak() {
    fresh_open_within_twice_the_json(false);
}

#[test]
fn a_fresh_open_of_a_compacted_store_holds_at_most_twice_the_json() {
    fresh_open_within_twice_the_json(true);
}

/// Builds a store of [`MOVIES`] movies with a snapshot (and, with
/// `compact`, a compaction base beside it), opens it in a fresh child and
/// checks the child's RSS growth.
fn fresh_open_within_twice_the_json(compact: bool) {
    let dir = scratch();
    let manager = options().open(dir.path()).expect("create");
    for number in 0..MOVIES {
        manager.add_to_pending(movie(number)).expect("add");
    }
    manager.snapshot().expect("snapshot");
    if compact {
        manager.compact().expect("compact");
    }
    manager.close().expect("close");
    let json = std::fs::metadata(dir.path().join("queue_pending.json"))
        .expect("the snapshot's pending file")
        .len();
    let output = {
        let _spawning = crate::support::spawning();
        Command::new(std::env::current_exe().expect("the test binary"))
            .args([
                "--exact",
                &test_name(module_path!(), "memory_child_open"),
                "--nocapture",
                "--ignored",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, dir.path())
            .output()
            .expect("run the child")
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the child failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The harness prints the test's name on the same line, before it.
    let line = stdout
        .lines()
        .find_map(|line| line.find("memory before=").map(|at| &line[at + "memory ".len()..]))
        .unwrap_or_else(|| panic!("the child printed no figures: {stdout}"));
    let figure = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
    };
    assert_eq!(figure("movies"), MOVIES, "the child opened the whole store");
    let (before, after, peak) = (figure("before"), figure("after"), figure("peak"));
    let steady = after.saturating_sub(before) as f64 / json as f64;
    let at_peak = peak.saturating_sub(before) as f64 / json as f64;
    println!(
        "fresh open of {MOVIES} movies: steady {} B/movie = {steady:.2}x the JSON ({} B/movie), peak {at_peak:.2}x",
        after.saturating_sub(before) / MOVIES,
        json / MOVIES
    );
    assert!(
        steady <= RATIO_MAX,
        "a fresh open grew RSS by {steady:.2}x queue_pending.json's bytes (at most {RATIO_MAX})"
    );
    assert!(
        at_peak <= RATIO_MAX,
        "a fresh open's peak RSS was {at_peak:.2}x queue_pending.json's bytes (at most {RATIO_MAX})"
    );
}
