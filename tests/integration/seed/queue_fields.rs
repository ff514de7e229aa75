//! A movie carrying fields the queue itself writes — as the application's
//! do, since it hands entries it got back from the queue to
//! `add_to_failed` and `add_to_completed` — is taken, not refused, by the
//! rule the README states: the queue's own fields (`retry_count`,
//! `last_error`, `retry_after`, `failed_at`, `completed_at`,
//! `removed_at`) in it are ignored, the queue keeps its own values; the
//! fields the queue stamps (`status`, `queued_at`, `last_failed_at`,
//! `retry_attempt`) are the movie's own, so an event that stamps one
//! writes its value in that place, and one it does not stamp keeps the
//! value given, like any other field.
//!
//! How: a fixed clock, a movie carrying every one of those fields with
//! values the queue would never write, and each entry checked whole.

use std::sync::Arc;

use crate::support::common::scratch;
use movie_queue::{Movie, Place, QueueManager};
use serde_json::{Value, json};

/// The clock: every event is stamped at this time.
const NOW: f64 = 1_700_000_000.5;

fn entry(qm: &QueueManager, id: &str) -> Value {
    qm.get(id).expect("the movie is known").1.to_value()
}

#[test]
fn the_queues_fields_in_a_movie_given_are_ignored_and_its_stamps_written_in_place() {
    let dir = scratch();
    let qm = QueueManager::options()
        .clock(Arc::new(|| NOW))
        .open(dir.path())
        .unwrap();
    let forged = json!({"id": "1", "title": "T", "year": "2020", "status": "completed", "queued_at": 5,
        "last_failed_at": 6, "retry_attempt": 9, "rating": 8, "retry_count": 7, "last_error": "forged",
        "retry_after": 1.0, "failed_at": 2.0, "completed_at": 3.0, "removed_at": 4.0});
    qm.add_to_pending(Movie::from_value(forged.clone()).unwrap()).unwrap();
    assert_eq!(
        entry(&qm, "1"),
        json!({"id": "1", "title": "T", "year": "2020", "status": "pending", "queued_at": 1_700_000_000_i64,
            "last_failed_at": 6, "retry_attempt": 9, "rating": 8}),
        "the queue's fields are not the movie's; `added` stamps status and queued_at in their places"
    );

    // The application hands back the entry it was given, queue fields and all.
    let taken = qm.take_next_pending().unwrap().unwrap().to_value();
    let mut handed_back = taken.clone();
    handed_back["retry_count"] = json!(7);
    qm.add_to_failed(Movie::from_value(handed_back).unwrap(), "boom", Some(NOW + 60.0))
        .unwrap();
    assert_eq!(
        entry(&qm, "1"),
        json!({"id": "1", "title": "T", "year": "2020", "status": "failed", "queued_at": 1_700_000_000_i64,
            "last_failed_at": 1_700_000_000_i64, "retry_attempt": 9, "rating": 8, "retry_count": 1,
            "last_error": "boom", "retry_after": NOW + 60.0, "failed_at": NOW}),
        "the queue's count goes on (0 + 1), not the one given"
    );

    let failed = entry(&qm, "1");
    qm.add_to_completed(Movie::from_value(failed).unwrap()).unwrap();
    let completed = entry(&qm, "1");
    assert_eq!(qm.get("1").unwrap().0, Place::Completed);
    assert_eq!(completed["status"], "completed");
    assert_eq!(
        completed["completed_at"],
        json!(1_700_000_000_i64),
        "stamped, not given"
    );
    assert_eq!(completed["rating"], 8);

    // A movie given replaces the stored movie's fields, the unstamped
    // stamps among them (the seed's rule: the movie given is what it keeps).
    qm.add_to_removed(Movie::from_value(forged).unwrap()).unwrap();
    let removed = entry(&qm, "1");
    assert_eq!(
        (&removed["status"], &removed["queued_at"], &removed["removed_at"]),
        (&json!("removed"), &json!(5), &json!(1_700_000_000_i64))
    );
    qm.close().unwrap();
}
