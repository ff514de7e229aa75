//! Audit and replay: `history(id)` lists every event of one movie,
//! `events_from(k)` starts at event k, `state_at(k)` equals the state a
//! fresh store reaches after the same first k operations, `state_at(Until::Time(..))`
//! uses the events' own timestamps, and `compact` keeps the state while
//! dropping covered segments.

use crate::support::common;

use common::{movie, open, scratch};
use movie_queue::{QueueManager, Seq};

fn operations(qm: &QueueManager, count: usize) {
    for step in 0..count {
        match step {
            0 => assert!(qm.add_to_pending(movie("1")).unwrap()),
            1 => assert!(qm.add_to_pending(movie("2")).unwrap()),
            2 => assert!(qm.get_next_pending().unwrap().is_some()),
            3 => assert!(qm.add_to_failed(movie("1"), "e", Some(0.0)).unwrap()),
            4 => assert!(qm.move_failed_to_pending("1").unwrap()),
            5 => assert!(qm.get_next_pending().unwrap().is_some()),
            6 => assert!(qm.add_to_completed(movie("2")).unwrap()),
            7 => assert!(qm.add_to_failed(movie("3"), "e", Some(0.0)).unwrap()),
            _ => assert!(qm.reset_failed_movie("3").unwrap()),
        }
    }
}

/// A state without its timestamps (two runs never share those): each
/// place's ids in order with their retry counts and errors.
fn shape(state: &movie_queue::QueueState) -> Vec<Vec<(String, u32, Option<String>)>> {
    let describe = |entries: Vec<movie_queue::QueueEntry>| {
        entries
            .into_iter()
            .map(|entry| (entry.id().to_owned(), entry.retry_count, entry.last_error.clone()))
            .collect()
    };
    vec![
        describe(state.pending().collect()),
        describe(state.in_flight().collect()),
        describe(state.failed().collect()),
        describe(state.completed().collect()),
    ]
}

#[test]
fn history_and_events_from_list_the_journal() {
    let dir = scratch();
    let qm = open(dir.path());
    operations(&qm, 9);
    let kinds: Vec<&str> = qm
        .history("1")
        .unwrap()
        .iter()
        .map(|record| record.event.kind())
        .collect();
    assert_eq!(kinds, ["added", "taken", "failed", "moved_to_pending"]);
    let seqs: Vec<u64> = qm
        .events_from(Seq(4))
        .unwrap()
        .map(|record| record.unwrap().seq.0)
        .collect();
    assert_eq!(seqs, (4..=qm.last_seq().0).collect::<Vec<_>>());
}

#[test]
fn state_at_k_equals_a_fresh_store_after_k_operations() {
    let dir = scratch();
    let qm = open(dir.path());
    operations(&qm, 9);
    assert_eq!(qm.last_seq(), Seq(9), "one event per operation here");
    for k in 0..=9 {
        let fresh_dir = scratch();
        let fresh = open(fresh_dir.path());
        operations(&fresh, k);
        assert_eq!(
            shape(&qm.state_at(Seq(k as u64)).unwrap().state),
            shape(&fresh.state()),
            "state_at({k})"
        );
    }
    let records: Vec<_> = qm.events_from(Seq(1)).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    let at_time = qm.state_at(movie_queue::Until::Time(records[4].ts)).unwrap().state;
    let expected = qm
        .state_at(records.iter().rfind(|record| record.ts <= records[4].ts).unwrap().seq)
        .map(|replayed| replayed.state)
        .unwrap();
    assert!(at_time == expected);
    assert!(qm.state_at(movie_queue::Until::Time(0.0)).unwrap().state == movie_queue::QueueState::new());
}

#[test]
fn compact_keeps_the_state_and_drops_covered_segments() {
    let dir = scratch();
    let qm = QueueManager::options().segment_bytes_max(400).open(dir.path()).unwrap();
    for round in 0..30 {
        qm.add_to_pending(movie(&format!("{round}"))).unwrap();
    }
    qm.get_next_pending().unwrap();
    let segments = || std::fs::read_dir(dir.path().join("journal")).unwrap().count();
    let before = segments();
    let report = qm.compact().unwrap();
    assert!(!report.removed.is_empty(), "{before} segments, none removed");
    let live = qm.state();
    qm.add_to_pending(movie("after")).unwrap();
    let live_after = qm.state();
    drop(qm);
    // Without the top-level snapshot, start-up uses the compaction base.
    std::fs::remove_file(dir.path().join("queue_snapshot.json")).unwrap();
    let reopened = QueueManager::options()
        .requeue_in_flight_on_open(false)
        .open(dir.path())
        .unwrap();
    assert!(reopened.state() == live_after);
    assert!(reopened.state_at(report.seq).unwrap().state == live);
    assert!(movie_queue::verify(dir.path()).unwrap().problems.is_empty());
    assert!(
        reopened.state_at(Seq(1)).is_err(),
        "history before the base is gone, and says so"
    );
}

/// `Events::concerning(id)` yields exactly the events that concern the
/// movie, in order: the ones `concerns` picks from the whole stream, never
/// one that only mentions the id's text (a title, an error, another id
/// holding it), and ids that need escaping in JSON are found too.
#[test]
fn a_stream_concerning_one_movie_yields_exactly_its_events() {
    let dir = scratch();
    let qm = open(dir.path());
    let tricky = "quote \" and \\ and é";
    qm.add_to_pending(movie("8")).unwrap();
    qm.add_to_pending(movie_queue::Movie::new("7", "8", "2001")).unwrap();
    qm.add_to_pending(movie("88")).unwrap();
    qm.add_to_pending(movie(tricky)).unwrap();
    qm.get_next_pending().unwrap();
    qm.add_to_failed(movie("8"), "\"8\" failed", None).unwrap();
    qm.add_to_failed(movie("7"), "\"8\" again", None).unwrap();
    qm.get_next_pending().unwrap();
    qm.add_to_completed(movie(tricky)).unwrap();
    qm.mark_movies_as_removed(["88"]).unwrap();
    qm.flush().unwrap();
    for id in ["8", "7", "88", tricky, "nobody"] {
        let whole: Vec<_> = movie_queue::events(dir.path(), Seq(0))
            .unwrap()
            .map(Result::unwrap)
            .filter(|record| record.event.concerns(id))
            .collect();
        let concerning: Vec<_> = movie_queue::events(dir.path(), Seq(0))
            .unwrap()
            .concerning(id)
            .map(Result::unwrap)
            .collect();
        assert_eq!(concerning, whole, "{id}");
        assert_eq!(whole.is_empty(), id == "nobody", "{id}: the test has events to find");
    }
}

/// A stream to the journal's end where the last segment the tail marker
/// names is gone ends with the error open gives (naming the segment),
/// never quietly: its records are lost, and the audit trail says so.
#[test]
fn a_stream_over_a_journal_whose_last_segment_is_gone_ends_with_an_error() {
    let dir = scratch();
    let qm = QueueManager::options().segment_bytes_max(300).open(dir.path()).unwrap();
    for id in 1..=8 {
        qm.add_to_pending(movie(&id.to_string())).unwrap();
    }
    qm.close().unwrap();
    let segments = crate::support::durability::segment_paths(dir.path());
    assert!(segments.len() > 1, "several segments: {segments:?}");
    let last = segments.last().unwrap();
    std::fs::remove_file(last).unwrap();
    let open_error = QueueManager::open_read_only(dir.path()).unwrap_err().to_string();
    let items: Vec<_> = movie_queue::events(dir.path(), Seq(0)).unwrap().collect();
    let error = items.last().unwrap().as_ref().unwrap_err().to_string();
    assert!(
        items[..items.len() - 1].iter().all(Result::is_ok),
        "the records before it"
    );
    assert_eq!(error, open_error, "the same error as open");
    assert!(error.contains(last.file_name().unwrap().to_str().unwrap()), "{error}");
    let concerning: Vec<_> = movie_queue::events(dir.path(), Seq(0))
        .unwrap()
        .concerning("1")
        .collect();
    assert!(concerning.last().unwrap().is_err(), "a filtered stream too");
}

/// The id filters of `journal/ids` (written by a writer's open for each
/// sealed segment) spare a stream of one movie the segments whose records
/// do not name it, and never hide one that does: a damaged record in a
/// segment without the movie's records is not read (the stream of that
/// movie goes on, while the whole stream stops there), the same damage in
/// a segment that names it stops its stream as before, and a filter file
/// that does not hold up is ignored (every segment read again).
#[test]
fn id_filters_spare_the_segments_without_the_movie_and_never_hide_one() {
    let dir = scratch();
    let options = || QueueManager::options().segment_bytes_max(600);
    let qm = options().open(dir.path()).unwrap();
    for n in 0..60 {
        qm.add_to_pending(movie(&format!("m{n}"))).unwrap();
    }
    qm.add_to_failed(movie("m3"), "stalled", None).unwrap();
    qm.add_to_completed(movie("m3")).unwrap();
    qm.close().unwrap();
    // A writer's open writes the filters of the sealed segments.
    options().open(dir.path()).unwrap().close().unwrap();
    let ids_file = dir.path().join("journal").join("ids");
    assert!(ids_file.exists(), "the filters are written");
    let stream = |id: &str| -> Vec<Result<Seq, String>> {
        movie_queue::events(dir.path(), Seq(0))
            .unwrap()
            .concerning(id)
            .map(|item| item.map(|record| record.seq).map_err(|error| error.to_string()))
            .collect()
    };
    let whole = |id: &str| -> Vec<Result<Seq, String>> {
        movie_queue::events(dir.path(), Seq(0))
            .unwrap()
            .filter(|item| item.as_ref().map_or(true, |record| record.event.concerns(id)))
            .map(|item| item.map(|record| record.seq).map_err(|error| error.to_string()))
            .collect()
    };
    for n in 0..60 {
        let id = format!("m{n}");
        assert_eq!(stream(&id), whole(&id), "{id}");
    }
    // Damage the record that added m40 (in a sealed segment, not m3's).
    let segments = crate::support::durability::segment_paths(dir.path());
    let flip_in = |needle: &[u8]| {
        let (path, at) = segments[..segments.len() - 1]
            .iter()
            .find_map(|path| {
                let bytes = std::fs::read(path).unwrap();
                bytes
                    .windows(needle.len())
                    .position(|window| window == needle)
                    .map(|at| (path.clone(), at))
            })
            .expect("the record is in a sealed segment");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[at + needle.len() - 2] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let damaged = flip_in(b"\"id\":\"m40\"");
    let m3 = stream("m3");
    assert!(m3.iter().all(Result::is_ok), "m3's history reads on: {m3:?}");
    assert_eq!(m3.len(), 3, "added, failed, completed");
    assert!(
        whole("m3").last().unwrap().is_err(),
        "the whole stream stops at the damage"
    );
    assert!(
        stream("m40").last().unwrap().is_err(),
        "m40's own segment is read: the damage is told"
    );
    // A filter file that does not hold up is ignored.
    let mut bytes = std::fs::read(&ids_file).unwrap();
    bytes[12] ^= 0x40;
    std::fs::write(&ids_file, bytes).unwrap();
    assert!(stream("m3").last().unwrap().is_err(), "every segment is read again");
    drop(damaged);
}
