//! `demo` through the binary: it runs the seed's usage example end to end
//! and exits 0, in a fresh scratch directory or in the `--dir` given (never
//! in `$MOVIE_QUEUE_DIR`); the store it leaves passes `verify` and holds
//! the outcome it printed; a non-empty `--dir` is refused.

use crate::support::cli as cli_support;

use cli_support::{command, counts, mq, stats};

#[test]
fn demo_runs_end_to_end_and_leaves_a_sound_store() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("demo");
    let run = mq(&dir, &["demo"]).ok();
    for section in [
        "1. Open a store",
        "5. Statistics",
        "6. Audit trail of Heat",
        "Explore the store yourself",
    ] {
        assert!(run.stdout.contains(section), "{section}: {run:?}");
    }
    assert!(
        run.stdout.contains(&format!(" --dir {} stats", dir.display())),
        "{run:?}"
    );
    mq(&dir, &["verify"]).ok();
    assert_eq!(stats(&dir), counts(0, 0, 1, 7, 0));
    let heat = mq(&dir, &["show", "949", "--json"]).ok().json();
    let kinds: Vec<&str> = heat["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["added", "taken", "failed", "moved_to_pending", "taken", "completed"]
    );

    let refused = mq(&dir, &["demo"]).fails_with(1);
    assert!(refused.stderr.contains("not empty"), "{refused:?}");
}

#[test]
fn demo_without_dir_uses_a_fresh_scratch_directory_not_the_environment() {
    let scratch = tempfile::tempdir().unwrap();
    let configured = scratch.path().join("configured");
    let output = cli_support::output(
        command()
            .env("MOVIE_QUEUE_DIR", &configured)
            .env("TMPDIR", scratch.path())
            .arg("demo"),
    );
    assert!(output.status.success(), "{output:?}");
    assert!(!configured.exists(), "the demo never touches $MOVIE_QUEUE_DIR");
    let made: Vec<_> = std::fs::read_dir(scratch.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("movie-queue-demo-"))
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&made[0]), "it says where: {stdout}");
}
