//! Readers cannot be killed by a writer: readers in this process read the
//! store in a loop while a writer cuts torn tails off the journal, repairs
//! damage and discards a failed batch; every read is a consistent prefix
//! or a clear error, and nothing dies of a signal (files are read into
//! owned buffers, never mapped, so a file that shrinks under a reader is
//! only a shorter file). The same with reader processes is in
//! `processes::store`.
//!
//! How: three reader threads open the store read-only and check their
//! state's queues against the ones the writer acknowledged so far; the
//! main thread appends garbage to the last segment (a torn tail) and opens
//! a writer (which sets it aside and cuts it), damages a record and runs
//! `repair`, and fails a batch's fsync.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use movie_queue::testing::{Fault, FaultyStorage};
use movie_queue::{QueueManager, QueueState};

use crate::support::durability::{layout, movie, quiet_options, real, scratch};

fn torn_tail(dir: &std::path::Path) {
    let segment = layout(dir).pop().expect("a segment");
    let mut file = OpenOptions::new().append(true).open(segment.path).expect("open");
    file.write_all(&[0x5a; 37]).expect("a torn tail");
}

/// A reader sees a prefix of what was written: the movies added in order,
/// and at most, after the last of them, the batch whose fsync failed
/// (`never`). A reader takes no lock, so it can read that batch in the
/// moment between its write and the writer cutting it off again, as it can
/// read any batch before its fsync; what it must never see is a hole, or
/// that batch anywhere but at the end.
fn reader_checks(state: &QueueState) {
    assert!(state.indexes_agree(), "a reader saw a state whose indexes disagree");
    let mut ids: Vec<String> = state.pending().map(|entry| entry.id().to_owned()).collect();
    if ids.last().is_some_and(|id| id == "never") {
        ids.pop();
    }
    for (index, id) in ids.iter().enumerate() {
        assert_eq!(id, &index.to_string(), "a reader saw a hole: {ids:?}");
    }
}

#[test]
fn readers_in_this_process_survive_a_writer_cutting_and_repairing_under_them() {
    let dir = scratch();
    let stop = Arc::new(AtomicBool::new(false));
    drop(quiet_options(real()).open(dir.path()).expect("create"));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let dir = dir.path().to_path_buf();
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut reads = 0_u32;
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(qm) = QueueManager::open_read_only(&dir) {
                        reader_checks(&qm.state());
                        reads += 1;
                    }
                }
                reads
            })
        })
        .collect();
    let mut next = 0;
    for round in 0..20 {
        let qm = quiet_options(real()).open(dir.path()).expect("a writer opens");
        for _ in 0..5 {
            qm.add_to_pending(movie(&next.to_string())).expect("add");
            next += 1;
        }
        if round % 3 == 2 {
            // A failed fsync: the batch is cut off the segment under readers.
            let faulty = FaultyStorage::new();
            drop(qm);
            let failing = quiet_options(Arc::new(faulty.clone())).open(dir.path()).expect("open");
            faulty.inject(Fault::FailSync {
                index: faulty.sync_count(),
                errno: 5,
            });
            assert!(failing.add_to_pending(movie("never")).is_err());
            drop(failing);
        } else {
            qm.close().expect("close");
        }
        torn_tail(dir.path());
        if round % 4 == 1 {
            movie_queue::repair(dir.path()).expect("repair");
        }
    }
    stop.store(true, Ordering::SeqCst);
    let reads: u32 = readers
        .into_iter()
        .map(|reader| reader.join().expect("a reader died"))
        .sum();
    assert!(reads > 0, "the readers read");
}
