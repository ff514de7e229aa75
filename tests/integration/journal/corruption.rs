//! Damage that is not a torn tail is an error naming the file and the byte
//! offset, never skipped, never truncated: a flipped bit in a middle
//! record, a sequence gap or repeat (inside a segment, across segments,
//! in the very last record), a record copied from another segment, damage
//! in a segment that is not the last, and events that pass the CRC but are
//! not valid events.
//!
//! How: segments are crafted with the format's own encoder
//! (`record::encode_segment_header`, `record::encode_record`), damaged in
//! a known place, and replayed (`recovery::replay`) or opened by a
//! `QueueManager`; the error's variant, file and offset are checked, and
//! the damaged files are left untouched.

use crate::support::durability as durability_support;

use std::fs;
use std::path::Path;

use durability_support::{added_payload, added_records, journal_dir, replay_seqs, scratch, write_segment};
use movie_queue::testing::{RECORD_HEADER_BYTES, encode_record, encode_segment_header};
use movie_queue::{Error, QueueManager, Seq};

fn open_error(dir: &Path) -> Error {
    match QueueManager::open(dir) {
        Ok(qm) => panic!("a damaged journal opened with {:?}", qm.get_statistics()),
        Err(error) => error,
    }
}

fn assert_untouched(path: &Path, bytes: &[u8]) {
    assert_eq!(fs::read(path).expect("read"), bytes, "{} was changed", path.display());
}

#[test]
fn a_flipped_bit_in_a_middle_record_is_a_checksum_mismatch_naming_file_and_offset() {
    let dir = scratch();
    let journal = journal_dir(dir.path());
    let (path, starts) = write_segment(&journal, 1, &added_records(1, 5));
    let mut bytes = fs::read(&path).expect("read");
    let record = usize::try_from(starts[2]).expect("small");
    let payload_byte = record + RECORD_HEADER_BYTES + 10;
    bytes[payload_byte] ^= 0x04;
    fs::write(&path, &bytes).expect("write");

    let stored = u32::from_le_bytes(bytes[record + 4..record + 8].try_into().expect("4 bytes"));
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&1_u64.to_le_bytes());
    hasher.update(&bytes[record..record + 4]);
    hasher.update(&bytes[record + 8..record + 16]);
    let length = u32::from_le_bytes(bytes[record..record + 4].try_into().expect("4 bytes")) as usize;
    hasher.update(&bytes[record + RECORD_HEADER_BYTES..record + RECORD_HEADER_BYTES + length]);
    let computed = hasher.finalize();

    for error in [
        replay_seqs(&journal).expect_err("a writer's replay"),
        open_error(dir.path()),
        movie_queue::verify(dir.path()).expect_err("verify"),
    ] {
        match &error {
            Error::ChecksumMismatch {
                path: named,
                offset,
                expected,
                found,
            } => {
                assert_eq!(named, &path);
                assert_eq!(*offset, starts[2], "the offset of the damaged record's header");
                assert_eq!(*expected, stored, "the CRC stored in the record");
                assert_eq!(*found, computed, "the CRC of the bytes as they are");
            }
            other => panic!("expected a checksum mismatch, got {other}"),
        }
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()) && message.contains(&starts[2].to_string()));
    }
    assert_untouched(&path, &bytes);
}

#[test]
fn damage_in_a_segment_that_is_not_the_last_is_an_error_even_in_its_last_record() {
    let dir = scratch();
    let journal = journal_dir(dir.path());
    let (first, starts) = write_segment(&journal, 1, &added_records(1, 3));
    write_segment(&journal, 4, &added_records(4, 5));
    let mut bytes = fs::read(&first).expect("read");
    let last = bytes.len() - 3;
    bytes[last] ^= 0x01;
    fs::write(&first, &bytes).expect("write");
    let error = replay_seqs(&journal).expect_err("not a torn tail");
    assert!(matches!(error, Error::ChecksumMismatch { .. }), "{error}");
    assert_eq!(error.place(), Some((first.as_path(), starts[2])));
    assert_untouched(&first, &bytes);

    // Cut short instead of flipped: still not a torn tail.
    fs::write(&first, &bytes[..bytes.len() - 5]).expect("cut");
    let error = open_error(dir.path());
    assert!(matches!(error, Error::TruncatedRecord { .. }), "{error}");
    assert_eq!(error.place(), Some((first.as_path(), starts[2])));
}

#[test]
fn a_sequence_gap_inside_a_segment_is_detected_even_in_the_last_record() {
    let dir = scratch();
    let journal = journal_dir(dir.path());
    let records = vec![
        (1, added_payload("a", 1)),
        (2, added_payload("b", 2)),
        (4, added_payload("c", 4)),
    ];
    let (path, starts) = write_segment(&journal, 1, &records);
    let error = replay_seqs(&journal).expect_err("a gap");
    match &error {
        Error::SequenceGap {
            path: named,
            offset,
            expected,
            found,
        } => {
            assert_eq!((named, *offset, *expected, *found), (&path, starts[2], 3, 4));
        }
        other => panic!("expected a sequence gap, got {other}"),
    }
    assert!(matches!(open_error(dir.path()), Error::SequenceGap { .. }));
}

#[test]
fn a_repeated_sequence_number_is_detected() {
    let dir = scratch();
    let journal = journal_dir(dir.path());
    let records = vec![
        (1, added_payload("a", 1)),
        (2, added_payload("b", 2)),
        (2, added_payload("b", 2)),
    ];
    let (path, starts) = write_segment(&journal, 1, &records);
    let error = replay_seqs(&journal).expect_err("a repeat");
    assert!(
        matches!(
            error,
            Error::SequenceGap {
                expected: 3,
                found: 2,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.place(), Some((path.as_path(), starts[2])));
}

#[test]
fn a_sequence_gap_across_segments_is_detected_at_the_later_segment_header() {
    let dir = scratch();
    let journal = journal_dir(dir.path());
    write_segment(&journal, 1, &added_records(1, 2));
    let (second, _) = write_segment(&journal, 4, &added_records(4, 5));
    let error = replay_seqs(&journal).expect_err("a gap across segments");
    match &error {
        Error::SequenceGap {
            path, expected, found, ..
        } => assert_eq!((path, *expected, *found), (&second, 3, 4)),
        other => panic!("expected a sequence gap, got {other}"),
    }
    assert!(error.place().is_some_and(|(_, offset)| offset < 32), "{error}");
    assert!(matches!(open_error(dir.path()), Error::SequenceGap { .. }));
    assert!(matches!(
        movie_queue::verify(dir.path()),
        Err(Error::SequenceGap { .. })
    ));
}

#[test]
fn a_segment_whose_name_and_header_disagree_is_corrupt() {
    let dir = scratch();
    let journal = journal_dir(dir.path());
    write_segment(&journal, 1, &added_records(1, 2));
    let (renamed, _) = write_segment(&journal, 3, &added_records(3, 4));
    let impostor = journal.join(movie_queue::testing::segment_name(Seq(5)));
    fs::rename(&renamed, &impostor).expect("rename");
    let error = replay_seqs(&journal).expect_err("name and header disagree");
    assert!(error.is_corruption(), "{error}");
    assert_eq!(error.place().map(|(path, _)| path), Some(impostor.as_path()));
}

/// Checklist item 3: a record names the segment it belongs to (its CRC is
/// seeded with the segment's first sequence number), so valid bytes from
/// another segment are never taken for a record of this one.
#[test]
fn a_record_copied_from_another_segment_is_not_accepted() {
    let dir = scratch();
    let journal = journal_dir(dir.path());
    write_segment(&journal, 1, &added_records(1, 2));
    let mut bytes = encode_segment_header(Seq(3)).to_vec();
    encode_record(&mut bytes, Seq(3), Seq(3), &added_payload("c", 3));
    let stale_start = bytes.len() as u64;
    // Record 4 as a segment starting at 1 would have framed it.
    encode_record(&mut bytes, Seq(1), Seq(4), &added_payload("d", 4));
    encode_record(&mut bytes, Seq(3), Seq(5), &added_payload("e", 5));
    let second = journal.join(movie_queue::testing::segment_name(Seq(3)));
    fs::write(&second, &bytes).expect("write");
    let error = replay_seqs(&journal).expect_err("a stale record");
    assert!(matches!(error, Error::ChecksumMismatch { .. }), "{error}");
    assert_eq!(error.place(), Some((second.as_path(), stale_start)));
    assert_untouched(&second, &bytes);
}

#[test]
fn a_valid_checksum_over_an_invalid_event_is_corruption_at_its_record() {
    let dir = scratch();
    let journal = journal_dir(dir.path());
    let unknown_version = br#"{"v":3,"ts":1.0,"event":{"taken":{"id":"1"}}}"#.to_vec();
    let mut records = added_records(1, 2);
    records.push((3, unknown_version));
    records.push((4, added_payload("d", 4)));
    let (path, starts) = write_segment(&journal, 1, &records);
    let error = open_error(dir.path());
    assert!(matches!(error, Error::UnsupportedVersion { version: 3, .. }), "{error}");
    assert_eq!(error.place(), Some((path.as_path(), starts[2])));

    for payload in [
        &br#"{"v":1,"ts":1.0,"event":{"exploded":{"id":"1"}}}"#[..],
        br#"not json at all"#,
        br#"{"v":1,"ts":1.0,"event":{"taken":{"id":"nobody"}}}"#,
    ] {
        let mut records = added_records(1, 2);
        records.push((3, payload.to_vec()));
        let (path, starts) = write_segment(&journal, 1, &records);
        let error = open_error(dir.path());
        assert!(matches!(error, Error::Corrupt { .. }), "{error}");
        assert_eq!(error.place(), Some((path.as_path(), starts[2])), "{error}");
    }
}
