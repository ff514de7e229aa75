//! The tool beside a process that holds the store (this test process,
//! through the library): every operator command goes through the holder's
//! control socket and prints what it prints on a free store, the change is
//! in the holder's projection at once, and a holder that does not answer
//! there is one line and a hint, never a hang.

use std::path::Path;

use crate::support::cli as cli_support;

use cli_support::{add, mq};
use movie_queue::{Place, QueueManager};

/// A store with one movie of every kind: 1 in flight, 2 failed, 3
/// completed, 4 and 5 pending, 6 removed.
fn build(dir: &Path) {
    for id in ["1", "2", "3", "4", "5", "6"] {
        add(dir, id);
    }
    mq(dir, &["next"]).ok();
    mq(dir, &["next"]).ok();
    mq(dir, &["fail", "2", "--error", "timeout", "--retry-in", "2h"]).ok();
    mq(dir, &["next"]).ok();
    mq(dir, &["complete", "3"]).ok();
    mq(dir, &["mark-removed", "1", "2", "3", "4", "5"]).ok();
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The application holding `dir`, as Movie Sync opens it (in flight stays
/// in flight here so both copies agree).
fn hold(dir: &Path) -> QueueManager {
    QueueManager::options()
        .requeue_in_flight_on_open(false)
        .open(dir)
        .expect("the holder opens the store")
}

/// `value` without the times each run stamps from its own clock (any
/// `*_at`, `ts`, `time`, `retry_after`, and the record numbers' `seq`).
fn without_times(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(without_times).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .filter(|(key, _)| !(key.ends_with("_at") || ["ts", "time", "retry_after"].contains(&key.as_str())))
                .map(|(key, value)| (key, without_times(value)))
                .collect(),
        ),
        other => other,
    }
}

#[test]
fn operator_commands_through_the_holder_print_what_they_print_on_a_free_store() {
    let held = tempfile::tempdir().unwrap();
    let free = tempfile::tempdir().unwrap();
    build(held.path());
    copy_dir(held.path(), free.path());
    let holder = hold(held.path());
    assert!(
        held.path().join("control.sock").exists(),
        "the holder serves its socket"
    );
    let commands: &[&[&str]] = &[
        &["stats"],
        &["stats", "--json"],
        &["show", "2", "--json"],
        &["list", "pending"],
        &["list", "removed", "--json"],
        &["reset", "2"],
        &["reset", "2"],
        &["reset", "nosuch"],
        &["list", "pending", "--offset", "1", "--limit", "1"],
        &["complete", "4"],
        &["complete", "4"],
        &["fail", "3", "--error", "x", "--retry-in", "1h"],
        &["restore", "6"],
        &["restore", "6"],
        &["mark-removed", "1", "2", "3"],
        &["forget", "5"],
        &["add", "--id", "7", "--title", "Seven", "--year", "1995"],
        &["add", "--id", "7", "--title", "Seven", "--year", "1995"],
        &["add", "--json", "{\"id\": \"8\", \"title\": 8}"],
        &["requeue-in-flight"],
        &["list", "pending", "--json"],
        &["retry"],
        &["stats", "--json"],
    ];
    for args in commands {
        let expected = mq(free.path(), args);
        let got = mq(held.path(), args);
        let same = |text: &str, dir: &Path| text.replace(&dir.display().to_string(), "DIR");
        let unstamped = |text: String| {
            // Times stamped by each run's own clock differ: compared without them.
            serde_json::from_str::<serde_json::Value>(&text).map_or(text, |value| without_times(value).to_string())
        };
        assert_eq!(
            (
                got.code,
                unstamped(same(&got.stdout, held.path())),
                same(&got.stderr, held.path())
            ),
            (
                expected.code,
                unstamped(same(&expected.stdout, free.path())),
                same(&expected.stderr, free.path())
            ),
            "movie-queue {args:?} through the holder, and on a free store"
        );
    }
    // The holder's own projection saw every change at once.
    assert_eq!(
        holder.get("2").map(|(place, entry)| (place, entry.retry_count)),
        Some((Place::Pending, 0))
    );
    // Completed, then not on the watchlist `mark-removed 1 2 3` gave.
    assert_eq!(holder.get("4").map(|(place, _)| place), Some(Place::Removed));
    assert_eq!(holder.get("7").map(|(place, _)| place), Some(Place::Pending));
    assert_eq!(holder.get("5"), None, "forgotten");
    let holders_history = holder.history("2").unwrap();
    assert!(
        holders_history.iter().any(|record| record.event.kind() == "reset"),
        "the reset is in the audit trail: {holders_history:?}"
    );
    holder.close().unwrap();
    assert!(
        !held.path().join("control.sock").exists(),
        "a clean close removes the socket"
    );
    assert_eq!(
        without_times(mq(held.path(), &["list", "pending", "--json"]).ok().json()),
        without_times(mq(free.path(), &["list", "pending", "--json"]).ok().json()),
        "the two stores hold the same queues"
    );
}

#[test]
fn a_holder_without_a_socket_is_one_line_and_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "1");
    let holder = QueueManager::options().control_socket(false).open(dir.path()).unwrap();
    let run = mq(dir.path(), &["reset", "1"]).fails_with(1);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{run:?}");
    assert!(
        lines[0].starts_with("movie-queue: store ")
            && lines[0].contains(
                "is held by another process, and its control socket does not answer: it serves no control socket"
            ),
        "{run:?}"
    );
    assert!(
        lines[1].starts_with("hint: try again when the process holding"),
        "{run:?}"
    );
    // Reading commands still read the disk.
    assert_eq!(mq(dir.path(), &["stats", "--json"]).ok().json()["pending"], 1);
    drop(holder);
}

#[test]
fn a_killed_holders_socket_is_never_trusted() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "1");
    mq(dir.path(), &["next"]).ok();
    mq(dir.path(), &["fail", "1", "--error", "boom"]).ok();
    // A socket file nobody listens on, as a holder killed with kill -9 leaves it.
    let socket = dir.path().join("control.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    // The store is free: the command opens it itself, as always.
    let run = mq(dir.path(), &["reset", "1"]).ok();
    assert!(run.stdout.starts_with("reset 1"), "{run:?}");
    assert_eq!(mq(dir.path(), &["stats", "--json"]).ok().json()["pending"], 1);
    // A new holder replaces it with its own.
    let holder = hold(dir.path());
    let run = mq(dir.path(), &["complete", "1"]).ok();
    assert!(run.stdout.starts_with("completed 1"), "{run:?}");
    assert_eq!(holder.get("1").map(|(place, _)| place), Some(Place::Completed));
}

#[test]
fn a_holder_that_does_not_answer_is_one_line_within_seconds_and_reads_go_to_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "1");
    let holder = QueueManager::options().control_socket(false).open(dir.path()).unwrap();
    // A socket that accepts connections (the kernel's backlog) and never answers: a stuck holder.
    let stuck = std::os::unix::net::UnixListener::bind(dir.path().join("control.sock")).unwrap();
    let run = mq(dir.path(), &["reset", "1"]).fails_with(1);
    assert!(
        run.stderr
            .contains("its control socket does not answer: it accepted the connection but did not answer"),
        "{run:?}"
    );
    assert_eq!(run.stderr.lines().count(), 2, "one line and a hint: {run:?}");
    assert_eq!(
        mq(dir.path(), &["stats", "--json"]).ok().json()["pending"],
        1,
        "read from the disk"
    );
    drop((stuck, holder));
}

#[test]
fn a_holder_that_dies_during_a_request_leaves_the_outcome_unknown_and_names_the_command_that_tells() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "1");
    mq(dir.path(), &["next"]).ok();
    mq(dir.path(), &["fail", "1", "--error", "boom"]).ok();
    let entry = mq(dir.path(), &["show", "1", "--json"]).ok().json()["entry"].clone();
    let holder = QueueManager::options().control_socket(false).open(dir.path()).unwrap();
    // A holder that answers `hello` (its last record: 7) and `get`, and
    // dies as the `reset` comes.
    let listener = std::os::unix::net::UnixListener::bind(dir.path().join("control.sock")).unwrap();
    let store = {
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::metadata(dir.path()).unwrap();
        [metadata.dev(), metadata.ino()]
    };
    let dying = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let answers = [
            serde_json::json!({"v": 1, "id": 1, "ok": {"protocol": 1, "pid": 1, "last_seq": 7, "max_retries": 5,
                "version": "0", "store": store}}),
            serde_json::json!({"v": 1, "id": 2, "ok": {"place": "failed", "entry": entry}}),
        ];
        let mut line = String::new();
        for answer in answers {
            line.clear();
            reader.read_line(&mut line).unwrap();
            (&stream).write_all(format!("{answer}\n").as_bytes()).unwrap();
        }
        line.clear();
        reader.read_line(&mut line).unwrap();
        line
    });
    let run = mq(dir.path(), &["reset", "1"]).fails_with(1);
    let request = dying.join().unwrap();
    assert!(request.contains(r#""op":"reset""#), "{request}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{run:?}");
    assert!(
        lines[0].contains("did not answer `reset`") && lines[0].contains("whether it was carried out is unknown"),
        "{run:?}"
    );
    assert!(lines[1].starts_with("hint: `movie-queue log --since 8`"), "{run:?}");
    assert!(run.stdout.is_empty(), "no success is printed: {run:?}");
    drop(holder);
}
