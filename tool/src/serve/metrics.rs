//! `/metrics`: the store as the monitoring people already run reads it,
//! in the Prometheus text format (version 0.0.4), under the same token
//! and `Host` checks as every page. The names are documented in the
//! README; each has its `# HELP` and `# TYPE` here.
//!
//! Verify's answer comes from the last check the server ran (the Health
//! page runs one when it is shown, and the server one every minute, or
//! every [`VERIFY_EVERY`] on a big store): a scrape never waits for a
//! whole-store check.

use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use movie_queue::now;

use super::App;
use super::model::KINDS;

/// How often the server verifies a big store by itself.
pub const VERIFY_EVERY: Duration = Duration::from_secs(600);

/// The last verify the server ran: when, whether the store opened, and
/// how many problems it survives.
static VERIFIED: Mutex<Option<(f64, bool, usize)>> = Mutex::new(None);

/// Do the server's counts agree with the store's own (`stats`), as last
/// compared once the server had read to the journal's end?
static AGREE: Mutex<Option<bool>> = Mutex::new(None);

/// Verifies the store now and again after, in a thread of its own: every
/// minute while a check takes under a second, else every
/// [`VERIFY_EVERY`] (a big store's check holds a whole state in memory
/// for seconds). What it finds that the pages do not show already goes
/// in the banner: the store does not open, problems it survives, counts
/// that differ from the store's own.
pub fn verify_now_and_then(app: std::sync::Arc<App>) {
    std::thread::spawn(move || {
        // First once the journal is read and its end measured (or the
        // follower stopped at damage), so the counts can be compared.
        let ready = std::time::Instant::now();
        while ready.elapsed() < Duration::from_secs(30) {
            let status = super::status::get();
            if !status.loading && (status.behind.is_some() || status.stopped.is_some()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        loop {
            let began = std::time::Instant::now();
            let health = super::health::shared(&app.dir);
            let took = began.elapsed();
            report(&app, &health);
            std::thread::sleep(if took < Duration::from_secs(1) {
                Duration::from_secs(60)
            } else {
                VERIFY_EVERY
            });
        }
    });
}

/// What the last check reported found that the banner said, and when
/// that check was made.
static SAID: Mutex<(String, f64)> = Mutex::new((String::new(), 0.0));

/// Puts in the banner what a check (`health`) found that the pages do not
/// show already: the store does not open, problems it survives, counts
/// that differ from the store's own; once, until it changes.
pub fn report(app: &App, health: &super::health::Health) {
    // One report a check, however many callers shared it.
    let mut said = SAID.lock().unwrap_or_else(PoisonError::into_inner);
    if said.1 >= health.checked_at {
        return;
    }
    said.1 = health.checked_at;
    verified(health.ok, health.problems.len());
    let mut findings = Vec::new();
    if let Some(error) = &health.error {
        findings.push(format!("verify: the store does not open: {error}"));
    }
    if !health.problems.is_empty() {
        findings.push(format!("verify found: {}", health.problems.join("; ")));
    }
    if let Some(differs) = counts_differ(app) {
        findings.push(differs);
    }
    let finding = findings.join(" · ");
    if finding != said.0 {
        super::status::note(if finding.is_empty() {
            "verify: the store holds up now, and the counts here are the store's".to_owned()
        } else {
            finding.clone()
        });
        super::publish_status(app);
        said.0 = finding;
    }
}

/// Once the server has read to the journal's end and the store is still,
/// compares its counts with the store's own (`movie-queue stats`): they
/// differ when the store opens from a snapshot that holds records the
/// journal lost (a damaged end), which the pages cannot show.
fn counts_differ(app: &App) -> Option<String> {
    let status = super::status::get();
    if status.loading || (status.behind != Some(0) && status.stopped.is_none()) {
        return None;
    }
    let before = app.model().last_seq();
    let store = movie_queue::QueueManager::options().statistics(&app.dir).ok()?;
    let (mine, after) = {
        let model = app.model();
        (model.statistics(), model.last_seq())
    };
    if before != after {
        // A record came in meanwhile: next time.
        return None;
    }
    if mine != store && super::rebase(app, after) {
        // The store's end was past the journal's: the pages show it now.
        *AGREE.lock().unwrap_or_else(PoisonError::into_inner) = Some(true);
        return None;
    }
    let agree = mine == store;
    *AGREE.lock().unwrap_or_else(PoisonError::into_inner) = Some(agree);
    let words = |counts: &movie_queue::Statistics| {
        format!(
            "{} pending, {} in flight, {} failed ({} permanent), {} completed, {} removed",
            counts.pending,
            counts.in_flight,
            counts.failed,
            counts.permanent_failures,
            counts.completed,
            counts.removed
        )
    };
    (!agree).then(|| {
        format!(
            "the counts here ({}) differ from the store's own ({}: `movie-queue stats`): the pages show the journal's \
             history to record {after}, and the store opens to another state (Health says why)",
            words(&mine),
            words(&store)
        )
    })
}

/// Notes a verify's outcome.
fn verified(ok: bool, problems: usize) {
    *VERIFIED.lock().unwrap_or_else(PoisonError::into_inner) = Some((now(), ok, problems));
}

/// One metric's help, type and samples.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn start<'a>(out: &'a mut String, name: &str, kind: &str, help: &str) -> Family<'a> {
        let _ = writeln!(out, "# HELP movie_queue_{name} {help}");
        let _ = writeln!(out, "# TYPE movie_queue_{name} {kind}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &str, value: f64) -> &mut Self {
        let _ = if labels.is_empty() {
            writeln!(self.out, "movie_queue_{name} {value}")
        } else {
            writeln!(self.out, "movie_queue_{name}{{{labels}}} {value}")
        };
        self
    }
}

/// A count as a sample value (exact below 2^53).
#[expect(clippy::cast_precision_loss, reason = "counts far below 2^53")]
fn value(count: u64) -> f64 {
    count as f64
}

/// One metric with one sample and no labels.
fn gauge(out: &mut String, name: &str, help: &str, sample: f64) {
    Family::start(out, name, "gauge", help).sample(name, "", sample);
}

/// The metrics text now.
pub fn render(app: &App) -> String {
    let mut out = String::new();
    let (statistics, kinds, last, last_ts) = {
        let model = app.model();
        let last_ts = model.events.last().map(|meta| meta.ts);
        (model.statistics(), model.kind_counts, model.last_seq(), last_ts)
    };
    let mut movies = Family::start(&mut out, "movies", "gauge", "Movies in each queue now.");
    for (queue, count) in [
        ("pending", statistics.pending),
        ("in_flight", statistics.in_flight),
        ("failed", statistics.failed),
        ("completed", statistics.completed),
        ("removed", statistics.removed),
    ] {
        movies.sample("movies", &format!("queue=\"{queue}\""), value(count as u64));
    }
    gauge(
        &mut out,
        "permanent_failures",
        "Failed movies that failed max_retries times or more.",
        value(statistics.permanent_failures as u64),
    );
    let mut events = Family::start(
        &mut out,
        "events_total",
        "counter",
        "Journal records read by this server, by event kind (from the journal's first record held, or its compaction base).",
    );
    for (kind, count) in KINDS.iter().zip(kinds) {
        events.sample("events_total", &format!("kind=\"{kind}\""), value(count));
    }
    gauge(
        &mut out,
        "last_record",
        "The last journal record the server has read.",
        value(last),
    );
    if let Some(ts) = last_ts {
        let help = "When the last record read was written, Unix seconds.";
        gauge(&mut out, "last_record_timestamp_seconds", help, ts);
        let help = "Seconds since the last record read was written.";
        gauge(&mut out, "last_record_age_seconds", help, (now() - ts).max(0.0));
    }
    store_metrics(&mut out, app);
    out
}

/// The metrics of the store's files and checks, and of the follower.
fn store_metrics(out: &mut String, app: &App) {
    let status = super::status::get();
    let journal_bytes: u64 = movie_queue::journal_files(&app.dir).iter().map(|(_, size)| size).sum();
    gauge(
        out,
        "journal_bytes",
        "Bytes of the journal folder's files.",
        value(journal_bytes),
    );
    if let Some(written) = super::health::snapshot_written(&app.dir) {
        let help = "Seconds since the snapshot was written.";
        gauge(out, "snapshot_age_seconds", help, (now() - written).max(0.0));
    }
    if let Some((at, ok, problems)) = *VERIFIED.lock().unwrap_or_else(PoisonError::into_inner) {
        let help = "1 if the server's last verify of the store found it opens, else 0.";
        gauge(out, "verify_ok", help, if ok { 1.0 } else { 0.0 });
        let help = "Problems the store survives, as the server's last verify found them (0: none).";
        gauge(out, "verify_problems", help, value(problems as u64));
        let help = "When the server last verified the store, Unix seconds.";
        gauge(out, "verify_timestamp_seconds", help, at);
    }
    if let Some(agree) = *AGREE.lock().unwrap_or_else(PoisonError::into_inner) {
        let help =
            "1 if the server's counts equal the store's own (stats) when last compared at the journal's end, else 0.";
        gauge(out, "counts_agree", help, if agree { 1.0 } else { 0.0 });
    }
    let help = "1 while the server is still reading the journal it started on (the counts are partial), else 0.";
    gauge(out, "loading", help, if status.loading { 1.0 } else { 0.0 });
    let help = "1 while the server follows the journal, 0 while its live feed is stopped.";
    gauge(
        out,
        "follower_up",
        help,
        if status.stopped.is_some() { 0.0 } else { 1.0 },
    );
    if let Some(behind) = status.behind {
        let help = "Journal records on disk the server has not read yet.";
        gauge(out, "follower_lag_records", help, value(behind));
    }
}
