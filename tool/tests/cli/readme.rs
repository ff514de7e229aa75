//! The README's command-line session runs as written: every `$` line of
//! each `console` block that starts with `$ export MOVIE_QUEUE_DIR=` is run
//! by `sh` from the repository's root (where `examples/watchlist.jsonl` is),
//! against a scratch store, and prints what the README shows, line for
//! line: only times (date-times, `queued_at`, `in 2h`) and the width of
//! the spaces between columns may differ.

use std::path::Path;
use std::process::Command;

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
        if date {
            out.push_str("<time>");
            index += 19;
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
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_movie-queue"));
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut sessions = 0;
    for block in readme.split("```console\n").skip(1) {
        let block = block.split("```").next().unwrap();
        if !block.starts_with("$ export MOVIE_QUEUE_DIR=") {
            continue;
        }
        sessions += 1;
        let scratch = tempfile::tempdir().unwrap();
        let mut lines = block.lines().skip(1).peekable();
        while let Some(line) = lines.next() {
            assert!(line.starts_with("$ "), "a command line: {line:?}");
            let mut shown = Vec::new();
            while let Some(next) = lines.peek().filter(|next| !next.starts_with("$ ")) {
                shown.push(normalized(next));
                lines.next();
            }
            let output = Command::new("sh")
                .args(["-c", command(line)])
                .current_dir(&root)
                .env("PATH", &path)
                .env("MOVIE_QUEUE_DIR", scratch.path().join("movies"))
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
    assert!(sessions >= 1, "the README has its session");
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
}
