//! Changing a stored entry without parsing it: its stamps rewritten in its
//! JSON text, and one of its fields read from it. A failed movie moved
//! back to pending is restamped on every retry; parsing its whole entry
//! (movie, extra fields, queue fields) to change two fields cost a dozen
//! allocations a move. The text is what `serde_json` wrote for the entry
//! ([`super::slab::Node::new`]), so its members are in the serializer's
//! order: the movie's declared fields, its other fields, then the queue's
//! (`retry_count`, `last_error`, ...). The tests hold the rewrite equal to
//! parsing the entry back and serializing it with the new stamps.

use crate::json;
use crate::movie::{QUEUE_FIELDS, Stamp, StampValue};

/// Writes `entry` (an entry's compact JSON as the state stores it) into
/// `out` with `stamps` applied as serializing it would apply them: a
/// stamped field the entry has keeps its place with the new value (or is
/// dropped, for an absent stamp); the others follow the movie's fields,
/// in stamp order, before the queue's.
pub(super) fn restamped(entry: &str, stamps: &[Stamp], out: &mut Vec<u8>) {
    out.clear();
    out.push(b'{');
    let mut seen = [false; 8];
    let mut added = false;
    for (key, value) in json::members(entry) {
        if !added && QUEUE_FIELDS.contains(&key) {
            add_new(out, stamps, &seen);
            added = true;
        }
        match stamps.iter().position(|(stamped, _)| *stamped == key) {
            Some(index) => {
                seen[index] = true;
                write_stamp(out, key, stamps[index].1);
            }
            None => write_member(out, key, value.as_bytes()),
        }
    }
    if !added {
        add_new(out, stamps, &seen);
    }
    out.push(b'}');
}

/// The stamps the entry did not have, in order.
fn add_new(out: &mut Vec<u8>, stamps: &[Stamp], seen: &[bool]) {
    for (index, &(key, value)) in stamps.iter().enumerate() {
        if !seen.get(index).copied().unwrap_or(false) {
            write_stamp(out, key, value);
        }
    }
}

/// Writes a stamp as a member, its value as `serde_json` writes it (into
/// `out` directly: a move allocates nothing here).
fn write_stamp(out: &mut Vec<u8>, key: &str, value: StampValue) {
    let written = match value {
        StampValue::Int(number) => {
            write_key(out, key);
            serde_json::to_writer(&mut *out, &number)
        }
        StampValue::Text(text) => {
            write_key(out, key);
            serde_json::to_writer(&mut *out, text)
        }
        StampValue::Absent => Ok(()),
    };
    debug_assert!(written.is_ok(), "a number or a string always serializes");
}

/// Writes `"key":value` after a comma unless it is the first member.
fn write_member(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    write_key(out, key);
    out.extend_from_slice(value);
}

/// Writes `"key":` after a comma unless it is the first member.
fn write_key(out: &mut Vec<u8>, key: &str) {
    if out.len() > 1 {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// The number the entry holds in its top-level field `key`, if any.
pub(super) fn number_field(entry: &str, key: &str) -> Option<f64> {
    json::members(entry)
        .find(|(found, _)| *found == key)
        .and_then(|(_, value)| value.parse().ok())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::entry::{EntryFields, QueueEntry};

    fn stamp_value() -> impl Strategy<Value = StampValue> {
        prop_oneof![
            (-3_i64..2_000_000_000).prop_map(StampValue::Int),
            prop::sample::select(vec!["pending", "failed", "in \"flight\" é"]).prop_map(StampValue::Text),
            Just(StampValue::Absent),
        ]
    }

    fn stamps() -> impl Strategy<Value = Vec<Stamp>> {
        let keys = prop::sample::subsequence(vec!["status", "queued_at", "last_failed_at", "retry_attempt"], 0..=3)
            .prop_shuffle();
        keys.prop_flat_map(|keys| {
            let count = keys.len();
            (Just(keys), prop::collection::vec(stamp_value(), count))
                .prop_map(|(keys, values)| keys.into_iter().zip(values).collect())
        })
    }

    fn extra_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i32>().prop_map(Value::from),
            (-1e9_f64..1e9).prop_map(Value::from),
            "[a-z\"\\\\{}\\[\\],:é]{0,5}".prop_map(Value::from),
            Just(json!({"a": [1, {"b": "}"}], "c": "]"})),
        ]
    }

    fn entry() -> impl Strategy<Value = QueueEntry> {
        let extras = prop::collection::vec(
            (
                prop::sample::select(vec!["status", "queued_at", "zeta", "alpha", "retry_attempt", "x\"y"]),
                extra_value(),
            ),
            0..5,
        );
        let queue = (
            0_u32..3,
            prop::option::of("[a-z ]{0,6}"),
            prop::option::of(0.0_f64..2e9),
        );
        (extras, queue).prop_map(|(extras, (retry_count, last_error, failed_at))| {
            let mut object = Map::new();
            object.insert("id".into(), "7".into());
            object.insert("title".into(), "T".into());
            for (key, value) in extras {
                object.insert(key.into(), value);
            }
            if retry_count > 0 {
                object.insert("retry_count".into(), retry_count.into());
            }
            if let Some(error) = last_error {
                object.insert("last_error".into(), error.into());
            }
            if let Some(at) = failed_at {
                object.insert("failed_at".into(), at.into());
            }
            QueueEntry::from_value(Value::Object(object)).expect("a valid entry")
        })
    }

    proptest! {
        #[test]
        fn restamping_the_text_is_restamping_the_parsed_entry(entry in entry(), before in stamps(), after in stamps()) {
            let stored = serde_json::to_string(&EntryFields { stamps: &before, ..entry.fields() }).expect("serializes");
            let parsed: QueueEntry = serde_json::from_str(&stored).expect("parses");
            let expected = serde_json::to_string(&EntryFields { stamps: &after, ..parsed.fields() }).expect("serializes");
            let mut out = Vec::new();
            restamped(&stored, &after, &mut out);
            prop_assert_eq!(String::from_utf8(out).expect("UTF-8"), expected);
            prop_assert_eq!(number_field(&stored, "failed_at"), parsed.failed_at);
        }
    }
}
