//! A store opened before `fork()`: the child's copy of the manager fails
//! every call at once with `Error::Forked` (nothing blocks, nothing
//! panics), dropping it changes nothing in the store, and the child never
//! keeps the store locked: the parent goes on writing while the child
//! lives, and once the parent closes, the store opens again while the
//! child still lives. Every descriptor the store holds is close-on-exec.
//!
//! How: the test binary runs itself as a child process (one test,
//! `--test-threads=1`, a variable naming the store), which opens the
//! store and forks with `libc::fork`; the grandchild reports on stderr
//! and by its exit status, which the child waits for (killing it if it
//! does not exit in time: a call that blocked). The child prints a last
//! line the test looks for. The child closes and reopens the store once
//! the grandchild runs: the fork handler closes the lock's descriptors in
//! the grandchild as `fork` returns there, and until the grandchild is
//! first scheduled it still holds them (`src/fork.rs`).

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::common::{movie, scratch, test_name};
use movie_queue::{Error, QueueManager, Seq};

/// The store the child process works on.
const CHILD_DIR: &str = "MOVIE_QUEUE_FORK_CHILD_DIR";
/// Which scenario the child process runs.
const CHILD_SCENARIO: &str = "MOVIE_QUEUE_FORK_CHILD_SCENARIO";

/// How long a forked grandchild may take before it counts as blocked.
const GRANDCHILD_SECS_MAX: u64 = 20;

/// Runs in the child process only (the test binary run by the tests
/// below): the scenario named by [`CHILD_SCENARIO`].
#[test]
fn forking_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let dir = Path::new(&dir);
    match std::env::var(CHILD_SCENARIO).as_deref() {
        Ok("calls") => calls_in_a_fork_fail_at_once(dir),
        Ok("reopen") => the_store_reopens_while_a_fork_lives(dir),
        Ok("on demand") => an_on_demand_writers_child_answers_from_the_empty_state(dir),
        other => panic!("unknown scenario {other:?}"),
    }
}

/// Runs the test binary as a child process with `scenario` on a fresh
/// store; its stdout and stderr.
fn run_child(scenario: &str) -> (String, String) {
    let dir = scratch();
    let _spawning = crate::support::spawning();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &test_name(module_path!(), "forking_child"),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .env(CHILD_SCENARIO, scenario)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "the child failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(!stderr.contains("panicked"), "a panic:\n{stderr}");
    (stdout, stderr)
}

#[test]
fn every_call_in_a_forked_child_fails_at_once_and_the_parent_goes_on() {
    let (stdout, _) = run_child("calls");
    assert!(stdout.contains("FORK CALLS OK"), "{stdout}");
}

#[test]
fn after_the_parent_closes_the_store_reopens_while_a_forked_child_lives() {
    let (stdout, _) = run_child("reopen");
    assert!(stdout.contains("FORK REOPEN OK"), "{stdout}");
}

/// A manager that loads on demand (`Options::load_on_demand`) holds only
/// some movies, around two marker entries: its child cannot load the rest,
/// so its infallible queries answer as the empty state does (never with a
/// partial state's counts or markers), and its calls fail with `Forked`.
#[test]
fn an_on_demand_writers_forked_child_answers_from_the_empty_state() {
    let (stdout, _) = run_child("on demand");
    assert!(stdout.contains("FORK ON DEMAND OK"), "{stdout}");
}

fn an_on_demand_writers_child_answers_from_the_empty_state(dir: &Path) {
    let qm = QueueManager::open(dir).unwrap();
    for id in ["1", "2", "3"] {
        qm.add_to_pending(movie(id)).unwrap();
    }
    qm.add_to_completed(movie("4")).unwrap();
    qm.snapshot().unwrap();
    qm.add_to_pending(movie("5")).unwrap();
    qm.close().unwrap();
    let qm = QueueManager::options()
        .requeue_in_flight_on_open(false)
        .load_on_demand(true)
        .open(dir)
        .unwrap();
    assert!(!qm.is_loaded(), "the parent holds only some movies");
    let pid = fork();
    if pid == 0 {
        let answers = (
            qm.get_pending_count(),
            qm.list(movie_queue::Place::Pending).len(),
            qm.is_completed("4"),
            qm.get("1").is_some(),
        );
        let forked = matches!(qm.get_next_pending(), Err(Error::Forked { .. }));
        if answers != (0, 0, false, false) || !forked {
            eprintln!("grandchild: answers {answers:?}, take forked: {forked}");
            exit(1);
        }
        exit(0);
    }
    let status = wait(pid, Duration::from_secs(GRANDCHILD_SECS_MAX));
    assert_eq!(status, Some(0), "the grandchild blocked (None) or a check failed");
    assert_eq!(qm.get_pending_count(), 4, "the parent loads the whole state");
    qm.close().unwrap();
    println!("FORK ON DEMAND OK");
}

/// Forks: the grandchild's id in the child, 0 in the grandchild.
fn fork() -> libc::pid_t {
    // SAFETY: this process runs one test on one thread (besides the
    // store's writer); the grandchild runs the checks and `exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    pid
}

/// Ends the grandchild with `status`, without running the test
/// harness's exit or anything else of the parent's.
fn exit(status: i32) -> ! {
    // SAFETY: `_exit` ends the process at once; nothing is left to run.
    unsafe { libc::_exit(status) }
}

/// Waits for the grandchild `pid`; `None` if it did not exit in time
/// (then it is killed).
fn wait(pid: libc::pid_t, limit: Duration) -> Option<i32> {
    let started = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waits for our own child, without blocking.
        let done = unsafe { libc::waitpid(pid, &raw mut status, libc::WNOHANG) };
        if done == pid {
            return Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -1
            });
        }
        if started.elapsed() > limit {
            // SAFETY: our own child, which has not been waited for.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &raw mut status, 0);
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// In the grandchild: every call on the inherited manager fails with
/// `Forked` naming the store and its owner, at once; the infallible
/// queries answer from what was inherited; the parent's lock still holds;
/// closing and dropping do nothing. Returns the number of failed checks
/// (each reported on stderr).
fn check_inherited(qm: QueueManager, dir: &Path, owner: u32) -> i32 {
    let mut failed = 0;
    let mut check = |what: &str, held: bool| {
        if !held {
            eprintln!("grandchild: {what}");
            failed += 1;
        }
    };
    let forked = |result: Result<(), Error>| matches!(result, Err(Error::Forked { dir: ref named, owner_pid }) if named == dir && owner_pid == owner);
    let started = Instant::now();
    check("check_owner", forked(qm.check_owner()));
    check("add_to_pending", forked(qm.add_to_pending(movie("2")).map(drop)));
    check("get_next_pending", forked(qm.get_next_pending().map(drop)));
    check(
        "add_to_failed",
        forked(qm.add_to_failed(movie("1"), "e", None).map(drop)),
    );
    check(
        "mark_movies_as_removed",
        forked(qm.mark_movies_as_removed(["x"]).map(drop)),
    );
    check("flush", forked(qm.flush()));
    check("snapshot", forked(qm.snapshot().map(drop)));
    check("compact", forked(qm.compact().map(drop)));
    check("history", forked(qm.history("1").map(drop)));
    check("events_from", forked(qm.events_from(Seq(0)).map(drop)));
    check("state_at", forked(qm.state_at(Seq(1)).map(drop)));
    check("subscribe", forked(qm.subscribe(Seq(0)).map(drop)));
    check("export", forked(qm.export(dir.join("out")).map(drop)));
    check("the calls failed at once", started.elapsed() < Duration::from_secs(2));
    check(
        "the state inherited answers",
        qm.get_pending_count() == 1 && qm.last_seq() == Seq(1),
    );
    let message = qm
        .check_owner()
        .map_err(|error| error.to_string())
        .err()
        .unwrap_or_default();
    check(
        "the message says what happened and what to do",
        message.contains("fork") && message.contains(&owner.to_string()) && message.contains("open the store again"),
    );
    check(
        "the parent's lock still holds",
        matches!(QueueManager::open(dir), Err(Error::Locked { .. })),
    );
    check("close", forked(qm.close()));
    failed
}

/// The store's files: names and contents, the snapshot's included.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for folder in [dir.to_path_buf(), dir.join("journal")] {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

fn calls_in_a_fork_fail_at_once(dir: &Path) {
    let qm = QueueManager::open(dir).unwrap();
    qm.add_to_pending(movie("1")).unwrap();
    let before = files(dir);
    let owner = std::process::id();
    let pid = fork();
    if pid == 0 {
        exit(check_inherited(qm, dir, owner));
    }
    let status = wait(pid, Duration::from_secs(GRANDCHILD_SECS_MAX));
    assert_eq!(status, Some(0), "the grandchild blocked (None) or a check failed");
    assert!(files(dir) == before, "the grandchild changed the store");
    assert!(qm.add_to_pending(movie("3")).unwrap(), "the parent goes on writing");
    qm.close().unwrap();
    let reopened = QueueManager::open(dir).unwrap();
    assert_eq!(reopened.get_pending_count(), 2);
    reopened.close().unwrap();
    println!("FORK CALLS OK");
}

fn the_store_reopens_while_a_fork_lives(dir: &Path) {
    let qm = QueueManager::open(dir).unwrap();
    qm.add_to_pending(movie("1")).unwrap();
    // The grandchild says it runs (so the fork handler has run in it:
    // it runs before `fork` returns there), then just lives, holding
    // whatever it inherited, until it is killed.
    let (mut running, mut says) = std::io::pipe().unwrap();
    let pid = fork();
    if pid == 0 {
        let _ = says.write_all(b"r");
        std::thread::sleep(Duration::from_secs(GRANDCHILD_SECS_MAX * 3));
        exit(0);
    }
    drop(says);
    running.read_exact(&mut [0_u8]).expect("the grandchild runs");
    assert!(
        qm.add_to_pending(movie("2")).unwrap(),
        "the parent writes while the child lives"
    );
    qm.close().unwrap();
    // SAFETY: a signal 0 only asks whether our own child is alive.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    let again = QueueManager::open(dir);
    // Killed before any assertion, so a failure does not wait for it.
    let lived = wait(pid, Duration::ZERO).is_none();
    assert!(alive && lived, "the grandchild lived until it was killed");
    let again = again.expect("the store opens again while the forked child lives");
    assert_eq!(again.get_pending_count(), 2);
    again.close().unwrap();
    println!("FORK REOPEN OK");
}

#[test]
fn every_descriptor_the_store_holds_is_close_on_exec() {
    let dir = scratch();
    let qm = QueueManager::open(dir.path()).unwrap();
    qm.add_to_pending(movie("1")).unwrap();
    let store = dir.path().canonicalize().unwrap();
    let mut held = 0;
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let entry = entry.unwrap();
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if !target.starts_with(&store) {
            continue;
        }
        let fd = entry.file_name().to_string_lossy().into_owned();
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
        let flags = info
            .lines()
            .find_map(|line| line.strip_prefix("flags:"))
            .map(|flags| u32::from_str_radix(flags.trim(), 8).unwrap())
            .unwrap();
        assert!(
            flags & libc::O_CLOEXEC as u32 != 0,
            "{} is not close-on-exec (flags {flags:o})",
            target.display()
        );
        held += 1;
    }
    assert!(
        held >= 3,
        "the lock's two descriptors and the journal's segment: {held}"
    );
    qm.close().unwrap();
}
