//! Helpers for the tests that run the `movie-queue` binary: run it on a
//! store directory, feed it stdin, and read what it printed.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Standard output, as text.
    pub stdout: String,
    /// Standard error, as text.
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts exit 0 and returns itself.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        self
    }

    /// Asserts exit `code` and no panic, and returns itself.
    #[track_caller]
    pub fn fails_with(self, code: i32) -> Self {
        assert_eq!(self.code, Some(code), "expected exit {code}: {self:#?}");
        assert!(!self.stderr.contains("panicked"), "a panic: {self:#?}");
        self
    }

    /// Standard output parsed as one JSON value.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|error| panic!("not JSON ({error}): {self:#?}"))
    }

    /// Standard output parsed as one JSON value a line.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("line {line:?}: {error}")))
            .collect()
    }
}

/// A `movie-queue` command with a clean environment (no colour, no
/// `MOVIE_QUEUE_DIR`, warnings only).
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_movie-queue"));
    command
        .env_remove("MOVIE_QUEUE_DIR")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    command
}

/// Runs `movie-queue --dir DIR ARGS...`.
pub fn mq(dir: &Path, args: &[&str]) -> Run {
    Run::from(output(command().arg("--dir").arg(dir).args(args)))
}

/// Starts `command` (under [`crate::support::spawning`]) and waits for its output.
pub fn output(command: &mut Command) -> Output {
    spawn(command.stdout(Stdio::piped()).stderr(Stdio::piped()))
        .wait_with_output()
        .expect("wait for the child")
}

/// Starts `command` under [`crate::support::spawning`].
pub fn spawn(command: &mut Command) -> Child {
    let _spawning = crate::support::spawning();
    command.spawn().expect("start the child")
}

/// Runs `movie-queue ARGS...` as given (no `--dir`).
pub fn mq_args(args: &[&str]) -> Run {
    Run::from(output(command().args(args)))
}

/// Runs `movie-queue --dir DIR ARGS...` with `input` on stdin.
pub fn mq_stdin(dir: &Path, args: &[&str], input: &str) -> Run {
    let mut child = spawn(
        command()
            .arg("--dir")
            .arg(dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("write stdin");
    Run::from(child.wait_with_output().expect("wait for movie-queue"))
}

/// Adds a movie `id` titled `Movie <id>` (year "2020").
pub fn add(dir: &Path, id: &str) {
    mq(
        dir,
        &["add", "--id", id, "--title", &format!("Movie {id}"), "--year", "2020"],
    )
    .ok();
}

/// `stats --json` of the store.
/// The ids `list ARGS --json` prints, in order.
pub fn list_ids(dir: &Path, args: &[&str]) -> Vec<String> {
    let mut all = vec!["list"];
    all.extend_from_slice(args);
    all.push("--json");
    let listed = mq(dir, &all).ok().json();
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["id"].as_str().unwrap().to_owned())
        .collect()
}

pub fn stats(dir: &Path) -> Value {
    mq(dir, &["stats", "--json"]).ok().json()
}

/// The store's events, from `log --json`.
pub fn events(dir: &Path) -> Vec<Value> {
    mq(dir, &["log", "--json"]).ok().json_lines()
}

/// The statistics object as the CLI prints it.
pub fn counts(pending: u64, in_flight: u64, failed: u64, completed: u64, permanent_failures: u64) -> Value {
    serde_json::json!({
        "pending": pending,
        "in_flight": in_flight,
        "failed": failed,
        "completed": completed,
        "permanent_failures": permanent_failures,
        "removed": 0,
    })
}

/// Someone the permission bits apply to, to run `movie-queue` as in the
/// permission cases. A process that ignores permission bits (root) cannot
/// be denied anything, so there the binary runs as another user: a
/// throwaway system user `movie-queue-test` (made with `useradd` the first
/// time; left in place for later runs), else `nobody`.
#[derive(Debug, Clone)]
pub struct Unprivileged {
    /// `(uid, gid)` to run as; `None`: this process's own user will do.
    ids: Option<(u32, u32)>,
}

const TEST_USER: &str = "movie-queue-test";

impl Unprivileged {
    /// The user, or `None` (after printing why) when no such user can be
    /// had: the test is then skipped.
    pub fn get() -> Option<Self> {
        static USER: std::sync::OnceLock<Result<Unprivileged, String>> = std::sync::OnceLock::new();
        match USER.get_or_init(Self::find) {
            Ok(user) => Some(user.clone()),
            Err(why) => {
                println!("skipped: {why}");
                None
            }
        }
    }

    fn find() -> Result<Self, String> {
        if !ignores_permissions() {
            return Ok(Unprivileged { ids: None });
        }
        let ids = user_ids(TEST_USER)
            .or_else(|| {
                // Another test binary may make it meanwhile: look again whatever this says.
                drop(try_output(
                    Command::new("useradd")
                        .args(["--system", "--no-create-home", "--user-group"])
                        .args(["--shell", "/usr/sbin/nologin", TEST_USER]),
                ));
                user_ids(TEST_USER)
            })
            .or_else(|| user_ids("nobody"))
            .ok_or_else(|| {
                format!("running as root, and neither `useradd {TEST_USER}` nor `nobody` gives a second user")
            })?;
        let user = Unprivileged { ids: Some(ids) };
        let probe = try_output(user.command().arg("--version"));
        match probe {
            Ok(output) if output.status.success() => Ok(user),
            Ok(output) => Err(format!(
                "uid {} cannot run {}: {}",
                ids.0,
                env!("CARGO_BIN_EXE_movie-queue"),
                String::from_utf8_lossy(&output.stderr).trim()
            )),
            Err(error) => Err(format!("cannot start a process as uid {}: {error}", ids.0)),
        }
    }

    /// A `movie-queue` command (as [`command`]) that runs as this user.
    pub fn command(&self) -> Command {
        let mut command = command();
        if let Some((uid, gid)) = self.ids {
            use std::os::unix::process::CommandExt;
            // As root, std also drops the supplementary groups.
            command.uid(uid).gid(gid);
        }
        command
    }

    /// Runs `movie-queue --dir DIR ARGS...` as this user.
    pub fn mq(&self, dir: &Path, args: &[&str]) -> Run {
        Run::from(output(self.command().arg("--dir").arg(dir).args(args)))
    }

    /// A scratch directory this user owns (so it can make a store in it).
    pub fn scratch(&self) -> tempfile::TempDir {
        let scratch = tempfile::tempdir().unwrap();
        if let Some((uid, gid)) = self.ids {
            std::os::unix::fs::chown(scratch.path(), Some(uid), Some(gid)).unwrap();
        }
        scratch
    }
}

/// Sets the permission bits of `path`.
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The permission bits of `path` (not following a link).
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Does this process ignore permission bits (root, `CAP_DAC_OVERRIDE`)?
fn ignores_permissions() -> bool {
    let probe = tempfile::tempdir().unwrap();
    let path = probe.path().join("probe");
    std::fs::write(&path, "x").unwrap();
    set_mode(&path, 0o000);
    std::fs::File::open(&path).is_ok()
}

/// `(uid, gid)` of the user `name`, if there is one.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let output = try_output(Command::new("id").arg(flag).arg(name)).ok()?;
        if !output.status.success() {
            return None;
        }
        String::from_utf8_lossy(&output.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// Runs `command` to its end under [`crate::support::spawning`], output captured;
/// an error if it cannot be started.
pub fn try_output(command: &mut Command) -> std::io::Result<Output> {
    let _spawning = crate::support::spawning();
    command.stdin(Stdio::null()).output()
}

/// A movie or entry (or an array of them) without its clock stamps
/// (`queued_at`, `last_failed_at`, integers), which are checked to be there.
pub fn unstamped(mut value: Value) -> Value {
    match &mut value {
        Value::Array(items) => return Value::Array(items.drain(..).map(unstamped).collect()),
        Value::Object(fields) => {
            let queued_at = fields.shift_remove("queued_at");
            assert!(
                queued_at.is_some_and(|time| time.is_u64()),
                "an integer queued_at in {value}"
            );
            if let Value::Object(fields) = &mut value {
                fields.shift_remove("last_failed_at");
            }
        }
        _ => {}
    }
    value
}
