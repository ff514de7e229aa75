//! The seed's retry logic: `retry_count` increments (continuing through a
//! trip back to pending), `failed_at` on the first failure only,
//! readiness by time and count, permanent failures, reset, and the default
//! retry policy (1 h doubling).

use crate::support::common;

use common::{movie, open, scratch};
use movie_queue::now;
use movie_queue::{Place, QueueManager};

#[test]
fn retry_count_continues_through_pending_and_failed_at_stays_the_first() {
    let dir = scratch();
    let qm = open(dir.path());
    qm.add_to_pending(movie("1")).unwrap();
    let mut first_failed_at = None;
    for expected in 1..=3 {
        let taken = qm.get_next_pending().unwrap().expect("pending");
        qm.add_to_failed(taken, format!("error {expected}"), Some(now() - 1.0))
            .unwrap();
        let (place, entry) = qm.get("1").unwrap();
        assert_eq!(place, Place::Failed);
        assert_eq!(entry.retry_count, expected);
        assert_eq!(entry.last_error.as_deref(), Some(format!("error {expected}").as_str()));
        let failed_at = entry.failed_at.expect("failed_at set");
        assert_eq!(*first_failed_at.get_or_insert(failed_at), failed_at, "failed_at moved");
        assert!(qm.move_failed_to_pending("1").unwrap());
        assert_eq!(qm.get("1").unwrap().1.retry_count, expected, "kept in pending");
    }
}

#[test]
fn failing_a_failed_movie_updates_that_one_entry_in_place() {
    let dir = scratch();
    let qm = open(dir.path());
    for id in ["a", "b"] {
        qm.add_to_failed(movie(id), "first", Some(now() + 3600.0)).unwrap();
    }
    qm.add_to_failed(movie("a"), "second", Some(now() + 7200.0)).unwrap();
    let failed = qm.list(Place::Failed);
    let ids: Vec<&str> = failed.iter().map(|entry| entry.id()).collect();
    assert_eq!(ids, ["a", "b"], "position kept");
    assert_eq!(failed[0].retry_count, 2);
    assert_eq!(failed[0].last_error.as_deref(), Some("second"));
    assert_eq!(qm.get_failed_count(), 2);
}

#[test]
fn ready_for_retry_needs_the_time_and_a_count_below_the_limit() {
    let dir = scratch();
    let qm = open(dir.path());
    qm.add_to_failed(movie("later"), "e", Some(now() + 3600.0)).unwrap();
    qm.add_to_failed(movie("now"), "e", Some(now() - 10.0)).unwrap();
    qm.add_to_failed(movie("none"), "e", None).unwrap();
    for _ in 0..5 {
        qm.add_to_failed(movie("exhausted"), "e", Some(now() - 10.0)).unwrap();
    }
    let ready: Vec<String> = qm
        .get_movies_ready_for_retry(5)
        .iter()
        .map(|entry| entry.id().to_owned())
        .collect();
    assert_eq!(
        ready,
        ["now", "none"],
        "earliest retry_after first; future and exhausted excluded"
    );
    let permanent = qm.get_permanent_failures(5);
    assert_eq!(permanent.len(), 1);
    assert_eq!(permanent[0].id(), "exhausted");
    assert_eq!(qm.get_statistics().permanent_failures, 1);
    assert_eq!(qm.get_permanent_failures(6).len(), 0);
}

#[test]
fn reset_returns_a_failed_movie_to_pending_with_a_fresh_count() {
    let dir = scratch();
    let qm = open(dir.path());
    for _ in 0..5 {
        qm.add_to_failed(movie("1"), "e", Some(now() + 100.0)).unwrap();
    }
    assert!(qm.reset_failed_movie("1").unwrap());
    let (place, entry) = qm.get("1").unwrap();
    assert_eq!(place, Place::Pending);
    assert_eq!(
        (entry.retry_count, entry.last_error, entry.retry_after, entry.failed_at),
        (0, None, None, None)
    );
    assert!(!qm.reset_failed_movie("1").unwrap(), "no longer failed");
}

#[test]
fn add_to_completed_removes_from_failed_and_in_flight() {
    let dir = scratch();
    let qm = open(dir.path());
    qm.add_to_failed(movie("f"), "e", None).unwrap();
    qm.add_to_pending(movie("p")).unwrap();
    let taken = qm.get_next_pending().unwrap().unwrap();
    assert!(qm.add_to_completed(movie("f")).unwrap());
    assert!(qm.add_to_completed(taken).unwrap());
    let stats = qm.get_statistics();
    assert_eq!((stats.failed, stats.in_flight, stats.completed), (0, 0, 2));
    assert!(qm.get("f").unwrap().1.completed_at.is_some());
}

#[test]
fn backoff_uses_the_applications_doubling_hour() {
    let dir = scratch();
    let qm = QueueManager::options().max_retries(5).open(dir.path()).unwrap();
    let mut delays = Vec::new();
    for _ in 0..3 {
        let before = now();
        let retry_after = qm.fail_with_backoff(movie("1"), "e").unwrap().expect("not completed");
        delays.push(((retry_after - before) / 3600.0).round());
    }
    assert_eq!(delays, [1.0, 2.0, 4.0]);
}
