//! A torn tail — the last record of the last segment cut short at any
//! byte — is truncated on a writer's open: replay gives exactly the
//! records before it and the file is cut back to where they end.
//!
//! How: a segment of five records is crafted with the format's encoder;
//! for every length between the end of the fourth record and the end of
//! the fifth, a copy cut to that length is replayed under each tail
//! policy: `Truncate` (a writer's open) reports the torn tail with its
//! offset and size, hands out records 1–4 and cuts the file to the end of
//! record 4; `Stop` (a read-only open) hands out the same records and
//! leaves the file alone; `Reject` (`verify`) fails naming the file and
//! offset. The same cuts, reopened by a `QueueManager`, give the state of
//! four added movies, and the next append continues at record 5.

use crate::support::durability as durability_support;

use std::fs;

use durability_support::{added_records, journal_dir, movie, replay_seqs, scratch, write_segment};
use movie_queue::testing::TailPolicy;
use movie_queue::{Error, QueueManager, Seq};

#[test]
fn a_tail_torn_at_every_byte_of_the_last_record_is_cut_back_to_the_records_before_it() {
    let dir = scratch();
    let journal = journal_dir(dir.path());
    let (path, starts) = write_segment(&journal, 1, &added_records(1, 5));
    let whole = fs::read(&path).expect("read");
    let last_start = usize::try_from(starts[4]).expect("small");
    for cut in last_start..whole.len() {
        let torn = cut > last_start;
        fs::write(&path, &whole[..cut]).expect("cut");

        let (seqs, report) = replay_seqs(&journal, TailPolicy::Stop).expect("a read-only replay stops before it");
        assert_eq!(seqs, [1, 2, 3, 4], "cut at {cut}");
        assert_eq!(
            fs::metadata(&path).expect("meta").len(),
            cut as u64,
            "Stop leaves the file alone"
        );

        match replay_seqs(&journal, TailPolicy::Reject) {
            Err(error) if torn => {
                assert!(matches!(error, Error::TruncatedRecord { .. }), "cut at {cut}: {error}");
                assert_eq!(error.place(), Some((path.as_path(), starts[4])), "cut at {cut}");
            }
            Ok(_) if !torn => {}
            other => panic!("cut at {cut}: verify's policy gave {:?}", other.map(|(seqs, _)| seqs)),
        }

        let (seqs, report_truncating) = replay_seqs(&journal, TailPolicy::Truncate).expect("a writer truncates it");
        assert_eq!(seqs, [1, 2, 3, 4], "cut at {cut}");
        assert_eq!(report_truncating.last_seq, Seq(4));
        assert_eq!(report_truncating.next_seq, Seq(5));
        assert_eq!(
            fs::metadata(&path).expect("meta").len(),
            starts[4],
            "cut at {cut}: the file is cut back"
        );
        if torn {
            let tail = report_truncating.torn_tail.expect("the torn tail is reported");
            assert_eq!(tail.path, path);
            assert_eq!(tail.offset, starts[4]);
            assert_eq!(tail.bytes, (cut - last_start) as u64);
            assert_eq!(report.torn_tail.map(|tail| tail.offset), Some(starts[4]));
        } else {
            assert_eq!(
                report_truncating.torn_tail, None,
                "a cut at a record boundary is no torn tail"
            );
        }
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
        let (seqs, _) = replay_seqs(&journal, TailPolicy::Reject).expect("the journal is sound again");
        assert_eq!(seqs, [1, 2, 3, 4, 5], "cut at {cut}");
        for name in durability_support::SNAPSHOT_FILES {
            drop(fs::remove_file(dir.path().join(name)));
        }
    }
}
