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

/// Proves that an error line shows a control character as a table does
/// (`\x1b`, `\u{202e}`; it showed ESC as `\u{1b}`), whether the CLI or the
/// library words the error: an unknown id, a movie the library refuses.
#[test]
fn error_lines_escape_control_characters_as_tables_do() {
    let dir = tempfile::tempdir().unwrap();
    mq(
        dir.path(),
        &["add", "--id", "a\x1b[31m", "--title", "t\x1b", "--year", "1"],
    )
    .ok();
    let listed = mq(dir.path(), &["list", "pending"]).ok();
    assert!(listed.stdout.contains(r"a\x1b[31m"), "{listed:?}");
    let unknown = mq(dir.path(), &["complete", "nope\x1b[31m\u{202e}"]).fails_with(1);
    assert!(
        unknown
            .stderr
            .starts_with(r#"movie-queue: no movie with id "nope\x1b[31m\u{202e}" in "#),
        "{unknown:?}"
    );
    let movie = json!({"id": "b\x1b\u{0}", "title": "t", "year": 1.5});
    let refused = mq(dir.path(), &["add", "--json", &movie.to_string()]).fails_with(1);
    assert!(refused.stderr.contains(r#""b\x1b\x00""#), "{refused:?}");
    let not_a_time = mq(dir.path(), &["replay", "--until", "x\x07"]).fails_with(2);
    assert!(not_a_time.stderr.contains(r#""x\x07""#), "{not_a_time:?}");
    for run in [&unknown, &refused, &not_a_time] {
        assert!(
            !run.stderr.contains(r"\u{1b}") && !run.stderr.contains(r"\u{0}"),
            "{run:?}"
        );
        assert!(!run.stderr.contains(r"\u{7}"), "{run:?}");
        assert_printable(run, 0);
    }
}

/// Proves that an id of spaces (or with a space at either end) is shown in
/// double quotes by human output (`add` printed `added    x (1)`), in
/// tables, `show`, `log`, `fail`, `complete`, `restore` and `forget`
/// alike, while `--json` keeps it exact.
#[test]
fn an_id_of_spaces_is_quoted_in_human_output() {
    let dir = tempfile::tempdir().unwrap();
    let added = mq(dir.path(), &["add", "--id", "   ", "--title", "x", "--year", "1"]).ok();
    assert_eq!(added.stdout, "added \"   \"  x (1)\n");
    let edged = mq(dir.path(), &["add", "--json", r#"{"id":" a","title":"y","year":2}"#]).ok();
    assert_eq!(edged.stdout, "added \" a\"  y (2)\n");
    let listed = mq(dir.path(), &["list", "pending"]).ok();
    assert!(listed.stdout.contains("1  \"   \"  x"), "{listed:?}");
    assert!(listed.stdout.contains("2  \" a\"   y"), "{listed:?}");
    let shown = mq(dir.path(), &["show", "   "]).ok();
    assert!(shown.stdout.contains("  id            \"   \"\n"), "{shown:?}");
    assert!(
        mq(dir.path(), &["log"])
            .ok()
            .stdout
            .contains("added             \"   \"  x (1)")
    );
    let failed = mq(dir.path(), &["fail", "   ", "--error", "e", "--retry-after", "1"]).ok();
    assert!(
        failed.stdout.starts_with("failed \"   \"  x (1): failure 1"),
        "{failed:?}"
    );
    let completed = mq(dir.path(), &["complete", "   "]).ok();
    assert_eq!(completed.stdout, "completed \"   \"  x (1) (was failed)\n");
    mq(dir.path(), &["mark-removed", "nothing"]).ok();
    let restored = mq(dir.path(), &["restore", "   "]).ok();
    assert_eq!(restored.stdout, "restored \"   \"  x (1)\n");
    mq(dir.path(), &["mark-removed", "nothing"]).ok();
    let forgot = mq(dir.path(), &["forget", " a"]).ok();
    assert_eq!(forgot.stdout, "forgot \" a\"  y (2)\n");
    let exact = mq(dir.path(), &["list", "removed", "--json"]).ok().json();
    assert_eq!(exact[0]["id"], "   ");
}

/// Proves that the library's log lines on stderr (tracing's `WARN …`,
/// printed by default) escape control characters in the paths they name
/// as every other line does: a store directory named with a newline and
/// ESC, whose journal ends in a torn write that the next writer open sets
/// aside, gave `WARN … path=/…/h` and a raw newline and ESC on stderr.
#[test]
fn log_lines_escape_control_characters_in_paths() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("h\ni\x1b[31m");
    mq(&dir, &["add", "--id", "1", "--title", "One", "--year", "2001"]).ok();
    let journal = dir.join("journal");
    let last = std::fs::read_dir(&journal)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".seg"))
        .max()
        .unwrap();
    let mut segment = std::fs::OpenOptions::new()
        .append(true)
        .open(journal.join(last))
        .unwrap();
    std::io::Write::write_all(&mut segment, b"a torn write, never acknowledged").unwrap();
    drop(segment);

    let added = mq(&dir, &["add", "--id", "2", "--title", "Two", "--year", "2002"]).ok();
    assert_printable(&added, 1);
    let logged: Vec<&str> = added.stderr.lines().collect();
    assert!(!logged.is_empty(), "the torn write set aside is logged: {added:?}");
    for line in logged {
        assert!(line.trim_start().starts_with("WARN "), "one log line a line: {added:?}");
        assert!(line.contains(r"h\ni\x1b[31m/journal/"), "the path escaped: {added:?}");
    }
}
