//! Preallocated segments: the writer lays zeros down ahead of its records
//! and writes the records over them, so the fdatasync that acknowledges a
//! change carries no change of the file's size; the zeros after the last
//! record are the end of the log; a full disk fails the zeros, before any
//! record goes into a segment that cannot hold it; and a segment is never
//! shortened.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::support::common::{movie, scratch};
use crate::support::durability::{quiet_options, segment_paths, written_end, written_len};
use movie_queue::testing::{Fault, FaultyStorage, RealStorage, SEGMENT_HEADER_BYTES};
use movie_queue::{Error, Movie, QueueManager};

const ENOSPC: i32 = 28;

fn sizes(dir: &Path) -> Vec<(PathBuf, u64, usize)> {
    segment_paths(dir)
        .into_iter()
        .map(|path| {
            let len = fs::metadata(&path).expect("metadata").len();
            let written = written_len(&path).expect("read");
            (path, len, written)
        })
        .collect()
}

fn big_movie(id: &str, bytes: usize) -> Movie {
    Movie::new(id, "x".repeat(bytes), "2020")
}

#[test]
fn records_go_over_the_zeros_laid_down_and_the_segment_keeps_its_size() {
    let dir = scratch();
    let qm = quiet_options(Arc::new(RealStorage)).open(dir.path()).expect("open");
    let [(_, created, header)] = sizes(dir.path())[..] else {
        panic!("one segment");
    };
    assert_eq!(created, 1 << 20, "the header, then zeros to 1 MiB");
    assert_eq!(header, SEGMENT_HEADER_BYTES);
    let mut written = header;
    for id in 0..50 {
        assert!(qm.add_to_pending(movie(&id.to_string())).expect("add"));
        let [(_, len, now)] = sizes(dir.path())[..] else {
            panic!("one segment");
        };
        assert_eq!(len, created, "an acknowledged record changes no file size");
        assert!(now > written, "the record is in the file");
        written = now;
    }
    qm.close().expect("close");
    let reopened = QueueManager::open_read_only(dir.path()).expect("the zeros are the end of the log");
    assert_eq!(reopened.get_pending_count(), 50);
    let report = movie_queue::verify(dir.path()).expect("verify");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn without_preallocation_a_segment_ends_at_its_last_record() {
    let dir = scratch();
    let qm = quiet_options(Arc::new(RealStorage))
        .preallocate_bytes(0)
        .open(dir.path())
        .expect("open");
    for id in 0..5 {
        qm.add_to_pending(movie(&id.to_string())).expect("add");
    }
    qm.close().expect("close");
    for (path, len, written) in sizes(dir.path()) {
        assert_eq!(len, written as u64, "{}", path.display());
    }
    assert_eq!(
        QueueManager::open_read_only(dir.path())
            .expect("open")
            .get_pending_count(),
        5
    );
}

#[test]
fn zeros_are_laid_down_again_as_records_use_them_up_and_never_past_a_segment() {
    let dir = scratch();
    let options = || {
        quiet_options(Arc::new(RealStorage))
            .preallocate_bytes(4096)
            .segment_bytes_max(64 << 10)
    };
    let qm = options().open(dir.path()).expect("open");
    for id in 0..200 {
        qm.add_to_pending(big_movie(&id.to_string(), 300)).expect("add");
    }
    qm.close().expect("close");
    let segments = sizes(dir.path());
    assert!(segments.len() >= 2, "the journal rolled");
    for (path, len, written) in &segments {
        assert!(*len >= *written as u64, "{}", path.display());
        assert!(
            *len <= 64 << 10,
            "{}: zeros are laid down up to the segment's size only",
            path.display()
        );
    }
    let (_, last_len, last_written) = segments.last().expect("a segment");
    assert!(
        *last_len > *last_written as u64,
        "zeros are there ahead of the next record"
    );
    let reopened = options().open(dir.path()).expect("reopen");
    assert_eq!(reopened.get_pending_count(), 200);
    reopened
        .add_to_pending(movie("after"))
        .expect("the next record goes over the zeros");
    reopened.close().expect("close");
    assert_eq!(
        QueueManager::open_read_only(dir.path())
            .expect("open")
            .get_pending_count(),
        201
    );
}

/// A batch larger than the zeros left gets its room first; a full disk
/// then fails the room, the batch is refused (and the writer poisoned)
/// before any of its records is written, and what was acknowledged stays.
#[test]
fn a_full_disk_while_laying_zeros_down_refuses_before_any_record_is_acknowledged() {
    let dir = scratch();
    let faulty = FaultyStorage::new();
    let qm = quiet_options(Arc::new(faulty.clone()))
        .preallocate_bytes(4096)
        .open(dir.path())
        .expect("open");
    for id in 0..3 {
        qm.add_to_pending(movie(&id.to_string())).expect("acknowledged");
    }
    let before: Vec<u8> = fs::read(&segment_paths(dir.path())[0]).expect("read");
    // The next write is the room for a record larger than the zeros left.
    faulty.inject(Fault::FailWrite {
        index: faulty.write_count(),
        errno: ENOSPC,
    });
    let refused = qm.add_to_pending(big_movie("big", 8192)).expect_err("no room");
    assert!(
        matches!(
            &refused,
            Error::Poisoned {
                kind: Some(std::io::ErrorKind::StorageFull),
                ..
            }
        ),
        "{refused}"
    );
    assert!(refused.to_string().contains("preallocate"), "{refused}");
    let after = fs::read(&segment_paths(dir.path())[0]).expect("read");
    assert_eq!(
        after[..written_end(&after)],
        before[..written_end(&before)],
        "no byte of the refused record was written"
    );
    assert!(qm.add_to_pending(movie("later")).is_err(), "poisoned until reopened");
    drop(qm);
    let reopened = QueueManager::open(dir.path()).expect("reopen");
    assert_eq!(reopened.get_pending_count(), 3, "exactly the acknowledged adds");
    assert!(
        reopened
            .add_to_pending(big_movie("big", 8192))
            .expect("room once the disk has it")
    );
    reopened.close().expect("close");
}

/// A segment is never shortened, so a reader that has it open never finds
/// it shorter: a torn tail a writer's open sets aside and a failed batch
/// are written over with zeros, the file keeping its size.
#[test]
fn a_segment_is_never_shortened_by_a_writers_open_or_a_failed_batch() {
    let dir = scratch();
    let faulty = FaultyStorage::new();
    let qm = quiet_options(Arc::new(faulty.clone())).open(dir.path()).expect("open");
    for id in 0..5 {
        qm.add_to_pending(movie(&id.to_string())).expect("add");
    }
    let segment = segment_paths(dir.path()).remove(0);
    let len = fs::metadata(&segment).expect("metadata").len();
    // A failed fsync: zeros are written over the failed batch.
    faulty.inject(Fault::FailSync {
        index: faulty.sync_count(),
        errno: 5,
    });
    assert!(qm.add_to_pending(movie("failed")).is_err());
    drop(qm);
    assert_eq!(
        fs::metadata(&segment).expect("metadata").len(),
        len,
        "after a failed batch"
    );
    let written = written_len(&segment).expect("read");
    // A torn tail: garbage after the last record, set aside by a writer's open.
    let mut bytes = fs::read(&segment).expect("read");
    bytes[written..written + 10].fill(0xAB);
    fs::write(&segment, &bytes).expect("tear");
    let qm = QueueManager::open(dir.path()).expect("a writer's open sets the tail aside");
    assert_eq!(qm.get_pending_count(), 5);
    drop(qm);
    assert_eq!(
        fs::metadata(&segment).expect("metadata").len(),
        len,
        "after a torn tail"
    );
    assert_eq!(written_len(&segment), Some(written));
    // `repair` writes zeros over what it sets aside too, the segment keeping
    // its size: `recovery::repair::repair_keeps_the_records_before_the_damage_and_sets_the_rest_aside`.
}

/// Bytes that are not zeros in the room after a sealed segment's records
/// (bit rot in its preallocated zeros) hide no record when the next
/// segment starts at the very next record: an open keeps every record,
/// `verify` names them and says `repair` sets them aside, and `repair`
/// does: a copy of them beside the segment, zeros over them, its size
/// kept, and `verify` clean after.
#[test]
fn stray_bytes_after_a_sealed_segments_records_are_named_and_repair_sets_them_aside() {
    let dir = scratch();
    let options = || quiet_options(Arc::new(RealStorage)).segment_bytes_max(2048);
    let qm = options().open(dir.path()).expect("open");
    for id in 0..60 {
        qm.add_to_pending(movie(&id.to_string())).expect("add");
    }
    qm.close().expect("close");
    let segments = segment_paths(dir.path());
    assert!(segments.len() >= 3, "the journal rolled");
    // A sealed segment with zeros after its records (a roll leaves what
    // the next record did not fit in).
    let sealed = segments[..segments.len() - 1]
        .iter()
        .find(|path| {
            written_len(path) < Some(usize::try_from(fs::metadata(path).expect("metadata").len()).expect("small"))
        })
        .expect("a sealed segment with zeros after its records");
    let len = fs::metadata(sealed).expect("metadata").len();
    let written = written_len(sealed).expect("read");
    let mut bytes = fs::read(sealed).expect("read");
    let at = bytes.len() - 1;
    bytes[at] = 0x5A;
    fs::write(sealed, &bytes).expect("plant a stray byte");

    assert_eq!(
        QueueManager::open_read_only(dir.path())
            .expect("every record is there")
            .get_pending_count(),
        60
    );
    let report = movie_queue::verify(dir.path()).expect("verify");
    let named = report
        .problems
        .iter()
        .find(|problem| problem.contains(&sealed.display().to_string()))
        .unwrap_or_else(|| panic!("verify names the segment: {:?}", report.problems));
    assert!(
        named.contains(&format!("bytes {written} to {}", at + 1)) && named.contains("movie-queue repair"),
        "{named}"
    );

    let repaired = movie_queue::repair(dir.path()).expect("repair");
    let copy = repaired
        .set_aside
        .iter()
        .find(|path| path.to_string_lossy().ends_with(&format!(".seg.{written}.broken")))
        .unwrap_or_else(|| panic!("the stray bytes are copied aside: {repaired:?}"));
    assert_eq!(fs::read(copy).expect("read the copy"), bytes[written..=at]);
    assert_eq!(
        fs::metadata(sealed).expect("metadata").len(),
        len,
        "the segment keeps its size"
    );
    assert_eq!(written_len(sealed), Some(written), "zeros over the stray bytes");
    let report = movie_queue::verify(dir.path()).expect("verify");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(QueueManager::open(dir.path()).expect("open").get_pending_count(), 60);
}
