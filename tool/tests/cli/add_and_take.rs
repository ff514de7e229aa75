//! `add` (flags, one JSON object, JSON lines on stdin), `next` and
//! `complete` through the built binary: what each prints, its exit code,
//! and the state `stats`/`list` show afterwards. Proves the scripting
//! contract: year kept as given, duplicates reported, a bad stdin line
//! named by number with nothing added, `next` silent on an empty queue,
//! movies taken stay in flight across invocations.

use crate::support::cli as cli_support;

use cli_support::{add, counts, events, mq, mq_stdin, stats, unstamped};
use serde_json::json;

#[test]
fn add_by_flags_keeps_the_year_a_string_and_reports_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let run = mq(
        dir.path(),
        &[
            "add",
            "--id",
            "123",
            "--title",
            "The Matrix",
            "--year",
            "1999",
            "--slug",
            "the-matrix",
            "--imdb-id",
            "tt0133093",
        ],
    )
    .ok();
    assert!(run.stdout.starts_with("added 123"), "{run:?}");
    let again = mq(
        dir.path(),
        &["add", "--id", "123", "--title", "The Matrix", "--year", "1999"],
    )
    .ok();
    assert!(
        again.stdout.contains("skipped") && again.stdout.contains("already pending"),
        "{again:?}"
    );
    let listed = unstamped(mq(dir.path(), &["list", "pending", "--json"]).ok().json());
    assert_eq!(
        listed,
        json!([{"id": "123", "title": "The Matrix", "year": "1999", "slug": "the-matrix", "imdb_id": "tt0133093",
                "status": "pending"}])
    );
}

#[test]
fn add_json_keeps_types_and_extra_fields() {
    let dir = tempfile::tempdir().unwrap();
    let movie = r#"{"id":"7","title":"Heat","year":1995,"status":"queued","nested":{"a":[1,2.5]}}"#;
    mq(dir.path(), &["add", "--json", movie]).ok();
    let listed = unstamped(mq(dir.path(), &["list", "pending", "--json"]).ok().json());
    // The queue owns `status`, as the application does: "queued" becomes "pending".
    assert_eq!(
        listed,
        json!([{"id":"7","title":"Heat","year":1995,"status":"pending","nested":{"a":[1,2.5]}}])
    );
    let bad = mq(dir.path(), &["add", "--json", r#"{"title":"no id","year":"1"}"#]).fails_with(1);
    assert!(bad.stderr.starts_with("movie-queue: --json: invalid movie"), "{bad:?}");
    mq(dir.path(), &["add", "--id", "1", "--title", "x"]).fails_with(2);
}

#[test]
fn bulk_add_from_stdin_adds_every_line_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "b");
    let input = "{\"id\":\"a\",\"title\":\"A\",\"year\":\"2001\"}\n\n\
                 {\"id\":\"b\",\"title\":\"B\",\"year\":2002}\n\
                 {\"id\":\"c\",\"title\":\"C\",\"year\":2003,\"extra\":true}\n\
                 {\"id\":\"a\",\"title\":\"A again\",\"year\":\"2001\"}\n";
    let run = mq_stdin(dir.path(), &["add", "--json", "-"], input).ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("added a"), "{run:?}");
    assert!(
        lines[1].starts_with("skipped b") && lines[1].contains("already pending"),
        "{run:?}"
    );
    assert!(lines[2].starts_with("added c"), "{run:?}");
    assert!(
        lines[3].starts_with("skipped a") && lines[3].contains("duplicate of line 1"),
        "{run:?}"
    );
    assert_eq!(lines[4], "2 added, 2 skipped");
    let ids: Vec<_> = mq(dir.path(), &["list", "pending", "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["id"].clone())
        .collect();
    assert_eq!(ids, [json!("b"), json!("a"), json!("c")]);
    assert_eq!(
        events(dir.path()).len(),
        3,
        "one event per added movie, none for the skipped"
    );
}

#[test]
fn a_bad_stdin_line_is_named_and_nothing_is_added() {
    let dir = tempfile::tempdir().unwrap();
    let input = "{\"id\":\"a\",\"title\":\"A\",\"year\":\"2001\"}\n{\"id\":\"b\",\"title\":\n";
    let run = mq_stdin(dir.path(), &["add", "--json", "-"], input).fails_with(1);
    assert!(
        run.stderr.starts_with("movie-queue: stdin line 2: not valid JSON"),
        "{run:?}"
    );
    let run = mq_stdin(
        dir.path(),
        &["add", "--json", "-"],
        "{\"id\":5,\"title\":\"x\",\"year\":\"1\"}\n",
    )
    .fails_with(1);
    assert!(
        run.stderr.contains("stdin line 1") && run.stderr.contains("\"id\" must be a string"),
        "{run:?}"
    );
    assert!(!dir.path().join("journal").exists() || events(dir.path()).is_empty());
}

/// Proves that a bad line stops `add --json -` before anything is added,
/// against the store's limits too (issue 11: the lines before a line over
/// the record limit were added):
/// a valid movie whose `added` event is over the 64 MiB event limit, on
/// line 3 after a valid line (a blank line between), stops the run with
/// exit 1 naming line 3 and the limit, and the store holds only what it
/// held before (no event written).
#[test]
fn a_stdin_line_over_the_event_limit_stops_the_batch_before_anything_is_added() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "before");
    let huge_title = "x".repeat(64 << 20);
    let input = format!(
        "{{\"id\":\"a\",\"title\":\"A\",\"year\":2001}}\n\n\
         {{\"id\":\"huge\",\"title\":\"{huge_title}\",\"year\":2002}}\n\
         {{\"id\":\"c\",\"title\":\"C\",\"year\":2003}}\n"
    );
    let run = mq_stdin(dir.path(), &["add", "--json", "-"], &input).fails_with(1);
    let mut lines = run.stderr.lines();
    let message = lines.next().unwrap_or_default();
    assert!(
        message.starts_with("movie-queue: stdin line 3: event of ")
            && message.ends_with("over the record limit of 67108864 bytes"),
        "{run:?}"
    );
    assert!(
        lines.next().unwrap_or_default().starts_with("hint: nothing was added"),
        "{run:?}"
    );
    assert_eq!(run.stdout, "");
    assert_eq!(stats(dir.path()), counts(1, 0, 0, 0, 0));
    assert_eq!(events(dir.path()).len(), 1, "no event written by the refused batch");
}

#[test]
fn next_takes_fifo_and_prints_nothing_when_empty() {
    let dir = tempfile::tempdir().unwrap();
    // No store there yet (a mistyped --dir): refused, and none is made;
    // only `add` creates one.
    let refused = mq(dir.path(), &["next"]).fails_with(1);
    assert!(refused.stderr.contains("holds no movie-queue store"), "{refused:?}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing created");
    let missing = dir.path().join("typo");
    let changing: &[&[&str]] = &[
        &["next"],
        &["complete", "603"],
        &["fail", "603", "--error", "x"],
        &["retry"],
        &["reset", "603"],
        &["requeue-in-flight"],
        &["cleanup", "--days", "1"],
        &["mark-removed", "603"],
        &["restore", "603"],
        &["forget", "603"],
        &["snapshot"],
        &["compact"],
    ];
    for command in changing {
        let refused = mq(&missing, command).fails_with(1);
        assert!(refused.stderr.contains("no store at"), "{command:?}: {refused:?}");
        assert!(!missing.exists(), "{command:?} made no store");
    }
    add(dir.path(), "1");
    add(dir.path(), "2");
    let taken = mq(dir.path(), &["next"]).ok();
    assert_eq!(taken.stdout.lines().count(), 1);
    assert_eq!(
        unstamped(taken.json()),
        json!({"id": "1", "title": "Movie 1", "year": "2020", "status": "pending"})
    );
    add(dir.path(), "3");
    assert_eq!(
        stats(dir.path()),
        counts(2, 1, 0, 0, 0),
        "the taken movie stays in flight across invocations"
    );
    assert_eq!(mq(dir.path(), &["next"]).ok().json()["id"], "2");
    assert_eq!(mq(dir.path(), &["next"]).ok().json()["id"], "3");
    assert_eq!(mq(dir.path(), &["next"]).ok().stdout, "");
    assert_eq!(stats(dir.path()), counts(0, 3, 0, 0, 0));
}

#[test]
fn complete_accepts_pending_in_flight_and_failed_movies() {
    let dir = tempfile::tempdir().unwrap();
    for id in ["pending", "flying", "failing"] {
        add(dir.path(), id);
    }
    mq(dir.path(), &["next"]).ok();
    mq(dir.path(), &["fail", "failing", "--error", "boom"]).ok();
    for id in ["pending", "flying", "failing"] {
        let run = mq(dir.path(), &["complete", id]).ok();
        assert!(run.stdout.starts_with(&format!("completed {id}")), "{run:?}");
    }
    assert_eq!(stats(dir.path()), counts(0, 0, 0, 3, 0));
    let again = mq(dir.path(), &["complete", "flying"]).ok();
    assert!(again.stdout.contains("already completed"), "{again:?}");
    let unknown = mq(dir.path(), &["complete", "nope"]).fails_with(1);
    assert!(
        unknown.stderr.starts_with("movie-queue: no movie with id \"nope\""),
        "{unknown:?}"
    );
    let re_add = mq(dir.path(), &["add", "--id", "flying", "--title", "x", "--year", "1"]).ok();
    assert!(re_add.stdout.contains("already completed"), "{re_add:?}");
}
