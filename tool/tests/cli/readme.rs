//! Every code block of the README runs in a test, or is checked by one
//! where running it is not a test's job (`cargo test` itself, `cargo
//! bench`, nightly fuzzing): [`every_block_of_the_readme_is_run_or_checked`]
//! lists them all, and fails on a block it does not know.
//!
//! The command-line sessions run as written: every `$` line is run by `sh`
//! from the repository's root (where `examples/watchlist.jsonl` is),
//! against a scratch store, and prints what the README shows, line for
//! line: only times (date-times, `queued_at`, `in 2h`) and the width of
//! the spaces between columns may differ.

use std::path::{Path, PathBuf};
use std::process::Command;

use movie_queue::{Movie, QueueManager, now};

use crate::support::cli::mq_args;
use crate::support::http::{get, serve_with};

/// The repository's root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).unwrap()
}

/// The README's fenced blocks: the language after the fence, the text.
fn blocks(readme: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if let Some(language) = line.strip_prefix("```") {
            let text: Vec<&str> = lines.by_ref().take_while(|line| !line.starts_with("```")).collect();
            blocks.push((language.to_owned(), text.join("\n") + "\n"));
        }
    }
    blocks
}

/// The one block of `language` whose text starts with `start`.
pub(crate) fn block(language: &str, start: &str) -> String {
    let found: Vec<String> = blocks(&readme())
        .into_iter()
        .filter(|(lang, text)| lang == language && text.starts_with(start))
        .map(|(_, text)| text)
        .collect();
    assert_eq!(found.len(), 1, "one {language} block starting {start:?}");
    found.into_iter().next().unwrap()
}

/// Where each README block is run, or checked.
const BLOCKS: &[(&str, &str, &str)] = &[
    (
        "sh",
        "cargo run --release -- demo\n",
        "the_quick_start_runs_the_demo_of_the_tool (`cargo test` is .ci/run's)",
    ),
    (
        "rust,no_run",
        "use movie_queue::",
        "compiled as a doctest of the library (src/lib.rs includes the README)",
    ),
    (
        "sh",
        "python3 -m venv .venv && . .venv/bin/activate\npip install ./python\n",
        "tests/python/main.rs makes a venv and installs the package with the same pip command",
    ),
    (
        "python",
        "# from queue_manager import QueueManager\n",
        "python/tests/test_readme_example.py",
    ),
    (
        "python",
        "from movie_queue import QueueManager\n",
        "python/tests/test_readme_example.py",
    ),
    (
        "console",
        "$ export MOVIE_QUEUE_DIR=",
        "the_readme_session_prints_what_it_shows",
    ),
    (
        "console",
        "$ movie-queue reset 603",
        "the_reset_beside_the_application_prints_what_the_readme_shows",
    ),
    (
        "sh",
        "cargo run --release -- demo --dir /tmp/demo\n",
        "the_dashboard_commands_serve_the_demo",
    ),
    (
        "sh",
        "cargo bench\n",
        "the_benches_and_fuzz_targets_named_exist (clippy --all-targets builds them)",
    ),
    (
        "sh",
        "cargo install cargo-fuzz\n",
        "the_benches_and_fuzz_targets_named_exist",
    ),
    (
        "sh",
        "movie-queue ship --to nats://127.0.0.1:4222",
        "ship::the_readme_ship_and_restore_commands_run_as_written",
    ),
    (
        "ini",
        "[Unit]\n",
        "ship::the_systemd_unit_of_the_readme_names_a_command_that_runs",
    ),
    (
        "sh",
        "pip install nats-py\n",
        "ship::the_consumer_example_of_the_readme_counts_what_stats_counts",
    ),
    (
        "toml",
        "[dependencies]\n",
        "an_embedder_of_the_readme_builds_none_of_the_tools_crates",
    ),
];

#[test]
fn every_block_of_the_readme_is_run_or_checked() {
    let found = blocks(&readme());
    let unknown: Vec<&(String, String)> = found
        .iter()
        .filter(|(language, text)| {
            !BLOCKS
                .iter()
                .any(|(lang, start, _)| lang == language && text.starts_with(start))
        })
        .collect();
    assert!(
        unknown.is_empty(),
        "README blocks no test runs (add one, and a line to BLOCKS): {unknown:#?}"
    );
    for (language, start, test) in BLOCKS {
        let matching = found
            .iter()
            .filter(|(lang, text)| lang == language && text.starts_with(start))
            .count();
        assert_eq!(matching, 1, "the README's {language} block starting {start:?} ({test})");
    }
}

/// A line as compared: times replaced, runs of spaces made one.
fn normalized(line: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = line.chars().collect();
    let mut index = 0;
    while index < chars.len() {
        let rest: String = chars[index..].iter().collect();
        // 2026-11-29 07:05:17
        let date = rest.len() >= 19
            && rest.chars().take(19).enumerate().all(|(at, c)| match at {
                4 | 7 => c == '-',
                10 => c == ' ',
                13 | 16 => c == ':',
                _ => c.is_ascii_digit(),
            });
        let id = rest.len() >= 32
            && rest.chars().take(32).all(|c| matches!(c, '0'..='9' | 'a'..='f'))
            && !rest.chars().nth(32).is_some_and(|c| c.is_ascii_alphanumeric());
        if date {
            out.push_str("<time>");
            index += 19;
        } else if id {
            // A store's identity (random).
            out.push_str("<id>");
            index += 32;
        } else if let Some(after) = rest.strip_prefix("\"queued_at\":") {
            out.push_str("\"queued_at\":<time>");
            index += 12 + after.chars().take_while(char::is_ascii_digit).count();
        } else if rest.starts_with("(in ") {
            out.push_str("(in <time>)");
            index += rest
                .find(')')
                .map_or(rest.chars().count(), |end| rest[..=end].chars().count());
        } else if chars[index] == ' ' {
            if !out.ends_with(' ') {
                out.push(' ');
            }
            index += 1;
        } else {
            out.push(chars[index]);
            index += 1;
        }
    }
    out.trim_end().to_owned()
}

/// The command of a `$` line, its comment (`   # ...`) cut off.
fn command(line: &str) -> &str {
    let command = line.trim_start_matches("$ ");
    command.find("  #").map_or(command, |at| &command[..at]).trim_end()
}

#[test]
fn the_readme_session_prints_what_it_shows() {
    let session = block("console", "$ export MOVIE_QUEUE_DIR=");
    let scratch = tempfile::tempdir().unwrap();
    run_session(session.lines().skip(1), &scratch.path().join("movies"));
}

/// Runs each `$` line of a session with `sh` on the store `dir` (as
/// `$MOVIE_QUEUE_DIR`) and compares what it prints with the lines shown.
fn run_session<'a>(lines: impl Iterator<Item = &'a str>, dir: &Path) {
    let binary = Path::new(env!("CARGO_BIN_EXE_movie-queue"));
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut lines = lines.peekable();
    while let Some(line) = lines.next() {
        assert!(line.starts_with("$ "), "a command line: {line:?}");
        let mut shown = Vec::new();
        while let Some(next) = lines.peek().filter(|next| !next.starts_with("$ ")) {
            shown.push(normalized(next));
            lines.next();
        }
        let output = Command::new("sh")
            .args(["-c", command(line)])
            .current_dir(root())
            .env("PATH", &path)
            .env("MOVIE_QUEUE_DIR", dir)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let printed: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(normalized)
            .collect();
        assert_eq!(
            printed,
            shown,
            "README: `{line}` (stderr: {})",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// "While Movie Sync runs": the store held by a manager in this process,
/// The Matrix failed five times.
#[test]
fn the_reset_beside_the_application_prints_what_the_readme_shows() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("movies");
    let application = QueueManager::open(&dir).unwrap();
    application
        .add_to_pending(Movie::new("603", "The Matrix", "1999"))
        .unwrap();
    for attempt in 1..=5 {
        let movie = application.get_next_pending().unwrap().unwrap();
        application
            .add_to_failed(movie, "Not found on tracker", Some(now() - 1.0))
            .unwrap();
        if attempt < 5 {
            for entry in application.get_movies_ready_for_retry(10) {
                application.move_failed_to_pending(&entry).unwrap();
            }
        }
    }
    run_session(block("console", "$ movie-queue reset 603").lines(), &dir);
    assert_eq!(application.get_pending_count(), 1, "the reset is the application's");
}

/// The Quick start's first command, `cargo run --release -- demo`: the
/// root's `cargo run` runs the tool (a default member of the workspace,
/// and the only binary in it), and its demo runs.
#[test]
fn the_quick_start_runs_the_demo_of_the_tool() {
    let quick = block("sh", "cargo run --release -- demo\n");
    assert_eq!(quick, "cargo run --release -- demo\ncargo test\n");
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(manifest.contains("default-members = [\".\", \"tool\"]"), "{manifest}");
    let scratch = tempfile::tempdir().unwrap();
    let demo = crate::support::cli::command()
        .arg("demo")
        .env("TMPDIR", scratch.path())
        .output()
        .unwrap();
    assert!(demo.status.success(), "{demo:?}");
    let printed = String::from_utf8_lossy(&demo.stdout);
    assert!(printed.contains("Audit trail of Heat"), "{printed}");
    assert!(printed.contains("Explore the store yourself"), "{printed}");
}

/// The dashboard's two commands, with the built binary for `cargo run
/// --release --`, a scratch directory for `/tmp/demo` and a free port.
#[test]
fn the_dashboard_commands_serve_the_demo() {
    let shown = block("sh", "cargo run --release -- demo --dir /tmp/demo\n");
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("demo");
    let commands: Vec<Vec<String>> = shown
        .lines()
        .map(|line| {
            let line = line.split("  #").next().unwrap().trim_end();
            let args = line.strip_prefix("cargo run --release -- ").unwrap();
            args.split(' ')
                .map(|arg| {
                    if arg == "/tmp/demo" {
                        dir.display().to_string()
                    } else {
                        arg.to_owned()
                    }
                })
                .collect()
        })
        .collect();
    assert_eq!(commands.len(), 2, "{shown}");
    mq_args(&args(&commands[0])).ok();
    let mut serve = crate::support::cli::command();
    serve.args(&commands[1]).args(["--addr", "127.0.0.1:0"]);
    let server = serve_with(&mut serve);
    let page = get(server.addr, "/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("The Third Man"), "the demo's films: {}", page.body);
}

fn args(command: &[String]) -> Vec<&str> {
    command.iter().map(String::as_str).collect()
}

/// `cargo bench` and the fuzz targets the README names are there (running
/// them takes minutes, and fuzzing the nightly toolchain).
#[test]
fn the_benches_and_fuzz_targets_named_exist() {
    assert_eq!(block("sh", "cargo bench\n"), "cargo bench\n");
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(manifest.contains("[[bench]]"), "benches to run");
    let fuzz = block("sh", "cargo install cargo-fuzz\n");
    let named: Vec<&str> = fuzz.split("# ").nth(1).unwrap().trim().split(", ").collect();
    let targets = std::fs::read_to_string(root().join("fuzz").join("Cargo.toml")).unwrap();
    let declared: Vec<&str> = targets
        .lines()
        .filter_map(|line| line.strip_prefix("name = \""))
        .filter_map(|name| name.strip_suffix('"'))
        .filter(|name| *name != "movie-queue-fuzz")
        .collect();
    assert_eq!(named, declared, "the README names every fuzz target");
}

/// The embedder's `[dependencies]` line resolves to the library alone:
/// none of the tool's crates is in its build (`cargo metadata` of a
/// scratch package, offline: the crates are those of this build).
#[test]
fn an_embedder_of_the_readme_builds_none_of_the_tools_crates() {
    let shown = block("toml", "[dependencies]\n");
    let scratch = tempfile::tempdir().unwrap();
    let library = root().canonicalize().unwrap();
    let dependency = shown.replace("\"../movie-queue\"", &format!("{:?}", library.display().to_string()));
    assert_ne!(dependency, shown, "the block names the library by its path: {shown}");
    std::fs::write(
        scratch.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"embedder\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n{dependency}\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::copy(root().join("Cargo.lock"), scratch.path().join("Cargo.lock")).unwrap();
    std::fs::create_dir(scratch.path().join("src")).unwrap();
    std::fs::write(scratch.path().join("src").join("lib.rs"), "").unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let metadata = Command::new(cargo)
        .args(["metadata", "--offline", "--format-version", "1"])
        .current_dir(scratch.path())
        .output()
        .unwrap();
    assert!(
        metadata.status.success(),
        "{}",
        String::from_utf8_lossy(&metadata.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout).unwrap();
    let names: Vec<&str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|package| package["name"].as_str())
        .collect();
    assert!(names.contains(&"movie-queue"), "{names:?}");
    for tool_crate in ["movie-queue-tool", "clap", "tokio", "axum", "askama", "anyhow"] {
        assert!(
            !names.contains(&tool_crate),
            "{tool_crate} in an embedder's build: {names:?}"
        );
    }
}

#[test]
fn times_and_spaces_are_what_may_differ() {
    assert_eq!(
        normalized("603  The Matrix  1999        1  2026-11-29 09:05:17 (in 1h 59m)  x"),
        "603 The Matrix 1999 1 <time> (in <time>) x"
    );
    assert_eq!(
        normalized(r#"{"id":"1","queued_at":1795885517,"status":"pending"}"#),
        r#"{"id":"1","queued_at":<time>,"status":"pending"}"#
    );
    assert_ne!(normalized("added 603"), normalized("added 604"));
    assert_eq!(
        normalized("store id            4f0d6c2a9b1e8f3570c4d2a6e9b13f58"),
        normalized("store id  0123456789abcdef0123456789abcdef")
    );
    assert_ne!(
        normalized("store id 4f0d6c2a9b1e8f3570c4d2a6e9b13f58"),
        normalized("store id none yet")
    );
}
