//! The health page: `verify`'s answer for the store (the same check the
//! command runs, changing nothing), the snapshot's age, and damage named
//! with its file and byte offset as `movie-queue verify` names it.

use std::path::Path;

use movie_queue::{Layout, now};
use serde::Serialize;

use crate::output::{local_time, relative_time};

/// What the health page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// Does the store open?
    pub ok: bool,
    pub segments: usize,
    pub records: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// What an open starts from.
    pub start: String,
    /// The record the snapshot covers (when it holds up).
    pub snapshot_seq: Option<u64>,
    /// Was it compared with the journal's state (else it is the only copy
    /// of that state)?
    pub snapshot_compared: bool,
    /// When the snapshot was written, Unix seconds, and how long ago.
    pub snapshot_written: Option<f64>,
    pub snapshot_age: String,
    /// Problems the store survives, each naming its file and offset.
    pub problems: Vec<String>,
    /// What keeps the store from opening, as `verify` says it.
    pub error: Option<String>,
    /// Its file and byte offset.
    pub file: Option<String>,
    pub offset: Option<u64>,
    /// What to do about it.
    pub hint: Option<String>,
    /// When this check was made, Unix seconds (callers sharing one check
    /// see the same).
    pub checked_at: f64,
}

/// When the snapshot's manifest was written, Unix seconds.
pub fn snapshot_written(dir: &Path) -> Option<f64> {
    std::fs::metadata(Layout::new(dir).manifest())
        .and_then(|metadata| metadata.modified())
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|since| since.as_secs_f64())
}

/// How long a check's answer is handed to whoever asks next.
const FRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// The last check, and when it was made.
static LAST: std::sync::Mutex<Option<(std::time::Instant, Health)>> = std::sync::Mutex::new(None);

/// The store's health: a check made in the last [`FRESH`] seconds, or a
/// new one. One check runs at a time; who asks meanwhile waits for it and
/// gets its answer (a page asked for by many clients at once verifies the
/// store once, not once each).
pub fn shared(dir: &Path) -> Health {
    let mut last = LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((at, health)) = last.as_ref()
        && at.elapsed() < FRESH
    {
        return health.clone();
    }
    let health = health(dir);
    *last = Some((std::time::Instant::now(), health.clone()));
    health
}

/// Verifies the store in `dir` (reads only), in a child process when it
/// can (`movie-queue verify --json`, this same binary): a check holds a
/// whole state in memory for a moment, and a child gives it back when it
/// exits, where this process's allocator would keep it resident.
fn health(dir: &Path) -> Health {
    let written = snapshot_written(dir);
    let mut health = Health {
        ok: false,
        segments: 0,
        records: 0,
        bytes: 0,
        first_seq: 0,
        last_seq: 0,
        start: String::new(),
        snapshot_seq: None,
        snapshot_compared: false,
        snapshot_written: written,
        snapshot_age: written.map_or_else(
            || "no snapshot".to_owned(),
            |time| format!("{} ({})", local_time(time), relative_time(time, now())),
        ),
        problems: Vec::new(),
        error: None,
        file: None,
        offset: None,
        hint: None,
        checked_at: now(),
    };
    if let Some(report) = verify_in_child(dir) {
        health.fill(&report);
        return health;
    }
    match movie_queue::verify(dir) {
        Ok(report) => {
            health.ok = true;
            health.segments = report.segments;
            health.records = report.records;
            health.bytes = report.bytes;
            health.first_seq = report.first_seq;
            health.last_seq = report.last_seq;
            health.start = report.start.to_string();
            health.snapshot_seq = report.snapshot_seq;
            health.snapshot_compared = report.snapshot_compared;
            health.problems = report.problems;
        }
        Err(error) => {
            let place = error.place();
            health.file = place.map(|(path, _)| path.display().to_string());
            health.offset = place.map(|(_, offset)| offset);
            health.hint = error.is_corruption().then(|| crate::REPAIR_HINT.to_owned());
            health.error = Some(crate::describe(&error));
        }
    }
    health
}

/// `movie-queue --dir DIR verify --json` run by this binary: its JSON
/// (`None` when it could not be run or said nothing parseable: the caller
/// verifies in this process instead).
fn verify_in_child(dir: &Path) -> Option<serde_json::Value> {
    let output = std::process::Command::new(std::env::current_exe().ok()?)
        .arg("--dir")
        .arg(dir)
        .args(["verify", "--json"])
        .env_remove("MOVIE_QUEUE_DIR")
        .env("RUST_LOG", "off")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    report.get("ok").is_some().then_some(report)
}

impl Health {
    /// The fields of `verify --json`'s `report`.
    fn fill(&mut self, report: &serde_json::Value) {
        let number = |name: &str| report[name].as_u64().unwrap_or(0);
        let text = |name: &str| report[name].as_str().map(str::to_owned);
        self.ok = report["opens"].as_bool().unwrap_or(false);
        self.segments = usize::try_from(number("segments")).unwrap_or(usize::MAX);
        self.records = number("records");
        self.bytes = number("bytes");
        self.first_seq = number("first_seq");
        self.last_seq = number("last_seq");
        self.start = text("start").unwrap_or_default();
        self.snapshot_seq = report["snapshot_seq"].as_u64();
        self.snapshot_compared = report["snapshot_compared"].as_bool().unwrap_or(false);
        self.problems = report["problems"]
            .as_array()
            .map(|problems| {
                problems
                    .iter()
                    .filter_map(|problem| problem.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        self.error = text("error");
        self.file = text("file");
        self.offset = report["offset"].as_u64();
        self.hint = self.file.is_some().then(|| crate::REPAIR_HINT.to_owned());
    }

    /// "N segments, N records, N bytes", each noun as its count wants it.
    #[must_use]
    pub fn journal_words(&self) -> String {
        crate::output::journal_words(self.segments, self.records, self.bytes)
    }
}
