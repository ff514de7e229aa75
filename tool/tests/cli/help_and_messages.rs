//! What the tool says about itself is true: the files a command names are
//! the files it writes, `--help` counts them right, and the README says
//! what `--help` says.

use crate::support::cli as cli_support;

use std::collections::BTreeSet;
use std::path::Path;

use cli_support::{add, mq, mq_args};

/// The `queue_*.json` names in `text`.
fn named_files(text: &str) -> BTreeSet<String> {
    text.split(|character: char| !(character.is_ascii_alphanumeric() || character == '_' || character == '.'))
        .filter(|word| word.starts_with("queue_") && word.ends_with(".json"))
        .map(str::to_owned)
        .collect()
}

/// The names of the files in `dir`.
fn files_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Proves issue 5 of the hostile review: `export` and `replay --out`
/// wrote four files (queue_removed.json too) and their success lines named
/// three; `snapshot` named three of its five. Now each line names exactly
/// the documented files the command wrote (and `snapshot` its manifest).
#[test]
fn export_replay_and_snapshot_name_every_file_they_write() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "1");
    add(dir.path(), "2");
    mq(dir.path(), &["mark-removed", "1"]).ok();
    let scratch = tempfile::tempdir().unwrap();

    let exported = scratch.path().join("exported");
    let export = mq(dir.path(), &["export", exported.to_str().unwrap()]).ok();
    assert_eq!(named_files(&export.stdout), files_in(&exported), "{export:?}");
    assert_eq!(files_in(&exported).len(), 4);
    assert!(
        export.stdout.contains("queue_pending.json (1 entry)")
            && export.stdout.contains("queue_removed.json (1 entry)"),
        "{export:?}"
    );

    let replayed = scratch.path().join("replayed");
    let replay = mq(
        dir.path(),
        &["replay", "--until", "3", "--out", replayed.to_str().unwrap()],
    )
    .ok();
    let wrote = replay.stdout.lines().find(|line| line.starts_with("wrote ")).unwrap();
    assert_eq!(named_files(wrote), files_in(&replayed), "{replay:?}");

    let snapshot = mq(dir.path(), &["snapshot"]).ok();
    let written: BTreeSet<String> = files_in(dir.path())
        .into_iter()
        .filter(|name| name.starts_with("queue_") && name.ends_with(".json"))
        .collect();
    assert_eq!(named_files(&snapshot.stdout), written, "{snapshot:?}");
    assert_eq!(written.len(), 5, "the four documented files and the manifest");
}

/// Proves the `--help` half of issue 5: `snapshot` and `replay` said "the
/// three documented files"; there are four.
#[test]
fn help_counts_the_documented_files_right() {
    for command in ["snapshot", "replay", "export"] {
        let help = mq_args(&[command, "--help"]).ok();
        assert!(!help.stdout.contains("three"), "{command}: {help:?}");
        assert!(help.stdout.contains("four documented files"), "{command}: {help:?}");
    }
    let overview = mq_args(&["--help"]).ok();
    assert!(!overview.stdout.contains("three"), "{overview:?}");
}

/// `text` with every run of whitespace made one space.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Proves issue 8 of the hostile review: the README's example said `add
/// --json -` is "all or nothing", while a run killed part-way keeps the
/// lines already written (as `add --help` says). The README's example
/// comment is `--help`'s, and it says what `--help` says about the run.
#[test]
fn the_readme_says_what_add_help_says() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let help = mq_args(&["add", "--help"]).ok().stdout;
    let comment = |text: &str| -> String {
        let line = text.lines().find(|line| line.contains("add --json - <")).unwrap();
        line.split_once('#').unwrap().1.trim().to_owned()
    };
    assert_eq!(comment(&readme), comment(&help));
    let start = help.find("Every line is read and checked first").unwrap();
    let end = help.find("skips them as duplicates.").unwrap() + "skips them as duplicates.".len();
    let said = words(&help[start..end]);
    assert!(
        said.contains("A run killed part-way keeps the movies already written"),
        "{said}"
    );
    assert!(words(&readme).contains(&said), "the README says: {said}");
    assert!(!readme.contains("all or nothing"));
}
