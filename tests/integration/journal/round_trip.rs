//! Round trip of every event type through the journal.
//!
//! How: (1) one of each of the nine event kinds, with awkward values
//! (unicode, an integer year, extra JSON fields, float timestamps to the
//! last bit), is framed by `writer::JournalWriter` into segments small
//! enough to roll over several times, and read back by
//! `recovery::replay`: the same sequence numbers, timestamps (bit for bit)
//! and events come out, in order. (2) The queue operations that produce
//! each kind run through a `QueueManager`; the audit trail read back from
//! the journal (`events_from`) names all nine kinds in the order they
//! happened, and a reopened store and a full replay both equal the live
//! state.

use crate::support::durability as durability_support;

use std::path::Path;
use std::sync::Arc;

use durability_support::{journal_dir, layout, movie, scratch, write_import_fixture};
use movie_queue::testing::RealStorage;
use movie_queue::testing::encode_payload;
use movie_queue::testing::{ChainEnd, replay_events, scan_journal};
use movie_queue::testing::{JournalEnd, JournalWriter, WriterConfig};
use movie_queue::{Event, EventRecord, Movie, QueueEntry, QueueManager, Seq};
use serde_json::json;

fn every_event() -> Vec<Event> {
    let matrix = Movie::new("123", "The Matrix — «ünïcödé» 🎬", "1999")
        .with_slug("the-matrix")
        .with_imdb_id("tt0133093")
        .with_extra("queued_at", json!(1_760_806_482.25))
        .expect("extra field")
        .with_extra("nested", json!({"a": [1, 2, {"b": null}], "s": "x\"y"}))
        .expect("extra field");
    let mut failed = QueueEntry::new(Movie::new("2", "Heat", 1995));
    failed.retry_count = 2;
    failed.last_error = Some("Not found on tracker".into());
    failed.retry_after = Some(1_760_813_282.5);
    failed.failed_at = Some(1_760_806_482.5);
    let mut completed = QueueEntry::new(Movie::new("3", "Alien", "1979"));
    completed.completed_at = Some(1_760_813_282.123_456_7);
    vec![
        Event::Added { movie: matrix.clone() },
        Event::Taken { id: "123".into() },
        Event::Failed {
            movie: matrix.clone(),
            error: "Download failed:\n\ttimeout".into(),
            retry_after: 1_760_813_282.5,
        },
        Event::MovedToPending { id: "123".into() },
        Event::Reset { id: "123".into() },
        Event::Completed { movie: matrix },
        Event::CleanedUp {
            cutoff: 1_760_000_000.0,
            ids: vec!["3".into()],
        },
        Event::Requeued {
            ids: vec!["1".into(), "2".into()],
        },
        Event::Imported {
            pending: vec![QueueEntry::new(Movie::new("4", "Up", 2009))],
            failed: vec![failed],
            completed: vec![completed],
            removed: vec![],
        },
        Event::Removed {
            movie: Movie::new("5", "Jaws", 1975),
        },
        Event::MarkedRemoved { ids: vec!["4".into()] },
        Event::Restored { id: "5".into() },
        Event::Forgotten { id: "4".into() },
    ]
}

fn replay_all(journal: &Path) -> Vec<EventRecord> {
    let mut records = Vec::new();
    let scan = scan_journal(&RealStorage, journal).expect("scan");
    let chain = scan.chain_from(Seq(0));
    assert_eq!(chain.after, ChainEnd::Clean, "a sound journal");
    replay_events(&RealStorage, &scan, Seq(1), chain.end, &mut |record, _| {
        records.push(record);
        Ok(())
    })
    .expect("replay a sound journal");
    records
}

#[test]
fn every_event_kind_round_trips_through_the_journal_writer_and_replay() {
    let dir = scratch();
    let journal = journal_dir(dir.path());
    let config = WriterConfig {
        segment_bytes_max: 400,
        ..WriterConfig::default()
    };
    let end = JournalEnd {
        next_seq: Seq(1),
        last_segment: None,
    };
    let writer = JournalWriter::start(Arc::new(RealStorage), &journal, end, config).expect("start the writer");
    let mut written = Vec::new();
    // Twice over, so every kind also lands after a segment roll.
    for (index, event) in every_event().into_iter().chain(every_event()).enumerate() {
        let seq = Seq(index as u64 + 1);
        let ts = 1_760_806_482.123_456_7 + index as f64 / 3.0;
        let payload = encode_payload(ts, &event).expect("encode");
        let room = writer.reserver().reserve().expect("room");
        writer
            .append(seq, payload, room)
            .expect("append")
            .wait()
            .expect("durable");
        written.push(EventRecord::new(seq, ts, event));
    }
    writer.close().expect("close the writer");
    assert!(layout(dir.path()).len() >= 3, "the records roll over several segments");

    let read = replay_all(&journal);
    assert_eq!(read.len(), written.len());
    for (back, sent) in read.iter().zip(&written) {
        assert_eq!(back.seq, sent.seq);
        assert_eq!(back.ts.to_bits(), sent.ts.to_bits(), "timestamp of record {}", sent.seq);
        assert_eq!(back.event, sent.event, "event of record {}", sent.seq);
    }
}

#[test]
fn the_queue_operations_journal_all_nine_event_kinds_and_replay_to_the_same_state() {
    let dir = scratch();
    let import = scratch();
    write_import_fixture(import.path());
    let qm = QueueManager::options()
        .requeue_in_flight_on_open(false)
        .open(dir.path())
        .expect("open");
    let past = movie_queue::now() - 60.0;
    assert!(qm.add_to_pending(movie("a")).expect("add"));
    assert!(qm.add_to_pending(movie("b")).expect("add"));
    assert_eq!(
        qm.get_next_pending().expect("take").map(|m| m.id().to_owned()),
        Some("a".into())
    );
    assert!(qm.add_to_failed(movie("a"), "no seeders", Some(past)).expect("fail"));
    assert!(qm.move_failed_to_pending("a").expect("move back"));
    assert!(qm.add_to_failed(movie("a"), "again", Some(past)).expect("fail"));
    assert!(qm.reset_failed_movie("a").expect("reset"));
    assert!(qm.add_to_completed(movie("b")).expect("complete"));
    assert_eq!(
        qm.cleanup_completed_before(movie_queue::now() + 1.0).expect("clean up"),
        1
    );
    assert!(qm.get_next_pending().expect("take").is_some());
    assert_eq!(qm.requeue_in_flight().expect("requeue"), 1);
    assert_eq!(qm.import(import.path()).expect("import"), 3);

    let kinds: Vec<&str> = qm
        .events_from(Seq(1))
        .expect("read the journal")
        .map(|record| record.unwrap().event.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            "added",
            "added",
            "taken",
            "failed",
            "moved_to_pending",
            "failed",
            "reset",
            "completed",
            "cleaned_up",
            "taken",
            "requeued",
            "imported"
        ]
    );
    let live = qm.state();
    let seqs: Vec<u64> = qm
        .events_from(Seq(1))
        .expect("read")
        .map(|record| record.unwrap().seq.0)
        .collect();
    assert_eq!(
        seqs,
        (1..=12).collect::<Vec<_>>(),
        "sequence numbers are contiguous from 1"
    );
    qm.close().expect("close");

    let reopened = QueueManager::options()
        .requeue_in_flight_on_open(false)
        .open(dir.path())
        .expect("reopen");
    assert!(reopened.state() == live, "the reopened state equals the live one");
    drop(reopened);
    let replayed = movie_queue::testing::full_replay(&RealStorage, dir.path()).expect("full replay");
    assert!(replayed == live, "a full replay of the journal equals the live state");
}
