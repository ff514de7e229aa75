//! Truncation sweep: a journal cut at any byte offset reopens as exactly
//! the prefix of whole records before the cut, across segment boundaries.
//!
//! How: a reference run of a short workload (added, taken, failed,
//! completed, moved_to_pending events), with a small segment size so the
//! journal spans several segments, records the state after each record. Then, on the real file system, the journal is
//! cut at every byte offset of every segment (later segments removed) and
//! reopened by a writer: the state must equal the reference state after
//! the records wholly before the cut, and the torn segment must be cut
//! back to its last whole record. A cut inside a segment header is a bad
//! header, reported as corruption naming the file (segments are created
//! whole, so it is never a crash's torn tail). The store is put back
//! after each reopen.
//!
//! Through `FaultyStorage` the same cuts are produced the way a crash
//! produces them: the fsync covering record `k` fails and the power goes
//! out keeping `t` of its unsynced bytes, for every record `k` and every
//! `t` from 0 to its framed length: the store must reopen with the records
//! before it (or with it, when it survived whole), the torn bytes cut off.

use crate::support::durability as durability_support;

use std::fs;
use std::sync::Arc;

use durability_support::{
    Expected, Op, Pristine, ReferenceRun, attempt_with, check_outcome, expected_after_cut, layout, open_state,
    parse_segment, quiet_options, real, reset_dir, scratch, segment_paths, short_script,
};
use movie_queue::testing::{Fault, FaultyStorage};

/// Small enough that the workload spans several segments.
const SEGMENT_BYTES_MAX: u64 = 400;

fn reference() -> ReferenceRun {
    let options = quiet_options(real()).segment_bytes_max(SEGMENT_BYTES_MAX);
    ReferenceRun::record(options, &short_script())
}

#[test]
fn a_cut_at_every_byte_offset_reopens_as_the_exact_prefix_real_fs() {
    let reference = reference();
    let segments = layout(reference.dir.path());
    assert!(segments.len() >= 2, "the workload must span at least two segments");
    let work = scratch();
    reset_dir(reference.dir.path(), work.path());
    let pristine = Pristine::capture(work.path());
    let mut cuts = 0;
    for (index, segment) in segments.iter().enumerate() {
        let target = work
            .path()
            .join("journal")
            .join(segment.path.file_name().expect("name"));
        for cut in 0..=segment.len {
            let file = fs::OpenOptions::new().write(true).open(&target).expect("open");
            file.set_len(cut as u64).expect("cut");
            drop(file);
            for later in &segments[index + 1..] {
                fs::remove_file(work.path().join("journal").join(later.path.file_name().expect("name")))
                    .expect("remove a later segment");
            }
            if index + 1 < segments.len() {
                // The journal as it was while this segment was the last.
                let first = movie_queue::testing::parse_segment_name(
                    &segment.path.file_name().expect("name").to_string_lossy(),
                )
                .expect("a segment name");
                movie_queue::testing::write_tail(
                    &movie_queue::testing::RealStorage,
                    &work.path().join("journal"),
                    first,
                )
                .expect("tail marker");
            }
            let outcome = open_state(work.path(), real());
            let len_after = durability_support::written_len(&target);
            pristine.restore(work.path());
            let expected = relocate(expected_after_cut(&segments, index, cut), &segment.path, &target);
            let context = format!("segment {index} cut to {cut} of {} bytes", segment.len);
            check_outcome(&context, &outcome, &expected, &reference.states, len_after);
            cuts += 1;
        }
    }
    eprintln!(
        "{cuts} cuts across {} segments, each reopened correctly",
        segments.len()
    );
}

/// The oracle names files of the reference directory; the sweep edits a copy.
fn relocate(expected: Expected, from: &std::path::Path, to: &std::path::Path) -> Expected {
    match expected {
        Expected::Error { path, offset } if path == from => Expected::Error {
            path: to.to_path_buf(),
            offset,
        },
        other => other,
    }
}

/// A write torn by a power loss during its fsync, at every byte of
/// every record (segment-opening records included): the store reopens with
/// the records before it, zeros written over the torn bytes.
#[test]
fn a_write_torn_by_power_loss_reopens_as_the_prefix_faulty_storage() {
    let ops = short_script();
    let reference = layout(reference().dir.path());
    assert!(reference.len() >= 2, "the workload must span at least two segments");
    let mut runs = 0;
    for record in reference.iter().flat_map(|segment| &segment.records) {
        let frame = (record.end - record.start) as u64;
        // Every byte of every record. Timestamps make a record's length
        // vary by a byte or two between runs: go a little past the
        // reference length.
        for torn in 0..=frame + 2 {
            torn_once(&ops, record.seq, torn);
            runs += 1;
        }
    }
    eprintln!("{runs} torn writes, each reopened as the exact prefix");
}

/// Runs `ops` until the fsync covering record `seq` fails, cuts the power
/// keeping `torn` unsynced bytes, reopens and checks.
fn torn_once(ops: &[Op], seq: u64, torn: u64) {
    // The record's fsync is the operation's first, or its fifth when the
    // record opens a new segment (header fsync, directory fsync, tail
    // marker fsync, directory fsync, record). Whether it does depends on
    // the timestamps' lengths, which vary from run to run near a segment
    // boundary; try both, a few times.
    for extra in [0, 4, 0, 4, 0, 4, 0, 4] {
        let work = scratch();
        let faulty = FaultyStorage::new();
        let options = quiet_options(Arc::new(faulty.clone())).segment_bytes_max(SEGMENT_BYTES_MAX);
        let qm = options.open(work.path()).expect("open");
        let mut armed = false;
        let run = attempt_with(&qm, ops, false, &mut |qm| {
            if !armed && qm.last_seq().0 == seq - 1 {
                // The power goes out as the record's fsync starts, keeping
                // every unsynced byte for now; `power_loss(torn)` below
                // then tears the record at the byte under test.
                faulty.inject(Fault::PowerLossBeforeSync {
                    index: faulty.sync_count() + extra,
                    torn_bytes: u64::MAX,
                });
                armed = true;
            }
        });
        let newest = segment_paths(work.path()).pop().expect("a segment");
        let written = parse_segment(&newest);
        let hit = written
            .records
            .last()
            .filter(|last| last.seq == seq && run.acknowledged == seq - 1);
        let (Some(last), Some((failed_at, _))) = (hit, run.first_error()) else {
            continue; // the failed fsync was not the record's: try the other position
        };
        let context = format!("record {seq} torn after {torn} bytes");
        assert!(
            run.results[failed_at + 1..].iter().all(Result::is_err),
            "{context}: an operation succeeded after the failed fsync"
        );
        let frame = (last.end - last.start) as u64;
        let unsynced = fs::read(&newest).expect("read the segment");
        faulty.power_loss(torn).expect("power loss");
        drop(qm);
        let kept = torn.min(frame);
        // The record went over the zeros its writer laid down: the bytes
        // the power loss kept are the record's first, zeros after them.
        let cut = last.start + usize::try_from(kept).expect("small");
        let after = fs::read(&newest).expect("read the segment");
        assert_eq!(
            (&after[..cut], after[cut..].iter().all(|&byte| byte == 0)),
            (&unsynced[..cut], true),
            "{context}: the power loss kept the wrong bytes (first non-zero byte after them: {:?} of {})",
            after[cut..].iter().position(|&byte| byte != 0).map(|at| at + cut),
            after.len()
        );
        let outcome = open_state(work.path(), Arc::new(FaultyStorage::new()));
        let complete = kept == frame;
        let expected = Expected::Prefix {
            records: if complete { seq } else { seq - 1 },
            cut_to: (!complete).then_some(last.start),
        };
        let len_after = durability_support::written_len(&newest);
        check_outcome(&context, &outcome, &expected, &run.states, len_after);
        return;
    }
    panic!("record {seq}: no fsync failure hit the record's own fsync");
}
