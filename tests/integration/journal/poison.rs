//! A failed fsync or write poisons the journal: the failing call returns
//! an error, every later mutation returns `Error::Poisoned` (the fsync is
//! never retried and trusted), reads keep working, and a reopen holds
//! every acknowledged operation and nothing that was not acknowledged.
//!
//! How: a `QueueManager` over a `FaultyStorage` adds movies; the fsync (or
//! the write, with EIO or ENOSPC) of one of them is made to fail. The
//! failing call and every kind of later mutation are checked to fail with
//! `Poisoned`; `flush`, `snapshot` and `close` report it too. Then the
//! machine loses power (the unsynced bytes go) and the store is reopened:
//! exactly the acknowledged movies. Without a power loss, the reopen must
//! not serve the unacknowledged record either.

use crate::support::durability as durability_support;

use std::sync::Arc;

use durability_support::{movie, scratch};
use movie_queue::testing::{Fault, FaultyStorage};
use movie_queue::{Error, Place, QueueManager};

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

fn open(dir: &std::path::Path, faulty: &FaultyStorage) -> QueueManager {
    QueueManager::options()
        .storage(Arc::new(faulty.clone()))
        .snapshot_every_events(0)
        .snapshot_every(None)
        .open(dir)
        .expect("open")
}

fn pending_ids(qm: &QueueManager) -> Vec<String> {
    qm.list(Place::Pending)
        .iter()
        .map(|entry| entry.id().to_owned())
        .collect()
}

fn assert_poisoned(result: movie_queue::Result<impl std::fmt::Debug>, what: &str) {
    match result {
        Err(Error::Poisoned { cause, kind }) => {
            assert!(!cause.is_empty(), "{what}: the cause is named");
            assert!(kind.is_some(), "{what}: the I/O error's kind is kept");
        }
        other => panic!("{what}: expected Poisoned, got {other:?}"),
    }
}

/// Adds m1, m2 (acknowledged), then m3 whose fsync or write fails; checks
/// every later mutation is refused. Returns the manager.
fn poison_on_third_add(dir: &std::path::Path, faulty: &FaultyStorage, fault: Fault) -> QueueManager {
    let qm = open(dir, faulty);
    faulty.inject(fault);
    assert!(qm.add_to_pending(movie("m1")).expect("acknowledged"));
    assert!(qm.add_to_pending(movie("m2")).expect("acknowledged"));
    let failed = qm.add_to_pending(movie("m3"));
    assert_poisoned(failed, "the failing call");
    let import = scratch();
    durability_support::write_import_fixture(import.path());
    assert_poisoned(qm.add_to_pending(movie("m4")), "add_to_pending");
    assert_poisoned(qm.get_next_pending(), "get_next_pending");
    assert_poisoned(qm.add_to_failed(movie("m1"), "e", None), "add_to_failed");
    assert_poisoned(qm.move_failed_to_pending("m1"), "move_failed_to_pending");
    assert_poisoned(qm.reset_failed_movie("m1"), "reset_failed_movie");
    assert_poisoned(qm.add_to_completed(movie("m1")), "add_to_completed");
    assert_poisoned(qm.cleanup_old_completed(0), "cleanup_old_completed");
    assert_poisoned(qm.requeue_in_flight(), "requeue_in_flight");
    assert_poisoned(qm.import(import.path()), "import");
    // `flush` and `snapshot` fail too (that they say `Closed` rather than
    // `Poisoned` is the bug shown by `flush_after_a_failed_fsync_reports_poisoned`).
    assert!(qm.flush().is_err(), "flush after a failure");
    assert!(qm.snapshot().is_err(), "snapshot after a failure");
    // Queries answer from memory.
    assert_eq!(qm.get_statistics().pending, 3);
    qm
}

fn faults(sync_base: u64, write_base: u64) -> [(Fault, &'static str); 3] {
    [
        (
            Fault::FailSync {
                index: sync_base + 2,
                errno: EIO,
            },
            "fsync EIO",
        ),
        (
            Fault::FailWrite {
                index: write_base + 2,
                errno: EIO,
            },
            "write EIO",
        ),
        (
            Fault::FailWrite {
                index: write_base + 2,
                errno: ENOSPC,
            },
            "write ENOSPC",
        ),
    ]
}

/// The sync and write counts a fresh open makes (the first segment).
fn open_counts() -> (u64, u64) {
    let dir = scratch();
    let counted = FaultyStorage::new();
    let qm = open(dir.path(), &counted);
    let counts = (counted.sync_count(), counted.write_count());
    qm.close().expect("close");
    counts
}

#[test]
fn a_failed_fsync_or_write_poisons_and_a_power_loss_leaves_exactly_the_acknowledged() {
    let (sync_base, write_base) = open_counts();
    for (fault, name) in faults(sync_base, write_base) {
        let dir = scratch();
        let faulty = FaultyStorage::new();
        let qm = poison_on_third_add(dir.path(), &faulty, fault);
        assert_poisoned(qm.close(), "close");
        faulty.power_loss(0).expect("power loss");
        let reopened = QueueManager::open(dir.path()).expect("reopen");
        assert_eq!(
            pending_ids(&reopened),
            ["m1", "m2"],
            "{name}: exactly the acknowledged adds"
        );
        assert!(
            reopened
                .add_to_pending(movie("m5"))
                .expect("a reopened store takes writes again")
        );
        reopened.close().expect("close");
    }
}

#[test]
fn a_failed_write_leaves_nothing_unacknowledged_on_reopen() {
    let (sync_base, write_base) = open_counts();
    for (fault, name) in faults(sync_base, write_base).into_iter().skip(1) {
        let dir = scratch();
        let faulty = FaultyStorage::new();
        let qm = poison_on_third_add(dir.path(), &faulty, fault);
        drop(qm);
        let reopened = QueueManager::open(dir.path()).expect("reopen");
        assert_eq!(pending_ids(&reopened), ["m1", "m2"], "{name}: nothing unacknowledged");
    }
}

/// After a failed fsync the bytes of the failed batch are still in the
/// file (the page cache): a reopen in the same boot replays them, serving
/// an operation that returned an error — and, as after fsyncgate, those
/// bytes may never reach the disk while later, successfully synced
/// records do.
#[test]
fn a_failed_fsync_leaves_nothing_unacknowledged_on_reopen() {
    let (sync_base, write_base) = open_counts();
    let (fault, _) = faults(sync_base, write_base)[0];
    let dir = scratch();
    let faulty = FaultyStorage::new();
    let qm = poison_on_third_add(dir.path(), &faulty, fault);
    drop(qm);
    let reopened = QueueManager::open(dir.path()).expect("reopen");
    assert_eq!(
        pending_ids(&reopened),
        ["m1", "m2"],
        "m3's add returned an error; it must not appear"
    );
}

/// `flush()` and `snapshot()` after the writer was poisoned say the manager is closed,
/// which it is not, instead of naming the failure.
#[test]
fn flush_after_a_failed_fsync_reports_poisoned() {
    let (sync_base, write_base) = open_counts();
    let (fault, _) = faults(sync_base, write_base)[0];
    let dir = scratch();
    let faulty = FaultyStorage::new();
    let qm = poison_on_third_add(dir.path(), &faulty, fault);
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_poisoned(qm.flush(), "flush");
    assert_poisoned(qm.snapshot(), "snapshot");
}
