//! Zeroed-sector sweep: a 512-byte sector of a segment read back as zeros
//! (a lost write, a bad block remapped) is detected or, at the very end of
//! the journal, cut as a torn tail; never a silently different state.
//!
//! How: a reference run writes some seventy records into three or four segments and
//! records the state after each. Each 512-byte sector of each segment (in
//! the file's own offsets, as a disk sees it) is zeroed in turn and the
//! store reopened; the outcome is checked against the damage oracle of
//! checklist item 4 (`durability_support::expected_after_damage`), where
//! the damage is the span of bytes the zeroing actually changed. On the
//! real file system the sector is zeroed in the file and a writer reopens
//! it (the cut-back is checked); through `FaultyStorage::corrupt_reads`
//! the same sector reads as zeros to a read-only open and to `verify`,
//! which must reject every one — unless the zeroing leaves only zeros
//! after the records kept (`durability_support::settle`): the zeros a
//! preallocating writer lays down after its records are the end of the
//! log, so a zeroed end of the journal reads as a shorter journal, as a cut
//! at a record boundary does. Zero-filled space after the records, however
//! long, is the end of the log in every segment.

use crate::support::durability as durability_support;

use std::fs;
use std::sync::Arc;

use durability_support::{
    Expected, Op, Pristine, ReferenceRun, SegmentLayout, check_outcome, check_verdict, expected_after_damage, layout,
    open_read_only_state, open_state, quiet_options, real, reset_dir, scratch, settle,
};
use movie_queue::testing::FaultyStorage;
use movie_queue::testing::verify_with;

const SECTOR_BYTES: usize = 512;
/// Three or four segments of four to five sectors each.
const SEGMENT_BYTES_MAX: u64 = 2_400;

fn reference() -> ReferenceRun {
    let ids: Vec<&'static str> = (0..30).map(|n| &*format!("m{n}").leak()).collect();
    let mut ops: Vec<Op> = ids.iter().map(|id| Op::Add(id)).collect();
    for (index, id) in ids.iter().take(20).enumerate() {
        ops.push(Op::Take);
        ops.push(if index % 3 == 0 {
            Op::Fail(id, 60.0)
        } else {
            Op::Complete(id)
        });
    }
    let run = ReferenceRun::record(quiet_options(real()).segment_bytes_max(SEGMENT_BYTES_MAX), &ops);
    let segments = layout(run.dir.path());
    assert!(segments.len() >= 3, "the sweep wants three segments or more");
    run
}

/// One 512-byte sector of a segment (the last may be shorter).
struct Sector {
    start: usize,
    end: usize,
    /// The span of bytes zeroing it changes (`None`: all zeros already).
    changed: Option<(usize, usize)>,
}

fn sectors(bytes: &[u8]) -> Vec<Sector> {
    (0..bytes.len().div_ceil(SECTOR_BYTES))
        .map(|sector| {
            let start = sector * SECTOR_BYTES;
            let end = (start + SECTOR_BYTES).min(bytes.len());
            let changed = bytes[start..end].iter().position(|&byte| byte != 0).map(|first| {
                let last = bytes[start..end]
                    .iter()
                    .rposition(|&byte| byte != 0)
                    .expect("a non-zero byte");
                (start + first, start + last + 1)
            });
            Sector { start, end, changed }
        })
        .collect()
}

fn expected_for(segments: &[SegmentLayout], index: usize, changed: (usize, usize)) -> Expected {
    expected_after_damage(segments, index, changed.0, changed.1)
}

#[test]
fn every_zeroed_sector_is_detected_or_cut_as_a_torn_tail_real_fs() {
    let reference = reference();
    let segments = layout(reference.dir.path());
    let work = scratch();
    reset_dir(reference.dir.path(), work.path());
    let pristine = Pristine::capture(work.path());
    let mut zeroed = 0;
    for (index, segment) in segments.iter().enumerate() {
        let bytes = fs::read(&segment.path).expect("read");
        let target = work
            .path()
            .join("journal")
            .join(segment.path.file_name().expect("name"));
        for Sector { start, end, changed } in sectors(&bytes) {
            // The zeros a writer laid down after the records: zeroing them changes nothing.
            let Some(changed) = changed else { continue };
            let mut damaged = bytes.clone();
            damaged[start..end].fill(0);
            fs::write(&target, &damaged).expect("write");
            let outcome = open_state(work.path(), real());
            let len_after = durability_support::written_len(&target);
            pristine.restore(work.path());
            let expected = match settle(expected_for(&segments, index, changed), &segments, index, &damaged) {
                Expected::Error { offset, .. } => Expected::Error {
                    path: target.clone(),
                    offset,
                },
                prefix @ Expected::Prefix { .. } => prefix,
            };
            let context = format!("segment {index}, sector at {start}..{end}");
            check_outcome(&context, &outcome, &expected, &reference.states, len_after);
            zeroed += 1;
        }
    }
    eprintln!("{zeroed} zeroed sectors, every one detected or cut as a torn tail");
}

#[test]
fn every_zeroed_sector_is_detected_by_verify_and_never_served_faulty_storage() {
    let reference = reference();
    let dir = reference.dir.path();
    let segments = layout(dir);
    let mut zeroed = 0;
    for (index, segment) in segments.iter().enumerate() {
        let bytes = fs::read(&segment.path).expect("read");
        for Sector { start, end, changed } in sectors(&bytes) {
            let Some(changed) = changed else { continue };
            let mut damaged = bytes.clone();
            damaged[start..end].fill(0);
            let faulty = FaultyStorage::new();
            for (offset, &byte) in bytes.iter().enumerate().take(end).skip(start) {
                // XOR with itself: the byte reads as zero.
                faulty.corrupt_reads(&segment.path, offset as u64, byte);
            }
            let context = format!("segment {index}, sector at {start}..{end}");
            let outcome = open_read_only_state(dir, Arc::new(faulty.clone()));
            let expected = settle(expected_for(&segments, index, changed), &segments, index, &damaged);
            check_outcome(&context, &outcome, &expected, &reference.states, None);
            let verdict = verify_with(&faulty, dir);
            check_verdict(&context, &verdict, &expected, reference.records());
            zeroed += 1;
        }
    }
    eprintln!("{zeroed} zeroed sectors: verify passes exactly when an open succeeds");
}

#[test]
fn zero_filled_space_after_the_records_is_the_end_of_the_log_in_every_segment() {
    // Zeros after a segment's records are what a preallocating writer lays
    // down: in the last segment the log ends there and the next record goes
    // over them; in a sealed one the next segment goes on. However many
    // there are (more than the writer laid down, or fewer: a half-zeroed
    // segment), nothing is lost, nothing is set aside and verify is clean.
    let reference = reference();
    let segments = layout(reference.dir.path());
    let work = scratch();
    for (index, segment) in segments.iter().enumerate() {
        for len in [
            segment.end,
            segment.end + 1,
            (segment.end + segment.len) / 2,
            segment.len + 4_096,
        ] {
            reset_dir(reference.dir.path(), work.path());
            let target = work
                .path()
                .join("journal")
                .join(segment.path.file_name().expect("name"));
            let file = fs::OpenOptions::new().write(true).open(&target).expect("open");
            file.set_len(len as u64).expect("cut or extend the zeros");
            drop(file);
            let context = format!("segment {index} with zeros to {len} (records end at {})", segment.end);
            let report = movie_queue::verify(work.path()).expect("verify");
            assert!(report.problems.is_empty(), "{context}: {:?}", report.problems);
            let outcome = open_state(work.path(), real());
            let expected = Expected::Prefix {
                records: reference.records(),
                cut_to: None,
            };
            check_outcome(&context, &outcome, &expected, &reference.states, None);
            assert_eq!(
                durability_support::written_len(&target),
                Some(segment.end),
                "{context}: the records stay as they were"
            );
        }
    }
}
