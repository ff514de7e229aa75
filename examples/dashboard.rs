//! A downloader dashboard fed by the event stream: one thread plays the
//! Movie Sync downloader (queues a watchlist, takes movies, some downloads
//! fail and are retried, the rest complete, one movie leaves the
//! watchlist), while the dashboard follows `QueueManager::subscribe` and
//! redraws what a user would see after each event: the counts per queue,
//! what is downloading, what waits for a retry, and the event that just
//! happened. The subscription ends once the store is closed.
//!
//! ```sh
//! cargo run --example dashboard            # on a scratch store
//! cargo run --example dashboard -- DIR     # on DIR (resumes after its last event)
//! ```
//!
//! Every event comes once, in order, and only once durable, so the same
//! loop could forward the stream to a distributed log: store the last
//! `seq` handled and call `subscribe(seq + 1)` after a restart.

use std::collections::BTreeMap;
use std::sync::Arc;

use movie_queue::{Event, EventRecord, Movie, QueueManager, Seq};

/// What the dashboard shows for one movie.
#[derive(Debug, Clone)]
struct Row {
    title: String,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Queued,
    Downloading,
    Retrying(u32),
    Done,
    Removed,
}

#[derive(Debug, Default)]
struct Dashboard {
    movies: BTreeMap<String, Row>,
    last_seq: Seq,
}

impl Dashboard {
    /// Applies one event to what the dashboard shows; returns a one-line summary.
    fn apply(&mut self, record: &EventRecord) -> String {
        self.last_seq = record.seq;
        let tries = match &record.event {
            Event::Failed { movie, .. } => match self.movies.get(movie.id()).map(|row| row.state) {
                Some(State::Retrying(tries)) => tries + 1,
                _ => 1,
            },
            _ => 0,
        };
        let mut set = |movie: &Movie, state: State| {
            let title = movie.title().unwrap_or_default().to_owned();
            self.movies.insert(movie.id().to_owned(), Row { title, state });
            format!("{} {}", movie.id(), movie.title().unwrap_or_default())
        };
        match &record.event {
            Event::Added { movie } => format!("queued      {}", set(movie, State::Queued)),
            Event::Completed { movie } => format!("downloaded  {}", set(movie, State::Done)),
            Event::Removed { movie } => format!("removed     {}", set(movie, State::Removed)),
            Event::Failed { movie, error, .. } => {
                format!("failed      {} ({error})", set(movie, State::Retrying(tries)))
            }
            Event::Taken { id } => self.change(id, State::Downloading, "downloading"),
            Event::MovedToPending { id } | Event::Reset { id } | Event::Restored { id } => {
                self.change(id, State::Queued, "requeued   ")
            }
            Event::Requeued { ids } => {
                for id in ids {
                    self.change(id, State::Queued, "");
                }
                format!("requeued    {} interrupted downloads", ids.len())
            }
            Event::CleanedUp { ids, .. } | Event::MarkedRemoved { ids } => {
                for id in ids {
                    self.movies.remove(id);
                }
                format!("cleared     {} movies", ids.len())
            }
            Event::Forgotten { id } => {
                self.movies.remove(id);
                format!("forgotten   {id}")
            }
            // An event kind added after this dashboard was written: skip it.
            other => format!("({})", other.kind()),
        }
    }

    fn change(&mut self, id: &str, state: State, what: &str) -> String {
        let title = match self.movies.get_mut(id) {
            Some(row) => {
                row.state = state;
                row.title.clone()
            }
            None => String::new(),
        };
        format!("{what} {id} {title}")
    }

    fn count(&self, wanted: fn(State) -> bool) -> usize {
        self.movies.values().filter(|row| wanted(row.state)).count()
    }

    fn titles(&self, wanted: fn(State) -> bool) -> String {
        let titles: Vec<&str> = self
            .movies
            .values()
            .filter(|row| wanted(row.state))
            .map(|row| row.title.as_str())
            .collect();
        if titles.is_empty() {
            "-".to_owned()
        } else {
            titles.join(", ")
        }
    }

    /// The dashboard's status lines.
    fn render(&self, summary: &str) -> String {
        format!(
            "#{:<4} {summary}\n      queued {} | downloading {} | retrying {} | done {} | removed {}\n      \
             downloading: {}\n      retrying:    {}\n",
            self.last_seq.0,
            self.count(|state| state == State::Queued),
            self.count(|state| state == State::Downloading),
            self.count(|state| matches!(state, State::Retrying(_))),
            self.count(|state| state == State::Done),
            self.count(|state| state == State::Removed),
            self.titles(|state| state == State::Downloading),
            self.titles(|state| matches!(state, State::Retrying(_))),
        )
    }
}

/// The downloader: queue a watchlist, download (every third try fails
/// once and is retried), and drop one movie from the watchlist.
fn downloader(qm: &QueueManager) -> movie_queue::Result<()> {
    let watchlist = [
        ("603", "The Matrix", "1999"),
        ("949", "Heat", "1995"),
        ("680", "Pulp Fiction", "1994"),
        ("78", "Blade Runner", "1982"),
        ("348", "Alien", "1979"),
    ];
    for (id, title, year) in watchlist {
        qm.add_to_pending(Movie::new(id, title, year))?;
    }
    let mut attempt = 0;
    while let Some(movie) = qm.get_next_pending()? {
        attempt += 1;
        if attempt % 3 == 0 {
            qm.add_to_failed(movie.clone(), "not found on tracker", Some(0.0))?;
            qm.move_failed_to_pending(&movie)?;
        } else {
            qm.add_to_completed(movie)?;
        }
    }
    qm.add_to_removed(Movie::new("348", "Alien", "1979"))?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scratch = tempfile::tempdir()?;
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| scratch.path().to_path_buf(), std::path::PathBuf::from);
    let qm = Arc::new(QueueManager::open(&dir)?);
    // From the first event the journal holds: a fresh dashboard replays
    // history, then follows live.
    let events = qm.subscribe(Seq(0))?;
    let dashboard = std::thread::spawn(move || -> movie_queue::Result<Dashboard> {
        let mut dashboard = Dashboard::default();
        for record in events {
            let record = record?;
            let summary = dashboard.apply(&record);
            print!("{}", dashboard.render(&summary));
        }
        Ok(dashboard)
    });
    downloader(&qm)?;
    // Closing the store ends the subscription (after its last event).
    Arc::into_inner(qm).ok_or("the store is still shared")?.close()?;
    let dashboard = dashboard.join().map_err(|_| "the dashboard thread panicked")??;
    println!(
        "stream ended at event {}; resume with subscribe(Seq({}))",
        dashboard.last_seq,
        dashboard.last_seq.0 + 1
    );
    Ok(())
}
