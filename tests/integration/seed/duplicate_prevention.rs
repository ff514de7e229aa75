//! Duplicate prevention by `id` and completed protection (the seed's
//! "Error Handling"): a movie pending, in flight, failed or completed is
//! never added twice, and a refused operation writes nothing to the journal.

use crate::support::common;

use common::{movie, open, scratch};
use movie_queue::Place;

#[test]
fn an_id_known_anywhere_is_not_added_again_and_nothing_is_written() {
    let dir = scratch();
    let qm = open(dir.path());
    for id in ["in-flight", "pending", "failed", "completed"] {
        assert!(qm.add_to_pending(movie(id)).unwrap());
    }
    qm.get_next_pending().unwrap();
    qm.add_to_failed(movie("failed"), "e", None).unwrap();
    qm.add_to_completed(movie("completed")).unwrap();
    let seq = qm.last_seq();
    for id in ["pending", "in-flight", "failed", "completed"] {
        assert!(!qm.add_to_pending(movie(id)).unwrap(), "{id} was added twice");
        assert!(
            !qm.add_to_pending(movie_queue::Movie::new(id, "Other title", 1999))
                .unwrap()
        );
    }
    assert!(
        !qm.add_to_completed(movie("completed")).unwrap(),
        "completing twice changes nothing"
    );
    assert!(
        !qm.move_failed_to_pending("pending").unwrap(),
        "only failed movies move"
    );
    assert!(!qm.reset_failed_movie("nobody").unwrap());
    assert!(
        !qm.add_to_failed(movie("completed"), "e", None).unwrap(),
        "completed stays completed"
    );
    assert_eq!(qm.last_seq(), seq, "refused operations wrote events");
    assert_eq!(qm.get("completed").unwrap().0, Place::Completed);
    assert_eq!(qm.history("pending").unwrap().len(), 1);
}

#[test]
fn a_movie_without_a_usable_id_is_refused_at_the_boundary() {
    let dir = scratch();
    let qm = open(dir.path());
    let error = qm.add_to_pending(movie_queue::Movie::new("", "t", "1")).unwrap_err();
    assert!(error.to_string().contains("\"id\" is empty"), "{error}");
    let error = movie_queue::Movie::from_value(serde_json::json!({"id": 7, "title": "t", "year": "1"})).unwrap_err();
    assert!(error.to_string().contains("\"id\" must be a string"), "{error}");
    let error = qm.add_to_failed(movie("1"), "e", Some(f64::NAN)).unwrap_err();
    assert!(
        matches!(error, movie_queue::Error::OutOfRange { name: "retry_after", value, .. } if value.is_nan()),
        "{error}"
    );
    assert_eq!(qm.last_seq(), movie_queue::Seq(0));
}

#[test]
fn an_event_over_the_size_limit_is_refused_and_nothing_is_written() {
    let dir = scratch();
    let qm = movie_queue::QueueManager::options()
        .event_bytes_max(512)
        .open(dir.path())
        .unwrap();
    let big = movie("big")
        .with_extra("blob", serde_json::json!("x".repeat(1000)))
        .unwrap();
    let error = qm.add_to_pending(big).unwrap_err();
    assert!(
        matches!(error, movie_queue::Error::EventTooLarge { limit: 512, .. }),
        "{error}"
    );
    assert_eq!(qm.get_pending_count(), 0, "the refused movie is not in the projection");
    assert!(qm.add_to_pending(movie("small")).unwrap());
    assert_eq!(qm.last_seq(), movie_queue::Seq(1));
}
