//! Statistics accuracy (each count, `in_flight`, permanent failures by the
//! configured `max_retries`) and `cleanup_old_completed`, which keeps
//! entries newer than the cut-off and journals the ones it removed.

use crate::support::common;

use common::{counts, movie, scratch};
use movie_queue::now;
use movie_queue::{Event, QueueManager, Seq};
use serde_json::json;

#[test]
fn statistics_count_every_place_and_permanent_failures_by_the_configured_limit() {
    let dir = scratch();
    let qm = QueueManager::options().max_retries(2).open(dir.path()).unwrap();
    for id in ["1", "2", "3", "4", "5"] {
        qm.add_to_pending(movie(id)).unwrap();
    }
    qm.get_next_pending().unwrap();
    let taken = qm.get_next_pending().unwrap().unwrap();
    qm.add_to_completed(taken).unwrap();
    qm.add_to_failed(movie("3"), "e", None).unwrap();
    qm.add_to_failed(movie("4"), "e", None).unwrap();
    qm.add_to_failed(movie("4"), "e", None).unwrap();
    assert_eq!(counts(&qm.get_statistics()), [1, 1, 2, 1, 1]);
    assert_eq!(
        serde_json::to_value(qm.get_statistics()).unwrap(),
        json!({"pending": 1, "in_flight": 1, "failed": 2, "completed": 1, "permanent_failures": 1, "removed": 0})
    );
    assert_eq!(
        (
            qm.get_pending_count(),
            qm.get_in_flight_count(),
            qm.get_failed_count(),
            qm.get_completed_count()
        ),
        (1, 1, 2, 1)
    );
}

#[test]
fn cleanup_removes_only_entries_older_than_the_cutoff() {
    let dir = scratch();
    let day = 86_400.0;
    let old = now() - 40.0 * day;
    let recent = now() - 5.0 * day;
    std::fs::write(
        dir.path().join("queue_completed.json"),
        serde_json::to_vec(&json!([
            {"id": "old", "title": "Old", "year": "1990", "completed_at": old},
            {"id": "recent", "title": "Recent", "year": "2020", "completed_at": recent}
        ]))
        .unwrap(),
    )
    .unwrap();
    let qm = QueueManager::open(dir.path()).unwrap();
    qm.add_to_completed(movie("today")).unwrap();
    assert_eq!(qm.cleanup_old_completed(30).unwrap(), 1);
    assert!(!qm.is_completed("old"));
    assert!(qm.is_completed("recent") && qm.is_completed("today"));
    assert_eq!(
        qm.cleanup_old_completed(30).unwrap(),
        0,
        "nothing more to remove, nothing written"
    );
    let last = qm.events_from(Seq(1)).unwrap().last().unwrap().unwrap();
    match last.event {
        Event::CleanedUp { ids, cutoff } => {
            assert_eq!(ids, ["old"]);
            assert!(
                (cutoff - (last.ts - 30.0 * day)).abs() < 1.0,
                "the cut-off is journaled"
            );
        }
        other => panic!("expected cleaned_up, got {other:?}"),
    }
    assert!(
        qm.add_to_pending(movie("old")).unwrap(),
        "a cleaned-up movie may be queued again"
    );
}
