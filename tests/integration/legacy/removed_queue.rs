//! The removed queue reaches the files the application reads: a legacy
//! store with `queue_removed.json` (the application's fourth file, written
//! with integer `removed_at`) imports it into removed, every value kept;
//! its grace period counts from that `removed_at`; and a store written
//! before the removed queue (a version 1 journal, a manifest listing
//! three files) opens to exactly the state it had, no field stamped.

use crate::support::common;
use crate::support::durability as durability_support;

use std::time::Duration;

use common::scratch;
use durability_support::write_segment;
use movie_queue::{Place, QueueManager, Seq};
use serde_json::{Value, json};

#[test]
fn a_legacy_removed_file_is_imported_with_its_removal_times() {
    let dir = scratch();
    let removed = json!([
        {"id": "r1", "title": "Heat", "year": 1995, "status": "removed", "removed_at": 1000,
         "completed_at": 900},
        {"id": "r2", "title": "Up", "year": "2009", "removed_at": 4_000_000_000_u64}
    ]);
    std::fs::write(dir.path().join("queue_removed.json"), removed.to_string()).unwrap();
    std::fs::write(dir.path().join("queue_pending.json"), b"[]").unwrap();
    let qm = QueueManager::open(dir.path()).unwrap();
    let listed: Vec<Value> = qm.list(Place::Removed).iter().map(|entry| entry.to_value()).collect();
    assert_eq!(Value::Array(listed), removed, "integer times stay integers");
    assert_eq!(qm.get_removed_count(), 2);
    let ready: Vec<String> = qm
        .get_movies_ready_for_deletion(Duration::from_secs(604_800))
        .iter()
        .map(|entry| entry.id().to_owned())
        .collect();
    assert_eq!(
        ready,
        ["r1"],
        "r2 is removed in the future: its grace period has not begun"
    );
    assert!(qm.restore_removed_movie("r2").unwrap());
    assert_eq!(qm.get("r2").map(|(place, _)| place), Some(Place::Pending));
    assert!(!qm.add_to_pending(movie_queue::Movie::new("r1", "Heat", 1995)).unwrap());
    qm.close().unwrap();
    let written: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("queue_removed.json")).unwrap()).unwrap();
    assert_eq!(written, json!([removed[0]]));
}

#[test]
fn a_version_1_journal_replays_to_the_state_it_had_with_nothing_stamped() {
    let dir = scratch();
    let journal = dir.path().join("journal");
    let records: Vec<(u64, Vec<u8>)> = [
        r#"{"v":1,"ts":1760806482.5,"event":{"added":{"movie":{"id":"1","title":"A","year":"1999"}}}}"#,
        r#"{"v":1,"ts":1760806483.5,"event":{"added":{"movie":{"id":"2","title":"B","year":2001}}}}"#,
        r#"{"v":1,"ts":1760806484.5,"event":{"taken":{"id":"1"}}}"#,
        r#"{"v":1,"ts":1760806485.25,"event":{"failed":{"movie":{"id":"1","title":"A","year":"1999"},"error":"e","retry_after":1760810085.5}}}"#,
        r#"{"v":1,"ts":1760806486.5,"event":{"moved_to_pending":{"id":"1"}}}"#,
        r#"{"v":1,"ts":1760806487.75,"event":{"completed":{"movie":{"id":"2","title":"B","year":2001}}}}"#,
    ]
    .iter()
    .zip(1..)
    .map(|(payload, seq)| (seq, payload.as_bytes().to_vec()))
    .collect();
    write_segment(&journal, 1, &records);
    let qm = QueueManager::open_read_only(dir.path()).unwrap();
    assert_eq!(qm.last_seq(), Seq(6));
    let values = |place| -> Vec<Value> { qm.list(place).iter().map(|entry| entry.to_value()).collect() };
    assert_eq!(
        values(Place::Pending),
        [
            json!({"id": "1", "title": "A", "year": "1999", "retry_count": 1, "last_error": "e",
                "retry_after": 1760810085.5, "failed_at": 1760806485.25})
        ]
    );
    assert_eq!(
        values(Place::Completed),
        [json!({"id": "2", "title": "B", "year": 2001, "completed_at": 1760806487.75})]
    );
    // A version 2 event after them is stamped; the old entries stay as they were.
    drop(qm);
    let qm = QueueManager::open(dir.path()).unwrap();
    qm.add_to_pending(movie_queue::Movie::new("3", "C", "2003")).unwrap();
    let (_, entry) = qm.get("3").unwrap();
    assert_eq!(entry.movie.extra()["status"], "pending");
    assert!(entry.movie.extra()["queued_at"].is_u64());
    assert_eq!(qm.get("1").unwrap().1.movie.extra().len(), 0);
}

#[test]
fn a_manifest_listing_three_files_still_loads_and_a_stray_removed_file_is_ignored() {
    let dir = scratch();
    let qm = QueueManager::open(dir.path()).unwrap();
    qm.add_to_pending(movie_queue::Movie::new("1", "A", "1999")).unwrap();
    qm.close().unwrap();
    // Rewrite the manifest as the release before the removed queue wrote it:
    // version 2, three files, sealed with the CRC32 of its body.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("queue_snapshot.json")).unwrap()).unwrap();
    let mut body = manifest["manifest"].clone();
    body["version"] = json!(2);
    body["files"].as_array_mut().unwrap().truncate(3);
    let text = serde_json::to_string_pretty(&body).unwrap();
    let sealed = format!("{{\"crc32\":{},\"manifest\":{text}}}\n", crc32(text.as_bytes()));
    std::fs::write(dir.path().join("queue_snapshot.json"), sealed).unwrap();
    std::fs::write(
        dir.path().join("queue_removed.json"),
        br#"[{"id":"stray","title":"x","year":"1"}]"#,
    )
    .unwrap();
    let report = movie_queue::verify(dir.path()).unwrap();
    assert_eq!(report.snapshot_seq, Some(1), "{report:?}");
    let qm = QueueManager::open_read_only(dir.path()).unwrap();
    assert_eq!(qm.get_pending_count(), 1);
    assert_eq!(qm.get_removed_count(), 0);
}

/// CRC32 (IEEE), bitwise: what the manifest's seal records.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0_u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
