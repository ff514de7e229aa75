//! `export DIR` and `replay --out DIR` write only where they may: never
//! into the store's own directory or its journal, however the path is
//! spelt, and what they create is the user's alone.

use crate::support::cli as cli_support;

use std::path::{Path, PathBuf};

use cli_support::{add, counts, mode_of, mq, stats};

/// Every name under `dir`, recursively (links not followed), sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut names = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path.clone());
            }
            names.push(path);
        }
    }
    names.sort();
    names
}

/// Proves `export` and `replay --out` refuse the store's own directory and
/// its `journal/` (issue 11: an export into `journal/` succeeded, and then
/// no command could open the store), spelt directly, as a directory still
/// to be made inside the journal, through `..`, and through symbolic
/// links to the store and to the journal: each exits 1 saying which, and
/// the store is left byte for byte as it was (nothing created in it) and
/// still opens.
#[test]
fn export_and_replay_refuse_the_store_and_its_journal_however_spelt() {
    let scratch = tempfile::tempdir().unwrap();
    let store = scratch.path().join("store");
    add(&store, "1");
    mq(&store, &["snapshot"]).ok();
    let to_store = scratch.path().join("to-store");
    let to_journal = scratch.path().join("to-journal");
    std::os::unix::fs::symlink(&store, &to_store).unwrap();
    std::os::unix::fs::symlink(store.join("journal"), &to_journal).unwrap();
    let before = tree(&store);
    let targets = [
        (store.clone(), "the store's own directory"),
        (store.join("journal"), "in the store's journal directory"),
        (store.join("journal/new/deeper"), "in the store's journal directory"),
        (store.join("missing/../journal"), "in the store's journal directory"),
        (to_store.clone(), "the store's own directory"),
        (to_store.join("journal"), "in the store's journal directory"),
        (to_journal.join("new"), "in the store's journal directory"),
        (scratch.path().join("to-store/../store/."), "the store's own directory"),
    ];
    for (target, why) in &targets {
        let target = target.to_str().unwrap();
        for command in [&["export", target][..], &["replay", "--until", "1", "--out", target]] {
            let refused = mq(&store, command).fails_with(1);
            assert!(
                refused.stderr.starts_with(&format!("movie-queue: {target} is {why}")),
                "{command:?}: {refused:?}"
            );
        }
    }
    assert_eq!(tree(&store), before, "nothing was created in the store");
    mq(&store, &["verify"]).ok();
    assert_eq!(stats(&store), counts(1, 0, 0, 0, 0));
}

/// Proves that the directories `export` and `replay --out` create are 0700
/// and the files they write 0600 (issue 11: directories were created 0755),
/// for a target several directories deep, and that a file already there
/// with a wider mode is replaced by a 0600 one.
#[test]
fn export_and_replay_create_directories_0700_and_files_0600() {
    let scratch = tempfile::tempdir().unwrap();
    let store = scratch.path().join("store");
    add(&store, "1");
    let exported = scratch.path().join("exported/a/b");
    let replayed = scratch.path().join("replayed/c");
    mq(&store, &["export", exported.to_str().unwrap()]).ok();
    mq(&store, &["replay", "--until", "1", "--out", replayed.to_str().unwrap()]).ok();
    for dir in ["exported", "exported/a", "exported/a/b", "replayed", "replayed/c"] {
        let dir = scratch.path().join(dir);
        assert_eq!(mode_of(&dir), 0o700, "{}", dir.display());
    }
    cli_support::set_mode(&exported.join("queue_failed.json"), 0o644);
    mq(&store, &["export", exported.to_str().unwrap()]).ok();
    for dir in [&exported, &replayed] {
        for name in ["queue_pending.json", "queue_failed.json", "queue_completed.json"] {
            let file = dir.join(name);
            assert_eq!(mode_of(&file), 0o600, "{}", file.display());
        }
    }
}
