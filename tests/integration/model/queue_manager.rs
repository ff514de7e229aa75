//! Model-based test: random sequences of every `QueueManager` operation,
//! checked after each step against a plain reference model of the seed's
//! semantics, including close/reopen and crash (power loss)/reopen.
//!
//! How: `proptest-state-machine` generates sequences of transitions over a
//! pool of six ids: add, take, fail (retry in the past, the future, or
//! "now"), move back, reset, complete (movies given with varying fields,
//! which replace the stored ones), clean up before a cut-off (an old
//! time, a completed entry's own time, the future), clean up by days,
//! requeue, the removed queue (add to removed, mark the movies off a
//! watchlist as removed, restore, forget), snapshot, import of legacy
//! files, clean close and reopen, and
//! power loss (keeping 0, 1 or 50 unsynced bytes) and reopen, with small
//! segments and a background snapshot every five events. The model is the
//! crate's one reference model (`movie_queue::testing::ReferenceModel`),
//! written from the spec and the seed with plain `Vec`s; it does not use
//! the library's projection. After each step the return value, the
//! five queues (in order, every field, the stamped ones included), the
//! statistics, `is_completed`, `get`, `get_movies_ready_for_retry`,
//! `get_permanent_failures` and `get_movies_ready_for_deletion` must agree
//! with the model. Timestamps the store takes from the clock (`queued_at`,
//! `failed_at` on a first failure, `last_failed_at`, `completed_at`,
//! `removed_at`, `retry_after` of "now") are read back and checked to lie
//! within the call (those in whole seconds from the second it began). A
//! reopen —
//! clean or after a power loss, in `Immediate` mode — must give exactly
//! the model (with in-flight movies requeued, as the default open does):
//! nothing acknowledged is lost. At the end of each case a full replay of
//! the journal and `verify` must agree.
//!
//! 256 cases by default; `PROPTEST_CASES=5000 cargo test --release --test
//! integration model::` runs a longer search.

use crate::support::durability as durability_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use durability_support::{entries, scratch};
use movie_queue::now;
use movie_queue::testing::FaultyStorage;
use movie_queue::testing::ReferenceModel;
use movie_queue::{Movie, Place, QueueEntry, QueueManager};
use proptest::prelude::*;
use proptest::test_runner::Config;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use serde_json::json;

const IDS: [&str; 6] = ["1", "2", "3", "4", "5", "6"];
const MAX_RETRIES: u32 = 5;

// ----- transitions ---------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Retry {
    Past,
    Future,
    Now,
}

#[derive(Debug, Clone, Copy)]
enum Cutoff {
    /// Between the imported completion times and now.
    Ancient,
    /// The `completed_at` of the completed entry at this index (mod length).
    Entry(usize),
    /// After everything.
    Future,
}

#[derive(Debug, Clone)]
struct ImportSpec {
    /// (id, retry count)
    pending: Vec<(usize, u32)>,
    /// (id, retry count, due in the future, has failed_at)
    failed: Vec<(usize, u32, bool, bool)>,
    /// (id, has completed_at)
    completed: Vec<(usize, bool)>,
    /// (id, has removed_at)
    removed: Vec<(usize, bool)>,
}

#[derive(Debug, Clone)]
enum Transition {
    Add {
        id: usize,
        variant: u8,
    },
    Take,
    Fail {
        id: usize,
        variant: u8,
        retry: Retry,
    },
    MoveBack {
        id: usize,
    },
    Reset {
        id: usize,
    },
    Complete {
        id: usize,
        variant: u8,
    },
    CleanupBefore(Cutoff),
    CleanupOld {
        days: u32,
    },
    Requeue,
    Remove {
        id: usize,
        variant: u8,
    },
    /// `mark_movies_as_removed` with the ids whose bit is set.
    MarkRemoved {
        watchlist: u8,
    },
    Restore {
        id: usize,
    },
    Forget {
        id: usize,
    },
    Snapshot,
    Import(ImportSpec),
    Reopen,
    Crash {
        torn_bytes: u64,
    },
}

/// The movie `IDS[id]` in one of three shapes: the fields a caller gives
/// replace the stored ones, so the model must track which was given.
fn movie(id: usize, variant: u8) -> Movie {
    let id = IDS[id];
    match variant % 3 {
        0 => Movie::new(id, format!("Movie {id}"), "2020"),
        1 => Movie::new(id, format!("Movie {id} (director's cut)"), 2020).with_slug(format!("movie-{id}")),
        _ => Movie::new(id, format!("Movie {id}"), "2020")
            .with_imdb_id(format!("tt{id:0>7}"))
            .with_extra("queued_at", json!(1_760_806_482.5))
            .expect("an extra field")
            .with_extra("source", json!({"list": "watchlist", "rank": id}))
            .expect("an extra field"),
    }
}

fn id_strategy() -> impl Strategy<Value = usize> {
    0..IDS.len()
}

fn import_strategy() -> impl Strategy<Value = ImportSpec> {
    (
        prop::collection::vec((id_strategy(), 0..3_u32), 0..3),
        prop::collection::vec((id_strategy(), 0..7_u32, any::<bool>(), any::<bool>()), 0..3),
        prop::collection::vec((id_strategy(), any::<bool>()), 0..3),
        prop::collection::vec((id_strategy(), any::<bool>()), 0..2),
    )
        .prop_map(|(pending, failed, completed, removed)| ImportSpec {
            pending,
            failed,
            completed,
            removed,
        })
}

struct Reference;

impl ReferenceStateMachine for Reference {
    // The model needs the store's clock for its timestamps, so it lives
    // beside the system under test; generation needs no state.
    type State = ();
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<Self::State> {
        Just(()).boxed()
    }

    fn transitions(_: &Self::State) -> BoxedStrategy<Self::Transition> {
        let retry = prop_oneof![Just(Retry::Past), Just(Retry::Future), Just(Retry::Now)];
        let cutoff = prop_oneof![
            Just(Cutoff::Ancient),
            (0..4_usize).prop_map(Cutoff::Entry),
            Just(Cutoff::Future)
        ];
        prop_oneof![
            5 => (id_strategy(), 0..3_u8).prop_map(|(id, variant)| Transition::Add { id, variant }),
            4 => Just(Transition::Take),
            4 => (id_strategy(), 0..3_u8, retry).prop_map(|(id, variant, retry)| Transition::Fail { id, variant, retry }),
            2 => id_strategy().prop_map(|id| Transition::MoveBack { id }),
            2 => id_strategy().prop_map(|id| Transition::Reset { id }),
            3 => (id_strategy(), 0..3_u8).prop_map(|(id, variant)| Transition::Complete { id, variant }),
            1 => cutoff.prop_map(Transition::CleanupBefore),
            1 => prop_oneof![Just(0_u32), Just(30)].prop_map(|days| Transition::CleanupOld { days }),
            1 => Just(Transition::Requeue),
            2 => (id_strategy(), 0..3_u8).prop_map(|(id, variant)| Transition::Remove { id, variant }),
            1 => any::<u8>().prop_map(|watchlist| Transition::MarkRemoved { watchlist }),
            2 => id_strategy().prop_map(|id| Transition::Restore { id }),
            1 => id_strategy().prop_map(|id| Transition::Forget { id }),
            1 => Just(Transition::Snapshot),
            1 => import_strategy().prop_map(Transition::Import),
            1 => Just(Transition::Reopen),
            1 => prop_oneof![Just(0_u64), Just(1), Just(50)].prop_map(|torn_bytes| Transition::Crash { torn_bytes }),
        ]
        .boxed()
    }

    fn apply(state: Self::State, _: &Self::Transition) -> Self::State {
        state
    }
}

// ----- the system under test --------------------------------------------------

struct Sut {
    dir: tempfile::TempDir,
    faulty: FaultyStorage,
    qm: Option<QueueManager>,
    model: ReferenceModel,
    steps: usize,
}

fn open(dir: &Path, faulty: &FaultyStorage) -> QueueManager {
    QueueManager::options()
        .storage(Arc::new(faulty.clone()))
        .segment_bytes_max(1_024)
        .snapshot_every_events(5)
        .snapshot_every(None)
        .max_retries(MAX_RETRIES)
        .open(dir)
        .unwrap_or_else(|error| panic!("opening the store failed: {error}"))
}

impl Sut {
    fn qm(&self) -> &QueueManager {
        self.qm.as_ref().expect("the store is open")
    }

    /// Reopens after a clean close or a crash: the default open puts
    /// in-flight movies back at the front of pending.
    fn reopen(&mut self, context: &str) {
        self.faulty = FaultyStorage::new();
        self.qm = Some(open(self.dir.path(), &self.faulty));
        self.model.requeue();
        self.check(&format!("state after {context}"));
    }

    /// Every query agrees with the model.
    fn check(&self, context: &str) {
        let qm = self.qm();
        for (place, expected) in self.model.queues() {
            let actual = qm.list(place);
            assert!(
                &actual == expected,
                "{context}: {place} differs\n store: {actual:#?}\n model: {expected:#?}"
            );
        }
        assert_eq!(
            qm.get_statistics(),
            self.model.statistics(MAX_RETRIES),
            "{context}: statistics"
        );
        for id in IDS {
            let expected = self.model.find(id).map(|(place, entry)| (place, entry.clone()));
            assert_eq!(qm.get(id), expected, "{context}: get({id})");
            assert_eq!(
                qm.is_completed(id),
                expected.as_ref().is_some_and(|(place, _)| *place == Place::Completed)
            );
        }
        for grace in [
            Duration::ZERO,
            Duration::from_secs(600),
            movie_queue::GRACE_PERIOD_DEFAULT,
        ] {
            let at = now();
            assert_eq!(
                qm.get_movies_ready_for_deletion(grace),
                self.model.ready_for_deletion(at, grace.as_secs_f64()),
                "{context}: ready for deletion after {grace:?}"
            );
        }
        for max_retries in [1, 3, MAX_RETRIES] {
            let at = now();
            assert_eq!(
                qm.get_movies_ready_for_retry(max_retries),
                self.model.ready_for_retry(at, max_retries),
                "{context}: ready for retry below {max_retries}"
            );
            assert_eq!(
                qm.get_permanent_failures(max_retries),
                self.model.permanent_failures(max_retries),
                "{context}: permanent failures at {max_retries}"
            );
        }
    }

    /// The time the store stamped on `id`'s entry, checked to lie within
    /// the call (`from..=to`).
    fn stamped(&self, id: &str, field: fn(&QueueEntry) -> Option<f64>, from: f64, to: f64) -> f64 {
        let (_, entry) = self.qm().get(id).expect("the movie is known");
        let time = field(&entry).expect("the store stamped a time");
        assert!(
            (from.floor()..=to).contains(&time),
            "stamp {time} outside the call {from}..={to}"
        );
        time
    }

    fn apply(&mut self, transition: &Transition) {
        let context = format!("step {}: {transition:?}", self.steps);
        match transition {
            Transition::Add { id, variant } => {
                let movie = movie(*id, *variant);
                let from = now();
                let got = self.qm().add_to_pending(movie.clone()).expect("add_to_pending");
                let stamp = if got {
                    self.stamped(movie.id(), |e| extra_time(e, "queued_at"), from, now())
                } else {
                    0.0
                };
                assert_eq!(got, self.model.add(movie, stamp), "{context}");
            }
            Transition::Take => {
                let got = self.qm().get_next_pending().expect("get_next_pending");
                assert_eq!(got, self.model.take(), "{context}");
            }
            Transition::Fail { id, variant, retry } => self.fail(*id, *variant, *retry, &context),
            Transition::MoveBack { id } => {
                let got = self
                    .qm()
                    .move_failed_to_pending(IDS[*id])
                    .expect("move_failed_to_pending");
                assert_eq!(got, self.model.move_back(IDS[*id]), "{context}");
            }
            Transition::Reset { id } => {
                let got = self.qm().reset_failed_movie(IDS[*id]).expect("reset_failed_movie");
                assert_eq!(got, self.model.reset(IDS[*id]), "{context}");
            }
            Transition::Complete { id, variant } => {
                let movie = movie(*id, *variant);
                let from = now();
                let got = self.qm().add_to_completed(movie.clone()).expect("add_to_completed");
                let to = now();
                let stamp = if got {
                    self.stamped(movie.id(), |e| e.completed_at, from, to)
                } else {
                    0.0
                };
                assert_eq!(got, self.model.complete(movie, stamp), "{context}");
            }
            Transition::CleanupBefore(cutoff) => {
                let cutoff = match cutoff {
                    Cutoff::Ancient => 1_250.0,
                    Cutoff::Entry(index) if !self.model.completed.is_empty() => {
                        let entry = &self.model.completed[index % self.model.completed.len()];
                        entry.completed_at.unwrap_or(0.0)
                    }
                    Cutoff::Entry(_) | Cutoff::Future => now() + 1.0,
                };
                let got = self
                    .qm()
                    .cleanup_completed_before(cutoff)
                    .expect("cleanup_completed_before");
                assert_eq!(got, self.model.cleanup_before(cutoff), "{context}");
            }
            Transition::CleanupOld { days } => {
                let cutoff = now() - f64::from(*days) * 86_400.0;
                let got = self.qm().cleanup_old_completed(*days).expect("cleanup_old_completed");
                assert_eq!(got, self.model.cleanup_before(cutoff), "{context}");
            }
            Transition::Requeue => {
                let got = self.qm().requeue_in_flight().expect("requeue_in_flight");
                assert_eq!(got, self.model.requeue(), "{context}");
            }
            Transition::Remove { id, variant } => {
                let movie = movie(*id, *variant);
                let from = now();
                let got = self.qm().add_to_removed(movie.clone()).expect("add_to_removed");
                let stamp = if got {
                    self.stamped(movie.id(), |e| e.removed_at, from, now())
                } else {
                    0.0
                };
                assert_eq!(got, self.model.remove_movie(movie, stamp), "{context}");
            }
            Transition::MarkRemoved { watchlist } => self.mark_removed(*watchlist, &context),
            Transition::Restore { id } => {
                let got = self
                    .qm()
                    .restore_removed_movie(IDS[*id])
                    .expect("restore_removed_movie");
                assert_eq!(got, self.model.restore(IDS[*id]), "{context}");
            }
            Transition::Forget { id } => {
                let got = self
                    .qm()
                    .remove_from_removed_queue(IDS[*id])
                    .expect("remove_from_removed_queue");
                assert_eq!(got, self.model.forget(IDS[*id]), "{context}");
            }
            Transition::Snapshot => {
                self.qm().snapshot().expect("snapshot");
            }
            Transition::Import(spec) => self.import(spec, &context),
            Transition::Reopen => {
                self.qm.take().expect("open").close().expect("close");
                self.reopen(&context);
            }
            Transition::Crash { torn_bytes } => {
                self.faulty.power_loss(*torn_bytes).expect("power loss");
                drop(self.qm.take());
                self.reopen(&context);
            }
        }
        self.check(&context);
    }

    fn fail(&mut self, id: usize, variant: u8, retry: Retry, context: &str) {
        let movie = movie(id, variant);
        let id = movie.id().to_owned();
        let first = self.model.first_failure(&id);
        let from = now();
        let retry_after = match retry {
            Retry::Past => Some(from - 3_600.0),
            Retry::Future => Some(from + 3_600.0),
            Retry::Now => None,
        };
        let got = self
            .qm()
            .add_to_failed(movie.clone(), format!("error {}", self.steps), retry_after)
            .expect("add_to_failed");
        let to = now();
        if !got {
            assert!(
                !self.model.fail(movie, "", 0.0, 0.0),
                "{context}: the store refused a failure"
            );
            return;
        }
        let retry_after = retry_after.unwrap_or_else(|| self.stamped(&id, |e| e.retry_after, from, to));
        let stamp = if first {
            self.stamped(&id, |e| e.failed_at, from, to)
        } else {
            self.stamped(&id, |e| extra_time(e, "last_failed_at"), from, to)
        };
        assert!(
            self.model
                .fail(movie, &format!("error {}", self.steps), retry_after, stamp),
            "{context}: the store failed a movie the model refuses"
        );
    }

    fn mark_removed(&mut self, mask: u8, context: &str) {
        let watchlist: Vec<String> = (0..IDS.len())
            .filter(|bit| mask & (1 << bit) != 0)
            .map(|bit| IDS[bit].to_owned())
            .collect();
        let moving = self.model.not_on_watchlist(&watchlist);
        let from = now();
        let got = self
            .qm()
            .mark_movies_as_removed(&watchlist)
            .expect("mark_movies_as_removed");
        let stamp = match moving.first() {
            Some(id) => self.stamped(id, |e| e.removed_at, from, now()),
            None => 0.0,
        };
        assert_eq!(got, self.model.mark_removed(&watchlist, stamp), "{context}");
    }

    fn import(&mut self, spec: &ImportSpec, context: &str) {
        let files = scratch();
        let pending: Vec<QueueEntry> = spec
            .pending
            .iter()
            .map(|&(id, retry_count)| {
                let mut entry = QueueEntry::new(movie(id, 1));
                entry.retry_count = retry_count;
                entry.last_error = (retry_count > 0).then(|| "an old failure".to_owned());
                entry
            })
            .collect();
        let later = now() + 7_200.0;
        let failed: Vec<QueueEntry> = spec
            .failed
            .iter()
            .map(|&(id, retry_count, future, has_failed_at)| {
                let mut entry = QueueEntry::new(movie(id, 2));
                entry.retry_count = retry_count;
                entry.last_error = Some("imported failure".into());
                entry.retry_after = Some(if future { later } else { 1_000.0 });
                entry.failed_at = has_failed_at.then_some(900.0);
                entry
            })
            .collect();
        let completed: Vec<QueueEntry> = spec
            .completed
            .iter()
            .enumerate()
            .map(|(index, &(id, has_completed_at))| {
                let mut entry = QueueEntry::new(movie(id, 0));
                entry.completed_at = has_completed_at.then_some(1_000.0 + index as f64);
                entry
            })
            .collect();
        let removed: Vec<QueueEntry> = spec
            .removed
            .iter()
            .map(|&(id, has_removed_at)| {
                let mut entry = QueueEntry::new(movie(id, 2));
                entry.removed_at = has_removed_at.then_some(1_500.0);
                entry
            })
            .collect();
        for (name, entries) in [
            ("queue_pending.json", &pending),
            ("queue_failed.json", &failed),
            ("queue_completed.json", &completed),
            ("queue_removed.json", &removed),
        ] {
            std::fs::write(files.path().join(name), serde_json::to_vec(entries).expect("JSON")).expect("write");
        }
        let got = self.qm().import(files.path()).expect("import");
        assert_eq!(
            got,
            self.model.import([&pending, &failed, &completed, &removed]),
            "{context}"
        );
    }
}

/// A time the store stamped on the movie (`queued_at`, `last_failed_at`).
fn extra_time(entry: &QueueEntry, key: &str) -> Option<f64> {
    entry.movie.extra().get(key)?.as_f64()
}

struct QueueManagerTest;

impl StateMachineTest for QueueManagerTest {
    type SystemUnderTest = Sut;
    type Reference = Reference;

    fn init_test(_: &()) -> Sut {
        let dir = scratch();
        let faulty = FaultyStorage::new();
        let qm = open(dir.path(), &faulty);
        Sut {
            dir,
            faulty,
            qm: Some(qm),
            model: ReferenceModel::new(),
            steps: 0,
        }
    }

    fn apply(mut state: Sut, _: &(), transition: Transition) -> Sut {
        state.steps += 1;
        state.apply(&transition);
        state
    }

    fn teardown(mut state: Sut, _: ()) {
        let qm = state.qm.take().expect("open");
        qm.close().expect("close");
        // Checklist item 14: a full replay of the journal equals the model.
        let replayed = movie_queue::testing::full_replay(&movie_queue::testing::RealStorage, state.dir.path())
            .expect("full replay");
        let lists = [
            entries(replayed.pending()),
            entries(replayed.in_flight()),
            entries(replayed.failed()),
            entries(replayed.completed()),
            entries(replayed.removed()),
        ];
        for ((place, expected), actual) in state.model.queues().into_iter().zip(&lists) {
            assert!(actual == expected, "full replay: {place} differs from the model");
        }
        let report = movie_queue::verify(state.dir.path()).expect("verify after the case");
        assert!(report.problems.is_empty(), "verify: {:?}", report.problems);
    }
}

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(256);
    Config {
        cases,
        // A failure is kept as a named regression test, not a file.
        failure_persistence: None,
        ..Config::default()
    }
}

prop_state_machine! {
    #![proptest_config(config())]
    #[test]
    fn queue_manager_agrees_with_the_reference_model(sequential 1..32 => QueueManagerTest);
}
