//! The seed's usage example, step by step, with its meaning checked after
//! each call: add two, take one, fail it, retry it, complete it; then the
//! state survives a reopen and equals a full replay of the journal.

use crate::support::common;

use common::{counts, movie, open, scratch};
use movie_queue::{Place, QueueManager};

#[test]
fn the_seed_usage_example_runs_with_the_same_meaning() {
    let dir = scratch();
    let qm = open(dir.path());
    assert!(qm.add_to_pending(movie("1")).unwrap());
    assert!(qm.add_to_pending(movie("2")).unwrap());
    assert!(!qm.add_to_pending(movie("1")).unwrap(), "a duplicate is refused");

    let taken = qm.get_next_pending().unwrap().expect("pending is not empty");
    assert_eq!(taken.id(), "1", "FIFO");
    assert_eq!(qm.get(&taken).unwrap().0, Place::InFlight);

    let retry_after = movie_queue::now() - 1.0;
    assert!(
        qm.add_to_failed(taken.clone(), "Download failed", Some(retry_after))
            .unwrap()
    );
    let ready = qm.get_movies_ready_for_retry(5);
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].retry_count, 1);
    assert_eq!(ready[0].last_error.as_deref(), Some("Download failed"));
    for entry in &ready {
        assert!(qm.move_failed_to_pending(entry).unwrap());
    }
    assert_eq!(counts(&qm.get_statistics()), [2, 0, 0, 0, 0]);
    assert_eq!(qm.get_next_pending().unwrap().unwrap().id(), "2");
    assert!(qm.add_to_completed(movie("2")).unwrap());
    assert!(
        !qm.add_to_pending(movie("2")).unwrap(),
        "a completed movie is never re-added"
    );
    assert!(qm.is_completed("2"));
    let live = qm.state();
    qm.close().unwrap();

    let reopened = QueueManager::open(dir.path()).unwrap();
    assert!(reopened.state() == live, "reopen restores the same state");
    assert_eq!(
        reopened.get("1").unwrap().1.retry_count,
        1,
        "retry_count kept through pending"
    );
    common::assert_replay_equals(dir.path(), &live);
}
