//! The damage matrix: every kind of store × every artifact × every kind of
//! damage, each checked against an oracle of what survives.
//!
//! Stores (each built through the API, every operation acknowledged):
//! `journal` (no snapshot), `snapshotted` (a snapshot of every record),
//! `stale` (a snapshot of a prefix, then a crash), `compacted` (a base,
//! segments after it, a snapshot), `imported` (a legacy store upgraded,
//! then used), `snapshot_only` (the documented files and their manifest,
//! no journal: a backup), `legacy` (a Movie Sync installation's files).
//! Artifacts: each segment, the manifest, each documented file, the base.
//! Damage: single-bit flips (every bit of the small artifacts and of each
//! segment's header in the long run, a stride of them in CI), truncation
//! (to a record boundary, into a record, to half, to zero), deletion,
//! zeroing.
//!
//! The oracle, written without the recovery code: a record survives when
//! its bytes are unchanged; a checkpoint when its files are unchanged. The
//! best the store can give is, over the starting points that survive
//! (nothing, if record 1 does; the snapshot; the base), the one whose
//! surviving records reach furthest: the state after that record. Then:
//! * `verify` passes exactly when a writer's open succeeds;
//! * an open that succeeds gives exactly that best state — and if it is
//!   short of everything acknowledged, the lost records are a suffix of
//!   the journal no checkpoint covers (indistinguishable from a torn
//!   write) and `verify` names the torn tail;
//! * an open that fails names the damaged artifact, and following its hint
//!   (`repair`) gives a store that opens with exactly that best state and
//!   passes `verify`. Nothing is ever a store no command opens;
//! * after one `repair`, `verify` finds nothing wrong and the event stream
//!   reads to the journal's end: damaged history is set aside and stepped
//!   over in-band, never a wall the audit trail stops at.
//!
//! `damage_pairs.rs` runs the same oracle on two damaged artifacts at once.
//!
//! `MOVIE_QUEUE_MATRIX=full cargo test --release --test integration
//! damage_matrix -- --ignored` runs every bit of every small artifact.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use movie_queue::testing::{FaultyStorage, ReferenceModel, parse_entries_prefix};
use movie_queue::{Error, Movie, Place, QueueEntry, QueueManager, QueueState};

use crate::support::durability::{Op, SegmentLayout, apply, describe, entries, movie, real, reset_dir, scratch};

const MANIFEST: &str = "queue_snapshot.json";
const DOCUMENTED: [&str; 3] = ["queue_pending.json", "queue_failed.json", "queue_completed.json"];

/// What kind of store a fixture is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Journal,
    SnapshotOnly,
    Legacy,
}

/// A pristine store and what the oracle knows about it.
pub(super) struct Fixture {
    pub(super) name: &'static str,
    kind: Kind,
    pub(super) dir: tempfile::TempDir,
    /// `states[n]`: the state after record `n` (journal stores).
    states: Vec<QueueState>,
    /// The state with every acknowledged operation.
    acked: QueueState,
    /// The first record the journal holds (after compaction, > 1).
    first_record: u64,
    /// The record the snapshot covers, if there is one.
    snapshot_seq: Option<u64>,
    /// The record the compaction base covers, if there is one.
    base_seq: Option<u64>,
    /// Every file of the pristine store, relative path and bytes.
    pub(super) files: Vec<(PathBuf, Vec<u8>)>,
}

/// The workload: every movie ends settled (none in flight), so a store
/// whose in-flight count is lost reads the same.
fn ops(part: u8) -> Vec<Op> {
    match part {
        1 => vec![
            Op::Add("a"),
            Op::Add("b"),
            Op::Add("c"),
            Op::Take,
            Op::Fail("a", -60.0),
            Op::Take,
            Op::Complete("b"),
        ],
        _ => vec![
            Op::Add("d"),
            Op::MoveBack("a"),
            Op::Take,
            Op::Complete("c"),
            Op::Add("e"),
            Op::Take,
            Op::Fail("d", 3_600.0),
            Op::Take,
            Op::Complete("a"),
        ],
    }
}

/// Records a workload's states record by record.
struct Recorder {
    qm: QueueManager,
    states: Vec<QueueState>,
}

impl Recorder {
    fn open(dir: &Path, storage: Arc<dyn movie_queue::testing::Storage>) -> Recorder {
        let qm = QueueManager::options()
            .storage(storage)
            .requeue_in_flight_on_open(false)
            .snapshot_every_events(0)
            .snapshot_every(None)
            .segment_bytes_max(420)
            .open(dir)
            .expect("open the fixture store");
        // `states[n]` is the state after record `n`: a store that opens
        // with records (a legacy import's, record 1) starts from nothing.
        let opened_at = usize::try_from(qm.last_seq().0).expect("small");
        assert!(opened_at <= 1, "a fixture opens empty or just imported");
        let mut states = vec![QueueState::new(); opened_at];
        states.push(qm.state());
        Recorder { qm, states }
    }

    fn run(&mut self, ops: &[Op]) {
        for op in ops {
            apply(&self.qm, op).unwrap_or_else(|error| panic!("{op:?}: {error}"));
            while (self.states.len() as u64) <= self.qm.last_seq().0 {
                self.states.push(self.qm.state());
            }
        }
    }
}

/// The journal's layout, if the store has a journal.
fn layout(dir: &Path) -> Vec<SegmentLayout> {
    if dir.join("journal").is_dir() {
        crate::support::durability::layout(dir)
    } else {
        Vec::new()
    }
}

fn files_of(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for sub in [PathBuf::new(), PathBuf::from("journal")] {
        let Ok(entries) = fs::read_dir(dir.join(&sub)) else {
            continue;
        };
        for entry in entries {
            let entry = entry.expect("entry");
            if entry.file_type().expect("type").is_file() && entry.file_name() != "LOCK" {
                let relative = sub.join(entry.file_name());
                files.push((relative.clone(), fs::read(dir.join(&relative)).expect("read")));
            }
        }
    }
    files.sort();
    files
}

fn write_legacy(dir: &Path) -> QueueState {
    let mut model = ReferenceModel::new();
    model.add(Movie::new("l1", "Legacy one", 1999), 800.0);
    model.add(Movie::new("l2", "Legacy two", "2001"), 810.0);
    model.fail(Movie::new("l3", "Legacy three", 2003), "no seeders", 1_000.0, 900.0);
    model.complete(Movie::new("l4", "Legacy four", 2004), 1_200.0);
    for (name, list) in DOCUMENTED.iter().zip([&model.pending, &model.failed, &model.completed]) {
        fs::write(dir.join(name), serde_json::to_vec_pretty(list).expect("json")).expect("write");
    }
    import_state(&model.pending, &model.failed, &model.completed)
}

/// The state an import of these lists gives.
fn import_state(pending: &[QueueEntry], failed: &[QueueEntry], completed: &[QueueEntry]) -> QueueState {
    let dir = scratch();
    for (name, list) in DOCUMENTED.iter().zip([pending, failed, completed]) {
        fs::write(dir.path().join(name), serde_json::to_vec(list).expect("json")).expect("write");
    }
    let qm = QueueManager::open_read_only(dir.path()).expect("a legacy store reads");
    qm.state()
}

fn finish(
    name: &'static str,
    kind: Kind,
    dir: tempfile::TempDir,
    states: Vec<QueueState>,
    acked: QueueState,
) -> Fixture {
    let files = files_of(dir.path());
    let read_seq = |path: &str, key: &str| -> Option<u64> {
        let bytes = fs::read(dir.path().join(path)).ok()?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        value[key]["seq"].as_u64()
    };
    let snapshot_seq = read_seq(MANIFEST, "manifest");
    let base_seq = read_seq("journal/base.json", "base");
    let first_record = layout(dir.path())
        .first()
        .and_then(|segment| segment.records.first().map(|record| record.seq))
        .unwrap_or(1);
    Fixture {
        name,
        kind,
        dir,
        states,
        acked,
        first_record,
        snapshot_seq,
        base_seq,
        files,
    }
}

pub(super) fn fixtures() -> Vec<Fixture> {
    let mut all = Vec::new();
    for name in ["journal", "snapshotted", "stale", "compacted"] {
        let dir = scratch();
        let faulty = FaultyStorage::new();
        let mut recorder = Recorder::open(dir.path(), Arc::new(faulty.clone()));
        recorder.run(&ops(1));
        match name {
            "stale" => drop(recorder.qm.snapshot().expect("snapshot")),
            "compacted" => drop(recorder.qm.compact().expect("compact")),
            _ => {}
        }
        recorder.run(&ops(2));
        let Recorder { qm, states } = recorder;
        let acked = qm.state();
        if name == "stale" {
            // A crash: the close's snapshot is never written.
            faulty.kill();
            drop(qm);
        } else {
            // The snapshot of every record the stores are described with
            // (close writes one only when the policy says it is due).
            qm.snapshot().expect("snapshot");
            qm.close().expect("close");
        }
        if name == "journal" {
            crate::support::durability::remove_snapshot(dir.path());
        }
        all.push(finish(name, Kind::Journal, dir, states, acked));
    }
    all.push(imported_fixture());
    all.push(snapshot_only_fixture());
    let legacy = scratch();
    let acked = write_legacy(legacy.path());
    all.push(finish("legacy", Kind::Legacy, legacy, Vec::new(), acked));
    all
}

fn imported_fixture() -> Fixture {
    let dir = scratch();
    write_legacy(dir.path());
    let mut recorder = Recorder::open(dir.path(), real());
    recorder.run(&ops(1));
    let Recorder { qm, states } = recorder;
    let acked = qm.state();
    qm.snapshot().expect("snapshot");
    qm.close().expect("close");
    finish("imported", Kind::Journal, dir, states, acked)
}

fn snapshot_only_fixture() -> Fixture {
    let dir = scratch();
    let mut recorder = Recorder::open(dir.path(), real());
    recorder.run(&ops(1));
    recorder.run(&ops(2));
    let acked = recorder.qm.state();
    recorder.qm.snapshot().expect("snapshot");
    recorder.qm.close().expect("close");
    fs::remove_dir_all(dir.path().join("journal")).expect("remove the journal");
    finish("snapshot_only", Kind::SnapshotOnly, dir, Vec::new(), acked)
}

/// One way to damage one file.
#[derive(Debug, Clone)]
pub(super) enum Damage {
    Flip { byte: usize, bit: u8 },
    Truncate(usize),
    Delete,
    Zero,
}

impl Damage {
    pub(super) fn apply(&self, path: &Path) {
        match *self {
            Damage::Flip { byte, bit } => {
                let mut bytes = fs::read(path).expect("read");
                bytes[byte] ^= 1 << bit;
                fs::write(path, bytes).expect("write");
            }
            Damage::Truncate(len) => {
                let file = fs::OpenOptions::new().write(true).open(path).expect("open");
                file.set_len(len as u64).expect("truncate");
            }
            Damage::Delete => fs::remove_file(path).expect("delete"),
            Damage::Zero => {
                let len = fs::metadata(path).expect("meta").len();
                fs::write(path, vec![0_u8; usize::try_from(len).expect("small")]).expect("zero");
            }
        }
    }
}

/// The damages to try on a file of `len` bytes with records ending at
/// `ends`: deletion, zeroing, truncations (to nothing, to half, to each
/// record boundary and into each record), and bit flips — every bit in the
/// long run; in CI every 29th bit of a small file and every 151st of a
/// segment, plus one bit of each segment header byte.
pub(super) fn damages_for(len: usize, ends: &[usize], full: bool, small: bool) -> Vec<Damage> {
    let mut damages = vec![
        Damage::Delete,
        Damage::Zero,
        Damage::Truncate(0),
        Damage::Truncate(len / 2),
    ];
    for &end in ends {
        damages.push(Damage::Truncate(end));
        damages.push(Damage::Truncate(end.saturating_sub(3)));
    }
    let stride = match (full, small) {
        (true, _) => 1,
        (false, true) => 29,
        (false, false) => 151,
    };
    let header_bits = if small || full { 0 } else { 32 };
    let flips = (0..len * 8)
        .step_by(stride)
        .chain((0..header_bits).map(|byte| byte * 8 + byte % 8));
    for bit_index in flips {
        damages.push(Damage::Flip {
            byte: bit_index / 8,
            bit: u8::try_from(bit_index % 8).expect("a bit"),
        });
    }
    damages
}

/// What the oracle expects of a damaged store.
struct Expectation {
    /// The best state the surviving evidence gives.
    best: QueueState,
    /// Is `best` short of everything acknowledged only by a lost suffix of
    /// records that no surviving checkpoint covers (a torn tail)?
    suffix_only: bool,
}

/// Does the damaged store still hold this file exactly as it was?
fn intact(fixture: &Fixture, work: &Path, relative: &Path) -> bool {
    let pristine = fixture
        .files
        .iter()
        .find(|(path, _)| path == relative)
        .map(|(_, bytes)| bytes);
    pristine.is_some_and(|bytes| fs::read(work.join(relative)).ok().as_ref() == Some(bytes))
}

/// Is the documented file `name` missing where the (intact) manifest pins
/// it as the empty queue (`[]` and a newline: fixed by its length and CRC32)?
fn pinned_empty(fixture: &Fixture, work: &Path, name: &str) -> bool {
    !work.join(name).exists()
        && fixture
            .files
            .iter()
            .any(|(path, bytes)| path == Path::new(name) && bytes == b"[]\n")
}

/// Is a segment cut exactly at a record boundary (its header's end or a
/// record's)? Such a cut reads as a journal that ends there: nothing can
/// tell it from records never written (DURABILITY.md, "The one loss no
/// evidence can reveal"). Record lengths vary with the times in them, so
/// a cut to half a file lands on a boundary now and then.
fn cut_at_a_boundary(fixture: &Fixture, work: &Path) -> bool {
    layout(fixture.dir.path()).iter().any(|segment| {
        let name = segment.path.file_name().expect("a segment's name");
        let Ok(now) = fs::metadata(work.join("journal").join(name)) else {
            return false;
        };
        let len = usize::try_from(now.len()).expect("small");
        len < segment.len && (len == 32 || segment.records.iter().any(|record| record.end == len))
    })
}

/// The oracle for a journal store: from the surviving records and checkpoints.
fn expect_journal(fixture: &Fixture, work: &Path) -> Expectation {
    let pristine_layout = layout(fixture.dir.path());
    let total = fixture.states.len() as u64 - 1;
    let mut survives = vec![false; fixture.states.len() + 1];
    for segment in &pristine_layout {
        let name = PathBuf::from("journal").join(segment.path.file_name().expect("name"));
        let Some((_, pristine)) = fixture.files.iter().find(|(path, _)| *path == name) else {
            continue;
        };
        let now = fs::read(work.join(&name)).unwrap_or_default();
        let header_ok = now.get(..32) == pristine.get(..32);
        for record in &segment.records {
            survives[usize::try_from(record.seq).expect("small")] =
                header_ok && now.get(record.start..record.end) == pristine.get(record.start..record.end);
        }
    }
    let snapshot_ok = fixture.snapshot_seq.is_some()
        && [MANIFEST, "queue_removed.json"]
            .iter()
            .chain(&DOCUMENTED)
            .all(|name| intact(fixture, work, Path::new(name)) || pinned_empty(fixture, work, name));
    let base_ok = fixture.base_seq.is_some() && intact(fixture, work, Path::new("journal/base.json"));
    let mut starts = Vec::new();
    if fixture.first_record == 1 {
        starts.push(0);
    }
    if snapshot_ok {
        starts.extend(fixture.snapshot_seq);
    }
    if base_ok {
        starts.extend(fixture.base_seq);
    }
    let reach = |start: u64| {
        let mut end = start;
        while end < total && survives[usize::try_from(end + 1).expect("small")] {
            end += 1;
        }
        end
    };
    let best_end = starts.iter().map(|&start| reach(start)).max().unwrap_or(0);
    let covered = starts.iter().copied().max().unwrap_or(0);
    let suffix_only =
        ((best_end + 1)..=total).all(|seq| !survives[usize::try_from(seq).expect("small")]) && covered <= best_end;
    Expectation {
        best: fixture.states[usize::try_from(best_end).expect("small")].clone(),
        suffix_only,
    }
}

/// The oracle for a store with no journal: what each documented file's
/// surviving entries import to.
fn expect_files(fixture: &Fixture, work: &Path) -> Expectation {
    let lists: Vec<Vec<QueueEntry>> = DOCUMENTED
        .iter()
        .map(|name| parse_entries_prefix(&fs::read(work.join(name)).unwrap_or_else(|_| b"[]".to_vec())).0)
        .collect();
    let best = import_state(&lists[0], &lists[1], &lists[2]);
    let all_intact = DOCUMENTED.iter().all(|name| intact(fixture, work, Path::new(name)));
    Expectation {
        suffix_only: all_intact,
        best,
    }
}

/// Opens `dir` as a writer (real file system); its state.
fn open(dir: &Path) -> Result<QueueState, Error> {
    let qm = QueueManager::options().requeue_in_flight_on_open(false).open(dir)?;
    let state = qm.state();
    qm.close().or_else(|error| match error {
        Error::SnapshotFailed { .. } => Ok(()),
        other => Err(other),
    })?;
    Ok(state)
}

fn same_queues(a: &QueueState, b: &QueueState) -> bool {
    // In-flight entries read as pending from documented files without
    // their manifest: compare them together.
    let mut a_pending = entries(a.in_flight());
    a_pending.extend(entries(a.pending()));
    let mut b_pending = entries(b.in_flight());
    b_pending.extend(entries(b.pending()));
    a_pending == b_pending
        && entries(a.failed()) == entries(b.failed())
        && entries(a.completed()) == entries(b.completed())
}

/// Checks one damaged store (the damaged artifacts named) against the
/// oracle; returns a short verdict.
pub(super) fn check(fixture: &Fixture, work: &Path, context: &str, damaged: &[&Path]) -> &'static str {
    let expectation = match fixture.kind {
        Kind::Journal => expect_journal(fixture, work),
        Kind::SnapshotOnly | Kind::Legacy => expect_files(fixture, work),
    };
    let verdict = movie_queue::verify(work);
    let opened = open(work);
    assert_eq!(
        verdict.is_ok(),
        opened.is_ok(),
        "{context}: verify and open disagree: verify {verdict:?}, open {:?}",
        opened.as_ref().map(describe)
    );
    let verdict_name = match opened {
        Ok(state) => {
            let full = same_queues(&state, &fixture.acked);
            // A legacy store's files, or a backup's whose manifest is gone
            // too, have no witness of what a lost file held.
            let unwitnessed = fixture.kind == Kind::Legacy
                || (fixture.kind == Kind::SnapshotOnly && !intact(fixture, work, Path::new(MANIFEST)));
            let lenient_legacy = unwitnessed && same_queues(&state, &expectation.best);
            assert!(
                full || lenient_legacy || (expectation.suffix_only && same_queues(&state, &expectation.best)),
                "{context}: the open served a different state\n got: {}\nwant: {}\n best surviving: {}",
                describe(&state),
                describe(&fixture.acked),
                describe(&expectation.best)
            );
            // Only a damaged tail marker (the one witness of a deleted
            // last segment) may leave a lost suffix unnoticed.
            let witness_gone =
                damaged.iter().any(|artifact| artifact.ends_with("tail")) || cut_at_a_boundary(fixture, work);
            if !full && fixture.kind == Kind::Journal && !witness_gone {
                let problems = verdict.expect("verify passed").problems;
                assert!(
                    problems.iter().any(|problem| problem.contains("torn tail")),
                    "{context}: records were lost silently: {problems:?}"
                );
            }
            lean_answers_agree(work, &state, context);
            "opens"
        }
        Err(error) => {
            let named = error
                .place()
                .map(|(path, _)| path.to_path_buf())
                .or_else(|| match &error {
                    Error::BadQueueFile { path, .. } | Error::Io { path, .. } => Some(path.clone()),
                    _ => None,
                });
            let names_one = damaged.iter().any(|artifact| {
                let name = artifact.file_name().expect("a file").to_string_lossy().into_owned();
                named
                    .as_ref()
                    .is_some_and(|path| path.ends_with(artifact) || path.to_string_lossy().contains(&name))
                    || error.to_string().contains(&name)
            });
            assert!(
                names_one || fixture.kind == Kind::Journal,
                "{context}: the error does not name a damaged artifact: {error}"
            );
            // With the journal's records unusable (no starting point) and
            // the snapshot broken, `repair` may take what the documented
            // files still hold (written by the library from the state as
            // of the snapshot's record): an import of their surviving entries.
            let from_files = (fixture.kind == Kind::Journal && fixture.snapshot_seq.is_some())
                .then(|| expect_files(fixture, work).best);
            let report = movie_queue::repair(work).unwrap_or_else(|error| panic!("{context}: repair: {error}"));
            let state = open(work).unwrap_or_else(|error| panic!("{context}: open after repair ({report:?}): {error}"));
            // (Every acknowledged change is fine too: a base whose seal a
            // flip broke but whose content still parses, say.)
            assert!(
                same_queues(&state, &expectation.best)
                    || same_queues(&state, &fixture.acked)
                    || from_files.is_some_and(|from_files| same_queues(&state, &from_files)),
                "{context}: after repair\n got: {}\nwant: {}",
                describe(&state),
                describe(&expectation.best)
            );
            movie_queue::verify(work).unwrap_or_else(|error| panic!("{context}: verify after repair: {error}"));
            "repaired"
        }
    };
    audit_trail_reads_to_the_end(work, context);
    verdict_name
}

/// `stats`, `show` and `list` (read from the snapshot's manifest, index and
/// files, or the whole state when they do not hold up) answer as the open
/// did: damage to any artifact, the index included, never makes them differ.
fn lean_answers_agree(work: &Path, state: &QueueState, context: &str) {
    let options = QueueManager::options();
    let statistics = options
        .statistics(work)
        .unwrap_or_else(|error| panic!("{context}: statistics: {error}"));
    let max_retries = movie_queue::RetryPolicy::default().max_retries;
    assert_eq!(statistics, state.statistics(max_retries), "{context}: statistics");
    for place in Place::ALL {
        let mut listed = Vec::new();
        options
            .list(work, place, 0, |entry| {
                listed.push(entry);
                true
            })
            .unwrap_or_else(|error| panic!("{context}: list {place}: {error}"));
        assert!(
            listed.iter().eq(state.entries(place).collect::<Vec<_>>().iter()),
            "{context}: list {place}"
        );
        for entry in state.entries(place) {
            let found = options
                .lookup(work, entry.id())
                .unwrap_or_else(|error| panic!("{context}: lookup: {error}"));
            assert_eq!(found, Some((place, entry.clone())), "{context}: lookup {}", entry.id());
        }
    }
}

/// After one `repair` (of a store that opens or not), `verify` finds
/// nothing wrong and the event stream reads to the journal's end.
fn audit_trail_reads_to_the_end(work: &Path, context: &str) {
    let report = movie_queue::repair(work).unwrap_or_else(|error| panic!("{context}: repair: {error}"));
    let verified = movie_queue::verify(work).unwrap_or_else(|error| panic!("{context}: verify after repair: {error}"));
    assert!(
        verified.problems.is_empty(),
        "{context}: verify after repair still finds problems: {:?}\nrepair: {report:?}",
        verified.problems
    );
    if work.join("journal").is_dir() {
        let (mut last, mut read) = (0, 0);
        for event in movie_queue::events(work, movie_queue::Seq(0)).expect("the event stream") {
            let event = event.unwrap_or_else(|error| panic!("{context}: the stream stops after {last}: {error}"));
            (last, read) = (event.seq.0, read + 1);
        }
        assert_eq!(
            read, verified.records,
            "{context}: the stream reads every record the journal holds"
        );
    }
}

/// The artifacts of a fixture: (relative path, record ends, is it small).
pub(super) fn artifacts(fixture: &Fixture) -> Vec<(PathBuf, Vec<usize>, bool)> {
    let segments = layout(fixture.dir.path());
    fixture
        .files
        .iter()
        .map(|(path, bytes)| {
            let ends = segments
                .iter()
                .find(|segment| segment.path.file_name() == path.file_name())
                .map(|segment| segment.records.iter().map(|record| record.end).collect())
                .unwrap_or_default();
            let small = bytes.len() < 1_024 && !path.to_string_lossy().ends_with(".seg");
            (path.clone(), ends, small)
        })
        .collect()
}

fn run_matrix(full: bool) {
    let mut counts = std::collections::BTreeMap::<(&str, &str), usize>::new();
    let mut total = 0;
    for fixture in fixtures() {
        let work = scratch();
        for (artifact, ends, small) in artifacts(&fixture) {
            let len = fixture
                .files
                .iter()
                .find(|(path, _)| *path == artifact)
                .map_or(0, |(_, bytes)| bytes.len());
            for damage in damages_for(len, &ends, full, small) {
                reset_dir(fixture.dir.path(), work.path());
                damage.apply(&work.path().join(&artifact));
                let context = format!("{} store, {}, {damage:?}", fixture.name, artifact.display());
                let verdict = check(&fixture, work.path(), &context, &[&artifact]);
                *counts.entry((fixture.name, verdict)).or_default() += 1;
                total += 1;
            }
        }
    }
    eprintln!("damage matrix: {total} damaged stores: {counts:?}");
}

#[test]
fn every_single_damage_to_every_artifact_of_every_store_keeps_what_survives() {
    run_matrix(false);
}

#[test]
#[ignore = "long run: every bit of every small artifact; MOVIE_QUEUE_MATRIX=full"]
fn every_single_damage_to_every_artifact_of_every_store_keeps_what_survives_long() {
    run_matrix(std::env::var("MOVIE_QUEUE_MATRIX").is_ok_and(|value| value == "full"));
}

#[test]
fn fixtures_hold_what_the_oracle_assumes() {
    for fixture in fixtures() {
        let work = scratch();
        reset_dir(fixture.dir.path(), work.path());
        let state = open(work.path()).expect("a pristine fixture opens");
        assert!(
            same_queues(&state, &fixture.acked),
            "{}: {}",
            fixture.name,
            describe(&state)
        );
        let _ = movie("unused");
    }
}

/// An operation interrupted by a power loss in the crash half of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A writer's open and close: the legacy import, a tail set aside, the
    /// base recorded, the closing snapshot.
    OpenAndClose,
    /// An explicit snapshot.
    Snapshot,
    /// A compaction.
    Compact,
    /// An import of a directory of documented files.
    Import,
    /// A repair of a record damaged in the journal's first segment.
    Repair,
}

/// The damage the repair step repairs: a flip inside record 2's payload.
fn damage_for_repair(work: &Path) {
    let first = layout(work)
        .into_iter()
        .find(|segment| segment.records.len() >= 2)
        .expect("a segment of two records");
    let record = first.records[1];
    Damage::Flip {
        byte: record.start + 20,
        bit: 3,
    }
    .apply(&first.path);
}

fn run_step(dir: &Path, storage: Arc<dyn movie_queue::testing::Storage>, step: Step, import: &Path) {
    if step == Step::Repair {
        let _ = movie_queue::testing::repair_with(storage.as_ref(), dir);
        return;
    }
    let Ok(qm) = QueueManager::options()
        .storage(storage)
        .requeue_in_flight_on_open(false)
        .snapshot_every_events(0)
        .snapshot_every(None)
        .segment_bytes_max(420)
        .open(dir)
    else {
        return;
    };
    let _ = match step {
        Step::OpenAndClose => Ok(()),
        Step::Snapshot => qm.snapshot().map(drop),
        Step::Compact => qm.compact().map(drop),
        Step::Import => qm.import(import).map(drop),
        Step::Repair => unreachable!("handled above"),
    };
    let _ = qm.close();
}

/// After a power loss: every acknowledged change is there (after a repair
/// if the open asks for one); an interrupted import is all there or not.
fn check_after_crash(acked: &QueueState, work: &Path, context: &str, imported: &QueueState) {
    let state = match open(work) {
        Ok(state) => state,
        Err(error) => {
            movie_queue::repair(work).unwrap_or_else(|repair| panic!("{context}: {error}; repair: {repair}"));
            open(work).unwrap_or_else(|error| panic!("{context}: open after repair: {error}"))
        }
    };
    assert!(
        same_queues(&state, acked) || same_queues(&state, imported),
        "{context}: after the power loss\n got: {}\nwant: {}",
        describe(&state),
        describe(acked)
    );
}

#[test]
fn a_power_loss_at_every_fsync_of_open_snapshot_compact_and_import_loses_nothing_acknowledged() {
    let import = scratch();
    write_legacy(import.path());
    let mut total = 0;
    for fixture in fixtures() {
        let work = scratch();
        for step in [
            Step::OpenAndClose,
            Step::Snapshot,
            Step::Compact,
            Step::Import,
            Step::Repair,
        ] {
            if fixture.kind != Kind::Journal && step != Step::OpenAndClose {
                continue;
            }
            let prepare = |work: &Path| {
                reset_dir(fixture.dir.path(), work);
                if step == Step::Repair {
                    damage_for_repair(work);
                }
            };
            prepare(work.path());
            let best = match fixture.kind {
                Kind::Journal => expect_journal(&fixture, work.path()).best,
                Kind::SnapshotOnly | Kind::Legacy => fixture.acked.clone(),
            };
            let counter = FaultyStorage::new();
            run_step(work.path(), Arc::new(counter.clone()), step, import.path());
            let imported = open(work.path()).expect("the fault-free step leaves a store that opens");
            for index in 0..counter.sync_count() {
                for (torn_bytes, before) in [(0, false), (9, true)] {
                    prepare(work.path());
                    let faulty = FaultyStorage::new();
                    faulty.inject(if before {
                        movie_queue::testing::Fault::PowerLossBeforeSync { index, torn_bytes }
                    } else {
                        movie_queue::testing::Fault::PowerLossAfterSync { index, torn_bytes }
                    });
                    run_step(work.path(), Arc::new(faulty.clone()), step, import.path());
                    let context = format!(
                        "{} store, {step:?}, power loss at fsync {index} (before: {before})",
                        fixture.name
                    );
                    let imported_durably = work.path().join("journal").join("tail").exists();
                    if fixture.kind == Kind::Legacy && !imported_durably {
                        for name in DOCUMENTED {
                            assert!(
                                intact(&fixture, work.path(), Path::new(name)),
                                "{context}: {name} changed before the import was durable"
                            );
                        }
                    }
                    let allowed = if step == Step::Repair { &best } else { &fixture.acked };
                    check_after_crash(allowed, work.path(), &context, &imported);
                    total += 1;
                }
            }
        }
    }
    eprintln!("crash matrix: {total} power losses, every acknowledged change kept");
}
