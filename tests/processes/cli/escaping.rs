//! Human output is safe to print: what a movie's id, title, year or error
//! holds never reaches the terminal as a control character, while `--json`
//! keeps the exact text.

use crate::support::cli as cli_support;

use cli_support::{Run, mq};
use serde_json::json;

/// A newline in an id would forge a line of output; ESC starts a terminal
/// escape sequence; U+009B is the C1 form of ESC [; U+202E reverses the
/// text after it.
const EVIL_ID: &str = "evil\nadded forged  Fake (1999)";
const EVIL_TITLE: &str = "\x1b[2J\x1b]0;owned\x07Title\r\u{9b}31m\u{202e}gnp.exe";
const EVIL_YEAR: &str = "19\t99";
const EVIL_ERROR: &str = "boom\x1b[31m\nfailed forged";

/// Asserts that `text` holds no character a terminal acts on but the
/// line ends, and has `lines` lines.
#[track_caller]
fn assert_printable(run: &Run, lines: usize) {
    for text in [&run.stdout, &run.stderr] {
        let raw: Vec<char> = text
            .chars()
            .filter(|&character| {
                (character.is_control() && character != '\n')
                    || matches!(character, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            })
            .collect();
        assert!(raw.is_empty(), "raw control characters {raw:?} in {run:#?}");
    }
    assert_eq!(run.stdout.lines().count(), lines, "{run:#?}");
}

/// Proves issue 11's "human output is safe to print": a movie whose id
/// holds a newline (a forged "added ..." line), whose title holds ESC and
/// C1 sequences, a carriage return and a bidi override, whose year holds a
/// tab and whose error holds ESC and a newline is printed by `add`,
/// `list`, `fail`, `show`, `retry`, `log`, `complete`, and an error message, with
/// each of those characters escaped (`\n`, `\x1b`, `\u{9b}`, `\u{202e}`,
/// `\t`): no raw control character, one line per line of output. `--json`
/// gives back the exact strings.
#[test]
fn control_characters_in_ids_titles_and_errors_are_escaped_and_json_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let movie = json!({"id": EVIL_ID, "title": EVIL_TITLE, "year": EVIL_YEAR});
    let added = mq(dir.path(), &["add", "--json", &movie.to_string()]).ok();
    assert_printable(&added, 1);
    assert!(
        added.stdout.starts_with(
            r"added evil\nadded forged  Fake (1999)  \x1b[2J\x1b]0;owned\x07Title\r\u{9b}31m\u{202e}gnp.exe (19\t99)"
        ),
        "{added:?}"
    );
    assert_printable(&mq(dir.path(), &["list", "pending"]).ok(), 2);
    let failed = mq(
        dir.path(),
        &["fail", EVIL_ID, "--error", EVIL_ERROR, "--retry-after", "1"],
    )
    .ok();
    assert_printable(&failed, 1);
    let listed = mq(dir.path(), &["list", "failed"]).ok();
    assert_printable(&listed, 2);
    assert!(listed.stdout.contains(r"boom\x1b[31m\nfailed forged"), "{listed:?}");
    let exact = mq(dir.path(), &["list", "failed", "--json"]).ok().json();
    assert_eq!(exact[0]["id"], EVIL_ID);
    assert_eq!(exact[0]["title"], EVIL_TITLE);
    assert_eq!(exact[0]["year"], EVIL_YEAR);
    assert_eq!(exact[0]["last_error"], EVIL_ERROR);
    let shown = mq(dir.path(), &["show", EVIL_ID]).ok();
    assert!(shown.stdout.contains(r"\u{202e}"), "{shown:?}");
    assert_printable(&shown, shown.stdout.lines().count());
    assert!(
        !shown.stdout.lines().any(|line| line.starts_with("failed forged")),
        "{shown:?}"
    );
    let retried = mq(dir.path(), &["retry"]).ok();
    assert_printable(&retried, 2);
    assert!(
        retried.stdout.contains(r#"last error "boom\x1b[31m\nfailed forged""#),
        "{retried:?}"
    );
    assert_printable(&mq(dir.path(), &["log"]).ok(), 3);
    let completed = mq(dir.path(), &["complete", EVIL_ID]).ok();
    assert_printable(&completed, 1);
    let unknown = mq(dir.path(), &["complete", "nope\x1b[31m\u{202e}"]).fails_with(1);
    assert_printable(&unknown, 0);
}
