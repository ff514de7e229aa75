//! Progress on long work: `verify`, `replay`, `compact` and `import` of a
//! store over 4 MiB draw a progress bar on stderr when it is a terminal
//! (run under `script`, which gives the command a pseudo-terminal; skipped
//! where there is no `script`), and print nothing at all to a pipe.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::cli::{self as cli_support, mq, mq_stdin};

/// A store of about 6 MiB: sixty movies with a 100 kB field each.
fn big_store(dir: &Path) {
    let lines: String = (0..60)
        .map(|n| {
            let movie = serde_json::json!({"id": n.to_string(), "title": format!("Movie {n}"), "year": 2020,
                                           "notes": "x".repeat(100_000)});
            format!("{movie}\n")
        })
        .collect();
    mq_stdin(dir, &["add", "--json", "-"], &lines).ok();
}

/// The commands that show progress, as arguments after `--dir DIR`.
fn long_work(export: &Path) -> Vec<Vec<String>> {
    let export = export.to_str().unwrap().to_owned();
    [
        vec!["verify"],
        vec!["replay", "--until", "30"],
        vec!["compact"],
        vec!["import", export.as_str()],
    ]
    .into_iter()
    .map(|args| args.into_iter().map(str::to_owned).collect())
    .collect()
}

#[test]
fn long_work_prints_nothing_to_stderr_when_it_is_piped() {
    let dir = tempfile::tempdir().unwrap();
    big_store(dir.path());
    let files = tempfile::tempdir().unwrap();
    mq(dir.path(), &["export", files.path().to_str().unwrap()]).ok();
    for args in long_work(files.path()) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = mq(dir.path(), &args).ok();
        assert_eq!(run.stderr, "", "{args:?} printed to a pipe: {run:?}");
    }
}

#[test]
fn long_work_draws_a_progress_bar_on_a_terminal() {
    if cli_support::try_output(Command::new("script").arg("--version")).is_err() {
        println!("skipped: no `script` to give the command a terminal");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    big_store(dir.path());
    let files = tempfile::tempdir().unwrap();
    mq(dir.path(), &["export", files.path().to_str().unwrap()]).ok();
    let binary = env!("CARGO_BIN_EXE_movie-queue");
    for (args, label) in long_work(files.path())
        .into_iter()
        .zip(["verifying", "replaying", "compacting", "importing"])
    {
        let line = format!("{binary} --dir {} {}", dir.path().display(), args.join(" "));
        let output = cli_support::output(
            Command::new("script")
                .args(["-qec", &line, "/dev/null"])
                .env("NO_COLOR", "1")
                .env_remove("MOVIE_QUEUE_DIR")
                .stdin(Stdio::null()),
        );
        let shown = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{line}: {shown}");
        assert!(shown.contains(&format!("{label} [")), "{line} drew no bar: {shown:?}");
    }
}
