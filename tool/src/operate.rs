//! The mutating commands: each opens the store with the writer lock (movies
//! in flight stay in flight), does one thing and closes it (a clean close
//! writes the snapshot).

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::{BufRead, Write};
use std::path::Path;

use movie_queue::{MOVIE_NESTING_MAX, Movie, Place, now};
use serde_json::Value;

use super::args::{AddArgs, FailArgs};
use super::held::Store;
use super::output::{
    Output, Progress, local_time, movie_id, movie_label, quoted, relative_time, safe, safe_path, show_id, store_bytes,
    times,
};
use super::{close_writer, describe, fail, fail_with_hint, open_writer, writer_options};

/// Opens the writer, runs `work`, closes (see [`close_writer`]: a failure
/// after every change is durable is a warning, not an error). When
/// another process holds the store, `work` asks it instead, through its
/// control socket (see [`Store`]); a holder that does not answer there is
/// an error that says so.
pub(super) fn with_writer<T>(dir: &Path, work: impl FnOnce(&Store) -> anyhow::Result<T>) -> anyhow::Result<T> {
    require_store(dir)?;
    with_writer_creating(dir, work)
}

/// [`with_writer`], creating the store when `dir` holds none (`add`).
pub(super) fn with_writer_creating<T>(dir: &Path, work: impl FnOnce(&Store) -> anyhow::Result<T>) -> anyhow::Result<T> {
    let store = match open_writer(dir) {
        Ok(qm) => Store::Local(qm),
        Err(error)
            if matches!(
                error.downcast_ref::<movie_queue::Error>(),
                Some(movie_queue::Error::Locked { .. })
            ) =>
        {
            Store::Held(RefCell::new(movie_queue::Control::connect(dir)?))
        }
        Err(error) => return Err(error),
    };
    let result = work(&store);
    match store {
        Store::Local(qm) => close_writer(qm, result),
        Store::Held(_) => result,
    }
}

/// Refuses a `--dir` that holds no store (missing, or a directory without
/// one) for a command that changes a store: only `add`, `import` and `demo`
/// create one, so a mistyped directory is said, never made into a new store.
pub(super) fn require_store(dir: &Path) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(dir).is_err_and(|error| error.kind() == std::io::ErrorKind::NotFound) {
        return fail_with_hint(
            format!("no store at {}: the directory does not exist", safe_path(dir)),
            "check --dir (or $MOVIE_QUEUE_DIR); `movie-queue add` creates a store",
        );
    }
    super::require_directory(dir)
}

pub(super) fn unknown_id<T>(id: &str, dir: &Path) -> anyhow::Result<T> {
    fail_with_hint(
        format!("no movie with id {} in {}", quoted(id), dir.display()),
        "`movie-queue list pending` (or in-flight, failed, completed, removed, permanent) shows what the store holds",
    )
}

/// A movie to add, with the stdin line it came from (`None`: from flags or `--json OBJ`).
type Candidate = (Option<usize>, Movie);

/// What to do about a line that stops `add --json -`.
const NOTHING_ADDED: &str = "nothing was added; give one JSON object a line, each with \"id\", \"title\" and \"year\"";

/// `add`: from flags, one JSON object, or JSON lines on stdin (one batch:
/// every line is read and checked before the first is added, so a bad line
/// adds nothing; a run killed part-way keeps the movies already written).
pub fn add(output: &mut Output, dir: &Path, args: &AddArgs) -> anyhow::Result<()> {
    let candidates = match args.json.as_deref() {
        Some("-") => read_movie_lines(std::io::stdin().lock())?,
        Some(text) => vec![(
            None,
            parse_movie(text).or_else(|message| fail(format!("--json: {message}")))?,
        )],
        None => vec![(None, movie_from_flags(args)?)],
    };
    if candidates.is_empty() {
        writeln!(output.out, "no movies on stdin; nothing added")?;
        return Ok(());
    }
    with_writer_creating(dir, |qm| {
        check_limits(qm, &candidates)?;
        let verdicts = verdicts(qm, &candidates)?;
        let expected = verdicts.iter().filter(|verdict| verdict.is_none()).count();
        let added = qm.add_many_to_pending(candidates.iter().map(|(_, movie)| movie.clone()).collect())?;
        if added != expected {
            return fail(format!(
                "added {added} movies where {expected} were expected; `movie-queue list pending` shows the result"
            ));
        }
        let style = output.style;
        for ((_, movie), verdict) in candidates.iter().zip(&verdicts) {
            match verdict {
                None => writeln!(
                    output.out,
                    "{} {}  {}",
                    style.green("added"),
                    movie_id(movie),
                    movie_label(movie)
                )?,
                Some(why) => writeln!(
                    output.out,
                    "{} {}  {} ({why})",
                    style.yellow("skipped"),
                    movie_id(movie),
                    movie_label(movie)
                )?,
            }
        }
        if candidates.len() > 1 {
            writeln!(output.out, "{added} added, {} skipped", candidates.len() - added)?;
        }
        Ok(())
    })
}

/// Checks every movie against the store's limits (a valid movie, its event
/// under the record size limit) before the first is added, so that a bad
/// line adds nothing; the error names the stdin line.
fn check_limits(qm: &Store, candidates: &[Candidate]) -> anyhow::Result<()> {
    for (line, movie) in candidates {
        if let Err(error) = qm.check_addable(movie) {
            // The holder not answering says nothing about the line.
            let about_the_line = matches!(
                error,
                movie_queue::Error::InvalidMovie(_)
                    | movie_queue::Error::InvalidArgument(_)
                    | movie_queue::Error::EventTooLarge { .. }
            );
            return match line {
                Some(number) if about_the_line => {
                    fail_with_hint(format!("stdin line {number}: {}", describe(&error)), NOTHING_ADDED)
                }
                _ => Err(error.into()),
            };
        }
    }
    Ok(())
}

/// For each movie: `None` if it will be added, else why it is skipped.
fn verdicts(qm: &Store, candidates: &[Candidate]) -> anyhow::Result<Vec<Option<String>>> {
    let mut seen = HashMap::new();
    candidates
        .iter()
        .map(|(line, movie)| match qm.get(movie.id())? {
            Some((place, _)) => Ok(Some(format!("duplicate: already {place}"))),
            None => Ok(match seen.entry(movie.id()) {
                Entry::Occupied(first) => Some(match first.get() {
                    Some(number) => format!("duplicate of line {number}"),
                    None => "duplicate of an earlier movie".to_owned(),
                }),
                Entry::Vacant(vacant) => {
                    vacant.insert(*line);
                    None
                }
            }),
        })
        .collect()
}

fn movie_from_flags(args: &AddArgs) -> anyhow::Result<Movie> {
    let (Some(id), Some(title), Some(year)) = (&args.id, &args.title, &args.year) else {
        return fail("add needs --id, --title and --year, or --json");
    };
    if id.is_empty() {
        return fail("--id must not be empty");
    }
    let mut movie = Movie::new(id.as_str(), title.as_str(), year.as_str());
    if let Some(slug) = &args.slug {
        movie = movie.with_slug(slug.as_str());
    }
    if let Some(imdb_id) = &args.imdb_id {
        movie = movie.with_imdb_id(imdb_id.as_str());
    }
    Ok(movie)
}

/// One movie from a JSON object; the error says what is wrong.
fn parse_movie(text: &str) -> Result<Movie, String> {
    let value: Value = serde_json::from_str(text).map_err(|error| {
        if error.is_syntax() && error.to_string().starts_with("recursion limit exceeded") {
            format!("the movie nests deeper than the limit of {MOVIE_NESTING_MAX} levels ({error})")
        } else {
            format!("not valid JSON: {error}")
        }
    })?;
    let movie = Movie::from_value(value).map_err(|error| describe(&error))?;
    // Checked here too, so a batch stops before its first add.
    movie.validate().map_err(|error| describe(&error))?;
    Ok(movie)
}

/// One movie a line (blank lines skipped), each with its line number; an
/// error names the line.
fn read_movie_lines(input: impl BufRead) -> anyhow::Result<Vec<Candidate>> {
    let mut movies = Vec::new();
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line = match line {
            Ok(line) => line,
            Err(error) => return fail_with_hint(format!("stdin line {number}: {error}"), NOTHING_ADDED),
        };
        if line.trim().is_empty() {
            continue;
        }
        match parse_movie(&line) {
            Ok(movie) => movies.push((Some(number), movie)),
            Err(message) => return fail_with_hint(format!("stdin line {number}: {message}"), NOTHING_ADDED),
        }
    }
    Ok(movies)
}

/// `next`: the taken movie as one JSON line; nothing when pending is empty.
pub fn next(output: &mut Output, dir: &Path) -> anyhow::Result<()> {
    let taken = with_writer(dir, |qm| Ok(qm.get_next_pending()?))?;
    if let Some(movie) = taken {
        super::output::write_json(output, &movie)?;
    }
    Ok(())
}

/// `complete ID`.
pub fn complete(output: &mut Output, dir: &Path, id: &str) -> anyhow::Result<()> {
    with_writer(dir, |qm| match qm.get(id)? {
        None => unknown_id(id, dir),
        Some((Place::Completed, _)) => {
            writeln!(output.out, "{} is already completed; nothing changed", show_id(id))?;
            Ok(())
        }
        Some((place, entry)) => {
            let label = movie_label(&entry.movie);
            qm.add_to_completed(entry.movie)?;
            writeln!(
                output.out,
                "{} {}  {label} (was {place})",
                output.style.green("completed"),
                show_id(id)
            )?;
            Ok(())
        }
    })
}

/// `fail ID --error MSG [--retry-after T | --retry-in D]`.
pub fn fail_movie(output: &mut Output, dir: &Path, args: &FailArgs) -> anyhow::Result<()> {
    let id = args.id.as_str();
    with_writer(dir, |qm| {
        let movie = match qm.get(id)? {
            None => return unknown_id(id, dir),
            Some((Place::Completed, _)) => {
                return fail(format!(
                    "movie {} is completed; a completed movie cannot fail",
                    quoted(id)
                ));
            }
            Some((_, entry)) => entry.movie,
        };
        let label = movie_label(&movie);
        let requested = args
            .retry_after
            .or_else(|| args.retry_in.map(|delay| now() + delay.as_secs_f64()));
        let retry_after = match requested {
            Some(time) => {
                qm.add_to_failed(movie, args.error.as_str(), Some(time))?;
                time
            }
            None => match qm.fail_with_backoff(movie, args.error.as_str())? {
                Some(time) => time,
                None => {
                    return fail(format!(
                        "movie {} is completed; a completed movie cannot fail",
                        quoted(id)
                    ));
                }
            },
        };
        let retry_count = qm.get(id)?.map_or(0, |(_, entry)| entry.retry_count);
        let max_retries = qm.max_retries();
        writeln!(
            output.out,
            "{} {}  {label}: failure {retry_count}, retry after {} ({})",
            output.style.red("failed"),
            show_id(id),
            local_time(retry_after),
            relative_time(retry_after, now())
        )?;
        if retry_count >= max_retries {
            writeln!(
                output.out,
                "{shown} has failed {} (max {max_retries}): a permanent failure; \
                 `movie-queue reset {shown}` gives it a fresh start",
                times(retry_count),
                shown = show_id(id)
            )?;
        }
        Ok(())
    })
}

/// `retry [--max-retries N]`: every ready movie to the back of pending.
pub fn retry(output: &mut Output, dir: &Path, max_retries: Option<u32>) -> anyhow::Result<()> {
    with_writer(dir, |qm| {
        // Every failed movie is looked at: the whole state, loaded here so
        // a store that cannot be read whole is an error, not a panic.
        qm.load()?;
        let max_retries = max_retries.unwrap_or_else(|| qm.max_retries());
        let ready = qm.get_movies_ready_for_retry(max_retries)?;
        let mut moved = 0;
        for entry in &ready {
            if qm.move_failed_to_pending(entry.id())? {
                moved += 1;
                writeln!(
                    output.out,
                    "{} {}  {} (failed {}; last error \"{}\")",
                    output.style.cyan("pending again"),
                    show_id(entry.id()),
                    movie_label(&entry.movie),
                    times(entry.retry_count),
                    safe(entry.last_error.as_deref().unwrap_or(""))
                )?;
            }
        }
        if moved > 0 {
            writeln!(output.out, "{moved} moved back to pending")?;
            return Ok(());
        }
        let waiting = qm
            .list(Place::Failed)?
            .into_iter()
            .filter(|entry| entry.retry_count < max_retries)
            .filter_map(|entry| entry.retry_after)
            .min_by(f64::total_cmp);
        match waiting {
            Some(time) => writeln!(
                output.out,
                "no failed movie is ready for retry yet; the next is ready at {} ({})",
                local_time(time),
                relative_time(time, now())
            )?,
            None => writeln!(output.out, "no failed movie is ready for retry")?,
        }
        Ok(())
    })
}

/// `reset ID`: a failed movie back to pending with a fresh retry count.
pub fn reset(output: &mut Output, dir: &Path, id: &str) -> anyhow::Result<()> {
    with_writer(dir, |qm| match qm.get(id)? {
        None => unknown_id(id, dir),
        Some((Place::Failed, entry)) => {
            qm.reset_failed_movie(id)?;
            writeln!(
                output.out,
                "reset {}  {}: back to pending with retry count 0 (it had failed {})",
                show_id(id),
                movie_label(&entry.movie),
                times(entry.retry_count)
            )?;
            Ok(())
        }
        Some((place, _)) => fail(format!(
            "movie {} is {place}, not failed; only a failed movie can be reset",
            quoted(id)
        )),
    })
}

/// `requeue-in-flight`.
pub fn requeue_in_flight(output: &mut Output, dir: &Path) -> anyhow::Result<()> {
    let count = with_writer(dir, |qm| Ok(qm.requeue_in_flight()?))?;
    if count == 0 {
        writeln!(output.out, "no movie is in flight; nothing changed")?;
    } else {
        writeln!(
            output.out,
            "{} back at the front of pending",
            crate::output::counted(count as u64, "movie", "movies")
        )?;
    }
    Ok(())
}

/// `cleanup --days N`.
pub fn cleanup(output: &mut Output, dir: &Path, days: u32) -> anyhow::Result<()> {
    let removed = with_writer(dir, |qm| Ok(qm.cleanup_old_completed(days)?))?;
    writeln!(
        output.out,
        "removed {} older than {}",
        crate::output::counted(removed as u64, "completed entry", "completed entries"),
        crate::output::counted(days, "day", "days")
    )?;
    Ok(())
}

/// `repair`: keep every valid record before the damage, set the rest aside.
pub fn repair(output: &mut Output, dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        return fail(format!("there is no store at {} to repair", dir.display()));
    }
    super::require_directory(dir)?;
    let report = movie_queue::repair(dir)?;
    let Some(damage) = report.damage else {
        writeln!(
            output.out,
            "the store is sound; nothing changed (last record {})",
            report.last_seq
        )?;
        return Ok(());
    };
    writeln!(output.out, "found: {}", safe(&damage))?;
    for action in &report.actions {
        writeln!(output.out, "  {}", safe(action))?;
    }
    writeln!(output.out, "the store holds every record through {}", report.last_seq)?;
    if !report.set_aside.is_empty() {
        writeln!(output.out, "set aside (never deleted):")?;
        for path in &report.set_aside {
            writeln!(output.out, "  {}", safe_path(path))?;
        }
    }
    writeln!(output.out, "run `movie-queue verify` to check the result")?;
    Ok(())
}

/// `snapshot`.
pub fn snapshot(output: &mut Output, dir: &Path) -> anyhow::Result<()> {
    require_store(dir)?;
    let qm = open_writer(dir)?;
    let written = qm.snapshot().map_err(anyhow::Error::from);
    let seq = close_writer(qm, written)?;
    writeln!(
        output.out,
        "snapshot written to {}: queue_pending.json, queue_failed.json, queue_completed.json, queue_removed.json \
         and the manifest queue_snapshot.json, covering records through {seq}",
        safe_path(dir)
    )?;
    Ok(())
}

/// `compact`.
pub fn compact(output: &mut Output, dir: &Path) -> anyhow::Result<()> {
    require_store(dir)?;
    let progress = Progress::bytes("compacting", store_bytes(dir));
    let qm = progress.options(writer_options()).open(dir)?;
    let compacted = qm.compact().map_err(anyhow::Error::from);
    let report = close_writer(qm, compacted)?;
    drop(progress);
    writeln!(
        output.out,
        "compacted through record {}: {} journal segments removed",
        report.seq,
        report.removed.len()
    )?;
    for path in &report.removed {
        writeln!(output.out, "  {}", safe_path(path))?;
    }
    Ok(())
}

/// `import DIR`.
pub fn import(output: &mut Output, dir: &Path, source: &Path) -> anyhow::Result<()> {
    let progress = Progress::bytes("importing", store_bytes(dir) + store_bytes(source));
    let qm = progress.options(writer_options()).open(dir)?;
    let imported = qm.import(source).map_err(anyhow::Error::from);
    let added = close_writer(qm, imported)?;
    drop(progress);
    writeln!(
        output.out,
        "imported {added} entries from {} (entries whose id the store already knew were skipped)",
        safe_path(source)
    )?;
    Ok(())
}
