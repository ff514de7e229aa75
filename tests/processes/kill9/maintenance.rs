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

/// The journal's files by name, with their sizes — but the time index,
/// a hint each writer's open rewrites as it finds the segments.
fn journal_listing(dir: &Path) -> Vec<(String, u64)> {
    movie_queue::journal_files(dir)
        .into_iter()
        .filter(|(name, _)| name != "times")
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

// ----- repair ---------------------------------------------------------------------

/// Where the damage of the repair store is.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// In the middle of the journal's only (so last) segment.
    LastSegment,
    /// In the middle of a middle segment, with later segments after it.
    MiddleSegment,
}

struct RepairFixture {
    /// The damaged store (closed, no manifest).
    pristine: tempfile::TempDir,
    /// Its segments' size limit.
    segment_bytes: u64,
    /// The segment file (relative to the store) and offset the error names.
    damage_path: PathBuf,
    damage_offset: u64,
    /// The segments as damaged, before any repair.
    segments: BTreeMap<String, Vec<u8>>,
    /// The state after the records before the damage (from the undamaged store).
    repaired: QueueState,
    repaired_last_seq: u64,
}

fn repair_fixture(damage: Damage) -> RepairFixture {
    let pristine = scratch();
    let dir = pristine.path();
    let segment_bytes = match damage {
        Damage::LastSegment => 64 << 20,
        Damage::MiddleSegment => SMALL_SEGMENT_BYTES,
    };
    let qm = quiet(segment_bytes).open(dir).expect("open the repair store");
    let states = run_workload(&qm, 120, None);
    qm.close().expect("close the repair store");
    std::fs::remove_file(dir.join(movie_queue::testing::MANIFEST_FILE)).expect("remove the manifest");
    let segments_layout = layout(dir);
    let index = match damage {
        Damage::LastSegment => {
            assert_eq!(segments_layout.len(), 1, "one segment");
            0
        }
        Damage::MiddleSegment => {
            assert!(segments_layout.len() >= 5, "many segments: {}", segments_layout.len());
            segments_layout.len() / 2
        }
    };
    let segment = &segments_layout[index];
    let record = segment.records[segment.records.len() / 2];
    assert!(
        segment.records.len() >= 3 && record.end < segment.len,
        "records after the damaged one"
    );
    let mut bytes = std::fs::read(&segment.path).expect("read the segment");
    let header = movie_queue::testing::RECORD_HEADER_BYTES;
    let at = record.start + header + (record.end - record.start - header) / 2;
    bytes[at] ^= 0x5a;
    std::fs::write(&segment.path, &bytes).expect("damage the segment");
    let damage_path = segment.path.strip_prefix(dir).expect("in the store").to_path_buf();
    let damage_offset = record.start as u64;
    let repaired_last_seq = record.seq - 1;
    let repaired = states[usize::try_from(repaired_last_seq).expect("small")].clone();

    // The state before: the store does not open, naming the damage.
    let error = quiet(segment_bytes)
        .open(dir)
        .expect_err("the damaged store does not open");
    assert_names_damage(&error, dir, &damage_path, damage_offset, "the damaged store");
    let segments_before = segments(dir);

    // The repaired state: an uninterrupted repair, in process, on a copy.
    let reference = scratch();
    let copy = reference.path().join("store");
    reset_dir(dir, &copy);
    let report = movie_queue::repair(&copy).expect("the reference repair");
    assert_eq!(
        report.last_seq,
        Seq(repaired_last_seq),
        "the reference repair's last record"
    );
    let qm = quiet(segment_bytes).open(&copy).expect("open the repaired copy");
    assert!(
        qm.state() == repaired,
        "the reference repair keeps exactly the records before the damage"
    );
    drop(qm);
    assert!(!broken_files(&copy).is_empty(), "the reference repair set bytes aside");
    assert_no_byte_lost(&copy, &segments_before, "the reference repair");
    RepairFixture {
        pristine,
        segment_bytes,
        damage_path,
        damage_offset,
        segments: segments_before,
        repaired,
        repaired_last_seq,
    }
}

#[track_caller]
fn assert_names_damage(error: &Error, dir: &Path, path: &Path, offset: u64, context: &str) {
    assert!(error.is_corruption(), "{context}: expected corruption, got {error}");
    let (found_path, found_offset) = error
        .place()
        .unwrap_or_else(|| panic!("{context}: {error} names no place"));
    assert_eq!(
        (found_path, found_offset),
        (dir.join(path).as_path(), offset),
        "{context}: the error names another place than the damage: {error}"
    );
}

/// After a kill: the unrepaired store exactly, or the repaired state.
/// A store that fails to open some other way is neither: it is counted
/// (and described) in `tally.other_states`, checked to have lost no byte,
/// and the test fails after its last kill.
fn check_repair_after_kill(store: &Path, fixture: &RepairFixture, context: &str, tally: &mut Tally) {
    assert_no_byte_lost(store, &fixture.segments, context);
    match movie_queue::verify(store) {
        Err(error) if names_damage(&error, store, &fixture.damage_path, fixture.damage_offset) => {
            // Refused at the same damage: every segment still there is as
            // it was, the damaged one among them, and the ones gone are the
            // last ones (a repair sets them aside from the end back before it
            // cuts the damaged segment; `assert_no_byte_lost` found them).
            let now = segments(store);
            let damaged = fixture
                .damage_path
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned();
            assert!(
                now.get(&damaged) == fixture.segments.get(&damaged)
                    && now
                        .iter()
                        .all(|(name, bytes)| fixture.segments.get(name) == Some(bytes))
                    && fixture.segments.keys().take(now.len()).eq(now.keys()),
                "{context}: the store is not repaired, yet its segments changed otherwise than by the last ones \
                 going aside: {:?}",
                journal_listing(store)
            );
            let error = quiet(fixture.segment_bytes)
                .open(store)
                .expect_err("an unrepaired store does not open");
            assert_names_damage(
                &error,
                store,
                &fixture.damage_path,
                fixture.damage_offset,
                &format!("{context}: open of an unrepaired store"),
            );
            tally.before_state += 1;
        }
        Err(error) => {
            let open = quiet(fixture.segment_bytes).open(store).map(drop);
            assert!(open.is_err(), "{context}: verify fails ({error}), yet the store opens");
            tally.other_states.push(format!(
                "{context}: neither unrepaired nor repaired: verify says {error}; open says {open:?}; \
                 journal: {:?}",
                journal_listing(store)
            ));
        }
        Ok(report) => {
            assert_eq!(
                report.last_seq, fixture.repaired_last_seq,
                "{context}: verify of a repaired store: {report:?}"
            );
            check_repaired(store, fixture, context);
            tally.after_state += 1;
        }
    }
}

fn names_damage(error: &Error, dir: &Path, path: &Path, offset: u64) -> bool {
    error.is_corruption() && error.place() == Some((dir.join(path).as_path(), offset))
}

/// Every byte of every segment of the damaged store is still somewhere:
/// in the segment (cut or not), or in `*.broken` files beside it —
/// `<segment>.<offset>[.<n>].broken` holding its bytes from `offset` on
/// (a cut, or with offset 0 the whole file moved aside), any other
/// `<segment>.<tag>[.<n>].broken` a whole file moved aside as it was then.
fn assert_no_byte_lost(store: &Path, segments_before: &BTreeMap<String, Vec<u8>>, context: &str) {
    let journal = journal_dir(store);
    let broken = broken_files(store);
    for (name, bytes) in segments_before {
        let mut pieces: Vec<(usize, &[u8])> = Vec::new();
        let current = std::fs::read(journal.join(name)).ok();
        if let Some(current) = &current {
            pieces.push((0, current));
        }
        for (path, kept) in &broken {
            let Some(tag) = path
                .file_name()
                .and_then(|file| file.to_str()?.strip_prefix(&format!("{name}.")))
                .filter(|_| path.parent() == Some(Path::new(movie_queue::testing::JOURNAL_DIR)))
            else {
                continue;
            };
            let offset = tag
                .split('.')
                .next()
                .and_then(|offset| offset.parse().ok())
                .unwrap_or(0);
            pieces.push((offset, kept));
        }
        let mut covered = vec![false; bytes.len()];
        for (offset, piece) in pieces {
            if bytes.get(offset..offset + piece.len()) == Some(piece) {
                covered[offset..offset + piece.len()].fill(true);
            }
        }
        let lost = covered.iter().filter(|covered| !**covered).count();
        assert!(
            lost == 0,
            "{context}: {lost} bytes of {name} are neither in it nor set aside; set aside: {:?}",
            broken.keys().collect::<Vec<_>>()
        );
    }
}

/// The store opens with exactly the repaired state.
fn check_repaired(store: &Path, fixture: &RepairFixture, context: &str) {
    let reader = QueueManager::open_read_only(store).unwrap_or_else(|error| panic!("{context}: a reader: {error}"));
    assert!(
        reader.state() == fixture.repaired,
        "{context}: a reader sees another state than the repaired one"
    );
    drop(reader);
    let qm = quiet(fixture.segment_bytes)
        .open(store)
        .unwrap_or_else(|error| panic!("{context}: reopening the repaired store: {error}"));
    assert!(
        qm.state() == fixture.repaired,
        "{context}: the reopened state is not the repaired one"
    );
    assert!(
        full_replay(store) == fixture.repaired,
        "{context}: a full replay differs from the repaired state"
    );
    qm.close().unwrap_or_else(|error| panic!("{context}: close: {error}"));
}

/// Finishes the repair in the parent; checks the result, that every file
/// set aside before it is still there, and that no byte is lost.
fn finish_repair(store: &Path, fixture: &RepairFixture, after_kill: &BTreeMap<PathBuf, Vec<u8>>, context: &str) {
    movie_queue::repair(store).unwrap_or_else(|error| panic!("{context}: repair after the kill: {error}"));
    check_repaired(store, fixture, &format!("{context}, repair finished"));
    let report = movie_queue::verify(store).unwrap_or_else(|error| panic!("{context}: verify: {error}"));
    assert!(
        report.problems.is_empty(),
        "{context}: verify found {:?}",
        report.problems
    );
    assert_eq!(
        report.last_seq, fixture.repaired_last_seq,
        "{context}: verify's last record"
    );
    let now = broken_files(store);
    for (path, bytes) in after_kill {
        assert!(
            now.get(path) == Some(bytes),
            "{context}: {} (set aside before the kill) is gone or changed",
            path.display()
        );
    }
    assert_no_byte_lost(store, &fixture.segments, &format!("{context}, repair finished"));
}

fn repair_kills(test: &str, damage: Damage, kills: usize) -> Tally {
    let started = Instant::now();
    let mut random = Random::new(test);
    let fixture = repair_fixture(damage);
    let work = scratch();
    let store = work.path().join("store");
    let duration = calibrate(fixture.pristine.path(), &store, Op::Repair, test, |store| {
        check_repaired(store, &fixture, &format!("{test}: the calibration run"));
    });
    let mut tally = Tally::default();
    for kill in 0..kills {
        reset_dir(fixture.pristine.path(), &store);
        let delay = random_delay(&mut random, duration);
        let context = format!("{test}: kill {kill} (seed {}, delay {delay:?})", random.seed);
        let run = run_child(&store, Op::Repair, Some(delay), &context);
        tally.count(&run);
        let after_kill = broken_files(&store);
        check_repair_after_kill(&store, &fixture, &context, &mut tally);
        finish_repair(&store, &fixture, &after_kill, &context);
    }
    tally.report(test, "unrepaired", "repaired", started);
    tally
}

#[test]
fn kill9_repair_short() {
    let _alone = crate::support::alone();
    let tally = repair_kills("kill9_repair_short", Damage::LastSegment, CI_KILLS);
    assert_eq!(tally.kills, CI_KILLS);
}

#[test]
#[ignore = "long run: MOVIE_QUEUE_KILL9_MAINT_KILLS (default 50) kills; see the module's documentation"]
fn kill9_repair_long() {
    let _alone = crate::support::alone();
    let tally = repair_kills("kill9_repair_long", Damage::LastSegment, long_kills());
    assert!(tally.mid_operation > 0, "no kill landed during the repair");
}

#[test]
fn kill9_repair_across_segments_short() {
    let _alone = crate::support::alone();
    let tally = repair_kills("kill9_repair_across_segments_short", Damage::MiddleSegment, CI_KILLS);
    assert_eq!(tally.kills, CI_KILLS);
}

#[test]
#[ignore = "long run: MOVIE_QUEUE_KILL9_MAINT_KILLS (default 50) kills; see the module's documentation"]
fn kill9_repair_across_segments_long() {
    let _alone = crate::support::alone();
    let tally = repair_kills("kill9_repair_across_segments_long", Damage::MiddleSegment, long_kills());
    assert!(tally.mid_operation > 0, "no kill landed during the repair");
}

// ----- compact --------------------------------------------------------------------

struct CompactFixture {
    /// The store: many small segments, an earlier compaction base, closed.
    pristine: tempfile::TempDir,
    /// `states[n]`: the state after record `n`, as written.
    states: Vec<QueueState>,
    last_seq: u64,
    /// The event log before the compaction.
    events: Vec<EventRecord>,
    /// The segments before the compaction, by name.
    segments: BTreeSet<String>,
    /// An uninterrupted compaction: the journal's files after it, and the
    /// segments it removed.
    reference_listing: Vec<(String, u64)>,
    reference_removed: BTreeSet<String>,
}

fn compact_fixture() -> CompactFixture {
    let pristine = scratch();
    let dir = pristine.path();
    let qm = quiet(SMALL_SEGMENT_BYTES).open(dir).expect("open the compaction store");
    let states = run_workload(&qm, 160, Some(60));
    let last_seq = qm.last_seq().0;
    let events: Vec<EventRecord> = qm
        .events_from(Seq(0))
        .expect("the event log")
        .collect::<Result<_, _>>()
        .expect("every event reads");
    qm.close().expect("close the compaction store");
    assert!(
        journal_dir(dir).join(movie_queue::testing::BASE_FILE).exists(),
        "an earlier compaction base"
    );
    let segment_names: BTreeSet<String> = segments(dir).into_keys().collect();
    assert!(segment_names.len() >= 10, "many segments: {}", segment_names.len());
    assert_eq!(events.last().map(|record| record.seq), Some(Seq(last_seq)));

    let reference = scratch();
    let copy = reference.path().join("store");
    reset_dir(dir, &copy);
    let qm = quiet(SMALL_SEGMENT_BYTES).open(&copy).expect("open the copy");
    let report = qm.compact().expect("the reference compaction");
    assert!(qm.state() == states[states.len() - 1], "compaction changes no state");
    qm.close().expect("close the copy");
    let reference_removed: BTreeSet<String> = report
        .removed
        .iter()
        .map(|path| path.file_name().expect("a name").to_string_lossy().into_owned())
        .collect();
    assert!(
        !reference_removed.is_empty(),
        "the reference compaction removes segments"
    );
    CompactFixture {
        pristine,
        states,
        last_seq,
        events,
        segments: segment_names,
        reference_listing: journal_listing(&copy),
        reference_removed,
    }
}

/// The state before compaction, a consistent log and replay; returns
/// whether any segment is gone.
fn check_compacted_store(store: &Path, fixture: &CompactFixture, context: &str) -> bool {
    let report = movie_queue::verify(store).unwrap_or_else(|error| panic!("{context}: verify: {error}"));
    assert_eq!(report.last_seq, fixture.last_seq, "{context}: verify's last record");
    let now: BTreeSet<String> = segments(store).into_keys().collect();
    let gone: BTreeSet<String> = fixture.segments.difference(&now).cloned().collect();
    assert!(
        gone.is_subset(&fixture.reference_removed),
        "{context}: segments the compaction keeps are gone: {gone:?}"
    );
    assert!(
        now.is_subset(&fixture.segments),
        "{context}: new segments appeared: {now:?}"
    );
    let before = &fixture.states[fixture.states.len() - 1];
    let qm = quiet(SMALL_SEGMENT_BYTES)
        .open(store)
        .unwrap_or_else(|error| panic!("{context}: reopening: {error}"));
    assert_eq!(qm.last_seq(), Seq(fixture.last_seq), "{context}: the last record");
    assert!(qm.state() == *before, "{context}: the state changed");
    assert!(full_replay(store) == *before, "{context}: a full replay differs");
    let events: Vec<EventRecord> = qm
        .events_from(Seq(0))
        .unwrap_or_else(|error| panic!("{context}: the event log: {error}"))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|error| panic!("{context}: an event of the log: {error}"));
    assert!(!events.is_empty(), "{context}: the log is empty");
    assert!(
        events.len() <= fixture.events.len() && fixture.events.ends_with(&events),
        "{context}: the log ({} events from record {}) is not a suffix of the log before ({} events from record {})",
        events.len(),
        events[0].seq,
        fixture.events.len(),
        fixture.events[0].seq
    );
    let first = events[0].seq.0;
    for seq in [first, (first + fixture.last_seq) / 2, fixture.last_seq] {
        match qm.state_at(Seq(seq)) {
            Ok(state) => assert!(
                state == fixture.states[usize::try_from(seq).expect("small")],
                "{context}: the state replayed at record {seq} is not the one written"
            ),
            Err(Error::InvalidArgument(_)) if seq < fixture.last_seq => {} // before the base: compacted away
            Err(error) => panic!("{context}: the state at record {seq}: {error}"),
        }
    }
    qm.close().unwrap_or_else(|error| panic!("{context}: close: {error}"));
    !gone.is_empty()
}

/// Finishes the compaction in the parent: the uninterrupted result.
fn finish_compact(store: &Path, fixture: &CompactFixture, context: &str) {
    let qm = quiet(SMALL_SEGMENT_BYTES)
        .open(store)
        .unwrap_or_else(|error| panic!("{context}: reopening: {error}"));
    qm.compact()
        .unwrap_or_else(|error| panic!("{context}: compact after the kill: {error}"));
    qm.close().unwrap_or_else(|error| panic!("{context}: close: {error}"));
    check_compacted_store(store, fixture, &format!("{context}, compaction finished"));
    let report = movie_queue::verify(store).unwrap_or_else(|error| panic!("{context}: verify: {error}"));
    assert!(
        report.problems.is_empty(),
        "{context}: verify found {:?}",
        report.problems
    );
    assert_eq!(
        journal_listing(store),
        fixture.reference_listing,
        "{context}: the journal differs from an uninterrupted compaction's"
    );
}

fn compact_kills(test: &str, kills: usize) -> Tally {
    let started = Instant::now();
    let mut random = Random::new(test);
    let fixture = compact_fixture();
    let work = scratch();
    let store = work.path().join("store");
    let duration = calibrate(fixture.pristine.path(), &store, Op::Compact, test, |store| {
        let context = format!("{test}: the calibration run");
        check_compacted_store(store, &fixture, &context);
        assert_eq!(journal_listing(store), fixture.reference_listing, "{context}");
    });
    let mut tally = Tally::default();
    for kill in 0..kills {
        reset_dir(fixture.pristine.path(), &store);
        let delay = random_delay(&mut random, duration);
        let context = format!("{test}: kill {kill} (seed {}, delay {delay:?})", random.seed);
        let run = run_child(&store, Op::Compact, Some(delay), &context);
        tally.count(&run);
        if check_compacted_store(&store, &fixture, &context) {
            tally.after_state += 1;
        } else {
            tally.before_state += 1;
        }
        finish_compact(&store, &fixture, &context);
    }
    tally.report(test, "with every segment", "with segments removed", started);
    tally
}

#[test]
fn kill9_compact_short() {
    let _alone = crate::support::alone();
    let tally = compact_kills("kill9_compact_short", CI_KILLS);
    assert_eq!(tally.kills, CI_KILLS);
}

#[test]
#[ignore = "long run: MOVIE_QUEUE_KILL9_MAINT_KILLS (default 50) kills; see the module's documentation"]
fn kill9_compact_long() {
    let _alone = crate::support::alone();
    let tally = compact_kills("kill9_compact_long", long_kills());
    assert!(tally.mid_operation > 0, "no kill landed during the compaction");
}

// ----- legacy import ------------------------------------------------------------------

/// The four documented files as the application writes them.
const LEGACY_FILES: [&str; 4] = [
    "queue_pending.json",
    "queue_failed.json",
    "queue_completed.json",
    "queue_removed.json",
];

struct ImportFixture {
    /// A directory holding only the legacy files.
    pristine: tempfile::TempDir,
    /// Their bytes, by name.
    files: Vec<(&'static str, Vec<u8>)>,
    /// Their entries: pending, failed, completed, removed.
    entries: [Vec<Value>; 4],
    /// The state of an uninterrupted import.
    imported: QueueState,
}

/// A legacy entry of each queue, varied as the application's are.
fn legacy_entry(index: usize) -> (usize, Value) {
    let id = format!("tt{index:07}");
    let title = format!("Film {index} \u{e9}t\u{e9}");
    let year = if index.is_multiple_of(2) {
        json!(1950 + index % 70)
    } else {
        json!(format!("{}", 1950 + index % 70))
    };
    let queued_at = if index.is_multiple_of(3) {
        json!(1_760_806_482 + index as u64)
    } else {
        json!(1_760_806_482.123_456_7 + index as f64)
    };
    match index % 20 {
        0..=9 => {
            let mut entry = json!({"id": id, "title": title, "year": year});
            let fields = entry.as_object_mut().expect("an object");
            if index % 4 == 1 {
                fields.insert("slug".into(), json!(format!("film-{index}")));
                fields.insert("imdb_id".into(), json!(id));
            }
            if index.is_multiple_of(7) {
                fields.insert("slug".into(), Value::Null);
            }
            fields.insert("queued_at".into(), queued_at);
            fields.insert("source".into(), json!({"list": "watchlist", "rank": [index, 2.5]}));
            if index % 5 == 3 {
                fields.insert("retry_count".into(), json!(1 + index % 3));
                fields.insert("last_error".into(), json!("Connection reset"));
            }
            (0, entry)
        }
        10..=13 => (
            1,
            json!({"id": id, "title": title, "year": year, "quality": "1080p",
                   "retry_count": 1 + index % 6, "last_error": format!("Not found on tracker ({index})"),
                   "retry_after": 1_760_813_282.5 + index as f64, "failed_at": 1_760_806_482 + index as u64}),
        ),
        14..=18 => {
            let completed_at = if index.is_multiple_of(2) {
                json!(1_760_813_282 + index as u64)
            } else {
                json!(1_760_813_282.987_654_2 + index as f64)
            };
            (
                2,
                json!({"id": id, "title": title, "year": year, "completed_at": completed_at}),
            )
        }
        _ => (
            3,
            json!({"id": id, "title": title, "year": year, "status": "removed",
                   "removed_at": 1_760_900_000 + index as u64}),
        ),
    }
}

fn import_fixture(entries: usize) -> ImportFixture {
    let pristine = scratch();
    let mut lists: [Vec<Value>; 4] = Default::default();
    for index in 0..entries {
        let (queue, entry) = legacy_entry(index);
        lists[queue].push(entry);
    }
    let mut files = Vec::new();
    for (name, list) in LEGACY_FILES.into_iter().zip(&lists) {
        let bytes = serde_json::to_vec_pretty(list).expect("render a legacy file");
        std::fs::write(pristine.path().join(name), &bytes).expect("write a legacy file");
        files.push((name, bytes));
    }
    let reference = scratch();
    let copy = reference.path().join("store");
    reset_dir(pristine.path(), &copy);
    let qm = QueueManager::open(&copy).expect("the reference import");
    assert_lists(&qm, &lists, "the reference import");
    let imported = qm.state();
    qm.close().expect("close the reference import");
    ImportFixture {
        pristine,
        files,
        entries: lists,
        imported,
    }
}

/// The queues of `qm` are exactly the legacy files' entries, in order.
#[track_caller]
fn assert_lists(qm: &QueueManager, entries: &[Vec<Value>; 4], context: &str) {
    let places = [Place::Pending, Place::Failed, Place::Completed, Place::Removed];
    for (place, expected) in places.into_iter().zip(entries) {
        let got: Vec<Value> = qm.list(place).iter().map(movie_queue::QueueEntry::to_value).collect();
        if got != *expected {
            let first = got
                .iter()
                .zip(expected)
                .position(|(got, expected)| got != expected)
                .unwrap_or(got.len().min(expected.len()));
            panic!(
                "{context}: {place} holds {} entries, the legacy file {}; the first difference at {first}: {:?} vs {:?}",
                got.len(),
                expected.len(),
                got.get(first),
                expected.get(first)
            );
        }
    }
    assert_eq!(qm.list(Place::InFlight).len(), 0, "{context}: nothing in flight");
}

/// After a kill: not imported (the legacy files intact byte for byte), or
/// imported whole; a reader sees the files' entries either way.
fn check_import_after_kill(store: &Path, fixture: &ImportFixture, context: &str, tally: &mut Tally) {
    let imported = !segments(store).is_empty();
    if imported {
        tally.after_state += 1;
    } else {
        for (name, bytes) in &fixture.files {
            assert!(
                std::fs::read(store.join(name)).ok().as_ref() == Some(bytes),
                "{context}: no journal, and {name} is not the legacy file it was"
            );
        }
        assert!(
            !store.join(movie_queue::testing::MANIFEST_FILE).exists(),
            "{context}: no journal, yet a manifest"
        );
        tally.before_state += 1;
    }
    let report = movie_queue::verify(store).unwrap_or_else(|error| panic!("{context}: verify: {error}"));
    assert_eq!(
        report.start == "legacy",
        !imported,
        "{context}: verify starts from {}",
        report.start
    );
    let reader = QueueManager::open_read_only(store).unwrap_or_else(|error| panic!("{context}: a reader: {error}"));
    assert_lists(
        &reader,
        &fixture.entries,
        &format!("{context}: a reader after the kill"),
    );
    assert!(reader.state() == fixture.imported, "{context}: a reader's state");
}

/// The next open: imports (if it must), and holds exactly the files' entries.
fn finish_import(store: &Path, fixture: &ImportFixture, context: &str) {
    let qm = QueueManager::open(store).unwrap_or_else(|error| panic!("{context}: the next open: {error}"));
    assert_lists(&qm, &fixture.entries, &format!("{context}: the next open"));
    assert!(qm.state() == fixture.imported, "{context}: the next open's state");
    assert!(
        full_replay(store) == fixture.imported,
        "{context}: a full replay differs"
    );
    let events: Vec<EventRecord> = qm
        .events_from(Seq(0))
        .unwrap_or_else(|error| panic!("{context}: the event log: {error}"))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|error| panic!("{context}: an event of the log: {error}"));
    assert!(!events.is_empty(), "{context}: an import is journaled");
    for (index, record) in events.iter().enumerate() {
        assert_eq!(record.seq, Seq(index as u64 + 1), "{context}: the import's records");
        assert!(
            matches!(record.event, movie_queue::Event::Imported { .. }),
            "{context}: record {} is {}",
            record.seq,
            record.event.kind()
        );
    }
    qm.close().unwrap_or_else(|error| panic!("{context}: close: {error}"));
    let report = movie_queue::verify(store).unwrap_or_else(|error| panic!("{context}: verify: {error}"));
    assert!(
        report.problems.is_empty(),
        "{context}: verify found {:?}",
        report.problems
    );
    assert_eq!(report.last_seq, events.len() as u64, "{context}: verify's last record");
    let qm = QueueManager::open(store).unwrap_or_else(|error| panic!("{context}: reopening: {error}"));
    assert!(qm.state() == fixture.imported, "{context}: reopened after the import");
    qm.close().unwrap_or_else(|error| panic!("{context}: close: {error}"));
}

fn import_kills(test: &str, entries: usize, kills: usize) -> Tally {
    let started = Instant::now();
    let mut random = Random::new(test);
    let fixture = import_fixture(entries);
    eprintln!(
        "{test}: {entries} legacy entries, {} bytes of legacy files, prepared in {:.1?}",
        fixture.files.iter().map(|(_, bytes)| bytes.len()).sum::<usize>(),
        started.elapsed()
    );
    let work = scratch();
    let store = work.path().join("store");
    let duration = calibrate(fixture.pristine.path(), &store, Op::Import, test, |store| {
        finish_import(store, &fixture, &format!("{test}: the calibration run"));
    });
    let mut tally = Tally::default();
    for kill in 0..kills {
        reset_dir(fixture.pristine.path(), &store);
        let delay = random_delay(&mut random, duration);
        let context = format!("{test}: kill {kill} (seed {}, delay {delay:?})", random.seed);
        let run = run_child(&store, Op::Import, Some(delay), &context);
        tally.count(&run);
        check_import_after_kill(&store, &fixture, &context, &mut tally);
        finish_import(&store, &fixture, &context);
    }
    tally.report(test, "not imported", "imported", started);
    tally
}

#[test]
fn kill9_import_short() {
    let _alone = crate::support::alone();
    let tally = import_kills("kill9_import_short", 3_000, CI_KILLS);
    assert_eq!(tally.kills, CI_KILLS);
}

#[test]
#[ignore = "long run: MOVIE_QUEUE_KILL9_MAINT_KILLS (default 50) kills; see the module's documentation"]
fn kill9_import_long() {
    let _alone = crate::support::alone();
    let tally = import_kills("kill9_import_long", 3_000, long_kills());
    assert!(tally.mid_operation > 0, "no kill landed during the import");
}

#[test]
#[ignore = "long run: 200,000 legacy entries, MOVIE_QUEUE_KILL9_MAINT_KILLS (default 50) kills; see the module's documentation"]
fn kill9_import_200k_long() {
    let _alone = crate::support::alone();
    let tally = import_kills("kill9_import_200k_long", 200_000, long_kills());
    assert!(tally.mid_operation > 0, "no kill landed during the import");
}
