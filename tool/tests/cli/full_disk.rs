//! A full disk through the binary: the error says that a write of the
//! journal failed, which is true whether it was this command's write or an
//! earlier one's, and the hint says to free disk space before running the
//! command again. The disk is a 1 MiB tmpfs mounted in a mount namespace of
//! the test's own (`unshare`), so no other process sees it and it goes
//! away with the command; the test is skipped where no such namespace can
//! be had.

use crate::support::cli as cli_support;

use std::path::Path;
use std::process::Command;

use cli_support::Run;

/// Mounts the small disk on `$SCRATCH`, makes a store there, fills the
/// disk, then runs `add` of a movie too large for the space left.
/// The journal's segment is preallocated (1 MiB of zeros laid down ahead of
/// its records), so on the full disk adds go on into the zeros until a
/// record needs more room than is left; that add fails, and fails again
/// when it is run once more (the room is still not there).
const FULL_DISK: &str = r#"
mount -t tmpfs -o size=4m tmpfs "$SCRATCH" || exit 97
"$MQ" --dir "$SCRATCH/store" add --id 1 --title One --year 2001 >/dev/null 2>&1 || exit 98
head -c 8000000 /dev/zero > "$SCRATCH/fill" 2>/dev/null
id=2
while [ "$id" -le 64 ]; do
  "$MQ" --dir "$SCRATCH/store" add --json "$(printf '%s' "$MOVIE" | sed "s/\"id\":\"2\"/\"id\":\"$id\"/")" >/dev/null 2>&1 || break
  id=$((id + 1))
done
[ "$id" -le 64 ] || exit 96
exec "$MQ" --dir "$SCRATCH/store" add --json "$(printf '%s' "$MOVIE" | sed "s/\"id\":\"2\"/\"id\":\"$id\"/")"
"#;

/// `unshare` arguments under which this process may mount a tmpfs on
/// `scratch` in a namespace of its own: a user namespace too when it is
/// not root. `None` (after printing why) when there are none.
fn namespace(scratch: &Path) -> Option<&'static [&'static str]> {
    for args in [&["--mount"][..], &["--user", "--map-root-user", "--mount"]] {
        let probe = cli_support::output(
            Command::new("unshare")
                .args(args)
                .args(["sh", "-c", r#"mount -t tmpfs -o size=1m tmpfs "$1""#, "sh"])
                .arg(scratch),
        );
        if probe.status.success() {
            return Some(args);
        }
    }
    println!("skipped: `unshare --mount` (or with --user) cannot mount a tmpfs here");
    None
}

/// Proves issue 3 of the hostile review: `add` on a full disk said "the
/// journal is poisoned by an earlier write or fsync failure" (the failing
/// write was its own) and "hint: run the command again" (which cannot help
/// on a full disk). Now the error says a write of the journal failed and
/// names "no space left on device"; the hint says to free disk space on
/// the store's file system first, then run the command again.
/// Runs `script` under `unshare ARGS` with `$SCRATCH`, `$MQ` and `env`
/// set; fails the test when the script could not set up its disk.
fn in_namespace(args: &[&str], script: &str, scratch: &Path, env: &[(&str, String)]) -> Run {
    let mut command = Command::new("unshare");
    command
        .args(args)
        .args(["sh", "-c", script])
        .env("SCRATCH", scratch)
        .env("MQ", env!("CARGO_BIN_EXE_movie-queue"))
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("MOVIE_QUEUE_DIR");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = cli_support::output(&mut command);
    let run = Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        !matches!(run.code, Some(96..=98)),
        "the scratch disk could not be set up: {run:#?}"
    );
    run
}

#[test]
fn a_full_disk_says_a_write_failed_and_to_free_space_first() {
    let scratch = tempfile::tempdir().unwrap();
    let Some(args) = namespace(scratch.path()) else { return };
    let movie = serde_json::json!({"id": "2", "title": "x".repeat(64 * 1024), "year": 2002});
    let run = in_namespace(args, FULL_DISK, scratch.path(), &[("MOVIE", movie.to_string())]);
    let run = run.fails_with(1);
    assert_eq!(run.stdout, "", "nothing printed for a change not made: {run:#?}");
    let error = run
        .stderr
        .lines()
        .find(|line| line.starts_with("movie-queue: "))
        .unwrap_or_default();
    assert!(
        error.starts_with("movie-queue: a write or fsync of the journal failed (")
            && error.to_lowercase().contains("no space left on device")
            && error.ends_with("; nothing more is written until the store is reopened"),
        "{run:#?}"
    );
    let hint = run
        .stderr
        .lines()
        .find(|line| line.starts_with("hint: "))
        .unwrap_or_default();
    let store = scratch.path().join("store");
    assert!(
        hint.contains("free disk space")
            && hint.contains(store.to_str().unwrap())
            && hint.contains("first, then run the command again"),
        "{run:#?}"
    );
}

/// Fills the small disk on `$SCRATCH`, then exports a store kept elsewhere
/// into it.
const FULL_OUTPUT_DISK: &str = r#"
mount -t tmpfs -o size=1m tmpfs "$SCRATCH" || exit 97
mkdir "$SCRATCH/out" || exit 98
head -c 4000000 /dev/zero > "$SCRATCH/fill" 2>/dev/null
"$MQ" --dir "$STORE" export "$SCRATCH/out"
code=$?
ls -A "$SCRATCH/out"
exit $code
"#;

#[test]
fn a_full_disk_under_an_export_names_the_output_and_leaves_no_partial_file() {
    let scratch = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let Some(args) = namespace(scratch.path()) else { return };
    cli_support::mq(store.path(), &["add", "--id", "1", "--title", "One", "--year", "2001"]).ok();
    let store_env = ("STORE", store.path().to_string_lossy().into_owned());
    let run = in_namespace(args, FULL_OUTPUT_DISK, scratch.path(), &[store_env]);
    let run = run.fails_with(1);
    assert_eq!(run.stdout, "", "no file is left in the output directory: {run:#?}");
    let hint = run
        .stderr
        .lines()
        .find(|line| line.starts_with("hint: "))
        .unwrap_or_default();
    let out = scratch.path().join("out");
    assert!(
        hint.contains("free disk space")
            && hint.contains(out.to_str().unwrap())
            && hint.contains("the store was only read"),
        "{run:#?}"
    );
}
