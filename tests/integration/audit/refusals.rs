//! A time-travel target the store cannot answer is refused with its data,
//! so a program decides from the variant, never from the message:
//! `Error::Unanswerable { target, reason, answerable }` for each reason
//! (past the end, compacted away, damaged, in the future, no event time
//! since a compaction), and `Error::OutOfRange` for a time that is not a
//! number. The words are the ones the command-line tool has always
//! printed: each message is compared whole with the sentence it printed
//! before the refusal had a variant of its own.
//!
//! How: a store whose clock ticks one second per event (so record `n` is
//! stamped `BASE_TIME + n`), in small segments; a compaction; a flipped
//! byte in the middle of the journal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::support::common::{movie, scratch};
use movie_queue::{Answerable, Error, QueueManager, Refusal, Seq, Until};

const BASE_TIME: f64 = 1_700_000_000.0;

/// A store of `count` added movies in small segments, record `n` stamped
/// `BASE_TIME + n`.
fn store(dir: &std::path::Path, count: u64) -> QueueManager {
    let tick = Arc::new(AtomicU64::new(0));
    let clock = Arc::clone(&tick);
    let qm = QueueManager::options()
        .clock(Arc::new(move || {
            BASE_TIME + (clock.fetch_add(1, Ordering::Relaxed) + 1) as f64
        }))
        .segment_bytes_max(700)
        .snapshot_every(None)
        .snapshot_every_events(0)
        .open(dir)
        .unwrap();
    for id in 0..count {
        qm.add_to_pending(movie(&id.to_string())).unwrap();
    }
    qm
}

#[test]
fn past_the_end_names_the_records_it_can_answer() {
    let dir = scratch();
    let qm = store(dir.path(), 20);
    let error = qm.state_at(Seq(21)).unwrap_err();
    assert!(
        matches!(
            &error,
            Error::Unanswerable {
                target: Until::Seq(Seq(21)),
                reason: Refusal::PastEnd,
                answerable: Some(Answerable::Records {
                    first: Seq(0),
                    last: Some(Seq(20))
                }),
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "invalid argument: the state as of record 21 cannot be rebuilt: it is past the end of the journal, whose \
         last record is 20; it can be rebuilt as of records 0 to 20"
    );
    let error = qm.state_at(Seq(1_796_084_811)).unwrap_err();
    assert!(
        error.to_string().ends_with(
            "as of records 0 to 20 (for the time 1796084811, Unix seconds, write it with a decimal point: \
             1796084811.0)"
        ),
        "{error}"
    );
    qm.close().unwrap();
}

#[test]
fn before_a_compaction_names_the_first_record_and_time_it_can_answer() {
    let dir = scratch();
    let qm = store(dir.path(), 20);
    let base = qm.compact().unwrap().seq;
    qm.add_to_pending(movie("after")).unwrap();
    let first = qm.events_from(Seq(0)).unwrap().next().unwrap().unwrap();
    assert!(
        first.seq > Seq(1) && first.seq <= base,
        "the journal begins after record 1"
    );

    let error = qm.state_at(Seq(1)).unwrap_err();
    let Error::Unanswerable {
        target: Until::Seq(Seq(1)),
        reason: Refusal::Compacted { first_held },
        answerable: Some(Answerable::Records {
            first: earliest,
            last: None,
        }),
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!((*first_held, *earliest), (first.seq, base));
    assert_eq!(
        error.to_string(),
        format!(
            "invalid argument: the state as of record 1 cannot be rebuilt: records before {} were compacted \
             away; the earliest state it can rebuild is as of record {base}",
            first.seq
        )
    );

    let time = BASE_TIME + 0.5;
    let error = qm.state_at(Until::Time(time)).unwrap_err();
    assert!(
        matches!(
            &error,
            Error::Unanswerable {
                target: Until::Time(asked),
                reason: Refusal::Compacted { first_held },
                answerable: Some(Answerable::Times { from: Some(from), to: None }),
            } if *asked == time && *first_held == first.seq && *from == first.ts
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "invalid argument: the state as of time {time} cannot be rebuilt: it is before the first event the \
             journal still holds (record {}, stamped {}; earlier records were compacted away); it can be rebuilt \
             as of any time from {} on",
            first.seq, first.ts, first.ts
        )
    );
    qm.close().unwrap();
}

#[test]
fn a_time_in_the_future_or_not_a_number_is_refused_with_its_data() {
    let dir = scratch();
    let qm = store(dir.path(), 3);
    let time = movie_queue::now() + 3_600.0;
    let error = qm.state_at(Until::Time(time)).unwrap_err();
    let Error::Unanswerable {
        target: Until::Time(asked),
        reason: Refusal::Future { now },
        answerable: Some(Answerable::Times {
            from: None,
            to: Some(to),
        }),
    } = &error
    else {
        panic!("{error:?}");
    };
    assert!(*asked == time && *now < time && *to == *now, "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "invalid argument: the state as of time {time} cannot be rebuilt: it is in the future (now is {now}); \
             it can be rebuilt as of any time up to now"
        )
    );
    let error = qm.state_at(Until::Time(f64::NAN)).unwrap_err();
    assert!(
        matches!(&error, Error::OutOfRange { name: "time", value, .. } if value.is_nan()),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "invalid argument: time NaN is not a finite number");
    qm.close().unwrap();
}

#[test]
fn a_time_with_no_event_since_a_compaction_is_refused() {
    let dir = scratch();
    let qm = store(dir.path(), 20);
    qm.compact().unwrap();
    qm.close().unwrap();
    // The segment `compact` kept (the live one), its records gone: the
    // journal goes on after the base but holds no event, so no time.
    let kept = crate::support::durability::segment_paths(dir.path());
    assert_eq!(kept.len(), 1, "{kept:?}");
    let file = std::fs::OpenOptions::new().write(true).open(&kept[0]).unwrap();
    file.set_len(movie_queue::testing::SEGMENT_HEADER_BYTES as u64).unwrap();
    let error = movie_queue::replay(dir.path(), Until::Time(BASE_TIME + 5.0)).unwrap_err();
    assert!(
        matches!(
            &error,
            Error::Unanswerable {
                reason: Refusal::NoEventTime,
                answerable: None,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "invalid argument: the state as of time {} cannot be rebuilt: the journal holds no event since its \
             compaction, so no event time is known (the state as of its last record is the current one)",
            BASE_TIME + 5.0
        )
    );
}

#[test]
fn behind_damage_names_the_damage_and_what_it_can_answer() {
    let dir = scratch();
    store(dir.path(), 40).close().unwrap();
    // Without the snapshot, only the journal knows the state.
    std::fs::remove_file(dir.path().join("queue_snapshot.json")).unwrap();
    let segments = crate::support::durability::segment_paths(dir.path());
    assert!(segments.len() >= 3, "{segments:?}");
    let middle = &segments[1];
    let mut bytes = std::fs::read(middle).unwrap();
    let offset = bytes.len() / 2;
    bytes[offset] ^= 0x10;
    std::fs::write(middle, bytes).unwrap();
    let good: Vec<u64> = movie_queue::events(dir.path(), Seq(1))
        .unwrap()
        .map_while(Result::ok)
        .map(|record| record.seq.0)
        .collect();
    let damaged = good.len() as u64 + 1;

    let error = movie_queue::replay(dir.path(), Until::Seq(Seq(40))).unwrap_err();
    let Error::Unanswerable {
        target: Until::Seq(Seq(40)),
        reason: Refusal::Damaged {
            damage: Some(damage),
            next: None,
        },
        answerable: Some(Answerable::Records {
            first: Seq(0),
            last: Some(last),
        }),
    } = &error
    else {
        panic!("{error:?}");
    };
    assert!(damage.is_corruption(), "{damage:?}");
    assert_eq!(damage.place().map(|(path, _)| path), Some(middle.as_path()));
    assert_eq!(*last, Seq(damaged - 1));
    assert_eq!(
        error.to_string(),
        format!(
            "invalid argument: the state as of record 40 cannot be rebuilt: the records before it are damaged \
             ({damage}); it can be rebuilt as of records 0 to {last} (`movie-queue verify` says more)"
        )
    );

    let time = BASE_TIME + damaged as f64;
    let error = movie_queue::replay(dir.path(), Until::Time(time)).unwrap_err();
    let Error::Unanswerable {
        target: Until::Time(_),
        reason: Refusal::Damaged {
            damage: None,
            next: Some((next, next_ts)),
        },
        answerable: None,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert!(next.0 > damaged && *next_ts > time, "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "invalid argument: the state as of time {time} cannot be rebuilt: the records just before record \
             {next} (stamped {next_ts}) are damaged, so which of them happened by then is unknown \
             (`movie-queue verify` says more)"
        )
    );
}
