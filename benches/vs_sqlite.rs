//! movie-queue against SQLite (rusqlite, WAL) on the same lifecycle
//! workload, defined identically for both:
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
//! That is 3.9 operations per movie (add, 1.3 takes, complete, 0.3 fails,
//! 0.3 moves), each its own transaction on the SQLite side (`BEGIN
//! IMMEDIATE` … `COMMIT`; each thread its own connection, busy_timeout
//! 10 s). Phases are separated by barriers; the clock runs from the start
//! of phase 1 to the end of the drain (plus, for `Batched`, the final
//! `flush()`), excluding opening stores and connections.
//!
//! Targets (issue 6): movie-queue `Immediate` with 8 threads ≥ 5× SQLite
//! `synchronous=FULL` with 8 threads; movie-queue `Batched { 5 ms }` single
//! threaded ≥ 20× SQLite `synchronous=NORMAL` single threaded.
//! Run: `cargo bench --bench vs_sqlite`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Barrier, RwLock};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use movie_queue::{Durability, Movie, QueueManager};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

const GROUP: &str = "vs_sqlite";
const ERROR: &str = "Not found on tracker";
const MAX_RETRIES: u32 = 5;

/// One thread's handle on a queue (a connection, for SQLite).
trait Worker {
    fn add(&mut self, movie: Movie);
    fn take(&mut self) -> Option<Movie>;
    fn complete(&mut self, movie: Movie);
    fn fail(&mut self, movie: Movie, retry_after: f64);
    fn ready_for_retry(&mut self) -> Vec<String>;
    fn move_to_pending(&mut self, id: &str);
}

/// A queue under test: hands out one worker per thread.
trait Subject: Sync {
    fn worker(&self) -> Box<dyn Worker + '_>;
    /// Runs inside the timed region after the drain (`Batched`: flush).
    fn finish(&self) {}
    fn completed(&self) -> u64;
}

// ----- the workload -----------------------------------------------------

fn run_workload(subject: &dyn Subject, movies: u64, threads: usize) -> Duration {
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
        worker.add(common::movie(number));
    }
    phase.wait();
    for pass in 0.. {
        while let Some(movie) = worker.take() {
            let number: u64 = movie.id().parse().expect("numeric id");
            if pass == 0 && number % 10 >= 7 {
                worker.fail(movie, common::unix_now());
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

struct MovieQueue {
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

fn movie_queue(dir: &Path, durability: Durability) -> MovieQueue {
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

struct Sqlite {
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
            params![movie.id(), common::unix_now(), to_json(&movie)],
        );
        assert_eq!(changed, 1);
    }
    fn fail(&mut self, movie: Movie, retry_after: f64) {
        let changed = self.write(
            "UPDATE movies SET state = 'failed', retry_count = retry_count + 1, last_error = ?2,
                 retry_after = ?3, failed_at = IFNULL(failed_at, ?4), body = ?5
             WHERE id = ?1 AND state != 'completed'",
            params![movie.id(), ERROR, retry_after, common::unix_now(), to_json(&movie)],
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
            .query_map(params![common::unix_now(), MAX_RETRIES], |row| row.get(0))
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
    fn create(dir: &Path, synchronous: &'static str) -> Sqlite {
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

// ----- the benches -------------------------------------------------------

/// Creates a fresh queue under test in a scratch directory.
type MakeSubject = dyn Fn(&Path) -> Box<dyn Subject>;

fn bench_pair(criterion: &mut Criterion, movies: u64, threads: usize, pair: [(&str, &MakeSubject); 2]) {
    let mut group = criterion.benchmark_group(GROUP);
    group
        .throughput(Throughput::Elements(movies))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(8));
    for (name, make) in pair {
        group.bench_function(name, |bencher| {
            bencher.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let dir = common::scratch_dir();
                    let subject = make(dir.path());
                    total += run_workload(subject.as_ref(), movies, threads);
                }
                total
            });
        });
    }
    group.finish();
}

fn print_ratios(movies_8: usize, movies_1: usize) {
    let median = |function| common::median_ns(GROUP, function);
    let rate = |function, movies: usize| median(function).map(|nanos| movies as f64 * 1e9 / nanos);
    common::print_figure(
        "movie-queue Immediate, 8 threads",
        rate("movie_queue_immediate_8_threads", movies_8),
        "movies/s",
    );
    common::print_figure(
        "SQLite FULL, 8 threads",
        rate("sqlite_full_8_threads", movies_8),
        "movies/s",
    );
    common::print_figure(
        "movie-queue Batched, 1 thread",
        rate("movie_queue_batched_1_thread", movies_1),
        "movies/s",
    );
    common::print_figure(
        "SQLite NORMAL, 1 thread",
        rate("sqlite_normal_1_thread", movies_1),
        "movies/s",
    );
    let ratio = |slow, fast| median(slow).zip(median(fast)).map(|(slow, fast)| slow / fast);
    common::print_ratio(
        "SQLite FULL 8 threads time / movie-queue Immediate 8 threads time",
        ratio("sqlite_full_8_threads", "movie_queue_immediate_8_threads"),
        ">= 5",
        |ratio| ratio >= 5.0,
    );
    common::print_ratio(
        "SQLite NORMAL 1 thread time / movie-queue Batched 1 thread time",
        ratio("sqlite_normal_1_thread", "movie_queue_batched_1_thread"),
        ">= 20",
        |ratio| ratio >= 20.0,
    );
}

fn main() {
    let movies_8 = common::size(1_000, 40);
    let movies_1 = common::size(2_000, 40);
    let mut criterion = common::criterion();
    let immediate = |dir: &Path| -> Box<dyn Subject> { Box::new(movie_queue(dir, Durability::Immediate)) };
    let full = |dir: &Path| -> Box<dyn Subject> { Box::new(Sqlite::create(dir, "FULL")) };
    let batched = |dir: &Path| -> Box<dyn Subject> { Box::new(movie_queue(dir, common::batched())) };
    let normal = |dir: &Path| -> Box<dyn Subject> { Box::new(Sqlite::create(dir, "NORMAL")) };
    bench_pair(
        &mut criterion,
        movies_8 as u64,
        8,
        [
            ("movie_queue_immediate_8_threads", &immediate),
            ("sqlite_full_8_threads", &full),
        ],
    );
    bench_pair(
        &mut criterion,
        movies_1 as u64,
        1,
        [
            ("movie_queue_batched_1_thread", &batched),
            ("sqlite_normal_1_thread", &normal),
        ],
    );
    criterion.final_summary();
    print_ratios(movies_8, movies_1);
}
