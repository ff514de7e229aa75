//! A torn tail — the last record of the last segment cut short at any
//! byte — is set aside on a writer's open: the state is exactly the
//! records before it, the torn bytes are kept in a `*.broken` file, and
//! zeros are written over them in the segment, which keeps its size (a
//! segment is never shortened: a reader may have it open).
//!
//! How: a segment of five records is crafted with the format's encoder;
//! for every length between the end of the fourth record and the end of
//! the fifth, a copy cut to that length is read (records 1–4 and the tail
//! with its offset and size; the file untouched), verified (it passes,
//! naming the torn tail as a problem), and opened by a writer (record 4 is
//! the last, only zeros follow it in a file as long as before, the torn
//! bytes are in a `*.broken` file). The same cuts, reopened by a `QueueManager`, give the
//! state of four added movies, and the next append continues at record 5.

use crate::support::durability as durability_support;

use std::fs;

use durability_support::{added_records, journal_dir, movie, replay_seqs, scratch, write_segment};
use movie_queue::{QueueManager, Seq};

#[test]
fn a_tail_torn_at_every_byte_of_the_last_record_is_set_aside_and_cut_back_to_the_records_before_it() {
    let dir = scratch();
    let journal = journal_dir(dir.path());
    let (path, starts) = write_segment(&journal, 1, &added_records(1, 5));
    let whole = fs::read(&path).expect("read");
    let last_start = usize::try_from(starts[4]).expect("small");
    for cut in last_start..whole.len() {
        let torn = cut > last_start;
        // The torn bytes as far as they are not zeros (zeros hold nothing:
        // a torn frame's high length byte, say, reads like the room a
        // writer lays down after its records).
        let torn_end = durability_support::written_end(&whole[..cut]).max(last_start);
        clear_broken(&journal);
        fs::write(&path, &whole[..cut]).expect("cut");

        let (seqs, tail) = replay_seqs(&journal).expect("a reader stops before it");
        assert_eq!(seqs, [1, 2, 3, 4], "cut at {cut}");
        assert_eq!(
            fs::metadata(&path).expect("meta").len(),
            cut as u64,
            "reading changes nothing"
        );
        if torn {
            let tail = tail.expect("the torn tail is found");
            assert_eq!((tail.path.as_path(), tail.offset), (path.as_path(), starts[4]));
            assert_eq!(tail.bytes, (torn_end - last_start) as u64);
        } else {
            assert_eq!(tail, None, "a cut at a record boundary is no torn tail");
        }

        let report = movie_queue::verify(dir.path()).expect("verify passes: a writer's open succeeds");
        assert_eq!(report.last_seq, 4, "cut at {cut}");
        assert_eq!(
            report.problems.iter().any(|problem| problem.contains("torn tail")),
            torn
        );

        let qm = QueueManager::options()
            .requeue_in_flight_on_open(false)
            .open(dir.path())
            .expect("a writer's open");
        assert_eq!(qm.last_seq(), Seq(4), "cut at {cut}");
        drop(qm);
        assert_eq!(
            fs::metadata(&path).expect("meta").len(),
            cut as u64,
            "cut at {cut}: the segment is never shortened"
        );
        assert_eq!(
            durability_support::written_len(&path),
            Some(last_start),
            "cut at {cut}: zeros are written over the torn bytes"
        );
        let aside = broken_files(&journal);
        if torn {
            assert_eq!(aside.len(), 1, "cut at {cut}: the torn bytes are set aside first");
            assert_eq!(fs::read(&aside[0]).expect("read"), &whole[last_start..torn_end]);
        } else {
            assert!(aside.is_empty());
        }
        for name in durability_support::SNAPSHOT_FILES {
            drop(fs::remove_file(dir.path().join(name)));
        }
    }
}

fn broken_files(journal: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = fs::read_dir(journal)
        .expect("list")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.to_string_lossy().ends_with(".broken"))
        .collect();
    found.sort();
    found
}

fn clear_broken(journal: &std::path::Path) {
    for path in broken_files(journal) {
        fs::remove_file(path).expect("remove");
    }
}

#[test]
fn a_queue_manager_reopens_a_torn_tail_with_the_records_before_it_and_appends_after_them() {
    let dir = scratch();
    let journal = journal_dir(dir.path());
    let (path, starts) = write_segment(&journal, 1, &added_records(1, 5));
    let whole = fs::read(&path).expect("read");
    let last_start = usize::try_from(starts[4]).expect("small");
    for cut in [
        last_start + 1,
        last_start + 15,
        last_start + 16,
        last_start + 17,
        whole.len() - 1,
    ] {
        fs::write(&path, &whole[..cut]).expect("cut");
        let qm = QueueManager::open(dir.path()).expect("open");
        let ids: Vec<String> = qm
            .list(movie_queue::Place::Pending)
            .iter()
            .map(|e| e.id().to_owned())
            .collect();
        assert_eq!(ids, ["m1", "m2", "m3", "m4"], "cut at {cut}");
        assert_eq!(qm.last_seq(), Seq(4));
        assert!(qm.add_to_pending(movie("after")).expect("append after the cut"));
        assert_eq!(qm.last_seq(), Seq(5));
        qm.close().expect("close");
        let (seqs, tail) = replay_seqs(&journal).expect("the journal is sound again");
        assert_eq!(tail, None);
        assert_eq!(seqs, [1, 2, 3, 4, 5], "cut at {cut}");
        for name in durability_support::SNAPSHOT_FILES {
            drop(fs::remove_file(dir.path().join(name)));
        }
    }
}
