//! The reading commands: each opens the store read-only (no lock, no
//! writes), so it works while another process holds the store for writing.

use std::io::Write;
use std::path::Path;

use movie_queue::{Place, QueueEntry, QueueManager, Seq, Until, now};
use serde_json::json;

use super::args::{ListArgs, ListWhich, LogArgs, ReplayArgs, UntilArg};
use super::held::holder_for_reading;
use super::output::{
    Output, Progress, event_json, event_line, local_time, movie_label, quoted, relative_time, retries, safe, safe_path,
    show_id, skipped_json, store_bytes, write_json, write_statistics, write_table_block,
};
use super::{fail_with_hint, open_reader, require_directory};

/// `stats [--json]`: read from the snapshot's counts and the journal after
/// it (the whole store is loaded only when it is not in that shape).
pub fn stats(output: &mut Output, dir: &Path, json: bool) -> anyhow::Result<()> {
    require_directory(dir)?;
    let held = holder_for_reading(dir).and_then(|mut holder| holder.get_statistics().ok());
    let stats = match held {
        Some(stats) => stats,
        None => QueueManager::options().statistics(dir)?,
    };
    if json {
        return write_json(output, &stats);
    }
    write_statistics(output, &stats, "")?;
    // The journal's identity (`movie_queue::store_id`): a line of its own,
    // after the counts.
    let id = match movie_queue::store_id(dir) {
        Ok(Some(id)) => id.to_string(),
        Ok(None) => "none yet (a writer's open gives the store one)".to_owned(),
        Err(error) => format!("unreadable: {}", safe(&super::describe(&error))),
    };
    writeln!(output.out, "store id            {id}")?;
    Ok(())
}

/// `list QUEUE [--limit N] [--offset N] [--json]`: streamed (the library
/// holds only the movies the journal after the snapshot names, the rest
/// come from the documented file), written in blocks, so its memory does
/// not grow with the queue.
pub fn list(output: &mut Output, dir: &Path, args: &ListArgs) -> anyhow::Result<()> {
    require_directory(dir)?;
    let max_retries = args
        .max_retries
        .unwrap_or(movie_queue::RetryPolicy::default().max_retries);
    let (place, permanent) = match args.which {
        ListWhich::Pending => (Place::Pending, false),
        ListWhich::InFlight => (Place::InFlight, false),
        ListWhich::Failed => (Place::Failed, false),
        ListWhich::Completed => (Place::Completed, false),
        ListWhich::Removed => (Place::Removed, false),
        ListWhich::Permanent => (Place::Failed, true),
    };
    let limit = args.limit.unwrap_or(usize::MAX);
    // Permanent failures are counted among themselves: skipped here.
    let (skip, mut to_skip) = if permanent { (0, args.offset) } else { (args.offset, 0) };
    let mut sink = ListSink::new(output, args.which, args.json.json, args.offset);
    let mut failed = None;
    let mut visit = |entry: QueueEntry| {
        if permanent && entry.retry_count < max_retries {
            return true;
        }
        if to_skip > 0 {
            to_skip -= 1;
            return true;
        }
        match sink.push(entry) {
            Ok(()) => sink.count < limit,
            Err(error) => {
                failed = Some(error);
                false
            }
        }
    };
    if limit > 0 {
        let wanted = (!permanent).then_some(limit);
        let held = holder_for_reading(dir).and_then(|mut holder| holder.list(place, skip, wanted).ok());
        match held {
            Some(entries) => {
                for entry in entries {
                    if !visit(entry) {
                        break;
                    }
                }
            }
            None => QueueManager::options().list(dir, place, skip, visit)?,
        }
    }
    if let Some(error) = failed {
        return Err(error);
    }
    sink.finish()
}

/// Rows of a listing as they come: JSON values one after the other in one
/// array, or the table in blocks of [`BLOCK`] rows.
struct ListSink<'a> {
    output: &'a mut Output,
    which: ListWhich,
    json: bool,
    /// The `#` of the first row, less one.
    first: usize,
    block: Vec<QueueEntry>,
    widths: Vec<usize>,
    count: usize,
}

/// The rows a table block holds.
const BLOCK: usize = 1_000;

impl<'a> ListSink<'a> {
    fn new(output: &'a mut Output, which: ListWhich, json: bool, first: usize) -> Self {
        ListSink {
            output,
            which,
            json,
            first,
            block: Vec::new(),
            widths: Vec::new(),
            count: 0,
        }
    }

    fn push(&mut self, entry: QueueEntry) -> anyhow::Result<()> {
        self.count += 1;
        if self.json {
            let separator = if self.count == 1 { "[" } else { "," };
            write!(
                self.output.out,
                "{separator}{}",
                serde_json::to_string(&entry.to_value())?
            )?;
            return Ok(());
        }
        self.block.push(entry);
        if self.block.len() == BLOCK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        let first = self.first + self.count - self.block.len();
        let (header, rows, right) = entry_table(self.which, &self.block, self.output.style, first);
        let header = self.widths.is_empty().then_some(header.as_slice());
        write_table_block(self.output, header, &rows, &right, &mut self.widths)?;
        self.block.clear();
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        if self.json {
            writeln!(self.output.out, "{}", if self.count == 0 { "[]" } else { "]" })?;
            return Ok(());
        }
        if self.count == 0 {
            let which = which_name(self.which);
            match self.first {
                0 => writeln!(self.output.out, "no movies {which}")?,
                skipped => writeln!(
                    self.output.out,
                    "no movies {which} after the first {skipped} (--offset {skipped})"
                )?,
            }
            return Ok(());
        }
        if !self.block.is_empty() {
            self.flush()?;
        }
        Ok(())
    }
}

fn which_name(which: ListWhich) -> &'static str {
    match which {
        ListWhich::Pending => "pending",
        ListWhich::InFlight => "in flight",
        ListWhich::Failed => "failed",
        ListWhich::Completed => "completed",
        ListWhich::Removed => "removed",
        ListWhich::Permanent => "failed permanently",
    }
}

pub(super) type Table = (Vec<&'static str>, Vec<Vec<String>>, Vec<usize>);

pub(super) fn entry_table(
    which: ListWhich,
    entries: &[QueueEntry],
    style: super::output::Style,
    first: usize,
) -> Table {
    let now = now();
    let base = |entry: &QueueEntry| {
        vec![
            show_id(entry.id()).into_owned(),
            safe(entry.movie.title().unwrap_or_default()).into_owned(),
            safe(&entry.movie.year().map(ToString::to_string).unwrap_or_default()).into_owned(),
        ]
    };
    let retry_after = |entry: &QueueEntry| match entry.retry_after {
        Some(time) if time <= now => style.green("ready"),
        Some(time) => format!("{} ({})", local_time(time), relative_time(time, now)),
        None => String::new(),
    };
    match which {
        ListWhich::Pending | ListWhich::InFlight => {
            let rows = entries
                .iter()
                .enumerate()
                .map(|(index, entry)| {
                    let mut row = vec![(first + index + 1).to_string()];
                    row.extend(base(entry));
                    row.push(retries(entry));
                    row
                })
                .collect();
            (vec!["#", "ID", "TITLE", "YEAR", "RETRIES"], rows, vec![0, 4])
        }
        ListWhich::Failed | ListWhich::Permanent => {
            let rows = entries
                .iter()
                .map(|entry| {
                    let mut row = base(entry);
                    row.push(retries(entry));
                    row.push(retry_after(entry));
                    row.push(entry.failed_at.map(local_time).unwrap_or_default());
                    row.push(safe(entry.last_error.as_deref().unwrap_or_default()).into_owned());
                    row
                })
                .collect();
            let header = vec![
                "ID",
                "TITLE",
                "YEAR",
                "RETRIES",
                "RETRY AFTER",
                "FIRST FAILED",
                "LAST ERROR",
            ];
            (header, rows, vec![3])
        }
        ListWhich::Completed | ListWhich::Removed => {
            let (time, column): (fn(&QueueEntry) -> Option<f64>, _) = if which == ListWhich::Completed {
                (|entry| entry.completed_at, "COMPLETED AT")
            } else {
                (|entry| entry.removed_at, "REMOVED AT")
            };
            let rows = entries
                .iter()
                .map(|entry| {
                    let mut row = base(entry);
                    row.push(time(entry).map(local_time).unwrap_or_default());
                    row
                })
                .collect();
            (vec!["ID", "TITLE", "YEAR", column], rows, vec![])
        }
    }
}

/// The name of a place in JSON and in addresses (`in_flight`).
pub(super) fn place_name(place: Place) -> &'static str {
    place.key()
}

/// `show ID [--json]`: where the movie is now, and every event about it.
/// Where the movie `id` is now, and its entry: the holder's answer, or
/// read from disk.
fn current_of(dir: &Path, id: &str) -> anyhow::Result<Option<(Place, QueueEntry)>> {
    let held = holder_for_reading(dir).and_then(|mut holder| holder.get(id).ok());
    match held {
        Some(current) => Ok(current),
        None => Ok(QueueManager::options().lookup(dir, id)?),
    }
}

pub fn show(output: &mut Output, dir: &Path, id: &str, json: bool) -> anyhow::Result<()> {
    require_directory(dir)?;
    // Found through the snapshot's index (the whole store is loaded only
    // when it is not in that shape).
    let current = current_of(dir, id)?;
    // The events about it, and the holes `repair` recorded that the
    // stream stepped over (any of them may have held one of its events).
    let (mut history, mut skipped) = (Vec::new(), Vec::new());
    // Only its records are decoded.
    let mut events = movie_queue::events(dir, Seq(0))?.concerning(id);
    while let Some(record) = events.next() {
        history.push(record?);
        skipped.extend(std::iter::from_fn(|| events.take_skipped()));
    }
    skipped.extend(std::iter::from_fn(|| events.take_skipped()));
    if current.is_none() && history.is_empty() {
        return fail_with_hint(
            format!("no movie with id {} in {}", quoted(id), dir.display()),
            "`movie-queue list pending` (or in-flight, failed, completed, removed, permanent) shows what the store holds",
        );
    }
    if json {
        let value = json!({
            "id": id,
            "place": current.as_ref().map(|(place, _)| place_name(*place)),
            "entry": current.as_ref().map(|(_, entry)| entry.to_value()),
            "history": history.iter().map(event_json).collect::<Vec<_>>(),
            "skipped": skipped.iter().map(|skipped| json!({
                "from": skipped.from.0,
                "to": skipped.to.0,
                "reason": skipped.reason.name(),
                "set_aside": skipped.set_aside.as_ref().map(|path| path.display().to_string()),
            })).collect::<Vec<_>>(),
        });
        return write_json(output, &value);
    }
    for hole in &skipped {
        write_skipped(output, hole, false)?;
    }
    let style = output.style;
    match &current {
        Some((place, entry)) => {
            let title = movie_label(&entry.movie);
            writeln!(
                output.out,
                "{}  {}",
                style.bold(&title),
                style.yellow(&format!("[{place}]"))
            )?;
            let fields = entry_fields(entry);
            let width = fields
                .iter()
                .map(|(name, _)| crate::output::display_width(&safe(name)))
                .max()
                .unwrap_or(0)
                .max(13);
            writeln!(output.out, "  {:<width$} {}", "id", show_id(entry.id()))?;
            for (name, value) in fields {
                let name = safe(&name);
                let padding = " ".repeat(width.saturating_sub(crate::output::display_width(&name)));
                writeln!(output.out, "  {name}{padding} {}", safe(&value))?;
            }
        }
        None => writeln!(
            output.out,
            "{}: no longer in the store (cleaned up); its history follows",
            show_id(id)
        )?,
    }
    writeln!(output.out, "\n{}", style.bold("history"))?;
    for record in &history {
        writeln!(output.out, "{}", event_line(style, record))?;
    }
    Ok(())
}

/// The fields of an entry worth showing after its id, as (name, text).
fn entry_fields(entry: &QueueEntry) -> Vec<(String, String)> {
    let now = now();
    let movie = &entry.movie;
    let mut fields = Vec::new();
    if let Some(slug) = movie.slug() {
        fields.push(("slug".into(), slug.to_owned()));
    }
    if let Some(imdb_id) = movie.imdb_id() {
        fields.push(("imdb_id".into(), imdb_id.to_owned()));
    }
    // The application's fields as a person reads them: a text without its
    // quotes, a time (`queued_at`, `last_failed_at`, any `…_at` number) as
    // a local date-time; anything else as its JSON.
    for (key, value) in movie.extra() {
        let text = match value {
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Number(number) if key.ends_with("_at") => number.as_f64().map_or_else(
                || number.to_string(),
                |time| format!("{} ({})", local_time(time), relative_time(time, now)),
            ),
            other => other.to_string(),
        };
        fields.push((key.clone(), text));
    }
    if entry.retry_count > 0 {
        fields.push(("retry count".into(), entry.retry_count.to_string()));
    }
    if let Some(error) = &entry.last_error {
        fields.push(("last error".into(), error.clone()));
    }
    let times = [
        ("retry after", entry.retry_after),
        ("first failed", entry.failed_at),
        ("completed at", entry.completed_at),
        ("removed at", entry.removed_at),
    ];
    for (name, time) in times {
        if let Some(time) = time {
            fields.push((
                name.into(),
                format!("{} ({})", local_time(time), relative_time(time, now)),
            ));
        }
    }
    fields
}

/// `log [--json] [--id ID] [--since SEQ] [--follow]`: the events read
/// lazily from the journal (no open of the whole store); `--follow` reads
/// only new bytes, across segment rolls, `compact` and a writer's restart.
pub fn log(output: &mut Output, dir: &Path, args: &LogArgs) -> anyhow::Result<()> {
    super::require_directory(dir)?;
    let from = Seq(args.since.unwrap_or(0));
    let events = if args.follow {
        movie_queue::follow(dir, from)?
    } else {
        movie_queue::events(dir, from)?
    };
    let style = output.style;
    // `--id`: only its records are decoded.
    let mut events = match &args.id {
        Some(id) => events.concerning(id),
        None => events,
    };
    while let Some(record) = events.next() {
        let record = record?;
        while let Some(skipped) = events.take_skipped() {
            write_skipped(output, &skipped, args.json)?;
        }
        if args.json {
            writeln!(output.out, "{}", serde_json::to_string(&event_json(&record))?)?;
        } else {
            writeln!(output.out, "{}", event_line(style, &record))?;
        }
        if args.follow {
            output.out.flush()?;
        }
    }
    while let Some(skipped) = events.take_skipped() {
        write_skipped(output, &skipped, args.json)?;
    }
    Ok(())
}

/// Says where the stream stepped over records: a `skipped` line in the
/// JSON stream (in-band, with the last record skipped as its `seq`, so a
/// consumer's resume point moves past them), a warning on stderr for people.
fn write_skipped(output: &mut Output, skipped: &movie_queue::Skipped, json: bool) -> anyhow::Result<()> {
    if json {
        writeln!(output.out, "{}", serde_json::to_string(&skipped_json(skipped))?)?;
        return Ok(());
    }
    let set_aside = skipped.set_aside.as_ref().map(|path| path.display().to_string());
    let (records, were, their) = if skipped.from == skipped.to {
        (format!("record {}", skipped.from), "was", "its")
    } else {
        (format!("records {} to {}", skipped.from, skipped.to), "were", "their")
    };
    output.out.flush()?;
    super::warn(&match (skipped.reason, set_aside) {
        (movie_queue::SkipReason::Damaged, Some(path)) => format!(
            "{records} {were} skipped: {their} bytes were damaged, and `repair` copied them to {} (the \
             compaction base holds the state they made)",
            safe(&path)
        ),
        (movie_queue::SkipReason::Damaged, None) => format!(
            "{records} {were} skipped: {their} bytes were damaged (all zeros, nothing to keep); the \
             compaction base holds the state they made"
        ),
        _ => format!(
            "{records} {were} skipped, not in the journal: recovery or `repair` kept the resulting state as the \
             compaction base (journal/base.json); {their} bytes, if any survive, are set aside in journal/*.broken"
        ),
    });
    Ok(())
}

/// `replay --until SEQ|TIME [--json] [--out DIR]`: reads the journal only
/// as far as the target (no open of the whole store), so damage after it
/// does not stop the answer.
pub fn replay(output: &mut Output, dir: &Path, args: &ReplayArgs) -> anyhow::Result<()> {
    super::require_directory(dir)?;
    let until = match args.until {
        UntilArg::Seq(seq) => Until::Seq(Seq(seq)),
        UntilArg::Time(time) => Until::Time(time),
    };
    let progress = Progress::bytes("replaying", store_bytes(dir));
    let replayed = progress.options(movie_queue::Options::default()).replay(dir, until)?;
    drop(progress);
    let stats = replayed
        .state
        .statistics(movie_queue::RetryPolicy::default().max_retries);
    if let Some(out) = &args.out {
        write_queue_files(dir, out, &replayed.state)?;
    }
    if args.json {
        return write_json(output, &stats);
    }
    let stamped = replayed
        .ts
        .map(|ts| format!(", stamped {}", local_time(ts)))
        .unwrap_or_default();
    let heading = match args.until {
        UntilArg::Seq(seq) => format!("as of record {seq}{stamped}"),
        UntilArg::Time(time) => format!("as of {} (record {}{stamped})", local_time(time), replayed.seq),
    };
    writeln!(output.out, "{}", output.style.bold(&heading))?;
    write_statistics(output, &stats, "")?;
    if replayed.unread_after {
        writeln!(
            output.out,
            "{}",
            output.style.dim(&format!(
                "(the journal was read through record {} only: what follows it cannot change this state, \
                 and damage there does not stop a replay; `movie-queue verify` checks the whole journal)",
                replayed.seq
            ))
        )?;
    }
    if let Some(out) = &args.out {
        writeln!(
            output.out,
            "wrote queue_pending.json, queue_failed.json, queue_completed.json and queue_removed.json to {}",
            safe_path(out)
        )?;
    }
    Ok(())
}

/// Writes the four documented files of `state` into `out` (never into the store).
fn write_queue_files(dir: &Path, out: &Path, state: &movie_queue::QueueState) -> anyhow::Result<()> {
    super::out_dir::check(dir, out)?;
    Ok(movie_queue::export_state(state, out)?)
}

/// `export DIR`: the four documented files of the current state.
pub fn export(output: &mut Output, dir: &Path, target: &Path) -> anyhow::Result<()> {
    let qm = open_reader(dir)?;
    super::out_dir::check(dir, target)?;
    qm.export(target)?;
    let stats = qm.get_statistics();
    writeln!(
        output.out,
        "wrote queue_pending.json ({}), queue_failed.json ({}), queue_completed.json ({}) and queue_removed.json ({}) \
         to {}",
        entries(stats.pending + stats.in_flight),
        entries(stats.failed),
        entries(stats.completed),
        entries(stats.removed),
        safe_path(target)
    )?;
    Ok(())
}

/// `1 entry`, `3 entries`.
fn entries(count: usize) -> String {
    if count == 1 {
        "1 entry".to_owned()
    } else {
        format!("{count} entries")
    }
}
