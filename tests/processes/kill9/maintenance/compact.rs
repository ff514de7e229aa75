//! `compact` killed part-way (see the module above for the oracle).

use super::*;

// ----- compact --------------------------------------------------------------------

struct CompactFixture {
    /// The store: many small segments, an earlier compaction base, closed.
    pristine: tempfile::TempDir,
    /// `states[n]`: the state after record `n`, as written.
    states: Vec<QueueState>,
    last_seq: u64,
    /// The event log before the compaction.
    events: Vec<EventRecord>,
    /// The segments before the compaction, by name.
    segments: BTreeSet<String>,
    /// An uninterrupted compaction: the journal's files after it, and the
    /// segments it removed.
    reference_listing: Vec<(String, u64)>,
    reference_removed: BTreeSet<String>,
}

fn compact_fixture() -> CompactFixture {
    let pristine = scratch();
    let dir = pristine.path();
    let qm = quiet(SMALL_SEGMENT_BYTES).open(dir).expect("open the compaction store");
    let states = run_workload(&qm, 160, Some(60));
    let last_seq = qm.last_seq().0;
    let events: Vec<EventRecord> = qm
        .events_from(Seq(0))
        .expect("the event log")
        .collect::<Result<_, _>>()
        .expect("every event reads");
    qm.close().expect("close the compaction store");
    assert!(
        journal_dir(dir).join(movie_queue::testing::BASE_FILE).exists(),
        "an earlier compaction base"
    );
    let segment_names: BTreeSet<String> = segments(dir).into_keys().collect();
    assert!(segment_names.len() >= 10, "many segments: {}", segment_names.len());
    assert_eq!(events.last().map(|record| record.seq), Some(Seq(last_seq)));

    let reference = scratch();
    let copy = reference.path().join("store");
    reset_dir(dir, &copy);
    let qm = quiet(SMALL_SEGMENT_BYTES).open(&copy).expect("open the copy");
    let report = qm.compact().expect("the reference compaction");
    assert!(qm.state() == states[states.len() - 1], "compaction changes no state");
    qm.close().expect("close the copy");
    let reference_removed: BTreeSet<String> = report
        .removed
        .iter()
        .map(|path| path.file_name().expect("a name").to_string_lossy().into_owned())
        .collect();
    assert!(
        !reference_removed.is_empty(),
        "the reference compaction removes segments"
    );
    CompactFixture {
        pristine,
        states,
        last_seq,
        events,
        segments: segment_names,
        reference_listing: journal_listing(&copy),
        reference_removed,
    }
}

/// The state before compaction, a consistent log and replay; returns
/// whether any segment is gone.
fn check_compacted_store(store: &Path, fixture: &CompactFixture, context: &str) -> bool {
    let report = movie_queue::verify(store).unwrap_or_else(|error| panic!("{context}: verify: {error}"));
    assert_eq!(report.last_seq, fixture.last_seq, "{context}: verify's last record");
    let now: BTreeSet<String> = segments(store).into_keys().collect();
    let gone: BTreeSet<String> = fixture.segments.difference(&now).cloned().collect();
    assert!(
        gone.is_subset(&fixture.reference_removed),
        "{context}: segments the compaction keeps are gone: {gone:?}"
    );
    assert!(
        now.is_subset(&fixture.segments),
        "{context}: new segments appeared: {now:?}"
    );
    let before = &fixture.states[fixture.states.len() - 1];
    let qm = quiet(SMALL_SEGMENT_BYTES)
        .open(store)
        .unwrap_or_else(|error| panic!("{context}: reopening: {error}"));
    assert_eq!(qm.last_seq(), Seq(fixture.last_seq), "{context}: the last record");
    assert!(qm.state() == *before, "{context}: the state changed");
    assert!(full_replay(store) == *before, "{context}: a full replay differs");
    let events: Vec<EventRecord> = qm
        .events_from(Seq(0))
        .unwrap_or_else(|error| panic!("{context}: the event log: {error}"))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|error| panic!("{context}: an event of the log: {error}"));
    assert!(!events.is_empty(), "{context}: the log is empty");
    assert!(
        events.len() <= fixture.events.len() && fixture.events.ends_with(&events),
        "{context}: the log ({} events from record {}) is not a suffix of the log before ({} events from record {})",
        events.len(),
        events[0].seq,
        fixture.events.len(),
        fixture.events[0].seq
    );
    let first = events[0].seq.0;
    for seq in [first, (first + fixture.last_seq) / 2, fixture.last_seq] {
        match qm.state_at(Seq(seq)).map(|replayed| replayed.state) {
            Ok(state) => assert!(
                state == fixture.states[usize::try_from(seq).expect("small")],
                "{context}: the state replayed at record {seq} is not the one written"
            ),
            Err(Error::Unanswerable {
                reason: movie_queue::Refusal::Compacted { .. },
                ..
            }) if seq < fixture.last_seq => {} // before the base: compacted away
            Err(error) => panic!("{context}: the state at record {seq}: {error}"),
        }
    }
    qm.close().unwrap_or_else(|error| panic!("{context}: close: {error}"));
    !gone.is_empty()
}

/// Finishes the compaction in the parent: the uninterrupted result.
fn finish_compact(store: &Path, fixture: &CompactFixture, context: &str) {
    let qm = quiet(SMALL_SEGMENT_BYTES)
        .open(store)
        .unwrap_or_else(|error| panic!("{context}: reopening: {error}"));
    qm.compact()
        .unwrap_or_else(|error| panic!("{context}: compact after the kill: {error}"));
    qm.close().unwrap_or_else(|error| panic!("{context}: close: {error}"));
    check_compacted_store(store, fixture, &format!("{context}, compaction finished"));
    let report = movie_queue::verify(store).unwrap_or_else(|error| panic!("{context}: verify: {error}"));
    assert!(
        report.problems.is_empty(),
        "{context}: verify found {:?}",
        report.problems
    );
    assert_eq!(
        journal_listing(store),
        fixture.reference_listing,
        "{context}: the journal differs from an uninterrupted compaction's"
    );
}

fn compact_kills(test: &str, kills: usize) -> Tally {
    let started = Instant::now();
    let mut random = Random::new(test);
    let fixture = compact_fixture();
    let work = scratch();
    let store = work.path().join("store");
    let duration = calibrate(fixture.pristine.path(), &store, Op::Compact, test, |store| {
        let context = format!("{test}: the calibration run");
        check_compacted_store(store, &fixture, &context);
        assert_eq!(journal_listing(store), fixture.reference_listing, "{context}");
    });
    let mut tally = Tally::default();
    for kill in 0..kills {
        reset_dir(fixture.pristine.path(), &store);
        let delay = random_delay(&mut random, duration);
        let context = format!("{test}: kill {kill} (seed {}, delay {delay:?})", random.seed);
        let run = run_child(&store, Op::Compact, Some(delay), &context);
        tally.count(&run);
        if check_compacted_store(&store, &fixture, &context) {
            tally.after_state += 1;
        } else {
            tally.before_state += 1;
        }
        finish_compact(&store, &fixture, &context);
    }
    tally.report(test, "with every segment", "with segments removed", started);
    tally
}

#[test]
fn kill9_compact_short() {
    let _alone = crate::support::alone();
    let tally = compact_kills("kill9_compact_short", CI_KILLS);
    assert_eq!(tally.kills, CI_KILLS);
}

#[test]
#[ignore = "long run: MOVIE_QUEUE_KILL9_MAINT_KILLS (default 50) kills; see the module's documentation"]
fn kill9_compact_long() {
    let _alone = crate::support::alone();
    let tally = compact_kills("kill9_compact_long", long_kills());
    assert!(tally.mid_operation > 0, "no kill landed during the compaction");
}
