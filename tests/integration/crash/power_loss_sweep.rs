//! Power loss after every fsync point of a scripted workload: after
//! reopening, the state holds every acknowledged operation and is exactly
//! the state after some prefix of the attempted operations (nothing
//! half-applied); the reopened store then passes `verify`.
//!
//! How: a workload producing every event kind runs on a `FaultyStorage`
//! with a small segment size (segment rolls) and snapshots (explicit
//! `snapshot()` calls, or background snapshots every few events), and is
//! closed at the end (the final snapshot). A fault-free run counts its
//! fsyncs; then, for every index `k`, a fresh run cuts the power right
//! after fsync `k` (`Fault::PowerLossAfterSync`), keeping no unsynced
//! byte or a few of each file (a torn write). Each run records the live
//! state after every record and which records were acknowledged (an
//! operation returned `Ok` in `Immediate` mode; a `flush()` returned `Ok`
//! in `Batched` mode). The store is reopened with a fresh storage: its
//! state must be one of the states after the acknowledged records or
//! later. A second crash right after each fsync of that reopen (during
//! torn-tail truncation and the start of the writer) must lose nothing
//! either.

use crate::support::durability as durability_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use durability_support::{
    Attempt, Op, assert_prefix_state, attempt, describe, quiet_options, scratch, script, write_import_fixture,
};
use movie_queue::testing::{Fault, FaultyStorage};
use movie_queue::{Durability, Options, QueueState};

const SEGMENT_BYTES_MAX: u64 = 600;

/// How the store is opened for one crash run.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Sequential, explicit `snapshot()` calls: the fsync indexes are the
    /// same in every run.
    ExplicitSnapshots,
    /// A background snapshot every three events, racing the writer.
    BackgroundSnapshots,
    /// `Batched` durability: only `flush()` acknowledges.
    Batched,
    /// Explicit snapshots, and a writer that lays down only 128 bytes of
    /// zeros ahead of its records in segments of 4 KiB: most batches need
    /// room first (zeros written and synced before the records), and the
    /// writer lays more down between batches, so the power goes out during
    /// preallocation too. (Its fsyncs race the caller's: the count varies.)
    Preallocating,
}

fn options(mode: Mode, storage: Arc<FaultyStorage>) -> Options {
    let options = quiet_options(storage).segment_bytes_max(SEGMENT_BYTES_MAX);
    match mode {
        Mode::ExplicitSnapshots => options,
        Mode::BackgroundSnapshots => options.snapshot_every_events(3),
        Mode::Batched => options.durability(Durability::Batched {
            max_delay: Duration::from_millis(2),
        }),
        Mode::Preallocating => options.segment_bytes_max(4096).preallocate_bytes(128),
    }
}

fn workload(mode: Mode, import: &Path) -> Vec<Op> {
    let mut ops = script(import, matches!(mode, Mode::ExplicitSnapshots | Mode::Preallocating));
    if matches!(mode, Mode::Batched) {
        // Acknowledge every few operations.
        ops = ops
            .chunks(4)
            .flat_map(|chunk| chunk.iter().cloned().chain(std::iter::once(Op::Flush)))
            .collect();
    }
    ops
}

/// One run: the workload (and a close) on a storage that may crash.
struct Run {
    attempt: Attempt,
    opened: bool,
}

fn run_once(mode: Mode, ops: &[Op], dir: &Path, faulty: &FaultyStorage) -> Run {
    let Ok(qm) = options(mode, Arc::new(faulty.clone())).open(dir) else {
        return Run {
            attempt: Attempt {
                states: vec![QueueState::new()],
                acknowledged: 0,
                results: Vec::new(),
            },
            opened: false,
        };
    };
    let batched = matches!(mode, Mode::Batched);
    let mut attempt = attempt(&qm, ops, batched);
    let last = qm.last_seq().0;
    if qm.close().is_ok() {
        // A clean close flushes: everything is durable.
        attempt.acknowledged = last;
    }
    Run { attempt, opened: true }
}

/// The fsyncs a fault-free run makes (open, workload, close).
fn fault_free_syncs(mode: Mode, ops: &[Op]) -> u64 {
    let dir = scratch();
    let faulty = FaultyStorage::new();
    let run = run_once(mode, ops, dir.path(), &faulty);
    assert!(
        run.opened && run.attempt.results.iter().all(Result::is_ok),
        "fault-free run failed"
    );
    faulty.sync_count()
}

/// Reopens after the crash and checks the state; then closes and verifies.
fn check_recovery(context: &str, dir: &Path, run: &Run) {
    let reopened = quiet_options(Arc::new(FaultyStorage::new()))
        .open(dir)
        .unwrap_or_else(|error| panic!("{context}: reopening after the crash failed: {error}"));
    let state = reopened.state();
    assert_prefix_state(context, &state, &run.attempt.states, acknowledged(run));
    reopened
        .close()
        .unwrap_or_else(|error| panic!("{context}: close after recovery failed: {error}"));
    let report = movie_queue::verify(dir).unwrap_or_else(|error| panic!("{context}: verify failed: {error}"));
    assert!(
        report.problems.is_empty(),
        "{context}: verify found {:?}",
        report.problems
    );
}

fn acknowledged(run: &Run) -> usize {
    usize::try_from(run.attempt.acknowledged).expect("small")
}

/// After the first failed mutation, every later one fails too (the
/// journal is poisoned, or the machine is off).
fn assert_poisoned_after_first_failure(context: &str, ops: &[Op], run: &Run) {
    let first_failed_mutation = ops
        .iter()
        .zip(&run.attempt.results)
        .position(|(op, result)| op.is_mutation() && result.is_err());
    if let Some(first) = first_failed_mutation {
        for (op, result) in ops.iter().zip(&run.attempt.results).skip(first + 1) {
            assert!(
                !op.is_mutation() || result.is_err(),
                "{context}: {op:?} succeeded after a failed mutation"
            );
        }
    }
}

fn sweep(mode: Mode, torn_values: &[u64]) {
    let import = scratch();
    write_import_fixture(import.path());
    let ops = workload(mode, import.path());
    let total = fault_free_syncs(mode, &ops);
    // Background snapshots make the count vary a little between runs.
    let slack = if matches!(mode, Mode::ExplicitSnapshots) { 0 } else { 4 };
    let mut crashes = 0;
    for &torn in torn_values {
        for index in 0..total + slack {
            let dir = scratch();
            let faulty = FaultyStorage::new();
            faulty.inject(Fault::PowerLossAfterSync {
                index,
                torn_bytes: torn,
            });
            let run = run_once(mode, &ops, dir.path(), &faulty);
            let context = format!("{mode:?}: power loss after fsync {index} of {total}, {torn} torn bytes");
            if matches!(mode, Mode::ExplicitSnapshots) {
                assert!(faulty.has_crashed(), "{context}: the power never went out");
            }
            crashes += u64::from(faulty.has_crashed());
            assert_poisoned_after_first_failure(&context, &ops, &run);
            check_recovery(&context, dir.path(), &run);
        }
    }
    eprintln!("{mode:?}: {crashes} crashes over {total} fsync points, every acknowledged operation kept");
}

#[test]
fn power_loss_after_every_fsync_keeps_every_acknowledged_operation() {
    sweep(Mode::ExplicitSnapshots, &[0, 7]);
}

#[test]
fn power_loss_during_background_snapshots_keeps_every_acknowledged_operation() {
    sweep(Mode::BackgroundSnapshots, &[0, 40]);
}

#[test]
fn power_loss_while_laying_zeros_down_keeps_every_acknowledged_operation() {
    sweep(Mode::Preallocating, &[0, 7, 100]);
}

#[test]
fn power_loss_in_batched_mode_keeps_everything_flushed() {
    sweep(Mode::Batched, &[0, 13]);
}

/// A failed fsync at every index: the failing call and every later
/// mutation return errors, nothing more is acknowledged, and after a power
/// loss (which drops what that fsync did not cover) the store reopens
/// with exactly the acknowledged records.
#[test]
fn a_failed_fsync_at_every_index_poisons_and_acknowledges_nothing() {
    let import = scratch();
    write_import_fixture(import.path());
    let mode = Mode::ExplicitSnapshots;
    let ops = workload(mode, import.path());
    let total = fault_free_syncs(mode, &ops);
    for torn in [0, 5] {
        for index in 0..total {
            let dir = scratch();
            let faulty = FaultyStorage::new();
            faulty.inject(Fault::FailSync { index, errno: 5 });
            let run = run_once(mode, &ops, dir.path(), &faulty);
            let context = format!("fsync {index} of {total} fails, then a power loss keeping {torn} bytes");
            let mutation_failed = ops
                .iter()
                .zip(&run.attempt.results)
                .find(|(op, result)| op.is_mutation() && result.is_err());
            if let Some((op, Err(error))) = mutation_failed {
                assert!(
                    matches!(error, movie_queue::Error::Poisoned { .. }),
                    "{context}: {op:?} failed with {error}, not Poisoned"
                );
            }
            assert_poisoned_after_first_failure(&context, &ops, &run);
            faulty.power_loss(torn).expect("power loss");
            let reopened = quiet_options(Arc::new(FaultyStorage::new()))
                .open(dir.path())
                .unwrap_or_else(|error| panic!("{context}: reopen failed: {error}"));
            let state = reopened.state();
            let want = &run.attempt.states[acknowledged(&run)];
            let unacknowledged_survivor = torn > 0 && run.attempt.states.len() > acknowledged(&run) + 1;
            if unacknowledged_survivor {
                // A torn write may leave the unacknowledged record whole.
                assert_prefix_state(&context, &state, &run.attempt.states, acknowledged(&run));
            } else {
                assert!(
                    &state == want,
                    "{context}: reopened {} instead of exactly the acknowledged {}",
                    describe(&state),
                    describe(want)
                );
            }
            reopened.close().expect("close");
        }
    }
}

/// A crash during recovery: the first crash leaves a torn tail (the fsync
/// of a record fails, the power goes out keeping part of it); the reopen
/// then loses power right after each of its own fsyncs (the torn-tail
/// truncation, a new segment, the final snapshot); a third open must
/// still find every acknowledged record.
#[test]
fn a_crash_during_recovery_loses_nothing() {
    let import = scratch();
    write_import_fixture(import.path());
    let mode = Mode::ExplicitSnapshots;
    let ops = workload(mode, import.path());
    for fail_at in [4, 9, 15] {
        for torn in [3, 30] {
            let dir = scratch();
            let faulty = FaultyStorage::new();
            faulty.inject(Fault::FailSync {
                index: fail_at,
                errno: 5,
            });
            let run = run_once(mode, &ops, dir.path(), &faulty);
            faulty.power_loss(torn).expect("power loss");
            let recovery_syncs = {
                let probe = scratch();
                durability_support::reset_dir(dir.path(), probe.path());
                let counter = FaultyStorage::new();
                let qm = quiet_options(Arc::new(counter.clone()))
                    .open(probe.path())
                    .expect("open");
                qm.close().expect("close");
                counter.sync_count()
            };
            for second in 0..recovery_syncs {
                let copy = scratch();
                durability_support::reset_dir(dir.path(), copy.path());
                let crashing = FaultyStorage::new();
                crashing.inject(Fault::PowerLossAfterSync {
                    index: second,
                    torn_bytes: torn,
                });
                if let Ok(qm) = quiet_options(Arc::new(crashing.clone())).open(copy.path()) {
                    drop(qm.close());
                }
                assert!(crashing.has_crashed(), "the power never went out in recovery");
                let context = format!("fsync {fail_at} failed, {torn} torn bytes, crash after recovery fsync {second}");
                let state = quiet_options(Arc::new(FaultyStorage::new()))
                    .open(copy.path())
                    .map(|qm| qm.state())
                    .unwrap_or_else(|error| panic!("{context}: third open failed: {error}"));
                assert_prefix_state(&context, &state, &run.attempt.states, acknowledged(&run));
            }
        }
    }
}
