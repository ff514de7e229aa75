//! The cases where the journal, the snapshot, the compaction base and the
//! legacy files meet, one scenario each: the faults issue "Recovery never
//! destroys" found, and the rules that answer them.
//!
//! How: stores are built through the API, then one file is damaged, cut
//! or the process is "killed" (a `FaultyStorage` whose process dies keeps
//! its writes in the modelled page cache; a later power loss drops what
//! nobody synced). Each test checks what an open, `verify` and `repair`
//! do, and that nothing acknowledged is lost or silently changed.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use movie_queue::testing::{Fault, FaultyStorage, RealStorage};
use movie_queue::{Error, Movie, QueueManager, QueueState, Seq};

use crate::support::durability::{Pristine, layout, movie, quiet_options, remove_snapshot, scratch, write_segment};

fn ids(state: &QueueState) -> Vec<String> {
    let mut ids: Vec<String> = state.pending().map(|entry| entry.id().to_owned()).collect();
    ids.extend(state.in_flight().map(|entry| entry.id().to_owned()));
    ids
}

/// Five adds, each in its own open, snapshot and close: each leaves a
/// snapshot of every record so far.
fn five_closed_adds(dir: &Path) {
    for id in ["1", "2", "3", "4", "5"] {
        let qm = quiet_options(Arc::new(RealStorage)).open(dir).expect("open");
        qm.add_to_pending(movie(id)).expect("add");
        // Snapshot explicitly: close writes one only when the policy says.
        qm.snapshot().expect("snapshot");
        qm.close().expect("close");
    }
}

fn broken_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("journal")] {
        for entry in fs::read_dir(&sub).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().ends_with(".broken") {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn a_torn_tail_under_a_snapshot_is_an_acknowledged_record_the_snapshot_covers() {
    let dir = scratch();
    five_closed_adds(dir.path());
    let segment = layout(dir.path()).pop().expect("a segment");
    let last = *segment.records.last().expect("a record");
    let file = fs::OpenOptions::new().write(true).open(&segment.path).expect("open");
    file.set_len(last.end as u64 - 3).expect("cut");
    drop(file);

    // Every command opens: the snapshot proves record 5.
    let reader = QueueManager::open_read_only(dir.path()).expect("a reader opens");
    assert_eq!(ids(&reader.state()), ["1", "2", "3", "4", "5"]);
    let verified = movie_queue::verify(dir.path()).expect("verify passes");
    assert!(
        verified
            .problems
            .iter()
            .any(|problem| problem.contains("record 5") && problem.contains("covers it")),
        "{:?}",
        verified.problems
    );

    let qm = quiet_options(Arc::new(RealStorage))
        .open(dir.path())
        .expect("a writer opens");
    assert_eq!(qm.last_seq(), Seq(5));
    assert!(qm.add_to_pending(movie("6")).expect("add after it"));
    qm.close().expect("close");
    assert_eq!(
        broken_files(dir.path()).len(),
        1,
        "the damaged bytes are set aside, not cut away"
    );
    assert!(
        dir.path().join("journal/base.json").exists(),
        "the snapshot's state is recorded as the base"
    );
    let report = movie_queue::repair(dir.path()).expect("repair");
    assert_eq!(report.damage, None, "nothing left to repair: {report:?}");
    // The journal no longer needs the documented files.
    remove_snapshot(dir.path());
    let again = QueueManager::open_read_only(dir.path()).expect("open");
    assert_eq!(ids(&again.state()), ["1", "2", "3", "4", "5", "6"]);
}

#[test]
fn a_failed_open_writes_nothing() {
    let dir = scratch();
    five_closed_adds(dir.path());
    remove_snapshot(dir.path());
    let segment = layout(dir.path()).remove(0);
    let mut bytes = fs::read(&segment.path).expect("read");
    bytes[segment.records[1].start + 20] ^= 4;
    fs::write(&segment.path, bytes).expect("write");
    let before = Pristine::capture(dir.path());
    let error = QueueManager::open(dir.path()).expect_err("record 2 is damaged, nothing covers it");
    assert!(error.is_corruption(), "{error}");
    assert!(
        Pristine::capture(dir.path()).same_as(&before),
        "the failed open changed the store"
    );
}

#[test]
fn a_legacy_store_of_large_entries_imports_whole_in_several_records() {
    let dir = scratch();
    let title = "t".repeat(10 << 20);
    let pending: Vec<serde_json::Value> = (0..7)
        .map(|index| serde_json::json!({"id": format!("big{index}"), "title": title, "year": 2000 + index}))
        .collect();
    fs::write(
        dir.path().join("queue_pending.json"),
        serde_json::to_vec(&pending).expect("json"),
    )
    .expect("write");
    let qm = quiet_options(Arc::new(RealStorage))
        .open(dir.path())
        .expect("open imports");
    assert_eq!(qm.get_pending_count(), 7);
    assert!(
        qm.last_seq() >= Seq(2),
        "the import is cut into several records: {}",
        qm.last_seq()
    );
    let (_, entry) = qm.get("big6").expect("imported");
    assert_eq!(entry.movie.title().map(str::len), Some(10 << 20));
    qm.close().expect("close");
}

#[test]
fn a_legacy_entry_over_the_event_limit_is_refused_with_everything_unchanged() {
    let dir = scratch();
    let pending = serde_json::json!([
        {"id": "small", "title": "Heat", "year": 1995},
        {"id": "huge", "title": "x".repeat(2 << 20), "year": 1995}
    ]);
    fs::write(
        dir.path().join("queue_pending.json"),
        serde_json::to_vec(&pending).expect("json"),
    )
    .expect("write");
    let before = Pristine::capture(dir.path());
    let error = quiet_options(Arc::new(RealStorage))
        .event_bytes_max(1 << 20)
        .open(dir.path())
        .expect_err("an entry over the limit");
    let message = error.to_string();
    assert!(message.contains("queue_pending.json entry 1"), "{message}");
    assert!(message.contains("nothing was changed"), "{message}");
    assert!(
        Pristine::capture(dir.path()).same_as(&before),
        "the legacy store changed"
    );
    assert!(!dir.path().join("journal").exists());
}

/// A journal holding no valid record — only a torn first write, never
/// acknowledged — beside legacy files: the legacy files are the state, for
/// a reader as for a writer (a reader used to serve an empty queue while a
/// writer imported the files: found by the `recovery_dir` fuzz target).
#[test]
fn a_torn_first_write_beside_legacy_files_reads_as_the_legacy_store_for_reader_and_writer() {
    let dir = scratch();
    let pending = serde_json::json!([{"id": "a", "title": "Heat", "year": 1995}]);
    fs::write(
        dir.path().join("queue_pending.json"),
        serde_json::to_vec(&pending).expect("json"),
    )
    .expect("write");
    let (segment, _) = write_segment(&dir.path().join("journal"), 1, &[]);
    let mut torn = fs::read(&segment).expect("read");
    torn.extend_from_slice(&[
        0x6a, 0, 0, 0, 0xfe, 0x87, 0xc8, 0xf9, 1, 0, 0, 0, 0, 0, 0, 0, b'{', b'"',
    ]);
    fs::write(&segment, &torn).expect("a torn first write");

    let reader = QueueManager::open_read_only(dir.path()).expect("a reader opens");
    assert_eq!(ids(&reader.state()), ["a"], "the reader sees the legacy files");
    drop(reader);
    let report = movie_queue::verify(dir.path()).expect("verify passes");
    let problems = report.problems.join("\n");
    assert!(problems.contains("torn tail"), "{problems}");
    assert_eq!(
        report.start,
        movie_queue::Start::Legacy,
        "a legacy store (not a problem in itself)"
    );

    let writer = quiet_options(Arc::new(RealStorage))
        .open(dir.path())
        .expect("a writer opens");
    assert_eq!(ids(&writer.state()), ["a"], "the writer imports the same");
    writer.close().expect("close");
    let aside = dir.path().join("journal.before-import.broken");
    assert_eq!(
        fs::read(aside.join(segment.file_name().expect("a name"))).expect("the old journal is kept aside"),
        torn
    );
}

/// A last segment holding no valid record whose header starts past the
/// record due says the records between were lost (a segment is created
/// only after every record before it is durable): a gap, refused by
/// reader, writer and `verify` alike, never an empty segment to write
/// over; `repair` sets it aside. (Found by the `recovery_dir` fuzz target:
/// the writer failed creating a segment whose name a record-less segment
/// held, while a reader opened.)
#[test]
fn a_last_segment_starting_past_the_records_due_is_a_gap() {
    let dir = scratch();
    let journal = dir.path().join("journal");
    write_segment(&journal, 1, &crate::support::durability::added_records(1, 3));
    let (ahead, _) = write_segment(&journal, 9, &[]);
    let mut torn = fs::read(&ahead).expect("read");
    torn.extend_from_slice(b"torn");
    fs::write(&ahead, &torn).expect("a torn write after the header");

    for error in [
        QueueManager::open_read_only(dir.path())
            .map(drop)
            .expect_err("a reader refuses"),
        movie_queue::verify(dir.path()).map(drop).expect_err("verify refuses"),
        quiet_options(Arc::new(RealStorage))
            .open(dir.path())
            .map(drop)
            .expect_err("a writer refuses"),
    ] {
        assert!(
            matches!(&error, Error::SequenceGap { path, offset: 16, expected: 4, found: 9 } if *path == ahead),
            "{error:?}"
        );
    }
    movie_queue::repair(dir.path()).expect("repair");
    let qm = quiet_options(Arc::new(RealStorage))
        .open(dir.path())
        .expect("open after repair");
    assert_eq!(ids(&qm.state()), ["m1", "m2", "m3"]);
    drop(qm);
    assert_eq!(
        fs::read(journal.join("00000000000000000009.seg.0.broken")).expect("set aside whole"),
        torn
    );
}

#[test]
fn many_legacy_entries_import_in_bounded_records_and_a_reader_sees_the_same() {
    let dir = scratch();
    let pending: Vec<serde_json::Value> = (0..20_000)
        .map(|index| serde_json::json!({"id": index.to_string(), "title": format!("Movie {index}"), "year": 2000}))
        .collect();
    fs::write(
        dir.path().join("queue_pending.json"),
        serde_json::to_vec(&pending).expect("json"),
    )
    .expect("write");
    let reader = QueueManager::open_read_only(dir.path()).expect("a reader applies the import in memory");
    let read = reader.state();
    drop(reader);
    let qm = quiet_options(Arc::new(RealStorage))
        .event_bytes_max(64 << 10)
        .open(dir.path())
        .expect("open imports");
    assert!(qm.last_seq() >= Seq(10), "bounded records: {}", qm.last_seq());
    for segment in layout(dir.path()) {
        for record in segment.records {
            assert!(
                record.end - record.start <= 16 + (64 << 10),
                "a record over the limit: {record:?}"
            );
        }
    }
    assert!(qm.state() == read, "the writer's import reads as the reader's");
    assert_eq!(qm.get_pending_count(), 20_000);
    qm.close().expect("close");
}

#[test]
fn a_power_loss_at_every_step_of_a_legacy_import_leaves_the_files_or_the_whole_import() {
    let dir = scratch();
    let pending: Vec<serde_json::Value> = (0..300)
        .map(|index| serde_json::json!({"id": index.to_string(), "title": format!("Movie {index}"), "year": 2000}))
        .collect();
    fs::write(
        dir.path().join("queue_pending.json"),
        serde_json::to_vec(&pending).expect("json"),
    )
    .expect("write");
    let pristine = Pristine::capture(dir.path());
    let counter = FaultyStorage::new();
    drop(
        quiet_options(Arc::new(counter.clone()))
            .event_bytes_max(4 << 10)
            .open(dir.path())
            .expect("open"),
    );
    for index in 0..counter.sync_count() {
        pristine.restore_exactly(dir.path());
        let faulty = FaultyStorage::new();
        faulty.inject(Fault::PowerLossAfterSync { index, torn_bytes: 5 });
        drop(
            quiet_options(Arc::new(faulty.clone()))
                .event_bytes_max(4 << 10)
                .open(dir.path()),
        );
        let imported = dir.path().join("journal/tail").exists();
        if !imported {
            assert!(
                fs::read(dir.path().join("queue_pending.json")).ok()
                    == Some(serde_json::to_vec(&pending).expect("json")),
                "power loss at fsync {index}: the legacy file changed before the import was durable"
            );
        }
        let qm = QueueManager::open_read_only(dir.path()).expect("reopen");
        assert_eq!(qm.get_pending_count(), 300, "power loss at fsync {index}");
    }
}

#[test]
fn a_snapshot_only_store_with_a_damaged_file_is_an_error_never_an_empty_queue() {
    let dir = scratch();
    five_closed_adds(dir.path());
    fs::remove_dir_all(dir.path().join("journal")).expect("a backup: the documented files only");
    let pending = dir.path().join("queue_pending.json");
    let bytes = fs::read(&pending).expect("read");
    fs::write(&pending, &bytes[..bytes.len() - 30]).expect("cut into the last entry");
    let error = QueueManager::open_read_only(dir.path()).expect_err("never read as empty");
    assert!(error.to_string().contains("queue_pending.json"), "{error}");
    assert!(movie_queue::verify(dir.path()).is_err(), "verify agrees with open");
    let report = movie_queue::repair(dir.path()).expect("following the hint");
    assert!(!report.set_aside.is_empty(), "{report:?}");
    let qm = QueueManager::open_read_only(dir.path()).expect("opens after repair");
    assert_eq!(ids(&qm.state()), ["1", "2", "3", "4"], "every entry before the damage");
}

#[test]
fn a_second_repair_at_the_same_offset_never_replaces_the_first_ones_file() {
    let dir = scratch();
    five_closed_adds(dir.path());
    remove_snapshot(dir.path());
    let segment = layout(dir.path()).remove(0);
    let pristine = fs::read(&segment.path).expect("read");
    let damage = |byte: u8| {
        let mut bytes = pristine.clone();
        bytes[segment.records[3].start + 20] ^= byte;
        fs::write(&segment.path, bytes).expect("write");
    };
    damage(1);
    movie_queue::repair(dir.path()).expect("first repair");
    damage(2);
    movie_queue::repair(dir.path()).expect("second repair");
    let aside = broken_files(dir.path());
    assert_eq!(aside.len(), 2, "{aside:?}");
    assert_ne!(fs::read(&aside[0]).expect("read"), fs::read(&aside[1]).expect("read"));
}

#[test]
fn a_manager_whose_open_failed_never_writes_a_snapshot_on_drop() {
    let dir = scratch();
    let qm = quiet_options(Arc::new(RealStorage)).open(dir.path()).expect("open");
    for id in ["a-rather-long-id-1", "a-rather-long-id-2", "a-rather-long-id-3"] {
        qm.add_to_pending(movie(id)).expect("add");
        qm.get_next_pending().expect("take");
    }
    qm.close().expect("close");
    remove_snapshot(dir.path());
    let before = Pristine::capture(dir.path());
    // The default open puts the movies in flight back with one event,
    // which is over this open's event limit: the open fails after the
    // manager exists, and its drop must not write a snapshot.
    let error = QueueManager::options()
        .event_bytes_max(60)
        .open(dir.path())
        .expect_err("the requeue event is over the limit");
    assert!(matches!(error, Error::EventTooLarge { .. }), "{error}");
    assert!(
        Pristine::capture(dir.path()).same_as(&before),
        "a failed open wrote files (a snapshot of a state it did not finish opening)"
    );
}

#[test]
fn a_writer_makes_a_killed_predecessors_unsynced_records_durable_before_it_serves_them() {
    let dir = scratch();
    let first = FaultyStorage::new();
    let qm = quiet_options(Arc::new(first.clone())).open(dir.path()).expect("open");
    qm.add_to_pending(movie("1")).expect("acknowledged");
    // The next record is written, and the process dies as its fsync
    // starts: the bytes are in the page cache, nobody synced them. (One
    // event: two could be written and synced as one batch or as two.)
    first.inject(Fault::KillBeforeSync {
        index: first.sync_count(),
    });
    assert!(qm.add_to_pending(movie("2")).is_err());
    drop(qm);
    let second = first.revive();
    let reopened = quiet_options(Arc::new(second.clone()))
        .open(dir.path())
        .expect("the next process opens");
    let served = reopened.state();
    assert_eq!(served.pending_count(), 2, "the next process reads the page cache");
    second.power_loss(0).expect("power loss");
    drop(reopened);
    let after = QueueManager::open_read_only(dir.path()).expect("reopen after the power loss");
    assert!(
        after.state() == served,
        "what the second process served was not durable"
    );
}

#[test]
fn a_fresh_store_directory_is_durable_in_its_parent_before_anything_is_acknowledged() {
    let parent = scratch();
    let dir = parent.path().join("store");
    let counter = FaultyStorage::new();
    let qm = quiet_options(Arc::new(counter.clone())).open(&dir).expect("open");
    let before = counter.sync_count();
    qm.add_to_pending(movie("1")).expect("add");
    let add_sync = counter.sync_count() - 1;
    assert!(add_sync >= before);
    drop(qm);
    fs::remove_dir_all(&dir).expect("start again");
    let faulty = FaultyStorage::new();
    faulty.inject(Fault::PowerLossAfterSync {
        index: add_sync,
        torn_bytes: 0,
    });
    let qm = quiet_options(Arc::new(faulty.clone())).open(&dir).expect("open");
    qm.add_to_pending(movie("1")).expect("acknowledged");
    assert!(faulty.has_crashed());
    drop(qm);
    let after = QueueManager::open_read_only(&dir).expect("the store survives the power loss");
    assert_eq!(after.get_pending_count(), 1, "the acknowledged add is there");
}

#[test]
fn unsynced_sectors_reaching_the_disk_out_of_order_never_pass_as_acknowledged() {
    // A batch's sectors may persist in any order when the power goes out
    // during its fsync: zeros, then valid records, inside the tail nobody
    // acknowledged. The rule: open refuses (it cannot tell that from damage
    // to acknowledged records), and repair keeps every record before the
    // first damage — a prefix, never a hole, never an acknowledged loss.
    for lost_sectors in [0b0101_u64, 0b0010, 0b1000_0001, 0b0001] {
        let dir = scratch();
        let faulty = FaultyStorage::new();
        let qm = quiet_options(Arc::new(faulty.clone())).open(dir.path()).expect("open");
        qm.add_to_pending(movie("acked")).expect("acknowledged");
        faulty.inject(Fault::PowerLossBeforeSyncReordered {
            index: faulty.sync_count(),
            torn_bytes: u64::MAX,
            lost_sectors,
        });
        let batch: Vec<Movie> = (0..30).map(|index| movie(&format!("b{index:02}"))).collect();
        assert!(qm.add_many_to_pending(batch).is_err(), "never acknowledged");
        drop(qm);
        let state = match QueueManager::open_read_only(dir.path()) {
            Ok(qm) => qm.state(),
            Err(error) => {
                assert!(error.is_corruption(), "{error}");
                movie_queue::repair(dir.path()).expect("repair");
                QueueManager::open_read_only(dir.path())
                    .expect("open after repair")
                    .state()
            }
        };
        let kept = ids(&state);
        let want: Vec<String> = std::iter::once("acked".to_owned())
            .chain((0..30).map(|index| format!("b{index:02}")))
            .take(kept.len())
            .collect();
        assert_eq!(
            kept, want,
            "lost sectors {lost_sectors:#b}: the acknowledged add, then a prefix of the batch"
        );
    }
}

#[test]
fn a_damaged_tail_marker_is_reported_by_verify_and_rewritten_by_the_next_writer() {
    let dir = scratch();
    let options = || quiet_options(Arc::new(RealStorage)).segment_bytes_max(300);
    let qm = options().open(dir.path()).expect("open");
    for id in 0..12 {
        qm.add_to_pending(movie(&id.to_string())).expect("add");
    }
    qm.close().expect("close");
    let segments = layout(dir.path());
    assert!(segments.len() >= 2, "the journal rolled");
    let marker = dir.path().join("journal/tail");
    fs::write(&marker, "garbage").expect("damage the marker");
    let report = movie_queue::verify(dir.path()).expect("verify");
    assert!(
        report.problems.iter().any(|problem| problem.contains("tail marker")),
        "{:?}",
        report.problems
    );
    // The next writer names the last segment again...
    options()
        .open(dir.path())
        .expect("a writer opens")
        .close()
        .expect("close");
    let report = movie_queue::verify(dir.path()).expect("verify");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // ...so a lost last segment is noticed again.
    remove_snapshot(dir.path());
    let last = layout(dir.path()).pop().expect("a segment").path;
    fs::remove_file(&last).expect("lose the last segment");
    assert!(
        QueueManager::open_read_only(dir.path()).is_err(),
        "a lost last segment must not read as a shorter journal"
    );
}

#[test]
fn a_deleted_middle_segment_under_a_snapshot_is_reported_by_verify() {
    let dir = scratch();
    let qm = quiet_options(Arc::new(RealStorage))
        .segment_bytes_max(300)
        .open(dir.path())
        .expect("open");
    for id in 0..12 {
        qm.add_to_pending(movie(&id.to_string())).expect("add");
    }
    qm.close().expect("close (a snapshot covers every record)");
    let segments = layout(dir.path());
    assert!(segments.len() >= 3, "the journal rolled twice");
    fs::remove_file(&segments[1].path).expect("delete a middle segment");
    QueueManager::open_read_only(dir.path()).expect("the snapshot covers the hole");
    let report = movie_queue::verify(dir.path()).expect("verify");
    assert!(
        report
            .problems
            .iter()
            .any(|problem| problem.contains("are missing before it")),
        "{:?}",
        report.problems
    );
}
