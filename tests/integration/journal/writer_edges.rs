//! The writer's edges: a panic in the writer thread poisons the store and
//! wakes every waiter; snapshot writers take turns; the writer's queue is
//! bounded in bytes as well as events; and no caller waits for room in the
//! queue while holding the state's lock, so readers never stall behind it.
//!
//! How: a storage over the real file system whose fsyncs can be held at a
//! gate (a disk that stalls) and whose writes can panic (`support::gated`).
//! Waiting is bounded by generous timeouts that only catch a hang: a slow
//! machine makes these tests slower, never red.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use movie_queue::{Durability, Error, Movie, QueueManager};

use crate::support::durability::{movie, scratch};
use crate::support::gated::GatedStorage;

/// Long enough that only a hang reaches it.
const HANG: Duration = Duration::from_secs(60);

fn gated_store(dir: &std::path::Path, storage: &GatedStorage) -> movie_queue::Options {
    let _ = dir;
    QueueManager::options()
        .storage(Arc::new(storage.clone()))
        .requeue_in_flight_on_open(false)
        .snapshot_every_events(0)
        .snapshot_every(None)
}

#[test]
fn a_panic_in_the_writer_thread_poisons_the_store_and_wakes_every_waiter() {
    let dir = scratch();
    let storage = GatedStorage::default();
    let qm = Arc::new(gated_store(dir.path(), &storage).open(dir.path()).expect("open"));
    qm.add_to_pending(movie("before")).expect("acknowledged");
    storage.gate.panic_on_write.store(true, Ordering::SeqCst);
    let (done, results) = mpsc::channel();
    let mut waiters = Vec::new();
    for index in 0..4 {
        let qm = Arc::clone(&qm);
        let done = done.clone();
        waiters.push(thread::spawn(move || {
            let outcome = qm.add_to_pending(movie(&format!("waiter {index}")));
            done.send(outcome).expect("report");
        }));
    }
    for _ in 0..4 {
        let outcome = results
            .recv_timeout(HANG)
            .expect("a waiter hung after the writer panicked");
        assert!(
            matches!(&outcome, Err(Error::Poisoned { cause, .. }) if cause.contains("panicked")),
            "{outcome:?}"
        );
    }
    for waiter in waiters {
        waiter.join().expect("a waiter");
    }
    assert!(matches!(qm.add_to_pending(movie("after")), Err(Error::Poisoned { .. })));
    drop(qm);
    let reopened = QueueManager::open(dir.path()).expect("a reopen recovers");
    assert!(reopened.get("before").is_some(), "the acknowledged add survives");
}

#[test]
fn explicit_and_background_snapshots_take_turns() {
    let dir = scratch();
    let qm = Arc::new(
        QueueManager::options()
            .requeue_in_flight_on_open(false)
            .snapshot_every_events(3)
            .snapshot_every(None)
            .open(dir.path())
            .expect("open"),
    );
    let adder = {
        let qm = Arc::clone(&qm);
        thread::spawn(move || {
            for index in 0..600 {
                qm.add_to_pending(movie(&index.to_string())).expect("add");
            }
        })
    };
    let mut failures = Vec::new();
    for _ in 0..60 {
        if let Err(error) = qm.snapshot() {
            failures.push(error.to_string());
        }
    }
    adder.join().expect("adder");
    assert!(
        failures.is_empty(),
        "{} of 60 explicit snapshots failed: {failures:?}",
        failures.len()
    );
    Arc::try_unwrap(qm).expect("one owner").close().expect("close");
    assert!(movie_queue::verify(dir.path()).expect("verify").problems.is_empty());
}

#[test]
fn the_queue_is_bounded_in_bytes_and_readers_never_wait_for_its_room() {
    let dir = scratch();
    let storage = GatedStorage::default();
    let qm = Arc::new(
        gated_store(dir.path(), &storage)
            .durability(Durability::Batched {
                max_delay: Duration::from_millis(1),
            })
            .channel_bytes_max(16 << 10)
            .open(dir.path())
            .expect("open"),
    );
    let _open_on_the_way_out = OpenGate(Arc::clone(&storage.gate));
    storage.gate.close();
    // One event first: the writer takes it alone and stalls at its fsync.
    qm.add_to_pending(movie("first")).expect("queued");
    while storage.gate.waiting.load(Ordering::SeqCst) == 0 {
        thread::yield_now();
    }
    let title = "x".repeat(4 << 10);
    let adder = {
        let qm = Arc::clone(&qm);
        thread::spawn(move || {
            for index in 0..40 {
                qm.add_to_pending(Movie::new(index.to_string(), title.clone(), 2000))
                    .expect("add");
            }
        })
    };
    // The disk stalls: the adder fills the queue, then waits for room.
    thread::sleep(Duration::from_millis(300));
    let (tell, told) = mpsc::channel();
    let reader = Arc::clone(&qm);
    thread::spawn(move || tell.send(reader.get_statistics().pending).expect("report"));
    let pending = told.recv_timeout(HANG).expect("a reader stalled behind the full queue");
    // A batch at the gate and at most 16 KiB (plus one event) queued behind
    // it: a dozen 4 KiB events, not all forty.
    assert!(
        pending <= 6,
        "the queue took {} events of 4 KiB while the disk stalled",
        pending - 1
    );
    storage.gate.open();
    adder.join().expect("the adder finishes once the disk moves");
    assert_eq!(qm.get_pending_count(), 41);
}

/// Opens the gate when dropped, so a failing test never leaves the
/// writer stalled (and the test hung in its close).
struct OpenGate(Arc<crate::support::gated::Gate>);

impl Drop for OpenGate {
    fn drop(&mut self) {
        self.0.open();
    }
}
