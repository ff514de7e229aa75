//! Helpers shared by the durability tests (`journal_*`, `recovery_*`,
//! `crash_*`, `model_*`, `kill9_*`): a scripted workload, a reference run
//! that records the state after every journal record, an independent
//! reader of the journal's framing (so the sweeps know where each record
//! starts and ends without trusting the decoder under test), and the
//! oracle that says what reopening a damaged journal must give.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use movie_queue::now;
use movie_queue::testing::{RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use movie_queue::testing::{RealStorage, Storage};
use movie_queue::{Error, Movie, Options, QueueEntry, QueueManager, QueueState, Seq};

/// A scratch directory removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a scratch directory")
}

/// A movie with id `id`.
pub fn movie(id: &str) -> Movie {
    Movie::new(id, format!("Movie {id}"), "2020")
}

/// The journal directory of the store in `dir`.
pub fn journal_dir(dir: &Path) -> PathBuf {
    dir.join(movie_queue::testing::JOURNAL_DIR)
}

/// Options for the sweeps: nothing happens behind the test's back (no
/// background snapshot, no requeue on open), so the store's content is a
/// function of the operations alone.
pub fn quiet_options(storage: Arc<dyn Storage>) -> Options {
    QueueManager::options()
        .storage(storage)
        .requeue_in_flight_on_open(false)
        .snapshot_every_events(0)
        .snapshot_every(None)
}

/// One operation of a scripted workload.
#[derive(Debug, Clone)]
pub enum Op {
    /// `add_to_pending`.
    Add(&'static str),
    /// `get_next_pending`.
    Take,
    /// `add_to_failed` with `retry_after = now + offset`.
    Fail(&'static str, f64),
    /// `move_failed_to_pending`.
    MoveBack(&'static str),
    /// `reset_failed_movie`.
    Reset(&'static str),
    /// `add_to_completed`.
    Complete(&'static str),
    /// `cleanup_completed_before(now + offset)`.
    CleanupBefore(f64),
    /// `requeue_in_flight`.
    Requeue,
    /// `import(dir)`.
    Import(PathBuf),
    /// `snapshot()`.
    Snapshot,
    /// `flush()`.
    Flush,
}

impl Op {
    /// Does this operation ask for a journal event (as opposed to a
    /// snapshot or flush)?
    #[must_use]
    pub fn is_mutation(&self) -> bool {
        !matches!(self, Op::Snapshot | Op::Flush)
    }
}

/// Runs one operation; the value it returned is dropped, its error kept.
pub fn apply(qm: &QueueManager, op: &Op) -> movie_queue::Result<()> {
    match op {
        Op::Add(id) => qm.add_to_pending(movie(id)).map(drop),
        Op::Take => qm.get_next_pending().map(drop),
        Op::Fail(id, offset) => qm
            .add_to_failed(movie(id), format!("error for {id}"), Some(now() + offset))
            .map(drop),
        Op::MoveBack(id) => qm.move_failed_to_pending(*id).map(drop),
        Op::Reset(id) => qm.reset_failed_movie(*id).map(drop),
        Op::Complete(id) => qm.add_to_completed(movie(id)).map(drop),
        Op::CleanupBefore(offset) => qm.cleanup_completed_before(now() + offset).map(drop),
        Op::Requeue => qm.requeue_in_flight().map(drop),
        Op::Import(dir) => qm.import(dir).map(drop),
        Op::Snapshot => qm.snapshot().map(drop),
        Op::Flush => qm.flush(),
    }
}

/// Writes the three documented files of a small legacy store into `dir`:
/// a pending entry with history, a failed one, a completed one, and one
/// whose id the script also adds (so the import skips it).
pub fn write_import_fixture(dir: &Path) {
    fs::create_dir_all(dir).expect("create the import directory");
    let mut pending = QueueEntry::new(movie("i1"));
    pending.retry_count = 2;
    pending.last_error = Some("earlier failure".into());
    let mut failed = QueueEntry::new(movie("i2"));
    failed.retry_count = 1;
    failed.last_error = Some("not found".into());
    failed.retry_after = Some(1_000.0);
    failed.failed_at = Some(900.0);
    let mut completed = QueueEntry::new(movie("i3"));
    completed.completed_at = Some(1_500.0);
    let duplicate = QueueEntry::new(movie("a"));
    let files = [
        ("queue_pending.json", vec![pending, duplicate]),
        ("queue_failed.json", vec![failed]),
        ("queue_completed.json", vec![completed]),
    ];
    for (name, entries) in files {
        let bytes = serde_json::to_vec_pretty(&entries).expect("serialize the fixture");
        fs::write(dir.join(name), bytes).expect("write the fixture");
    }
}

/// A workload producing every event kind (added, taken, failed,
/// moved_to_pending, reset, completed, cleaned_up, requeued, imported),
/// with an explicit snapshot in the middle when `with_snapshots`.
pub fn script(import_dir: &Path, with_snapshots: bool) -> Vec<Op> {
    let mut ops = vec![
        Op::Add("a"),
        Op::Add("b"),
        Op::Add("c"),
        Op::Take,
        Op::Fail("a", -3_600.0),
        Op::Take,
        Op::Complete("b"),
        Op::Add("d"),
        Op::Snapshot,
        Op::MoveBack("a"),
        Op::Fail("c", 3_600.0),
        Op::Reset("c"),
        Op::Import(import_dir.to_path_buf()),
        Op::Take,
        Op::Take,
        Op::Requeue,
        Op::Add("e"),
        Op::Complete("d"),
        Op::CleanupBefore(1.0),
        Op::Snapshot,
        Op::Take,
        Op::Fail("e", -10.0),
        Op::Complete("a"),
    ];
    if !with_snapshots {
        ops.retain(|op| !matches!(op, Op::Snapshot));
    }
    ops
}

/// A short workload (ten records: added, taken, failed, completed,
/// moved_to_pending) for the byte-by-byte sweeps, which reopen the store
/// once per byte.
#[must_use]
pub fn short_script() -> Vec<Op> {
    vec![
        Op::Add("a"),
        Op::Add("b"),
        Op::Add("c"),
        Op::Take,
        Op::Fail("a", -3_600.0),
        Op::Take,
        Op::Complete("b"),
        Op::Add("d"),
        Op::MoveBack("a"),
        Op::Fail("c", 3_600.0),
    ]
}

/// A store built by a workload, and the state after each journal record.
pub struct ReferenceRun {
    /// The store: its journal only (the snapshot written by the close is removed).
    pub dir: tempfile::TempDir,
    /// `states[n]`: the state after the first `n` records.
    pub states: Vec<QueueState>,
}

impl ReferenceRun {
    /// Runs `ops` on a fresh store (real file system, `Immediate`) opened
    /// with `options`, recording the state after every record; closes it
    /// and removes the snapshot, so the journal is the only truth.
    pub fn record(options: Options, ops: &[Op]) -> ReferenceRun {
        let dir = scratch();
        let qm = options.open(dir.path()).expect("open the reference store");
        let mut states = vec![qm.state()];
        for op in ops {
            apply(&qm, op).unwrap_or_else(|error| panic!("reference run: {op:?} failed: {error}"));
            let last = qm.last_seq().0;
            let recorded = states.len() as u64 - 1;
            assert!(
                last == recorded || last == recorded + 1,
                "{op:?} wrote more than one record"
            );
            if last == recorded + 1 {
                states.push(qm.state());
            }
        }
        qm.close().expect("close the reference store");
        remove_snapshot(dir.path());
        ReferenceRun { dir, states }
    }

    /// How many records the journal holds.
    #[must_use]
    pub fn records(&self) -> u64 {
        self.states.len() as u64 - 1
    }
}

/// The manifest and the four documented files.
pub const SNAPSHOT_FILES: [&str; 5] = [
    "queue_snapshot.json",
    "queue_pending.json",
    "queue_failed.json",
    "queue_completed.json",
    "queue_removed.json",
];

/// Removes the snapshot (manifest and the four documented files) of `dir`.
pub fn remove_snapshot(dir: &Path) {
    for name in SNAPSHOT_FILES {
        let path = dir.join(name);
        if path.exists() {
            fs::remove_file(&path).expect("remove a snapshot file");
        }
    }
}

/// The files of a store, kept in memory so a sweep can damage the store
/// in place and put it back cheaply after each reopen.
pub struct Pristine {
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl Pristine {
    /// Reads every file under `dir`.
    #[must_use]
    pub fn capture(dir: &Path) -> Pristine {
        let mut files = Vec::new();
        for path in files_under(dir) {
            let bytes = fs::read(&path).expect("read a store file");
            files.push((path, bytes));
        }
        Pristine { files }
    }

    /// Puts `dir` back as captured: files added since are removed (a
    /// snapshot written by a close), changed ones rewritten.
    pub fn restore(&self, dir: &Path) {
        for path in files_under(dir) {
            if !self.files.iter().any(|(kept, _)| *kept == path) {
                fs::remove_file(&path).expect("remove a new file");
            }
        }
        for (path, bytes) in &self.files {
            if fs::read(path).ok().as_ref() != Some(bytes) {
                fs::write(path, bytes).expect("restore a file");
            }
        }
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("list a directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

impl Pristine {
    /// Does this capture hold the same files with the same bytes as
    /// `other` (the `LOCK` file, which any writer creates, aside)?
    #[must_use]
    pub fn same_as(&self, other: &Pristine) -> bool {
        let without_lock = |pristine: &Pristine| -> Vec<(PathBuf, Vec<u8>)> {
            let mut files: Vec<_> = pristine
                .files
                .iter()
                .filter(|(path, _)| path.file_name().is_none_or(|name| name != "LOCK"))
                .cloned()
                .collect();
            files.sort();
            files
        };
        without_lock(self) == without_lock(other)
    }

    /// The captured bytes of one file.
    #[must_use]
    pub fn file(&self, path: &Path) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(kept, _)| kept == path)
            .map(|(_, bytes)| bytes.as_slice())
    }

    /// Puts `dir` back as captured, directories created since included.
    pub fn restore_exactly(&self, dir: &Path) {
        for entry in fs::read_dir(dir).expect("list").flatten() {
            let path = entry.path();
            if path.is_dir() && !self.files.iter().any(|(kept, _)| kept.starts_with(&path)) {
                fs::remove_dir_all(&path).expect("remove a new directory");
            }
        }
        self.restore(dir);
    }
}

/// Replaces the content of `to` with a copy of `from` (files and
/// directories, recursively).
pub fn reset_dir(from: &Path, to: &Path) {
    if to.exists() {
        fs::remove_dir_all(to).expect("clear the work directory");
    }
    copy_tree(from, to);
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create a directory");
    for entry in fs::read_dir(from).expect("list a directory") {
        let entry = entry.expect("read a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

/// Where one record sits in its segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSpan {
    /// Its sequence number.
    pub seq: u64,
    /// Byte offset of its header.
    pub start: usize,
    /// Byte offset just past its payload.
    pub end: usize,
}

/// One segment file and its records, read with this module's own
/// knowledge of the framing (length u32 LE at +0, sequence number u64 LE
/// at +8, 16-byte header), not with the decoder under test.
///
/// A segment is preallocated: its writer lays zeros down ahead of its
/// records and writes them over the zeros, so a pristine segment is its
/// header, its records, then zeros to the file's end. The log ends at the
/// last record (`end`); the zeros after it are the writer's, not records.
#[derive(Debug, Clone)]
pub struct SegmentLayout {
    /// The file.
    pub path: PathBuf,
    /// Its length (records and the zeros after them).
    pub len: usize,
    /// Where its records end: only zeros follow, to `len`.
    pub end: usize,
    /// Its records, in order.
    pub records: Vec<RecordSpan>,
}

/// The layout of every segment of the journal of `dir`, in order. Panics
/// unless the journal is sound (it is meant for pristine reference runs).
pub fn layout(dir: &Path) -> Vec<SegmentLayout> {
    segment_paths(dir)
        .into_iter()
        .map(|path| parse_segment(&path))
        .collect()
}

/// The segment files of the journal of `dir`, in order.
pub fn segment_paths(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(journal_dir(dir))
        .expect("list the journal")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .collect();
    paths.sort();
    paths
}

/// Where the written bytes of `bytes` end: just past the last byte that is
/// not zero (what follows is the room a writer laid down, or nothing).
#[must_use]
pub fn written_end(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&byte| byte != 0).map_or(0, |at| at + 1)
}

/// [`written_end`] of the segment at `path` (its header at least), if it
/// can be read: where its log ends, whatever zeros its writer laid down
/// after it.
#[must_use]
pub fn written_len(path: &Path) -> Option<usize> {
    fs::read(path)
        .ok()
        .map(|bytes| written_end(&bytes).max(SEGMENT_HEADER_BYTES.min(bytes.len())))
}

/// Reads one segment file's framing, up to the zeros after its records.
/// Panics if a record runs past the end.
pub fn parse_segment(path: &Path) -> SegmentLayout {
    let bytes = fs::read(path).expect("read a segment");
    let written = written_end(&bytes).max(SEGMENT_HEADER_BYTES);
    let mut records = Vec::new();
    let mut offset = SEGMENT_HEADER_BYTES;
    while offset < written {
        let length = u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes")) as usize;
        let seq = u64::from_le_bytes(bytes[offset + 8..offset + 16].try_into().expect("8 bytes"));
        let end = offset + RECORD_HEADER_BYTES + length;
        assert!(length > 0 && end <= bytes.len(), "a torn record in {}", path.display());
        records.push(RecordSpan {
            seq,
            start: offset,
            end,
        });
        offset = end;
    }
    SegmentLayout {
        len: bytes.len(),
        end: offset,
        path: path.to_path_buf(),
        records,
    }
}

/// What reopening a journal damaged in `[start, end)` of segment `segment`
/// must give (checklist item 4 of the spec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// The state after the first `records` records; when `cut_to` is
    /// `Some` (a torn tail), the damaged segment's bytes from `cut_to` on
    /// are set aside and written over with zeros (its written bytes end there).
    Prefix {
        /// Records kept.
        records: u64,
        /// Where the damaged segment's written bytes end after a writer's open.
        cut_to: Option<usize>,
    },
    /// A corruption error naming this file, at `offset` when `Some`
    /// (header damage may be reported at any offset inside the header).
    Error {
        /// The damaged file.
        path: PathBuf,
        /// The offset of the first damaged record.
        offset: Option<u64>,
    },
}

/// The oracle: damage to bytes `[start, end)` of segment `index` of
/// `segments`, every other byte intact, and all segments present.
///
/// Damage in the zeros after a segment's records (a preallocated
/// segment's room) hits no record, and every record is kept: in the last
/// segment it is a torn tail (bytes nobody acknowledged, set aside and
/// written over with zeros: `cut_to` is where the written bytes then end),
/// in a sealed one stray bytes that readers step over (the next segment
/// goes on at the next record; `verify` names them, `repair` sets them
/// aside). Damage that leaves only zeros from a record on reads as the end
/// of its segment: see [`settle`].
#[must_use]
pub fn expected_after_damage(segments: &[SegmentLayout], index: usize, start: usize, end: usize) -> Expected {
    let segment = &segments[index];
    if start < SEGMENT_HEADER_BYTES {
        return Expected::Error {
            path: segment.path.clone(),
            offset: None,
        };
    }
    let is_last = index + 1 == segments.len();
    let Some(first_damaged) = segment.records.iter().find(|record| record.end > start) else {
        let all: u64 = segments.iter().map(|segment| segment.records.len() as u64).sum();
        return Expected::Prefix {
            records: all,
            cut_to: is_last.then_some(segment.end),
        };
    };
    let intact_after = segment.records.iter().any(|record| record.start >= end);
    if is_last && !intact_after {
        Expected::Prefix {
            records: first_damaged.seq - 1,
            cut_to: Some(first_damaged.start),
        }
    } else {
        Expected::Error {
            path: segment.path.clone(),
            offset: Some(first_damaged.start as u64),
        }
    }
}

/// The oracle of [`expected_after_damage`] settled by the damaged bytes of
/// segment `index`: damage that leaves only zeros from a record on (a
/// zeroed last record, say) reads as the end of that segment, since zeros
/// after the records are what a preallocating writer leaves, whoever wrote
/// them. In the last segment that is the end of the log (nothing to set
/// aside, and `verify` names no torn tail); in a sealed one the next
/// segment then starts past the record due: a gap, reported at the next
/// segment's first record.
#[must_use]
pub fn settle(expected: Expected, segments: &[SegmentLayout], index: usize, damaged: &[u8]) -> Expected {
    let written = written_end(damaged);
    match expected {
        Expected::Prefix {
            records,
            cut_to: Some(at),
        } if written <= at => Expected::Prefix { records, cut_to: None },
        Expected::Error {
            offset: Some(offset), ..
        } if written <= usize::try_from(offset).expect("small") && index + 1 < segments.len() => Expected::Error {
            path: segments[index + 1].path.clone(),
            offset: Some(SEGMENT_HEADER_BYTES as u64),
        },
        other => other,
    }
}

/// The oracle for a cut of segment `index` to `cut` bytes with every later
/// segment removed: the records wholly before the cut (the bytes of a
/// record the cut tore written over with zeros: `cut_to`, where the
/// written bytes then end), or, for a cut inside the segment header, a
/// corruption error naming the file (a bad segment header is never a torn
/// tail: segments are created whole by tmp + fsync + rename). A cut in the
/// zeros after the records loses nothing and leaves nothing to set aside.
#[must_use]
pub fn expected_after_cut(segments: &[SegmentLayout], index: usize, cut: usize) -> Expected {
    let segment = &segments[index];
    if cut < SEGMENT_HEADER_BYTES {
        return Expected::Error {
            path: segment.path.clone(),
            offset: None,
        };
    }
    let before: u64 = segments[..index]
        .iter()
        .map(|earlier| earlier.records.len() as u64)
        .sum();
    let whole: Vec<&RecordSpan> = segment.records.iter().filter(|record| record.end <= cut).collect();
    let boundary = whole.last().map_or(SEGMENT_HEADER_BYTES, |record| record.end);
    Expected::Prefix {
        records: before + whole.len() as u64,
        cut_to: (boundary < cut.min(segment.end)).then_some(boundary),
    }
}

/// Checks what an open returned against the oracle. `states` are the
/// reference states by record count; `segment_len` is where the damaged
/// segment's written bytes end after the open ([`written_len`]: the
/// set-aside check), if wanted.
pub fn check_outcome(
    context: &str,
    outcome: &Result<QueueState, Error>,
    expected: &Expected,
    states: &[QueueState],
    segment_len: Option<usize>,
) {
    match (expected, outcome) {
        (Expected::Prefix { records, cut_to }, Ok(state)) => {
            let want = &states[usize::try_from(*records).expect("small")];
            assert!(
                state == want,
                "{context}: reopened state is not the prefix of {records} records\n got: {}\nwant: {}",
                describe(state),
                describe(want)
            );
            if let (Some(cut_to), Some(len)) = (cut_to, segment_len) {
                assert_eq!(
                    len, *cut_to,
                    "{context}: the torn tail was not written over with zeros from the last whole record on"
                );
            }
        }
        (Expected::Prefix { records, .. }, Err(error)) => {
            panic!("{context}: expected the prefix of {records} records, the open failed: {error}")
        }
        (Expected::Error { path, offset }, Err(error)) => {
            assert!(error.is_corruption(), "{context}: expected corruption, got {error}");
            let (found_path, found_offset) = error
                .place()
                .unwrap_or_else(|| panic!("{context}: {error} names no place"));
            assert_eq!(found_path, path, "{context}: the error names the wrong file: {error}");
            if let Some(offset) = offset {
                assert_eq!(
                    found_offset, *offset,
                    "{context}: the error names the wrong offset: {error}"
                );
            } else {
                assert!(
                    found_offset < SEGMENT_HEADER_BYTES as u64,
                    "{context}: header damage reported outside the header: {error}"
                );
            }
        }
        (Expected::Error { path, offset }, Ok(state)) => panic!(
            "{context}: damage in {} at {offset:?} went undetected; the open gave {}",
            path.display(),
            describe(state)
        ),
    }
}

/// Checks `verify`'s verdict against the oracle: it passes exactly when
/// an open succeeds, and a torn tail an open sets aside is named among its
/// problems (zeros after the records kept are the end of the log, named
/// by nobody).
pub fn check_verdict(
    context: &str,
    verdict: &Result<movie_queue::VerifyReport, Error>,
    expected: &Expected,
    records: u64,
) {
    match (expected, verdict) {
        (Expected::Error { .. }, Err(_)) => {}
        (Expected::Prefix { records: kept, cut_to }, Ok(report)) => {
            assert_eq!(
                report.last_seq, *kept,
                "{context}: verify reports the last record an open keeps"
            );
            if *kept < records && cut_to.is_some() {
                assert!(
                    report.problems.iter().any(|problem| problem.contains("torn tail")),
                    "{context}: verify names the torn tail: {:?}",
                    report.problems
                );
            }
        }
        (expected, verdict) => panic!("{context}: verify and open disagree: open {expected:?}, verify {verdict:?}"),
    }
}

/// Opens `dir` as a writer through `storage`, returns its state, closes it.
pub fn open_state(dir: &Path, storage: Arc<dyn Storage>) -> Result<QueueState, Error> {
    let qm = quiet_options(storage).open(dir)?;
    let state = qm.state();
    qm.close()?;
    Ok(state)
}

/// Opens `dir` read-only through `storage` and returns its state.
pub fn open_read_only_state(dir: &Path, storage: Arc<dyn Storage>) -> Result<QueueState, Error> {
    let qm = quiet_options(storage).read_only(true).open(dir)?;
    Ok(qm.state())
}

/// The real file system as a shareable storage.
#[must_use]
pub fn real() -> Arc<dyn Storage> {
    Arc::new(RealStorage)
}

/// A short description of a state: the ids of each queue, with retry counts.
#[must_use]
pub fn describe(state: &QueueState) -> String {
    let list = |entries: Vec<QueueEntry>| {
        entries
            .iter()
            .map(|entry| format!("{}(r{})", entry.id(), entry.retry_count))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut text = String::new();
    let _ = write!(
        text,
        "pending [{}] in-flight [{}] failed [{}] completed [{}]",
        list(entries(state.pending())),
        list(entries(state.in_flight())),
        list(entries(state.failed())),
        list(entries(state.completed()))
    );
    text
}

/// The entries an iterator of the projection yields, owned (whether it
/// yields references or values).
pub fn entries<E: std::borrow::Borrow<QueueEntry>>(iterator: impl Iterator<Item = E>) -> Vec<QueueEntry> {
    iterator.map(|entry| entry.borrow().clone()).collect()
}

/// Checks that `state` is one of `states[at_least..]`: it holds every
/// acknowledged operation and is the state after some prefix of the
/// attempted ones (nothing half-applied).
pub fn assert_prefix_state(context: &str, state: &QueueState, states: &[QueueState], at_least: usize) {
    let found = states[at_least..].iter().any(|candidate| candidate == state);
    assert!(
        found,
        "{context}: recovered state is not the state after {at_least} or more of the {} records attempted\n got: {}\n{}",
        states.len() - 1,
        describe(state),
        states
            .iter()
            .enumerate()
            .map(|(index, candidate)| format!("  after {index}: {}", describe(candidate)))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// What running a workload against a store that may crash did.
pub struct Attempt {
    /// `states[n]`: the live state after `n` records (the projection
    /// applies an event before its fsync, so a record whose fsync failed
    /// has its state here too).
    pub states: Vec<QueueState>,
    /// Records acknowledged: in `Immediate` mode, the last record of an
    /// operation that returned `Ok`; in `Batched` mode, the last record
    /// covered by a `flush()` that returned `Ok`.
    pub acknowledged: u64,
    /// Each operation's result, in order (every operation is attempted).
    pub results: Vec<movie_queue::Result<()>>,
}

impl Attempt {
    /// The index and error of the first operation that failed.
    #[must_use]
    pub fn first_error(&self) -> Option<(usize, &Error)> {
        self.results
            .iter()
            .enumerate()
            .find_map(|(index, result)| result.as_ref().err().map(|error| (index, error)))
    }

    /// The states after `acknowledged` records or more: the acceptable
    /// recovered states.
    #[must_use]
    pub fn acceptable(&self) -> &[QueueState] {
        &self.states[usize::try_from(self.acknowledged).expect("small")..]
    }
}

/// Runs every op of `ops` on `qm` (whatever fails), recording the state
/// after each record and what was acknowledged. `batched`: acknowledge
/// only through `Op::Flush`.
pub fn attempt(qm: &QueueManager, ops: &[Op], batched: bool) -> Attempt {
    attempt_with(qm, ops, batched, &mut |_| {})
}

/// As [`attempt`], calling `before_op(qm)` before each operation (to
/// schedule a fault at the right moment).
pub fn attempt_with(qm: &QueueManager, ops: &[Op], batched: bool, before_op: &mut dyn FnMut(&QueueManager)) -> Attempt {
    let mut states = vec![qm.state()];
    let base = qm.last_seq().0;
    assert_eq!(base, 0, "attempt starts on an empty store");
    let mut acknowledged = 0;
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        before_op(qm);
        let result = apply(qm, op);
        let last = qm.last_seq().0;
        let before = states.len() as u64 - 1;
        assert!(
            last == before || last == before + 1,
            "{op:?} wrote more than one record"
        );
        if last == before + 1 {
            states.push(qm.state());
        }
        let acknowledges = if batched {
            matches!(op, Op::Flush | Op::Snapshot)
        } else {
            op.is_mutation()
        };
        if result.is_ok() && acknowledges {
            acknowledged = last;
        }
        results.push(result);
    }
    Attempt {
        states,
        acknowledged,
        results,
    }
}

/// The journal payload of an `added` event for movie `id` at time `1.5 × n`.
#[must_use]
pub fn added_payload(id: &str, n: u64) -> Vec<u8> {
    movie_queue::testing::encode_payload(1.5 * n as f64, &movie_queue::Event::Added { movie: movie(id) })
        .expect("encode a payload")
}

/// Crafts a segment file `journal/<first_seq>.seg` holding `records`
/// (sequence number, payload), framed by the format's own encoder, and
/// returns its path and each record's start offset.
pub fn write_segment(journal: &Path, first_seq: u64, records: &[(u64, Vec<u8>)]) -> (PathBuf, Vec<u64>) {
    use movie_queue::testing::segment_name;
    use movie_queue::testing::{encode_record, encode_segment_header};
    fs::create_dir_all(journal).expect("create the journal directory");
    let mut bytes = encode_segment_header(Seq(first_seq)).to_vec();
    let mut starts = Vec::new();
    for (seq, payload) in records {
        starts.push(bytes.len() as u64);
        encode_record(&mut bytes, Seq(first_seq), Seq(*seq), payload);
    }
    let path = journal.join(segment_name(Seq(first_seq)));
    fs::write(&path, bytes).expect("write the segment");
    (path, starts)
}

/// Records `first..=last` as (sequence number, `added` payload) pairs.
#[must_use]
pub fn added_records(first: u64, last: u64) -> Vec<(u64, Vec<u8>)> {
    (first..=last)
        .map(|n| (n, added_payload(&format!("m{n}"), n)))
        .collect()
}

/// A damaged tail the reader found after the last valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailFound {
    /// The segment.
    pub path: PathBuf,
    /// Where the damage starts (the end of the last valid record).
    pub offset: u64,
    /// Bytes from there to the end of the file.
    pub bytes: u64,
}

/// Reads the journal in `journal` as recovery does from record 1 (no
/// checkpoint): the sequence numbers of the records it would apply, and the
/// damaged tail after them, if any. Changes nothing.
///
/// # Errors
/// The damage that breaks the chain (valid records after it), naming file and offset.
pub fn replay_seqs(journal: &Path) -> Result<(Vec<u64>, Option<TailFound>), Error> {
    let scan = movie_queue::testing::scan_journal(&RealStorage, journal)?;
    let chain = scan.chain_from(Seq(0));
    let tail = match &chain.after {
        movie_queue::testing::ChainEnd::Broken(broken) => return Err(scan.break_error(broken)),
        movie_queue::testing::ChainEnd::Tail { segment, damage } => {
            let segment = &scan.segments[*segment];
            let damage = &segment.damages[*damage];
            Some(TailFound {
                path: segment.path.clone(),
                offset: damage.offset,
                bytes: damage.end - damage.offset,
            })
        }
        movie_queue::testing::ChainEnd::Clean => None,
    };
    let mut seqs = Vec::new();
    movie_queue::testing::replay_events(&RealStorage, &scan, Seq(1), chain.end, &mut |record, _| {
        seqs.push(record.seq.0);
        Ok(())
    })?;
    Ok((seqs, tail))
}
