//! Errors and the command-line contract through the binary: a locked store
//! refuses mutating commands with exit 1 and a message naming the directory
//! while reading commands still work; a store path under a regular file is
//! a clear exit 1 naming the path, never a panic; usage errors exit 2;
//! `--dir` works before or after the command, `$MOVIE_QUEUE_DIR` and
//! `~/.movie_sync/` are the defaults; a closed stdout is not a panic.

use crate::support::cli as cli_support;

use std::io::Read;
use std::process::Stdio;

use cli_support::{add, command, counts, mq, mq_args};

#[test]
fn a_locked_store_refuses_mutations_clearly_and_still_answers_reads() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "1");
    // A holder that serves no control socket (the tool's own writers, an
    // older version): the queue's commands cannot go through it.
    let holder = movie_queue::QueueManager::options()
        .control_socket(false)
        .open(dir.path())
        .unwrap();
    for (command, says, hint) in [
        (
            &["add", "--id", "2", "--title", "x", "--year", "1"][..],
            "is held by another process",
            "reading command",
        ),
        (&["next"], "is held by another process", "reading command"),
        (&["complete", "1"], "is held by another process", "reading command"),
        // These need the store free, socket or not.
        (&["snapshot"], "locked", "read-only command"),
        (&["repair"], "locked", "read-only command"),
    ] {
        let refused = mq(dir.path(), command).fails_with(1);
        let mut lines = refused.stderr.lines();
        let message = lines.next().unwrap();
        assert!(
            message.starts_with("movie-queue: ") && message.contains(says),
            "{refused:?}"
        );
        assert!(
            message.contains(dir.path().to_str().unwrap()),
            "names the directory: {refused:?}"
        );
        assert!(lines.next().unwrap().contains(hint), "{refused:?}");
    }
    assert_eq!(mq(dir.path(), &["stats", "--json"]).ok().json(), counts(1, 0, 0, 0, 0));
    for command in [
        &["list", "pending"][..],
        &["show", "1"],
        &["log"],
        &["replay", "--until", "1"],
        &["verify"],
    ] {
        mq(dir.path(), command).ok();
    }
    {
        // No child of another test may be between its fork and its exec
        // (holding a copy of the lock) when the holder lets go.
        let _alone = crate::support::alone();
        drop(holder);
    }
    mq(dir.path(), &["next"]).ok();
}

#[test]
fn a_store_under_a_regular_file_is_a_clear_error_not_a_panic() {
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("file");
    std::fs::write(&file, b"not a directory").unwrap();
    let store = file.join("store");
    for command in [
        &["add", "--id", "1", "--title", "x", "--year", "1"][..],
        &["next"],
        &["stats"],
        &["verify"],
        &["log"],
        &["repair"],
        &["demo"],
    ] {
        let run = mq(&store, command).fails_with(1);
        assert!(run.stderr.starts_with("movie-queue: "), "{command:?}: {run:?}");
        assert!(
            run.stderr.contains(store.to_str().unwrap()),
            "{command:?} names the path: {run:?}"
        );
    }
    let on_file = mq(&file, &["stats"]).fails_with(1);
    assert!(on_file.stderr.contains("is not a directory"), "{on_file:?}");
    for command in [&["stats"][..], &["verify"], &["repair"]] {
        let not_a_store = mq(scratch.path(), command).fails_with(1);
        assert!(
            not_a_store.stderr.contains("holds no movie-queue store"),
            "{not_a_store:?}"
        );
    }
    assert!(
        !scratch.path().join("LOCK").exists(),
        "nothing written into a directory that is not a store"
    );
    let missing = mq(&scratch.path().join("missing"), &["stats"]).fails_with(1);
    assert!(missing.stderr.contains("hint: there is no store"), "{missing:?}");
}

#[test]
fn dir_is_global_and_defaults_to_the_environment_then_home() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    let dir_text = dir.to_str().unwrap();
    mq_args(&["add", "--id", "1", "--title", "x", "--year", "1", "--dir", dir_text]).ok();
    mq_args(&["--dir", dir_text, "add", "--id", "2", "--title", "y", "--year", "2"]).ok();
    assert_eq!(
        mq_args(&["stats", "--json", "--dir", dir_text]).ok().json()["pending"],
        2
    );

    let from_env = cli_support::output(command().env("MOVIE_QUEUE_DIR", &dir).args(["stats", "--json"]));
    assert!(from_env.status.success());
    assert!(String::from_utf8_lossy(&from_env.stdout).contains("\"pending\":2"));

    let home = scratch.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let added = cli_support::output(
        command()
            .env("HOME", &home)
            .args(["add", "--id", "h", "--title", "x", "--year", "1"]),
    );
    assert!(added.status.success(), "{added:?}");
    assert!(
        home.join(".movie_sync").join("journal").is_dir(),
        "the seed's place: ~/.movie_sync/"
    );
}

#[test]
fn usage_errors_exit_2_and_help_shows_examples() {
    mq_args(&[]).fails_with(2);
    mq_args(&["frobnicate"]).fails_with(2);
    mq_args(&["complete"]).fails_with(2);
    mq_args(&["stats", "--bogus"]).fails_with(2);
    let help = mq_args(&["--help"]).ok();
    assert!(
        help.stdout.contains("Examples:") && help.stdout.contains("--dir"),
        "{help:?}"
    );
    for command in ["add", "next", "fail", "log", "replay", "verify", "demo"] {
        let help = mq_args(&[command, "--help"]).ok();
        assert!(
            help.stdout.contains("movie-queue "),
            "{command} --help has an example: {help:?}"
        );
    }
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let input: String = (0..3000)
        .map(|index| format!("{{\"id\":\"{index}\",\"title\":\"Movie {index}\",\"year\":2000}}\n"))
        .collect();
    cli_support::mq_stdin(dir.path(), &["add", "--json", "-"], &input).ok();
    let mut child = cli_support::spawn(
        command()
            .arg("--dir")
            .arg(dir.path())
            .arg("log")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut first = [0_u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.status.success(), "{output:?}");
}

/// Proves that a store directory the user may not read is reported as
/// "permission denied" with its path (issue 11: the reading commands said
/// it "holds no movie-queue store"), by every reading command, `repair`,
/// `export` and a writer's open alike. The binary runs as a second user
/// (created when the tests run as root) on a store that user made, then
/// made mode 000.
#[test]
fn a_store_directory_the_user_may_not_read_is_permission_denied_naming_it() {
    let Some(user) = cli_support::Unprivileged::get() else {
        return;
    };
    let scratch = user.scratch();
    let dir = scratch.path().join("store");
    let out = scratch.path().join("out");
    user.mq(&dir, &["add", "--id", "1", "--title", "One", "--year", "2001"])
        .ok();
    let export = ["export", out.to_str().unwrap()];
    cli_support::set_mode(&dir, 0o000);
    let runs: Vec<_> = [
        &["stats"][..],
        &["list", "pending"],
        &["show", "1"],
        &["log"],
        &["replay", "--until", "1"],
        &["verify"],
        &["repair"],
        &export,
        &["next"],
        &["add", "--id", "2", "--title", "Two", "--year", "2002"],
    ]
    .into_iter()
    .map(|command| (command, user.mq(&dir, command)))
    .collect();
    cli_support::set_mode(&dir, 0o700);
    for (command, run) in runs {
        let run = run.fails_with(1);
        let message = run.stderr.lines().next().unwrap_or_default();
        assert!(
            message.starts_with("movie-queue: ")
                && message.contains(dir.to_str().unwrap())
                && message.ends_with(": permission denied"),
            "{command:?}: {run:?}"
        );
    }
    assert_eq!(cli_support::stats(&dir), counts(1, 0, 0, 0, 0));
}

/// The CLI refuses such a path itself (`require_directory`); the library
/// does too, rather than answer as if it were an empty store.
#[test]
fn the_library_refuses_a_regular_file_as_a_store() {
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("file");
    std::fs::write(&file, b"not a directory").unwrap();
    let verified = movie_queue::verify(&file);
    let opened = movie_queue::QueueManager::open_read_only(&file);
    assert!(verified.is_err(), "verify of a file: {verified:?}");
    assert!(opened.is_err(), "read-only open of a file: {opened:?}");
}
