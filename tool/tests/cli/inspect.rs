//! The reading commands through the binary: `stats` (JSON shape and the
//! aligned table), `list` (JSON entries and the table), `show` (place,
//! entry and history with seq and ts), `log` (JSON lines with contiguous
//! seq, `--since`, `--id`, `--follow` seeing events written after it
//! started), and `export`. Each opens the store read-only.

use crate::support::cli as cli_support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use cli_support::{add, command, counts, events, mq, stats};
use serde_json::Value;

fn sample_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for id in ["1", "2", "3", "4"] {
        add(dir.path(), id);
    }
    mq(dir.path(), &["next"]).ok();
    mq(
        dir.path(),
        &["fail", "1", "--error", "Not found on tracker", "--retry-in", "1h"],
    )
    .ok();
    mq(dir.path(), &["next"]).ok();
    mq(dir.path(), &["complete", "2"]).ok();
    mq(dir.path(), &["next"]).ok();
    dir
}

#[test]
fn stats_prints_the_documented_json_and_an_aligned_table() {
    let dir = sample_store();
    let json = mq(dir.path(), &["stats", "--json"]).ok();
    assert_eq!(
        json.stdout,
        "{\"pending\":1,\"in_flight\":1,\"failed\":1,\"completed\":1,\"permanent_failures\":0,\"removed\":0}\n"
    );
    let table = mq(dir.path(), &["stats"]).ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 7);
    assert!(lines[0].starts_with("pending") && lines[4].starts_with("permanent failures"));
    assert!(lines[5].starts_with("removed"));
    let width = lines[0].len();
    assert!(
        lines[..6].iter().all(|line| line.len() == width),
        "numbers right-aligned: {lines:?}"
    );
    // The store's identity, as the library reads it, on a line of its own.
    let id = movie_queue::store_id(dir.path())
        .unwrap()
        .expect("a writer gave it one");
    assert_eq!(lines[6], format!("store id            {id}"));
}

#[test]
fn list_prints_entries_as_json_and_as_an_aligned_table() {
    let dir = sample_store();
    let failed = mq(dir.path(), &["list", "failed", "--json"]).ok().json();
    let entry = &failed[0];
    assert_eq!(entry["id"], "1");
    for field in ["title", "year", "retry_count", "last_error", "retry_after", "failed_at"] {
        assert!(entry.get(field).is_some(), "{field} missing in {entry}");
    }
    assert!(entry["failed_at"].is_f64(), "JSON keeps Unix seconds");
    let completed = mq(dir.path(), &["list", "completed", "--json"]).ok().json();
    assert!(
        completed[0]["completed_at"].is_u64(),
        "whole seconds, as the application stamps it"
    );
    assert_eq!(
        mq(dir.path(), &["list", "in-flight", "--json"]).ok().json()[0]["id"],
        "3"
    );
    assert_eq!(
        mq(dir.path(), &["list", "permanent", "--json"]).ok().json(),
        Value::Array(vec![])
    );

    let table = mq(dir.path(), &["list", "failed"]).ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("LAST ERROR"),
        "{table:?}"
    );
    let column = lines[0].find("TITLE").unwrap();
    assert_eq!(lines[1].find("Movie 1"), Some(column), "columns align: {lines:?}");
    assert!(lines[1].contains("Not found on tracker"));
    let empty = mq(dir.path(), &["list", "permanent"]).ok();
    assert!(empty.stdout.starts_with("no movies"), "{empty:?}");
    mq(dir.path(), &["list", "everything"]).fails_with(2);
}

/// `--offset` and `--limit` page through a queue in its order, the `#`
/// column counting from the offset, in JSON and in the table; a listing
/// longer than one block of the table (1,000 rows) is one aligned table;
/// changes after the snapshot (CLI changes leave the files as they were)
/// are listed where the whole state has them.
#[test]
fn list_pages_with_offset_and_limit_over_changes_after_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let lines: String = (1..=1_200)
        .map(|n| format!("{{\"id\":\"{n}\",\"title\":\"Movie {n}\",\"year\":2000}}\n"))
        .collect();
    cli_support::mq_stdin(dir.path(), &["add", "--json", "-"], &lines).ok();
    mq(dir.path(), &["snapshot"]).ok();
    // After the snapshot: 1 and 2 taken, 1 back at the front, 3 failed.
    mq(dir.path(), &["next"]).ok();
    mq(dir.path(), &["next"]).ok();
    mq(dir.path(), &["requeue-in-flight"]).ok();
    mq(dir.path(), &["next"]).ok();
    mq(dir.path(), &["next"]).ok();
    mq(dir.path(), &["next"]).ok();
    mq(dir.path(), &["fail", "3", "--error", "stalled"]).ok();
    mq(dir.path(), &["requeue-in-flight"]).ok();
    let ids = |args: &[&str]| {
        let mut all = vec!["pending"];
        all.extend_from_slice(args);
        cli_support::list_ids(dir.path(), &all)
    };
    let whole = ids(&[]);
    let expected: Vec<String> = ["1", "2"]
        .into_iter()
        .map(str::to_owned)
        .chain((4..=1_200).map(|n| n.to_string()))
        .collect();
    assert_eq!(whole, expected);
    assert_eq!(ids(&["--limit", "3"]), ["1", "2", "4"]);
    assert_eq!(ids(&["--offset", "1", "--limit", "2"]), ["2", "4"]);
    assert_eq!(ids(&["--offset", "1198"]), ["1200"]);
    assert!(ids(&["--offset", "5000"]).is_empty());
    assert!(ids(&["--limit", "0"]).is_empty());
    let past = mq(dir.path(), &["list", "pending", "--offset", "5000"]).ok();
    assert_eq!(past.stdout, "no movies pending after the first 5000 (--offset 5000)\n");

    let table = mq(dir.path(), &["list", "pending", "--offset", "10", "--limit", "2"]).ok();
    let rows: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(rows.len(), 3, "{table:?}");
    assert!(
        rows[1].trim_start().starts_with("11  ") && rows[1].contains("Movie 12"),
        "{rows:?}"
    );
    let long = mq(dir.path(), &["list", "pending"]).ok();
    let rows: Vec<&str> = long.stdout.lines().collect();
    assert_eq!(rows.len(), 1 + 1_199, "one header");
    let column = rows[0].find("TITLE").unwrap();
    assert!(
        rows[1..].iter().all(|row| row.find("Movie") == Some(column)),
        "one aligned table"
    );
    let failed = mq(dir.path(), &["list", "failed", "--json"]).ok().json();
    assert_eq!(failed[0]["id"], "3");
    let permanent = mq(
        dir.path(),
        &["list", "permanent", "--max-retries", "1", "--offset", "1", "--json"],
    )
    .ok()
    .json();
    assert_eq!(permanent, Value::Array(vec![]), "one permanent failure, skipped");
}

#[test]
fn show_gives_the_place_the_entry_and_the_history() {
    let dir = sample_store();
    let shown = mq(dir.path(), &["show", "1", "--json"]).ok().json();
    assert_eq!(shown["place"], "failed");
    assert_eq!(shown["entry"]["retry_count"], 1);
    let history = shown["history"].as_array().unwrap();
    let kinds: Vec<&str> = history.iter().map(|event| event["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["added", "taken", "failed"]);
    assert!(
        history
            .iter()
            .all(|event| event["seq"].is_u64() && event["ts"].is_f64())
    );
    assert_eq!(history[2]["error"], "Not found on tracker");
    let human = mq(dir.path(), &["show", "1"]).ok();
    assert!(
        human.stdout.contains("[failed]") && human.stdout.contains("history"),
        "{human:?}"
    );
    let unknown = mq(dir.path(), &["show", "nope"]).fails_with(1);
    assert!(unknown.stderr.contains("\"nope\""));
}

#[test]
fn log_json_lines_parse_and_their_seq_is_contiguous() {
    let dir = sample_store();
    let all = events(dir.path());
    assert_eq!(all.len(), 9);
    for (index, event) in all.iter().enumerate() {
        assert_eq!(
            event["seq"].as_u64(),
            Some(index as u64 + 1),
            "contiguous from 1: {event}"
        );
        assert!(event["ts"].is_f64());
        assert!(event["type"].is_string());
    }
    assert_eq!(all[0]["type"], "added");
    assert_eq!(all[0]["movie"]["id"], "1");
    assert_eq!(all[4]["type"], "taken");
    assert_eq!(all[4]["id"], "1");

    let since = mq(dir.path(), &["log", "--json", "--since", "7"]).ok().json_lines();
    assert_eq!(since.first().unwrap()["seq"], 7, "--since K starts at event K");
    assert_eq!(since.len(), 3);
    let about_two = mq(dir.path(), &["log", "--json", "--id", "2"]).ok().json_lines();
    let kinds: Vec<&str> = about_two.iter().map(|event| event["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["added", "taken", "completed"]);
    let human = mq(dir.path(), &["log"]).ok();
    assert_eq!(human.stdout.lines().count(), 9);
    assert!(human.stdout.lines().nth(5).unwrap().contains("failed"));
}

#[test]
fn log_follow_prints_events_written_after_it_started() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "1");
    let mut child = cli_support::spawn(
        command()
            .arg("--dir")
            .arg(dir.path())
            .args(["log", "--json", "--follow"])
            .stdout(Stdio::piped()),
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["seq"], 1);
    add(dir.path(), "2");
    let started = Instant::now();
    let second: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(second["seq"], 2);
    assert_eq!(second["movie"]["id"], "2");
    assert!(started.elapsed() < Duration::from_secs(10));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn export_writes_the_four_documented_files() {
    let dir = sample_store();
    let target = tempfile::tempdir().unwrap();
    let out = target.path().join("files");
    let run = mq(dir.path(), &["export", out.to_str().unwrap()]).ok();
    assert!(run.stdout.starts_with("wrote"), "{run:?}");
    let read = |name: &str| -> Value { serde_json::from_slice(&std::fs::read(out.join(name)).unwrap()).unwrap() };
    let pending = read("queue_pending.json");
    let ids: Vec<&str> = pending
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["3", "4"], "in flight first, as pending");
    assert_eq!(read("queue_failed.json")[0]["id"], "1");
    assert_eq!(read("queue_completed.json")[0]["id"], "2");
    assert_eq!(read("queue_removed.json"), serde_json::json!([]));
    assert_eq!(stats(dir.path()), counts(1, 1, 1, 1, 0), "export changes nothing");
    mq(dir.path(), &["export", dir.path().to_str().unwrap()]).fails_with(1);
}
