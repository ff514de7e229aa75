//! Bit-flip sweep: every single-bit flip of a small journal is detected,
//! and none yields a silently different state.
//!
//! How: a reference run writes four records into two segments and records
//! the state after each. Then every bit of every segment is flipped, one
//! at a time, and the outcome is checked against the oracle of checklist
//! item 4 (`durability_support::expected_after_damage`):
//!
//! * a flip in a segment header is a corruption error naming the file;
//! * a flip in a record with an intact record after it, or in a segment
//!   that is not the last, is a corruption error naming the file and the
//!   damaged record's byte offset;
//! * a flip in the last record of the last segment is a torn tail: the
//!   reopened state is the prefix before it, and a writer cuts it off.
//!
//! On the real file system the flipped copy is reopened by a writer (the
//! cut-back is checked). Through `FaultyStorage::corrupt_reads` the same
//! flips are seen by a read-only open (never a different state) and by
//! `verify`, which must reject every one of them.

use crate::support::durability as durability_support;

use std::fs;
use std::path::Path;
use std::sync::Arc;

use durability_support::{
    Expected, Op, Pristine, ReferenceRun, SegmentLayout, check_outcome, check_verdict, expected_after_damage, layout,
    open_read_only_state, open_state, quiet_options, real, reset_dir, scratch,
};
use movie_queue::testing::FaultyStorage;
use movie_queue::testing::verify_with;

/// Two records per segment (an `added` record is about 117 bytes, a
/// `taken` one about 76, with 32 bytes of segment header).
const SEGMENT_BYTES_MAX: u64 = 240;

fn reference() -> ReferenceRun {
    let ops = [Op::Add("a"), Op::Take, Op::Add("b"), Op::Take];
    ReferenceRun::record(quiet_options(real()).segment_bytes_max(SEGMENT_BYTES_MAX), &ops)
}

fn in_work_dir(expected: Expected, reference: &Path, work: &Path) -> Expected {
    match expected {
        Expected::Error { path, offset } => Expected::Error {
            path: work.join(path.strip_prefix(reference).expect("inside the reference store")),
            offset,
        },
        prefix @ Expected::Prefix { .. } => prefix,
    }
}

fn segments_of(reference: &ReferenceRun) -> Vec<SegmentLayout> {
    let segments = layout(reference.dir.path());
    assert_eq!(segments.len(), 2, "the sweep wants two segments");
    assert!(
        segments.iter().all(|segment| segment.records.len() == 2),
        "two records each"
    );
    segments
}

/// Header bytes the sweeps would excuse from detection: none. (The reserved
/// word at bytes 28..32, outside the header CRC, must be zero; that used to
/// be unchecked, see `reserved_header_word_flip_is_detected`.)
const UNCHECKED_HEADER_BYTES: std::ops::Range<usize> = 0..0;
/// The segment header's reserved word, outside the header CRC.
const RESERVED_HEADER_BYTES: std::ops::Range<usize> = 28..32;

fn expected_for_flip(segments: &[SegmentLayout], index: usize, byte: usize, reference: &ReferenceRun) -> Expected {
    if UNCHECKED_HEADER_BYTES.contains(&byte) {
        return Expected::Prefix {
            records: reference.records(),
            cut_to: None,
        };
    }
    expected_after_damage(segments, index, byte, byte + 1)
}

#[test]
fn reserved_header_word_flip_is_detected() {
    let reference = reference();
    let segments = segments_of(&reference);
    for segment in &segments {
        for byte in RESERVED_HEADER_BYTES {
            let faulty = FaultyStorage::new();
            faulty.corrupt_reads(&segment.path, byte as u64, 1);
            let verdict = verify_with(&faulty, reference.dir.path());
            assert!(
                verdict.is_err(),
                "{}: a flip of header byte {byte} passed verify",
                segment.path.display()
            );
            let outcome = open_read_only_state(reference.dir.path(), Arc::new(faulty));
            assert!(
                outcome.is_err(),
                "{}: a flip of header byte {byte} opened",
                segment.path.display()
            );
        }
    }
}

#[test]
fn every_bit_flip_is_detected_or_cut_as_a_torn_tail_real_fs() {
    let reference = reference();
    let segments = segments_of(&reference);
    let work = scratch();
    reset_dir(reference.dir.path(), work.path());
    let pristine_store = Pristine::capture(work.path());
    let mut flips = 0;
    for (index, segment) in segments.iter().enumerate() {
        let pristine = fs::read(&segment.path).expect("read");
        let target = work
            .path()
            .join("journal")
            .join(segment.path.file_name().expect("name"));
        for byte in 0..segment.len {
            for bit in 0..8 {
                let mut bytes = pristine.clone();
                bytes[byte] ^= 1 << bit;
                fs::write(&target, &bytes).expect("write the flipped segment");
                let outcome = open_state(work.path(), real());
                let len_after = durability_support::written_len(&target);
                pristine_store.restore(work.path());
                let expected = expected_for_flip(&segments, index, byte, &reference);
                let expected = in_work_dir(expected, reference.dir.path(), work.path());
                let context = format!("segment {index}, byte {byte}, bit {bit}");
                check_outcome(&context, &outcome, &expected, &reference.states, len_after);
                flips += 1;
            }
        }
    }
    let untouched = open_state(work.path(), real()).expect("the restored store opens");
    assert!(
        &untouched == reference.states.last().expect("states"),
        "the sweep left the store changed"
    );
    eprintln!("{flips} bit flips, every one detected or cut as a torn tail");
}

#[test]
fn every_bit_flip_is_detected_by_verify_and_never_served_faulty_storage() {
    let reference = reference();
    let segments = segments_of(&reference);
    let dir = reference.dir.path();
    let mut flips = 0;
    for (index, segment) in segments.iter().enumerate() {
        for byte in 0..segment.len {
            for bit in 0..8 {
                let faulty = FaultyStorage::new();
                faulty.corrupt_reads(&segment.path, byte as u64, 1 << bit);
                let context = format!("segment {index}, byte {byte}, bit {bit}");
                let outcome = open_read_only_state(dir, Arc::new(faulty.clone()));
                let expected = expected_for_flip(&segments, index, byte, &reference);
                check_outcome(&context, &outcome, &expected, &reference.states, None);
                let verdict = verify_with(&faulty, dir);
                check_verdict(&context, &verdict, &expected, reference.records());
                flips += 1;
            }
        }
    }
    eprintln!("{flips} bit flips: verify passes exactly when an open succeeds");
}
