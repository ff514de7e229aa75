//! `repair` killed part-way (see the module above for the oracle).

use super::*;

// ----- repair ---------------------------------------------------------------------

/// Where the damage of the repair store is.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// In the middle of the journal's only (so last) segment.
    LastSegment,
    /// In the middle of a middle segment, with later segments after it.
    MiddleSegment,
}

struct RepairFixture {
    /// The damaged store (closed, no manifest).
    pristine: tempfile::TempDir,
    /// Its segments' size limit.
    segment_bytes: u64,
    /// The segment file (relative to the store) and offset the error names.
    damage_path: PathBuf,
    damage_offset: u64,
    /// The segments as damaged, before any repair.
    segments: BTreeMap<String, Vec<u8>>,
    /// The state after the records before the damage (from the undamaged store).
    repaired: QueueState,
    repaired_last_seq: u64,
}

fn repair_fixture(damage: Damage) -> RepairFixture {
    let pristine = scratch();
    let dir = pristine.path();
    let segment_bytes = match damage {
        Damage::LastSegment => 64 << 20,
        Damage::MiddleSegment => SMALL_SEGMENT_BYTES,
    };
    let qm = quiet(segment_bytes).open(dir).expect("open the repair store");
    let states = run_workload(&qm, 120, None);
    qm.close().expect("close the repair store");
    std::fs::remove_file(dir.join(movie_queue::testing::MANIFEST_FILE)).expect("remove the manifest");
    let segments_layout = layout(dir);
    let index = match damage {
        Damage::LastSegment => {
            assert_eq!(segments_layout.len(), 1, "one segment");
            0
        }
        Damage::MiddleSegment => {
            assert!(segments_layout.len() >= 5, "many segments: {}", segments_layout.len());
            segments_layout.len() / 2
        }
    };
    let segment = &segments_layout[index];
    let record = segment.records[segment.records.len() / 2];
    assert!(
        segment.records.len() >= 3 && record.end < segment.len,
        "records after the damaged one"
    );
    let mut bytes = std::fs::read(&segment.path).expect("read the segment");
    let header = movie_queue::testing::RECORD_HEADER_BYTES;
    let at = record.start + header + (record.end - record.start - header) / 2;
    bytes[at] ^= 0x5a;
    std::fs::write(&segment.path, &bytes).expect("damage the segment");
    let damage_path = segment.path.strip_prefix(dir).expect("in the store").to_path_buf();
    let damage_offset = record.start as u64;
    let repaired_last_seq = record.seq - 1;
    let repaired = states[usize::try_from(repaired_last_seq).expect("small")].clone();

    // The state before: the store does not open, naming the damage.
    let error = quiet(segment_bytes)
        .open(dir)
        .expect_err("the damaged store does not open");
    assert_names_damage(&error, dir, &damage_path, damage_offset, "the damaged store");
    let segments_before = segments(dir);

    // The repaired state: an uninterrupted repair, in process, on a copy.
    let reference = scratch();
    let copy = reference.path().join("store");
    reset_dir(dir, &copy);
    let report = movie_queue::repair(&copy).expect("the reference repair");
    assert_eq!(
        report.last_seq,
        Seq(repaired_last_seq),
        "the reference repair's last record"
    );
    let qm = quiet(segment_bytes).open(&copy).expect("open the repaired copy");
    assert!(
        qm.state() == repaired,
        "the reference repair keeps exactly the records before the damage"
    );
    drop(qm);
    assert!(!broken_files(&copy).is_empty(), "the reference repair set bytes aside");
    assert_no_byte_lost(&copy, &segments_before, "the reference repair");
    RepairFixture {
        pristine,
        segment_bytes,
        damage_path,
        damage_offset,
        segments: segments_before,
        repaired,
        repaired_last_seq,
    }
}

#[track_caller]
fn assert_names_damage(error: &Error, dir: &Path, path: &Path, offset: u64, context: &str) {
    assert!(error.is_corruption(), "{context}: expected corruption, got {error}");
    let (found_path, found_offset) = error
        .place()
        .unwrap_or_else(|| panic!("{context}: {error} names no place"));
    assert_eq!(
        (found_path, found_offset),
        (dir.join(path).as_path(), offset),
        "{context}: the error names another place than the damage: {error}"
    );
}

/// After a kill: the unrepaired store exactly, or the repaired state.
/// A store that fails to open some other way is neither: it is counted
/// (and described) in `tally.other_states`, checked to have lost no byte,
/// and the test fails after its last kill.
fn check_repair_after_kill(store: &Path, fixture: &RepairFixture, context: &str, tally: &mut Tally) {
    assert_no_byte_lost(store, &fixture.segments, context);
    match movie_queue::verify(store) {
        Err(error) if names_damage(&error, store, &fixture.damage_path, fixture.damage_offset) => {
            // Refused at the same damage: every segment still there is as
            // it was, the damaged one among them, and the ones gone are the
            // last ones (a repair sets them aside from the end back before it
            // cuts the damaged segment; `assert_no_byte_lost` found them).
            let now = segments(store);
            let damaged = fixture
                .damage_path
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned();
            assert!(
                now.get(&damaged) == fixture.segments.get(&damaged)
                    && now
                        .iter()
                        .all(|(name, bytes)| fixture.segments.get(name) == Some(bytes))
                    && fixture.segments.keys().take(now.len()).eq(now.keys()),
                "{context}: the store is not repaired, yet its segments changed otherwise than by the last ones \
                 going aside: {:?}",
                journal_listing(store)
            );
            let error = quiet(fixture.segment_bytes)
                .open(store)
                .expect_err("an unrepaired store does not open");
            assert_names_damage(
                &error,
                store,
                &fixture.damage_path,
                fixture.damage_offset,
                &format!("{context}: open of an unrepaired store"),
            );
            tally.before_state += 1;
        }
        Err(error) => {
            let open = quiet(fixture.segment_bytes).open(store).map(drop);
            assert!(open.is_err(), "{context}: verify fails ({error}), yet the store opens");
            tally.other_states.push(format!(
                "{context}: neither unrepaired nor repaired: verify says {error}; open says {open:?}; \
                 journal: {:?}",
                journal_listing(store)
            ));
        }
        Ok(report) => {
            assert_eq!(
                report.last_seq, fixture.repaired_last_seq,
                "{context}: verify of a repaired store: {report:?}"
            );
            check_repaired(store, fixture, context);
            tally.after_state += 1;
        }
    }
}

fn names_damage(error: &Error, dir: &Path, path: &Path, offset: u64) -> bool {
    error.is_corruption() && error.place() == Some((dir.join(path).as_path(), offset))
}

/// Every byte of every segment of the damaged store but its zeros is still
/// somewhere: in the segment (where no zeros were written over it), or in
/// `*.broken` files beside it —
/// `<segment>.<offset>[.<n>].broken` holding its bytes from `offset` on
/// (a cut, or with offset 0 the whole file moved aside), any other
/// `<segment>.<tag>[.<n>].broken` a whole file moved aside as it was then.
fn assert_no_byte_lost(store: &Path, segments_before: &BTreeMap<String, Vec<u8>>, context: &str) {
    let journal = journal_dir(store);
    let broken = broken_files(store);
    for (name, bytes) in segments_before {
        let mut pieces: Vec<(usize, &[u8])> = Vec::new();
        // Zeros hold nothing (the room a writer laid down after its
        // records); the segment itself keeps its bytes where repair did
        // not write zeros over them (a segment is never shortened).
        let mut covered: Vec<bool> = bytes.iter().map(|&byte| byte == 0).collect();
        if let Ok(current) = std::fs::read(journal.join(name)) {
            for (at, (was, now)) in bytes.iter().zip(&current).enumerate() {
                covered[at] |= was == now;
            }
        }
        for (path, kept) in &broken {
            let Some(tag) = path
                .file_name()
                .and_then(|file| file.to_str()?.strip_prefix(&format!("{name}.")))
                .filter(|_| path.parent() == Some(Path::new(movie_queue::testing::JOURNAL_DIR)))
            else {
                continue;
            };
            let offset = tag
                .split('.')
                .next()
                .and_then(|offset| offset.parse().ok())
                .unwrap_or(0);
            pieces.push((offset, kept));
        }
        for (offset, piece) in pieces {
            if bytes.get(offset..offset + piece.len()) == Some(piece) {
                covered[offset..offset + piece.len()].fill(true);
            }
        }
        let lost = covered.iter().filter(|covered| !**covered).count();
        assert!(
            lost == 0,
            "{context}: {lost} bytes of {name} are neither in it nor set aside; set aside: {:?}",
            broken.keys().collect::<Vec<_>>()
        );
    }
}

/// The store opens with exactly the repaired state.
fn check_repaired(store: &Path, fixture: &RepairFixture, context: &str) {
    let reader = QueueManager::open_read_only(store).unwrap_or_else(|error| panic!("{context}: a reader: {error}"));
    assert!(
        reader.state() == fixture.repaired,
        "{context}: a reader sees another state than the repaired one"
    );
    drop(reader);
    let qm = quiet(fixture.segment_bytes)
        .open(store)
        .unwrap_or_else(|error| panic!("{context}: reopening the repaired store: {error}"));
    assert!(
        qm.state() == fixture.repaired,
        "{context}: the reopened state is not the repaired one"
    );
    assert!(
        full_replay(store) == fixture.repaired,
        "{context}: a full replay differs from the repaired state"
    );
    qm.close().unwrap_or_else(|error| panic!("{context}: close: {error}"));
}

/// Finishes the repair in the parent; checks the result, that every file
/// set aside before it is still there, and that no byte is lost.
fn finish_repair(store: &Path, fixture: &RepairFixture, after_kill: &BTreeMap<PathBuf, Vec<u8>>, context: &str) {
    movie_queue::repair(store).unwrap_or_else(|error| panic!("{context}: repair after the kill: {error}"));
    check_repaired(store, fixture, &format!("{context}, repair finished"));
    let report = movie_queue::verify(store).unwrap_or_else(|error| panic!("{context}: verify: {error}"));
    assert!(
        report.problems.is_empty(),
        "{context}: verify found {:?}",
        report.problems
    );
    assert_eq!(
        report.last_seq, fixture.repaired_last_seq,
        "{context}: verify's last record"
    );
    let now = broken_files(store);
    for (path, bytes) in after_kill {
        assert!(
            now.get(path) == Some(bytes),
            "{context}: {} (set aside before the kill) is gone or changed",
            path.display()
        );
    }
    assert_no_byte_lost(store, &fixture.segments, &format!("{context}, repair finished"));
}

fn repair_kills(test: &str, damage: Damage, kills: usize) -> Tally {
    let started = Instant::now();
    let mut random = Random::new(test);
    let fixture = repair_fixture(damage);
    let work = scratch();
    let store = work.path().join("store");
    let duration = calibrate(fixture.pristine.path(), &store, Op::Repair, test, |store| {
        check_repaired(store, &fixture, &format!("{test}: the calibration run"));
    });
    let mut tally = Tally::default();
    for kill in 0..kills {
        reset_dir(fixture.pristine.path(), &store);
        let delay = random_delay(&mut random, duration);
        let context = format!("{test}: kill {kill} (seed {}, delay {delay:?})", random.seed);
        let run = run_child(&store, Op::Repair, Some(delay), &context);
        tally.count(&run);
        let after_kill = broken_files(&store);
        check_repair_after_kill(&store, &fixture, &context, &mut tally);
        finish_repair(&store, &fixture, &after_kill, &context);
    }
    tally.report(test, "unrepaired", "repaired", started);
    tally
}

#[test]
fn kill9_repair_short() {
    let _alone = crate::support::alone();
    let tally = repair_kills("kill9_repair_short", Damage::LastSegment, CI_KILLS);
    assert_eq!(tally.kills, CI_KILLS);
}

#[test]
#[ignore = "long run: MOVIE_QUEUE_KILL9_MAINT_KILLS (default 50) kills; see the module's documentation"]
fn kill9_repair_long() {
    let _alone = crate::support::alone();
    let tally = repair_kills("kill9_repair_long", Damage::LastSegment, long_kills());
    assert!(tally.mid_operation > 0, "no kill landed during the repair");
}

#[test]
fn kill9_repair_across_segments_short() {
    let _alone = crate::support::alone();
    let tally = repair_kills("kill9_repair_across_segments_short", Damage::MiddleSegment, CI_KILLS);
    assert_eq!(tally.kills, CI_KILLS);
}

#[test]
#[ignore = "long run: MOVIE_QUEUE_KILL9_MAINT_KILLS (default 50) kills; see the module's documentation"]
fn kill9_repair_across_segments_long() {
    let _alone = crate::support::alone();
    let tally = repair_kills("kill9_repair_across_segments_long", Damage::MiddleSegment, long_kills());
    assert!(tally.mid_operation > 0, "no kill landed during the repair");
}
