//! What the dashboard says about its own view of the store, beside the
//! store's data: whether the live feed follows the journal (and why not),
//! how many records on disk it has not applied yet, and what happened to
//! the store underneath it (damage, a repair, a compaction, a new store
//! in its place). Every page shows it as a banner (`base.html` calls
//! [`banners`]), and the live feed sends it as a `status` event when it
//! changes.
//!
//! One server runs per process, so this is process-wide.

use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

/// How far behind the pages must be for a banner (less is shown only
/// beside the live indicator: a busy writer keeps a follower a few
/// records behind at any instant).
const BEHIND_BANNER: u64 = 1_000;

/// How many notices are kept (the latest).
const NOTICES_KEPT: usize = 8;

/// The server's view of the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Status {
    /// Why the live feed does not follow the journal now (it tries again
    /// every few seconds); `None` while it follows.
    pub stopped: Option<String>,
    /// Records on disk not applied yet (`None`: not known).
    pub behind: Option<u64>,
    /// The last record applied.
    pub last_seq: u64,
    /// Is the server still reading the journal it started on?
    pub loading: bool,
    /// What happened to the store under the server, oldest first: (time, text).
    pub notices: Vec<(f64, String)>,
}

static STATUS: Mutex<Status> = Mutex::new(Status {
    stopped: None,
    behind: None,
    last_seq: 0,
    loading: false,
    notices: Vec::new(),
});

fn with<T>(change: impl FnOnce(&mut Status) -> T) -> T {
    change(&mut STATUS.lock().unwrap_or_else(PoisonError::into_inner))
}

/// The status now.
pub fn get() -> Status {
    with(|status| status.clone())
}

/// Notes something that happened to the store (also in the log).
pub fn note(text: String) {
    tracing::warn!("{text}");
    with(|status| {
        status.notices.push((movie_queue::now(), text));
        let excess = status.notices.len().saturating_sub(NOTICES_KEPT);
        status.notices.drain(..excess);
    });
}

/// Notes why the live feed stopped (`None`: it follows again). Says
/// whether that changed.
pub fn set_stopped(stopped: Option<String>) -> bool {
    with(|status| {
        let changed = status.stopped != stopped;
        status.stopped = stopped;
        changed
    })
}

/// Why the live feed is stopped, if it is.
pub fn stopped() -> Option<String> {
    with(|status| status.stopped.clone())
}

/// Notes how far behind the journal the pages are.
pub fn set_progress(last_seq: u64, behind: Option<u64>) {
    with(|status| {
        status.last_seq = last_seq;
        status.behind = behind;
    });
}

/// What a page shows of the status, worded here only (the pages render
/// it, and the live feed sends it for the script to write as it is).
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    /// The last record applied.
    pub last_seq: u64,
    /// The live indicator's words.
    pub indicator: String,
    /// The banner's lines.
    pub banners: Vec<String>,
}

/// The status as a page shows it now.
pub fn shown() -> Shown {
    let status = get();
    Shown {
        last_seq: status.last_seq,
        indicator: indicator(&status),
        banners: banners(&status),
    }
}

/// The lines of the banner every page shows: the notices (newest first,
/// with their local times), then whether the live feed is stopped or
/// behind.
fn banners(status: &Status) -> Vec<String> {
    let mut lines: Vec<String> = status
        .notices
        .iter()
        .rev()
        .map(|(time, text)| format!("{}: {text}", crate::output::local_time(*time)))
        .collect();
    if status.loading {
        lines.push(format!(
            "reading the journal: record {} so far{}; the pages show what is read",
            status.last_seq,
            status
                .behind
                .map(|behind| format!(", {behind} to go"))
                .unwrap_or_default()
        ));
    } else if let Some(stopped) = &status.stopped {
        lines.push(format!(
            "live updates stopped: {stopped} (trying again every few seconds)"
        ));
    } else if let Some(behind) = status.behind.filter(|behind| *behind >= BEHIND_BANNER) {
        lines.push(format!(
            "these pages are {} behind the journal (record {}); catching up",
            crate::output::counted(behind, "record", "records"),
            status.last_seq
        ));
    }
    lines
}

/// Notes whether the server is reading the journal it started on.
pub fn set_loading(loading: bool) {
    with(|status| status.loading = loading);
}

/// Notes the last record applied.
pub fn set_last(last_seq: u64) {
    with(|status| status.last_seq = last_seq);
}

/// The live indicator's words: the last record applied, and how far
/// behind or why stopped.
fn indicator(status: &Status) -> String {
    let mut words = format!("record {}", status.last_seq);
    if status.loading {
        words.push_str(" · reading");
    } else if status.stopped.is_some() {
        words.push_str(" · stopped");
    } else if let Some(behind) = status.behind.filter(|behind| *behind > 0) {
        let _ = write!(words, " · {behind} behind");
    }
    words
}
