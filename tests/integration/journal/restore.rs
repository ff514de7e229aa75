//! A store rebuilt from its records (`movie_queue::Restore`, what
//! `movie-queue restore --from` writes with) and the positions shippers
//! register (`shippers/<name>`), which `compact` keeps records for.

use std::fs;
use std::path::Path;

use crate::support::common::{movie, open, scratch};
use movie_queue::{Event, EventRecord, QueueManager, Restore, Seq, Until};

/// A closed store whose journal holds records of nine kinds.
fn varied_store(dir: &Path) -> Vec<EventRecord> {
    let qm = open(dir);
    for id in ["1", "2", "3", "4", "5"] {
        qm.add_to_pending(movie(id)).expect("add");
    }
    qm.take_next_pending().expect("take");
    qm.add_to_completed(movie("1")).expect("complete");
    qm.add_to_failed(movie("2"), "timeout", Some(1.0e9)).expect("fail");
    qm.move_failed_to_pending("2").expect("retry");
    qm.add_to_failed(movie("3"), "no seeds", None).expect("fail");
    qm.reset_failed_movie("3").expect("reset");
    qm.take_next_pending().expect("take");
    qm.requeue_in_flight().expect("requeue");
    qm.mark_movies_as_removed(["1", "2", "3"]).expect("mark");
    qm.add_to_removed(movie("5")).expect("remove");
    qm.restore_removed_movie("5").expect("restore");
    qm.remove_from_removed_queue("4").expect("forget");
    let records = qm
        .events_from(Seq(0))
        .expect("events")
        .collect::<movie_queue::Result<Vec<_>>>()
        .expect("readable");
    qm.close().expect("close");
    records
}

#[test]
fn a_store_restored_from_its_records_has_them_with_their_numbers_times_and_versions_and_a_new_identity() {
    let source = scratch();
    let records = varied_store(source.path());
    let target = scratch();
    let dir = target.path().join("restored");
    let mut restore = Restore::create(&dir).expect("create");
    for record in &records {
        restore.push(record).expect("push");
    }
    assert_eq!(restore.last_seq(), records.last().expect("records").seq);
    let id = restore.finish().expect("finish");

    let back: Vec<EventRecord> = movie_queue::events(&dir, Seq(0))
        .expect("events")
        .collect::<movie_queue::Result<_>>()
        .expect("readable");
    assert_eq!(back, records);
    assert!(movie_queue::verify(&dir).expect("verify").problems.is_empty());
    assert_eq!(movie_queue::store_id(&dir).expect("id"), Some(id));
    assert_ne!(
        movie_queue::store_id(source.path()).expect("id"),
        Some(id),
        "a store of its own"
    );
    let last = records.last().expect("records").seq;
    let at_end = |dir: &Path| movie_queue::replay(dir, Until::Seq(last)).expect("replay").state;
    assert_eq!(at_end(&dir), at_end(source.path()));

    // It is a store like any other: a writer goes on after the last record.
    let qm = QueueManager::open(&dir).expect("open");
    assert!(qm.add_to_pending(movie("6")).expect("add"));
    assert_eq!(qm.last_seq(), records.last().expect("records").seq.next());
    qm.close().expect("close");
}

#[test]
fn a_record_out_of_order_or_that_does_not_apply_is_refused_and_an_unfinished_restore_leaves_nothing() {
    let source = scratch();
    let records = varied_store(source.path());
    let target = scratch();
    let dir = target.path().join("restored");

    let mut restore = Restore::create(&dir).expect("create");
    let error = restore.push(&records[1]).expect_err("record 2 first");
    assert!(
        error.to_string().contains("record 2 came where record 1 was due"),
        "{error}"
    );
    drop(restore);
    assert!(!dir.exists(), "the directory it made is gone");

    let mut restore = Restore::create(&dir).expect("create");
    let taken = EventRecord::new(Seq(1), 1.0, Event::Taken { id: "nobody".into() });
    let error = restore.push(&taken).expect_err("does not apply");
    assert!(error.to_string().contains("does not apply"), "{error}");
    let error = Restore::create(&dir).expect_err("a second one, while this one runs");
    assert!(error.to_string().contains("is not empty"), "{error}");
    drop(restore);
    assert!(!dir.exists());

    // An empty directory given stays, empty.
    fs::create_dir(&dir).expect("mkdir");
    let restore = Restore::create(&dir).expect("create");
    let error = restore.finish().expect_err("no record");
    assert!(error.to_string().contains("no record to restore"), "{error}");
    assert_eq!(fs::read_dir(&dir).expect("list").count(), 0, "nothing left in it");
}

#[test]
fn a_directory_that_is_not_empty_is_refused_untouched() {
    let target = scratch();
    fs::write(target.path().join("notes.txt"), "mine").expect("write");
    let error = Restore::create(target.path()).expect_err("not empty");
    assert!(error.to_string().contains("is not empty"), "{error}");
    let names: Vec<_> = fs::read_dir(target.path())
        .expect("list")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["notes.txt"]);
}

/// A store of `count` movies in segments of 4 KiB.
fn segmented_store(dir: &Path, count: usize) {
    let qm = QueueManager::options().segment_bytes_max(4096).open(dir).expect("open");
    for index in 0..count {
        qm.add_to_pending(movie(&index.to_string())).expect("add");
    }
    qm.close().expect("close");
}

fn first_record(dir: &Path) -> Seq {
    movie_queue::events(dir, Seq(0))
        .expect("events")
        .next()
        .expect("a record")
        .expect("readable")
        .seq
}

fn compact(dir: &Path) {
    let qm = QueueManager::options().segment_bytes_max(4096).open(dir).expect("open");
    qm.compact().expect("compact");
    qm.close().expect("close");
}

#[test]
fn compact_keeps_the_records_a_registered_shipper_has_not_shipped_and_forgets_them_once_it_is_unregistered() {
    let store = scratch();
    let dir = store.path();
    segmented_store(dir, 300);
    movie_queue::register_shipper(dir, "backup", Seq(120)).expect("register");
    assert_eq!(
        movie_queue::shippers(dir).expect("list"),
        [("backup".to_owned(), Seq(120))]
    );
    assert_eq!(
        fs::read_to_string(dir.join("shippers/backup")).expect("the file"),
        "MVQSHIP1 120\n"
    );
    compact(dir);
    let first = first_record(dir);
    assert!(first > Seq(1), "segments before the shipper's were removed");
    assert!(first <= Seq(120), "record 120 on are kept, the first kept is {first}");

    // A registration that does not parse keeps nothing (and says so in the log).
    fs::write(dir.join("shippers/backup"), "MVQSHIP1 twelve\n").expect("damage");
    assert!(movie_queue::shippers(dir).expect("list").is_empty());
    fs::write(dir.join("shippers/backup"), "MVQSHIP1 120\n").expect("mend");

    assert!(movie_queue::unregister_shipper(dir, "backup").expect("unregister"));
    assert!(!movie_queue::unregister_shipper(dir, "backup").expect("again"));
    compact(dir);
    assert!(first_record(dir) > Seq(120), "without a shipper, compaction takes them");
}

#[test]
fn a_shippers_name_is_a_plain_word() {
    let store = scratch();
    for bad in ["", "a/b", "..", "a.b", "a b", &"x".repeat(65)] {
        assert!(!movie_queue::is_shipper_name(bad), "{bad:?}");
        assert!(
            movie_queue::register_shipper(store.path(), bad, Seq(1)).is_err(),
            "{bad:?}"
        );
    }
    assert!(movie_queue::is_shipper_name("movie-queue_2"));
}

#[test]
fn a_record_keeps_its_event_version_and_a_version_it_cannot_hold_is_refused() {
    let target = scratch();
    let dir = target.path().join("restored");
    let mut restore = Restore::create(&dir).expect("create");
    let added = EventRecord::new(Seq(1), 10.0, Event::Added { movie: movie("1") }).with_version(1);
    restore.push(&added).expect("a version 1 record");
    let removed = EventRecord::new(Seq(2), 11.0, Event::Removed { movie: movie("1") }).with_version(1);
    let error = restore.push(&removed).expect_err("removed came in version 2");
    assert!(error.to_string().contains("came in version 2"), "{error}");
    let future = EventRecord::new(Seq(2), 11.0, Event::Taken { id: "1".into() }).with_version(3);
    assert!(restore.push(&future).is_err(), "a version this build does not read");
    restore.finish().expect("finish");
    let back: Vec<EventRecord> = movie_queue::events(&dir, Seq(0))
        .expect("events")
        .collect::<movie_queue::Result<_>>()
        .expect("readable");
    assert_eq!(back, [added]);
}
