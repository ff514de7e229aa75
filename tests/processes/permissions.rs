//! Files and directories the process may not write or read: each is an
//! I/O error naming the path, and read-only opens still work where reading
//! is allowed. In this binary because as root it runs `chattr`, a child
//! process (see `main.rs`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::durability::{movie, scratch, segment_paths};
use movie_queue::{Error, QueueManager, QueueState};

/// A closed store holding three movies (one pending, one failed, one
/// completed) and a snapshot; returns its state.
fn small_store(dir: &Path) -> QueueState {
    let qm = QueueManager::open(dir).expect("open");
    qm.add_to_pending(movie("p")).expect("add");
    qm.add_to_pending(movie("f")).expect("add");
    qm.add_to_failed(movie("f"), "no seeders", Some(1.0)).expect("fail");
    qm.add_to_completed(movie("c")).expect("complete");
    let state = qm.state();
    qm.close().expect("close");
    state
}

fn open_error(dir: &Path) -> Error {
    match QueueManager::open(dir) {
        Ok(qm) => panic!("opened despite the damage: {:?}", qm.get_statistics()),
        Err(error) => error,
    }
}

/// Takes away write (or read) permission from a path for the guard's
/// lifetime. A privileged process ignores permission bits, so as root the
/// write case uses the immutable attribute (`chattr +i`) instead; the read
/// case cannot be made to fail for root and is skipped there.
struct Denied {
    path: PathBuf,
    immutable: bool,
    mode: u32,
}

impl Drop for Denied {
    fn drop(&mut self) {
        if self.immutable {
            drop(chattr("-i", &self.path));
        } else {
            set_mode(&self.path, self.mode);
        }
    }
}

/// Runs `chattr FLAG PATH`. Callers hold `support::alone()`, so no store
/// of this process is open while the child is forked (and taking
/// `support::spawning()` here would deadlock on that guard).
fn chattr(flag: &str, path: &Path) -> std::io::Result<std::process::Output> {
    Command::new("chattr")
        .arg(flag)
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}

/// Does this process ignore permission bits (root, `CAP_DAC_OVERRIDE`)?
fn privileged() -> bool {
    let probe = scratch();
    let path = probe.path().join("probe");
    fs::write(&path, "x").expect("write");
    set_mode(&path, 0o000);
    fs::File::open(&path).is_ok()
}

fn deny_writes(path: &Path) -> Option<Denied> {
    let mode = mode_of(path);
    if !privileged() {
        set_mode(path, if path.is_dir() { 0o555 } else { 0o444 });
        return Some(Denied {
            path: path.to_path_buf(),
            immutable: false,
            mode,
        });
    }
    let output = chattr("+i", path);
    if output.is_ok_and(|output| output.status.success()) {
        return Some(Denied {
            path: path.to_path_buf(),
            immutable: true,
            mode,
        });
    }
    eprintln!("skipped: privileged and no usable chattr; write permission cannot be taken away");
    None
}

fn assert_io_error_naming(error: &Error, path: &Path) {
    match error {
        Error::Io { path: named, .. } => assert_eq!(named, path, "{error}"),
        other => panic!("expected an I/O error naming {}, got {other}", path.display()),
    }
    assert!(error.to_string().contains(&path.display().to_string()));
}

#[test]
fn a_segment_the_writer_may_not_write_is_an_io_error_naming_it() {
    let _alone = crate::support::alone();
    let dir = scratch();
    let state = small_store(dir.path());
    let segment = segment_paths(dir.path()).pop().expect("a segment");
    let Some(_denied) = deny_writes(&segment) else { return };
    assert_io_error_naming(&open_error(dir.path()), &segment);
    let reader = QueueManager::open_read_only(dir.path()).expect("reading needs no write permission");
    assert!(reader.state() == state);
}

#[test]
fn a_store_directory_the_writer_may_not_write_is_an_io_error_naming_the_path() {
    let _alone = crate::support::alone();
    let parent = scratch();
    let Some(_denied) = deny_writes(parent.path()) else {
        return;
    };
    let store = parent.path().join("store");
    let error = open_error(&store);
    assert_io_error_naming(&error, &store);
}

#[test]
fn a_segment_the_process_may_not_read_is_an_io_error_naming_it() {
    let _alone = crate::support::alone();
    if privileged() {
        eprintln!("skipped: a privileged process reads files whatever their mode");
        return;
    }
    let dir = scratch();
    small_store(dir.path());
    let segment = segment_paths(dir.path()).remove(0);
    let mode = mode_of(&segment);
    set_mode(&segment, 0o000);
    let _restore = Denied {
        path: segment.clone(),
        immutable: false,
        mode,
    };
    assert_io_error_naming(&open_error(dir.path()), &segment);
    assert_io_error_naming(&movie_queue::verify(dir.path()).expect_err("verify"), &segment);
}
