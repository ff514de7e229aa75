//! Persistence and recovery: state survives close and reopen; movies left in
//! flight go back to the front of pending (or stay, when asked); a snapshot
//! plus the journal's tail equals a full replay; a crash without close (no
//! final snapshot) loses nothing acknowledged.

use crate::support::common;

use std::sync::Arc;

use common::{movie, open, scratch};
use movie_queue::testing::FaultyStorage;
use movie_queue::{Place, QueueManager};

#[test]
fn in_flight_movies_return_to_the_front_of_pending_on_reopen() {
    let dir = scratch();
    let qm = open(dir.path());
    for id in ["1", "2", "3", "4"] {
        qm.add_to_pending(movie(id)).unwrap();
    }
    assert_eq!(qm.get_next_pending().unwrap().unwrap().id(), "1");
    assert_eq!(qm.get_next_pending().unwrap().unwrap().id(), "2");
    drop(qm);
    let kept = QueueManager::options()
        .requeue_in_flight_on_open(false)
        .open(dir.path())
        .unwrap();
    assert_eq!(kept.get_in_flight_count(), 2, "kept in flight when asked");
    drop(kept);
    let qm = open(dir.path());
    assert_eq!(qm.get_in_flight_count(), 0);
    let order: Vec<String> = qm
        .list(Place::Pending)
        .iter()
        .map(|entry| entry.id().to_owned())
        .collect();
    assert_eq!(order, ["1", "2", "3", "4"], "requeued at the front, oldest first");
}

#[test]
fn requeue_in_flight_puts_them_back_explicitly() {
    let dir = scratch();
    let qm = open(dir.path());
    qm.add_to_pending(movie("1")).unwrap();
    qm.add_to_pending(movie("2")).unwrap();
    qm.get_next_pending().unwrap();
    assert_eq!(qm.requeue_in_flight().unwrap(), 1);
    assert_eq!(qm.get_next_pending().unwrap().unwrap().id(), "1");
}

#[test]
fn snapshot_plus_tail_equals_full_replay() {
    let dir = scratch();
    let faulty = FaultyStorage::new();
    let qm = QueueManager::options()
        .snapshot_every_events(7)
        .storage(Arc::new(faulty.clone()))
        .open(dir.path())
        .unwrap();
    for round in 0..40 {
        let id = format!("{round}");
        qm.add_to_pending(movie(&id)).unwrap();
        if round % 3 == 0 {
            let taken = qm.get_next_pending().unwrap().unwrap();
            qm.add_to_failed(taken, "e", Some(0.0)).unwrap();
        }
        if round % 5 == 0
            && let Some(taken) = qm.get_next_pending().unwrap()
        {
            qm.add_to_completed(taken).unwrap();
        }
    }
    qm.snapshot().unwrap();
    for id in ["tail-1", "tail-2"] {
        qm.add_to_pending(movie(id)).unwrap();
    }
    qm.get_next_pending().unwrap();
    let live = qm.state();
    // Power loss instead of close: no final snapshot, the one on disk is older.
    faulty.power_loss(0).unwrap();
    drop(qm);
    let report = movie_queue::verify(dir.path()).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let covered = report
        .snapshot_seq
        .expect("a background snapshot was written and is consistent");
    assert!(
        covered > 0 && covered < report.last_seq,
        "the snapshot on disk predates the tail"
    );
    let full = movie_queue::testing::full_replay(&movie_queue::testing::RealStorage, dir.path()).unwrap();
    assert!(full == live, "full replay differs from the live state");
    let reopened = QueueManager::options()
        .requeue_in_flight_on_open(false)
        .open(dir.path())
        .unwrap();
    assert!(reopened.state() == live, "snapshot + tail differs from the live state");
}
