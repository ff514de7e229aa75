//! Failure handling through the binary: `fail` (explicit time, relative
//! duration, or the retry policy), `retry` moving ready movies to the back
//! of pending with their retry count kept, `reset`, `requeue-in-flight`
//! putting movies back at the front, `cleanup`, and `list permanent`.
//! Checked through `list --json`, `show --json` and `stats --json`.

use crate::support::cli as cli_support;

use cli_support::{add, counts, mq, stats, unstamped};
use serde_json::{Value, json};

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn pending_ids(dir: &std::path::Path) -> Vec<String> {
    cli_support::list_ids(dir, &["pending"])
}

#[test]
fn fail_then_retry_moves_ready_movies_to_the_back_of_pending() {
    let dir = tempfile::tempdir().unwrap();
    for id in ["1", "2", "3"] {
        add(dir.path(), id);
    }
    assert_eq!(mq(dir.path(), &["next"]).ok().json()["id"], "1");
    let past = format!("{}", now() - 10.0);
    let run = mq(
        dir.path(),
        &["fail", "1", "--error", "Not found on tracker", "--retry-after", &past],
    )
    .ok();
    assert!(run.stdout.starts_with("failed 1"), "{run:?}");
    mq(dir.path(), &["fail", "2", "--error", "later", "--retry-in", "2h"]).ok();
    assert_eq!(stats(dir.path()), counts(1, 0, 2, 0, 0));

    let failed = mq(dir.path(), &["list", "failed", "--json"]).ok().json();
    assert_eq!(failed[0]["retry_count"], 1);
    assert_eq!(failed[0]["last_error"], "Not found on tracker");
    let later = failed[1]["retry_after"].as_f64().unwrap();
    assert!((later - (now() + 7200.0)).abs() < 60.0, "--retry-in 2h: {later}");

    let retried = mq(dir.path(), &["retry"]).ok();
    assert!(retried.stdout.contains("1 moved back to pending"), "{retried:?}");
    assert_eq!(pending_ids(dir.path()), ["3", "1"], "retry appends to the back");
    assert_eq!(stats(dir.path()), counts(2, 0, 1, 0, 0));
    let shown = mq(dir.path(), &["show", "1", "--json"]).ok().json();
    assert_eq!(shown["place"], "pending");
    assert_eq!(shown["entry"]["retry_count"], 1, "retry keeps the count");

    let nothing = mq(dir.path(), &["retry"]).ok();
    assert!(
        nothing.stdout.contains("not ready") || nothing.stdout.contains("no failed movie"),
        "{nothing:?}"
    );
}

#[test]
fn fail_without_a_time_uses_the_retry_policy_and_counts_up() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "1");
    mq(dir.path(), &["fail", "1", "--error", "first"]).ok();
    mq(dir.path(), &["fail", "1", "--error", "second"]).ok();
    let entry = mq(dir.path(), &["show", "1", "--json"]).ok().json()["entry"].clone();
    assert_eq!(entry["retry_count"], 2, "failing a failed movie counts up");
    assert_eq!(entry["last_error"], "second");
    let delay = entry["retry_after"].as_f64().unwrap() - now();
    assert!(
        (delay - 7200.0).abs() < 60.0,
        "second failure: 2 h by the default policy, got {delay}"
    );
    let unknown = mq(dir.path(), &["fail", "nope", "--error", "x"]).fails_with(1);
    assert!(unknown.stderr.contains("\"nope\""), "{unknown:?}");
    mq(
        dir.path(),
        &["fail", "1", "--error", "x", "--retry-in", "2h", "--retry-after", "5.0"],
    )
    .fails_with(2);
    mq(dir.path(), &["fail", "1", "--error", "x", "--retry-in", "soon"]).fails_with(2);
    mq(dir.path(), &["complete", "1"]).ok();
    let completed = mq(dir.path(), &["fail", "1", "--error", "x"]).fails_with(1);
    assert!(completed.stderr.contains("completed"), "{completed:?}");
}

#[test]
fn permanent_failures_reset_and_retry_limits() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "1");
    add(dir.path(), "2");
    for _ in 0..5 {
        mq(dir.path(), &["fail", "1", "--error", "gone", "--retry-after", "1.0"]).ok();
    }
    mq(dir.path(), &["fail", "2", "--error", "once", "--retry-after", "1.0"]).ok();
    assert_eq!(stats(dir.path()), counts(0, 0, 2, 0, 1));
    let permanent = mq(dir.path(), &["list", "permanent", "--json"]).ok().json();
    assert_eq!(permanent.as_array().unwrap().len(), 1);
    assert_eq!(permanent[0]["id"], "1");
    assert_eq!(
        mq(dir.path(), &["list", "permanent", "--max-retries", "1", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    mq(dir.path(), &["retry", "--max-retries", "1"]).ok();
    assert_eq!(stats(dir.path()), counts(0, 0, 2, 0, 1), "both reached the limit of 1");
    mq(dir.path(), &["retry"]).ok();
    assert_eq!(pending_ids(dir.path()), ["2"], "a permanent failure is not retried");

    let run = mq(dir.path(), &["reset", "1"]).ok();
    assert!(run.stdout.starts_with("reset 1"), "{run:?}");
    let entry = mq(dir.path(), &["show", "1", "--json"]).ok().json()["entry"].clone();
    assert!(entry.get("last_failed_at").is_none(), "{entry}");
    assert_eq!(
        unstamped(entry),
        json!({"id": "1", "title": "Movie 1", "year": "2020", "status": "pending"}),
        "reset clears the failure fields"
    );
    assert_eq!(pending_ids(dir.path()), ["2", "1"]);
    mq(dir.path(), &["reset", "1"]).fails_with(1);
    mq(dir.path(), &["reset", "nope"]).fails_with(1);
}

#[test]
fn requeue_in_flight_puts_movies_back_at_the_front() {
    let dir = tempfile::tempdir().unwrap();
    for id in ["1", "2", "3"] {
        add(dir.path(), id);
    }
    mq(dir.path(), &["next"]).ok();
    mq(dir.path(), &["next"]).ok();
    assert_eq!(
        mq(dir.path(), &["list", "in-flight", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let run = mq(dir.path(), &["requeue-in-flight"]).ok();
    assert!(run.stdout.starts_with("2 movies back"), "{run:?}");
    assert_eq!(pending_ids(dir.path()), ["1", "2", "3"]);
    let again = mq(dir.path(), &["requeue-in-flight"]).ok();
    assert!(again.stdout.contains("nothing changed"), "{again:?}");
}

#[test]
fn cleanup_removes_only_old_completed_entries() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "1");
    mq(dir.path(), &["complete", "1"]).ok();
    let kept = mq(dir.path(), &["cleanup", "--days", "1"]).ok();
    assert!(kept.stdout.starts_with("removed 0"), "{kept:?}");
    assert_eq!(stats(dir.path())["completed"], 1);
    let removed = mq(dir.path(), &["cleanup", "--days", "0"]).ok();
    assert!(removed.stdout.starts_with("removed 1"), "{removed:?}");
    assert_eq!(stats(dir.path())["completed"], 0);
    let history = mq(dir.path(), &["show", "1", "--json"]).ok().json();
    assert_eq!(
        history["place"],
        Value::Null,
        "cleaned up, yet its history is still shown"
    );
    assert_eq!(
        history["history"].as_array().unwrap().last().unwrap()["type"],
        "cleaned_up"
    );
    mq(dir.path(), &["cleanup"]).fails_with(2);
}
