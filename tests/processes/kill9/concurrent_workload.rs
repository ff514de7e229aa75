//! kill -9: a process running a concurrent `Immediate` workload is killed
//! at random moments; every operation it reported as acknowledged is in
//! the reopened store, and the store is valid.
//!
//! How: this test binary re-executes itself (`std::env::current_exe()`)
//! as a child running `kill9_child_workload` (selected with `--exact`,
//! given the store directory in `MOVIE_QUEUE_KILL9_CHILD`). The child
//! runs four threads over one `QueueManager` (`Immediate` mode, small
//! segments, a background snapshot every hundred events): each adds
//! movies and takes whatever is at the front of pending, then fails and
//! moves back, or completes, the movie it took — each movie follows a
//! fixed script of steps (added 1, taken 2, completed 3; or, for every
//! third movie: added 1, taken 2, failed 3, moved back 4, taken 5,
//! completed 6). After each call returns `Ok` the thread prints
//! `ack <step> <id>` and flushes. The parent waits for the first
//! acknowledgement, checks that a second writer is refused (`Locked`) and
//! that a read-only open sees every operation acknowledged so far, sleeps
//! a random 50–400 ms and kills the child with SIGKILL (`Child::kill`).
//! It then reopens the store (the kernel released the lock), and checks:
//! every movie is in exactly one queue, in a place its script allows, at
//! or after the step last acknowledged for it; nothing unknown appears;
//! the reopened state equals a full replay of the journal; `verify`
//! passes after a clean close. The next child continues on the same store
//! (recovering after the kill), so torn tails, segment rolls, snapshots
//! and compaction (every fifth round) all meet the kills. Every other
//! child opens with `Options::load_on_demand`, so the kills meet a writer
//! that holds only the movies it was asked about, too.
//!
//! `kill9_short` (5 kills) runs in CI. The soak:
//! `MOVIE_QUEUE_KILL9_SOAK_SECS=300 cargo test --release --test processes -- --ignored kill9_soak --nocapture`.

use crate::support::durability as durability_support;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use durability_support::{movie, scratch};
use movie_queue::{Durability, Error, Place, QueueManager};

const CHILD_ENV: &str = "MOVIE_QUEUE_KILL9_CHILD";
const ROUND_ENV: &str = "MOVIE_QUEUE_KILL9_ROUND";
const THREADS: usize = 4;
/// A child that is never killed stops by itself after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(30);

// ----- the child ---------------------------------------------------------------

#[test]
#[ignore = "the child process of the kill -9 tests; does nothing unless MOVIE_QUEUE_KILL9_CHILD is set"]
fn kill9_child_workload() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let round: u64 = std::env::var(ROUND_ENV)
        .ok()
        .and_then(|round| round.parse().ok())
        .expect("the round number");
    let qm = Arc::new(
        QueueManager::options()
            .durability(Durability::Immediate)
            .requeue_in_flight_on_open(false)
            .segment_bytes_max(16 * 1024)
            .snapshot_every_events(100)
            // Every other child loads on demand: its takes find the front
            // through the snapshot's index and files, four threads at once.
            .load_on_demand(round % 2 == 1)
            .open(PathBuf::from(dir))
            .expect("the child opens the store"),
    );
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let qm = Arc::clone(&qm);
            std::thread::spawn(move || child_thread(&qm, round, thread))
        })
        .collect();
    for thread in threads {
        thread.join().expect("a workload thread panicked");
    }
}

fn acknowledge(step: u8, id: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ack {step} {id}").expect("stdout");
    out.flush().expect("flush stdout");
}

fn child_thread(qm: &QueueManager, round: u64, thread: usize) {
    let started = Instant::now();
    let mut n = 0_u64;
    while started.elapsed() < CHILD_LIFETIME {
        let id = format!("r{round}-t{thread}-{n}");
        n += 1;
        if qm.add_to_pending(movie(&id)).expect("add") {
            acknowledge(1, &id);
        }
        let Some(taken) = qm.get_next_pending().expect("take") else {
            continue;
        };
        let (place, entry) = qm.get(taken.id()).expect("the taken movie is known");
        assert_eq!(place, Place::InFlight);
        let failing = fails_once(taken.id());
        acknowledge(if entry.retry_count == 0 { 2 } else { 5 }, taken.id());
        if failing && entry.retry_count == 0 {
            assert!(qm.add_to_failed(taken.clone(), "simulated", Some(1.0)).expect("fail"));
            acknowledge(3, taken.id());
            assert!(qm.move_failed_to_pending(taken.id()).expect("move back"));
            acknowledge(4, taken.id());
        } else {
            assert!(qm.add_to_completed(taken.clone()).expect("complete"));
            acknowledge(if failing { 6 } else { 3 }, taken.id());
        }
    }
}

/// Every third movie fails once before it completes.
fn fails_once(id: &str) -> bool {
    id.rsplit('-')
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n % 3 == 0)
}

/// The step of its script a movie has reached, from where the store has it.
fn step_of(id: &str, place: Place, retry_count: u32) -> Option<u8> {
    match (fails_once(id), place, retry_count) {
        (_, Place::Pending, 0) => Some(1),
        (_, Place::InFlight, 0) => Some(2),
        (true, Place::Failed, 1) => Some(3),
        (true, Place::Pending, 1) => Some(4),
        (true, Place::InFlight, 1) => Some(5),
        (true, Place::Completed, 0) => Some(6),
        (false, Place::Completed, 0) => Some(3),
        _ => None,
    }
}

// ----- the parent ---------------------------------------------------------------

/// A child that is killed when the guard drops, whatever happens.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        drop(self.0.kill());
        drop(self.0.wait());
    }
}

/// A small xorshift generator: random kill moments without a dependency,
/// reproducible from the printed seed (`MOVIE_QUEUE_KILL9_SEED`).
struct Random(u64);

impl Random {
    fn new() -> Self {
        let seed = std::env::var("MOVIE_QUEUE_KILL9_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |elapsed| elapsed.as_nanos() as u64 | 1)
            });
        eprintln!("kill -9 seed {seed} (MOVIE_QUEUE_KILL9_SEED to repeat)");
        Random(seed)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// What the parent learned over all rounds.
#[derive(Default)]
struct Tally {
    /// The highest step acknowledged for each movie still tracked.
    acknowledged: BTreeMap<String, u8>,
    kills: u64,
    acknowledgements: u64,
}

fn spawn_child(dir: &Path, round: u64, log: &Path) -> ChildGuard {
    let exe = std::env::current_exe().expect("the test binary");
    let stderr = std::fs::File::create(log).expect("the child's log");
    let child = Command::new(exe)
        .args([
            "--exact",
            &crate::support::common::test_name(module_path!(), "kill9_child_workload"),
            "--nocapture",
            "--ignored",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn the child");
    ChildGuard(child)
}

/// The acknowledgements read so far: (step, movie id).
type Acks = Arc<Mutex<Vec<(u8, String)>>>;

/// Collects the child's complete `ack` lines as they come.
fn read_acks(child: &mut ChildGuard) -> (Acks, std::thread::JoinHandle<()>) {
    let stdout = child.0.stdout.take().expect("piped stdout");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        // A line cut by the kill has no newline: it was not acknowledged.
        while reader.read_until(b'\n', &mut line).is_ok_and(|read| read > 0) {
            if line.ends_with(b"\n")
                && let Some(ack) = parse_ack(&String::from_utf8_lossy(&line))
            {
                sink.lock().expect("lock").push(ack);
            }
            line.clear();
        }
    });
    (lines, reader)
}

fn parse_ack(line: &str) -> Option<(u8, String)> {
    let mut words = line.trim_end().strip_prefix("ack ")?.split(' ');
    let step = words.next()?.parse().ok()?;
    Some((step, words.next()?.to_owned()))
}

fn record(tally: &mut Tally, acks: &[(u8, String)]) {
    for (step, id) in acks {
        let highest = tally.acknowledged.entry(id.clone()).or_insert(0);
        *highest = (*highest).max(*step);
    }
    tally.acknowledgements += acks.len() as u64;
}

/// One round: run a child, check the lock and a reader mid-flight, kill it.
fn run_round(dir: &Path, round: u64, random: &mut Random, tally: &mut Tally) {
    let logs = scratch();
    let log = logs.path().join("child.log");
    let mut child = spawn_child(dir, round, &log);
    let (lines, reader) = read_acks(&mut child);
    let started = Instant::now();
    while lines.lock().expect("lock").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the child acknowledged nothing; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(50 + random.below(350)));
    assert!(
        matches!(QueueManager::open(dir), Err(Error::Locked { .. })),
        "a second writer must be refused"
    );
    let seen: Vec<(u8, String)> = lines.lock().expect("lock").clone();
    let reader_view = QueueManager::open_read_only(dir).expect("a reader opens beside the writer");
    for (step, id) in &seen {
        let reached = reader_view
            .get(id.as_str())
            .and_then(|(place, entry)| step_of(id, place, entry.retry_count));
        assert!(
            reached.is_some_and(|reached| reached >= *step),
            "the reader misses {id} at step {step}"
        );
    }
    drop(reader_view);
    child.0.kill().expect("kill -9");
    child.0.wait().expect("reap the child");
    reader.join().expect("the reader thread");
    let acks = lines.lock().expect("lock").clone();
    record(tally, &acks);
    tally.kills += 1;
    check_after_kill(dir, round, tally);
}

/// Reopens the killed store and checks it against every acknowledgement.
fn check_after_kill(dir: &Path, round: u64, tally: &mut Tally) {
    let qm = QueueManager::options()
        .requeue_in_flight_on_open(false)
        .open(dir)
        .unwrap_or_else(|error| panic!("round {round}: reopening after kill -9 failed: {error}"));
    let mut seen = HashSet::new();
    for place in Place::ALL {
        for entry in qm.list(place) {
            let id = entry.id().to_owned();
            assert!(seen.insert(id.clone()), "round {round}: {id} is in two places");
            let step = step_of(&id, place, entry.retry_count)
                .unwrap_or_else(|| panic!("round {round}: {id} is {place} with {} failures", entry.retry_count));
            assert!(
                is_known_id(&id, round),
                "round {round}: {id} was never added by any child"
            );
            let acknowledged = tally.acknowledged.get(&id).copied().unwrap_or(0);
            assert!(
                step >= acknowledged,
                "round {round}: {id} is at step {step}, {acknowledged} was acknowledged"
            );
        }
    }
    for (id, step) in &tally.acknowledged {
        assert!(
            seen.contains(id),
            "round {round}: {id} (acknowledged at step {step}) is lost"
        );
    }
    let live = qm.state();
    let replayed = movie_queue::testing::full_replay(&movie_queue::testing::RealStorage, dir).expect("full replay");
    assert!(
        replayed == live,
        "round {round}: the reopened state differs from a full replay"
    );
    forget_completed(&qm, tally);
    if round % 5 == 4 {
        qm.compact().expect("compact");
    }
    qm.close().expect("close");
    let report = movie_queue::verify(dir).unwrap_or_else(|error| panic!("round {round}: verify: {error}"));
    assert!(
        report.problems.is_empty(),
        "round {round}: verify found {:?}",
        report.problems
    );
}

/// Completed movies are done: clean them up (keeping the store small for
/// long soaks) and stop tracking them.
fn forget_completed(qm: &QueueManager, tally: &mut Tally) {
    let completed = qm.list(Place::Completed);
    if completed.len() > 2_000 {
        qm.cleanup_completed_before(f64::MAX).expect("clean up");
        for entry in completed {
            tally.acknowledged.remove(entry.id());
        }
    }
}

fn is_known_id(id: &str, round: u64) -> bool {
    let mut parts = id.splitn(3, '-');
    let round_ok = parts
        .next()
        .and_then(|part| part.strip_prefix('r')?.parse::<u64>().ok())
        .is_some_and(|of| of <= round);
    let thread_ok = parts
        .next()
        .and_then(|part| part.strip_prefix('t')?.parse::<usize>().ok())
        .is_some_and(|thread| thread < THREADS);
    round_ok && thread_ok && parts.next().is_some_and(|n| n.parse::<u64>().is_ok())
}

fn kill_loop(until: impl Fn(u64, Instant) -> bool) -> Tally {
    let dir = scratch();
    let mut random = Random::new();
    let mut tally = Tally::default();
    let started = Instant::now();
    let mut round = 0;
    while !until(round, started) {
        run_round(dir.path(), round, &mut random, &mut tally);
        round += 1;
    }
    eprintln!(
        "kill -9: {} kills in {:.0?}, {} operations acknowledged, none lost, no invalid state",
        tally.kills,
        started.elapsed(),
        tally.acknowledgements
    );
    tally
}

#[test]
fn kill9_short() {
    let _alone = crate::support::alone();
    let tally = kill_loop(|round, _| round >= 5);
    assert_eq!(tally.kills, 5);
    assert!(tally.acknowledgements > 0);
}

#[test]
#[ignore = "long run: MOVIE_QUEUE_KILL9_SOAK_SECS (default 300) of kill -9; see docs/DURABILITY.md"]
fn kill9_soak() {
    let _alone = crate::support::alone();
    let seconds: u64 = std::env::var("MOVIE_QUEUE_KILL9_SOAK_SECS")
        .ok()
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or(300);
    kill_loop(|_, started| started.elapsed() >= Duration::from_secs(seconds));
}
