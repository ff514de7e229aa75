//! Time travel answers exactly or refuses. For random operation sequences
//! stamped by a random clock that steps back and forth, with snapshots,
//! compactions and reopens in between:
//!
//! * event times are monotonic: each is the clock's time, or its
//!   predecessor's when the clock stepped back;
//! * `state_at(Until::Time(t))` equals the state after exactly the events stamped
//!   at or before `t` (the live state recorded after the last of them), or
//!   — only when that state is before the latest compaction base — an
//!   error; never a different state;
//! * `state_at(seq)` equals the live state recorded after record `seq`
//!   for every record from the base to the last, and refuses records
//!   before the base and past the end.
//!
//! The model is the sequence of live states (the projection itself is
//! checked against the reference model in `model::queue_manager`).

use std::sync::{Arc, Mutex};

use crate::support::common::{movie, scratch};
use movie_queue::{QueueManager, QueueState, Seq};
use proptest::prelude::*;
use proptest::test_runner::Config;

const BASE_TIME: f64 = 1_700_000_000.0;

#[derive(Debug, Clone)]
enum Op {
    Add(u8),
    Take,
    Fail(u8),
    Complete(u8),
    Snapshot,
    Compact,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..8_u8).prop_map(Op::Add),
        3 => Just(Op::Take),
        2 => (0..8_u8).prop_map(Op::Fail),
        2 => (0..8_u8).prop_map(Op::Complete),
        1 => Just(Op::Snapshot),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

/// What the test saw: the state after each record, and each record's time.
struct Seen {
    /// `(seq, ts, state after it)`, from `(0, -inf, empty)`.
    states: Vec<(Seq, f64, QueueState)>,
    /// The latest compaction's record (0: none).
    base: Seq,
}

impl Seen {
    /// The state after every event stamped at or before `t`, and its record.
    fn at_time(&self, t: f64) -> &(Seq, f64, QueueState) {
        self.states
            .iter()
            .rfind(|(_, ts, _)| *ts <= t)
            .unwrap_or(&self.states[0])
    }
}

fn open(dir: &std::path::Path, clock: &Arc<Mutex<f64>>) -> QueueManager {
    let clock = Arc::clone(clock);
    QueueManager::options()
        .clock(Arc::new(move || *clock.lock().unwrap()))
        .segment_bytes_max(600)
        .snapshot_every_events(7)
        .snapshot_every(None)
        .requeue_in_flight_on_open(false)
        .open(dir)
        .unwrap()
}

fn run(ops: &[Op], steps: &[i32], dir: &std::path::Path) -> (QueueManager, Seen) {
    let clock = Arc::new(Mutex::new(BASE_TIME));
    let mut qm = open(dir, &clock);
    let mut seen = Seen {
        states: vec![(Seq(0), f64::NEG_INFINITY, QueueState::new())],
        base: Seq(0),
    };
    let mut time = BASE_TIME;
    let mut last_ts = f64::NEG_INFINITY;
    for (op, step) in ops.iter().zip(steps.iter().cycle()) {
        time += f64::from(*step) * 0.5;
        *clock.lock().unwrap() = time;
        let before = qm.last_seq();
        match op {
            Op::Add(id) => drop(qm.add_to_pending(movie(&id.to_string())).unwrap()),
            Op::Take => drop(qm.get_next_pending().unwrap()),
            Op::Fail(id) => drop(qm.add_to_failed(movie(&id.to_string()), "e", Some(0.0)).unwrap()),
            Op::Complete(id) => drop(qm.add_to_completed(movie(&id.to_string())).unwrap()),
            Op::Snapshot => drop(qm.snapshot().unwrap()),
            Op::Compact => seen.base = qm.compact().unwrap().seq,
            Op::Reopen => {
                qm.close().unwrap();
                qm = open(dir, &clock);
            }
        }
        if qm.last_seq() != before {
            assert_eq!(qm.last_seq(), before.next(), "one event per operation");
            let record = qm.events_from(before.next()).unwrap().next().unwrap().unwrap();
            let expected = if time >= last_ts { time } else { last_ts };
            assert_eq!(
                record.ts.to_bits(),
                expected.to_bits(),
                "record {}: stamped {} with the clock at {time} after {last_ts}",
                record.seq,
                record.ts
            );
            last_ts = record.ts;
            seen.states.push((record.seq, record.ts, qm.state()));
        }
    }
    (qm, seen)
}

fn check_times(qm: &QueueManager, seen: &Seen) {
    let mut times: Vec<f64> = vec![BASE_TIME - 1_000.0];
    for (_, ts, _) in &seen.states[1..] {
        times.extend([*ts, *ts - 0.25, *ts + 0.25]);
    }
    for t in times {
        let (seq, _, expected) = seen.at_time(t);
        match qm.state_at(movie_queue::Until::Time(t)).map(|replayed| replayed.state) {
            Ok(state) => assert!(
                &state == expected,
                "state_at(time {t}) is not the state after record {seq}"
            ),
            Err(error) => assert!(
                *seq < seen.base,
                "state_at(time {t}) (record {seq}, base {}) refused: {error}",
                seen.base
            ),
        }
    }
}

fn check_seqs(qm: &QueueManager, seen: &Seen) {
    let last = qm.last_seq();
    for (seq, _, expected) in &seen.states {
        match qm.state_at(*seq).map(|replayed| replayed.state) {
            Ok(state) => assert!(&state == expected, "state_at({seq}) differs"),
            Err(error) => assert!(
                *seq < seen.base && *seq > Seq(0),
                "state_at({seq}) refused (base {}): {error}",
                seen.base
            ),
        }
    }
    for past in [last.next(), Seq(last.0 + 10)] {
        let error = qm.state_at(past).expect_err("past the end is refused");
        assert!(error.to_string().contains(&format!("last record is {last}")), "{error}");
    }
}

proptest! {
    #![proptest_config(Config { cases: 40, failure_persistence: None, ..Config::default() })]

    #[test]
    fn time_travel_equals_the_state_after_exactly_the_events_stamped_by_then(
        ops in prop::collection::vec(op(), 1..36),
        steps in prop::collection::vec(-40_i32..60, 1..16),
    ) {
        let dir = scratch();
        let (qm, seen) = run(&ops, &steps, dir.path());
        check_times(&qm, &seen);
        check_seqs(&qm, &seen);
        qm.close().unwrap();
    }
}

#[test]
fn a_clock_stepped_back_stamps_the_previous_time_across_a_reopen() {
    let dir = scratch();
    let clock = Arc::new(Mutex::new(BASE_TIME + 100.0));
    let qm = open(dir.path(), &clock);
    qm.add_to_pending(movie("1")).unwrap();
    *clock.lock().unwrap() = BASE_TIME;
    qm.add_to_pending(movie("2")).unwrap();
    qm.close().unwrap();
    let qm = open(dir.path(), &clock);
    qm.add_to_pending(movie("3")).unwrap();
    *clock.lock().unwrap() = BASE_TIME + 200.0;
    qm.add_to_pending(movie("4")).unwrap();
    let times: Vec<f64> = qm
        .events_from(Seq(1))
        .unwrap()
        .map(|record| record.unwrap().ts)
        .collect();
    assert_eq!(
        times,
        [
            BASE_TIME + 100.0,
            BASE_TIME + 100.0,
            BASE_TIME + 100.0,
            BASE_TIME + 200.0
        ]
    );
    // Every event stamped at or before the first time: the first three.
    assert_eq!(
        qm.state_at(movie_queue::Until::Time(BASE_TIME + 100.0))
            .unwrap()
            .state
            .pending_count(),
        3
    );
    assert_eq!(
        qm.state_at(movie_queue::Until::Time(BASE_TIME + 99.0))
            .unwrap()
            .state
            .pending_count(),
        0
    );
}

#[test]
fn targets_outside_the_journal_are_refused_saying_what_can_be_answered() {
    let dir = scratch();
    let qm = QueueManager::options().segment_bytes_max(300).open(dir.path()).unwrap();
    for id in 0..20 {
        qm.add_to_pending(movie(&id.to_string())).unwrap();
    }
    let error = qm.state_at(Seq(21)).unwrap_err().to_string();
    assert!(error.contains("past the end") && error.contains("0 to 20"), "{error}");
    let base = qm.compact().unwrap().seq;
    assert_eq!(base, Seq(20));
    let error = qm.state_at(Seq(3)).unwrap_err().to_string();
    assert!(
        error.contains("compacted away") && error.contains("as of record 20"),
        "{error}"
    );
    let first = qm.events_from(Seq(20)).unwrap().next().unwrap().unwrap();
    let error = qm
        .state_at(movie_queue::Until::Time(first.ts - 10_000.0))
        .unwrap_err()
        .to_string();
    assert!(error.contains("compacted away"), "{error}");
    assert!(qm.state_at(movie_queue::Until::Time(first.ts)).unwrap().state == qm.state());
    let error = qm
        .state_at(movie_queue::Until::Time(movie_queue::now() + 3_600.0))
        .unwrap_err()
        .to_string();
    assert!(error.contains("future"), "{error}");
}
