//! Something other than a regular file where the store keeps one (a
//! symbolic link, a FIFO, a directory), or other than a directory where it
//! keeps its journal: whatever the library makes of it, an error or a
//! warning the tool prints about it comes with a hint that names the path
//! and what is there, never a bare `Too many levels of symbolic links (os
//! error 40)` or `is a directory`. Inside the store the hint says to remove
//! it or run `repair` (which sets it aside); outside (`export`), to remove
//! it or choose another directory.

use crate::support::cli as cli_support;

use std::path::Path;

use cli_support::{Run, add, mq};

/// Asserts that `run`, if it reports a problem (exit 1, or a warning),
/// has a hint naming `path` and `what` is there, and no raw `os error`
/// text; says whether it reported one.
#[track_caller]
fn hinted(run: &Run, path: &Path, what: &str) -> bool {
    assert!(!run.stderr.contains("os error"), "{run:#?}");
    let reported = run.code == Some(1) || run.stderr.contains("movie-queue: warning: ");
    if reported {
        let hint = run
            .stderr
            .lines()
            .find(|line| line.starts_with("hint: "))
            .unwrap_or_else(|| panic!("a hint: {run:#?}"));
        // Either the tool's hint names the path and what is there, or the
        // library's error does so itself and says what sets it aside.
        let error_says_it = run.stderr.lines().next().is_some_and(|line| {
            line.contains(&path.display().to_string()) && line.contains("not a") && line.contains("sets it aside")
        });
        assert!(
            hint.contains(&format!("{} is {what} where ", path.display())) || error_says_it,
            "the hint (or the error) names the path and what is there: {run:#?}"
        );
    }
    reported
}

/// Proves issue 4 of the hostile review: a directory where the store's
/// documented file goes (the snapshot at close, `snapshot`), a symbolic
/// link to a file where its journal directory goes, and a directory where
/// `export` writes a file were reported as a bare `rename to …: is a
/// directory` / `list …/journal: not a directory`. Each now has a hint
/// naming the path and what is there, saying what to do.
#[test]
fn a_link_or_special_file_where_the_store_keeps_a_file_is_named_in_a_hint() {
    let mut reported = 0;

    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "1");
    let documented = dir.path().join("queue_completed.json");
    std::fs::remove_file(&documented).unwrap();
    std::fs::create_dir(&documented).unwrap();
    for command in [
        &["add", "--id", "2", "--title", "Two", "--year", "2002"][..],
        &["snapshot"],
    ] {
        let run = mq(dir.path(), command);
        if hinted(&run, &documented, "a directory") {
            reported += 1;
            let hint = run.stderr.lines().find(|line| line.starts_with("hint: ")).unwrap();
            assert!(hint.contains("remove it, or run `movie-queue repair`"), "{run:#?}");
        }
    }

    let linked = tempfile::tempdir().unwrap();
    add(linked.path(), "1");
    let journal = linked.path().join("journal");
    std::fs::rename(&journal, linked.path().join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(linked.path().join("queue_pending.json"), &journal).unwrap();
    for command in [
        &["stats"][..],
        &["add", "--id", "2", "--title", "Two", "--year", "2002"],
    ] {
        let run = mq(linked.path(), command);
        if hinted(&run, &journal, "a symbolic link") {
            reported += 1;
            assert!(
                run.stderr.contains("where the store keeps a directory")
                    || run.stderr.contains("where the journal belongs"),
                "{run:#?}"
            );
        }
    }

    let target = tempfile::tempdir().unwrap();
    let in_the_way = target.path().join("queue_failed.json");
    std::fs::create_dir(&in_the_way).unwrap();
    let store = tempfile::tempdir().unwrap();
    add(store.path(), "1");
    let run = mq(store.path(), &["export", target.path().to_str().unwrap()]);
    if hinted(&run, &in_the_way, "a directory") {
        reported += 1;
        assert!(
            run.stderr.contains("remove it, or choose another directory"),
            "{run:#?}"
        );
        assert!(
            !run.stderr.contains("repair"),
            "export's target is not the store: {run:#?}"
        );
    }

    assert!(reported > 0, "at least one of these is still reported");
}
