//! A record longer than the limit is refused on write (nothing written,
//! the store still usable) and on read (the length is checked against the
//! format's maximum and the bytes present before anything is allocated).
//!
//! How: on write, a `QueueManager` opened with a small `event_bytes_max`
//! is given a movie whose event is larger: `Error::EventTooLarge`, the
//! journal's bytes and the state unchanged, the next small event accepted;
//! `JournalWriter::append` refuses the same payload. On read, a record
//! header declaring `RECORD_PAYLOAD_BYTES_MAX + 1` bytes (or `u32::MAX`)
//! followed by a valid record is `Error::RecordTooLarge` naming file and
//! offset; at the very end of the journal it is a torn tail, cut back.

use crate::support::durability as durability_support;

use std::fs;
use std::sync::Arc;

use durability_support::{added_payload, added_records, journal_dir, movie, replay_seqs, scratch, write_segment};
use movie_queue::testing::RealStorage;
use movie_queue::testing::{JournalEnd, JournalWriter, WriterConfig};
use movie_queue::testing::{RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX, encode_record, encode_segment_header};
use movie_queue::{Error, Movie, QueueManager, Seq};

const LIMIT: u32 = 300;

fn big_movie(id: &str) -> Movie {
    Movie::new(id, "x".repeat(LIMIT as usize), "2020")
}

fn journal_bytes(dir: &std::path::Path) -> Vec<Vec<u8>> {
    durability_support::segment_paths(dir)
        .iter()
        .map(|path| fs::read(path).expect("read"))
        .collect()
}

#[test]
fn an_event_over_the_limit_is_refused_on_write_and_nothing_is_written() {
    let dir = scratch();
    let qm = QueueManager::options()
        .event_bytes_max(LIMIT)
        .open(dir.path())
        .expect("open");
    assert!(qm.add_to_pending(movie("small")).expect("a small event fits"));
    let before = journal_bytes(dir.path());
    let state_before = qm.state();
    let last_before = qm.last_seq();

    for error in [
        qm.add_to_pending(big_movie("big")).expect_err("too large"),
        qm.add_to_failed(big_movie("small"), "e", None).expect_err("too large"),
        qm.add_to_completed(big_movie("small")).expect_err("too large"),
    ] {
        match error {
            Error::EventTooLarge { length, limit } => {
                assert_eq!(limit, u64::from(LIMIT));
                assert!(length > u64::from(LIMIT));
            }
            other => panic!("expected EventTooLarge, got {other}"),
        }
    }
    assert_eq!(journal_bytes(dir.path()), before, "nothing was written");
    assert!(qm.state() == state_before, "the state is unchanged");
    assert_eq!(qm.last_seq(), last_before, "no sequence number was used");
    assert!(qm.add_to_pending(movie("next")).expect("the store is not poisoned"));
    assert_eq!(qm.last_seq(), Seq(last_before.0 + 1));
    qm.close().expect("close");
    let (seqs, _) = replay_seqs(&journal_dir(dir.path())).expect("sound journal");
    assert_eq!(seqs, [1, 2]);
}

#[test]
fn the_journal_writer_refuses_a_payload_over_its_limit_before_queueing_it() {
    let dir = scratch();
    let config = WriterConfig {
        event_bytes_max: LIMIT,
        ..WriterConfig::default()
    };
    let end = JournalEnd {
        next_seq: Seq(1),
        last_segment: None,
    };
    let journal = journal_dir(dir.path());
    let writer = JournalWriter::start(Arc::new(RealStorage), &journal, end, config).expect("start");
    let error = writer
        .append(
            Seq(1),
            vec![b'x'; LIMIT as usize + 1],
            writer.reserver().reserve().expect("room"),
        )
        .expect_err("too large");
    assert!(
        matches!(error, Error::EventTooLarge { length, limit } if length == u64::from(LIMIT) + 1 && limit == u64::from(LIMIT))
    );
    writer
        .append(
            Seq(1),
            added_payload("a", 1),
            writer.reserver().reserve().expect("room"),
        )
        .expect("fits")
        .wait()
        .expect("durable");
    writer.close().expect("close");
    let (seqs, _) = replay_seqs(&journal).expect("sound");
    assert_eq!(seqs, [1]);
}

/// A segment: records 1–2, a header declaring `length` payload bytes with
/// a few bytes after it, then (if `then_valid`) a valid record 3.
fn segment_with_huge_length(length: u32, then_valid: bool) -> Vec<u8> {
    let mut bytes = encode_segment_header(Seq(1)).to_vec();
    for (seq, payload) in added_records(1, 2) {
        encode_record(&mut bytes, Seq(1), Seq(seq), &payload);
    }
    let mut header = [0_u8; RECORD_HEADER_BYTES];
    header[0..4].copy_from_slice(&length.to_le_bytes());
    header[8..16].copy_from_slice(&3_u64.to_le_bytes());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(b"{\"v\":1}");
    if then_valid {
        encode_record(&mut bytes, Seq(1), Seq(3), &added_payload("c", 3));
    }
    bytes
}

#[test]
fn a_length_over_the_format_limit_followed_by_a_valid_record_is_refused_on_read() {
    for length in [RECORD_PAYLOAD_BYTES_MAX + 1, u32::MAX] {
        let dir = scratch();
        let journal = journal_dir(dir.path());
        let (path, starts) = write_segment(&journal, 1, &added_records(1, 2));
        let bytes = segment_with_huge_length(length, true);
        fs::write(&path, &bytes).expect("write");
        let huge_at = starts[1] + (starts[1] - starts[0]);
        for error in [
            replay_seqs(&journal).expect_err("too large"),
            QueueManager::open(dir.path()).expect_err("too large"),
        ] {
            match &error {
                Error::RecordTooLarge {
                    length: declared,
                    limit,
                    ..
                } => {
                    assert_eq!(*declared, u64::from(length));
                    assert_eq!(*limit, u64::from(RECORD_PAYLOAD_BYTES_MAX));
                }
                other => panic!("expected RecordTooLarge, got {other}"),
            }
            assert_eq!(error.place(), Some((path.as_path(), huge_at)));
        }
        assert_eq!(fs::read(&path).expect("read"), bytes, "the file is left alone");
    }
}

#[test]
fn a_huge_length_at_the_end_of_the_journal_is_a_torn_tail() {
    let dir = scratch();
    let journal = journal_dir(dir.path());
    let (path, _) = write_segment(&journal, 1, &added_records(1, 2));
    let end_of_two = fs::metadata(&path).expect("meta").len();
    fs::write(&path, segment_with_huge_length(u32::MAX, false)).expect("write");
    let (seqs, tail) = replay_seqs(&journal).expect("torn tail");
    assert_eq!(seqs, [1, 2]);
    assert_eq!(tail.map(|tail| tail.offset), Some(end_of_two));
    drop(movie_queue::QueueManager::open(dir.path()).expect("a writer's open sets the tail aside"));
    assert_eq!(
        crate::support::durability::written_len(&path),
        Some(usize::try_from(end_of_two).expect("small")),
        "zeros are written over the torn tail"
    );
}

/// Replay reads a segment in windows of a few MiB, not whole: records
/// larger than a window (here 5 MiB and 9 MiB), small ones between and
/// after them, and windows that end inside a record all read back, from
/// the journal alone and through `replay`.
#[test]
fn records_larger_than_a_replay_window_read_back_between_small_ones() {
    let dir = scratch();
    let qm = QueueManager::options()
        .snapshot_every_events(0)
        .snapshot_every(None)
        .open(dir.path())
        .expect("open");
    let mut expected = Vec::new();
    for (n, size) in [5 << 20, 100, 9 << 20, 3 << 20, 200, (4 << 20) - 40, 10]
        .into_iter()
        .enumerate()
    {
        let movie = Movie::new(format!("m{n}"), "x".repeat(size), "2020");
        qm.add_to_pending(movie).expect("add");
        expected.push(format!("m{n}"));
    }
    let live = qm.state();
    qm.close().expect("close");
    // Without the snapshot's manifest the journal alone holds the state.
    fs::remove_file(dir.path().join("queue_snapshot.json")).expect("remove the manifest");
    let reopened = QueueManager::open_read_only(dir.path()).expect("reopen");
    assert_eq!(reopened.state(), live);
    let ids: Vec<String> = reopened.state().pending().map(|entry| entry.id().to_owned()).collect();
    assert_eq!(ids, expected);
    let replayed = movie_queue::replay(dir.path(), movie_queue::Until::Seq(Seq(4))).expect("replay");
    assert_eq!(replayed.state.count(movie_queue::Place::Pending), 4);
    assert!(movie_queue::verify(dir.path()).expect("verify").problems.is_empty());
}
