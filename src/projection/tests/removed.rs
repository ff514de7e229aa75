//! The removed queue's rules and query, and the stamping rules of event
//! schema version 2 against version 1 (which stamps nothing).

use super::*;

fn removed(id: &str) -> Event {
    Event::Removed { movie: movie(id) }
}

fn marked(ids: &[&str]) -> Event {
    Event::MarkedRemoved { ids: strings(ids) }
}

#[test]
fn removed_takes_a_movie_from_anywhere_keeping_what_the_queue_knew() {
    let mut state = state_of(&[added("p"), added("t"), taken("p"), failed("f", 50.0), completed("c")]);
    for (time, id) in [(10.5, "c"), (11.0, "f"), (12.0, "t"), (13.0, "p"), (14.0, "new")] {
        state.apply(time, &removed(id)).expect("removes");
    }
    assert_eq!(ids(state.removed()), ["c", "f", "t", "p", "new"]);
    assert_eq!(state.removed_count(), 5);
    let (_, entry) = state.get("c").expect("known");
    assert_eq!(entry.completed_at, Some(5.0));
    assert_eq!(entry.removed_at, Some(10.0), "whole seconds");
    assert_eq!(entry.movie, movie("c").stamped(&[status("removed")]));
    let (_, entry) = state.get("f").expect("known");
    assert_eq!((entry.retry_count, entry.retry_after), (1, Some(50.0)));
    let json = state.entries_json(Place::Removed).next().expect("an entry");
    assert!(
        json.ends_with(r#""status":"removed","completed_at":5,"removed_at":10}"#),
        "{json}"
    );
    let error = state.check(&removed("c")).expect_err("twice");
    assert_eq!(error.0, r#"removed: "c" is already removed"#);
}

#[test]
fn removed_movies_are_done_with_until_restored_or_forgotten() {
    let mut state = state_of(&[added("1"), removed("1")]);
    for event in [added("1"), failed("1", 0.0), completed("1"), taken("1")] {
        assert!(state.check(&event).is_err(), "{event:?}");
    }
    assert_eq!(
        state.check(&completed("1")).expect_err("removed").0,
        r#"completed: "1" is removed (restore it first)"#
    );
    state.apply(3.0, &Event::Restored { id: "1".into() }).expect("restores");
    let (place, entry) = state.get("1").expect("known");
    assert_eq!(place, Place::Pending);
    assert_eq!(entry.removed_at, None);
    // `removed` gave the movie's fields (replacing `queued_at`); restoring stamps the status.
    assert_eq!(entry.movie, movie("1").stamped(&[status("pending")]));
    state.apply(4.0, &removed("1")).expect("removes");
    state.apply(5.0, &Event::Forgotten { id: "1".into() }).expect("forgets");
    assert_eq!(state.get("1"), None);
    state.apply(6.0, &added("1")).expect("an unknown id again");
    let error = state.check(&Event::Forgotten { id: "1".into() }).expect_err("pending");
    assert_eq!(error.0, r#"forgotten: "1" is not removed (it is pending)"#);
}

#[test]
fn marked_removed_moves_pending_and_completed_movies_only() {
    let mut state = state_of(&[added("p"), added("t"), taken("p"), failed("f", 0.0), completed("c")]);
    let error = state.check(&marked(&["p"])).expect_err("in flight");
    assert_eq!(
        error.0,
        r#"marked_removed: "p" is neither pending nor completed (it is in flight)"#
    );
    assert!(state.check(&marked(&["f"])).is_err());
    assert!(state.check(&marked(&["c", "c"])).is_err());
    state.check(&marked(&["c"])).expect("completed");
    state.apply(9.0, &marked(&["c", "t"])).expect("marks");
    assert_eq!(ids(state.removed()), ["c", "t"]);
    let (_, entry) = state.get("t").expect("known");
    let expected = queued("t", 2).stamped(&[status("removed")]);
    assert_eq!((entry.movie, entry.removed_at), (expected, Some(9.0)));
}

#[test]
fn ready_for_deletion_waits_out_the_grace_period_in_removed_order() {
    let mut entry = QueueEntry::new(movie("unstamped"));
    entry.removed_at = None;
    let state = state_of(&[
        removed("a"),
        removed("b"),
        Event::Imported {
            pending: vec![],
            failed: vec![],
            completed: vec![],
            removed: vec![entry],
        },
        removed("c"),
    ]);
    assert_eq!(ids(state.ready_for_deletion(10.0, 10.0)), ["unstamped"]);
    assert_eq!(ids(state.ready_for_deletion(12.0, 10.0)), ["a", "b", "unstamped"]);
    assert_eq!(ids(state.ready_for_deletion(14.0, 10.0)), ["a", "b", "unstamped", "c"]);
    assert_eq!(state.statistics(5).removed, 4);
}

#[test]
fn version_1_events_stamp_nothing_and_replay_as_they_always_did() {
    let mut old = QueueState::new();
    let events = [added("1"), added("2"), taken("1"), failed("1", 9.0), completed("2")];
    for (time, event) in [1.5, 2.5, 3.5, 4.5, 5.5].into_iter().zip(&events) {
        old.apply_version(1, time, event).expect("applies");
    }
    old.apply_version(1, 6.5, &Event::MovedToPending { id: "1".into() })
        .expect("moves");
    let pending: Vec<&str> = old.entries_json(Place::Pending).collect();
    assert_eq!(
        pending,
        [
            r#"{"id":"1","title":"Movie 1","year":2000,"retry_count":1,"last_error":"error for 1","retry_after":9,"failed_at":4.5}"#
        ]
    );
    let completed: Vec<&str> = old.entries_json(Place::Completed).collect();
    assert_eq!(
        completed,
        [r#"{"id":"2","title":"Movie 2","year":2000,"completed_at":5.5}"#]
    );
}

#[test]
fn version_2_stamps_the_application_fields_as_integers() {
    let mut state = QueueState::new();
    state.apply(1_760_806_482.75, &added("1")).expect("adds");
    state.apply(1_760_806_483.5, &taken("1")).expect("takes");
    state
        .apply(1_760_806_484.25, &failed("1", 1_760_810_084.25))
        .expect("fails");
    state
        .apply(1_760_806_485.5, &Event::MovedToPending { id: "1".into() })
        .expect("moves");
    let pending: Vec<&str> = state.entries_json(Place::Pending).collect();
    assert_eq!(
        pending,
        [concat!(
            r#"{"id":"1","title":"Movie 1","year":2000,"status":"pending","last_failed_at":1760806484,"#,
            r#""retry_attempt":1,"retry_count":1,"last_error":"error for 1","retry_after":1760810084.25,"#,
            r#""failed_at":1760806484.25}"#
        )]
    );
    state.apply(1_760_806_486.5, &completed("1")).expect("completes");
    let done: Vec<&str> = state.entries_json(Place::Completed).collect();
    assert_eq!(
        done,
        [r#"{"id":"1","title":"Movie 1","year":2000,"status":"completed","completed_at":1760806486}"#]
    );
}
