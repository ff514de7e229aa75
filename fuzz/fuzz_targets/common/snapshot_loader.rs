//! `snapshot_loader`: arbitrary bytes as the documented JSON files and the
//! snapshot manifest.
//!
//! Input: byte 0 picks the mode. Bit 0 clear: the rest is one file, used
//! as `queue_pending.json`. Bit 0 set: three chunks are the three files and
//! the rest the manifest (bit 1 set: a manifest consistent with the files
//! is written instead, covering the `u64` that follows, with `in_flight`
//! from the next byte).
//!
//! Properties: nothing panics; parsing an entry loses or changes no field
//! (up to the documented normalizations); an entry or movie that parses re-serializes
//! (`to_value`, and through `serde`) and re-parses to an equal value; a
//! whole file parses exactly when each of its entries does; the legacy
//! loader and the snapshot loader return exactly what the files parse to;
//! a state built from a snapshot, written as a snapshot and loaded again,
//! is the same state.

use std::path::Path;

use movie_queue::testing::{self, MANIFEST_FILE, QUEUE_FILES, SnapshotData};
use movie_queue::{Event, Movie, QueueEntry, Seq};
use serde_json::Value;

use movie_queue::testing::Storage;

use super::bytes::{Builder, Cursor};
use super::memory::MemoryStorage;

/// The most array elements checked one by one (bounds the time per input).
const ELEMENTS_CHECKED_MAX: usize = 64;

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut cursor = Cursor::new(data);
    let mode = cursor.byte();
    let mut files: [Vec<u8>; 3] = Default::default();
    let root = Path::new("/store");
    let memory = MemoryStorage::new();
    if mode & 1 == 0 {
        files[0] = cursor.rest().to_vec();
        check_file(&files[0]);
        memory.put(&root.join(QUEUE_FILES[0]), &files[0]);
    } else {
        for (file, name) in files.iter_mut().zip(QUEUE_FILES) {
            *file = cursor.chunk().to_vec();
            check_file(file);
            memory.put(&root.join(name), file);
        }
    }
    check_legacy(&memory, root, &files, mode & 1 == 0);
    if mode & 1 != 0 {
        if mode & 2 != 0 {
            let seq = Seq(cursor.u64());
            let in_flight = u64::from(cursor.byte());
            // The three chunks are the first three files; removed is empty.
            let [pending, failed, completed] = files.clone();
            let all = [pending, failed, completed, b"[]\n".to_vec()];
            testing::write_files(&memory, root, &all, seq, in_flight).expect("memory");
            check_consistent_snapshot(&memory, root, &files, seq, in_flight);
        } else {
            memory.put(&root.join(MANIFEST_FILE), cursor.rest());
            if let Ok(Some(data)) = testing::load_snapshot(&memory, root) {
                check_snapshot_data(data);
            }
        }
    }
}

/// One file's bytes: as entries, as a JSON value, as movies, as events.
fn check_file(bytes: &[u8]) {
    let parsed = testing::parse_entries(bytes);
    if let Ok(entries) = &parsed {
        for entry in entries.iter().take(ELEMENTS_CHECKED_MAX) {
            check_entry(entry);
        }
        let rendered = serde_json::to_vec_pretty(entries).expect("entries serialize");
        assert_eq!(
            testing::parse_entries(&rendered).as_ref(),
            Ok(entries),
            "a file of entries re-renders to the same entries"
        );
    }
    if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        if let Value::Array(elements) = &value {
            let each_parses = elements
                .iter()
                .all(|element| QueueEntry::from_value(element.clone()).is_ok());
            assert_eq!(
                parsed.is_ok(),
                each_parses,
                "a file parses exactly when each entry does"
            );
            for element in elements.iter().take(ELEMENTS_CHECKED_MAX) {
                check_value(element);
            }
        } else {
            assert!(parsed.is_err(), "only a JSON array is a queue file");
            check_value(&value);
        }
    } else {
        assert!(parsed.is_err(), "bytes that are not JSON are not a queue file");
    }
    if let Ok(event) = serde_json::from_slice::<Event>(bytes) {
        let text = serde_json::to_vec(&event).expect("an event serializes");
        let again: Event = serde_json::from_slice(&text).expect("a serialized event parses");
        assert_eq!(again, event, "event round trip");
    }
}

/// One JSON value as an entry and as a movie.
fn check_value(value: &Value) {
    if let Ok(entry) = QueueEntry::from_value(value.clone()) {
        check_entry(&entry);
        check_lossless(value, &entry);
        let through_serde: QueueEntry = serde_json::from_value(value.clone()).expect("from_value and serde agree");
        assert_eq!(through_serde, entry);
    }
    match Movie::from_value(value.clone()) {
        Ok(movie) => {
            check_movie(&movie);
            assert!(QueueEntry::from_value(value.clone()).is_ok() || has_bad_queue_field(value));
        }
        Err(_) => assert!(QueueEntry::from_value(value.clone()).is_err()),
    }
}

/// Does the object carry a queue-managed field `QueueEntry` refuses (and
/// `Movie` drops)?
fn has_bad_queue_field(value: &Value) -> bool {
    let Value::Object(map) = value else {
        return false;
    };
    let time_ok = |key: &str| matches!(map.get(key), None | Some(Value::Null | Value::Number(_)));
    let count_ok = match map.get("retry_count") {
        None | Some(Value::Null) => true,
        Some(Value::Number(number)) => number.as_u64().is_some_and(|count| u32::try_from(count).is_ok()),
        Some(_) => false,
    };
    !(count_ok && time_ok("retry_after") && time_ok("failed_at") && time_ok("completed_at"))
}

/// Nothing of the original object is lost or changed by parsing it as an
/// entry, up to the documented normalizations (`null` as absent, a
/// non-string `last_error` as its JSON text, times as `f64`).
fn check_lossless(original: &Value, entry: &QueueEntry) {
    let Value::Object(fields) = original else {
        return;
    };
    let value = entry.to_value();
    let time = |field: Option<f64>, original: &Value| {
        assert_eq!(field, original.as_f64(), "a time changed: {original}");
    };
    for (key, original) in fields {
        match key.as_str() {
            "retry_count" => assert_eq!(u64::from(entry.retry_count), original.as_u64().unwrap_or(0)),
            "last_error" => {
                let expected = match original {
                    Value::Null => None,
                    Value::String(text) => Some(text.clone()),
                    other => Some(other.to_string()),
                };
                assert_eq!(entry.last_error, expected, "last_error changed");
            }
            "retry_after" => time(entry.retry_after, original),
            "failed_at" => time(entry.failed_at, original),
            "completed_at" => time(entry.completed_at, original),
            "slug" | "imdb_id" if original.is_null() => assert!(value.get(key).is_none()),
            _ => assert_eq!(value.get(key), Some(original), "field {key:?} changed"),
        }
    }
}

fn check_entry(entry: &QueueEntry) {
    let value = entry.to_value();
    let again = QueueEntry::from_value(value.clone()).expect("an entry's value parses");
    assert_eq!(&again, entry, "entry round trip through {value}");
    assert_eq!(again.to_value(), value, "an entry's value is stable");
    let text = serde_json::to_vec(entry).expect("an entry serializes");
    let through_serde: QueueEntry = serde_json::from_slice(&text).expect("a serialized entry parses");
    assert_eq!(&through_serde, entry, "entry round trip through serde");
    check_movie(&entry.movie);
}

fn check_movie(movie: &Movie) {
    movie.validate().expect("a parsed movie is valid");
    let value = movie.to_value();
    let again = Movie::from_value(value.clone()).expect("a movie's value parses");
    assert_eq!(&again, movie, "movie round trip through {value}");
    let text = serde_json::to_vec(movie).expect("a movie serializes");
    let through_serde: Movie = serde_json::from_slice(&text).expect("a serialized movie parses");
    assert_eq!(&through_serde, movie, "movie round trip through serde");
}

/// The legacy loader returns the files' entries, or fails when one does not parse.
fn check_legacy(memory: &MemoryStorage, root: &Path, files: &[Vec<u8>; 3], only_pending: bool) {
    let loaded = testing::load_legacy(memory, root);
    let parsed: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            if only_pending && index > 0 {
                Ok(Vec::new())
            } else {
                testing::parse_entries(bytes)
            }
        })
        .collect();
    match loaded {
        Ok(Some(data)) => {
            assert!(data.removed.is_empty());
            for (list, parsed) in [&data.pending, &data.failed, &data.completed].into_iter().zip(&parsed) {
                assert_eq!(Ok(list), parsed.as_ref(), "load_legacy returns what the file parses to");
            }
            let lists = [Vec::new(), data.pending, data.failed, data.completed, data.removed];
            // Files listing an id twice are a legacy store still (the
            // import keeps the first entry); they make no checkpoint.
            if let Ok(data) = SnapshotData::from_lists(Seq(0), lists) {
                check_snapshot_data(data);
            }
        }
        Ok(None) => panic!("load_legacy found no file where one was written"),
        // A legacy entry nested past the door's limit is refused too.
        Err(error) => assert!(
            parsed.iter().any(|parsed| parsed.is_err()
                || parsed
                    .as_ref()
                    .is_ok_and(|entries| entries.iter().any(|entry| entry.movie.validate().is_err()))),
            "load_legacy failed on files that parse to movies the door accepts: {error}"
        ),
    }
}

/// A manifest written by the library over these files loads exactly when
/// every file parses and the in-flight count fits.
fn check_consistent_snapshot(memory: &MemoryStorage, root: &Path, files: &[Vec<u8>; 3], seq: Seq, in_flight: u64) {
    let parsed: Vec<_> = files.iter().map(|bytes| testing::parse_entries(bytes)).collect();
    let loaded = testing::load_snapshot(memory, root);
    match (&parsed[..], loaded) {
        ([Ok(pending), Ok(failed), Ok(completed)], Ok(Some(data))) => {
            assert_eq!(data.seq, seq);
            let [mut all_pending, rest, loaded_failed, loaded_completed, removed] = data.lists();
            assert_eq!(all_pending.len() as u64, in_flight);
            all_pending.extend(rest);
            assert_eq!(&all_pending, pending);
            assert_eq!((&loaded_failed, &loaded_completed), (failed, completed));
            assert!(removed.is_empty());
            check_snapshot_data(data);
        }
        // The loader refuses a sequence number no journal reaches (the
        // fuzzer writes any u64; the library only ever writes real ones),
        // and files that list an id twice (they make no state).
        ([Ok(pending), Ok(failed), Ok(completed)], Err(rejected)) => assert!(
            in_flight > pending.len() as u64
                || seq.0 > movie_queue::testing::SEQ_MAX
                || lists_an_id_twice(&[pending, failed, completed]),
            "a consistent snapshot was rejected: {rejected:?}"
        ),
        (_, Ok(None)) => panic!("the manifest just written is missing"),
        (_, Ok(Some(_))) => panic!("a snapshot with a file that does not parse was loaded"),
        (_, Err(_)) => {}
    }
}

/// Does any id appear twice among these lists?
fn lists_an_id_twice(lists: &[&Vec<QueueEntry>]) -> bool {
    let mut seen = std::collections::HashSet::new();
    lists
        .iter()
        .flat_map(|list| list.iter())
        .any(|entry| !seen.insert(entry.id()))
}

/// A state built from snapshot data survives a snapshot round trip.
fn check_snapshot_data(data: SnapshotData) {
    let seq = data.seq;
    let state = data.into_state();
    let memory = MemoryStorage::new();
    let root = Path::new("/again");
    memory.create_dir_all(root).expect("memory");
    testing::write_snapshot(&memory, root, &state, seq).expect("memory");
    let loaded = testing::load_snapshot(&memory, root)
        .expect("a written snapshot is consistent")
        .expect("a written snapshot has a manifest");
    assert_eq!(loaded.seq, seq);
    let again = loaded.into_state();
    assert!(again == state, "snapshot round trip of a state");
}

/// Seed inputs: the seed's documented files, a consistent snapshot, odd values.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let pending = br#"[{"id":"123","title":"The Matrix","year":"1999","slug":"the-matrix","imdb_id":"tt0133093"},{"id":"5","title":"Heat","year":1995,"queued_at":1760806482.5,"status":"queued","nested":{"a":[1,2.5,null]}}]"#;
    let failed = br#"[{"id":"7","title":"Alien","year":"1979","retry_count":2,"last_error":"Not found on tracker","retry_after":1760813282.5,"failed_at":1760806482}]"#;
    let completed = br#"[{"id":"9","title":"Up","year":2009,"completed_at":1760813282.5}]"#;
    let mut snapshot = Builder::default();
    snapshot
        .byte(3)
        .chunk(pending)
        .chunk(failed)
        .chunk(completed)
        .u64(12)
        .byte(1);
    let mut manifest = Builder::default();
    manifest.byte(1).chunk(pending).chunk(failed).chunk(completed);
    manifest
        .raw(br#"{"version":1,"seq":3,"in_flight":0,"files":[{"name":"queue_pending.json","bytes":10,"crc32":0}]}"#);
    vec![
        ("pending_file", [&[0_u8][..], pending].concat()),
        ("failed_file", [&[0_u8][..], failed].concat()),
        ("odd_values", b"\x00[{\"id\":\"1\",\"title\":\"\",\"year\":-9223372036854775808,\"retry_count\":null,\"last_error\":[1],\"completed_at\":1e300,\"x\":18446744073709551615}]".to_vec()),
        ("consistent_snapshot", snapshot.finish()),
        ("raw_manifest", manifest.finish()),
    ]
}
