//! The time index: a time query reads the segment that holds its answer
//! and none of the sealed segments before it; an index with a flipped bit
//! is ignored (the answer is the same, more segments are read); a forged
//! one, whose checksum holds but whose times lie, cannot change an
//! answer: the records replayed contradict it and the search is made
//! again without it.

use std::path::{Path, PathBuf};

use crate::support::common::{movie, scratch};
use crate::support::durability::layout;
use crate::support::reads::Reads;
use movie_queue::testing::{RealStorage, TIMES_FILE};
use movie_queue::{QueueManager, QueueState, Seq, Until};

/// Eighty records over about eight segments, the state and time of each;
/// a writer's reopen has written the index.
fn store(dir: &Path) -> (Vec<QueueState>, Vec<f64>) {
    let options = || {
        QueueManager::options()
            .segment_bytes_max(900)
            .snapshot_every_events(0)
            .snapshot_every(None)
    };
    let qm = options().open(dir).unwrap();
    let mut states = vec![QueueState::new()];
    for id in 0..80 {
        qm.add_to_pending(movie(&id.to_string())).unwrap();
        states.push(qm.state());
    }
    let times = qm
        .events_from(Seq(1))
        .unwrap()
        .map(|record| record.unwrap().ts)
        .collect();
    qm.close().unwrap();
    options().open(dir).unwrap().close().unwrap();
    assert!(
        dir.join("journal").join(TIMES_FILE).is_file(),
        "the reopen wrote the index"
    );
    (states, times)
}

/// The segment holding record `seq`, and the sealed segments before it.
fn around(dir: &Path, seq: u64) -> (PathBuf, Vec<PathBuf>) {
    let segments = layout(dir);
    let index = segments
        .iter()
        .position(|segment| segment.records.iter().any(|record| record.seq == seq))
        .unwrap();
    let before = segments[..index].iter().map(|segment| segment.path.clone()).collect();
    (segments[index].path.clone(), before)
}

fn middle_records(dir: &Path) -> Vec<u64> {
    let segments = layout(dir);
    segments[1..segments.len() - 1]
        .iter()
        .map(|segment| segment.records[segment.records.len() / 2].seq)
        .collect()
}

#[test]
fn a_time_query_reads_only_the_segment_that_holds_its_answer() {
    let dir = scratch();
    let (_, times) = store(dir.path());
    let journal = dir.path().join("journal");
    for seq in middle_records(dir.path()) {
        let reads = Reads::default();
        let found = movie_queue::testing::time_target(&reads, &journal, times[seq as usize - 1], true).unwrap();
        assert_eq!(found, Seq(seq));
        let (holder, before) = around(dir.path(), seq);
        assert!(reads.of(&holder));
        let read_before: Vec<_> = before.iter().filter(|path| reads.of(path)).collect();
        assert!(read_before.is_empty(), "record {seq}: read {read_before:?}");
    }
}

#[test]
fn a_damaged_index_is_ignored_and_a_forged_one_cannot_change_an_answer() {
    let dir = scratch();
    let (states, times) = store(dir.path());
    let journal = dir.path().join("journal");
    let index_path = journal.join(TIMES_FILE);
    let index = std::fs::read_to_string(&index_path).unwrap();
    let seq = middle_records(dir.path())[2];
    let time = times[seq as usize - 1];

    let mut flipped = index.clone().into_bytes();
    flipped[12] ^= 0x04;
    std::fs::write(&index_path, &flipped).unwrap();
    let reads = Reads::default();
    assert_eq!(
        movie_queue::testing::time_target(&reads, &journal, time, true).unwrap(),
        Seq(seq)
    );
    let (_, before) = around(dir.path(), seq);
    assert!(
        before.iter().all(|path| reads.of(path)),
        "without the index every segment before is read"
    );

    // Forged: every entry claims its segment ends before record 1's time,
    // so the search would skip them all; the checksum is made to match.
    let mut lines: Vec<String> = index.lines().map(str::to_owned).collect();
    lines.pop();
    for line in &mut lines[1..] {
        let mut words: Vec<String> = line.split(' ').map(str::to_owned).collect();
        words[4] = format!("{:016x}", (times[0] - 1.0).to_bits());
        *line = words.join(" ");
    }
    let mut forged = lines.join("\n");
    forged.push('\n');
    let crc = crc32fast::hash(forged.as_bytes());
    forged.push_str(&format!("{crc:08x}\n"));
    std::fs::write(&index_path, forged).unwrap();
    let lied = movie_queue::testing::time_target(&RealStorage, &journal, time, true).unwrap();
    assert!(lied > Seq(seq), "the forged index does mislead the search ({lied})");
    let replayed = movie_queue::replay(dir.path(), Until::Time(time)).unwrap();
    assert_eq!(replayed.seq, Seq(seq));
    assert!(replayed.state == states[seq as usize]);
}
