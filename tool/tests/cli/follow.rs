//! `log --follow --json` across what a long-running consumer meets: segment
//! rolls, a `compact` that deletes the segments behind it, and a writer's
//! close and reopen. The consumer prints every event once, in order; its
//! lines carry the documented schema version; `--since` resumes exactly.
//!
//! The writer here is this process (a `QueueManager`); its opens take
//! [`crate::support::alone`], so no other test's child holds its lock.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::cli::{self as cli_support, command, mq};
use movie_queue::{Movie, QueueManager};
use serde_json::Value;

fn open(dir: &Path) -> QueueManager {
    let _alone = crate::support::alone();
    QueueManager::options()
        .segment_bytes_max(600)
        .snapshot_every_events(0)
        .snapshot_every(None)
        .open(dir)
        .unwrap()
}

fn add(qm: &QueueManager, from: usize, to: usize) {
    for n in from..to {
        qm.add_to_pending(Movie::new(n.to_string(), format!("Movie {n}"), "2020"))
            .unwrap();
    }
}

type Lines = Arc<Mutex<Vec<Value>>>;

fn wait_for(lines: &Lines, count: usize) {
    let started = Instant::now();
    while lines.lock().unwrap().len() < count {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "waited a minute for {count} lines, got {}",
            lines.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn log_follow_goes_on_across_segment_rolls_a_compact_and_a_writer_restart() {
    let dir = tempfile::tempdir().unwrap();
    let qm = open(dir.path());
    add(&qm, 0, 30);
    let mut child = cli_support::spawn(
        command()
            .arg("--dir")
            .arg(dir.path())
            .args(["log", "--follow", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let stdout = child.stdout.take().unwrap();
    let lines = Lines::default();
    let sink = Arc::clone(&lines);
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(serde_json::from_str(&line).unwrap());
        }
    });
    wait_for(&lines, 30);
    let compacted = qm.compact().unwrap();
    assert!(
        !compacted.removed.is_empty(),
        "segments were deleted under the consumer"
    );
    add(&qm, 30, 50);
    wait_for(&lines, 50);
    qm.close().unwrap();
    let qm = open(dir.path());
    add(&qm, 50, 70);
    wait_for(&lines, 70);
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    let lines = lines.lock().unwrap();
    let seqs: Vec<u64> = lines.iter().map(|line| line["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=70).collect::<Vec<_>>(), "every event once, in order");
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(line["schema"], 1, "{line}");
        assert_eq!(line["v"], 2, "{line}");
        assert_eq!(line["type"], "added");
        assert_eq!(line["movie"]["id"], n.to_string());
    }
    // A consumer that handled record 60 resumes at 61: the same lines.
    let resumed = mq(dir.path(), &["log", "--json", "--since", "61"]).ok().json_lines();
    assert_eq!(resumed[..], lines[60..]);
    // Records compacted away are an error, never a silent gap.
    let gone = mq(dir.path(), &["log", "--json", "--since", "1"]).fails_with(1);
    assert!(gone.stderr.contains("compacted away"), "{gone:?}");
    assert!(
        !gone.stderr.contains("repair"),
        "not damage, nothing to repair: {gone:?}"
    );
    // The hint names the `--since` that reads what the journal holds: follow it.
    let since = gone
        .stderr
        .split("`--since ")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("a `--since N` hint: {gone:?}"));
    let held = mq(dir.path(), &["log", "--json", "--since", since]).ok().json_lines();
    assert_eq!(held.last(), lines.last(), "the hint's --since reads to the end");
    drop(qm);
}
