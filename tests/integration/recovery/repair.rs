//! Repair: with no checkpoint over the damage, every valid record before
//! it is kept, everything from the damage on is set aside in `*.broken`
//! files (never deleted), and the store opens again; a valid snapshot over
//! damaged records keeps them all (the store opens before repair, and
//! repair records the snapshot's state as the compaction base); a power
//! loss at any fsync of the repair loses no byte.
//!
//! How: a journal of three segments is built through the API; a bit is
//! flipped in a middle record of the last segment, or of the first one,
//! or in the first segment's header. `movie_queue::repair` must report the
//! damage, leave the damaged segment cut at the damaged record's offset
//! with the bytes from there on in `<segment>.<offset>.broken`, move every
//! later segment aside whole, and leave a store that opens with exactly the
//! records before the damage and passes `verify`. A sound journal is left
//! alone.
//! Then `repair_with` runs over a `FaultyStorage` that loses power after
//! each of its fsyncs in turn: afterwards every original byte must still
//! be somewhere — in the segment or in a `.broken` file.

use crate::support::durability as durability_support;

use std::fs;
use std::path::{Path, PathBuf};

use durability_support::{
    ReferenceRun, SegmentLayout, layout, quiet_options, real, reset_dir, scratch, segment_paths, short_script,
};
use movie_queue::testing::repair_with;
use movie_queue::testing::{Fault, FaultyStorage, SEGMENT_HEADER_BYTES};
use movie_queue::{QueueManager, Seq};

fn reference() -> ReferenceRun {
    let run = ReferenceRun::record(quiet_options(real()).segment_bytes_max(500), &short_script());
    assert!(layout(run.dir.path()).len() >= 3, "three segments or more");
    run
}

/// Flips a bit in record `record` (an index) of segment `segment`, or in
/// its header when `record` is `None`; returns the damage offset repair
/// must cut at (0: the whole file goes aside).
fn damage(dir: &Path, segments: &[SegmentLayout], segment: usize, record: Option<usize>) -> (PathBuf, u64) {
    let path = dir
        .join("journal")
        .join(segments[segment].path.file_name().expect("name"));
    let mut bytes = fs::read(&path).expect("read");
    let (flip_at, cut_at) = match record {
        Some(index) => {
            let span = segments[segment].records[index];
            (span.start + 20, span.start as u64)
        }
        None => (2, 0),
    };
    bytes[flip_at] ^= 0x10;
    fs::write(&path, bytes).expect("write");
    (path, cut_at)
}

fn broken_name(path: &Path, offset: u64) -> PathBuf {
    let mut name = path.file_name().expect("name").to_os_string();
    name.push(format!(".{offset}.broken"));
    path.with_file_name(name)
}

/// Repairs a copy of the reference with the given damage and checks the
/// result.
fn repair_case(reference: &ReferenceRun, segment: usize, record: Option<usize>) {
    let segments = layout(reference.dir.path());
    let work = scratch();
    reset_dir(reference.dir.path(), work.path());
    let (path, cut_at) = damage(work.path(), &segments, segment, record);
    let original = fs::read(&path).expect("read");
    let later: Vec<(PathBuf, Vec<u8>)> = segments[segment + 1..]
        .iter()
        .map(|later| {
            let path = work.path().join("journal").join(later.path.file_name().expect("name"));
            let bytes = fs::read(&path).expect("read");
            (path, bytes)
        })
        .collect();
    let context = format!("damage in segment {segment}, record {record:?}");
    assert!(
        QueueManager::open(work.path()).is_err(),
        "{context}: the damage is an error before repair"
    );

    let report = movie_queue::repair(work.path()).expect("repair");
    assert!(report.damage.is_some(), "{context}: the damage is reported");
    let kept: u64 = segments[..segment].iter().map(|s| s.records.len() as u64).sum::<u64>()
        + record.map_or(0, |index| index as u64);
    assert_eq!(
        report.last_seq,
        Seq(kept),
        "{context}: every record before the damage is kept"
    );
    let aside = broken_name(&path, cut_at);
    assert!(
        report.set_aside.contains(&aside),
        "{context}: {} is listed as set aside",
        aside.display()
    );
    let cut = usize::try_from(cut_at).expect("small");
    // A segment damaged in its header goes aside whole (renamed); else the
    // bytes from the damage on are copied, without the zeros after them.
    let written = if cut == 0 {
        original.len()
    } else {
        durability_support::written_end(&original).max(cut)
    };
    assert_eq!(
        fs::read(&aside).expect("the damaged bytes are set aside"),
        original[cut..written],
        "{context}: the set-aside file holds exactly the bytes written over (the zeros after them hold nothing)"
    );
    if cut_at > 0 {
        let now = fs::read(&path).expect("read");
        assert_eq!(
            (&now[..cut], now.len(), now[cut..].iter().all(|&byte| byte == 0)),
            (&original[..cut], original.len(), true),
            "{context}: the records before the damage, then zeros; a segment is never shortened"
        );
    } else {
        assert!(
            !path.exists(),
            "{context}: a segment with a bad header is moved aside whole"
        );
    }
    for (later_path, bytes) in &later {
        assert!(!later_path.exists());
        assert_eq!(
            &fs::read(broken_name(later_path, 0)).expect("moved aside"),
            bytes,
            "{context}"
        );
    }

    let qm = QueueManager::options()
        .requeue_in_flight_on_open(false)
        .open(work.path())
        .expect("opens");
    let want = &reference.states[usize::try_from(kept).expect("small")];
    assert!(
        &qm.state() == want,
        "{context}: the repaired store holds the records before the damage"
    );
    qm.close().expect("close");
    let verified = movie_queue::verify(work.path()).expect("verify after repair");
    assert!(verified.problems.is_empty(), "{context}: {:?}", verified.problems);
}

#[test]
fn repair_keeps_the_records_before_the_damage_and_sets_the_rest_aside() {
    let reference = reference();
    let segments = layout(reference.dir.path());
    // Damage in the last segment with a valid record after it.
    let last = segments
        .iter()
        .rposition(|segment| segment.records.len() >= 2)
        .expect("a segment of two records");
    repair_case(&reference, last, Some(0));
    repair_case(&reference, 0, Some(1));
    repair_case(&reference, 1, Some(0));
    repair_case(&reference, 0, None);
}

#[test]
fn a_valid_snapshot_over_damaged_records_keeps_them_and_repair_records_it_as_the_base() {
    let dir = scratch();
    let qm = quiet_options(real())
        .segment_bytes_max(400)
        .open(dir.path())
        .expect("open");
    for op in short_script() {
        durability_support::apply(&qm, &op).expect("op");
    }
    let full = qm.state();
    let last = qm.last_seq();
    qm.snapshot().expect("snapshot");
    qm.close().expect("close");
    let segments = layout(dir.path());
    damage(dir.path(), &segments, 0, Some(1));
    let open = |context: &str| {
        let qm = QueueManager::options()
            .requeue_in_flight_on_open(false)
            .read_only(true)
            .open(dir.path())
            .unwrap_or_else(|error| panic!("{context}: {error}"));
        assert!(
            qm.state() == full,
            "{context}: the snapshot proves every acknowledged change"
        );
        assert_eq!(qm.last_seq(), last, "{context}");
    };
    open("before repair");
    let verified = movie_queue::verify(dir.path()).expect("verify passes: the store opens");
    assert!(
        verified.problems.iter().any(|problem| problem.contains("history only")),
        "{:?}",
        verified.problems
    );
    let report = movie_queue::repair(dir.path()).expect("repair");
    assert!(report.damage.is_some(), "the damage is reported");
    assert_eq!(report.last_seq, last, "nothing the snapshot proves is set aside");
    assert!(
        dir.path().join("journal").join("base.json").exists(),
        "the snapshot's state is recorded as the compaction base"
    );
    assert!(dir.path().join("queue_snapshot.json").exists(), "the snapshot is kept");
    open("after repair");
    // The base alone now bridges the damage: the documented files may go.
    durability_support::remove_snapshot(dir.path());
    open("after repair, without the snapshot");
    assert_events_go_on_past_the_base(dir.path(), last);
}

/// The event stream of a store whose damaged records were set aside under
/// a base reads the records kept before the damage, goes on after it, and
/// follows what a writer appends: no error, no record twice.
fn assert_events_go_on_past_the_base(dir: &Path, last: Seq) {
    let seqs = |context: &str| -> Vec<u64> {
        movie_queue::events(dir, Seq(0))
            .expect("events")
            .map(|record| record.unwrap_or_else(|error| panic!("{context}: {error}")).seq.0)
            .collect()
    };
    let before = seqs("after repair");
    assert!(before.windows(2).all(|pair| pair[0] < pair[1]), "{before:?}");
    assert_eq!(before.last(), Some(&last.0), "{before:?}");
    assert!(
        before.windows(2).any(|pair| pair[1] > pair[0] + 1),
        "{before:?}: the records set aside leave a jump the base covers"
    );
    let qm = quiet_options(real()).open(dir).expect("a writer opens");
    qm.add_to_pending(movie_queue::Movie::new("after-repair", "After", "2024"))
        .expect("add");
    qm.close().expect("close");
    let after = seqs("after a write");
    assert_eq!(after.last(), Some(&(last.0 + 1)), "{after:?}");
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "the same history, then the new record"
    );
}

#[test]
fn repair_of_a_sound_journal_changes_nothing() {
    let reference = reference();
    let work = scratch();
    reset_dir(reference.dir.path(), work.path());
    let before = durability_support::Pristine::capture(work.path());
    let report = movie_queue::repair(work.path()).expect("repair");
    assert_eq!(report.damage, None);
    assert_eq!(report.last_seq, Seq(reference.records()));
    assert!(report.set_aside.is_empty());
    let after = segment_paths(work.path());
    assert_eq!(after.len(), layout(reference.dir.path()).len());
    before.restore(work.path());
    assert!(
        durability_support::open_state(work.path(), real()).expect("open") == *reference.states.last().expect("states")
    );
}

/// Every byte of `original` (the damaged segment) and of the later
/// segments is still on disk somewhere: at its place or in a `.broken` file.
fn assert_nothing_lost(context: &str, journal: &Path, damaged: &Path, original: &[u8], later: &[(PathBuf, Vec<u8>)]) {
    let now = fs::read(damaged).ok();
    let now = now.as_deref().unwrap_or_default();
    // A segment is never shortened: its bytes are kept up to a point and
    // zeros written over the rest, which a `.broken` file holds first.
    let kept = durability_support::written_end(now).max(SEGMENT_HEADER_BYTES.min(now.len()));
    let kept = &now[..kept];
    if now != original {
        assert!(
            original.starts_with(kept) && (now.is_empty() || now.len() == original.len()),
            "{context}: the segment was changed, not cut"
        );
        let written = durability_support::written_end(original);
        let aside = broken_name(damaged, kept.len() as u64);
        let saved = fs::read(&aside).unwrap_or_else(|_| {
            panic!(
                "{context}: zeros were written from byte {} on but {} is gone; the {} bytes written over are lost",
                kept.len(),
                aside.display(),
                written - kept.len()
            )
        });
        assert_eq!(
            saved,
            original[kept.len()..written],
            "{context}: the set-aside bytes differ"
        );
    }
    for (path, bytes) in later {
        let here = fs::read(path).ok().or_else(|| fs::read(broken_name(path, 0)).ok());
        assert_eq!(
            here.as_deref(),
            Some(bytes.as_slice()),
            "{context}: {} is lost",
            path.display()
        );
    }
    assert!(journal.exists());
}

#[test]
fn a_power_loss_during_repair_loses_no_byte() {
    let reference = reference();
    let segments = layout(reference.dir.path());
    let probe = scratch();
    reset_dir(reference.dir.path(), probe.path());
    damage(probe.path(), &segments, 1, Some(0));
    let counter = FaultyStorage::new();
    repair_with(&counter, probe.path()).expect("a fault-free repair");
    let syncs = counter.sync_count();
    assert!(
        syncs >= 3,
        "repair fsyncs the set-aside file, the cut and the directory"
    );
    for index in 0..syncs {
        let work = scratch();
        reset_dir(reference.dir.path(), work.path());
        let (damaged, _) = damage(work.path(), &segments, 1, Some(0));
        let original = fs::read(&damaged).expect("read");
        let later: Vec<(PathBuf, Vec<u8>)> = segments[2..]
            .iter()
            .map(|later| {
                let path = work.path().join("journal").join(later.path.file_name().expect("name"));
                let bytes = fs::read(&path).expect("read");
                (path, bytes)
            })
            .collect();
        let faulty = FaultyStorage::new();
        faulty.inject(Fault::PowerLossAfterSync { index, torn_bytes: 0 });
        drop(repair_with(&faulty, work.path()));
        assert!(faulty.has_crashed(), "the power went out");
        let context = format!("power loss after repair fsync {index} of {syncs}");
        assert_nothing_lost(&context, &work.path().join("journal"), &damaged, &original, &later);
        // Repair can be run again and finishes the job.
        movie_queue::repair(work.path()).unwrap_or_else(|error| panic!("{context}: repair again: {error}"));
        QueueManager::open(work.path()).unwrap_or_else(|error| panic!("{context}: open after repair: {error}"));
    }
}

/// The documented files can be the only copy of acknowledged movies (their
/// manifest deleted, the journal damaged before them): `repair` keeps a
/// copy of each file its fresh snapshot would change (found by a hostile
/// review: six adds, the manifest removed, one byte flipped in record 3 —
/// repair rewrote `queue_pending.json` from six movies to two, no copy).
#[test]
fn repair_keeps_a_copy_of_every_documented_file_its_snapshot_changes() {
    let dir = scratch();
    for id in 1..=6 {
        let qm = quiet_options(real()).open(dir.path()).expect("open");
        qm.add_to_pending(durability_support::movie(&id.to_string()))
            .expect("add");
        qm.snapshot().expect("snapshot");
        qm.close().expect("close");
    }
    let pending = dir.path().join("queue_pending.json");
    let six = fs::read(&pending).expect("the documented file");
    let unchanged = fs::read(dir.path().join("queue_failed.json")).expect("the documented file");
    fs::remove_file(dir.path().join("queue_snapshot.json")).expect("remove the manifest");
    let segment = layout(dir.path()).remove(0);
    let record = segment.records[2];
    let mut bytes = fs::read(&segment.path).expect("read");
    bytes[(record.start + record.end) / 2] ^= 0x01;
    fs::write(&segment.path, bytes).expect("damage record 3");

    let report = movie_queue::repair(dir.path()).expect("repair");
    assert!(
        report
            .actions
            .iter()
            .any(|action| action.starts_with("WARNING") && action.contains("held 6 entries, the repaired state has 2")),
        "a repair that shrinks a documented file says so: {:?}",
        report.actions
    );
    let qm = QueueManager::open_read_only(dir.path()).expect("opens after repair");
    assert_eq!(qm.get_statistics().pending, 2, "the records before the damage");
    assert_eq!(
        fs::read(dir.path().join("queue_pending.json.before-repair.broken")).expect("a copy was kept"),
        six
    );
    assert_eq!(fs::read(dir.path().join("queue_failed.json")).expect("read"), unchanged);
    assert!(
        !dir.path().join("queue_failed.json.before-repair.broken").exists(),
        "a file the snapshot does not change needs no copy"
    );
}
