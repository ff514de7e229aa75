//! A long mixed sequence, and random runs checked step by step against the
//! crate's reference model.

use proptest::prelude::*;

use super::super::invariants::FULL_CHECK_ENTRIES_MAX;
use super::*;
use crate::testing::ReferenceModel;

/// A deterministic generator for the long mixed sequence (tests only).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u32) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        u32::try_from((self.0 >> 33) % u64::from(bound)).expect("below a u32")
    }
}

#[test]
fn indexes_agree_after_a_long_mixed_sequence() {
    // 3000 ids, so the state passes FULL_CHECK_ENTRIES_MAX and apply's
    // debug check switches to touched entries; the full check runs here.
    let mut state = QueueState::new();
    let mut random = Lcg(7);
    let (mut applied, mut step) = (0_u32, 0_u32);
    while applied < 20_000 {
        step += 1;
        let id = random.below(3_000).to_string();
        let event = match random.below(8) {
            0 | 1 => added(&id),
            2 => state
                .front_pending()
                .map_or_else(|| added(&id), |entry| taken(entry.id())),
            3 => failed(&id, f64::from(random.below(50))),
            4 => Event::MovedToPending { id },
            5 => Event::Reset { id },
            6 => completed(&id),
            _ => Event::CleanedUp {
                cutoff: f64::from(step),
                ids: state.completed_before(f64::from(step)).into_iter().take(3).collect(),
            },
        };
        if state.check(&event).is_ok() {
            state.apply(f64::from(step), &event).expect("checked");
            applied += 1;
            if applied % 5_000 == 0 {
                assert!(state.indexes_agree());
            }
        }
    }
    assert!(state.indexes_agree());
    assert!(state.len() > FULL_CHECK_ENTRIES_MAX);
    assert_eq!(state.permanent_failures(2).len(), state.permanent_failure_count(2));
}

/// One step of a random run, turned into an event against the state.
#[derive(Debug, Clone)]
enum Op {
    Add(u8),
    TakeFront,
    Take(u8),
    Fail(u8, u8),
    MoveToPending(u8),
    Reset(u8),
    Complete(u8),
    CleanUp(u8, Vec<u8>),
    CleanUpBefore(u8),
    Requeue(Vec<u8>),
    RequeueInFlight(bool),
    Import(Vec<(u8, u8, u32, Option<u8>)>),
    Remove(u8),
    MarkRemoved(Vec<u8>),
    MarkNotOnWatchlist(Vec<u8>),
    Restore(u8),
    Forget(u8),
}

const ID_POOL: u8 = 8;

fn op() -> impl Strategy<Value = Op> {
    let id = || 0..ID_POOL;
    let time = || 0..40_u8;
    let ids = move || prop::collection::vec(id(), 0..4);
    let imported = (id(), 0..4_u8, 0..4_u32, prop::option::of(time()));
    prop_oneof![
        3 => id().prop_map(Op::Add),
        3 => Just(Op::TakeFront),
        1 => id().prop_map(Op::Take),
        3 => (id(), time()).prop_map(|(id, time)| Op::Fail(id, time)),
        2 => id().prop_map(Op::MoveToPending),
        1 => id().prop_map(Op::Reset),
        2 => id().prop_map(Op::Complete),
        1 => (time(), ids()).prop_map(|(cutoff, ids)| Op::CleanUp(cutoff, ids)),
        1 => time().prop_map(Op::CleanUpBefore),
        1 => ids().prop_map(Op::Requeue),
        1 => any::<bool>().prop_map(Op::RequeueInFlight),
        1 => prop::collection::vec(imported, 0..5).prop_map(Op::Import),
        2 => id().prop_map(Op::Remove),
        1 => ids().prop_map(Op::MarkRemoved),
        1 => ids().prop_map(Op::MarkNotOnWatchlist),
        2 => id().prop_map(Op::Restore),
        1 => id().prop_map(Op::Forget),
    ]
}

/// The id of pool member `id`: the last two need escaping in JSON, so
/// the state keeps them beside the entry's JSON instead of inside it.
fn name(id: u8) -> String {
    match id {
        6 => "6 \"quoted\"".to_owned(),
        7 => "7 back\\slash\nnew line, café".to_owned(),
        _ => id.to_string(),
    }
}

fn event_of(op: Op, state: &QueueState, step: u32) -> Event {
    // The title changes with the step, so replaced fields are visible.
    let movie_of = |id: u8| Movie::new(name(id), format!("step {step}"), 2000);
    let names = |ids: Vec<u8>| ids.into_iter().map(name).collect();
    match op {
        Op::Add(id) => Event::Added { movie: movie_of(id) },
        Op::TakeFront => taken(state.front_pending_id().unwrap_or("none")),
        Op::Take(id) => taken(&name(id)),
        Op::Fail(id, time) => Event::Failed {
            movie: movie_of(id),
            error: format!("error at {step}"),
            retry_after: f64::from(time),
        },
        Op::MoveToPending(id) => Event::MovedToPending { id: name(id) },
        Op::Reset(id) => Event::Reset { id: name(id) },
        Op::Complete(id) => Event::Completed { movie: movie_of(id) },
        Op::CleanUp(cutoff, ids) => Event::CleanedUp {
            cutoff: f64::from(cutoff),
            ids: names(ids),
        },
        Op::CleanUpBefore(cutoff) => Event::CleanedUp {
            cutoff: f64::from(cutoff),
            ids: state.completed_before(f64::from(cutoff)),
        },
        Op::Requeue(ids) => Event::Requeued { ids: names(ids) },
        Op::RequeueInFlight(reversed) => {
            let mut ids = ids(state.in_flight());
            if reversed {
                ids.reverse();
            }
            Event::Requeued { ids }
        }
        Op::Import(entries) => import_of(entries, step),
        Op::Remove(id) => Event::Removed { movie: movie_of(id) },
        Op::MarkRemoved(ids) => Event::MarkedRemoved { ids: names(ids) },
        Op::MarkNotOnWatchlist(watchlist) => {
            let watchlist: Vec<String> = names(watchlist);
            let ids = [Place::Pending, Place::Completed]
                .into_iter()
                .flat_map(|place| state.ids_in(place))
                .filter(|id| !watchlist.iter().any(|kept| kept == id))
                .map(str::to_owned)
                .collect();
            Event::MarkedRemoved { ids }
        }
        Op::Restore(id) => Event::Restored { id: name(id) },
        Op::Forget(id) => Event::Forgotten { id: name(id) },
    }
}

fn import_of(entries: Vec<(u8, u8, u32, Option<u8>)>, step: u32) -> Event {
    let (mut pending, mut failed, mut completed, mut removed) = (vec![], vec![], vec![], vec![]);
    for (id, place, retry_count, time) in entries {
        let time = time.map(f64::from);
        let mut entry = QueueEntry::new(Movie::new(name(id), format!("imported at {step}"), 1));
        match place {
            0 => pending.push(entry),
            1 => {
                entry.retry_count = retry_count;
                entry.retry_after = time;
                failed.push(entry);
            }
            2 => {
                entry.completed_at = time;
                completed.push(entry);
            }
            _ => {
                entry.removed_at = time;
                removed.push(entry);
            }
        }
    }
    Event::Imported {
        pending,
        failed,
        completed,
        removed,
    }
}

fn assert_matches_model(state: &QueueState, model: &ReferenceModel, now: f64) {
    assert!(state.pending().eq(model.pending.iter().cloned()));
    assert!(state.in_flight().eq(model.in_flight.iter().cloned()));
    assert!(state.failed().eq(model.failed.iter().cloned()));
    assert!(state.completed().eq(model.completed.iter().cloned()));
    assert!(state.removed().eq(model.removed.iter().cloned()));
    for grace in [0.0, 3.0, 100.0] {
        assert_eq!(
            state.ready_for_deletion(now, grace),
            model.ready_for_deletion(now, grace)
        );
    }
    for max_retries in 0..4 {
        assert_eq!(
            state.ready_for_retry(now, max_retries),
            model.ready_for_retry(now, max_retries)
        );
        let permanent: Vec<QueueEntry> = model
            .failed
            .iter()
            .filter(|entry| entry.retry_count >= max_retries)
            .cloned()
            .collect();
        assert_eq!(state.permanent_failure_count(max_retries), permanent.len());
        assert_eq!(state.permanent_failures(max_retries), permanent);
    }
    let before: Vec<String> = ids(model
        .completed
        .iter()
        .filter(|entry| entry.completed_at.unwrap_or(0.0) < now)
        .cloned());
    assert_eq!(state.completed_before(now), before);
}

proptest! {
    #[test]
    fn random_runs_match_the_model(ops in prop::collection::vec(op(), 0..80)) {
        let (mut state, mut model) = (QueueState::new(), ReferenceModel::new());
        for (step, op) in (1..).zip(ops) {
            let ts = f64::from(step);
            let event = event_of(op, &state, step);
            let before = state.clone();
            let checked = state.check(&event);
            let applied = state.apply(ts, &event);
            prop_assert_eq!(&checked, &applied);
            prop_assert_eq!(checked.is_ok(), model.apply(ts, &event), "{:?}", event);
            if applied.is_err() {
                prop_assert!(state == before);
            }
            prop_assert!(state.indexes_agree());
            assert_matches_model(&state, &model, ts / 2.0);
        }
    }
}
