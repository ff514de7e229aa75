//! Damage and repair through the binary. A byte inside the third record of
//! a journal segment with five records is flipped. With the snapshot the
//! last close wrote, the store still opens with all five (`verify` passes,
//! naming the damage as history only) and `repair` records the snapshot's
//! state as the compaction base. Without it, `verify` (and every command
//! that opens the store) exits 1 naming the segment file and the record's
//! byte offset with a hint to repair; following the hint sets the damaged
//! tail aside and `verify` then passes, with both records before the damage
//! still in `log --json`. Record offsets come from docs/FORMAT.md: a 32-byte
//! segment header, then records of a 16-byte header (length first, u32 LE)
//! and the payload.

use crate::support::cli as cli_support;

use std::path::Path;

use cli_support::{add, events, mq};

const SEGMENT_HEADER_BYTES: usize = 32;
const RECORD_HEADER_BYTES: usize = 16;

fn record_offsets(segment: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut offset = SEGMENT_HEADER_BYTES;
    while offset + RECORD_HEADER_BYTES <= segment.len() {
        offsets.push(offset);
        let length = u32::from_le_bytes(segment[offset..offset + 4].try_into().unwrap()) as usize;
        offset += RECORD_HEADER_BYTES + length;
    }
    offsets
}

/// Flips one byte inside the payload of record `index` (0-based); returns
/// the segment's path and the record's offset.
fn flip_inside_record(dir: &Path, index: usize) -> (std::path::PathBuf, usize) {
    let path = dir.join("journal").join("00000000000000000001.seg");
    let mut bytes = std::fs::read(&path).unwrap();
    let offsets = record_offsets(&bytes);
    assert!(offsets.len() > index + 1, "a record after the damaged one: {offsets:?}");
    let offset = offsets[index];
    bytes[offset + RECORD_HEADER_BYTES + 10] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    (path, offset)
}

/// Five adds, each its own call: every close leaves a snapshot covering
/// all the records so far.
fn five_adds(dir: &Path) {
    for id in ["1", "2", "3", "4", "5"] {
        add(dir, id);
    }
    let clean = mq(dir, &["verify"]).ok();
    assert!(clean.stdout.contains("5 records"), "{clean:?}");
}

#[test]
fn damage_a_snapshot_covers_keeps_every_record_and_verify_passes() {
    let dir = tempfile::tempdir().unwrap();
    five_adds(dir.path());
    let (segment, offset) = flip_inside_record(dir.path(), 2);
    let name = segment.file_name().unwrap().to_str().unwrap();

    let verify = mq(dir.path(), &["verify"]).ok();
    assert!(verify.stdout.contains(name), "names the file: {verify:?}");
    assert!(
        verify.stdout.contains(&format!("byte offset {offset}")),
        "names the offset: {verify:?}"
    );
    assert!(verify.stdout.contains("history only"), "{verify:?}");
    assert_eq!(mq(dir.path(), &["verify", "--json"]).ok().json()["ok"], true);
    assert_eq!(
        cli_support::stats(dir.path())["pending"],
        5,
        "the snapshot proves all five"
    );

    let repair = mq(dir.path(), &["repair"]).ok();
    assert!(repair.stdout.contains("every record through 5"), "{repair:?}");
    assert!(dir.path().join("journal").join("base.json").exists(), "{repair:?}");
    mq(dir.path(), &["verify"]).ok();
    add(dir.path(), "6");
    assert_eq!(
        cli_support::stats(dir.path())["pending"],
        6,
        "the store takes writes again"
    );
    // Records 3 to 5 (from the damage to the segment's end) are set
    // aside; the log says so where they are missing and reads on.
    let log = mq(dir.path(), &["log"]).ok();
    assert!(log.stderr.contains("records 3 to 5 are not in the journal"), "{log:?}");
    let seqs: Vec<u64> = events(dir.path())
        .iter()
        .map(|event| event["seq"].as_u64().expect("a seq"))
        .collect();
    assert_eq!(seqs, [1, 2, 6]);
}

#[test]
fn verify_names_file_and_offset_and_repair_keeps_every_record_before_the_damage() {
    let dir = tempfile::tempdir().unwrap();
    five_adds(dir.path());
    // Without the snapshot, nothing but the journal knows the records.
    for name in [
        "queue_snapshot.json",
        "queue_pending.json",
        "queue_failed.json",
        "queue_completed.json",
        "queue_removed.json",
    ] {
        std::fs::remove_file(dir.path().join(name)).unwrap();
    }
    let (segment, offset) = flip_inside_record(dir.path(), 2);
    let name = segment.file_name().unwrap().to_str().unwrap();

    let verify = mq(dir.path(), &["verify"]).fails_with(1);
    let mut stderr = verify.stderr.lines();
    let message = stderr.next().unwrap();
    assert!(message.starts_with("movie-queue: "), "{verify:?}");
    assert!(message.contains(name), "names the file: {message}");
    assert!(
        message.contains(&format!("byte offset {offset}")),
        "names the offset: {message}"
    );
    assert!(
        stderr.next().unwrap().contains("movie-queue repair"),
        "hints at repair: {verify:?}"
    );

    let json = mq(dir.path(), &["verify", "--json"]).fails_with(1).json();
    assert_eq!(json["ok"], false);
    assert_eq!(json["offset"], offset);
    assert!(json["file"].as_str().unwrap().ends_with(name));

    for command in [&["stats"][..], &["add", "--id", "6", "--title", "x", "--year", "1"]] {
        let refused = mq(dir.path(), command).fails_with(1);
        assert!(refused.stderr.contains(&format!("byte offset {offset}")), "{refused:?}");
        assert!(refused.stderr.contains("movie-queue repair"), "{refused:?}");
    }

    // Following the hint.
    let repair = mq(dir.path(), &["repair"]).ok();
    assert!(repair.stdout.contains("every record through 2"), "{repair:?}");
    assert!(repair.stdout.contains(".broken"), "{repair:?}");
    let verified = mq(dir.path(), &["verify"]).ok();
    assert!(verified.stdout.contains("2 records"), "{verified:?}");
    let kept = events(dir.path());
    assert_eq!(kept.len(), 2, "every record before the damage");
    assert_eq!(kept[1]["movie"]["id"], "2");
    let aside: Vec<_> = std::fs::read_dir(dir.path().join("journal"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".broken"))
        .collect();
    assert_eq!(
        aside.len(),
        1,
        "the damaged bytes are set aside, not deleted: {aside:?}"
    );

    add(dir.path(), "6");
    assert_eq!(events(dir.path()).len(), 3, "the store takes writes again");
    mq(dir.path(), &["verify"]).ok();
    let sound = mq(dir.path(), &["repair"]).ok();
    assert!(sound.stdout.contains("sound"), "{sound:?}");
}
