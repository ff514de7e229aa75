//! The answers read from the snapshot's manifest and index plus the
//! journal after it (`Options::statistics`, `Options::lookup`) are the
//! answers of the whole state, and are given without loading it whenever
//! the store is in the shape they come from.
//!
//! For random operation sequences over every event kind, with snapshots,
//! compactions and reopens in between, after every operation:
//!
//! * `lean_statistics` equals the live manager's `get_statistics` at every
//!   `max_retries`, `lean_lookup` equals its `get` for every id, and
//!   `lean_list` its entries of every place in order (and a page of them
//!   through `Options::list`);
//! * both answer (`Some`) whenever a snapshot with an index exists, so the
//!   equality is about the lean path, not the fallback.
//!
//! And on damage: an index, a documented file or a record after the
//! snapshot that does not hold up, a last segment deleted, a foreign file
//! in the journal folder, turn the lean path off (`None`), while
//! `Options::statistics`/`lookup` still answer as the whole rebuild does
//! (the same answer or the same refusal), never reading an index whose
//! size is not the manifest's.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::support::common::{movie, scratch};
use crate::support::durability::segment_paths;
use movie_queue::testing::{INDEX_FILE, PENDING_FILE, RealStorage, Storage, lean_list, lean_lookup, lean_statistics};
use movie_queue::{Place, QueueManager, now};
use proptest::prelude::*;
use proptest::test_runner::Config;

pub(super) const IDS: u8 = 8;

#[derive(Debug, Clone)]
pub(super) enum Op {
    Add(u8),
    Take,
    Fail(u8),
    MoveBack(u8),
    Reset(u8),
    Complete(u8),
    Cleanup,
    Requeue,
    Remove(u8),
    MarkRemoved(Vec<u8>),
    Restore(u8),
    Forget(u8),
    Snapshot,
    Compact,
    Reopen,
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    let id = || 0..IDS;
    prop_oneof![
        6 => id().prop_map(Op::Add),
        4 => Just(Op::Take),
        3 => id().prop_map(Op::Fail),
        1 => id().prop_map(Op::MoveBack),
        1 => id().prop_map(Op::Reset),
        2 => id().prop_map(Op::Complete),
        1 => Just(Op::Cleanup),
        1 => Just(Op::Requeue),
        1 => id().prop_map(Op::Remove),
        1 => proptest::collection::vec(id(), 0..4).prop_map(Op::MarkRemoved),
        1 => id().prop_map(Op::Restore),
        1 => id().prop_map(Op::Forget),
        2 => Just(Op::Snapshot),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

pub(super) fn open(dir: &Path) -> QueueManager {
    QueueManager::options()
        .segment_bytes_max(700)
        .snapshot_every_events(0)
        .snapshot_every(None)
        .requeue_in_flight_on_open(false)
        .open(dir)
        .unwrap()
}

pub(super) fn name(id: u8) -> String {
    format!("tt{id}")
}

/// Runs `op`; refusals (a rule said no) are part of the workload.
pub(super) fn apply(qm: QueueManager, dir: &Path, op: &Op) -> QueueManager {
    let id = |id: &u8| name(*id);
    let _ = match op {
        Op::Add(n) => qm.add_to_pending(movie(&id(n))).map(drop),
        Op::Take => qm.get_next_pending().map(drop),
        Op::Fail(n) => qm
            .add_to_failed(movie(&id(n)), "no seeders", Some(now() + f64::from(*n) - 4.0))
            .map(drop),
        Op::MoveBack(n) => qm.move_failed_to_pending(id(n)).map(drop),
        Op::Reset(n) => qm.reset_failed_movie(id(n)).map(drop),
        Op::Complete(n) => qm.add_to_completed(movie(&id(n))).map(drop),
        Op::Cleanup => qm.cleanup_completed_before(now() + 1.0).map(drop),
        Op::Requeue => qm.requeue_in_flight().map(drop),
        Op::Remove(n) => qm.add_to_removed(movie(&id(n))).map(drop),
        Op::MarkRemoved(keep) => {
            let keep: Vec<String> = keep.iter().map(id).collect();
            qm.mark_movies_as_removed(keep.iter().map(String::as_str)).map(drop)
        }
        Op::Restore(n) => qm.restore_removed_movie(id(n)).map(drop),
        Op::Forget(n) => qm.remove_from_removed_queue(id(n)).map(drop),
        Op::Snapshot => qm.snapshot().map(drop),
        Op::Compact => qm.compact().map(drop),
        Op::Reopen => {
            qm.close().unwrap();
            return open(dir);
        }
    };
    qm
}

/// Every lean answer equals the live state's, and is given whenever a
/// snapshot with an index exists.
fn check_against(qm: &QueueManager, dir: &Path) {
    qm.flush().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(RealStorage);
    let indexed = dir.join(INDEX_FILE).exists();
    let state = qm.state();
    for max_retries in [0, 1, 2, 5] {
        let lean = lean_statistics(&storage, dir, max_retries);
        assert_eq!(
            lean.is_some(),
            indexed,
            "answers lean exactly when a snapshot is indexed"
        );
        if let Some(lean) = lean {
            assert_eq!(lean, state.statistics(max_retries), "max_retries {max_retries}");
        }
    }
    for place in Place::ALL {
        let whole: Vec<_> = state.entries(place).collect();
        match lean_list(&storage, dir, place) {
            Some(listed) => assert_eq!(listed, whole, "{place}"),
            None => assert!(!indexed, "{place}: no lean list from an indexed snapshot"),
        }
        let skip = whole.len() / 2;
        let mut page = Vec::new();
        QueueManager::options()
            .list(dir, place, skip, |entry| {
                page.push(entry);
                page.len() < 2
            })
            .unwrap();
        assert_eq!(
            page,
            whole.iter().skip(skip).take(2).cloned().collect::<Vec<_>>(),
            "{place} from {skip}"
        );
    }
    for n in 0..IDS {
        let id = name(n);
        if let Some(found) = lean_lookup(&storage, dir, &id) {
            assert_eq!(found, qm.get(id.as_str()), "{id}");
        } else {
            assert!(!indexed, "{id}: no lean answer from an indexed snapshot");
        }
    }
}

proptest! {
    #![proptest_config(Config { cases: 48, ..Config::default() })]

    #[test]
    fn lean_answers_are_the_whole_states(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = scratch();
        let mut qm = open(dir.path());
        for op in &ops {
            qm = apply(qm, dir.path(), op);
            check_against(&qm, dir.path());
        }
        qm.close().unwrap();
    }
}

/// A store with a snapshot and records after it: pending 1..=4, then 5
/// added, 1 taken, 2 failed, after the snapshot.
fn store_with_tail(dir: &Path) -> QueueManager {
    let qm = open(dir);
    for id in ["1", "2", "3", "4"] {
        qm.add_to_pending(movie(id)).unwrap();
    }
    qm.snapshot().unwrap();
    qm.add_to_pending(movie("5")).unwrap();
    qm.get_next_pending().unwrap();
    qm.add_to_failed(movie("2"), "stalled", None).unwrap();
    qm.flush().unwrap();
    qm
}

#[test]
fn damage_turns_the_lean_path_off_and_the_answers_stay_the_whole_states() {
    let storage: Arc<dyn Storage> = Arc::new(RealStorage);
    type Damage = (&'static str, fn(&Path));
    let damages: [Damage; 7] = [
        ("the last segment deleted (the tail marker names it)", |dir| {
            let mut segments = segment_paths(dir);
            std::fs::remove_file(segments.pop().unwrap()).unwrap();
        }),
        ("a foreign file in the journal folder", |dir| {
            std::fs::write(dir.join("journal").join("notes.txt"), "mine").unwrap();
        }),
        ("an index of another length (sparse, 1 GiB)", |dir| {
            let index = std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join(INDEX_FILE))
                .unwrap();
            index.set_len(1 << 30).unwrap();
        }),
        ("a flipped byte of the index", |dir| flip(&dir.join(INDEX_FILE), 20)),
        ("no index", |dir| std::fs::remove_file(dir.join(INDEX_FILE)).unwrap()),
        ("a flipped byte inside an entry of the pending file", |dir| {
            let path = dir.join(PENDING_FILE);
            let text = std::fs::read_to_string(&path).unwrap();
            flip(&path, text.find("Movie 2").unwrap() + 6);
        }),
        (
            "a record after the snapshot damaged, with valid records after it",
            |dir| {
                // The record that added "5" (a damaged last record would read
                // as a torn write, for the whole rebuild too).
                let at = |bytes: &[u8]| bytes.windows(7).position(|window| window == b"Movie 5");
                let (segment, offset) = std::fs::read_dir(dir.join("journal"))
                    .unwrap()
                    .map(|entry| entry.unwrap().path())
                    .find_map(|path| at(&std::fs::read(&path).unwrap()).map(|offset| (path, offset)))
                    .unwrap();
                flip(&segment, offset);
            },
        ),
    ];
    for (what, damage) in damages {
        let dir = scratch();
        let qm = store_with_tail(dir.path());
        let expected = qm.get_statistics();
        let expected_2 = qm.get("2");
        assert!(
            lean_statistics(&storage, dir.path(), 3).is_some(),
            "{what}: lean before the damage"
        );
        // Damaged while the writer holds the store: its close would write
        // a snapshot covering the records after this one.
        damage(dir.path());
        assert_eq!(lean_statistics(&storage, dir.path(), 3), None, "{what}");
        assert_eq!(lean_lookup(&storage, dir.path(), "2"), None, "{what}");
        // The index is never read whole when its size is not the
        // manifest's (nor is anything else of that size read).
        let read = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&read);
        let counting = QueueManager::options().on_read(Arc::new(move |bytes| {
            counter.fetch_add(bytes, Ordering::Relaxed);
        }));
        let _ = counting.statistics(dir.path());
        let _ = counting.lookup(dir.path(), "2");
        assert!(
            read.load(Ordering::Relaxed) < 1 << 20,
            "{what}: {} bytes read",
            read.load(Ordering::Relaxed)
        );
        let options = QueueManager::options();
        match QueueManager::open_read_only(dir.path()) {
            Ok(reader) => {
                assert_eq!(
                    options.statistics(dir.path()).unwrap(),
                    reader.get_statistics(),
                    "{what}"
                );
                assert_eq!(options.lookup(dir.path(), "2").unwrap(), reader.get("2"), "{what}");
                if what.contains("index") || what.contains("pending file") {
                    assert_eq!(reader.get_statistics(), expected, "{what}: the journal has it all");
                    assert_eq!(reader.get("2"), expected_2, "{what}");
                }
            }
            Err(error) => {
                let lean = options.statistics(dir.path()).unwrap_err();
                assert_eq!(lean.to_string(), error.to_string(), "{what}: the same refusal");
            }
        }
        drop(qm);
    }
}

/// A writer's close writes the snapshot again when the index does not
/// match its manifest (the policy would not be due for one change), so a
/// damaged index does not outlive the next change.
#[test]
fn a_close_after_a_change_writes_a_damaged_index_anew() {
    let storage: Arc<dyn Storage> = Arc::new(RealStorage);
    let dir = scratch();
    store_with_tail(dir.path()).close().unwrap();
    flip(&dir.path().join(INDEX_FILE), 30);
    assert_eq!(lean_statistics(&storage, dir.path(), 3), None);
    let qm = open(dir.path());
    qm.add_to_pending(movie("6")).unwrap();
    let expected = qm.get_statistics();
    qm.close().unwrap();
    assert_eq!(lean_statistics(&storage, dir.path(), 3), Some(expected));
}

/// A snapshot without an index (as an older version, or files rendered
/// elsewhere, leave it) is read whole, and a writer's next close writes
/// one with its index, whatever the policy says, after which the reads
/// answer from it.
#[test]
fn a_snapshot_without_an_index_is_written_anew_at_the_next_close() {
    use movie_queue::testing::{render_files, write_files};
    let storage: Arc<dyn Storage> = Arc::new(RealStorage);
    let dir = scratch();
    let qm = store_with_tail(dir.path());
    let (state, seq) = (qm.state(), qm.last_seq());
    write_files(
        &RealStorage,
        dir.path(),
        &render_files(&state),
        seq,
        state.in_flight_count() as u64,
    )
    .unwrap();
    std::fs::remove_file(dir.path().join(INDEX_FILE)).unwrap();
    assert_eq!(lean_statistics(&storage, dir.path(), 3), None, "no index: read whole");
    assert_eq!(
        QueueManager::options().statistics(dir.path()).unwrap(),
        qm.get_statistics()
    );
    qm.close().unwrap();
    let qm = open(dir.path());
    qm.add_to_pending(movie("6")).unwrap();
    let expected = qm.get_statistics();
    qm.close().unwrap();
    assert!(dir.path().join(INDEX_FILE).exists(), "the close wrote the index");
    assert_eq!(lean_statistics(&storage, dir.path(), 3), Some(expected));
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

/// A snapshot that is the only copy of its state (its files copied
/// without the journal; a compacted journal whose base is gone) is read
/// whole, as the open reads it: a same-length damage where a lean answer
/// would not look makes `stats`, `show` and `list` refuse as the open
/// does, never answer for a store that does not open.
#[test]
fn a_snapshot_the_journal_cannot_rebuild_is_read_whole() {
    let storage: Arc<dyn Storage> = Arc::new(RealStorage);
    type Only = (&'static str, fn(&Path));
    let cases: [Only; 2] = [
        ("the files without the journal", |dir| {
            std::fs::remove_dir_all(dir.join("journal")).unwrap();
        }),
        ("a compacted journal without its base", |dir| {
            std::fs::remove_file(dir.join("journal").join("base.json")).unwrap();
        }),
    ];
    for (what, only) in cases {
        let dir = scratch();
        let qm = open(dir.path());
        for n in 1..=20 {
            qm.add_to_pending(movie(&n.to_string())).unwrap();
        }
        // Small segments: compaction deletes the ones it covers.
        qm.compact().unwrap();
        qm.close().unwrap();
        assert!(
            !segment_paths(dir.path())[0].ends_with("00000000000000000001.seg"),
            "{what}: the journal no longer starts at record 1"
        );
        only(dir.path());
        assert_eq!(lean_statistics(&storage, dir.path(), 3), None, "{what}: read whole");
        let whole = QueueManager::open_read_only(dir.path()).unwrap().get_statistics();
        assert_eq!(QueueManager::options().statistics(dir.path()).unwrap(), whole, "{what}");
        // The same length, an entry no lean answer reads.
        let path = dir.path().join(PENDING_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        flip(&path, text.find("Movie 3").unwrap() + 6);
        let refused = QueueManager::open_read_only(dir.path()).unwrap_err().to_string();
        let options = QueueManager::options();
        assert_eq!(
            options.statistics(dir.path()).unwrap_err().to_string(),
            refused,
            "{what}: stats"
        );
        assert_eq!(
            options.lookup(dir.path(), "1").unwrap_err().to_string(),
            refused,
            "{what}: show"
        );
    }
}
