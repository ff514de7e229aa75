//! kill -9 during maintenance: a process running `repair`, `compact` or the
//! first open of a legacy store (its import) is killed with SIGKILL at a
//! random moment of the operation, on the real file system; the store it
//! leaves is exactly one of the states the operation allows, and finishing
//! the operation afterwards gives exactly the uninterrupted result.
//!
//! How: as `concurrent_workload.rs`, this test binary re-executes itself
//! (`std::env::current_exe()`, `--exact kill9_maintenance_child`) with the
//! store directory in `MOVIE_QUEUE_KILL9_MAINT_DIR` and the operation in
//! `MOVIE_QUEUE_KILL9_MAINT_OP`. The child prints `maint-start` right
//! before the operation and `maint-done` right after it. Each test first
//! runs one child to its end (a calibration: how long the operation takes
//! in a child, and a check that its result is the in-process one); each
//! round then copies the store, starts a child, waits for `maint-start`,
//! sleeps a random delay below that duration (half the rounds below a
//! tenth of it, where the first changes are made) and kills the child. A kill
//! counts as mid-operation when no `maint-done` line was read (the child
//! is killed or the pipe ends before it); the counts are printed, and the
//! long variants assert that some kills landed mid-operation.
//!
//! The oracles, computed before any kill on a copy of the store:
//! * `repair` of a journal with a flipped byte in a record that has records
//!   after it (the manifest removed, so nothing covers the damage): after
//!   the kill the store either still fails to open with the same error
//!   (same file, same offset), every segment still there unchanged and
//!   only the last ones gone aside, or opens
//!   with exactly the repaired state — the state after the records before
//!   the damage, computed from the undamaged store, and equal to an
//!   uninterrupted repair's on a copy — and `verify` agrees. Then `repair`
//!   again in the parent must give that state with `verify` clean; every
//!   `*.broken` file seen after the kill is still there, byte for byte;
//!   and, after the kill and at the end, no byte of the damaged store's
//!   segments is lost: each is in its segment or in a `*.broken` file
//!   beside it. Two layouts: the damage in the last segment
//!   (`kill9_repair_*`), and in a middle segment with later segments
//!   (`kill9_repair_across_segments_*`). The second found that a repair
//!   cutting the damaged segment before setting the later ones aside left
//!   a third state when killed (a `SequenceGap`, or a last segment
//!   "missing" before `journal/tail` was rewritten); repair now copies,
//!   points the tail marker, sets later segments aside from the end back,
//!   and cuts last.
//! * `compact` of a store with many small segments and an earlier
//!   compaction base: after the kill `verify` passes, the reopened state
//!   equals the state before, a full replay equals it, the event log is a
//!   suffix of the log before (record for record), the states replayed at
//!   records of that log equal the states recorded when they were written,
//!   and no segment is gone that the uninterrupted compaction keeps. Then
//!   `compact` in the parent gives the uninterrupted result (same journal
//!   files, same state, `verify` clean).
//! * the first open of a directory holding only the documented legacy
//!   files (`queue_pending.json`, `queue_failed.json`,
//!   `queue_completed.json`, `queue_removed.json`; extra fields, integer
//!   and float times, `year` as string or integer, `null`s): after the kill
//!   either no journal segment exists and the legacy files are intact byte
//!   for byte, or the journal holds the import; a reader sees, and the next
//!   writer open gives, every entry of the files exactly, pending in order.
//!   3,000 entries in CI; 200,000 in `kill9_import_200k_long`.
//!
//! CI (debug): `cargo test --test processes kill9` — 5 kills a scenario.
//! The long variants (`#[ignore]`), 50 kills a scenario unless
//! `MOVIE_QUEUE_KILL9_MAINT_KILLS` says otherwise:
//! `MOVIE_QUEUE_KILL9_MAINT_KILLS=50 cargo test --release --test processes -- --ignored kill9::maintenance:: --nocapture`.
//! Every test prints its seed; `MOVIE_QUEUE_KILL9_SEED=<seed>` repeats
//! its kill delays.

use crate::support::durability as durability_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use durability_support::{journal_dir, layout, movie, reset_dir, scratch};
use movie_queue::{Error, EventRecord, Options, Place, QueueManager, QueueState, Seq};
use serde_json::{Value, json};

const DIR_ENV: &str = "MOVIE_QUEUE_KILL9_MAINT_DIR";
const OP_ENV: &str = "MOVIE_QUEUE_KILL9_MAINT_OP";
const KILLS_ENV: &str = "MOVIE_QUEUE_KILL9_MAINT_KILLS";
const SEED_ENV: &str = "MOVIE_QUEUE_KILL9_SEED";
const START: &str = "maint-start";
const DONE: &str = "maint-done";
/// Kills a scenario in CI.
const CI_KILLS: usize = 5;
/// Kills a scenario in the long variants, unless `MOVIE_QUEUE_KILL9_MAINT_KILLS` says.
const LONG_KILLS: usize = 50;
/// The small segments of the compaction store and of the repair store
/// whose damage has later segments after it.
const SMALL_SEGMENT_BYTES: u64 = 2048;

// ----- the child ---------------------------------------------------------------

/// The maintenance operations a child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `movie_queue::repair(dir)`.
    Repair,
    /// Open (small segments, nothing automatic), then `compact()`.
    Compact,
    /// The first `QueueManager::open(dir)` of a legacy store (its import),
    /// then `close()` (its first snapshot).
    Import,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Repair => "repair",
            Op::Compact => "compact",
            Op::Import => "import",
        }
    }

    fn parse(name: &str) -> Option<Op> {
        [Op::Repair, Op::Compact, Op::Import]
            .into_iter()
            .find(|op| op.name() == name)
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("stdout");
    out.flush().expect("flush stdout");
}

#[test]
#[ignore = "the child process of the maintenance kill -9 tests; does nothing unless MOVIE_QUEUE_KILL9_MAINT_DIR is set"]
fn kill9_maintenance_child() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let op = std::env::var(OP_ENV)
        .ok()
        .and_then(|name| Op::parse(&name))
        .expect("the operation");
    match op {
        Op::Repair => {
            say(START);
            movie_queue::repair(&dir).expect("repair");
            say(DONE);
        }
        Op::Compact => {
            let qm = quiet(SMALL_SEGMENT_BYTES).open(&dir).expect("open before compacting");
            say(START);
            qm.compact().expect("compact");
            say(DONE);
            qm.close().expect("close after compacting");
        }
        Op::Import => {
            say(START);
            let qm = QueueManager::open(&dir).expect("the first open imports");
            qm.close().expect("close after the import");
            say(DONE);
        }
    }
}

// ----- running and killing a child ------------------------------------------------

/// A child that is killed when the guard drops, whatever happens.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        drop(self.0.kill());
        drop(self.0.wait());
    }
}

/// A small xorshift generator: random kill delays without a dependency,
/// reproducible from the printed seed (`MOVIE_QUEUE_KILL9_SEED`).
struct Random {
    seed: u64,
    state: u64,
}

impl Random {
    fn new(test: &str) -> Self {
        let seed = std::env::var(SEED_ENV)
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |elapsed| elapsed.as_nanos() as u64 | 1)
            });
        eprintln!("{test}: kill -9 seed {seed} ({SEED_ENV}={seed} repeats it)");
        Random { seed, state: seed }
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state % bound.max(1)
    }
}

/// What became of one child.
struct ChildRun {
    /// It printed `maint-done` (the operation returned) before it died.
    done: bool,
    /// Killed by SIGKILL (else it exited by itself, successfully).
    killed: bool,
    /// From reading `maint-start` to reading `maint-done`.
    duration: Option<Duration>,
}

/// Runs `op` in a child on `dir`; kills it `kill_after` reading its
/// `maint-start` line, or lets it finish (`None`, asserting success).
fn run_child(dir: &Path, op: Op, kill_after: Option<Duration>, context: &str) -> ChildRun {
    let logs = scratch();
    let log = logs.path().join("child.log");
    let stderr = std::fs::File::create(&log).expect("the child's log");
    let exe = std::env::current_exe().expect("the test binary");
    // The test holds `support::alone()`: no other test of this binary opens
    // a store or starts a child meanwhile, so the fork lends no lock.
    let child = Command::new(exe)
        .args([
            "--exact",
            &crate::support::common::test_name(module_path!(), "kill9_maintenance_child"),
            "--nocapture",
            "--ignored",
            "--test-threads",
            "1",
        ])
        .env(DIR_ENV, dir)
        .env(OP_ENV, op.name())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start the child");
    let mut child = ChildGuard(child);
    let mut stdout = BufReader::new(child.0.stdout.take().expect("piped stdout"));
    let child_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut line = String::new();
    loop {
        line.clear();
        let read = stdout.read_line(&mut line).expect("read the child's stdout");
        assert!(
            read > 0,
            "{context}: the child ended before `{START}`; its log:\n{}",
            child_log()
        );
        // The harness's `test <name> ... ` precedes it on the same line.
        if line.ends_with(&format!("{START}\n")) {
            break;
        }
    }
    let started = Instant::now();
    if let Some(delay) = kill_after {
        std::thread::sleep(delay);
        child.0.kill().expect("kill -9");
    }
    let mut done = false;
    let mut duration = None;
    loop {
        line.clear();
        // A line cut by the kill has no newline: it does not count.
        if stdout.read_line(&mut line).map_or(true, |read| read == 0) {
            break;
        }
        if line.ends_with(&format!("{DONE}\n")) {
            done = true;
            duration = Some(started.elapsed());
        }
    }
    let status: ExitStatus = child.0.wait().expect("reap the child");
    let killed = status.signal() == Some(libc::SIGKILL);
    assert!(
        killed || status.success(),
        "{context}: the child failed ({status}); its log:\n{}",
        child_log()
    );
    if kill_after.is_none() {
        assert!(
            done,
            "{context}: the child never said `{DONE}`; its log:\n{}",
            child_log()
        );
    }
    ChildRun { done, killed, duration }
}

/// How long `op` takes in a child (from `maint-start` to `maint-done`),
/// on a copy of `pristine` in `work`; `check` looks at the finished store.
fn calibrate(pristine: &Path, work: &Path, op: Op, test: &str, check: impl FnOnce(&Path)) -> Duration {
    reset_dir(pristine, work);
    let run = run_child(work, op, None, &format!("{test}: the calibration run"));
    check(work);
    let duration = run.duration.expect("a finished run has a duration");
    eprintln!("{test}: {} takes {duration:.2?} in a child", op.name());
    duration
}

/// The kills of one scenario.
#[derive(Default)]
struct Tally {
    kills: usize,
    /// No `maint-done` was read: the operation had not returned.
    mid_operation: usize,
    /// The operation had returned (the child was killed after, or had exited).
    after_finish: usize,
    /// Kills that found the store as it was before the operation.
    before_state: usize,
    /// Kills that found the operation's result.
    after_state: usize,
    /// Kills that found neither (described).
    other_states: Vec<String>,
}

impl Tally {
    fn count(&mut self, run: &ChildRun) {
        self.kills += 1;
        if run.done {
            self.after_finish += 1;
        } else {
            assert!(run.killed, "a child that did not finish was killed");
            self.mid_operation += 1;
        }
    }

    fn report(&self, test: &str, before: &str, after: &str, started: Instant) {
        eprintln!(
            "{test}: {} kills in {:.1?}: {} mid-operation, {} after it finished; \
             the store was {before} after {}, {after} after {}, neither after {}",
            self.kills,
            started.elapsed(),
            self.mid_operation,
            self.after_finish,
            self.before_state,
            self.after_state,
            self.other_states.len()
        );
        assert!(
            self.other_states.is_empty(),
            "{test}: {} kills left the store in neither acceptable state (the operation was finished \
             afterwards and its result checked):\n{}",
            self.other_states.len(),
            self.other_states.join("\n")
        );
    }
}

/// The number of kills of a long variant.
fn long_kills() -> usize {
    std::env::var(KILLS_ENV)
        .ok()
        .and_then(|kills| kills.parse().ok())
        .unwrap_or(LONG_KILLS)
}

/// A random delay below `duration`: half the kills anywhere in it, half
/// in its first tenth (where the first changes to the store are made).
fn random_delay(random: &mut Random, duration: Duration) -> Duration {
    let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
    let range = if random.below(2) == 0 { nanos } else { nanos / 10 };
    Duration::from_nanos(random.below(range))
}

// ----- helpers on stores ----------------------------------------------------------

/// Options with nothing automatic (no snapshot, no requeue), so the
/// store's content is a function of the operations alone.
fn quiet(segment_bytes: u64) -> Options {
    QueueManager::options()
        .requeue_in_flight_on_open(false)
        .snapshot_every_events(0)
        .snapshot_every(None)
        .segment_bytes_max(segment_bytes)
}

/// A full replay of the journal on disk, from the store's own starting point.
fn full_replay(dir: &Path) -> QueueState {
    movie_queue::testing::full_replay(&movie_queue::testing::RealStorage, dir).expect("a full replay")
}

/// Every file under `dir` whose path (relative to `dir`) has a component
/// naming it set aside (`*.broken`), with its bytes.
fn broken_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(directory) = stack.pop() {
        for entry in std::fs::read_dir(&directory).expect("list a directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path.strip_prefix(dir).expect("under the store").to_path_buf();
            if relative
                .components()
                .any(|component| component.as_os_str().to_string_lossy().contains(".broken"))
            {
                found.insert(relative, std::fs::read(&path).expect("read a set-aside file"));
            }
        }
    }
    found
}

/// The journal's segment files and their bytes, by name.
fn segments(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(journal_dir(dir))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".seg"))
        .map(|entry| {
            let bytes = std::fs::read(entry.path()).expect("read a segment");
            (entry.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

/// The journal's files by name, with their sizes — but the time index
/// and the id filters, hints each writer's open rewrites as it finds the
/// segments.
fn journal_listing(dir: &Path) -> Vec<(String, u64)> {
    movie_queue::journal_files(dir)
        .into_iter()
        .filter(|(name, _)| name != "times" && name != "ids")
        .collect()
}

/// A deterministic workload (adds, takes, failures, retries, completions;
/// a few movies left in flight) of `movies` movies; returns the state
/// after every record (`states[n]`: after `n` records). `compact_at`:
/// compact once after that many movies.
fn run_workload(qm: &QueueManager, movies: usize, compact_at: Option<usize>) -> Vec<QueueState> {
    let mut states = vec![qm.state()];
    let step = |qm: &QueueManager, states: &mut Vec<QueueState>| {
        let last = qm.last_seq().0;
        let recorded = states.len() as u64 - 1;
        assert!(last == recorded || last == recorded + 1, "one record an operation");
        if last == recorded + 1 {
            states.push(qm.state());
        }
    };
    let mut failed = Vec::new();
    for index in 0..movies {
        let id = format!("m{index:04}");
        assert!(qm.add_to_pending(movie(&id)).expect("add"));
        step(qm, &mut states);
        if index % 2 == 1 {
            let taken = qm.get_next_pending().expect("take").expect("something pending");
            step(qm, &mut states);
            match index % 8 {
                1 | 5 => {
                    assert!(qm.add_to_completed(taken).expect("complete"));
                    step(qm, &mut states);
                }
                3 => {
                    let id = taken.id().to_owned();
                    assert!(
                        qm.add_to_failed(taken, format!("tracker lost {id}"), Some(1_760_000_000.5))
                            .expect("fail")
                    );
                    step(qm, &mut states);
                    failed.push(id);
                }
                _ => {} // left in flight
            }
        }
        if index % 10 == 9
            && let Some(id) = failed.pop()
        {
            assert!(qm.move_failed_to_pending(id.as_str()).expect("move back"));
            step(qm, &mut states);
        }
        if compact_at == Some(index) {
            qm.compact().expect("compact");
        }
    }
    states
}

mod compact;
mod import;
mod repair;
