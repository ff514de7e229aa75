//! `movie_round_trip`: whatever a door accepts, the next open reads back.
//!
//! Input: byte 0 picks a tower (its low 7 bits: how many arrays and
//! objects to wrap around the `"deep"` field, 0 for none; bit 7: objects
//! instead of arrays); the rest is JSON text, parsed as a movie object
//! (`movie-queue add --json` reads it this way).
//!
//! Properties: nothing panics; a movie `Movie::from_value` builds and
//! `validate` refuses is deeper than `MOVIE_NESTING_MAX` and
//! `add_to_pending` refuses it writing nothing; a movie `validate`
//! accepts is added, and after a close the reopen from the snapshot, the
//! reopen from the journal alone (the manifest removed) and `replay` list
//! exactly the same entry, byte for byte; `verify` finds nothing wrong.

use movie_queue::{Error, MOVIE_NESTING_MAX, Movie, Place, QueueManager, Until};
use serde_json::{Value, json};

use super::bytes::{Builder, Cursor};

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut cursor = Cursor::new(data);
    let tower = cursor.byte();
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(cursor.rest()) else {
        return;
    };
    if tower & 0x7f != 0 {
        let deep = (0..tower & 0x7f).fold(object.remove("deep").unwrap_or(Value::Null), |inner, _| {
            if tower & 0x80 == 0 {
                json!([inner])
            } else {
                json!({ "k": inner })
            }
        });
        object.insert("deep".into(), deep);
    }
    check(Value::Object(object));
}

/// The round trip of one JSON value through `Movie::from_value` and a
/// store (the properties in the module's docs); panics naming the one
/// that breaks. `tests/integration/model/round_trip.rs` runs it too.
pub fn check(object: Value) {
    let Ok(movie) = Movie::from_value(object) else {
        return;
    };
    let dir = super::recovery_dir::scratch();
    let manager = QueueManager::open(dir.path()).expect("open a scratch store");
    if movie.validate().is_err() {
        assert!(
            movie.nesting() > MOVIE_NESTING_MAX,
            "refused, yet not too deep: {movie:?}"
        );
        let refused = manager.add_to_pending(movie);
        assert!(matches!(refused, Err(Error::InvalidMovie(_))), "{refused:?}");
        assert_eq!(manager.last_seq().0, 0, "a refused movie wrote nothing");
        return;
    }
    assert!(manager.add_to_pending(movie).expect("an accepted movie is added"));
    let written = pending(&manager);
    manager.close().expect("close");

    let from_snapshot = QueueManager::open_read_only(dir.path()).expect("reopen from the snapshot");
    assert_eq!(pending(&from_snapshot), written, "from the snapshot");
    let replayed = movie_queue::replay(dir.path(), Until::Seq(from_snapshot.last_seq())).expect("replay");
    let replayed: Vec<String> = replayed.state.pending().map(|entry| text(&entry)).collect();
    assert_eq!(replayed, written, "replayed");
    drop(from_snapshot);
    std::fs::remove_file(dir.path().join(movie_queue::testing::MANIFEST_FILE)).expect("remove the manifest");
    let from_journal = QueueManager::open(dir.path()).expect("reopen from the journal alone");
    assert_eq!(pending(&from_journal), written, "from the journal");
    from_journal.close().expect("close");
    let report = movie_queue::verify(dir.path()).expect("verify");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

fn text(entry: &movie_queue::QueueEntry) -> String {
    serde_json::to_string(entry).expect("an entry serializes")
}

fn pending(manager: &QueueManager) -> Vec<String> {
    manager.list(Place::Pending).iter().map(text).collect()
}

/// Seed inputs: a plain movie, every JSON type with escapes, the deepest
/// tower allowed and one level more, both of arrays and of objects.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let input = |tower: u8, json: &str| Builder::default().byte(tower).raw(json.as_bytes()).finish();
    let limit = u8::try_from(MOVIE_NESTING_MAX - 1).unwrap_or(u8::MAX);
    vec![
        ("plain", input(0, r#"{"id":"603","title":"The Matrix","year":"1999"}"#)),
        (
            "every_type",
            input(
                0,
                r#"{"id":"7\n\u001b[31m","year":-9223372036854775808,"n":18446744073709551615,"f":1e308,"s":"\u202e\"\\","a":[null,true,{"retry_count":3}],"status":"x","queued_at":1.5}"#,
            ),
        ),
        ("deepest_arrays", input(limit, r#"{"id":"1","deep":1}"#)),
        ("one_too_deep_objects", input(0x80 | (limit + 1), r#"{"id":"1"}"#)),
    ]
}
