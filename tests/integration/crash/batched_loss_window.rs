//! `Batched { max_delay }`: a mutating call returns once its event is
//! queued; the loss window is the events not yet fsynced — at most the
//! last `max_delay` plus one write and fsync — and what a crash loses is
//! always a suffix (never a hole); `flush()` closes the window.
//!
//! How: over a `FaultyStorage`, (1) with a long `max_delay`, movies are
//! added, flushed, more are added and the power goes out at once: the
//! reopened store holds a prefix of the adds that includes every flushed
//! one; (2) with a short `max_delay`, one add is left alone, with no
//! flush: the writer must fsync it by itself (its fsync is seen through
//! the storage's counter well within a generous bound), after which a
//! power loss keeps it.

use crate::support::durability as durability_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use durability_support::{Op, assert_prefix_state, attempt, quiet_options, scratch};
use movie_queue::Durability;
use movie_queue::testing::FaultyStorage;

#[test]
fn a_crash_in_batched_mode_loses_only_unflushed_events_and_never_a_hole() {
    for torn_bytes in [0, 9, 1_000] {
        let dir = scratch();
        let faulty = FaultyStorage::new();
        let qm = quiet_options(Arc::new(faulty.clone()))
            .durability(Durability::Batched {
                max_delay: Duration::from_secs(10),
            })
            .open(dir.path())
            .expect("open");
        let ops = [
            Op::Add("a"),
            Op::Add("b"),
            Op::Flush,
            Op::Add("c"),
            Op::Take,
            Op::Add("d"),
        ];
        let run = attempt(&qm, &ops, true);
        assert!(run.results.iter().all(Result::is_ok), "batched calls return at once");
        assert_eq!(run.acknowledged, 2, "the flush acknowledged a and b");
        faulty.power_loss(torn_bytes).expect("power loss");
        drop(qm);
        let state = durability_support::open_state(dir.path(), Arc::new(FaultyStorage::new())).expect("reopen");
        assert_prefix_state(&format!("{torn_bytes} torn bytes"), &state, &run.states, 2);
    }
}

#[test]
fn the_batched_writer_fsyncs_on_its_own_within_its_delay() {
    let dir = scratch();
    let faulty = FaultyStorage::new();
    let max_delay = Duration::from_millis(20);
    let qm = quiet_options(Arc::new(faulty.clone()))
        .durability(Durability::Batched { max_delay })
        .open(dir.path())
        .expect("open");
    let syncs_before = faulty.sync_count();
    let started = Instant::now();
    assert!(qm.add_to_pending(durability_support::movie("a")).expect("add"));
    while faulty.sync_count() == syncs_before {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no fsync within 5 s of a batched add (max_delay {max_delay:?})"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = started.elapsed();
    eprintln!("the batched add was fsynced {took:?} after the call (max_delay {max_delay:?})");
    // The storage counts an fsync and marks the bytes durable under one
    // lock, so once the count moved the add is on disk.
    faulty.power_loss(0).expect("power loss");
    drop(qm);
    let reopened = movie_queue::QueueManager::open(dir.path()).expect("reopen");
    assert_eq!(reopened.get_pending_count(), 1, "the add is durable without any flush");
}
