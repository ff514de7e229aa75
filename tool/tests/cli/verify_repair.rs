//! Damage and repair through the binary. A byte inside the third record of
//! a journal segment with five records is flipped. With the snapshot the
//! last close wrote, the store still opens with all five (`verify` exits 3,
//! naming the damage as history only and what `repair` does about it);
//! `repair` records the snapshot's state as the compaction base and sets
//! record 3 aside as a hole, and then `verify` exits 0 and `log` reads
//! records 1, 2, 4 and 5, saying where record 3 went. Without it, `verify` (and every command
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
pub(crate) fn flip_inside_record(dir: &Path, index: usize) -> (std::path::PathBuf, usize) {
    let path = dir.join("journal").join("00000000000000000001.seg");
    let mut bytes = std::fs::read(&path).unwrap();
    let offsets = record_offsets(&bytes);
    assert!(offsets.len() > index + 1, "a record after the damaged one: {offsets:?}");
    let offset = offsets[index];
    bytes[offset + RECORD_HEADER_BYTES + 10] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    (path, offset)
}

/// Five adds, each its own call, then `snapshot`: a snapshot covering all
/// the records.
pub(crate) fn five_adds(dir: &Path) {
    for id in ["1", "2", "3", "4", "5"] {
        add(dir, id);
    }
    mq(dir, &["snapshot"]).ok();
    let clean = mq(dir, &["verify"]).ok();
    assert!(clean.stdout.contains("5 records"), "{clean:?}");
}

#[test]
fn damage_a_snapshot_covers_keeps_every_record_and_repair_makes_the_history_readable() {
    let dir = tempfile::tempdir().unwrap();
    five_adds(dir.path());
    let (segment, offset) = flip_inside_record(dir.path(), 2);
    let name = segment.file_name().unwrap().to_str().unwrap();
    let damaged = std::fs::read(&segment).unwrap();

    // The store opens, but it is damaged: exit 3, for scripts.
    let verify = mq(dir.path(), &["verify"]).fails_with(3);
    assert!(verify.stdout.contains(name), "names the file: {verify:?}");
    assert!(
        verify.stdout.contains(&format!("byte offset {offset}")),
        "names the offset: {verify:?}"
    );
    assert!(verify.stdout.contains("history only"), "{verify:?}");
    assert!(
        verify.stdout.contains("sets record 3 aside"),
        "says what repair does: {verify:?}"
    );
    assert!(
        verify.stderr.contains("the store opens, but it is damaged"),
        "{verify:?}"
    );
    let json = mq(dir.path(), &["verify", "--json"]).fails_with(3).json();
    assert_eq!(
        (json["ok"].clone(), json["opens"].clone()),
        (false.into(), true.into()),
        "{json}"
    );
    assert_eq!(
        cli_support::stats(dir.path())["pending"],
        5,
        "the snapshot proves all five"
    );
    // Before the repair the audit trail stops at the damage.
    let log = mq(dir.path(), &["log"]).fails_with(1);
    assert!(log.stderr.contains(&format!("byte offset {offset}")), "{log:?}");

    let repair = mq(dir.path(), &["repair"]).ok();
    assert!(repair.stdout.contains("every record through 5"), "{repair:?}");
    assert!(repair.stdout.contains("recorded record 3"), "{repair:?}");
    assert!(dir.path().join("journal").join("base.json").exists(), "{repair:?}");
    let aside = segment.with_file_name(format!("{name}.{offset}.broken"));
    assert!(aside.exists(), "the damaged bytes are copied aside: {repair:?}");
    assert_eq!(
        std::fs::read(&segment).unwrap(),
        damaged,
        "nothing is cut from the segment"
    );
    let verify = mq(dir.path(), &["verify"]).ok();
    assert!(
        verify.stdout.contains("hole") && verify.stdout.contains("record 3"),
        "{verify:?}"
    );
    assert_eq!(
        mq(dir.path(), &["repair"])
            .ok()
            .stdout
            .lines()
            .next()
            .unwrap_or_default(),
        "the store is sound; nothing changed (last record 5)"
    );
    add(dir.path(), "6");
    assert_eq!(
        cli_support::stats(dir.path())["pending"],
        6,
        "the store takes writes again"
    );
    // The log reads past record 3, saying where it went, in-band in JSON.
    let log = mq(dir.path(), &["log"]).ok();
    assert!(log.stderr.contains("record 3 was skipped"), "{log:?}");
    assert!(log.stderr.contains(&format!("{name}.{offset}.broken")), "{log:?}");
    let lines = events(dir.path());
    let seqs: Vec<u64> = lines.iter().map(|line| line["seq"].as_u64().expect("a seq")).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    assert_eq!(lines[2]["type"], "skipped", "{lines:?}");
    assert_eq!((lines[2]["from"].as_u64(), lines[2]["to"].as_u64()), (Some(3), Some(3)));
    assert_eq!(lines[2]["reason"], "damaged");
    // `show` says so too: the hole may have held one of the movie's events.
    let show = mq(dir.path(), &["show", "3"]).ok();
    assert!(show.stderr.contains("record 3 was skipped"), "{show:?}");
    let show = mq(dir.path(), &["show", "3", "--json"]).ok().json();
    assert_eq!(show["skipped"][0]["from"], 3, "{show}");
    let since = mq(dir.path(), &["log", "--json", "--since", "4"]).ok();
    assert_eq!(
        since.json_lines()[0]["seq"],
        4,
        "a consumer resumes after the hole: {since:?}"
    );
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

/// A tail marker that does not parse is damage `verify` reports (exit 3)
/// and one `repair` clears: it writes the marker anew, and then `verify`
/// exits 0 (a `verify || repair; verify && backup` script goes on).
#[test]
fn a_damaged_tail_marker_is_reported_and_one_repair_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    five_adds(dir.path());
    let tail = dir.path().join("journal").join("tail");
    let mut bytes = std::fs::read(&tail).unwrap();
    bytes[10] ^= 0x01;
    std::fs::write(&tail, bytes).unwrap();
    let verify = mq(dir.path(), &["verify"]).fails_with(3);
    assert!(verify.stdout.contains("tail marker"), "{verify:?}");
    let repair = mq(dir.path(), &["repair"]).ok();
    assert!(repair.stdout.contains("tail marker"), "{repair:?}");
    mq(dir.path(), &["verify"]).ok();
    assert_eq!(cli_support::stats(dir.path())["pending"], 5);
}

/// The application's own files with no journal yet (a legacy store) are
/// not damage: `verify` exits 0 and says the next writer open imports them.
#[test]
fn a_legacy_store_verifies_clean() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("queue_pending.json"),
        br#"[{"id":"1","title":"Heat","year":"1995"}]"#,
    )
    .unwrap();
    let verify = mq(dir.path(), &["verify"]).ok();
    assert!(verify.stdout.contains("legacy"), "{verify:?}");
}

/// `verify` says a snapshot agrees with the journal only when it compared
/// them: a store whose journal reaches the snapshot's record says so; a
/// backup of the snapshot alone (no journal; exit 3, as the next writer
/// records it as the compaction base) says the snapshot is the only copy
/// of its state, not compared.
#[test]
fn verify_says_agrees_only_when_it_compared_the_snapshot_with_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    five_adds(dir.path());
    mq(dir.path(), &["snapshot"]).ok();
    let verify = mq(dir.path(), &["verify"]).ok();
    assert!(
        verify.stdout.contains("covers record 5, agrees with the journal"),
        "{verify:?}"
    );
    std::fs::remove_dir_all(dir.path().join("journal")).unwrap();
    let verify = mq(dir.path(), &["verify"]).fails_with(3);
    assert!(
        verify.stdout.contains("covers record 5; the only copy of that state") && !verify.stdout.contains("agrees"),
        "{verify:?}"
    );
}

/// The holes file damaged after a repair recorded a hole: `verify` names
/// it (exit 3) and the damage it recorded again; following its hint, one
/// `repair` records the hole anew, `verify` exits 0 and `log` reads past it.
#[test]
fn a_damaged_holes_file_is_reported_and_one_repair_records_the_hole_anew() {
    let dir = tempfile::tempdir().unwrap();
    five_adds(dir.path());
    flip_inside_record(dir.path(), 2);
    mq(dir.path(), &["repair"]).ok();
    let holes = dir.path().join("journal").join("holes");
    let mut bytes = std::fs::read(&holes).unwrap();
    bytes[12] ^= 0x01;
    std::fs::write(&holes, bytes).unwrap();
    let verify = mq(dir.path(), &["verify"]).fails_with(3);
    assert!(
        verify.stdout.contains("holes") && verify.stdout.contains("history only"),
        "{verify:?}"
    );
    mq(dir.path(), &["repair"]).ok();
    mq(dir.path(), &["verify"]).ok();
    let seqs: Vec<u64> = events(dir.path())
        .iter()
        .map(|line| line["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5], "the log reads past the hole again");
}

/// A documented file edited in place (its length kept): `verify` names it
/// and says `movie-queue snapshot` writes a new snapshot; following that
/// (a mutating command, which loads only what it touches, would not), the
/// store verifies clean.
#[test]
fn a_rejected_snapshot_is_written_anew_by_movie_queue_snapshot_as_verify_says() {
    let dir = tempfile::tempdir().unwrap();
    five_adds(dir.path());
    let pending = dir.path().join("queue_pending.json");
    let text = std::fs::read_to_string(&pending).unwrap();
    std::fs::write(&pending, text.replacen("Movie 3", "Movie 8", 1)).unwrap();
    let verify = mq(dir.path(), &["verify"]).fails_with(3);
    assert!(
        verify.stdout.contains("queue_pending.json") && verify.stdout.contains("`movie-queue snapshot` writes a new"),
        "{verify:?}"
    );
    mq(dir.path(), &["snapshot"]).ok();
    mq(dir.path(), &["verify"]).ok();
    let show = mq(dir.path(), &["show", "3"]).ok();
    assert!(show.stdout.contains("Movie 3"), "{show:?}");
}
