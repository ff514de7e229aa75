//! The lifecycle workload shared by `vs_sqlite` and `floor`, defined
//! identically for movie-queue and SQLite (rusqlite, WAL):
//!
//! 1. *add*: `movies` movies are added to pending (worker `w` of `T` adds
//!    the numbers `n ≡ w (mod T)`);
//! 2. *process pass*: every worker takes the next pending movie until
//!    pending is empty; in pass 0 a movie whose number ends in 7, 8 or 9
//!    (30%) fails (`retry_after` = now, error "Not found on tracker"), every
//!    other one completes; in later passes every movie completes;
//! 3. *retry*: worker 0 lists the failed movies ready for retry
//!    (`retry_after <= now`, `retry_count < 5`); each worker moves its share
//!    (list index ≡ w mod T) back to pending; if the list was empty the
//!    workload is drained, else back to 2.
//!
//! That is 3.9 writing operations per movie (add, 1.3 takes, complete, 0.3
//! fails, 0.3 moves; [`writes`] counts them exactly), each its own
//! transaction on the SQLite side (`BEGIN IMMEDIATE` … `COMMIT`; each thread
//! its own connection, busy_timeout 10 s). Phases are separated by
//! barriers; the clock runs from the start of phase 1 to the end of the
//! drain (plus, for `Batched`, the final `flush()`), excluding opening
//! stores and connections.
#![allow(dead_code, reason = "each bench uses a different subset of the workload's pieces")]

use std::path::{Path, PathBuf};
use std::sync::{Barrier, RwLock};
use std::time::{Duration, Instant};

use movie_queue::{Durability, Movie, QueueManager};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

pub const ERROR: &str = "Not found on tracker";
const MAX_RETRIES: u32 = 5;

/// One thread's handle on a queue (a connection, for SQLite).
pub trait Worker {
    fn add(&mut self, movie: Movie);
    fn take(&mut self) -> Option<Movie>;
    fn complete(&mut self, movie: Movie);
    fn fail(&mut self, movie: Movie, retry_after: f64);
    fn ready_for_retry(&mut self) -> Vec<String>;
    fn move_to_pending(&mut self, id: &str);
}

/// A queue under test: hands out one worker per thread.
pub trait Subject: Sync {
    fn worker(&self) -> Box<dyn Worker + '_>;
    /// Runs inside the timed region after the drain (`Batched`: flush).
    fn finish(&self) {}
    fn completed(&self) -> u64;
}

// ----- the workload -----------------------------------------------------

pub fn run_workload(subject: &dyn Subject, movies: u64, threads: usize) -> Duration {
    let ready = Barrier::new(threads + 1);
    let done = Barrier::new(threads + 1);
    let phase = Barrier::new(threads);
    let retry_list = RwLock::new(Vec::new());
    let elapsed = std::thread::scope(|scope| {
        for worker_index in 0..threads {
            let (ready, done, phase, retry_list) = (&ready, &done, &phase, &retry_list);
            scope.spawn(move || {
                let mut worker = subject.worker();
                ready.wait();
                work(worker.as_mut(), worker_index, threads, movies, phase, retry_list);
                done.wait();
            });
        }
        ready.wait();
        let start = Instant::now();
        done.wait();
        subject.finish();
        start.elapsed()
    });
    assert_eq!(subject.completed(), movies, "the workload must complete every movie");
    elapsed
}

fn work(
    worker: &mut dyn Worker,
    index: usize,
    threads: usize,
    movies: u64,
    phase: &Barrier,
    retry_list: &RwLock<Vec<String>>,
) {
    for number in (index as u64..movies).step_by(threads) {
        worker.add(crate::common::movie(number));
    }
    phase.wait();
    for pass in 0.. {
        while let Some(movie) = worker.take() {
            let number: u64 = movie.id().parse().expect("numeric id");
            if pass == 0 && number % 10 >= 7 {
                worker.fail(movie, crate::common::unix_now());
            } else {
                worker.complete(movie);
            }
        }
        phase.wait();
        if index == 0 {
            *retry_list.write().expect("retry list") = worker.ready_for_retry();
        }
        phase.wait();
        let list = retry_list.read().expect("retry list");
        if list.is_empty() {
            return;
        }
        for id in list.iter().skip(index).step_by(threads) {
            worker.move_to_pending(id);
        }
        drop(list);
        phase.wait();
    }
}

// ----- movie-queue -------------------------------------------------------

pub struct MovieQueue {
    manager: QueueManager,
    flush: bool,
}

struct MovieQueueWorker<'a>(&'a QueueManager);

impl Worker for MovieQueueWorker<'_> {
    fn add(&mut self, movie: Movie) {
        assert!(self.0.add_to_pending(movie).expect("add"));
    }
    fn take(&mut self) -> Option<Movie> {
        self.0.get_next_pending().expect("take")
    }
    fn complete(&mut self, movie: Movie) {
        assert!(self.0.add_to_completed(movie).expect("complete"));
    }
    fn fail(&mut self, movie: Movie, retry_after: f64) {
        assert!(self.0.add_to_failed(movie, ERROR, Some(retry_after)).expect("fail"));
    }
    fn ready_for_retry(&mut self) -> Vec<String> {
        self.0
            .get_movies_ready_for_retry(MAX_RETRIES)
            .into_iter()
            .map(|entry| entry.id().to_owned())
            .collect()
    }
    fn move_to_pending(&mut self, id: &str) {
        assert!(self.0.move_failed_to_pending(id).expect("move"));
    }
}

impl Subject for MovieQueue {
    fn worker(&self) -> Box<dyn Worker + '_> {
        Box::new(MovieQueueWorker(&self.manager))
    }
    fn finish(&self) {
        if self.flush {
            self.manager.flush().expect("flush");
        }
    }
    fn completed(&self) -> u64 {
        self.manager.get_completed_count() as u64
    }
}

pub fn movie_queue(dir: &Path, durability: Durability) -> MovieQueue {
    let manager = QueueManager::options()
        .durability(durability)
        .open(dir)
        .expect("open movie-queue");
    MovieQueue {
        manager,
        flush: matches!(durability, Durability::Batched { .. }),
    }
}

// ----- SQLite ------------------------------------------------------------

const SCHEMA: &str = "
    CREATE TABLE movies (
        id           TEXT PRIMARY KEY,
        seq          INTEGER NOT NULL,   -- FIFO order within a state
        state        TEXT NOT NULL,      -- pending | in_flight | failed | completed
        body         TEXT NOT NULL,      -- the movie's JSON
        retry_count  INTEGER NOT NULL DEFAULT 0,
        last_error   TEXT,
        retry_after  REAL,
        failed_at    REAL,
        completed_at REAL
    );
    CREATE INDEX movies_by_seq ON movies (seq);
    CREATE INDEX movies_by_state_seq ON movies (state, seq);
    CREATE INDEX movies_by_state_retry ON movies (state, retry_after);
";

pub struct Sqlite {
    path: PathBuf,
    synchronous: &'static str,
}

struct SqliteWorker {
    connection: Connection,
}

impl SqliteWorker {
    /// Runs one statement in its own `BEGIN IMMEDIATE` transaction.
    fn write(&mut self, sql: &str, parameters: impl rusqlite::Params) -> usize {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin");
        let changed = transaction
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(parameters))
            .expect("statement");
        transaction.commit().expect("commit");
        changed
    }
}

fn to_json(movie: &Movie) -> String {
    serde_json::to_string(movie).expect("a movie serializes")
}

impl Worker for SqliteWorker {
    fn add(&mut self, movie: Movie) {
        let changed = self.write(
            "INSERT OR IGNORE INTO movies (id, seq, state, body)
             VALUES (?1, (SELECT IFNULL(MAX(seq), 0) + 1 FROM movies), 'pending', ?2)",
            params![movie.id(), to_json(&movie)],
        );
        assert_eq!(changed, 1);
    }
    fn take(&mut self) -> Option<Movie> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin");
        let body: Option<String> = transaction
            .prepare_cached(
                "UPDATE movies SET state = 'in_flight'
                 WHERE id = (SELECT id FROM movies WHERE state = 'pending' ORDER BY seq LIMIT 1)
                 RETURNING body",
            )
            .and_then(|mut statement| statement.query_row([], |row| row.get(0)).optional())
            .expect("take");
        transaction.commit().expect("commit");
        let value: serde_json::Value = serde_json::from_str(&body?).expect("stored JSON");
        Some(Movie::from_value(value).expect("stored movie"))
    }
    fn complete(&mut self, movie: Movie) {
        let changed = self.write(
            "UPDATE movies SET state = 'completed', completed_at = ?2, body = ?3
             WHERE id = ?1 AND state != 'completed'",
            params![movie.id(), crate::common::unix_now(), to_json(&movie)],
        );
        assert_eq!(changed, 1);
    }
    fn fail(&mut self, movie: Movie, retry_after: f64) {
        let changed = self.write(
            "UPDATE movies SET state = 'failed', retry_count = retry_count + 1, last_error = ?2,
                 retry_after = ?3, failed_at = IFNULL(failed_at, ?4), body = ?5
             WHERE id = ?1 AND state != 'completed'",
            params![
                movie.id(),
                ERROR,
                retry_after,
                crate::common::unix_now(),
                to_json(&movie)
            ],
        );
        assert_eq!(changed, 1);
    }
    fn ready_for_retry(&mut self) -> Vec<String> {
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT id FROM movies WHERE state = 'failed' AND retry_after <= ?1 AND retry_count < ?2
                 ORDER BY retry_after",
            )
            .expect("prepare");
        statement
            .query_map(params![crate::common::unix_now(), MAX_RETRIES], |row| row.get(0))
            .expect("query")
            .collect::<rusqlite::Result<Vec<String>>>()
            .expect("rows")
    }
    fn move_to_pending(&mut self, id: &str) {
        let changed = self.write(
            "UPDATE movies SET state = 'pending', seq = (SELECT MAX(seq) + 1 FROM movies)
             WHERE id = ?1 AND state = 'failed'",
            params![id],
        );
        assert_eq!(changed, 1);
    }
}

impl Sqlite {
    pub fn create(dir: &Path, synchronous: &'static str) -> Sqlite {
        let path = dir.join("queue.db");
        let connection = Connection::open(&path).expect("open SQLite");
        let mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .expect("WAL");
        assert_eq!(mode, "wal");
        connection.execute_batch(SCHEMA).expect("schema");
        Sqlite { path, synchronous }
    }

    fn connect(&self) -> Connection {
        let connection = Connection::open(&self.path).expect("open SQLite");
        connection.busy_timeout(Duration::from_secs(10)).expect("busy_timeout");
        connection
            .pragma_update(None, "synchronous", self.synchronous)
            .expect("synchronous");
        connection
    }
}

impl Subject for Sqlite {
    fn worker(&self) -> Box<dyn Worker + '_> {
        Box::new(SqliteWorker {
            connection: self.connect(),
        })
    }
    fn completed(&self) -> u64 {
        self.connect()
            .query_row("SELECT COUNT(*) FROM movies WHERE state = 'completed'", [], |row| {
                row.get(0)
            })
            .expect("count")
    }
}

// ----- running it --------------------------------------------------------

/// Creates a fresh queue under test in a scratch directory.
pub type MakeSubject = dyn Fn(&Path) -> Box<dyn Subject>;

/// `iterations` runs of the workload, each on a fresh queue in a fresh
/// scratch directory; the total of their timed parts.
pub fn timed_runs(make: &MakeSubject, movies: u64, threads: usize, iterations: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iterations {
        let dir = crate::common::scratch_dir();
        let subject = make(dir.path());
        total += run_workload(subject.as_ref(), movies, threads);
    }
    total
}

/// The writing operations (each one journal event, one SQLite
/// transaction) of one run over `movies` movies: an add, a take and a
/// completion each; a failure, a move back and a second take for the 30%
/// that fail once.
pub fn writes(movies: u64) -> u64 {
    (0..movies).map(|number| if number % 10 >= 7 { 6 } else { 3 }).sum()
}

/// movie-queue with `durability`, default options otherwise.
pub fn make_movie_queue(durability: Durability) -> impl Fn(&Path) -> Box<dyn Subject> {
    move |dir: &Path| -> Box<dyn Subject> { Box::new(movie_queue(dir, durability)) }
}

/// SQLite (WAL) with `PRAGMA synchronous = <synchronous>`.
pub fn make_sqlite(synchronous: &'static str) -> impl Fn(&Path) -> Box<dyn Subject> {
    move |dir: &Path| -> Box<dyn Subject> { Box::new(Sqlite::create(dir, synchronous)) }
}
