//! One writer per directory: a second opener — in this process or another —
//! gets `Error::Locked` naming the directory at once, while read-only
//! openers work. A new store directory is user-only (0700), its files 0600;
//! an existing directory keeps its mode.

use crate::support::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{movie, open, scratch};
use movie_queue::{Error, QueueManager};

const CHILD_DIR: &str = "MOVIE_QUEUE_LOCK_CHILD_DIR";

/// Runs in the child process only: tries to open the store as a writer.
#[test]
fn child_tries_to_open() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    match QueueManager::open(&dir) {
        Err(Error::Locked { dir }) => println!("LOCKED {}", dir.display()),
        Err(other) => println!("OTHER {other}"),
        Ok(_) => println!("OPENED"),
    }
}

#[test]
fn a_second_writer_is_refused_at_once_and_readers_still_work() {
    let _alone = crate::support::alone();
    let dir = scratch();
    let qm = open(dir.path());
    qm.add_to_pending(movie("1")).unwrap();

    let started = Instant::now();
    let error = QueueManager::open(dir.path()).unwrap_err();
    assert!(
        matches!(&error, Error::Locked { dir: locked } if locked == dir.path()),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "Locked must come at once, not after a wait"
    );
    assert!(error.to_string().contains(&dir.path().display().to_string()));

    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &crate::support::common::test_name(module_path!(), "child_tries_to_open"),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("LOCKED {}", dir.path().display())),
        "the other process was not refused: {stdout}"
    );

    let reader = QueueManager::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.get_pending_count(), 1);
    assert!(matches!(reader.add_to_pending(movie("2")), Err(Error::ReadOnly { .. })));
    drop(qm);
    QueueManager::open(dir.path()).expect("the lock goes with its holder");
}

#[cfg(unix)]
#[test]
fn a_new_store_is_private_and_an_existing_directory_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let parent = scratch();
    let dir = parent.path().join("store");
    let qm = open(&dir);
    qm.add_to_pending(movie("1")).unwrap();
    qm.close().unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("journal")), 0o700);
    for name in [
        "queue_pending.json",
        "queue_failed.json",
        "queue_completed.json",
        "queue_removed.json",
        "queue_snapshot.json",
        "LOCK",
    ] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    for entry in std::fs::read_dir(dir.join("journal")).unwrap() {
        assert_eq!(mode(&entry.unwrap().path()), 0o600);
    }

    let shared = parent.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    open(&shared).close().unwrap();
    assert_eq!(mode(&shared), 0o755);
}

#[test]
fn a_store_path_that_cannot_be_a_directory_is_a_clear_error() {
    let parent = scratch();
    let file = parent.path().join("file");
    std::fs::write(&file, b"not a directory").unwrap();
    let error = QueueManager::open(file.join("store")).unwrap_err();
    assert!(matches!(error, Error::Io { .. }), "{error}");
    assert!(
        error.to_string().contains(&file.join("store").display().to_string()),
        "{error}"
    );
}
