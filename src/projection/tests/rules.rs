//! Each event's rule and each query, one scenario a test.

use super::*;

/// The memory budget of docs/PERFORMANCE.md counts 56 bytes per slot
/// and 8 per id-table bucket.
#[test]
fn a_slot_and_an_id_table_entry_stay_small() {
    assert!(
        std::mem::size_of::<Option<Node>>() <= 56,
        "{}",
        std::mem::size_of::<Option<Node>>()
    );
    assert_eq!(std::mem::size_of::<IdSlot>(), 8);
}

#[test]
fn ids_that_json_escapes_are_kept_beside_the_entry() {
    let odd = ["a\"b", "back\\slash", "tab\there", "\u{e9}t\u{e9}", "a"];
    let state = state_of(&odd.map(added));
    let pending: Vec<&str> = state.nodes(Place::Pending).map(|(_, node)| node.id()).collect();
    assert_eq!(pending, odd);
    for id in odd {
        let (place, entry) = state.get(id).expect("known");
        assert_eq!((place, entry.id()), (Place::Pending, id));
    }
    let parsed: Vec<QueueEntry> = state
        .entries_json(Place::Pending)
        .map(|json| serde_json::from_str(json).expect("entry JSON"))
        .collect();
    assert_eq!(ids(parsed), odd);
    let beside: Vec<bool> = state.nodes(Place::Pending).map(|(_, node)| !node.id_inline).collect();
    assert_eq!(beside, [true, true, true, false, false]);
}

#[test]
fn added_joins_the_back_of_pending_once() {
    let mut state = state_of(&[added("1"), added("2")]);
    assert_eq!(ids(state.pending()), ["1", "2"]);
    assert_eq!(state.get("2"), Some((Place::Pending, QueueEntry::new(queued("2", 2)))));
    let error = state.apply(3.0, &added("1")).expect_err("duplicate");
    assert_eq!(error.0, r#"added: "1" is already known (it is pending)"#);
}

#[test]
fn taken_needs_the_front_of_pending() {
    let mut state = state_of(&[added("1"), added("2"), added("7"), failed("7", 0.0)]);
    let error = state.check(&taken("2")).expect_err("not the front");
    assert_eq!(
        error.0,
        r#"taken: "2" is not at the front of pending (the front is "1")"#
    );
    let error = state.check(&taken("7")).expect_err("failed");
    assert_eq!(error.0, r#"taken: "7" is not at the front of pending (it is failed)"#);
    state.apply(5.0, &taken("1")).expect("front");
    state.apply(6.0, &taken("2")).expect("front");
    assert_eq!(ids(state.in_flight()), ["1", "2"]);
    assert_eq!(state.front_pending(), None);
    assert_eq!(state.in_flight().next(), Some(QueueEntry::new(queued("1", 1))));
}

#[test]
fn failures_count_up_across_moves_and_keep_the_first_failure_time() {
    let mut state = state_of(&[added("1"), taken("1")]);
    for (round, time) in (1..=3).zip([10.0, 20.0, 30.0]) {
        let renamed = Movie::new("1", format!("Title {round}"), 1999);
        let event = Event::Failed {
            movie: renamed.clone(),
            error: format!("error {round}"),
            retry_after: time + 5.0,
        };
        state.apply(time, &event).expect("fails");
        let (place, entry) = state.get("1").expect("known");
        assert_eq!(place, Place::Failed);
        assert_eq!(entry.retry_count, round);
        let last_failed_at = stamp("last_failed_at", i64::from(round) * 10);
        assert_eq!(
            entry.movie,
            renamed.clone().stamped(&[status("failed"), last_failed_at])
        );
        assert_eq!(entry.last_error.as_deref(), Some(format!("error {round}").as_str()));
        assert_eq!(entry.retry_after, Some(time + 5.0));
        assert_eq!(entry.failed_at, Some(10.0));
        state
            .apply(time + 1.0, &Event::MovedToPending { id: "1".into() })
            .expect("moves");
        let (place, entry) = state.get("1").expect("known");
        assert_eq!(place, Place::Pending);
        assert_eq!((entry.retry_count, entry.failed_at), (round, Some(10.0)));
        let attempt = stamp("retry_attempt", i64::from(round));
        assert_eq!(
            entry.movie,
            renamed.stamped(&[status("pending"), last_failed_at, attempt])
        );
        assert_eq!(entry.retry_after, Some(time + 5.0));
    }
}

#[test]
fn failing_again_while_failed_keeps_the_position() {
    let mut state = state_of(&[added("1"), added("2"), added("3"), failed("1", 1.0), failed("2", 1.0)]);
    state.apply(6.0, &failed("3", 1.0)).expect("fails");
    state.apply(7.0, &failed("1", 9.0)).expect("fails again");
    assert_eq!(ids(state.failed()), ["1", "2", "3"]);
    let (_, entry) = state.get("1").expect("known");
    assert_eq!(
        (entry.retry_count, entry.retry_after, entry.failed_at),
        (2, Some(9.0), Some(4.0))
    );
    // An unknown id fails for the first time: count 1, at the back.
    state.apply(8.0, &failed("new", 1.0)).expect("fails");
    assert_eq!(ids(state.failed()), ["1", "2", "3", "new"]);
    assert_eq!(state.get("new").map(|(_, entry)| entry.retry_count), Some(1));
}

#[test]
fn reset_clears_the_failure_and_moved_to_pending_needs_failed() {
    let mut state = state_of(&[added("1"), added("2"), failed("1", 50.0), failed("1", 60.0)]);
    let error = state.check(&Event::Reset { id: "2".into() }).expect_err("pending");
    assert_eq!(error.0, r#"reset: "2" is not failed (it is pending)"#);
    state.apply(5.0, &Event::Reset { id: "1".into() }).expect("resets");
    assert_eq!(ids(state.pending()), ["2", "1"]);
    // A fresh record: no retry fields, no `last_failed_at` left, pending again.
    let fresh = movie("1").stamped(&[status("pending")]);
    assert_eq!(state.get("1"), Some((Place::Pending, QueueEntry::new(fresh))));
    let error = state
        .check(&Event::MovedToPending { id: "9".into() })
        .expect_err("unknown");
    assert_eq!(error.0, r#"moved_to_pending: "9" is not failed (it is in no queue)"#);
}

#[test]
fn completed_comes_from_anywhere_once() {
    let mut state = state_of(&[added("1"), added("2"), added("3"), taken("1"), failed("2", 0.0)]);
    for (time, id) in [(10.0, "2"), (11.0, "1"), (12.0, "3"), (13.0, "4")] {
        state.apply(time, &completed(id)).expect("completes");
    }
    assert_eq!(ids(state.completed()), ["2", "1", "3", "4"]);
    assert_eq!(
        state.pending_count() + state.in_flight_count() + state.failed_count(),
        0
    );
    let entry = QueueEntry {
        completed_at: Some(10.0),
        ..QueueEntry::new(movie("2").stamped(&[status("completed")]))
    };
    assert_eq!(state.get("2"), Some((Place::Completed, entry)));
    let error = state.check(&completed("2")).expect_err("twice");
    assert_eq!(error.0, r#"completed: "2" is already completed"#);
    let error = state.check(&failed("2", 0.0)).expect_err("completed");
    assert_eq!(error.0, r#"failed: "2" is already completed"#);
    assert!(state.check(&added("2")).is_err());
}

#[test]
fn cleaned_up_removes_only_completed_entries_before_the_cutoff() {
    let mut state = state_of(&[added("p"), completed("a"), completed("b"), completed("c")]);
    assert_eq!(state.completed_before(4.0), strings(&["a", "b"]));
    assert_eq!(state.completed_before(2.0), Vec::<String>::new());
    let late = Event::CleanedUp {
        cutoff: 4.0,
        ids: strings(&["a", "c"]),
    };
    let error = state.check(&late).expect_err("too late");
    assert_eq!(
        error.0,
        r#"cleaned_up: "c" was completed at 4, not before the cutoff 4"#
    );
    let twice = Event::CleanedUp {
        cutoff: 4.0,
        ids: strings(&["a", "a"]),
    };
    assert_eq!(
        state.check(&twice).expect_err("twice").0,
        r#"cleaned_up: "a" is listed twice"#
    );
    let pending = Event::CleanedUp {
        cutoff: 4.0,
        ids: strings(&["p"]),
    };
    assert!(state.check(&pending).is_err());
    let event = Event::CleanedUp {
        cutoff: 4.0,
        ids: state.completed_before(4.0),
    };
    state.apply(5.0, &event).expect("cleans");
    assert_eq!(ids(state.completed()), ["c"]);
    assert_eq!(state.place("a"), None);
    state.apply(6.0, &added("a")).expect("a cleaned id is unknown again");
}

#[test]
fn requeued_goes_to_the_front_of_pending_in_the_given_order() {
    let mut state = state_of(&[
        added("1"),
        added("2"),
        added("3"),
        added("4"),
        taken("1"),
        taken("2"),
        taken("3"),
    ]);
    let event = Event::Requeued {
        ids: strings(&["3", "1"]),
    };
    state.apply(8.0, &event).expect("requeues");
    assert_eq!(ids(state.pending()), ["3", "1", "4"]);
    assert_eq!(ids(state.in_flight()), ["2"]);
    state.apply(9.0, &taken("3")).expect("3 is the front");
    assert_eq!(ids(state.in_flight()), ["2", "3"]);
    let error = state
        .check(&Event::Requeued { ids: strings(&["4"]) })
        .expect_err("pending");
    assert_eq!(error.0, r#"requeued: "4" is not in flight (it is pending)"#);
    let twice = Event::Requeued {
        ids: strings(&["2", "2"]),
    };
    assert!(state.check(&twice).is_err());
}

#[test]
fn refused_events_leave_the_state_unchanged() {
    let mut state = state_of(&[added("1"), added("2"), taken("1"), failed("3", 5.0), completed("4")]);
    let before = state.clone();
    let refused = [
        added("2"),
        taken("3"),
        taken("9"),
        failed("4", 1.0),
        failed("1", f64::NAN),
        Event::MovedToPending { id: "1".into() },
        Event::Reset { id: "2".into() },
        completed("4"),
        Event::CleanedUp {
            cutoff: 100.0,
            ids: strings(&["4", "3"]),
        },
        Event::CleanedUp {
            cutoff: f64::INFINITY,
            ids: strings(&["4"]),
        },
        Event::Requeued {
            ids: strings(&["1", "2"]),
        },
    ];
    for event in &refused {
        let checked = state.check(event).expect_err("check refuses");
        let applied = state.apply(10.0, event).expect_err("apply refuses");
        assert_eq!(checked, applied);
        assert!(checked.0.starts_with(event.kind()), "{checked}");
        assert_eq!(state, before, "{event:?} changed the state");
        assert!(state.indexes_agree());
    }
}

#[test]
fn ready_for_retry_orders_by_retry_after_then_failed_order() {
    let mut state = state_of(&[
        failed("late", 30.0),
        failed("tie-a", 10.0),
        failed("early", 5.0),
        failed("tie-b", 10.0),
        failed("future", 99.0),
        failed("spent", 1.0),
    ]);
    for time in 7..10 {
        state
            .apply(f64::from(time), &failed("spent", 1.0))
            .expect("fails again");
    }
    // "spent" now has retry_count 4, the others 1.
    let due = |state: &QueueState, now, max| ids(state.ready_for_retry(now, max));
    assert_eq!(due(&state, 30.0, 4), ["early", "tie-a", "tie-b", "late"]);
    assert_eq!(due(&state, 30.0, 5), ["spent", "early", "tie-a", "tie-b", "late"]);
    assert_eq!(due(&state, 9.9, 5), ["spent", "early"]);
    assert!(due(&state, 30.0, 0).is_empty());
    // Failing again keeps tie-a's place in failed, so it still precedes
    // tie-b; with retry_count 2 it drops out under max_retries 2.
    state.apply(20.0, &failed("tie-a", 10.0)).expect("fails again");
    assert_eq!(due(&state, 10.0, 2), ["early", "tie-b"]);
    assert_eq!(due(&state, 10.0, 3), ["early", "tie-a", "tie-b"]);
}

#[test]
fn a_missing_retry_after_counts_as_zero() {
    let mut entry = QueueEntry::new(movie("imported"));
    entry.retry_count = 1;
    let state = state_of(&[
        failed("1", -5.0),
        Event::Imported {
            pending: vec![],
            failed: vec![entry],
            completed: vec![],
            removed: vec![],
        },
    ]);
    assert_eq!(ids(state.ready_for_retry(0.0, 5)), ["1", "imported"]);
    assert_eq!(ids(state.ready_for_retry(-1.0, 5)), ["1"]);
}

#[test]
fn permanent_failures_agree_with_their_count() {
    let mut events = vec![];
    for (id, failures) in [("a", 1), ("b", 4), ("c", 2), ("d", 3), ("e", 5)] {
        events.extend((0..failures).map(|_| failed(id, 0.0)));
    }
    let state = state_of(&events);
    for max_retries in 0..7 {
        let permanent = state.permanent_failures(max_retries);
        assert_eq!(permanent.len(), state.permanent_failure_count(max_retries));
        assert!(permanent.iter().all(|entry| entry.retry_count >= max_retries));
    }
    assert_eq!(ids(state.permanent_failures(2)), ["b", "c", "d", "e"]);
    assert_eq!(state.permanent_failure_count(0), 5);
    assert_eq!(state.permanent_failure_count(5), 1);
    assert_eq!(state.permanent_failure_count(6), 0);
}

#[test]
fn completed_before_follows_completed_order_not_time_order() {
    let stamped = |id: &str, completed_at| QueueEntry {
        completed_at,
        ..QueueEntry::new(movie(id))
    };
    let state = state_of(&[
        completed("live"),
        Event::Imported {
            pending: vec![],
            failed: vec![],
            completed: vec![
                stamped("old", Some(0.5)),
                stamped("unstamped", None),
                stamped("new", Some(9.0)),
            ],
            removed: vec![],
        },
    ]);
    assert_eq!(ids(state.completed()), ["live", "old", "unstamped", "new"]);
    assert_eq!(state.completed_before(1.5), strings(&["live", "old", "unstamped"]));
    assert_eq!(state.completed_before(0.5), strings(&["unstamped"]));
    assert_eq!(state.completed_before(0.0), Vec::<String>::new());
}

#[test]
fn imported_appends_unknown_entries_unchanged_and_skips_known_ones() {
    let mut failed_entry = QueueEntry::new(movie("f"));
    failed_entry.retry_count = 2;
    failed_entry.last_error = Some("Not found".into());
    failed_entry.retry_after = Some(100.0);
    failed_entry.failed_at = Some(50.0);
    let mut state = state_of(&[added("known"), completed("done")]);
    let import = Event::Imported {
        pending: vec![
            QueueEntry::new(movie("p")),
            QueueEntry::new(Movie::new("known", "Other", 1)),
        ],
        failed: vec![
            failed_entry.clone(),
            QueueEntry::new(movie("done")),
            QueueEntry::new(movie("p")),
        ],
        completed: vec![
            QueueEntry::new(Movie::new("f", "Again", 1)),
            QueueEntry::new(movie("c")),
        ],
        removed: vec![],
    };
    state.check(&import).expect("never refused");
    state.apply(3.0, &import).expect("imports");
    assert_eq!(ids(state.pending()), ["known", "p"]);
    assert_eq!(
        state
            .get("known")
            .and_then(|(_, entry)| entry.movie.title().map(str::to_owned)),
        Some("Movie known".to_owned())
    );
    assert_eq!(ids(state.failed()), ["f"]);
    assert_eq!(state.get("f"), Some((Place::Failed, failed_entry)));
    assert_eq!(ids(state.completed()), ["done", "c"]);
    assert_eq!(state.get("c").map(|(_, entry)| entry.completed_at), Some(None));
    assert_eq!(ids(state.ready_for_retry(100.0, 3)), ["f"]);
}

#[test]
fn equality_ignores_order_keys() {
    // Requeued gives pending keys below zero; the same order built by
    // plain adds has other keys but is the same state.
    let requeued = state_of(&[
        added("1"),
        added("2"),
        taken("1"),
        Event::Requeued { ids: strings(&["1"]) },
    ]);
    let added_only = state_of(&[added("1"), added("2")]);
    assert_eq!(requeued, added_only);
    assert_ne!(requeued, state_of(&[added("2"), added("1")]));
    assert_ne!(QueueState::new(), state_of(&[completed("1")]));
}

#[test]
fn place_displays_as_words() {
    let words: Vec<String> = Place::ALL.iter().map(ToString::to_string).collect();
    assert_eq!(words, ["pending", "in flight", "failed", "completed", "removed"]);
}

/// The public `apply_record` applies a record by its version's rules and
/// refuses one that does not follow, leaving the state as it was; the
/// order keys `position` gives sort each place front to back, a requeue
/// to the front included.
#[test]
fn apply_record_refuses_what_does_not_follow_and_positions_sort_each_place() {
    use crate::seq::Seq;
    let mut state = QueueState::new();
    for (seq, event) in (1..).zip([added("a"), added("b"), added("c"), taken("a")]) {
        state
            .apply_record(&EventRecord::new(Seq(seq), 10.0, event))
            .expect("applies");
    }
    let before = state.clone();
    let error = state
        .apply_record(&EventRecord::new(Seq(5), 11.0, taken("c")))
        .expect_err("refused");
    assert!(
        matches!(&error, crate::Error::InvalidArgument(text) if text.contains("record 5 (taken)")),
        "{error}"
    );
    assert_eq!(state, before, "a refused record changes nothing");
    let requeue = Event::Requeued { ids: vec!["a".into()] };
    state
        .apply_record(&EventRecord::new(Seq(5), 12.0, requeue))
        .expect("applies");
    let mut pending: Vec<(i64, &str)> = ["a", "b", "c"]
        .into_iter()
        .map(|id| {
            let (place, key) = state.position(id).expect("known");
            assert_eq!(place, Place::Pending);
            (key, id)
        })
        .collect();
    pending.sort_unstable();
    let order: Vec<&str> = pending.iter().map(|(_, id)| *id).collect();
    let expected: Vec<String> = state.pending().map(|entry| entry.id().to_owned()).collect();
    assert_eq!(order, expected, "keys sort pending as the state orders it");
    assert_eq!(order, ["a", "b", "c"]);
    assert_eq!(state.position("zz"), None);
}

/// `Statistics::count` tallies by the rule `statistics` applies.
#[test]
fn statistics_count_tallies_as_statistics_does() {
    let mut state = QueueState::new();
    for event in [
        added("a"),
        taken("a"),
        failed("a", 0.0),
        added("b"),
        taken("b"),
        failed("b", 0.0),
    ] {
        state.apply(0.0, &event).expect("applies");
    }
    state
        .apply(0.0, &Event::MovedToPending { id: "b".into() })
        .expect("applies");
    state.apply(0.0, &taken("b")).expect("applies");
    state.apply(0.0, &failed("b", 0.0)).expect("applies");
    let mut tally = Statistics::default();
    for place in Place::ALL {
        for entry in state.entries(place) {
            tally.count(place, entry.retry_count, 2);
        }
    }
    assert_eq!(tally, state.statistics(2));
    assert_eq!(tally.permanent_failures, 1, "b failed twice");
}
