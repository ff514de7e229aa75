//! A change that is durable in the journal is reported as a success,
//! whatever fails after it: the command prints its result and exits 0,
//! with a warning on stderr.

use crate::support::cli as cli_support;

use cli_support::{Unprivileged, counts, set_mode, stats};

/// Proves that a snapshot failing at close after the change is durable
/// (issue 11: `add` printed "added" and exited 1; `next` printed nothing
/// and exited 1 while the movie was in flight) is a warning: `add` prints
/// "added" and `next` prints the movie it took, each exits 0 with
/// "warning: ... the next open rebuilds the snapshot" on stderr, the
/// changes are in the store, and the next writer's close rebuilds the
/// documented files. The store's manifest is removed first, so each close
/// is due to write a snapshot. The snapshot is made to fail as a full disk would,
/// after the journal: the binary runs as a user who may append to the
/// journal but may not create files in the store directory, where the
/// snapshot's files go.
#[test]
fn a_snapshot_failing_after_a_durable_change_is_a_warning_and_exit_0() {
    let Some(user) = Unprivileged::get() else { return };
    let scratch = user.scratch();
    let dir = scratch.path().join("store");
    user.mq(&dir, &["add", "--id", "1", "--title", "One", "--year", "2001"])
        .ok();
    // Without a snapshot, every close is due to write one (a store with a
    // recent one leaves its files alone for a few changes).
    std::fs::remove_file(dir.join("queue_snapshot.json")).unwrap();
    set_mode(&dir, 0o500);

    let added = user.mq(&dir, &["add", "--id", "2", "--title", "Two", "--year", "2002"]);
    set_mode(&dir, 0o700);
    let added = added.ok();
    assert_eq!(added.stdout, "added 2  Two (2002)\n", "{added:?}");
    assert_warns_snapshot(&added.stderr);

    set_mode(&dir, 0o500);
    let taken = user.mq(&dir, &["next"]);
    set_mode(&dir, 0o700);
    let taken = taken.ok();
    assert_eq!(taken.json()["id"], "1", "the movie taken is printed: {taken:?}");
    assert_warns_snapshot(&taken.stderr);

    assert_eq!(stats(&dir), counts(1, 1, 0, 0, 0));
    let quiet = user.mq(&dir, &["retry"]).ok();
    assert!(!quiet.stderr.contains("warning"), "{quiet:?}");
    let pending = std::fs::read_to_string(dir.join("queue_pending.json")).unwrap();
    assert!(
        pending.contains("\"Two\"") && pending.contains("\"One\""),
        "the next close rebuilt the snapshot: {pending}"
    );
}

#[track_caller]
fn assert_warns_snapshot(stderr: &str) {
    let mut lines = stderr.lines();
    let warning = lines.next().unwrap_or_default();
    assert!(
        warning.starts_with("movie-queue: warning: every change is durable in the journal")
            && warning.contains("permission denied")
            && warning.ends_with("the next open rebuilds the snapshot"),
        "{stderr}"
    );
    assert_eq!(lines.next(), None, "one line: {stderr}");
}
