//! A writer that loads on demand (`Options::load_on_demand`) decides
//! exactly as a writer over the whole state: the same answers, and the same
//! records in the journal, byte for byte but for nothing.
//!
//! For random histories of every event kind (with snapshots, compactions
//! and reopens), ending with a snapshot and records after it, two copies of
//! the store are opened, one whole and one on demand, with the same fixed
//! clock. A random session of calls runs on both: each call's answer is the
//! same, the on-demand writer holds only some movies until a call about
//! every movie, and afterwards both journals hold the same events with the
//! same numbers and times, and both stores open to the same state.
//!
//! Damage to what the on-demand writer reads (an entry of a documented
//! file, the file cut short) never makes it decide otherwise: it loads the whole
//! state, which the journal rebuilds.

use std::path::Path;
use std::sync::Arc;

use crate::support::common::{movie, scratch};
use crate::support::durability::reset_dir;
use movie_queue::testing::PENDING_FILE;
use movie_queue::{Place, QueueEntry, QueueManager, Seq};
use proptest::prelude::*;
use proptest::test_runner::Config;

use super::lean::{IDS, Op, apply, name, op, open};

/// The fixed time of every call of a session (each event's time is then
/// the last one's, as the clock never moves).
const NOW: f64 = 1_900_000_000.0;

/// A call of the session, with the answer it gives.
#[derive(Debug, Clone)]
enum Call {
    Add(u8),
    Take,
    Fail(u8),
    MoveBack(u8),
    Reset(u8),
    Complete(u8),
    Remove(u8),
    Restore(u8),
    Forget(u8),
    Get(u8),
    IsCompleted(u8),
    /// About every movie: the on-demand writer loads the whole state.
    Statistics,
    Requeue,
}

fn call() -> impl Strategy<Value = Call> {
    let id = || 0..IDS + 2;
    prop_oneof![
        4 => id().prop_map(Call::Add),
        5 => Just(Call::Take),
        3 => id().prop_map(Call::Fail),
        1 => id().prop_map(Call::MoveBack),
        1 => id().prop_map(Call::Reset),
        2 => id().prop_map(Call::Complete),
        1 => id().prop_map(Call::Remove),
        1 => id().prop_map(Call::Restore),
        1 => id().prop_map(Call::Forget),
        2 => id().prop_map(Call::Get),
        1 => id().prop_map(Call::IsCompleted),
        1 => Just(Call::Statistics),
        1 => Just(Call::Requeue),
    ]
}

/// What a call answered (errors as their text).
#[derive(Debug, PartialEq)]
enum Answer {
    Changed(bool),
    Taken(Option<QueueEntry>),
    Found(Option<(Place, QueueEntry)>),
    Count(String),
    Error(String),
}

fn session_open(dir: &Path, on_demand: bool) -> QueueManager {
    QueueManager::options()
        .segment_bytes_max(700)
        .snapshot_every_events(0)
        .snapshot_every(None)
        .requeue_in_flight_on_open(false)
        .clock(Arc::new(|| NOW))
        .load_on_demand(on_demand)
        .open(dir)
        .unwrap()
}

fn answer(qm: &QueueManager, call: &Call) -> Answer {
    let id = |n: &u8| name(*n);
    let changed = |result: movie_queue::Result<bool>| match result {
        Ok(changed) => Answer::Changed(changed),
        Err(error) => Answer::Error(error.to_string()),
    };
    match call {
        Call::Add(n) => changed(qm.add_to_pending(movie(&id(n)))),
        Call::Take => match qm.take_next_pending() {
            Ok(taken) => Answer::Taken(taken),
            Err(error) => Answer::Error(error.to_string()),
        },
        Call::Fail(n) => changed(qm.add_to_failed(movie(&id(n)), "stalled", Some(NOW + f64::from(*n)))),
        Call::MoveBack(n) => changed(qm.move_failed_to_pending(id(n))),
        Call::Reset(n) => changed(qm.reset_failed_movie(id(n))),
        Call::Complete(n) => changed(qm.add_to_completed(movie(&id(n)))),
        Call::Remove(n) => changed(qm.add_to_removed(movie(&id(n)))),
        Call::Restore(n) => changed(qm.restore_removed_movie(id(n))),
        Call::Forget(n) => changed(qm.remove_from_removed_queue(id(n))),
        Call::Get(n) => Answer::Found(qm.get(id(n).as_str())),
        Call::IsCompleted(n) => Answer::Changed(qm.is_completed(id(n).as_str())),
        Call::Statistics => Answer::Count(format!("{:?}", qm.get_statistics())),
        Call::Requeue => match qm.requeue_in_flight() {
            Ok(count) => Answer::Count(count.to_string()),
            Err(error) => Answer::Error(error.to_string()),
        },
    }
}

/// Every record from `from` on: number, time and event.
fn records(dir: &Path, from: Seq) -> Vec<String> {
    movie_queue::events(dir, from)
        .unwrap()
        .map(|record| {
            let record = record.unwrap();
            format!("{} {} {:?}", record.seq, record.ts, record.event)
        })
        .collect()
}

/// Runs `calls` on a whole writer over `whole` and an on-demand one over
/// `lazy` (copies of one store), checking each answer and, at the end,
/// the journals and the reopened states. Says whether the on-demand
/// writer was still holding only some movies when the session ended.
fn same_session(whole: &Path, lazy: &Path, calls: &[Call], partial_at_open: bool) -> bool {
    let a = session_open(whole, false);
    let b = session_open(lazy, true);
    assert_eq!(
        !b.is_loaded(),
        partial_at_open,
        "loads on demand exactly from a clean indexed snapshot"
    );
    let from = a.last_seq().next();
    for (at, call) in calls.iter().enumerate() {
        assert_eq!(answer(&b, call), answer(&a, call), "call {at}: {call:?}");
    }
    let partial_at_end = !b.is_loaded();
    a.close().unwrap();
    b.close().unwrap();
    assert_eq!(records(lazy, from), records(whole, from), "the same records");
    let reopened = |dir: &Path| {
        let qm = session_open(dir, false);
        let state = qm.state();
        qm.close().unwrap();
        Place::ALL.map(|place| state.entries(place).collect::<Vec<_>>())
    };
    assert_eq!(reopened(lazy), reopened(whole), "the same state");
    partial_at_end
}

proptest! {
    #![proptest_config(Config { cases: 64, ..Config::default() })]

    #[test]
    fn an_on_demand_writer_decides_as_the_whole_state(
        history in proptest::collection::vec(op(), 0..40),
        tail in proptest::collection::vec(op(), 0..12),
        calls in proptest::collection::vec(call(), 1..24),
    ) {
        let source = scratch();
        let mut qm = open(source.path());
        for op in &history {
            qm = apply(qm, source.path(), op);
        }
        qm.snapshot().unwrap();
        // Records after the snapshot (not a snapshot, compaction or
        // reopen: those would start the next one).
        for op in tail.iter().filter(|op| !matches!(op, Op::Snapshot | Op::Compact | Op::Reopen)) {
            qm = apply(qm, source.path(), op);
        }
        qm.close().unwrap();
        let (whole, lazy) = (scratch(), scratch());
        reset_dir(source.path(), whole.path());
        reset_dir(source.path(), lazy.path());
        same_session(whole.path(), lazy.path(), &calls, true);
    }
}

/// Pending 0..=5 in a snapshot, then 6 added and 1 taken after it.
fn indexed_store(dir: &Path) {
    let qm = open(dir);
    for n in 0..6 {
        qm.add_to_pending(movie(&name(n))).unwrap();
    }
    qm.snapshot().unwrap();
    qm.add_to_pending(movie(&name(6))).unwrap();
    qm.get_next_pending().unwrap();
    qm.close().unwrap();
}

#[test]
fn takes_and_changes_by_id_never_load_the_whole_state() {
    let source = scratch();
    indexed_store(source.path());
    let (whole, lazy) = (scratch(), scratch());
    reset_dir(source.path(), whole.path());
    reset_dir(source.path(), lazy.path());
    let calls = [
        Call::Take,
        Call::Fail(3),
        Call::Take,
        Call::Complete(2),
        Call::Add(4),
        Call::Add(9),
        Call::Reset(3),
        Call::Take,
        Call::Take,
        Call::Take,
        Call::Take,
        Call::Take,
        Call::Get(5),
    ];
    assert!(same_session(whole.path(), lazy.path(), &calls, true), "still partial");
}

#[test]
fn damage_to_what_it_reads_loads_the_whole_state_instead() {
    type Damage = (&'static str, fn(&Path));
    let damages: [Damage; 3] = [
        ("a flipped byte in the entry of the front of pending", |dir| {
            flip_in(&dir.join(PENDING_FILE), "Movie tt2")
        }),
        ("a flipped byte in the entry of a movie asked about", |dir| {
            flip_in(&dir.join(PENDING_FILE), "Movie tt4")
        }),
        ("the pending file cut short", |dir| {
            let path = dir.join(PENDING_FILE);
            let length = std::fs::metadata(&path).unwrap().len();
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .unwrap()
                .set_len(length / 2)
                .unwrap();
        }),
    ];
    for (what, damage) in damages {
        let source = scratch();
        indexed_store(source.path());
        let (whole, lazy) = (scratch(), scratch());
        reset_dir(source.path(), whole.path());
        reset_dir(source.path(), lazy.path());
        let a = session_open(whole.path(), false);
        let b = session_open(lazy.path(), true);
        assert!(!b.is_loaded(), "{what}");
        let from = a.last_seq().next();
        damage(lazy.path());
        for call in [Call::Take, Call::Get(4), Call::Complete(4), Call::Take] {
            assert_eq!(answer(&b, &call), answer(&a, &call), "{what}: {call:?}");
        }
        a.close().unwrap();
        b.close().unwrap();
        assert_eq!(records(lazy.path(), from), records(whole.path(), from), "{what}");
    }
}

/// Flips a byte of the first occurrence of `text` in the file at `path`.
fn flip_in(path: &Path, text: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes
        .windows(text.len())
        .position(|window| window == text.as_bytes())
        .unwrap();
    bytes[at + text.len() - 1] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_torn_tail_or_leftovers_open_as_the_whole_open_does() {
    let source = scratch();
    indexed_store(source.path());
    let (whole, lazy) = (scratch(), scratch());
    reset_dir(source.path(), whole.path());
    reset_dir(source.path(), lazy.path());
    // A torn last write: bytes after the last record, never acknowledged.
    for dir in [whole.path(), lazy.path()] {
        let last = crate::support::durability::segment_paths(dir).pop().unwrap();
        let mut bytes = std::fs::read(&last).unwrap();
        bytes.extend_from_slice(&[7, 0, 0, 0, 1, 2]);
        std::fs::write(&last, bytes).unwrap();
    }
    // The whole open sets the tail aside; the on-demand one opens whole.
    same_session(whole.path(), lazy.path(), &[Call::Take, Call::Add(9)], false);
    // A leftover of an interrupted snapshot goes, as with the whole open.
    let leftover = lazy.path().join(format!("{PENDING_FILE}.tmp"));
    std::fs::write(&leftover, "[").unwrap();
    let qm = session_open(lazy.path(), true);
    assert!(!qm.is_loaded(), "a clean store again: on demand");
    assert!(!leftover.exists(), "the leftover is removed");
    qm.close().unwrap();
}

/// A store whose snapshot is record 6, records 7 and 8 in its one
/// segment, and an empty segment (its header only) named for record
/// `named`, which the first segment holds: a writer that reads from the
/// snapshot on would start in the empty segment and never see them.
fn store_with_an_empty_segment_named(dir: &Path, named: u64) {
    use movie_queue::testing::{encode_segment_header, segment_name};
    let qm = open(dir);
    for n in 0..6 {
        qm.add_to_pending(movie(&name(n))).unwrap();
    }
    qm.snapshot().unwrap();
    qm.add_to_pending(movie(&name(6))).unwrap();
    qm.add_to_pending(movie(&name(7))).unwrap();
    qm.close().unwrap();
    let journal = dir.join("journal");
    std::fs::write(
        journal.join(segment_name(Seq(named))),
        encode_segment_header(Seq(named)),
    )
    .unwrap();
}

#[test]
fn an_empty_segment_named_for_records_an_earlier_one_holds_opens_whole() {
    use movie_queue::testing::{RealStorage, Storage, lean_statistics};
    for named in [7, 8] {
        let dir = scratch();
        store_with_an_empty_segment_named(dir.path(), named);
        let storage: Arc<dyn Storage> = Arc::new(RealStorage);
        assert_eq!(
            lean_statistics(&storage, dir.path(), 3),
            None,
            "{named}: the lean reads rebuild whole"
        );
        let read_only = QueueManager::open_read_only(dir.path()).unwrap().get_statistics();
        assert_eq!(
            QueueManager::options().statistics(dir.path()).unwrap(),
            read_only,
            "{named}"
        );
        let qm = session_open(dir.path(), true);
        assert!(qm.is_loaded(), "{named}: the writer opens whole");
        assert_eq!(qm.last_seq(), Seq(8), "{named}: every record is seen");
        qm.add_to_pending(movie("new")).unwrap();
        qm.close().unwrap();
        let reopened = QueueManager::open_read_only(dir.path()).unwrap();
        assert_eq!(
            (reopened.last_seq(), reopened.get_pending_count()),
            (Seq(9), 9),
            "{named}"
        );
    }
}

#[test]
fn a_compacted_store_without_its_base_or_with_a_file_cut_opens_whole() {
    let base = |dir: &Path| dir.join("journal").join("base.json");
    let dir = scratch();
    let qm = open(dir.path());
    for n in 0..30 {
        qm.add_to_pending(movie(&format!("m{n}"))).unwrap();
    }
    qm.compact().unwrap();
    qm.add_to_pending(movie("late")).unwrap();
    qm.close().unwrap();
    std::fs::remove_file(base(dir.path())).unwrap();
    let qm = session_open(dir.path(), true);
    assert!(qm.is_loaded(), "the journal needs the base: the whole open records it");
    qm.close().unwrap();
    assert!(base(dir.path()).exists(), "recorded again from the snapshot");
    let qm = session_open(dir.path(), true);
    assert!(!qm.is_loaded(), "then on demand");
    qm.close().unwrap();
    // The base damaged in place, its length kept: its checksum fails, so
    // the snapshot is the only copy of its state again.
    let mut bytes = std::fs::read(base(dir.path())).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(base(dir.path()), &bytes).unwrap();
    let qm = session_open(dir.path(), true);
    assert!(
        qm.is_loaded(),
        "a base that does not hold up: the whole open records it again"
    );
    qm.close().unwrap();
    let report = movie_queue::verify(dir.path()).unwrap();
    assert!(
        report.problems.iter().all(|problem| !problem.contains("base.json")),
        "the base recorded again: {:?}",
        report.problems
    );
    // A documented file of another length than the manifest's.
    let completed = dir.path().join(movie_queue::testing::COMPLETED_FILE);
    let length = std::fs::metadata(&completed).unwrap().len();
    std::fs::write(
        &completed,
        format!("[{}]", " ".repeat(usize::try_from(length).unwrap())),
    )
    .unwrap();
    let qm = session_open(dir.path(), true);
    assert!(qm.is_loaded(), "the whole open rejects the snapshot");
    qm.close().unwrap();
}

/// What it reads is what a change touches, not the store: over 20,000
/// movies (about 4 MB of documented files, the journal in segments of
/// 256 KiB), a take and a completion on demand read the manifest, the
/// index, the start of `queue_pending.json`, one entry and the last
/// segment (1.7 MB, most of it the 1 MiB piece the front is read from);
/// the whole open reads every file and segment (13 MB). Counted through
/// `Options::on_read`, so it cannot pass by being fast on a fast machine.
#[test]
fn a_change_on_demand_reads_what_it_touches_not_the_store() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = scratch();
    let options = || {
        QueueManager::options()
            .segment_bytes_max(256 << 10)
            .snapshot_every_events(0)
            .snapshot_every(None)
            .requeue_in_flight_on_open(false)
    };
    let qm = options().open(dir.path()).unwrap();
    qm.add_many_to_pending((0..20_000).map(|n| movie(&format!("m{n}"))))
        .unwrap();
    qm.snapshot().unwrap();
    qm.add_to_pending(movie("late")).unwrap();
    qm.close().unwrap();
    let store: u64 = walk(dir.path());
    let bytes_read = |on_demand: bool| {
        let copy = scratch();
        reset_dir(dir.path(), copy.path());
        let read = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&read);
        let qm = options()
            .load_on_demand(on_demand)
            .on_read(Arc::new(move |bytes| {
                counter.fetch_add(bytes, Ordering::Relaxed);
            }))
            .open(copy.path())
            .unwrap();
        let taken = qm.take_next_pending().unwrap().unwrap();
        assert_eq!(taken.id(), "m0", "the front of pending");
        assert!(qm.add_to_completed(movie("m12345")).unwrap());
        assert_eq!(qm.is_loaded(), !on_demand);
        qm.close().unwrap();
        read.load(Ordering::Relaxed)
    };
    let whole = bytes_read(false);
    let lean = bytes_read(true);
    assert!(
        whole >= store / 2,
        "the whole open reads the store: {whole} of {store} bytes"
    );
    assert!(lean * 4 < whole, "on demand: {lean} bytes read, the whole open {whole}");
}

/// The bytes of every file under `dir`.
fn walk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path())
            } else {
                entry.metadata().unwrap().len()
            }
        })
        .sum()
}

/// Close's snapshot policy counts the age of the oldest change the files
/// do not reflect (its record's time), not the snapshot's: one change
/// stamped now leaves the files as they are, one stamped an hour ago
/// (older than `snapshot_every`) makes close write them — for a whole
/// writer that finds such a record after the snapshot, and for one that
/// loads on demand and makes it.
#[test]
fn close_writes_the_files_when_the_oldest_unsnapshotted_change_is_old() {
    use std::time::Duration;
    let manifest_seq = |dir: &Path| -> u64 {
        let text = std::fs::read_to_string(dir.join("queue_snapshot.json")).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["manifest"]["seq"].as_u64().unwrap()
    };
    // `every`: `None` for the sessions that set a store up (their close
    // writes no snapshot by age).
    let options = |clock: f64, on_demand: bool, every: Option<Duration>| {
        QueueManager::options()
            .snapshot_every_events(0)
            .snapshot_every(every)
            .requeue_in_flight_on_open(false)
            .clock(Arc::new(move || clock))
            .load_on_demand(on_demand)
    };
    let now = movie_queue::now();
    for on_demand in [false, true] {
        let dir = scratch();
        let qm = options(now, false, None).open(dir.path()).unwrap();
        qm.add_to_pending(movie("1")).unwrap();
        qm.snapshot().unwrap();
        qm.close().unwrap();
        // A change stamped now: not due.
        let qm = options(now, on_demand, Some(Duration::from_secs(300)))
            .open(dir.path())
            .unwrap();
        qm.add_to_pending(movie("2")).unwrap();
        qm.close().unwrap();
        assert_eq!(
            manifest_seq(dir.path()),
            1,
            "on demand {on_demand}: a fresh change waits"
        );
        // The oldest change since the snapshot is now an hour old: due,
        // whether or not this session changes anything more.
        let dir = scratch();
        let qm = options(now - 3_600.0, false, None).open(dir.path()).unwrap();
        qm.add_to_pending(movie("1")).unwrap();
        qm.snapshot().unwrap();
        qm.add_to_pending(movie("2")).unwrap();
        qm.close().unwrap();
        let qm = options(now, on_demand, Some(Duration::from_secs(300)))
            .open(dir.path())
            .unwrap();
        assert_eq!(qm.is_loaded(), !on_demand);
        qm.add_to_pending(movie("3")).unwrap();
        qm.close().unwrap();
        assert_eq!(
            manifest_seq(dir.path()),
            3,
            "on demand {on_demand}: an hour-old change is written"
        );
    }
}
