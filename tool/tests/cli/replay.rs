//! `replay --until` through the binary: the statistics as of record K equal
//! those a fresh store reaches after the same first K operations (each of
//! which writes exactly one event), for every K; `--until TIME` with the
//! time of record K gives the same; `--out DIR` writes the four files of
//! that state (the same ids in the same queues as the fresh store's export).

use crate::support::cli as cli_support;

use std::path::Path;

use cli_support::{events, mq};
use serde_json::Value;

/// Operations that each write exactly one event.
const OPERATIONS: &[&[&str]] = &[
    &["add", "--id", "1", "--title", "One", "--year", "2001"],
    &["add", "--id", "2", "--title", "Two", "--year", "2002"],
    &["add", "--id", "3", "--title", "Three", "--year", "2003"],
    &["next"],
    &["fail", "1", "--error", "Not found on tracker", "--retry-after", "1.0"],
    &["next"],
    &["complete", "2"],
    &["retry"],
    &["next"],
    &["fail", "3", "--error", "gone", "--retry-after", "1.0"],
    &["fail", "3", "--error", "gone", "--retry-after", "1.0"],
    &["add", "--id", "4", "--title", "Four", "--year", "2004"],
    &["next"],
    &["requeue-in-flight"],
    &["reset", "3"],
];

fn ids_by_file(dir: &Path) -> Vec<Vec<String>> {
    [
        "queue_pending.json",
        "queue_failed.json",
        "queue_completed.json",
        "queue_removed.json",
    ]
    .iter()
    .map(|name| {
        let value: Value = serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap();
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["id"].as_str().unwrap().to_owned())
            .collect()
    })
    .collect()
}

#[test]
fn replay_until_k_equals_a_fresh_store_after_the_first_k_operations() {
    let history = tempfile::tempdir().unwrap();
    for operation in OPERATIONS {
        mq(history.path(), operation).ok();
    }
    assert_eq!(
        events(history.path()).len(),
        OPERATIONS.len(),
        "one event per operation"
    );

    let fresh = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    for (index, operation) in OPERATIONS.iter().enumerate() {
        mq(fresh.path(), operation).ok();
        let k = (index + 1).to_string();
        let replayed = mq(history.path(), &["replay", "--until", &k, "--json"]).ok().json();
        let reached = mq(fresh.path(), &["stats", "--json"]).ok().json();
        assert_eq!(replayed, reached, "as of record {k} after {operation:?}");

        let replay_out = files.path().join(format!("replay-{k}"));
        let export_out = files.path().join(format!("export-{k}"));
        mq(
            history.path(),
            &["replay", "--until", &k, "--out", replay_out.to_str().unwrap()],
        )
        .ok();
        mq(fresh.path(), &["export", export_out.to_str().unwrap()]).ok();
        assert_eq!(
            ids_by_file(&replay_out),
            ids_by_file(&export_out),
            "the files as of record {k}"
        );
    }
}

#[test]
fn replay_until_a_time_equals_replay_until_the_record_of_that_time() {
    let dir = tempfile::tempdir().unwrap();
    for operation in &OPERATIONS[..9] {
        mq(dir.path(), operation).ok();
    }
    let all = events(dir.path());
    for record in [&all[0], &all[4], &all[8]] {
        let seq = record["seq"].to_string();
        let time = record["ts"].to_string();
        assert!(time.contains('.'), "a time has a decimal point: {time}");
        let by_seq = mq(dir.path(), &["replay", "--until", &seq, "--json"]).ok().json();
        let by_time = mq(dir.path(), &["replay", "--until", &time, "--json"]).ok().json();
        assert_eq!(by_seq, by_time, "record {seq} at {time}");
    }
    let before = mq(dir.path(), &["replay", "--until", "2000-01-01T00:00:00Z", "--json"])
        .ok()
        .json();
    assert_eq!(before, cli_support::counts(0, 0, 0, 0, 0));
    let human = mq(dir.path(), &["replay", "--until", "4"]).ok();
    assert!(human.stdout.starts_with("as of record 4"), "{human:?}");
    assert!(human.stdout.contains("in flight"));
    mq(dir.path(), &["replay", "--until", "yesterday"]).fails_with(2);
    mq(dir.path(), &["replay"]).fails_with(2);
}

#[test]
fn replay_until_a_record_before_damage_answers_and_says_what_it_did_not_read() {
    let dir = tempfile::tempdir().unwrap();
    {
        let _alone = crate::support::alone();
        let qm = movie_queue::QueueManager::options()
            .segment_bytes_max(700)
            .open(dir.path())
            .unwrap();
        for id in 0..40 {
            qm.add_to_pending(movie_queue::Movie::new(id.to_string(), "Movie", "2020"))
                .unwrap();
        }
    }
    // Without the snapshot, only the journal knows the state.
    std::fs::remove_file(dir.path().join("queue_snapshot.json")).unwrap();
    let expected = mq(dir.path(), &["replay", "--until", "5", "--json"]).ok().json();
    // A flipped bit in the middle of the journal's last segment.
    let mut segments: Vec<_> = std::fs::read_dir(dir.path().join("journal"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .collect();
    segments.sort();
    assert!(segments.len() >= 3, "{segments:?}");
    let last = segments.last().unwrap();
    let mut bytes = std::fs::read(last).unwrap();
    bytes[40] ^= 0x10;
    std::fs::write(last, bytes).unwrap();
    mq(dir.path(), &["verify"]).fails_with(1);
    mq(dir.path(), &["stats"]).fails_with(1);
    let replayed = mq(dir.path(), &["replay", "--until", "5"]).ok();
    assert!(replayed.stdout.starts_with("as of record 5"), "{replayed:?}");
    assert!(
        replayed.stdout.contains("read through record 5 only"),
        "says what it did not read: {replayed:?}"
    );
    assert_eq!(
        mq(dir.path(), &["replay", "--until", "5", "--json"]).ok().json(),
        expected
    );
    let refused = mq(dir.path(), &["replay", "--until", "40"]).fails_with(1);
    assert!(refused.stderr.contains("damaged"), "{refused:?}");
}

#[test]
fn a_unix_time_without_a_decimal_point_is_a_record_number_and_the_refusal_says_how_to_write_a_time() {
    let dir = tempfile::tempdir().unwrap();
    cli_support::add(dir.path(), "1");
    let refused = mq(dir.path(), &["replay", "--until", "1796084811"]).fails_with(1);
    assert!(
        refused.stderr.contains("write it with a decimal point: 1796084811.0"),
        "{refused:?}"
    );
    let small = mq(dir.path(), &["replay", "--until", "5"]).fails_with(1);
    assert!(!small.stderr.contains("decimal point"), "{small:?}");
}
