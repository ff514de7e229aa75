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

/// Verifies the store in `dir` (reads only); `/metrics` reports the outcome.
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
    };
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
    super::metrics::verified(health.ok, health.problems.len());
    health
}

impl Health {
    /// "N segments, N records, N bytes", each noun as its count wants it.
    #[must_use]
    pub fn journal_words(&self) -> String {
        crate::output::journal_words(self.segments, self.records, self.bytes)
    }
}
