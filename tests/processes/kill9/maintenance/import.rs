//! A legacy store's first open (its import) killed part-way (see the module above for the oracle).

use super::*;

// ----- legacy import ------------------------------------------------------------------

/// The four documented files as the application writes them.
const LEGACY_FILES: [&str; 4] = [
    "queue_pending.json",
    "queue_failed.json",
    "queue_completed.json",
    "queue_removed.json",
];

struct ImportFixture {
    /// A directory holding only the legacy files.
    pristine: tempfile::TempDir,
    /// Their bytes, by name.
    files: Vec<(&'static str, Vec<u8>)>,
    /// Their entries: pending, failed, completed, removed.
    entries: [Vec<Value>; 4],
    /// The state of an uninterrupted import.
    imported: QueueState,
}

/// A legacy entry of each queue, varied as the application's are.
fn legacy_entry(index: usize) -> (usize, Value) {
    let id = format!("tt{index:07}");
    let title = format!("Film {index} \u{e9}t\u{e9}");
    let year = if index.is_multiple_of(2) {
        json!(1950 + index % 70)
    } else {
        json!(format!("{}", 1950 + index % 70))
    };
    let queued_at = if index.is_multiple_of(3) {
        json!(1_760_806_482 + index as u64)
    } else {
        json!(1_760_806_482.123_456_7 + index as f64)
    };
    match index % 20 {
        0..=9 => {
            let mut entry = json!({"id": id, "title": title, "year": year});
            let fields = entry.as_object_mut().expect("an object");
            if index % 4 == 1 {
                fields.insert("slug".into(), json!(format!("film-{index}")));
                fields.insert("imdb_id".into(), json!(id));
            }
            if index.is_multiple_of(7) {
                fields.insert("slug".into(), Value::Null);
            }
            fields.insert("queued_at".into(), queued_at);
            fields.insert("source".into(), json!({"list": "watchlist", "rank": [index, 2.5]}));
            if index % 5 == 3 {
                fields.insert("retry_count".into(), json!(1 + index % 3));
                fields.insert("last_error".into(), json!("Connection reset"));
            }
            (0, entry)
        }
        10..=13 => (
            1,
            json!({"id": id, "title": title, "year": year, "quality": "1080p",
                   "retry_count": 1 + index % 6, "last_error": format!("Not found on tracker ({index})"),
                   "retry_after": 1_760_813_282.5 + index as f64, "failed_at": 1_760_806_482 + index as u64}),
        ),
        14..=18 => {
            let completed_at = if index.is_multiple_of(2) {
                json!(1_760_813_282 + index as u64)
            } else {
                json!(1_760_813_282.987_654_2 + index as f64)
            };
            (
                2,
                json!({"id": id, "title": title, "year": year, "completed_at": completed_at}),
            )
        }
        _ => (
            3,
            json!({"id": id, "title": title, "year": year, "status": "removed",
                   "removed_at": 1_760_900_000 + index as u64}),
        ),
    }
}

fn import_fixture(entries: usize) -> ImportFixture {
    let pristine = scratch();
    let mut lists: [Vec<Value>; 4] = Default::default();
    for index in 0..entries {
        let (queue, entry) = legacy_entry(index);
        lists[queue].push(entry);
    }
    let mut files = Vec::new();
    for (name, list) in LEGACY_FILES.into_iter().zip(&lists) {
        let bytes = serde_json::to_vec_pretty(list).expect("render a legacy file");
        std::fs::write(pristine.path().join(name), &bytes).expect("write a legacy file");
        files.push((name, bytes));
    }
    let reference = scratch();
    let copy = reference.path().join("store");
    reset_dir(pristine.path(), &copy);
    let qm = QueueManager::open(&copy).expect("the reference import");
    assert_lists(&qm, &lists, "the reference import");
    let imported = qm.state();
    qm.close().expect("close the reference import");
    ImportFixture {
        pristine,
        files,
        entries: lists,
        imported,
    }
}

/// The queues of `qm` are exactly the legacy files' entries, in order.
#[track_caller]
fn assert_lists(qm: &QueueManager, entries: &[Vec<Value>; 4], context: &str) {
    let places = [Place::Pending, Place::Failed, Place::Completed, Place::Removed];
    for (place, expected) in places.into_iter().zip(entries) {
        let got: Vec<Value> = qm.list(place).iter().map(movie_queue::QueueEntry::to_value).collect();
        if got != *expected {
            let first = got
                .iter()
                .zip(expected)
                .position(|(got, expected)| got != expected)
                .unwrap_or(got.len().min(expected.len()));
            panic!(
                "{context}: {place} holds {} entries, the legacy file {}; the first difference at {first}: {:?} vs {:?}",
                got.len(),
                expected.len(),
                got.get(first),
                expected.get(first)
            );
        }
    }
    assert_eq!(qm.list(Place::InFlight).len(), 0, "{context}: nothing in flight");
}

/// After a kill: not imported (the legacy files intact byte for byte), or
/// imported whole; a reader sees the files' entries either way.
fn check_import_after_kill(store: &Path, fixture: &ImportFixture, context: &str, tally: &mut Tally) {
    let imported = !segments(store).is_empty();
    if imported {
        tally.after_state += 1;
    } else {
        for (name, bytes) in &fixture.files {
            assert!(
                std::fs::read(store.join(name)).ok().as_ref() == Some(bytes),
                "{context}: no journal, and {name} is not the legacy file it was"
            );
        }
        assert!(
            !store.join(movie_queue::testing::MANIFEST_FILE).exists(),
            "{context}: no journal, yet a manifest"
        );
        tally.before_state += 1;
    }
    let report = movie_queue::verify(store).unwrap_or_else(|error| panic!("{context}: verify: {error}"));
    assert_eq!(
        report.start == movie_queue::Start::Legacy,
        !imported,
        "{context}: verify starts from {}",
        report.start
    );
    let reader = QueueManager::open_read_only(store).unwrap_or_else(|error| panic!("{context}: a reader: {error}"));
    assert_lists(
        &reader,
        &fixture.entries,
        &format!("{context}: a reader after the kill"),
    );
    assert!(reader.state() == fixture.imported, "{context}: a reader's state");
}

/// The next open: imports (if it must), and holds exactly the files' entries.
fn finish_import(store: &Path, fixture: &ImportFixture, context: &str) {
    let qm = QueueManager::open(store).unwrap_or_else(|error| panic!("{context}: the next open: {error}"));
    assert_lists(&qm, &fixture.entries, &format!("{context}: the next open"));
    assert!(qm.state() == fixture.imported, "{context}: the next open's state");
    assert!(
        full_replay(store) == fixture.imported,
        "{context}: a full replay differs"
    );
    let events: Vec<EventRecord> = qm
        .events_from(Seq(0))
        .unwrap_or_else(|error| panic!("{context}: the event log: {error}"))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|error| panic!("{context}: an event of the log: {error}"));
    assert!(!events.is_empty(), "{context}: an import is journaled");
    for (index, record) in events.iter().enumerate() {
        assert_eq!(record.seq, Seq(index as u64 + 1), "{context}: the import's records");
        assert!(
            matches!(record.event, movie_queue::Event::Imported { .. }),
            "{context}: record {} is {}",
            record.seq,
            record.event.kind()
        );
    }
    qm.close().unwrap_or_else(|error| panic!("{context}: close: {error}"));
    let report = movie_queue::verify(store).unwrap_or_else(|error| panic!("{context}: verify: {error}"));
    assert!(
        report.problems.is_empty(),
        "{context}: verify found {:?}",
        report.problems
    );
    assert_eq!(report.last_seq, events.len() as u64, "{context}: verify's last record");
    let qm = QueueManager::open(store).unwrap_or_else(|error| panic!("{context}: reopening: {error}"));
    assert!(qm.state() == fixture.imported, "{context}: reopened after the import");
    qm.close().unwrap_or_else(|error| panic!("{context}: close: {error}"));
}

fn import_kills(test: &str, entries: usize, kills: usize) -> Tally {
    let started = Instant::now();
    let mut random = Random::new(test);
    let fixture = import_fixture(entries);
    eprintln!(
        "{test}: {entries} legacy entries, {} bytes of legacy files, prepared in {:.1?}",
        fixture.files.iter().map(|(_, bytes)| bytes.len()).sum::<usize>(),
        started.elapsed()
    );
    let work = scratch();
    let store = work.path().join("store");
    let duration = calibrate(fixture.pristine.path(), &store, Op::Import, test, |store| {
        finish_import(store, &fixture, &format!("{test}: the calibration run"));
    });
    let mut tally = Tally::default();
    for kill in 0..kills {
        reset_dir(fixture.pristine.path(), &store);
        let delay = random_delay(&mut random, duration);
        let context = format!("{test}: kill {kill} (seed {}, delay {delay:?})", random.seed);
        let run = run_child(&store, Op::Import, Some(delay), &context);
        tally.count(&run);
        check_import_after_kill(&store, &fixture, &context, &mut tally);
        finish_import(&store, &fixture, &context);
    }
    tally.report(test, "not imported", "imported", started);
    tally
}

#[test]
fn kill9_import_short() {
    let _alone = crate::support::alone();
    let tally = import_kills("kill9_import_short", 3_000, CI_KILLS);
    assert_eq!(tally.kills, CI_KILLS);
}

#[test]
#[ignore = "long run: MOVIE_QUEUE_KILL9_MAINT_KILLS (default 50) kills; see the module's documentation"]
fn kill9_import_long() {
    let _alone = crate::support::alone();
    let tally = import_kills("kill9_import_long", 3_000, long_kills());
    assert!(tally.mid_operation > 0, "no kill landed during the import");
}

#[test]
#[ignore = "long run: 200,000 legacy entries, MOVIE_QUEUE_KILL9_MAINT_KILLS (default 50) kills; see the module's documentation"]
fn kill9_import_200k_long() {
    let _alone = crate::support::alone();
    let tally = import_kills("kill9_import_200k_long", 200_000, long_kills());
    assert!(tally.mid_operation > 0, "no kill landed during the import");
}
