//! The bugs the property found, fixed: their regression tests.

use super::property::{open_state, show};
use super::*;

// ----- the bugs the property found, fixed: their regression tests ---------

/// A store written with segments of 300 bytes, closed, its snapshot
/// removed (as if the process had been killed before any snapshot).
fn store_without_snapshot(fill: impl FnOnce(&QueueManager)) -> tempfile::TempDir {
    let dir = scratch();
    let qm = QueueManager::options()
        .segment_bytes_max(300)
        .open(dir.path())
        .expect("open");
    fill(&qm);
    qm.close().expect("close");
    crate::support::durability::remove_snapshot(dir.path());
    dir
}

/// Found by the property (on cb7316e and b47bb6f; fixed since by 975032f,
/// which the `recovery_dir` fuzz target led to): two shrunk cases, one
/// root cause. Open and verify rightly refuse each store; `repair` must set
/// the damaged bytes aside and leave the empty store (no record survives,
/// nothing covers one). It looped 64 rounds and failed with "repair did
/// not converge", so no command opened the store: its branch for "no
/// journal record, no checkpoint covering one" only set a rejected
/// manifest or base aside, and a segment whose header does not hold was
/// left where it was.
/// * one `add`, the process killed, bit 0 of byte 28 (the header's
///   unchecked reserved word) of the only segment flipped. Any damage
///   that makes the only segment's header unreadable does it, and so does
///   a segment-named garbage file in the journal of a store with no
///   record yet;
/// * `add_to_failed(a)`, `add_to_pending(b)` (one record per segment), the
///   process killed, bytes 9.. of the first segment zeroed (its first
///   sequence number, header CRC and record 1): the first round rightly
///   cuts it back to its header and sets segment 2 aside (record 2 cannot
///   follow the lost record 1), leaving a header-only segment whose CRC
///   fails — and no round after that does anything.
#[test]
fn repair_converges_when_no_journal_record_is_left_and_a_segment_header_does_not_hold() {
    let one_segment = store_without_snapshot(|qm| {
        qm.add_to_pending(movie("a")).expect("add");
    });
    let two_segments = store_without_snapshot(|qm| {
        qm.add_to_failed(movie("a"), "not found", Some(now() + 3_600.0))
            .expect("fail");
        qm.add_to_pending(movie("b")).expect("add");
    });
    assert_eq!(layout(two_segments.path()).len(), 2, "one record per segment");
    damage_first_segment_then_repair_to_empty(&one_segment, |bytes| bytes[28] ^= 1);
    damage_first_segment_then_repair_to_empty(&two_segments, |bytes| bytes[9..].fill(0));
}

/// Damages the first segment of the store in `dir`; open and verify refuse
/// it, and `repair` gives the empty store, which opens and verifies.
fn damage_first_segment_then_repair_to_empty(dir: &tempfile::TempDir, damage: fn(&mut Vec<u8>)) {
    let segment = dir.path().join("journal/00000000000000000001.seg");
    let mut bytes = fs::read(&segment).expect("read the segment");
    damage(&mut bytes);
    fs::write(&segment, &bytes).expect("damage the segment");
    assert!(movie_queue::verify(dir.path()).is_err(), "verify refuses the store");
    assert!(QueueManager::open(dir.path()).is_err(), "open refuses the store");

    let report = movie_queue::repair(dir.path()).expect("repair makes the store open again");
    movie_queue::verify(dir.path()).expect("verify after repair");
    let state = open_state(dir.path()).expect("open after repair");
    assert!(
        state == QueueState::new(),
        "no record survives: {}; {report:?}",
        show(&state)
    );
}

/// Found by the property (shrunk: seven acknowledged operations over
/// segments of 300 bytes — `journal/…1.seg` holding records 1–2, then
/// `…3.seg`, `…5.seg`, `…7.seg` — the process killed, and an empty file
/// planted as `journal/00000000000000000002.seg`). Open and verify rightly
/// refuse the store (a segment with no header). `repair` sets the planted
/// file aside — and every segment after it, so the repaired store holds
/// records 1–2 instead of all 7: five acknowledged operations drop out of
/// the queue (their bytes are in `*.0.broken` files), though the planted
/// file held no record and records 2 → 3 continue each other without a
/// gap. Now only the planted file is set aside, every record kept.
#[test]
fn repair_keeps_the_segments_after_a_planted_segment_file() {
    let dir = scratch();
    let qm = QueueManager::options()
        .segment_bytes_max(300)
        .open(dir.path())
        .expect("open");
    for id in ["a", "b", "c", "d", "e"] {
        qm.add_to_pending(movie(id)).expect("add");
    }
    let full = qm.state();
    qm.close().expect("close");
    crate::support::durability::remove_snapshot(dir.path());
    let segments = layout(dir.path());
    assert!(
        segments.len() >= 2 && segments[0].records.len() >= 2,
        "the first segment holds two records and another follows"
    );
    let between = segments[0].records[1].seq;
    let planted = dir
        .path()
        .join(JOURNAL)
        .join(movie_queue::testing::segment_name(movie_queue::Seq(between)));
    fs::write(&planted, b"").expect("plant an empty file");
    assert!(QueueManager::open(dir.path()).is_err(), "open refuses the store");

    let report = movie_queue::repair(dir.path()).expect("repair");
    let state = open_state(dir.path()).expect("open after repair");
    assert!(
        state == full,
        "repair dropped acknowledged records: got {}, want {}; {report:?}",
        show(&state),
        show(&full)
    );
}
