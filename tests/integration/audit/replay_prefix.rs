//! Replay stops at its target: it reads the segments up to the target's
//! and no later one (a storage that records every read says so); damage after the target — in a later
//! segment or later in the target's own segment — does not stop
//! `replay` (the store itself no longer opens), the answer equals the
//! state recorded before the damage, and it says that records after the
//! target were not read. A target behind the damage is refused naming
//! the file and offset, and so is a time target that falls next to the
//! damage (which of the damaged records happened by then is unknown).

use std::path::Path;

use crate::support::common::{movie, scratch};
use crate::support::durability::layout;
use crate::support::reads::Reads;
use movie_queue::{QueueManager, QueueState, Seq, Until};

/// Sixty records over segments of about ten; the state after each.
fn store(dir: &Path) -> Vec<QueueState> {
    let qm = QueueManager::options()
        .segment_bytes_max(900)
        .snapshot_every_events(0)
        .snapshot_every(None)
        .open(dir)
        .unwrap();
    let mut states = vec![QueueState::new()];
    for id in 0..60 {
        qm.add_to_pending(movie(&id.to_string())).unwrap();
        states.push(qm.state());
    }
    // No snapshot: the only way to a past state is the journal.
    drop(qm);
    for name in movie_queue::testing::QUEUE_FILES
        .iter()
        .chain([&movie_queue::testing::MANIFEST_FILE])
    {
        let _ = std::fs::remove_file(dir.join(name));
    }
    states
}

/// Flips a byte in the payload of record `seq`.
fn damage(dir: &Path, seq: u64) {
    let (path, span) = layout(dir)
        .into_iter()
        .find_map(|segment| {
            let span = segment.records.iter().find(|record| record.seq == seq).copied()?;
            Some((segment.path, span))
        })
        .expect("the record is in the journal");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[span.start + 20] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn damage_after_the_target_does_not_stop_replay() {
    let dir = scratch();
    let states = store(dir.path());
    damage(dir.path(), 45);
    damage(dir.path(), 13);
    assert!(movie_queue::verify(dir.path()).is_err(), "the damage is real");
    assert!(QueueManager::open_read_only(dir.path()).is_err());
    for target in [1_u64, 5, 11, 12] {
        let replayed = movie_queue::replay(dir.path(), Until::Seq(Seq(target))).unwrap();
        assert!(replayed.state == states[target as usize], "as of record {target}");
        assert_eq!(replayed.seq, Seq(target));
        assert!(replayed.unread_after, "records after {target} exist and were not read");
    }
    let refused = movie_queue::replay(dir.path(), Until::Seq(Seq(20)))
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("damaged") && refused.contains("byte offset"),
        "{refused}"
    );
    assert!(refused.contains("records 0 to 12"), "{refused}");
    let time = |seq| {
        movie_queue::replay(dir.path(), Until::Seq(Seq(seq)))
            .unwrap()
            .ts
            .unwrap()
    };
    let by_time = movie_queue::replay(dir.path(), Until::Time(time(11))).unwrap();
    assert_eq!(by_time.seq, Seq(11));
    assert!(by_time.state == states[11]);
    // Record 13 is damaged: whether it happened by record 12's time is unknown.
    let unknown = movie_queue::replay(dir.path(), Until::Time(time(12)))
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("damaged"), "{unknown}");
}

#[test]
fn replay_reads_the_segments_up_to_its_target_and_no_later_one() {
    let dir = scratch();
    let states = store(dir.path());
    let segments = layout(dir.path());
    assert!(segments.len() >= 4, "several segments");
    for (index, segment) in segments.iter().enumerate() {
        let target = segment.records[segment.records.len() / 2].seq;
        let reads = Reads::default();
        let replayed = movie_queue::testing::replay_with(&reads, dir.path(), Until::Seq(Seq(target))).unwrap();
        assert!(replayed.state == states[target as usize]);
        let read = reads.all();
        let later: Vec<_> = segments[index + 1..]
            .iter()
            .filter(|later| read.contains(&later.path))
            .collect();
        assert!(later.is_empty(), "replay to record {target} read {later:?}");
        assert!(read.contains(&segment.path));
    }
}
