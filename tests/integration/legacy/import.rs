//! Legacy import: a directory holding the three JSON files exactly as the
//! Python Movie Sync application writes them (extra fields, integer and
//! float timestamps, `year` as string or integer) and no journal is imported
//! as one `Imported` event; every value comes back unchanged, timestamps
//! bit for bit, and a corrupt legacy file is an error, never emptied.

use crate::support::common;

use common::scratch;
use movie_queue::{Event, Place, QueueManager, Seq};
use serde_json::{Value, json};

fn legacy_files() -> [(&'static str, Value); 3] {
    [
        (
            "queue_pending.json",
            json!([
                {"id": "p1", "title": "Heat", "year": 1995, "queued_at": 1760806482.1234567,
                 "status": "queued", "source": {"list": "watchlist", "rank": [1, 2.5]}},
                {"id": "p2", "title": "Up", "year": "2009", "slug": "up", "imdb_id": "tt1049413"}
            ]),
        ),
        (
            "queue_failed.json",
            json!([
                {"id": "f1", "title": "The Matrix", "year": "1999", "slug": "the-matrix",
                 "imdb_id": "tt0133093", "retry_count": 2, "last_error": "Not found on tracker",
                 "retry_after": 1760813282.5, "failed_at": 1760806482, "quality": "1080p"}
            ]),
        ),
        (
            "queue_completed.json",
            json!([
                {"id": "c1", "title": "Alien", "year": "1979", "completed_at": 1760813282.9876542}
            ]),
        ),
    ]
}

fn write_legacy(dir: &std::path::Path) {
    for (name, value) in legacy_files() {
        std::fs::write(dir.join(name), serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    }
}

fn as_values(entries: &[movie_queue::QueueEntry]) -> Vec<Value> {
    entries.iter().map(movie_queue::QueueEntry::to_value).collect()
}

#[test]
fn legacy_files_are_imported_as_one_event_with_every_value_kept() {
    let dir = scratch();
    write_legacy(dir.path());
    let qm = QueueManager::open(dir.path()).unwrap();
    assert_eq!(qm.last_seq(), Seq(1));
    let events: Vec<_> = qm.events_from(Seq(1)).unwrap().collect::<Result<_, _>>().unwrap();
    assert!(matches!(events[0].event, Event::Imported { .. }));
    let [pending, failed, completed] = legacy_files().map(|(_, value)| value);
    // An integer time stays an integer.
    let expected_failed = failed.clone();
    // Movie fields come first in the documented order, then the queue's; values are equal.
    assert_eq!(as_values(&qm.list(Place::Pending)), pending.as_array().unwrap().clone());
    assert_eq!(
        as_values(&qm.list(Place::Failed)),
        expected_failed.as_array().unwrap().clone()
    );
    assert_eq!(
        as_values(&qm.list(Place::Completed)),
        completed.as_array().unwrap().clone()
    );
    let (_, heat) = qm.get("p1").unwrap();
    assert_eq!(
        heat.movie.extra()["queued_at"].as_f64().unwrap().to_bits(),
        1760806482.1234567_f64.to_bits()
    );
    assert_eq!(
        qm.get("c1").unwrap().1.completed_at.unwrap().to_bits(),
        1760813282.9876542_f64.to_bits()
    );
    qm.close().unwrap();

    // The files written back hold the same text for every timestamp.
    let written = std::fs::read_to_string(dir.path().join("queue_completed.json")).unwrap();
    assert!(written.contains("1760813282.9876542"), "{written}");
    let written = std::fs::read_to_string(dir.path().join("queue_pending.json")).unwrap();
    assert!(written.contains("1760806482.1234567"), "{written}");

    // Reopening does not import again: the journal is the truth now.
    let qm = QueueManager::open(dir.path()).unwrap();
    assert_eq!(qm.last_seq(), Seq(1));
    assert_eq!(qm.get_statistics().pending, 2);
    assert_eq!(qm.get("f1").unwrap().1.retry_count, 2);
}

#[test]
fn a_corrupt_legacy_file_is_reported_never_emptied() {
    let dir = scratch();
    write_legacy(dir.path());
    let failed = dir.path().join("queue_failed.json");
    std::fs::write(&failed, b"[{\"id\": \"f1\", \"title\": ").unwrap();
    let error = QueueManager::open(dir.path()).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("queue_failed.json"), "{message}");
    assert!(message.contains("nothing else holds these entries"), "{message}");
    assert!(
        !dir.path().join("journal").exists() || std::fs::read_dir(dir.path().join("journal")).unwrap().count() == 0
    );
    assert_eq!(
        std::fs::read(&failed).unwrap(),
        b"[{\"id\": \"f1\", \"title\": ",
        "the file is untouched"
    );
}

#[test]
fn a_movie_without_an_id_in_a_legacy_file_names_its_entry() {
    let dir = scratch();
    std::fs::write(
        dir.path().join("queue_pending.json"),
        br#"[{"id":"1","title":"a","year":"1"},{"title":"b","year":"2"}]"#,
    )
    .unwrap();
    let message = QueueManager::open(dir.path()).unwrap_err().to_string();
    assert!(
        message.contains("queue_pending.json") && message.contains("entry 1"),
        "{message}"
    );
}

/// A hand-edited legacy store can list an id twice (here in pending and in
/// failed). A reader sees what the writer's import will journal: the first
/// entry of the id, the later one skipped.
#[test]
fn an_id_listed_twice_in_legacy_files_reads_as_the_writer_imports_it() {
    let dir = scratch();
    std::fs::write(
        dir.path().join("queue_pending.json"),
        br#"[{"id":"1","title":"first","year":"1"},{"id":"2","title":"b","year":"2"}]"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("queue_failed.json"),
        br#"[{"id":"1","title":"second","year":"1","retry_count":1}]"#,
    )
    .unwrap();
    let ids_titles = |qm: &QueueManager, place| -> Vec<(String, String)> {
        qm.list(place)
            .iter()
            .map(|entry| {
                (
                    entry.id().to_owned(),
                    entry.movie.title().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let reader = QueueManager::open_read_only(dir.path()).unwrap();
    let read = (ids_titles(&reader, Place::Pending), ids_titles(&reader, Place::Failed));
    drop(reader);
    let writer = QueueManager::open(dir.path()).unwrap();
    let written = (ids_titles(&writer, Place::Pending), ids_titles(&writer, Place::Failed));
    assert_eq!(read, written);
    assert_eq!(
        read,
        (vec![("1".into(), "first".into()), ("2".into(), "b".into())], Vec::new())
    );
}

/// A legacy file (or a directory given to `import`) with an entry nested
/// past `MOVIE_NESTING_MAX`: every open refuses it by name — the reader
/// as the writer — before a byte is written, and the files stay as they
/// were; `import` refuses it the same way; `repair` keeps the entries
/// before it and sets the file aside.
#[test]
fn an_entry_nested_past_the_limit_is_refused_by_name_before_anything_is_written() {
    let deep = (0..movie_queue::MOVIE_NESTING_MAX).fold(json!(1), |inner, _| json!([inner]));
    let pending = serde_json::to_vec(&json!([
        {"id": "p1", "title": "Heat", "year": 1995},
        {"id": "p2", "title": "Up", "year": "2009", "deep": deep},
    ]))
    .unwrap();
    let dir = scratch();
    std::fs::write(dir.path().join("queue_pending.json"), &pending).unwrap();
    let names = |dir: &std::path::Path| {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    for error in [
        QueueManager::open_read_only(dir.path()).unwrap_err(),
        QueueManager::open(dir.path()).unwrap_err(),
        movie_queue::verify(dir.path()).unwrap_err(),
    ] {
        let message = error.to_string();
        assert!(
            message.contains("queue_pending.json") && message.contains("entry 1") && message.contains("\"deep\""),
            "{message}"
        );
        assert!(
            message.contains(&format!("limit of {}", movie_queue::MOVIE_NESTING_MAX)),
            "{message}"
        );
    }
    assert_eq!(
        std::fs::read(dir.path().join("queue_pending.json")).unwrap(),
        pending,
        "untouched"
    );
    assert!(
        !dir.path().join("journal").exists(),
        "nothing was written: {:?}",
        names(dir.path())
    );

    let other = scratch();
    let manager = QueueManager::open(other.path()).unwrap();
    let refused = manager.import(dir.path()).unwrap_err().to_string();
    assert!(refused.contains("entry 1"), "{refused}");
    assert_eq!(manager.last_seq(), Seq(0), "import wrote nothing");
    drop(manager);

    let report = movie_queue::repair(dir.path()).expect("repair");
    assert!(!report.set_aside.is_empty(), "{report:?}");
    let repaired = QueueManager::open_read_only(dir.path()).unwrap();
    let ids: Vec<String> = repaired
        .list(Place::Pending)
        .iter()
        .map(|entry| entry.id().to_owned())
        .collect();
    assert_eq!(ids, ["p1"]);
}
