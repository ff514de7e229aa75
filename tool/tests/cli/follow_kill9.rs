//! kill -9 of the writer under a `log --follow --json` consumer: what the
//! consumer printed is a gap-free, repeat-free prefix of the journal, and
//! after the writer restarts the consumer goes on with the new events.
//!
//! How: this test binary re-executes itself as a writer
//! (`follow_child_writer`, selected with `--exact`, given the store in
//! `MOVIE_QUEUE_FOLLOW_WRITER`) that adds movies in a loop, `Immediate`,
//! with small segments (they roll every few dozen events) and a background
//! snapshot every fifty. A `movie-queue log --follow --json` process
//! follows the store. The parent waits until the consumer has printed a
//! hundred events, kills the writer with SIGKILL, starts a second writer
//! (which recovers the store) and waits until the consumer has printed a
//! hundred more, including the second writer's. Then it stops the
//! consumer and compares: its lines are exactly the first lines of
//! `movie-queue log --json` of the store (same seq, time and fields).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::cli::{self as cli_support, add, command, mq};
use movie_queue::{Durability, Movie, QueueManager};
use serde_json::Value;

const WRITER_ENV: &str = "MOVIE_QUEUE_FOLLOW_WRITER";
const ROUND_ENV: &str = "MOVIE_QUEUE_FOLLOW_ROUND";
const WRITER_LIFETIME: Duration = Duration::from_secs(60);

#[test]
#[ignore = "the writer process of the follow kill -9 test; does nothing unless MOVIE_QUEUE_FOLLOW_WRITER is set"]
fn follow_child_writer() {
    let Some(dir) = std::env::var_os(WRITER_ENV) else {
        return;
    };
    let round = std::env::var(ROUND_ENV).unwrap_or_default();
    let qm = QueueManager::options()
        .durability(Durability::Immediate)
        .segment_bytes_max(4 * 1024)
        .snapshot_every_events(50)
        .open(PathBuf::from(dir))
        .expect("the writer opens the store");
    let started = Instant::now();
    let mut n = 0_u64;
    while started.elapsed() < WRITER_LIFETIME {
        let id = format!("w{round}-{n}");
        qm.add_to_pending(Movie::new(id.as_str(), format!("Movie {id}"), "2020"))
            .expect("add");
        n += 1;
    }
}

/// Kills and reaps the child when dropped (a failing test leaves no process behind).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        drop(self.0.kill());
        drop(self.0.wait());
    }
}

fn spawn_writer(dir: &Path, round: u64) -> Guard {
    let exe = std::env::current_exe().expect("the test binary");
    Guard(cli_support::spawn(
        Command::new(exe)
            .args([
                "--exact",
                &crate::support::common::test_name(module_path!(), "follow_child_writer"),
                "--ignored",
                "--test-threads",
                "1",
            ])
            .env(WRITER_ENV, dir)
            .env(ROUND_ENV, round.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    ))
}

/// The consumer's complete lines, as they come.
type Lines = Arc<Mutex<Vec<String>>>;

fn spawn_consumer(dir: &Path) -> (Guard, Lines) {
    let mut child = cli_support::spawn(
        command()
            .arg("--dir")
            .arg(dir)
            .args(["log", "--follow", "--json", "--since", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let stdout = child.stdout.take().expect("piped stdout");
    let lines = Lines::default();
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    (Guard(child), lines)
}

/// Waits (at most a minute) until `enough` holds of the consumer's lines.
fn wait_for(lines: &Lines, what: &str, enough: impl Fn(&[String]) -> bool) {
    let started = Instant::now();
    while !enough(&lines.lock().unwrap()) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "waited a minute for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_follow_consumer_sees_a_gap_free_prefix_through_a_kill_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "seed");
    let (mut consumer, lines) = spawn_consumer(dir.path());
    let writer = spawn_writer(dir.path(), 0);
    wait_for(&lines, "the first writer's events", |lines| lines.len() >= 100);
    drop(writer);
    let at_kill = lines.lock().unwrap().len();
    let writer = spawn_writer(dir.path(), 1);
    wait_for(&lines, "the second writer's events", |lines| {
        lines.len() >= at_kill + 100 && lines.last().is_some_and(|line| line.contains("\"w1-"))
    });
    drop(writer);
    consumer.0.kill().unwrap();
    consumer.0.wait().unwrap();
    let printed: Vec<Value> = lines
        .lock()
        .unwrap()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let journal = mq(dir.path(), &["log", "--json"]).ok().json_lines();
    assert!(printed.len() <= journal.len());
    for (index, (line, record)) in printed.iter().zip(&journal).enumerate() {
        assert_eq!(line, record, "line {index} of the consumer");
    }
    let seqs: Vec<u64> = printed.iter().map(|line| line["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=printed.len() as u64).collect::<Vec<_>>());
    assert!(
        printed
            .iter()
            .any(|line| line["movie"]["id"].as_str().is_some_and(|id| id.starts_with("w1-"))),
        "the consumer went on after the restart"
    );
}
