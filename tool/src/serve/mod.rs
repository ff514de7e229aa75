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
mod model;
#[cfg(test)]
mod model_tests;
mod pages;
mod security;
mod views;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use movie_queue::{EventRecord, QueueManager, RetryPolicy, Seq, Until};
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
    /// Each new record as the live feed's JSON message.
    pub live: broadcast::Sender<String>,
    /// Why the live feed stopped, if it did.
    pub stopped: Mutex<Option<String>>,
    /// What a request must carry, and which `Host` it may name.
    pub guard: security::Guard,
    /// `--allow-actions`: the movie page's buttons and their token.
    pub actions: Option<actions::Actions>,
}

impl App {
    /// The timeline, for reading (a panic elsewhere poisons nothing here).
    pub fn model(&self) -> std::sync::RwLockReadGuard<'_, Model> {
        self.model.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `serve [--addr ADDR] [--token T]`: reads the store, then serves it
/// until interrupted.
pub fn run(dir: &Path, args: &ServeArgs) -> anyhow::Result<()> {
    require_directory(dir)?;
    let guard = security::Guard::new(args.addr, args.token.clone());
    let model = load(dir)?;
    let (live, _) = broadcast::channel(1024);
    let app = Arc::new(App {
        dir: dir.to_path_buf(),
        model: RwLock::new(model),
        live,
        stopped: Mutex::new(None),
        guard,
        actions: if args.allow_actions {
            Some(actions::Actions::new()?)
        } else {
            None
        },
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve(app, args.addr))
}

async fn serve(app: Arc<App>, addr: SocketAddr) -> anyhow::Result<()> {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            return fail_with_hint(
                format!("cannot listen on {addr}: {}", super::io_reason(&error)),
                "choose another --addr (port 0 picks a free one)",
            );
        }
    };
    let bound = listener.local_addr()?;
    app.guard.set_port(bound.port());
    follow(Arc::clone(&app));
    let records = super::output::counted(app.model().last_seq(), "record", "records");
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
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// The timeline of the store as it is now: every record the journal
/// holds, from the state its first record continues (nothing, or after
/// `compact` the state as of the compaction base).
fn load(dir: &Path) -> anyhow::Result<Model> {
    let max_retries = RetryPolicy::default().max_retries;
    let mut events = movie_queue::events(dir, Seq(0))?;
    let head = events.next();
    let first = match &head {
        Some(Ok(record)) => Some(record.seq),
        Some(Err(_)) | None => None,
    };
    let mut model = match first {
        Some(Seq(1)) => Model::new(max_retries),
        Some(first) => {
            let base = earliest_state(dir, first.previous())?;
            Model::starting_from(max_retries, base.seq.0, base.state)
        }
        // No records (a legacy store never opened by a writer): its files.
        None => Model::starting_from(max_retries, 0, QueueManager::open_read_only(dir)?.state()),
    };
    let mut head = head;
    while let Some(record) = head.take().or_else(|| events.next()) {
        let record = record?;
        if let Some(skipped) = events.take_skipped() {
            model = after_skip(dir, max_retries, &skipped)?;
        }
        // Records a compaction base already holds are not the timeline's.
        if record.seq.0 > model.first_seq() {
            model.apply(&record)?;
        }
    }
    Ok(model)
}

/// The timeline after records the stream stepped over (damaged records
/// `repair` set aside): the events after them do not continue the states
/// before them, so it starts again from the earliest state the store can
/// rebuild after them (the compaction base that holds what they made).
fn after_skip(dir: &Path, max_retries: u32, skipped: &movie_queue::Skipped) -> anyhow::Result<Model> {
    let base = earliest_state(dir, skipped.to)?;
    Ok(Model::starting_from(max_retries, base.seq.0, base.state))
}

/// The earliest state the store can rebuild at or after record `from`
/// (after `compact`, the journal keeps records from before its base,
/// which cannot be rebuilt): the states it can rebuild are a range, found
/// by doubling steps, then halving them.
fn earliest_state(dir: &Path, from: Seq) -> anyhow::Result<movie_queue::Replayed> {
    let replay = |seq: u64| movie_queue::replay(dir, Until::Seq(Seq(seq)));
    let refusal = match replay(from.0) {
        Ok(replayed) => return Ok(replayed),
        Err(error) => error,
    };
    let (mut refused, mut step) = (from.0, 1u64);
    let (mut found, mut replayed) = loop {
        let seq = refused.saturating_add(step);
        match replay(seq) {
            Ok(replayed) => break (seq, replayed),
            Err(_) if step >= 1 << 40 => return Err(refusal.into()),
            Err(_) => (refused, step) = (seq, step * 2),
        }
    };
    while found - refused > 1 {
        let middle = refused + (found - refused) / 2;
        match replay(middle) {
            Ok(better) => (found, replayed) = (middle, better),
            Err(_) => refused = middle,
        }
    }
    Ok(replayed)
}

/// Follows the journal from the record after the timeline's last, in a
/// thread of its own: each record extends the timeline and goes to the
/// live feed. A record that cannot be read stops the feed (the pages say
/// why).
fn follow(app: Arc<App>) {
    let from = Seq(app.model().last_seq() + 1);
    std::thread::spawn(move || {
        let stopped = match movie_queue::follow(&app.dir, from) {
            Ok(mut events) => {
                let mut stopped = None;
                while let Some(record) = events.next() {
                    let restarted = match events.take_skipped() {
                        Some(skipped) => after_skip(&app.dir, RetryPolicy::default().max_retries, &skipped)
                            .map(|model| *app.model.write().unwrap_or_else(PoisonError::into_inner) = model)
                            .map_err(|error| format!("{error:#}")),
                        None => Ok(()),
                    };
                    if let Err(error) = restarted.and_then(|()| live_record(&app, record)) {
                        stopped = Some(error);
                        break;
                    }
                }
                stopped
            }
            Err(error) => Some(super::describe(&error)),
        };
        *app.stopped.lock().unwrap_or_else(PoisonError::into_inner) = stopped;
    });
}

/// Applies one followed record and announces it; the error's description
/// when it could not be read.
fn live_record(app: &App, record: movie_queue::Result<EventRecord>) -> Result<(), String> {
    let record = record.map_err(|error| super::describe(&error))?;
    let message = {
        let mut model = app.model.write().unwrap_or_else(PoisonError::into_inner);
        model.apply(&record).map_err(|error| super::describe(&error))?;
        serde_json::json!({
            "event": views::EventView::of(&record),
            "counts": model.statistics(),
        })
    };
    // Nobody listening is fine.
    let _ = app.live.send(message.to_string());
    Ok(())
}

/// Refuses an address a dashboard without a token must not listen on.
///
/// # Errors
/// A message for a usage error.
pub fn check_addr(addr: SocketAddr, token: Option<&str>) -> Result<(), String> {
    if token.is_some_and(str::is_empty) {
        return Err("--token must not be empty".to_owned());
    }
    if !addr.ip().is_loopback() && token.is_none() {
        return Err(format!(
            "--addr {addr} is not a loopback address: anyone who can reach it could read the store; \
             pass --token T (every request must then carry it), or listen on 127.0.0.1"
        ));
    }
    Ok(())
}
