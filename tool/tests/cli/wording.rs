//! What a person reads (issue 27): tables aligned by the columns a
//! terminal gives each character (a CJK character or an emoji takes two),
//! counts with the noun their number wants, `show` with local date-times
//! and texts without their JSON quotes, and usage lines that do not show
//! `--dir` as typed when `$MOVIE_QUEUE_DIR` gave it.

use crate::support::cli as cli_support;

use cli_support::{command, mq, output};
use unicode_width::UnicodeWidthStr;

fn add(dir: &std::path::Path, id: &str, title: &str) {
    mq(dir, &["add", "--id", id, "--title", title, "--year", "2001"]).ok();
}

#[test]
fn tables_align_by_display_width_with_cjk_and_emoji_titles() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "1", "千と千尋の神隠し");
    add(dir.path(), "2", "Heat");
    add(dir.path(), "3", "🎬 Movie 🍿");
    add(dir.path(), "4", "Amélie");
    let list = mq(dir.path(), &["list", "pending"]).ok();
    // Where the YEAR column starts, in terminal columns, on every line.
    let starts: Vec<usize> = list
        .stdout
        .lines()
        .map(|line| {
            let at = line
                .find("YEAR")
                .or_else(|| line.find("2001"))
                .unwrap_or_else(|| panic!("a year column: {line:?}"));
            UnicodeWidthStr::width(&line[..at])
        })
        .collect();
    assert_eq!(starts.len(), 5, "{}", list.stdout);
    assert!(
        starts.iter().all(|&start| start == starts[0]),
        "{starts:?}\n{}",
        list.stdout
    );
}

#[test]
fn counts_take_the_noun_their_number_wants() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "1", "Heat");
    mq(dir.path(), &["next"]).ok();
    let requeued = mq(dir.path(), &["requeue-in-flight"]).ok();
    assert_eq!(requeued.stdout.trim(), "1 movie back at the front of pending");
    mq(dir.path(), &["next"]).ok();
    mq(dir.path(), &["complete", "1"]).ok();
    let cleaned = mq(dir.path(), &["cleanup", "--days", "0"]).ok();
    assert!(
        cleaned.stdout.contains("removed 1 completed entry older than 0 days"),
        "{cleaned:?}"
    );
    let verify = mq(dir.path(), &["verify"]).ok();
    assert!(
        verify.stdout.starts_with("journal   1 segment, 6 records, "),
        "{verify:?}"
    );
}

#[test]
fn show_gives_local_times_and_texts_unquoted_in_one_column() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "1", "Heat");
    mq(dir.path(), &["next"]).ok();
    mq(dir.path(), &["fail", "1", "--error", "no seeders"]).ok();
    let show = mq(dir.path(), &["show", "1"]).ok();
    let fields: Vec<&str> = show
        .stdout
        .lines()
        .skip(1)
        .take_while(|line| !line.is_empty())
        .collect();
    let line = |name: &str| {
        *fields
            .iter()
            .find(|line| line.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name}: {}", show.stdout))
    };
    assert!(line("status").ends_with(" failed"), "{}", show.stdout);
    assert!(!show.stdout.contains("\"failed\""), "{}", show.stdout);
    for time in ["queued_at", "last_failed_at"] {
        // `YYYY-MM-DD HH:MM:SS (…ago)`, not Unix seconds.
        let value = line(time).trim_start()[time.len()..].trim_start();
        assert!(
            value.len() > 19 && value.as_bytes()[4] == b'-' && value.as_bytes()[13] == b':',
            "{time}: {value:?}"
        );
    }
    // Every value starts in the column the id's does.
    let start = line("id").rfind(' ').expect("the id's line") + 1;
    for field in &fields {
        let bytes = field.as_bytes();
        assert!(
            bytes[start - 1] == b' ' && bytes[start] != b' ',
            "{field:?} does not start its value at column {start}\n{}",
            show.stdout
        );
    }
}

#[test]
fn usage_lines_do_not_show_a_dir_the_environment_gave() {
    let dir = tempfile::tempdir().unwrap();
    let run = output(command().env("MOVIE_QUEUE_DIR", dir.path()).args(["show"]));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("Usage: movie-queue show <ID>"), "{stderr}");
    // And the variable still names the store.
    add(dir.path(), "1", "Heat");
    let stats = output(command().env("MOVIE_QUEUE_DIR", dir.path()).args(["stats", "--json"]));
    assert!(
        String::from_utf8_lossy(&stats.stdout).contains("\"pending\":1"),
        "{stats:?}"
    );
}
