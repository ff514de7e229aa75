//! No link is ever followed when the store creates a file: a symbolic
//! link planted at any name the store writes — the temporary files of a
//! snapshot, of a new segment, of the tail marker and of the compaction
//! base, the names `repair` sets bytes aside under, the staging directory
//! of a legacy import, the temporary files of `export`, and `LOCK` — never
//! lets the store write through it: the link's target is left exactly as
//! it was.
//!
//! How: for each name, a link to a "precious" file outside the store is
//! planted, the operation that writes that name runs, and the target's
//! bytes are compared. The operation either succeeds (the stale link is
//! removed and a new file made in its place, or a free name is chosen) or
//! fails with an error naming the path; it never writes the target.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use movie_queue::QueueManager;

use crate::support::durability::{layout, movie, quiet_options, real, remove_snapshot, scratch};

const PRECIOUS: &[u8] = b"precious: not the store's to write\n";

/// A file outside the store, and a link to it planted at `at`.
struct Planted {
    _outside: tempfile::TempDir,
    target: PathBuf,
}

fn plant(at: &Path) -> Planted {
    let outside = scratch();
    let target = outside.path().join("precious");
    fs::write(&target, PRECIOUS).expect("write the target");
    symlink(&target, at).expect("plant the link");
    Planted {
        _outside: outside,
        target,
    }
}

impl Planted {
    fn assert_untouched(&self, context: &str) {
        assert_eq!(
            fs::read(&self.target).expect("the target is still there"),
            PRECIOUS,
            "{context}: the store wrote through the link"
        );
    }
}

fn store() -> (tempfile::TempDir, QueueManager) {
    let dir = scratch();
    let qm = quiet_options(real())
        .segment_bytes_max(300)
        .open(dir.path())
        .expect("open");
    qm.add_to_pending(movie("1")).expect("add");
    (dir, qm)
}

#[test]
fn links_at_the_temporary_names_of_a_snapshot_are_never_followed() {
    for name in [
        "queue_pending.json.tmp",
        "queue_failed.json.tmp",
        "queue_completed.json.tmp",
        "queue_removed.json.tmp",
        "queue_snapshot.json.tmp",
    ] {
        let (dir, qm) = store();
        let planted = plant(&dir.path().join(name));
        qm.snapshot().expect("the stale link is removed, the snapshot written");
        planted.assert_untouched(name);
        qm.close().expect("close");
        planted.assert_untouched(name);
    }
}

#[test]
fn links_at_the_temporary_names_of_a_new_segment_and_the_tail_marker_are_never_followed() {
    let (dir, qm) = store();
    let journal = dir.path().join("journal");
    // The next segment starts after the records so far; plant at every
    // name it could take, and at the tail marker's temporary name.
    let mut planted = Vec::new();
    for seq in 2..12_u64 {
        planted.push(plant(&journal.join(format!("{seq:020}.seg.tmp"))));
    }
    planted.push(plant(&journal.join("tail.tmp")));
    for index in 2..12 {
        qm.add_to_pending(movie(&index.to_string()))
            .expect("add, rolling segments");
    }
    qm.close().expect("close");
    assert!(layout(dir.path()).len() >= 2, "the segment rolled over");
    for planted in &planted {
        planted.assert_untouched("a new segment");
    }
    QueueManager::open_read_only(dir.path()).expect("the store reads");
}

#[test]
fn a_link_at_the_compaction_bases_temporary_name_is_never_followed() {
    let (dir, qm) = store();
    let planted = plant(&dir.path().join("journal").join("base.json.tmp"));
    qm.compact().expect("compact");
    planted.assert_untouched("compact");
    qm.close().expect("close");
}

#[test]
fn links_at_the_names_repair_sets_bytes_aside_under_are_never_followed() {
    let (dir, qm) = store();
    for index in 2..5 {
        qm.add_to_pending(movie(&index.to_string())).expect("add");
    }
    qm.close().expect("close");
    remove_snapshot(dir.path());
    let segment = layout(dir.path()).remove(0);
    let damaged_at = segment.records[1].start;
    let mut bytes = fs::read(&segment.path).expect("read");
    bytes[damaged_at + 20] ^= 1;
    fs::write(&segment.path, bytes).expect("damage a record");
    let name = segment.path.file_name().expect("name").to_string_lossy().into_owned();
    let journal = dir.path().join("journal");
    let planted = [
        plant(&journal.join(format!("{name}.{damaged_at}.broken"))),
        plant(&journal.join(format!("{name}.{damaged_at}.1.broken"))),
    ];
    let report = movie_queue::repair(dir.path()).expect("repair");
    for planted in &planted {
        planted.assert_untouched("repair");
    }
    assert!(
        report
            .set_aside
            .iter()
            .all(|path| fs::symlink_metadata(path).is_ok_and(|meta| meta.is_file())),
        "the bytes went to a free name: {report:?}"
    );
    QueueManager::open(dir.path()).expect("the repaired store opens");
}

#[test]
fn a_link_at_the_staging_directory_of_a_legacy_import_is_never_followed() {
    let dir = scratch();
    fs::write(
        dir.path().join("queue_pending.json"),
        br#"[{"id": "l1", "title": "Heat", "year": 1995}]"#,
    )
    .expect("a legacy file");
    let outside = scratch();
    fs::write(outside.path().join("precious"), PRECIOUS).expect("write");
    symlink(outside.path(), dir.path().join("journal.import")).expect("plant");
    let qm = QueueManager::open(dir.path()).expect("the legacy store is imported");
    assert_eq!(qm.get_pending_count(), 1);
    qm.close().expect("close");
    let left: Vec<_> = fs::read_dir(outside.path()).expect("list").collect();
    assert_eq!(left.len(), 1, "nothing was written into the linked directory");
    assert_eq!(fs::read(outside.path().join("precious")).expect("read"), PRECIOUS);
}

#[test]
fn links_at_the_temporary_names_of_an_export_are_never_followed() {
    let (_dir, qm) = store();
    let out = scratch();
    let planted: Vec<Planted> = [
        "queue_pending.json.tmp",
        "queue_failed.json.tmp",
        "queue_completed.json.tmp",
    ]
    .iter()
    .map(|name| plant(&out.path().join(name)))
    .collect();
    qm.export(out.path()).expect("export");
    for planted in &planted {
        planted.assert_untouched("export");
    }
    assert!(
        fs::symlink_metadata(out.path().join("queue_pending.json"))
            .expect("written")
            .is_file()
    );
}

#[test]
fn a_link_at_lock_is_set_aside_never_followed() {
    let dir = scratch();
    let planted = plant(&dir.path().join("LOCK"));
    let qm = QueueManager::open(dir.path()).expect("the link is set aside and a real LOCK made");
    qm.add_to_pending(movie("1")).expect("add");
    drop(qm);
    assert!(
        fs::symlink_metadata(dir.path().join("LOCK.not-a-file.broken"))
            .expect("the link, set aside")
            .file_type()
            .is_symlink()
    );
    assert!(fs::symlink_metadata(dir.path().join("LOCK")).expect("LOCK").is_file());
    planted.assert_untouched("open");
}
