//! A snapshot rewrites the documented files of the queues that changed
//! since the files on disk were read or written (and the index and the
//! manifest); the others stay as they are, the same files. Whichever path
//! writes it (`snapshot`, a whole writer's close, an on-demand writer's
//! close), the store then reads back the live state, through the files and
//! through the index; a kept file that changed on disk meanwhile is never
//! served.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use crate::support::common::{movie, scratch};
use movie_queue::testing::{
    COMPLETED_FILE, FAILED_FILE, INDEX_FILE, MANIFEST_FILE, PENDING_FILE, REMOVED_FILE, RealStorage, Storage,
    lean_lookup,
};
use movie_queue::{Place, QueueManager, QueueState, now};

/// The documented files, the index and the manifest, in that order.
const FILES: [&str; 6] = [
    PENDING_FILE,
    FAILED_FILE,
    COMPLETED_FILE,
    REMOVED_FILE,
    INDEX_FILE,
    MANIFEST_FILE,
];

/// Hard links to each of [`FILES`] as they are now (so no new file can
/// take the inode number of one replaced).
fn inodes(dir: &Path) -> tempfile::TempDir {
    let links = scratch();
    for name in FILES {
        std::fs::hard_link(dir.join(name), links.path().join(name)).expect(name);
    }
    links
}

/// Which of [`FILES`] are new files since the links `before` were made.
fn rewritten(dir: &Path, before: tempfile::TempDir) -> Vec<&'static str> {
    let ino = |path: &Path| std::fs::metadata(path).expect("a file").ino();
    FILES
        .into_iter()
        .filter(|name| ino(&dir.join(name)) != ino(&before.path().join(name)))
        .collect()
}

/// Snapshots on request, and at close when a change is older than five
/// minutes: each record is stamped an hour ago, so a close after a change
/// writes one (and no background snapshot starts).
fn options() -> movie_queue::Options {
    let an_hour_ago = now() - 3_600.0;
    QueueManager::options()
        .snapshot_every_events(0)
        .snapshot_every(Some(std::time::Duration::from_secs(300)))
        .clock(Arc::new(move || an_hour_ago))
        .requeue_in_flight_on_open(false)
}

/// A store with movies in every queue and a snapshot of them: `tt0` in
/// flight, `tt1` failed, `tt2` completed, `tt3` removed, `tt4`..`tt7`
/// pending.
fn store_in_every_queue(dir: &Path) -> QueueManager {
    let qm = options().open(dir).expect("open");
    for n in 0..8 {
        qm.add_to_pending(movie(&format!("tt{n}"))).expect("add");
    }
    for _ in 0..3 {
        qm.get_next_pending().expect("take");
    }
    qm.add_to_failed(movie("tt1"), "no seeders", Some(now() - 1.0))
        .expect("fail");
    qm.add_to_completed(movie("tt2")).expect("complete");
    qm.add_to_removed(movie("tt3")).expect("remove");
    qm.snapshot().expect("snapshot");
    qm
}

/// The store reads back `live`: from its snapshot alone (the journal set
/// aside, so the files are all there is), and through the index.
fn reads_back(dir: &Path, live: &QueueState) {
    let storage: Arc<dyn Storage> = Arc::new(RealStorage);
    for n in 0..9 {
        let id = format!("tt{n}");
        let found = lean_lookup(&storage, dir, &id).expect("the index answers");
        let whole = Place::ALL.into_iter().find_map(|place| {
            live.entries(place)
                .find(|entry| entry.id() == id)
                .map(|entry| (place, entry))
        });
        assert_eq!(found, whole, "{id} through the index");
    }
    let copy = scratch();
    for name in FILES {
        std::fs::copy(dir.join(name), copy.path().join(name)).expect("copy");
    }
    let from_files = QueueManager::open_read_only(copy.path()).expect("open the snapshot alone");
    assert_eq!(from_files.state(), *live, "the snapshot's files are the live state");
    let report = movie_queue::verify(dir).expect("verify");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn a_snapshot_rewrites_only_the_files_of_the_queues_that_changed() {
    let dir = scratch();
    let qm = store_in_every_queue(dir.path());

    // A failed movie fails again: only the failed queue changes.
    let before = inodes(dir.path());
    qm.add_to_failed(movie("tt1"), "still no seeders", Some(now() - 1.0))
        .expect("fail again");
    qm.snapshot().expect("snapshot");
    assert_eq!(rewritten(dir.path(), before), [FAILED_FILE, INDEX_FILE, MANIFEST_FILE]);
    reads_back(dir.path(), &qm.state());

    // A removed movie is forgotten: only the removed queue.
    let before = inodes(dir.path());
    qm.remove_from_removed_queue("tt3").expect("forget");
    qm.snapshot().expect("snapshot");
    assert_eq!(rewritten(dir.path(), before), [REMOVED_FILE, INDEX_FILE, MANIFEST_FILE]);
    reads_back(dir.path(), &qm.state());

    // The movie in flight completes: pending (which holds it) and completed.
    let before = inodes(dir.path());
    qm.add_to_completed(movie("tt0")).expect("complete");
    qm.snapshot().expect("snapshot");
    assert_eq!(
        rewritten(dir.path(), before),
        [PENDING_FILE, COMPLETED_FILE, INDEX_FILE, MANIFEST_FILE]
    );
    reads_back(dir.path(), &qm.state());
    qm.close().expect("close");
}

#[test]
fn a_closing_snapshot_keeps_the_unchanged_files_whole_and_on_demand() {
    for on_demand in [false, true] {
        let dir = scratch();
        store_in_every_queue(dir.path()).close().expect("close");
        let before = inodes(dir.path());
        let qm = options().load_on_demand(on_demand).open(dir.path()).expect("reopen");
        assert_eq!(qm.is_loaded(), !on_demand);
        qm.remove_from_removed_queue("tt3").expect("forget");
        let live = QueueManager::open_read_only(dir.path()).expect("a reader").state();
        // The close's snapshot is due (a change an hour old).
        qm.close().expect("close");
        assert_eq!(
            rewritten(dir.path(), before),
            [REMOVED_FILE, INDEX_FILE, MANIFEST_FILE],
            "on demand: {on_demand}"
        );
        reads_back(dir.path(), &live);
    }
}

#[test]
fn a_kept_file_changed_on_disk_is_never_served() {
    let dir = scratch();
    store_in_every_queue(dir.path()).close().expect("close");
    let qm = options().open(dir.path()).expect("a writer");
    // The pending file changes under the writer, keeping its length: a
    // hand edit of one digit. The writer keeps it at its close (it checks
    // the length, not every byte).
    let path = dir.path().join(PENDING_FILE);
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, text.replacen("tt5", "tt9", 1)).expect("edit");
    qm.add_to_failed(movie("tt1"), "still no seeders", Some(now() - 1.0))
        .expect("fail again");
    let live = qm.state();
    let before = inodes(dir.path());
    qm.close().expect("close");
    assert_eq!(rewritten(dir.path(), before), [FAILED_FILE, INDEX_FILE, MANIFEST_FILE]);
    // The snapshot that names the edited file does not hold up: the store
    // opens from its journal, to the live state, and says what it found.
    let reopened = QueueManager::open_read_only(dir.path()).expect("open");
    assert_eq!(reopened.state(), live);
    let report = movie_queue::verify(dir.path()).expect("verify");
    assert!(
        report.problems.iter().any(|problem| problem.contains(PENDING_FILE)),
        "{report:?}"
    );
    drop(reopened);
    // The next writer rewrites every file: the open did not start from them.
    let writer = options().open(dir.path()).expect("a writer");
    writer.close().expect("close");
    let rewritten = std::fs::read_to_string(&path).expect("read");
    assert!(
        rewritten.contains("\"tt5\"") && !rewritten.contains("\"tt9\""),
        "{rewritten}"
    );
    assert!(movie_queue::verify(dir.path()).expect("verify").problems.is_empty());
}
