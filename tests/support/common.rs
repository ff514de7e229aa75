//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use movie_queue::{Movie, QueueManager, QueueState};

/// A scratch directory removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a scratch directory")
}

/// A movie with id `id`, title `Movie <id>`, year 2000 + id's length.
pub fn movie(id: &str) -> Movie {
    Movie::new(id, format!("Movie {id}"), "2020")
}

/// Opens `dir` with default options.
pub fn open(dir: &Path) -> QueueManager {
    QueueManager::open(dir).expect("open the store")
}

/// Asserts that a fresh full replay of the journal in `dir` gives `expected`.
pub fn assert_replay_equals(dir: &Path, expected: &QueueState) {
    let reader = QueueManager::open_read_only(dir).expect("open read-only");
    let replayed = reader.state_at(reader.last_seq()).expect("replay the journal").state;
    assert!(&replayed == expected, "full replay differs from the live state");
}

/// The name the test harness knows the test `function` of `module` by
/// (`module_path!()` of the test's file, without the crate's name), for
/// re-running it alone in a child process with `--exact`.
pub fn test_name(module: &str, function: &str) -> String {
    let module = module.split_once("::").map_or("", |(_, rest)| rest);
    format!("{module}::{function}")
}

/// The statistics as `[pending, in flight, failed, completed, permanent failures]`.
pub fn counts(statistics: &movie_queue::Statistics) -> [usize; 5] {
    [
        statistics.pending,
        statistics.in_flight,
        statistics.failed,
        statistics.completed,
        statistics.permanent_failures,
    ]
}
