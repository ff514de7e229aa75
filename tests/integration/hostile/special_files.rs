//! Something other than a regular file where the store keeps one — a
//! FIFO, a symbolic link, a directory — planted by a careless user or an
//! attacker with write access to the store: no command hangs on it, no
//! link is followed, `verify` agrees with a writer's open, and `repair`
//! (or the writer itself, for names that hold nothing) sets it aside so
//! the store opens again. (Found by a hostile review: a FIFO at
//! `queue_failed.json` hung every command, `verify` and `repair` included;
//! a link at a segment name or a legacy file left a store no command
//! opened; a directory at a `.tmp` name or at `LOCK` made `verify` pass
//! while every writer failed.)
//!
//! How: a store is built through the API (or legacy files written), the
//! special file planted, and each operation run on a thread that must
//! finish within a minute (a FIFO opened for reading blocks forever
//! otherwise); then what it did is checked.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use movie_queue::{Error, QueueManager};

use crate::support::durability::{layout, movie, quiet_options, real, scratch};

/// Runs `operation` on its own thread; panics if it has not returned
/// within a minute (it hangs).
fn finishes<T: Send + 'static>(what: &str, operation: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let _ = sender.send(operation());
    });
    receiver
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what} hangs"))
}

fn mkfifo(path: &Path) {
    let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("a path");
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
    let status = unsafe { libc::mkfifo(name.as_ptr(), 0o600) };
    assert_eq!(status, 0, "mkfifo {}", path.display());
}

fn store_with_two_movies(dir: &Path) {
    let qm = quiet_options(real()).open(dir).expect("create");
    qm.add_to_pending(movie("1")).expect("add");
    qm.add_to_pending(movie("2")).expect("add");
    qm.close().expect("close");
}

fn pending(dir: &Path) -> usize {
    let dir = dir.to_path_buf();
    finishes("open", move || {
        let qm = quiet_options(real()).open(&dir).expect("a writer opens");
        let pending = qm.get_statistics().pending;
        qm.close().expect("close");
        pending
    })
}

fn verify(dir: &Path) -> Result<movie_queue::VerifyReport, Error> {
    let dir = dir.to_path_buf();
    finishes("verify", move || movie_queue::verify(&dir))
}

fn repair(dir: &Path) {
    let dir = dir.to_path_buf();
    finishes("repair", move || movie_queue::repair(&dir)).expect("repair");
}

#[test]
fn a_fifo_at_a_documented_file_hangs_nothing_and_the_journal_rebuilds_the_state() {
    let dir = scratch();
    store_with_two_movies(dir.path());
    let failed = dir.path().join("queue_failed.json");
    fs::remove_file(&failed).expect("remove");
    mkfifo(&failed);
    let report = verify(dir.path()).expect("the journal holds every record");
    assert!(
        report
            .problems
            .iter()
            .any(|problem| problem.contains("queue_failed.json")),
        "{report:?}"
    );
    let reader = finishes("read-only open", {
        let dir = dir.path().to_path_buf();
        move || QueueManager::open_read_only(&dir).map(|qm| qm.get_statistics().pending)
    });
    assert_eq!(reader.expect("a reader opens"), 2);
    repair(dir.path());
    assert_eq!(pending(dir.path()), 2);
    assert!(fs::symlink_metadata(&failed).expect("rewritten").is_file());
}

#[test]
fn a_fifo_or_a_link_at_a_segment_name_is_refused_by_all_and_repair_sets_it_aside() {
    for kind in ["fifo", "link"] {
        let dir = scratch();
        store_with_two_movies(dir.path());
        let planted = dir.path().join("journal/00000000000000000099.seg");
        if kind == "fifo" {
            mkfifo(&planted);
        } else {
            symlink(&layout(dir.path())[0].path, &planted).expect("link");
        }
        let error = verify(dir.path()).expect_err("verify refuses");
        assert!(
            matches!(&error, Error::Corrupt { path, .. } if *path == planted) && error.to_string().contains("repair"),
            "{kind}: {error}"
        );
        let writer = finishes("open", {
            let dir = dir.path().to_path_buf();
            move || QueueManager::open(&dir).map(drop)
        });
        assert!(writer.is_err(), "{kind}: a writer refuses as verify does");
        repair(dir.path());
        assert_eq!(pending(dir.path()), 2, "{kind}");
        assert!(fs::symlink_metadata(dir.path().join("journal/00000000000000000099.seg.foreign.broken")).is_ok());
        verify(dir.path()).expect("verify passes after repair");
    }
}

#[test]
fn a_link_or_fifo_at_a_legacy_file_is_named_and_repair_sets_it_aside() {
    for kind in ["fifo", "link"] {
        let dir = scratch();
        let outside = scratch();
        let secret = outside.path().join("secret.json");
        fs::write(&secret, br#"[{"id": "s", "title": "Secret", "year": 2000}]"#).expect("write");
        fs::write(
            dir.path().join("queue_failed.json"),
            br#"[{"id": "f", "title": "Kept", "year": 2000}]"#,
        )
        .expect("write");
        let planted = dir.path().join("queue_pending.json");
        if kind == "fifo" {
            mkfifo(&planted);
        } else {
            symlink(&secret, &planted).expect("link");
        }
        let error = verify(dir.path()).expect_err("verify refuses");
        assert!(
            matches!(&error, Error::BadQueueFile { path, detail } if *path == planted && detail.contains("not a regular file")),
            "{kind}: {error}"
        );
        repair(dir.path());
        let qm = QueueManager::open_read_only(dir.path()).expect("opens after repair");
        let stats = qm.get_statistics();
        assert_eq!(
            (stats.pending, stats.failed),
            (0, 1),
            "{kind}: only the regular file's entries"
        );
        assert!(fs::symlink_metadata(dir.path().join("queue_pending.json.damaged.broken")).is_ok());
        assert_eq!(
            fs::read(&secret).expect("the target"),
            br#"[{"id": "s", "title": "Secret", "year": 2000}]"#
        );
    }
}

#[test]
fn directories_at_temporary_names_and_at_lock_are_set_aside_by_the_writer() {
    let dir = scratch();
    store_with_two_movies(dir.path());
    let in_the_way = [
        dir.path().join("queue_pending.json.tmp"),
        dir.path().join("queue_snapshot.json.tmp"),
        dir.path().join("journal/00000000000000000003.seg.tmp"),
        dir.path().join("journal/tail.tmp"),
        dir.path().join("journal/base.json.tmp"),
    ];
    for path in &in_the_way {
        fs::create_dir(path).expect("mkdir");
        fs::write(path.join("inside"), b"someone's").expect("a file inside");
    }
    fs::remove_file(dir.path().join("LOCK")).expect("rm LOCK");
    fs::create_dir(dir.path().join("LOCK")).expect("mkdir LOCK");
    verify(dir.path()).expect("verify passes");

    let qm = quiet_options(real())
        .open(dir.path())
        .expect("a writer opens, as verify said");
    qm.add_to_pending(movie("3")).expect("add");
    qm.snapshot().expect("a snapshot writes over its temporary names");
    qm.compact().expect("compact writes the base over its temporary name");
    qm.close().expect("close");
    for path in in_the_way.iter().chain([&dir.path().join("LOCK")]) {
        let name = path.file_name().expect("a name").to_string_lossy().into_owned();
        let aside = fs::read_dir(path.parent().expect("a parent"))
            .expect("list")
            .map(|entry| entry.expect("entry").path())
            .find(|candidate| {
                let file = candidate.file_name().expect("a name").to_string_lossy().into_owned();
                file.starts_with(&format!("{name}.")) && file.ends_with(".broken") && candidate.is_dir()
            })
            .unwrap_or_else(|| panic!("{} set aside", path.display()));
        if name != "LOCK" {
            assert_eq!(fs::read(aside.join("inside")).expect("kept"), b"someone's");
        }
    }
    assert_eq!(pending(dir.path()), 3);
}

#[test]
fn a_leftover_link_at_the_tail_markers_temporary_name_is_removed_by_a_writer() {
    let dir = scratch();
    store_with_two_movies(dir.path());
    let outside = scratch();
    let target = outside.path().join("target");
    fs::write(&target, b"untouched").expect("write");
    let link = dir.path().join("journal/tail.tmp");
    symlink(&target, &link).expect("link");
    drop(quiet_options(real()).open(dir.path()).expect("open"));
    assert!(fs::symlink_metadata(&link).is_err(), "the leftover is gone");
    assert_eq!(fs::read(&target).expect("read"), b"untouched");
}

#[test]
fn a_file_where_the_journal_belongs_is_refused_and_repair_sets_it_aside() {
    let dir = scratch();
    store_with_two_movies(dir.path());
    let journal = dir.path().join("journal");
    fs::rename(&journal, dir.path().join("elsewhere")).expect("move the journal away");
    fs::write(&journal, b"not a directory").expect("a file in its place");
    let error = verify(dir.path()).expect_err("verify refuses");
    assert!(
        matches!(&error, Error::Corrupt { path, .. } if *path == journal) && error.to_string().contains("repair"),
        "{error}"
    );
    repair(dir.path());
    assert_eq!(pending(dir.path()), 2, "the snapshot knows both movies");
    assert_eq!(
        fs::read(dir.path().join("journal.not-a-directory.broken")).expect("set aside"),
        b"not a directory"
    );
}

#[test]
fn a_directory_at_a_documented_file_of_a_compacted_store_is_set_aside_by_the_next_snapshot() {
    let dir = scratch();
    let qm = quiet_options(real()).open(dir.path()).expect("create");
    qm.add_to_pending(movie("1")).expect("add");
    qm.add_to_completed(movie("1")).expect("complete");
    qm.add_to_pending(movie("2")).expect("add");
    qm.compact().expect("compact");
    qm.close().expect("close");
    let completed = dir.path().join("queue_completed.json");
    fs::remove_file(&completed).expect("remove");
    fs::create_dir(&completed).expect("a directory in its place");
    verify(dir.path()).expect("the base and the journal know everything");
    repair(dir.path());
    assert!(fs::symlink_metadata(&completed).expect("rewritten").is_file());
    assert!(
        dir.path().join("queue_completed.json.damaged.broken").is_dir(),
        "set aside as a file that does not hold up"
    );
    let qm = quiet_options(real()).open(dir.path()).expect("open");
    let stats = qm.get_statistics();
    assert_eq!((stats.pending, stats.completed), (1, 1));
}
