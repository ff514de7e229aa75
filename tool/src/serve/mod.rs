//! `movie-queue serve`: a web dashboard of one store (the `dashboard`
//! cargo feature), read-only unless `--allow-actions` (`actions.rs`: buttons
//! carried out by the process holding the store, through its control
//! socket). It opens nothing for writing and takes no lock: it reads the journal through the library's event stream
//! (`movie_queue::events`, then `movie_queue::follow` for live updates),
//! so it runs beside the application that holds the store, and never
//! writes a byte in it.
//!
//! `model.rs` keeps the timeline every page is computed from (`views.rs`,
//! `history.rs`); `http.rs` has the routes, `security.rs` the token, the
//! allowed hosts and the headers; the pages are askama templates
//! (`templates/`) and two embedded assets (`assets/`).

mod actions;
mod chart;
mod health;
mod history;
mod http;
mod listen;
mod load;
mod metrics;
mod model;
#[cfg(test)]
mod model_tests;
mod pages;
mod security;
mod status;
mod views;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use movie_queue::{EventRecord, JournalEnd, RetryPolicy, Seq};
use tokio::sync::broadcast;

use super::args::ServeArgs;
use super::{fail_with_hint, require_directory};
use model::Model;

/// What every request handler shares.
pub struct App {
    /// The store directory.
    pub dir: PathBuf,
    /// The timeline, extended by the live feed.
    pub model: RwLock<Model>,
    /// The live feed's messages: (server-sent event name, JSON).
    pub live: broadcast::Sender<(&'static str, String)>,
    /// Bumped each time the server starts over on a store found in the
    /// directory's place: a follower of an older one stops.
    pub generation: AtomicU64,
    /// Readers waiting for the timeline: the loader lets them in between
    /// its batches.
    pub waiting: std::sync::atomic::AtomicUsize,
    /// The identity of the store the pages show (see [`Identity`]).
    identity: std::sync::Mutex<Identity>,
    /// What a request must carry, and which `Host` it may name.
    pub guard: security::Guard,
    /// `--allow-actions`: the movie page's buttons and their token.
    pub actions: Option<actions::Actions>,
}

impl App {
    /// The timeline, for reading (a panic elsewhere poisons nothing here).
    pub fn model(&self) -> std::sync::RwLockReadGuard<'_, Model> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let model = self.model.read().unwrap_or_else(PoisonError::into_inner);
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        model
    }

    /// The identity of the store the pages show.
    fn shown_identity(&self) -> Identity {
        *self.identity.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `serve [--addr ADDR] [--token T]`: reads the store, then serves it
/// until interrupted.
pub fn run(dir: &Path, args: &ServeArgs) -> anyhow::Result<()> {
    require_directory(dir)?;
    let guard = security::Guard::new(args.addr, args.token.clone())?;
    let (live, _) = broadcast::channel(1024);
    let app = Arc::new(App {
        dir: dir.to_path_buf(),
        model: RwLock::new(Model::new(RetryPolicy::default().max_retries)),
        live,
        generation: AtomicU64::new(0),
        waiting: std::sync::atomic::AtomicUsize::new(0),
        identity: std::sync::Mutex::new(Identity::of(dir)),
        guard,
        actions: if args.allow_actions {
            Some(actions::Actions::new()?)
        } else {
            None
        },
    });
    // Fails at once on what holds no store; serves after LOAD_BUDGET at most.
    if let Ok(Err(error)) = start_loading(&app).recv_timeout(load::LOAD_BUDGET) {
        return Err(error);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve(app, args.addr))
}

/// Reads the store into the timeline in a thread of its own, then follows
/// the journal from its end. The channel says how the reading ended.
fn start_loading(app: &Arc<App>) -> std::sync::mpsc::Receiver<anyhow::Result<()>> {
    let (done, ended) = std::sync::mpsc::channel();
    let app = Arc::clone(app);
    status::set_loading(true);
    std::thread::spawn(move || {
        let loaded = load::load_into(&app.dir, &app.model, &app.waiting, &mut status::set_last);
        status::set_loading(false);
        match loaded {
            Ok(damage) => {
                let last = app.model().last_seq();
                status::set_last(last);
                if let Some(damage) = damage {
                    status::note(format!(
                        "the journal cannot be read past record {last}: {damage}; the pages show the store up to there (Health says more)"
                    ));
                }
                follow(Arc::clone(&app), 0);
                let _ = done.send(Ok(()));
            }
            Err(error) => {
                status::set_stopped(Some(format!("{error:#}")));
                let _ = done.send(Err(error));
            }
        }
        publish_status(&app);
    });
    ended
}

async fn serve(app: Arc<App>, addr: SocketAddr) -> anyhow::Result<()> {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) if error.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {
            return fail_with_hint(
                format!("cannot listen on {addr}: this machine has no address {}", addr.ip()),
                "give an address of one of this machine's interfaces (`ip -brief address` lists them), or 127.0.0.1",
            );
        }
        Err(error) => {
            return fail_with_hint(
                format!("cannot listen on {addr}: {}", super::io_reason(&error)),
                "choose another --addr (port 0 picks a free one)",
            );
        }
    };
    let bound = listener.local_addr()?;
    app.guard.set_port(bound.port());
    watch(Arc::clone(&app));
    publish(Arc::clone(&app));
    metrics::verify_now_and_then(Arc::clone(&app));
    let records = super::output::counted(app.model().last_seq(), "record", "records");
    let records = if status::get().loading {
        format!("{records} read so far, reading on")
    } else {
        records
    };
    // The line the tests and scripts wait for: the address, once listening.
    let mode = if app.actions.is_some() {
        "actions allowed, through the process holding the store"
    } else {
        "read-only"
    };
    println!(
        "serving {} at http://{bound}/ ({mode}; {records}; Ctrl-C stops)",
        super::output::safe_path(&app.dir)
    );
    let router = http::router(Arc::clone(&app));
    listen::serve(listener, router, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(())
}

/// How long the follower waits before it tries again after it stopped
/// (doubling up to [`RETRY_MAX`]).
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(8);
/// How often the watcher looks at the store.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Follows the journal from the record after the timeline's last, in a
/// thread of its own: each record extends the timeline and goes to the
/// live feed. When a record cannot be read (damage, no descriptor left,
/// a store replaced), it says why on every page and tries again from the
/// same place after a pause, so it goes on by itself once the cause is
/// gone (descriptors freed, the store repaired). A follower of an older
/// `generation` (the store was replaced) stops.
fn follow(app: Arc<App>, generation: u64) {
    std::thread::spawn(move || {
        let mut pause = RETRY_FIRST;
        let mut retrying = false;
        while app.generation.load(Ordering::Acquire) == generation {
            let stop = follow_from(&app, generation, retrying);
            retrying = true;
            let reason = match stop {
                Stop::Gone => return,
                Stop::Rewritten(_) if !Identity::of(&app.dir).same_store(&app.shown_identity()) => {
                    // Another store in the place, found before the watcher did.
                    start_over(&app, Identity::of(&app.dir).store.is_some());
                    return;
                }
                Stop::Rewritten(reason) => {
                    // What the pages show is no longer the journal's
                    // history: read the store again, and follow that.
                    reread(
                        &app,
                        &format!(
                            "records the pages had read were cut or written over ({reason}): the pages were read again from the store"
                        ),
                    );
                    return;
                }
                Stop::Failed(reason) => reason,
            };
            if status::set_stopped(Some(reason.clone())) {
                publish_status(&app);
                tracing::warn!("live updates stopped: {reason}");
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(RETRY_MAX);
        }
    });
}

/// Why the follower stopped.
enum Stop {
    /// A record could not be read or applied (its description).
    Failed(String),
    /// Records it had read were cut or written over: the history the pages
    /// show is not the journal's any more.
    Rewritten(String),
    /// The server started over on another store, with a follower of its own.
    Gone,
}

/// Follows from the record after the timeline's last until it stops. A
/// follower `retrying` after it stopped first reads the journal to its end
/// as it is: once there without an error the cause is gone (a repair,
/// descriptors freed), and the pages say so even when no record comes
/// after.
fn follow_from(app: &App, generation: u64, retrying: bool) -> Stop {
    let from = || Seq(app.model().last_seq() + 1);
    if retrying {
        match movie_queue::events(&app.dir, from()) {
            Ok(events) => {
                if let Err(stop) = apply_all(app, generation, events) {
                    return stop;
                }
                go_on(app);
            }
            Err(error) => return Stop::Failed(super::describe(&error)),
        }
    }
    match movie_queue::follow(&app.dir, from()) {
        Ok(events) => match apply_all(app, generation, events) {
            Ok(()) => Stop::Failed("the journal's stream ended".to_owned()),
            Err(stop) => stop,
        },
        Err(error) => Stop::Failed(super::describe(&error)),
    }
}

/// Applies each record of `events` to the timeline, until they end or the
/// follower stops (why).
fn apply_all(app: &App, generation: u64, mut events: movie_queue::Events) -> Result<(), Stop> {
    while let Some(record) = events.next() {
        if app.generation.load(Ordering::Acquire) != generation {
            return Err(Stop::Gone);
        }
        if let Some(skipped) = events.take_skipped() {
            let restarted = load::after_skip(&app.dir, RetryPolicy::default().max_retries, &skipped);
            match restarted {
                Ok(model) => {
                    status::note(format!(
                        "records {} to {} were set aside as damaged (`movie-queue repair`); the pages go on from the state after them",
                        skipped.from, skipped.to
                    ));
                    *app.model.write().unwrap_or_else(PoisonError::into_inner) = model;
                }
                Err(error) => return Err(Stop::Failed(format!("{error:#}"))),
            }
        }
        if let Err(error) = live_record(app, record) {
            let reason = super::describe(&error);
            return Err(match error {
                movie_queue::Error::FollowedRecordGone { .. } => Stop::Rewritten(reason),
                _ => Stop::Failed(reason),
            });
        }
        go_on(app);
    }
    Ok(())
}

/// Clears a stop the pages show, once records are read again.
fn go_on(app: &App) {
    if status::stopped().is_some() {
        status::set_stopped(None);
        status::note(format!("live updates go on from record {}", app.model().last_seq()));
        publish_status(app);
    }
}

/// Applies one followed record; the error when it could not be read or
/// does not apply.
fn live_record(app: &App, record: movie_queue::Result<EventRecord>) -> movie_queue::Result<()> {
    let record = record?;
    let mut model = app.model.write().unwrap_or_else(PoisonError::into_inner);
    // Records the timeline's starting state already holds (a compaction
    // base the follower started again from, after a hole) are not applied.
    if record.seq.0 <= model.last_seq() {
        return Ok(());
    }
    model.apply(&record)?;
    status::set_last(model.last_seq());
    Ok(())
}

/// How often the live feed sends what the follower applied.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Sends the live feed's `records` messages, in a thread of its own:
/// every [`PUBLISH_EVERY`], when records were applied since the last one,
/// one message with the newest of them (at most [`model::RECENT`], each
/// rendered as the overview's row), how many more there were, and the
/// counts. A burst of a hundred thousand records is a handful of
/// messages, so the follower never waits on the pages.
fn publish(app: Arc<App>) {
    std::thread::spawn(move || {
        let mut published = app.model().last_seq();
        loop {
            std::thread::sleep(PUBLISH_EVERY);
            let message = {
                let model = app.model();
                let last = model.last_seq();
                if last == published {
                    continue;
                }
                let fresh: Vec<&EventRecord> = model.recent.iter().filter(|record| record.seq.0 > published).collect();
                let omitted = (last.saturating_sub(published)).saturating_sub(fresh.len() as u64);
                published = last;
                if app.live.receiver_count() == 0 {
                    continue;
                }
                let rows: Vec<serde_json::Value> = fresh
                    .into_iter()
                    .map(|record| {
                        let event = views::EventView::of(record);
                        let row = askama::Template::render(&pages::EventRow { event: &event }).unwrap_or_default();
                        serde_json::json!({ "event": event, "row": row })
                    })
                    .collect();
                serde_json::json!({
                    "records": rows,
                    "omitted": omitted,
                    "last_seq": last,
                    "counts": model.statistics(),
                    "shown": status::shown(),
                })
            };
            // A listener gone since is fine.
            let _ = app.live.send(("records", message.to_string()));
        }
    });
}

/// When the store's own state is past the journal's last record (the
/// journal lost its end, and the compaction base or the snapshot holds
/// it), moves the timeline on to that state as one step after record
/// `last`, and says so. Says whether it did.
pub(super) fn rebase(app: &App, last: u64) -> bool {
    // Another store in the place is the watcher's to load, not a lost end.
    if !Identity::of(&app.dir).same_store(&app.shown_identity()) {
        return false;
    }
    let Ok(store) = movie_queue::QueueManager::open_read_only(&app.dir) else {
        return false;
    };
    let seq = store.last_seq();
    if seq.0 <= last {
        return false;
    }
    {
        let mut model = app.model.write().unwrap_or_else(PoisonError::into_inner);
        if model.last_seq() != last {
            return false;
        }
        model.rebase(seq.0, store.state());
        status::set_last(model.last_seq());
    }
    status::note(format!(
        "the journal ends at record {last}, and the store holds its state as of record {seq} (its compaction base or snapshot kept what the journal lost): the pages show that state from there"
    ));
    publish_status(app);
    true
}

/// Sends the status to the live feed.
pub(super) fn publish_status(app: &App) {
    if let Ok(message) = serde_json::to_string(&status::shown()) {
        let _ = app.live.send(("status", message));
    }
}

/// What identifies the store: the directory's and its journal folder's
/// device and inode (a store deleted and made again, or another moved
/// into the place, differs), and the compaction base's inode and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    store: Option<(u64, u64)>,
    journal: Option<(u64, u64)>,
    base: Option<(u64, u64)>,
}

impl Identity {
    /// Is it the same store (directory and journal), whatever its base?
    fn same_store(&self, other: &Identity) -> bool {
        (self.store, self.journal) == (other.store, other.journal)
    }

    fn of(dir: &Path) -> Self {
        use std::os::unix::fs::MetadataExt;
        let layout = movie_queue::Layout::new(dir);
        let stat = |path: &Path| std::fs::metadata(path).ok();
        Identity {
            store: stat(dir).map(|meta| (meta.dev(), meta.ino())),
            journal: stat(&layout.journal()).map(|meta| (meta.dev(), meta.ino())),
            base: stat(&layout.base()).map(|meta| (meta.ino(), meta.size())),
        }
    }
}

/// Watches the store in a thread of its own, once a second: a store
/// replaced in the directory's place is loaded and followed instead (or
/// the pages say it cannot be); a compaction is said; and how far behind
/// the journal the pages are is measured (`JournalEnd`, which reads only
/// the bytes appended since it last looked).
fn watch(app: Arc<App>) {
    std::thread::spawn(move || {
        let mut end: Option<JournalEnd> = None;
        let mut last = status::get();
        loop {
            std::thread::sleep(WATCH_EVERY);
            let now = Identity::of(&app.dir);
            // What the pages show (`reread` notes it once it shows another).
            let shown = app.shown_identity();
            if !now.same_store(&shown) {
                end = None;
                start_over(&app, now.store.is_some());
            } else if now.base != shown.base {
                app.identity.lock().unwrap_or_else(PoisonError::into_inner).base = now.base;
                if now.base.is_some() {
                    status::note(
                        "the compaction base changed (a `compact`, or a writer's recovery): events before it may be gone from the journal, and their pages say so"
                            .to_owned(),
                    );
                }
            }
            let applied = app.model().last_seq();
            if end.is_none() {
                end = JournalEnd::new(&app.dir, Seq(applied + 1)).ok();
            }
            let behind = end
                .as_mut()
                .and_then(|end| end.last_seq().ok())
                .map(|end| end.0.saturating_sub(applied));
            if behind.is_none() {
                end = None;
            }
            status::set_progress(applied, behind);
            let status = status::get();
            if status != last {
                publish_status(&app);
                last = status;
            }
        }
    });
}

/// The store in the directory's place is not the one the pages show:
/// load it and follow it instead, or say why not.
fn start_over(app: &Arc<App>, present: bool) {
    if !present {
        status::set_stopped(Some(format!(
            "the store directory {} is gone",
            super::output::safe_path(&app.dir)
        )));
        return;
    }
    status::note("another store is in the directory's place (a new directory or a new journal): loading it".to_owned());
    reread(app, "the pages now show the store found in its place");
}

/// Reads the store again from the start, shows it instead of what the
/// pages showed (saying `why`, and up to which record), and follows it;
/// or says why it cannot be read, and tries again after a pause (doubling
/// up to [`RETRY_MAX`]) until it can, or another reading took its place.
fn reread(app: &Arc<App>, why: &str) {
    if read_again(app, why) {
        return;
    }
    let generation = app.generation.load(Ordering::Acquire);
    let app = Arc::clone(app);
    let why = why.to_owned();
    std::thread::spawn(move || {
        let mut pause = RETRY_FIRST;
        loop {
            std::thread::sleep(pause);
            if app.generation.load(Ordering::Acquire) != generation || read_again(&app, &why) {
                return;
            }
            pause = (pause * 2).min(RETRY_MAX);
        }
    });
}

/// One try of [`reread`]: whether the store could be read (a half-written
/// file, a store being replaced, may not be, for a moment).
fn read_again(app: &Arc<App>, why: &str) -> bool {
    let reading = Identity::of(&app.dir);
    let loaded = load::load(&app.dir);
    // Noted once the pages show it (or it cannot be read): until then, a
    // check that compares the store with the pages knows they differ.
    let note_shown = || *app.identity.lock().unwrap_or_else(PoisonError::into_inner) = reading;
    match loaded {
        Ok((model, damage)) => {
            let records = model.last_seq();
            let generation = app.generation.fetch_add(1, Ordering::AcqRel) + 1;
            *app.model.write().unwrap_or_else(PoisonError::into_inner) = model;
            note_shown();
            status::set_last(records);
            status::set_stopped(damage.clone());
            status::note(format!(
                "{why} (up to record {records}){}",
                damage
                    .map(|damage| format!("; it cannot be read further: {damage}"))
                    .unwrap_or_default()
            ));
            publish_status(app);
            follow(Arc::clone(app), generation);
            true
        }
        Err(error) => {
            note_shown();
            status::set_stopped(Some(format!("the store cannot be read: {error:#}")));
            publish_status(app);
            false
        }
    }
}

/// Refuses an address a dashboard without a token must not listen on,
/// and a token a guesser could find.
///
/// # Errors
/// A message for a usage error.
pub fn check_addr(addr: SocketAddr, token: Option<&str>) -> Result<(), String> {
    if let Some(token) = token {
        security::check_token(token)?;
    }
    if !addr.ip().is_loopback() && token.is_none() {
        return Err(format!(
            "--addr {addr} is not a loopback address: anyone who can reach it could read the store; \
             pass --token T (every request must then carry it), or listen on 127.0.0.1"
        ));
    }
    Ok(())
}
