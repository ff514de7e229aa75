//! The event stream of a running store: `subscribe(k)` yields every event
//! from record `k` on, in order, with no gap and no repeat, while several
//! writers run, segments roll and `compact` deletes the segments behind
//! it; each event it yields is the journal's record of that number; and
//! it never yields a record before the fsync that makes it durable.
//!
//! How: four threads add movies to one store with small segments while a
//! subscriber thread, started at a random record, collects what it is
//! given; the main thread compacts in the middle. Afterwards the
//! subscriber must hold exactly records `k..=last`, equal to what
//! `events_from(k)` reads back. The durability test holds the writer's
//! fsync on a gate: the record's bytes are in the segment, and the
//! subscriber gets nothing until the gate opens.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use crate::support::common::{movie, scratch};
use crate::support::gated::GatedStorage;
use movie_queue::{EventRecord, QueueManager, Seq};
use proptest::prelude::*;
use proptest::test_runner::Config;

const WRITERS: usize = 4;

fn subscribe_while_writing(start: u64, per_writer: usize, compact_after: usize) {
    let dir = scratch();
    let qm = Arc::new(
        QueueManager::options()
            .segment_bytes_max(1_500)
            .snapshot_every_events(25)
            .snapshot_every(None)
            .open(dir.path())
            .unwrap(),
    );
    for id in 0..5 {
        qm.add_to_pending(movie(&format!("before-{id}"))).unwrap();
    }
    let total = 5 + WRITERS * per_writer;
    let from = Seq(start.min(total as u64));
    let subscription = qm.subscribe(from).unwrap();
    let expected = total as u64 - from.0 + 1;
    let subscriber = std::thread::spawn(move || {
        let mut got = Vec::new();
        for record in subscription {
            got.push(record.unwrap());
            if got.len() as u64 == expected {
                break;
            }
        }
        got
    });
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let qm = Arc::clone(&qm);
            std::thread::spawn(move || {
                for index in 0..per_writer {
                    qm.add_to_pending(movie(&format!("{writer}-{index}"))).unwrap();
                }
            })
        })
        .collect();
    while (qm.last_seq().0 as usize) < compact_after.min(total) {
        std::thread::yield_now();
    }
    let compacted = qm.compact().unwrap();
    for writer in writers {
        writer.join().unwrap();
    }
    let got = subscriber.join().unwrap();
    let seqs: Vec<u64> = got.iter().map(|record| record.seq.0).collect();
    assert_eq!(
        seqs,
        (from.0..=total as u64).collect::<Vec<_>>(),
        "from {from}, compacted through {} deleting {} segment(s)",
        compacted.seq,
        compacted.removed.len()
    );
    let still_held = got.iter().filter(|record| record.seq > compacted.seq);
    let read_back: Vec<EventRecord> = qm
        .events_from(compacted.seq.next().max(from))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(still_held.eq(read_back.iter()), "the events the journal still holds");
}

proptest! {
    #![proptest_config(Config { cases: 12, failure_persistence: None, ..Config::default() })]

    #[test]
    fn a_subscription_delivers_every_event_after_its_start_once_in_order(
        start in 1_u64..60,
        per_writer in 5_usize..25,
        compact_after in 0_usize..80,
    ) {
        subscribe_while_writing(start, per_writer, compact_after);
    }
}

#[test]
fn a_subscription_from_zero_starts_at_the_first_record_the_journal_holds() {
    let dir = scratch();
    let qm = QueueManager::options().segment_bytes_max(300).open(dir.path()).unwrap();
    for id in 0..20 {
        qm.add_to_pending(movie(&id.to_string())).unwrap();
    }
    let compacted = qm.compact().unwrap();
    assert!(!compacted.removed.is_empty());
    let error = qm.events_from(Seq(1)).unwrap().next().unwrap().unwrap_err();
    assert!(error.to_string().contains("compacted away"), "{error}");
    let first = qm.events_from(Seq(0)).unwrap().next().unwrap().unwrap();
    assert!(first.seq > Seq(1) && first.seq <= compacted.seq);
    let mut subscription = qm.subscribe(Seq(0)).unwrap();
    assert_eq!(subscription.next().unwrap().unwrap().seq, first.seq);
    let qm = Arc::new(qm);
    let writer = Arc::clone(&qm);
    let added = std::thread::spawn(move || writer.add_to_pending(movie("later")).unwrap());
    let last = subscription
        .by_ref()
        .map(Result::unwrap)
        .find(|record| record.seq == Seq(21))
        .unwrap();
    assert!(last.event.concerns("later"));
    assert!(added.join().unwrap());
    drop(qm);
    assert!(
        subscription.next().is_none(),
        "the subscription ends once its store is closed"
    );
}

#[test]
fn compact_keeps_the_segments_a_subscription_has_yet_to_read() {
    let dir = scratch();
    let qm = QueueManager::options().segment_bytes_max(300).open(dir.path()).unwrap();
    qm.add_to_pending(movie("first")).unwrap();
    let mut slow = qm.subscribe(Seq(1)).unwrap();
    assert_eq!(slow.next().unwrap().unwrap().seq, Seq(1));
    for id in 0..30 {
        qm.add_to_pending(movie(&id.to_string())).unwrap();
    }
    let kept = qm.compact().unwrap();
    assert!(
        kept.removed.is_empty(),
        "the subscription reads from record 2: {kept:?}"
    );
    let seqs: Vec<u64> = slow.by_ref().take(30).map(|record| record.unwrap().seq.0).collect();
    assert_eq!(seqs, (2..=31).collect::<Vec<_>>());
    drop(slow);
    assert!(!qm.compact().unwrap().removed.is_empty(), "once it is gone, they go");
}

// ----- durability: nothing before its fsync ------------------------------------

/// The journal's written bytes: its records, not the zeros the writer laid
/// down after them (a record goes over them; the files keep their size).
fn journal_bytes(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("journal"))
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".seg"))
        .map(|entry| crate::support::durability::written_len(&entry.path()).unwrap())
        .sum()
}

#[test]
fn a_subscription_never_yields_a_record_before_its_fsync() {
    let dir = scratch();
    let storage = GatedStorage::default();
    let gate = Arc::clone(&storage.gate);
    let qm = Arc::new(
        QueueManager::options()
            .storage(Arc::new(storage))
            .snapshot_every_events(0)
            .snapshot_every(None)
            .open(dir.path())
            .unwrap(),
    );
    qm.add_to_pending(movie("durable")).unwrap();
    let subscription = qm.subscribe(Seq(1)).unwrap();
    let (sender, received) = mpsc::channel();
    std::thread::spawn(move || {
        for record in subscription {
            if sender.send(record.unwrap().seq).is_err() {
                break;
            }
        }
    });
    assert_eq!(received.recv().unwrap(), Seq(1));
    let before = journal_bytes(dir.path());
    gate.close();
    let adder = Arc::clone(&qm);
    let added = std::thread::spawn(move || adder.add_to_pending(movie("held")).unwrap());
    // The record reaches the segment; its fsync waits at the gate.
    while journal_bytes(dir.path()) == before {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        received.recv_timeout(Duration::from_millis(300)).is_err(),
        "a record was yielded before its fsync"
    );
    gate.open();
    assert_eq!(received.recv().unwrap(), Seq(2));
    assert!(added.join().unwrap());
}
