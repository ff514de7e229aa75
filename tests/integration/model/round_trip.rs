//! Property: whatever a door accepts, the next open reads back — byte for
//! byte, from the snapshot and from the journal alone. Random JSON objects
//! (any keys, the declared, queue-managed and stamped ones among them;
//! strings with control characters, escapes and any Unicode; integers at
//! both ends of 64 bits; floats; and towers of arrays and objects on both
//! sides of `MOVIE_NESTING_MAX`) go in through `Movie::from_value` and
//! `add_to_pending`. A movie `validate` refuses must be too deep, and
//! `add_to_pending` refuses it and writes nothing; a movie it accepts is
//! listed, after a close, by a reopen from the snapshot, by a reopen from
//! the journal alone and by `replay`, as exactly the same JSON, and
//! `verify` finds nothing wrong.
//!
//! (A store written by an earlier release, which let movies in up to 127
//! levels deep, reads back too: `deep_movies_an_earlier_release_let_in_read_back`.)

use proptest::prelude::*;
use serde_json::{Map, Number, Value, json};

use movie_queue::{MOVIE_NESTING_MAX, Movie, Place, QueueManager};

use crate::support::durability::scratch;

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |float| Number::from_f64(float).map(Value::Number)),
        any::<String>().prop_map(Value::String),
        "[\\x00-\\x1f\"\\\\/\u{2028}\u{202e}a-z]{0,8}".prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("id".to_owned()),
        Just("title".to_owned()),
        Just("year".to_owned()),
        Just("retry_count".to_owned()),
        Just("status".to_owned()),
        Just("queued_at".to_owned()),
        Just("completed_at".to_owned()),
        "[a-z]{1,6}",
        any::<String>(),
    ]
}

/// Any JSON value a few levels deep.
fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..4).prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// `value` under a tower of `levels` arrays and objects.
fn tower(value: Value, levels: usize, objects: u64) -> Value {
    (0..levels).fold(value, |inner, level| {
        if objects >> (level % 64) & 1 == 1 {
            json!({ "k": inner })
        } else {
            json!([inner])
        }
    })
}

/// A movie-shaped object: an id, maybe a title and year, random fields,
/// and sometimes a tower near the nesting limit.
fn movie_object() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just(Value::String("603".into())), leaf()],
        prop::collection::vec((key(), value()), 0..5),
        prop::option::of((value(), (MOVIE_NESTING_MAX - 6)..(MOVIE_NESTING_MAX + 4), any::<u64>())),
    )
        .prop_map(|(id, fields, deep)| {
            let mut object = Map::new();
            object.insert("id".into(), id);
            for (key, value) in fields {
                object.insert(key, value);
            }
            if let Some((value, levels, objects)) = deep {
                object.insert("deep".into(), tower(value, levels, objects));
            }
            Value::Object(object)
        })
}

/// The round trip of the fuzz target `movie_round_trip`, the one check
/// both run.
fn check_round_trip(object: Value) -> Result<(), TestCaseError> {
    crate::fuzz_regressions::common::movie_round_trip::check(object);
    Ok(())
}

/// The pending queue's entries, as JSON text.
fn pending_json(manager: &QueueManager) -> Vec<String> {
    manager
        .list(Place::Pending)
        .iter()
        .map(|entry| serde_json::to_string(entry).expect("an entry serializes"))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn every_movie_a_door_accepts_reads_back_byte_for_byte(object in movie_object()) {
        check_round_trip(object)?;
    }
}

#[test]
fn the_nesting_limit_is_exact_at_the_door() {
    let at =
        |levels: usize| Movie::from_value(json!({"id": "1", "deep": tower(json!(1), levels - 1, 0)})).expect("a movie");
    assert_eq!(at(MOVIE_NESTING_MAX).nesting(), MOVIE_NESTING_MAX);
    assert!(at(MOVIE_NESTING_MAX).validate().is_ok());
    let error = at(MOVIE_NESTING_MAX + 1).validate().expect_err("one level too deep");
    let message = error.to_string();
    assert!(
        message.contains("\"deep\"") && message.contains(&MOVIE_NESTING_MAX.to_string()),
        "the refusal names the field and the limit: {message}"
    );
    check_round_trip(json!({"id": "1", "deep": tower(json!("x"), MOVIE_NESTING_MAX - 1, u64::MAX)}))
        .expect("the deepest movie allowed reads back");
}

/// A journal an earlier release could write: an `added` record whose movie
/// nests 127 levels (its door parsed with `serde_json`'s limit of 128 and
/// checked nothing more), so the record is nested past 128. It opens, the
/// snapshot written at close (a file whose array adds one more level)
/// reads back, and `verify` passes.
#[test]
fn deep_movies_an_earlier_release_let_in_read_back() {
    use movie_queue::testing::{JOURNAL_DIR, encode_payload, encode_record, encode_segment_header, segment_name};
    use movie_queue::{Event, Seq};

    let deep = Movie::from_value(json!({"id": "1", "title": "Deep", "deep": tower(json!(1), 126, 0)}))
        .expect("a movie (Movie::from_value does not measure nesting)");
    assert_eq!(deep.nesting(), 127);
    let dir = scratch();
    let journal = dir.path().join(JOURNAL_DIR);
    std::fs::create_dir_all(&journal).expect("create the journal");
    let mut segment = encode_segment_header(Seq(1)).to_vec();
    let payload = encode_payload(1_760_000_000.0, &Event::Added { movie: deep }).expect("encode");
    assert!(
        serde_json::from_slice::<Value>(&payload).is_err(),
        "the record is past serde_json's own limit"
    );
    encode_record(&mut segment, Seq(1), Seq(1), &payload);
    std::fs::write(journal.join(segment_name(Seq(1))), segment).expect("write the segment");

    let opened = QueueManager::open(dir.path()).expect("a store an earlier release wrote opens");
    let written = pending_json(&opened);
    assert_eq!(written.len(), 1);
    opened.close().expect("close (writes the snapshot)");
    let reopened = QueueManager::open_read_only(dir.path()).expect("reopen from the snapshot");
    assert_eq!(pending_json(&reopened), written);
    let report = movie_queue::verify(dir.path()).expect("verify");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    drop(reopened);

    // Compacted: the compaction base (whose lists nest two levels deeper
    // still) holds the movie, and the store reads it back from the base
    // alone once the snapshot is gone.
    let writer = QueueManager::open(dir.path()).expect("a writer");
    writer.compact().expect("compact");
    writer.close().expect("close");
    assert!(journal.join("base.json").exists(), "compact wrote a base");
    let report = movie_queue::verify(dir.path()).expect("verify the compacted store");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    std::fs::remove_file(dir.path().join("queue_snapshot.json")).expect("remove the manifest");
    let from_base = QueueManager::open_read_only(dir.path()).expect("open from the base alone");
    assert_eq!(pending_json(&from_base), written);
}
