//! The oracle and the property (see the module above).

use super::*;

// ----- the oracle ------------------------------------------------------------

/// How a damaged segment header reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeaderState {
    Intact,
    /// Only the CRC-covered bytes 12..28 changed: the checksum fails, the
    /// records still read under the file's name.
    ChecksumOnly,
    /// Magic, version or the unchecked reserved word changed, or the file
    /// is shorter than a header: nothing in the file is trusted.
    Unreadable,
}

fn header_state(pristine: &[u8], now: &[u8]) -> HeaderState {
    if now.len() < HEADER || now[..12] != pristine[..12] || now[28..HEADER] != pristine[28..HEADER] {
        HeaderState::Unreadable
    } else if now[12..28] == pristine[12..28] {
        HeaderState::Intact
    } else {
        HeaderState::ChecksumOnly
    }
}

/// What the oracle expects of a damaged store.
#[derive(Debug)]
struct Expectation {
    /// The furthest record surviving records reach from a surviving
    /// starting point: an open that succeeds, and `repair`, give `states[best]`.
    best: u64,
}

fn expect(pristine: &Pristine, work: &Path) -> Expectation {
    let last = pristine.last();
    let mut survives = vec![false; usize::try_from(last).expect("small") + 2];
    for segment in &pristine.segments {
        let relative = PathBuf::from(JOURNAL).join(segment.path.file_name().expect("name"));
        let before = &pristine.files[&relative];
        let Ok(now) = fs::read(work.join(&relative)) else {
            continue;
        };
        let header = header_state(before, &now);
        if header == HeaderState::Unreadable {
            continue;
        }
        for (at, record) in segment.records.iter().enumerate() {
            let intact = now.get(record.start..record.end) == before.get(record.start..record.end);
            let blocked = header == HeaderState::ChecksumOnly && at == 0;
            survives[usize::try_from(record.seq).expect("small")] = intact && !blocked;
        }
    }
    let intact = |relative: &str| {
        let before = pristine.files.get(Path::new(relative));
        before.is_some() && fs::read(work.join(relative)).ok().as_ref() == before
    };
    let mut starts = vec![0];
    if let Some(seq) = pristine.snapshot_seq
        && intact(MANIFEST)
        && DOCUMENTED
            .iter()
            .all(|name| !pristine.files.contains_key(Path::new(name)) || intact(name))
    {
        starts.push(seq);
    }
    if let Some(seq) = pristine.base_seq
        && intact("journal/base.json")
    {
        starts.push(seq);
    }
    let reach = |start: u64| {
        let mut end = start;
        while end < last && survives[usize::try_from(end + 1).expect("small")] {
            end += 1;
        }
        end
    };
    let best = starts.iter().copied().map(reach).max().unwrap_or(0);
    Expectation { best }
}

/// Opens `dir` as a writer (no requeue on open: the state is the store's);
/// its state, checked for consistent indexes.
pub(super) fn open_state(dir: &Path) -> Result<QueueState, Error> {
    let qm = QueueManager::options().requeue_in_flight_on_open(false).open(dir)?;
    let state = qm.state();
    qm.close()?;
    assert!(state.indexes_agree(), "the opened state's indexes disagree");
    Ok(state)
}

pub(super) fn show(state: &QueueState) -> String {
    let list = |entries: Vec<movie_queue::QueueEntry>| {
        entries
            .iter()
            .map(|entry| format!("{}(r{})", entry.id(), entry.retry_count))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "pending [{}] in-flight [{}] failed [{}] completed [{}] removed [{}]",
        list(entries(state.pending())),
        list(entries(state.in_flight())),
        list(entries(state.failed())),
        list(entries(state.completed())),
        list(entries(state.removed()))
    )
}

/// Which recorded state `state` is (the latest one it equals), if any.
fn which_state(pristine: &Pristine, state: &QueueState) -> Option<u64> {
    pristine
        .states
        .iter()
        .rposition(|candidate| candidate == state)
        .map(|at| at as u64)
}

/// Is the damage a cut of the last segment exactly at a record boundary
/// (or at the header's end): no byte of the lost records is left behind,
/// so nothing tells the store apart from one whose writes stopped there.
fn clean_cut_of_last_segment(pristine: &Pristine, damage: &Damage) -> bool {
    let Artifact::Segment(index) = &damage.artifact else {
        return false;
    };
    let segment = &pristine.segments[*index];
    let at_a_boundary = |at: usize| at == HEADER || segment.records.iter().any(|record| record.end == at);
    if *index + 1 != pristine.segments.len() {
        return false;
    }
    match damage.action {
        Action::Truncate(len) => at_a_boundary(len),
        // Zeros from a record boundary on read as the end of the log, as a
        // cut there does (zeros after the records are what a preallocating
        // writer leaves: the limit `durability::settle` states).
        Action::Zero { start, end } => pristine.files.get(&damage.path).is_some_and(|bytes| {
            let mut zeroed = bytes.clone();
            let end = end.min(zeroed.len());
            zeroed[start.min(end)..end].fill(0);
            let written = crate::support::durability::written_end(&zeroed).max(HEADER);
            at_a_boundary(written) && written < segment.end
        }),
        _ => false,
    }
}

/// Property (c)'s bookkeeping: every byte present before `repair` and
/// gone after it is in a new `*.broken` file beside its file (or in its
/// directory, renamed aside whole as `<dir>.<tag>.broken/`).
///
/// Repair cuts a file at offset `k` into `<name>.<k>.broken`, and renames a
/// whole file aside as `<name>.<tag>.broken`; a file may be cut, then what
/// is left of it renamed aside. So each new `<name>.<tag>.broken` is a
/// piece of the old bytes at offset `<tag>` (a number) or 0, and what is
/// left in place is a piece at 0. Every byte of the old file that no piece
/// holds must be zero (repair copies no all-zero cut).
fn check_set_aside(
    context: &str,
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
    damage: &Damage,
) {
    let new_broken: Vec<(&PathBuf, &Vec<u8>)> = after
        .iter()
        .filter(|(path, _)| {
            !before.contains_key(*path)
                && path
                    .components()
                    .any(|part| part.as_os_str().to_string_lossy().ends_with(".broken"))
        })
        .collect();
    for (path, old) in before {
        let name = file_name(path);
        let now = after.get(path);
        if now == Some(old) {
            continue;
        }
        // Derived files repair may rewrite: the tail marker, the time
        // index and the id filters (hints, rebuilt from the segments), `*.tmp`
        // leftovers, and the manifest and the snapshot's index when the
        // manifest was intact (repair's fresh snapshot writes new ones; the
        // index holds nothing the documented files do not). A documented file it changes is
        // copied first (`<file>.before-repair.broken`).
        if path == &PathBuf::from(JOURNAL).join(TAIL)
            || path == &PathBuf::from(JOURNAL).join("times")
            || path == &PathBuf::from(JOURNAL).join("ids")
            || name.ends_with(".tmp")
            || (name == MANIFEST && *path != damage.path)
            || (name == movie_queue::testing::INDEX_FILE && *path != damage.path)
        {
            continue;
        }
        let mut held = vec![false; old.len()];
        if let Some(now) = now {
            // Bytes still where they were (a cut keeps a prefix; a header
            // written anew keeps every record in place).
            for (at, (was, is)) in old.iter().zip(now).enumerate() {
                held[at] |= was == is;
            }
        }
        let hold = |held: &mut Vec<bool>, offset: usize, bytes: &[u8]| {
            let fits = offset
                .checked_add(bytes.len())
                .is_some_and(|end| old.get(offset..end) == Some(bytes));
            if fits {
                held[offset..offset + bytes.len()].fill(true);
            }
            fits
        };
        let prefix = format!("{name}.");
        let parent = path.parent().unwrap_or(Path::new(""));
        let parent_prefix = parent
            .file_name()
            .map(|parent| format!("{}.", parent.to_string_lossy()));
        for (aside, bytes) in &new_broken {
            let aside_parent = aside.parent().unwrap_or(Path::new(""));
            let aside_name = file_name(aside);
            // Beside it, or in its directory renamed aside whole
            // (`journal.<tag>.broken/`).
            let same_dir = aside_parent == parent;
            let renamed_dir = aside_parent.parent() == parent.parent()
                && parent_prefix.as_ref().is_some_and(|parent_prefix| {
                    let aside_dir = file_name(aside_parent);
                    aside_dir.starts_with(parent_prefix.as_str()) && aside_dir.ends_with(".broken")
                });
            if !same_dir && !renamed_dir {
                continue;
            }
            if aside_name == name {
                hold(&mut held, 0, bytes);
            } else if let Some(tag) = aside_name.strip_prefix(&prefix) {
                // `<name>.<offset>.broken` (a cut), or `<name>.<tag>.broken`
                // (the whole file renamed aside).
                let offset = tag.split('.').next().and_then(|tag| tag.parse::<usize>().ok());
                if !offset.is_some_and(|offset| hold(&mut held, offset, bytes)) && !hold(&mut held, 0, bytes) {
                    // The whole file renamed aside after zeros were written
                    // over bytes first copied aside (a segment is never
                    // shortened): it holds the bytes it still has in place.
                    for (at, (was, is)) in old.iter().zip(bytes.iter()).enumerate() {
                        held[at] |= was == is;
                    }
                }
            }
        }
        let lost: Vec<usize> = (0..old.len()).filter(|&at| !held[at] && old[at] != 0).collect();
        assert!(
            lost.is_empty(),
            "{context}: repair removed {} non-zero bytes of {} (from offset {:?}) and set them aside nowhere; new files: {:?}",
            lost.len(),
            path.display(),
            lost.first(),
            new_broken.iter().map(|(path, _)| path).collect::<Vec<_>>()
        );
    }
}

/// Runs one case: builds the store, damages a copy, checks (a)–(d).
fn check_case(workload: &Workload, plan: &Plan) {
    let pristine = build(workload);
    let last = pristine.last();
    let full = pristine.state(last);
    // The undamaged store holds everything (read-only: no fsync spent).
    let report = movie_queue::verify(pristine.dir.path()).expect("the undamaged store verifies");
    assert_eq!(report.last_seq, last, "the undamaged store's last record");
    let state = QueueManager::open_read_only(pristine.dir.path())
        .expect("the undamaged store opens")
        .state();
    assert!(state == *full, "the undamaged store lost something: {}", show(&state));

    let damage = resolve(plan, &pristine);
    let damaged = scratch();
    reset_dir(pristine.dir.path(), damaged.path());
    apply_damage(damaged.path(), &damage);
    let context = format!("{damage:?} after {last} records");
    let expectation = expect(&pristine, damaged.path());
    let best = pristine.state(expectation.best);

    // The oracle's own premise: only damage to journal records can be the
    // only copy of anything.
    if !matches!(damage.artifact, Artifact::Segment(_)) {
        assert_eq!(
            expectation.best, last,
            "{context}: the oracle lost records to a redundant artifact"
        );
    }

    // (a) verify succeeds iff open succeeds.
    let verify_dir = copy_of(damaged.path());
    let verdict = movie_queue::verify(verify_dir.path());
    let open_dir = copy_of(damaged.path());
    let opened = open_state(open_dir.path());
    let plain_dir = copy_of(damaged.path());
    let plain = QueueManager::open(plain_dir.path()).and_then(QueueManager::close);
    assert_eq!(
        verdict.is_ok(),
        opened.is_ok(),
        "{context}: verify and open disagree: verify {verdict:?}, open {:?}",
        opened.as_ref().map(show)
    );
    assert_eq!(
        plain.is_ok(),
        opened.is_ok(),
        "{context}: QueueManager::open and an open without requeue disagree: {plain:?} vs {:?}",
        opened.as_ref().map(show)
    );

    // (b) what an open gives.
    match (&opened, &damage.artifact) {
        (Err(error), Artifact::Tail | Artifact::Manifest | Artifact::Documented | Artifact::Base) if last > 0 => {
            panic!("{context}: damage to a redundant artifact kept the store from opening: {error}")
        }
        (Err(error), Artifact::Garbage(Planted::Ignored)) => {
            panic!("{context}: a planted file the journal ignores kept the store from opening: {error}")
        }
        (Err(error), Artifact::Garbage(Planted::Base)) if last > 0 => {
            panic!("{context}: a planted base kept the store from opening: {error}")
        }
        (Ok(state), Artifact::Garbage(Planted::Foreign)) => {
            panic!(
                "{context}: a foreign file in journal/ went unnoticed; the open gave {}",
                show(state)
            )
        }
        (Err(error), Artifact::Garbage(Planted::Foreign)) => assert!(
            error.to_string().contains("garbage"),
            "{context}: the error does not name the planted file: {error}"
        ),
        _ => {}
    }
    if let Ok(state) = &opened {
        assert!(
            state == best,
            "{context}: the open served the wrong state (it is state {:?})\n got: {}\nwant: {} (state {})\nlast: {}",
            which_state(&pristine, state),
            show(state),
            show(best),
            expectation.best,
            show(full)
        );
        let reported = verdict.as_ref().expect("verify passed").last_seq;
        assert_eq!(
            reported, expectation.best,
            "{context}: verify reports another last record than the open keeps"
        );
        if expectation.best < last && !clean_cut_of_last_segment(&pristine, &damage) {
            // Records were lost (their only copy was damaged): never
            // silently. `verify` names the damaged segment, as a torn tail
            // or as a damaged record at the end the checkpoint covers.
            let problems = &verdict.as_ref().expect("verify passed").problems;
            let segment = file_name(&damage.path);
            assert!(
                problems.iter().any(|problem| problem.contains(&segment)),
                "{context}: records {}..={last} were lost without verify naming {segment}: {problems:?}",
                expectation.best + 1
            );
        }
    }

    eprintln!(
        "prop_damage: case: {} {} records={last} best={} open={} ",
        artifact_kind(&damage.artifact),
        action_kind(&damage),
        expectation.best,
        if opened.is_ok() { "ok" } else { "refused" },
    );

    // (c) repair.
    let repaired = copy_of(damaged.path());
    let before = files_of(repaired.path());
    let report =
        movie_queue::repair(repaired.path()).unwrap_or_else(|error| panic!("{context}: repair failed: {error}"));
    let after = files_of(repaired.path());
    let context = format!("{context}, repair {report:?}");
    movie_queue::verify(repaired.path()).unwrap_or_else(|error| panic!("{context}: verify after repair: {error}"));
    let reopened = copy_of(repaired.path());
    let state = open_state(reopened.path()).unwrap_or_else(|error| panic!("{context}: open after repair: {error}"));
    check_set_aside(&context, &before, &after, &damage);
    assert!(
        state == *best,
        "{context}: repair gave the wrong state (it is state {:?})\n got: {}\nwant: {} (state {})\nlast: {}",
        which_state(&pristine, &state),
        show(&state),
        show(best),
        expectation.best,
        show(full)
    );
    if let Ok(opened) = &opened {
        assert!(state == *opened, "{context}: repair gave another state than the open");
    }

    // (d) a second repair changes nothing.
    let again =
        movie_queue::repair(repaired.path()).unwrap_or_else(|error| panic!("{context}: second repair: {error}"));
    assert!(
        again.damage.is_none() && again.actions.is_empty() && again.set_aside.is_empty(),
        "{context}: a second repair did something: {again:?}"
    );
    assert!(
        files_of(repaired.path()) == after,
        "{context}: a second repair changed files"
    );
}

/// Short names for the per-case summary line (`--nocapture` shows them).
fn artifact_kind(artifact: &Artifact) -> &'static str {
    match artifact {
        Artifact::Segment(_) => "segment",
        Artifact::Tail => "tail-marker",
        Artifact::Manifest => "manifest",
        Artifact::Documented => "documented",
        Artifact::Base => "base",
        Artifact::Garbage(Planted::Foreign) => "planted-foreign",
        Artifact::Garbage(Planted::Ignored) => "planted-ignored",
        Artifact::Garbage(Planted::Segment) => "planted-segment",
        Artifact::Garbage(Planted::Base) => "planted-base",
    }
}

fn action_kind(damage: &Damage) -> &'static str {
    let header = matches!(damage.artifact, Artifact::Segment(_));
    match damage.action {
        Action::Flip { byte, .. } if header && byte < HEADER => "flip-header",
        Action::Flip { .. } => "flip",
        Action::Zero { start, .. } if header && start < HEADER => "zero-header",
        Action::Zero { .. } => "zero",
        Action::Truncate(len) if header && len < HEADER => "truncate-header",
        Action::Truncate(_) => "truncate",
        Action::Remove => "remove",
        Action::Plant(_) => "plant",
    }
}

fn copy_of(dir: &Path) -> tempfile::TempDir {
    let work = scratch();
    reset_dir(dir, work.path());
    work
}

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(64);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn one_damage_to_any_artifact_keeps_what_survives_and_repair_restores_it(
        workload in workload_strategy(),
        plan in plan_strategy(),
    ) {
        check_case(&workload, &plan);
    }
}
