//! How results look: colour (only on a terminal, never with `NO_COLOR`),
//! aligned tables, local date-times, events as one line or one JSON object.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::path::Path;

use chrono::{DateTime, Local};
use movie_queue::{Event, EventRecord, Movie, QueueEntry, Statistics};
use serde_json::{Map, Value};

/// Where results go (stdout) and whether they are coloured.
pub struct Output {
    /// The locked standard output.
    pub out: std::io::StdoutLock<'static>,
    /// The colours to use (none when stdout is not a terminal).
    pub style: Style,
}

impl Output {
    /// Standard output, coloured when it is a terminal and `NO_COLOR` is unset.
    pub fn stdout() -> Self {
        let stdout = std::io::stdout();
        let colour = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
        Output {
            out: stdout.lock(),
            style: Style { enabled: colour },
        }
    }

    /// Is standard output a terminal (worth pacing a demo for)?
    pub fn is_terminal() -> bool {
        std::io::stdout().is_terminal()
    }
}

/// ANSI colours, or nothing.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Colour at all?
    pub enabled: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Headings.
    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Things that went well.
    pub fn green(self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Failures.
    pub fn red(self, text: &str) -> String {
        self.paint("31", text)
    }

    /// Things in progress.
    pub fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }

    /// New things.
    pub fn cyan(self, text: &str) -> String {
        self.paint("36", text)
    }

    /// Less important things.
    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    /// An event's name, coloured by what it means.
    pub fn event_kind(self, kind: &str) -> String {
        match kind {
            "added" => self.cyan(kind),
            "taken" => self.yellow(kind),
            "failed" => self.red(kind),
            "completed" => self.green(kind),
            _ => self.bold(kind),
        }
    }
}

/// `text` made safe to print on a terminal, the way `ls`, git and ripgrep
/// quote names: control characters (C0 such as newline and ESC, DEL, C1),
/// the Unicode bidirectional controls and the line and paragraph
/// separators are shown as escapes (`\n`, `\r`, `\t`, `\x1b`, `\u{202e}`),
/// so an id cannot forge a line of output or reach the terminal as an
/// escape sequence. Everything else, a backslash too, is printed as it is
/// (`--json` shows the exact text). Every user-provided string that human
/// output prints goes through here.
pub fn safe(text: &str) -> Cow<'_, str> {
    use std::fmt::Write as _;
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for character in text.chars() {
        match character {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            character if needs_escape(character) && character.is_ascii() => {
                let _ = write!(escaped, "\\x{:02x}", u32::from(character));
            }
            character if needs_escape(character) => {
                let _ = write!(escaped, "\\u{{{:x}}}", u32::from(character));
            }
            character => escaped.push(character),
        }
    }
    Cow::Owned(escaped)
}

/// `text` in double quotes, [`safe`] inside: how error messages name an id
/// or an argument (`no movie with id "a\x1b[31m"`). A quote or backslash
/// inside is printed as it is, as [`safe`] prints it.
pub fn quoted(text: &str) -> String {
    format!("\"{}\"", safe(text))
}

/// A movie's id as human output shows it: [`safe`], and in double quotes
/// ([`quoted`]) when it would not stand out on its own: empty, beginning
/// or ending with whitespace (an id of spaces would print blank), or
/// beginning with a double quote (so that it is not taken for a quoted one).
pub fn show_id(id: &str) -> Cow<'_, str> {
    if id.is_empty() || id.starts_with(char::is_whitespace) || id.ends_with(char::is_whitespace) || id.starts_with('"')
    {
        Cow::Owned(quoted(id))
    } else {
        safe(id)
    }
}

/// A library message with the escapes of Rust's `{:?}` quoting (which
/// the library uses to name an id: `movie "a\u{1b}"`) for ASCII control
/// characters, `\u{1b}` and `\0`, rewritten in [`safe`]'s style, `\x1b`
/// and `\x00`, so that every line shows a character one way. A backslash
/// escaped as `\\` is kept as it is, and so is every other escape (`\n`,
/// `\u{202e}` are already [`safe`]'s).
pub fn restyle_debug_escapes(text: &str) -> Cow<'_, str> {
    use std::fmt::Write as _;
    if !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let mut restyled = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        restyled.push_str(&rest[..at]);
        let escape = &rest[at..];
        let ascii_control = escape
            .strip_prefix("\\u{")
            .and_then(|digits| digits.split_once('}'))
            .filter(|(digits, _)| !digits.is_empty() && digits.len() <= 6)
            .and_then(|(digits, _)| {
                u32::from_str_radix(digits, 16)
                    .ok()
                    .map(|code| (code, digits.len() + 4))
            })
            .filter(|&(code, _)| code < 0x20 || code == 0x7f);
        let taken = if escape.starts_with("\\\\") {
            restyled.push_str("\\\\");
            2
        } else if escape.starts_with("\\0") {
            restyled.push_str("\\x00");
            2
        } else if let Some((code, length)) = ascii_control {
            let _ = write!(restyled, "\\x{code:02x}");
            length
        } else {
            restyled.push('\\');
            1
        };
        rest = &escape[taken..];
    }
    restyled.push_str(rest);
    Cow::Owned(restyled)
}

/// [`safe`] of a path as it is displayed.
pub fn safe_path(path: &Path) -> String {
    safe(&path.display().to_string()).into_owned()
}

fn needs_escape(character: char) -> bool {
    character.is_control()
        || matches!(
            character,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// How many columns `text` takes on a terminal: a CJK character or an
/// emoji two, a combining mark none.
pub fn display_width(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

/// `count` and the noun that goes with it: `1 movie`, `2 movies`.
pub fn counted(count: impl Into<u64>, one: &str, many: &str) -> String {
    let count = count.into();
    format!("{count} {}", if count == 1 { one } else { many })
}

/// A journal's size in words: `1 segment, 6 records, 654 bytes`.
pub fn journal_words(segments: usize, records: u64, bytes: u64) -> String {
    format!(
        "{}, {}, {}",
        counted(segments as u64, "segment", "segments"),
        counted(records, "record", "records"),
        counted(bytes, "byte", "bytes")
    )
}

/// Pads `text` to `width` columns (colour codes added after padding).
fn pad(text: &str, width: usize) -> String {
    format!("{text}{}", " ".repeat(width.saturating_sub(display_width(text))))
}

/// Writes an aligned table: a bold header row, then the rows. Columns in
/// `right` are right-aligned (numbers).
pub fn write_table(output: &mut Output, header: &[&str], rows: &[Vec<String>], right: &[usize]) -> std::io::Result<()> {
    write_table_block(output, Some(header), rows, right, &mut Vec::new())
}

/// One block of a table written in blocks (a long listing is never held
/// whole): `header` with the first block only; `widths` empty for the
/// first block, which sets them from its own cells, and kept for the
/// blocks after it (a wider cell there pushes only its own row).
pub fn write_table_block(
    output: &mut Output,
    header: Option<&[&str]>,
    rows: &[Vec<String>],
    right: &[usize],
    widths: &mut Vec<usize>,
) -> std::io::Result<()> {
    if widths.is_empty() {
        let titles = header.unwrap_or_default();
        let columns = titles.len().max(rows.first().map_or(0, Vec::len));
        *widths = (0..columns)
            .map(|column| titles.get(column).map_or(0, |title| display_width(title)))
            .collect();
        for row in rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(display_width(cell));
            }
        }
    }
    let widths = &*widths;
    let render = |cells: Vec<String>| -> String {
        let last = cells.len().saturating_sub(1);
        let mut line = String::new();
        for (column, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let padding = " ".repeat(width.saturating_sub(display_width(cell)));
            if right.contains(&column) {
                line.push_str(&padding);
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if column != last {
                    line.push_str(&padding);
                }
            }
            if column != last {
                line.push_str("  ");
            }
        }
        line.trim_end().to_owned()
    };
    if let Some(header) = header {
        let header_line = render(header.iter().map(|title| (*title).to_owned()).collect());
        writeln!(output.out, "{}", output.style.bold(&header_line))?;
    }
    for row in rows {
        writeln!(output.out, "{}", render(row.clone()))?;
    }
    Ok(())
}

/// The statistics as an aligned two-column table, each line after `indent`.
pub fn write_statistics(output: &mut Output, stats: &Statistics, indent: &str) -> std::io::Result<()> {
    let rows = [
        ("pending", stats.pending),
        ("in flight", stats.in_flight),
        ("failed", stats.failed),
        ("completed", stats.completed),
        ("permanent failures", stats.permanent_failures),
        ("removed", stats.removed),
    ];
    let width = rows.iter().map(|(_, count)| count.to_string().len()).max().unwrap_or(1);
    for (name, count) in rows {
        writeln!(output.out, "{indent}{}  {count:>width$}", pad(name, 18))?;
    }
    Ok(())
}

/// A Unix time as a local date-time, `2025-10-18 21:28:02`.
pub fn local_time(secs: f64) -> String {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "saturates; out-of-range times are shown as numbers"
    )]
    let micros = (secs * 1e6).round() as i64;
    match DateTime::from_timestamp_micros(micros) {
        Some(time) => time.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S").to_string(),
        None => format!("{secs}"),
    }
}

/// A time relative to now: `in 1h 59m`, `3m ago`, `in 2d 4h`.
pub fn relative_time(secs: f64, now: f64) -> String {
    let delta = secs - now;
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a non-negative, saturating count of seconds"
    )]
    let whole = delta.abs().round() as u64;
    let (minutes, hours, days) = (whole / 60, whole / 3600, whole / 86_400);
    let text = match whole {
        0..120 => format!("{whole}s"),
        120..3_600 => format!("{minutes}m"),
        3_600..86_400 if minutes % 60 == 0 => format!("{hours}h"),
        3_600..86_400 => format!("{hours}h {}m", minutes % 60),
        86_400..31_536_000 => format!("{days}d {}h", hours % 24),
        _ => format!("{} years", days / 365),
    };
    if delta >= 0.0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// `1 time`, `3 times`.
pub fn times(count: u32) -> String {
    if count == 1 {
        "1 time".to_owned()
    } else {
        format!("{count} times")
    }
}

/// `The Matrix (1999)`; a missing title or year is left out.
pub fn movie_label(movie: &Movie) -> String {
    match (movie.title(), movie.year()) {
        (Some(title), Some(year)) => format!("{} ({})", safe(title), safe(&year.to_string())),
        (Some(title), None) => safe(title).into_owned(),
        (None, Some(year)) => format!("({})", safe(&year.to_string())),
        (None, None) => String::new(),
    }
}

/// A movie's id as human output shows it ([`show_id`]).
pub fn movie_id(movie: &Movie) -> Cow<'_, str> {
    show_id(movie.id())
}

/// The version of the JSON line schema of `log --json` (and `show
/// --json`'s history): `docs/FORMAT.md`, "The event stream".
pub const EVENT_LINE_SCHEMA: u32 = 1;

/// An event record as one flat JSON object (a line of `log --json`):
/// `{"schema":1,"seq":…,"ts":…,"type":"added","v":2, …the event's fields}`.
pub fn event_json(record: &EventRecord) -> Value {
    let mut map = Map::new();
    map.insert("schema".into(), Value::from(EVENT_LINE_SCHEMA));
    map.insert("seq".into(), Value::from(record.seq.0));
    map.insert("ts".into(), Value::from(record.ts));
    map.insert("type".into(), Value::from(record.event.kind()));
    map.insert("v".into(), Value::from(record.version));
    if let Ok(Value::Object(outer)) = serde_json::to_value(&record.event) {
        for (_, inner) in outer {
            match inner {
                Value::Object(fields) => map.extend(fields),
                Value::Null => {}
                other => {
                    map.insert("value".into(), other);
                }
            }
        }
    }
    Value::Object(map)
}

/// Records the stream stepped over, as one line of the JSON stream: a
/// `skipped` line, whose `seq` is the last record skipped (a consumer's
/// resume point moves past them).
pub fn skipped_json(skipped: &movie_queue::Skipped) -> Value {
    let set_aside = skipped.set_aside.as_ref().map(|path| path.display().to_string());
    serde_json::json!({
        "schema": EVENT_LINE_SCHEMA,
        "seq": skipped.to.0,
        "type": "skipped",
        "from": skipped.from.0,
        "to": skipped.to.0,
        "reason": skipped.reason.name(),
        "set_aside": set_aside,
    })
}

/// An event record as one human line: `    12  2025-10-18 21:28:02  failed  123  …`.
pub fn event_line(style: Style, record: &EventRecord) -> String {
    let kind = record.event.kind();
    let padded = pad(kind, 16);
    let coloured = padded.replacen(kind, &style.event_kind(kind), 1);
    format!(
        "{:>6}  {}  {coloured}  {}",
        record.seq.0,
        style.dim(&local_time(record.ts)),
        event_summary(&record.event)
    )
}

fn ids_summary(ids: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = ids
        .iter()
        .take(SHOWN)
        .map(|id| show_id(id).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > SHOWN {
        text.push_str(" … (");
        text.push_str(&ids.len().to_string());
        text.push_str(" in all)");
    }
    text
}

/// What an event did, in a few words, safe to print.
pub fn event_summary(event: &Event) -> String {
    let summary = match event {
        Event::Added { movie } | Event::Completed { movie } | Event::Removed { movie } => {
            format!("{}  {}", movie_id(movie), movie_label(movie))
        }
        Event::Taken { id }
        | Event::MovedToPending { id }
        | Event::Reset { id }
        | Event::Restored { id }
        | Event::Forgotten { id } => show_id(id).into_owned(),
        Event::Failed {
            movie,
            error,
            retry_after,
        } => format!(
            "{}  {}  error \"{error}\", retry after {}",
            movie_id(movie),
            movie_label(movie),
            local_time(*retry_after)
        ),
        Event::CleanedUp { cutoff, ids } => format!(
            "{} removed (completed before {}): {}",
            ids.len(),
            local_time(*cutoff),
            ids_summary(ids)
        ),
        Event::Requeued { ids } => format!("{} back to the front of pending: {}", ids.len(), ids_summary(ids)),
        Event::MarkedRemoved { ids } => format!("{} left the watchlist: {}", ids.len(), ids_summary(ids)),
        Event::Imported {
            pending,
            failed,
            completed,
            removed,
        } => format!(
            "{} pending, {} failed, {} completed, {} removed",
            pending.len(),
            failed.len(),
            completed.len(),
            removed.len()
        ),
        // A kind added after this build: its name says what happened.
        _ => event.kind().to_owned(),
    };
    safe(&summary).into_owned()
}

/// The `retry_count` column: empty for a movie that never failed.
pub fn retries(entry: &QueueEntry) -> String {
    if entry.retry_count == 0 {
        String::new()
    } else {
        entry.retry_count.to_string()
    }
}

/// A JSON line on stdout.
pub fn write_json(output: &mut Output, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string(value)?;
    writeln!(output.out, "{text}")?;
    Ok(())
}

/// Work that reads fewer bytes than this shows no progress bar.
const PROGRESS_BYTES_MIN: u64 = 4 << 20;

/// A progress bar on stderr for long work (`verify`, `replay`, `import`,
/// `compact`), counting the bytes the library reads against `total`:
/// shown only when stderr is a terminal and the work reads at least 4 MiB
/// (nothing at all when piped); cleared when dropped.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// A bar for work `label` that reads about `total` bytes.
    pub fn bytes(label: &str, total: u64) -> Self {
        if total < PROGRESS_BYTES_MIN || !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let style = indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes}, {eta} left")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr())
            .with_style(style)
            .with_message(label.to_owned());
        Progress { bar: Some(bar) }
    }

    /// `options` reporting their reads to the bar (unchanged without one).
    pub fn options(&self, options: movie_queue::Options) -> movie_queue::Options {
        match &self.bar {
            Some(bar) => {
                let bar = bar.clone();
                options.on_read(std::sync::Arc::new(move |read| {
                    bar.inc(read);
                    // The total is an estimate: grow it rather than pass 100 %.
                    if bar.length().is_some_and(|length| bar.position() > length) {
                        bar.set_length(bar.position());
                    }
                }))
            }
            None => options,
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The bytes of the store's files in `dir` (journal and documented files),
/// the journal's `journal_reads` times: what long work on it reads, about.
pub fn store_bytes_reading_journal(dir: &Path, journal_reads: u64) -> u64 {
    let sizes = |dir: &Path| -> u64 {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.metadata().ok())
            .filter(std::fs::Metadata::is_file)
            .map(|metadata| metadata.len())
            .sum()
    };
    sizes(dir) + journal_reads * sizes(&movie_queue::Layout::new(dir).journal())
}

/// [`store_bytes_reading_journal`], the journal read once.
pub fn store_bytes(dir: &Path) -> u64 {
    store_bytes_reading_journal(dir, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use movie_queue::Seq;
    use serde_json::json;

    #[test]
    fn control_characters_are_escaped_and_the_rest_is_kept() {
        assert!(matches!(safe("The Matrix \\ Ü"), Cow::Borrowed("The Matrix \\ Ü")));
        assert_eq!(
            safe("a\nb\rc\td\x1b[31m\x7f\u{9b}\u{202e}\u{2066}\u{2028}"),
            r"a\nb\rc\td\x1b[31m\x7f\u{9b}\u{202e}\u{2066}\u{2028}"
        );
        assert_eq!(safe_path(Path::new("/tmp/a\nb")), r"/tmp/a\nb");
    }

    #[test]
    fn debug_escapes_of_ascii_controls_are_restyled_and_nothing_else() {
        assert!(matches!(restyle_debug_escapes("plain"), Cow::Borrowed("plain")));
        let debug = format!("{:?}", "a\x1b[31m\0\x7f\n\u{202e}\u{9b}\\u{1b}");
        assert_eq!(
            restyle_debug_escapes(&debug),
            r#""a\x1b[31m\x00\x7f\n\u{202e}\u{9b}\\u{1b}""#
        );
        assert_eq!(restyle_debug_escapes(r"a\u{zz} b\"), r"a\u{zz} b\");
    }

    #[test]
    fn an_id_that_would_not_stand_out_is_quoted() {
        assert_eq!(show_id("603"), "603");
        assert_eq!(show_id("a b"), "a b");
        assert_eq!(show_id("   "), r#""   ""#);
        assert_eq!(show_id(""), r#""""#);
        assert_eq!(show_id(" a\x1b"), r#"" a\x1b""#);
        assert_eq!(show_id("a\u{a0}"), "\"a\u{a0}\"");
        assert_eq!(show_id("\"x\""), r#"""x"""#);
        assert_eq!(quoted("n\x1b"), r#""n\x1b""#);
    }

    #[test]
    fn relative_times_read_naturally() {
        assert_eq!(relative_time(1_000.0 + 7_200.0, 1_000.0), "in 2h");
        assert_eq!(relative_time(1_000.0 + 3_660.0, 1_000.0), "in 1h 1m");
        assert_eq!(relative_time(1_000.0, 1_300.0), "5m ago");
        assert_eq!(relative_time(0.0, 86_400.0 * 800.0), "2 years ago");
        assert_eq!(relative_time(f64::NAN, 0.0), "0s ago");
    }

    #[test]
    fn an_event_record_flattens_to_one_object() {
        let record = EventRecord::new(
            Seq(7),
            1_760_806_482.5,
            Event::Failed {
                movie: Movie::new("1", "Heat", 1995),
                error: "boom".into(),
                retry_after: 1_760_810_082.5,
            },
        );
        assert_eq!(
            event_json(&record).to_string(),
            json!({"schema": 1, "seq": 7, "ts": 1_760_806_482.5, "type": "failed", "v": 2,
                   "movie": {"id": "1", "title": "Heat", "year": 1995},
                   "error": "boom", "retry_after": 1_760_810_082.5})
            .to_string()
        );
        assert!(event_line(Style { enabled: false }, &record).contains("failed            1  Heat (1995)"));
    }
}
