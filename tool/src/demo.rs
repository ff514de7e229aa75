//! `demo`: the Queue Manager's usage example end to end on a scratch store, with
//! real titles, a few simulated download failures, retries, the statistics
//! and the audit trail of a movie that failed and was retried. The store is
//! left in place so the other commands can inspect it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use movie_queue::{Movie, QueueManager, now};

use super::output::{Output, event_line, local_time, movie_label, relative_time, safe_path, write_statistics};
use super::{close_writer, fail_with_hint, writer_options};

/// (id, title, year, slug, `IMDb` id).
const MOVIES: [(&str, &str, &str, &str, &str); 8] = [
    ("603", "The Matrix", "1999", "the-matrix", "tt0133093"),
    ("949", "Heat", "1995", "heat", "tt0113277"),
    ("348", "Alien", "1979", "alien", "tt0078748"),
    ("129", "Spirited Away", "2001", "spirited-away", "tt0245429"),
    ("346", "Seven Samurai", "1954", "seven-samurai", "tt0047478"),
    ("496243", "Parasite", "2019", "parasite", "tt6751668"),
    ("194", "Amélie", "2001", "amelie", "tt0211915"),
    ("1092", "The Third Man", "1949", "the-third-man", "tt0041959"),
];

/// Every third movie (Heat, Seven Samurai, The Third Man) fails its first
/// download with these errors; The Third Man keeps failing.
const ERRORS: [&str; 3] = ["Not found on tracker", "Connection reset by peer", "No seeders"];

/// The movie whose audit trail the demo shows.
const TRAIL_ID: &str = "949";

/// The movie that never downloads.
const HOPELESS_ID: &str = "1092";

struct Demo<'a> {
    output: &'a mut Output,
    pace: Duration,
}

/// Runs the demo in `dir` (a new or empty directory) or a fresh one under
/// the system's temporary directory.
pub fn run(output: &mut Output, dir: Option<&Path>) -> anyhow::Result<()> {
    let dir = match dir {
        Some(dir) => checked_dir(dir)?,
        None => scratch_dir(),
    };
    let pace = if Output::is_terminal() {
        Duration::from_millis(120)
    } else {
        Duration::ZERO
    };
    let mut demo = Demo { output, pace };
    let title = demo.output.style.bold("movie-queue demo");
    writeln!(
        demo.output.out,
        "{title}: the Queue Manager's usage example end to end: queue movies, download them \
         (some fail), retry, complete, then the statistics and one movie's audit trail."
    )?;
    demo.section("1. Open a store")?;
    demo.say(&format!("QueueManager::open({:?})", safe_path(&dir)))?;
    // The seed's open: the whole state, as the application has it.
    let qm = writer_options().load_on_demand(false).open(&dir)?;
    let outcome = demo.story(&qm);
    close_writer(qm, outcome)?;
    demo.explore(&dir)
}

fn checked_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    let holds_files = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if holds_files {
        return fail_with_hint(
            format!("demo needs a new or empty directory; {} is not empty", dir.display()),
            "leave out --dir and the demo makes a fresh directory under the system's temporary directory",
        );
    }
    Ok(dir.to_path_buf())
}

fn scratch_dir() -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let base = std::env::temp_dir().join(format!("movie-queue-demo-{stamp}-{}", std::process::id()));
    let mut dir = base.clone();
    let mut attempt = 1;
    while dir.exists() {
        attempt += 1;
        dir = PathBuf::from(format!("{}-{attempt}", base.display()));
    }
    dir
}

impl Demo<'_> {
    fn section(&mut self, title: &str) -> std::io::Result<()> {
        let rule = "─".repeat(60_usize.saturating_sub(crate::output::display_width(title) + 4));
        let line = format!("── {title} {rule}");
        writeln!(self.output.out, "\n{}", self.output.style.bold(&line))
    }

    fn say(&mut self, text: &str) -> std::io::Result<()> {
        writeln!(self.output.out, "{}", format!("   {text}").trim_end())
    }

    fn pause(&mut self) -> std::io::Result<()> {
        self.output.out.flush()?;
        std::thread::sleep(self.pace);
        Ok(())
    }

    fn story(&mut self, qm: &QueueManager) -> anyhow::Result<()> {
        self.queue_movies(qm)?;
        self.section("3. Download them (every third download fails)")?;
        self.download_all(qm, true)?;
        self.retry(qm)?;
        self.section("5. Statistics: get_statistics()")?;
        write_statistics(self.output, &qm.get_statistics(), "   ")?;
        self.trail(qm)
    }

    fn queue_movies(&mut self, qm: &QueueManager) -> anyhow::Result<()> {
        self.section("2. Queue 8 movies: add_to_pending(movie)")?;
        for (id, title, year, slug, imdb_id) in MOVIES {
            let movie = Movie::new(id, title, year).with_slug(slug).with_imdb_id(imdb_id);
            qm.add_to_pending(movie)?;
            let added = self.output.style.cyan("+");
            self.say(&format!("{added} {id:<7} {title} ({year})"))?;
        }
        let again = qm.add_to_pending(Movie::new("603", "The Matrix", "1999"))?;
        self.say(&format!(
            "add_to_pending(The Matrix) again → {again}: a duplicate id is refused"
        ))?;
        Ok(())
    }

    /// Takes every pending movie; on the first round every third fails.
    fn download_all(&mut self, qm: &QueueManager, first_round: bool) -> anyhow::Result<()> {
        let mut index = 0;
        while let Some(movie) = qm.get_next_pending()? {
            let label = movie_label(&movie);
            self.pause()?;
            let fails = (first_round && index % 3 == 1) || movie.id() == HOPELESS_ID;
            if !fails {
                qm.add_to_completed(movie)?;
                let done = self.output.style.green("done");
                self.say(&format!("↓ {label:<24} {done}"))?;
            } else if first_round {
                let error = ERRORS[(index / 3) % ERRORS.len()];
                qm.add_to_failed(movie, error, Some(now()))?;
                let failed = self.output.style.red("failed");
                self.say(&format!(
                    "↓ {label:<24} {failed}: {error} (add_to_failed, retry_after = now)"
                ))?;
            } else {
                let retry_after = qm.fail_with_backoff(movie, "No seeders")?.unwrap_or_else(now);
                let failed = self.output.style.red("failed again");
                self.say(&format!(
                    "↓ {label:<24} {failed}: No seeders (fail_with_backoff: retry {})",
                    relative_time(retry_after, now())
                ))?;
            }
            index += 1;
        }
        Ok(())
    }

    fn retry(&mut self, qm: &QueueManager) -> anyhow::Result<()> {
        self.section("4. Retry the failures: get_movies_ready_for_retry(5)")?;
        let ready = qm.get_movies_ready_for_retry(5);
        let (movies, are) = if ready.len() == 1 {
            ("movie", "is")
        } else {
            ("movies", "are")
        };
        self.say(&format!("{} {movies} {are} ready for retry", ready.len()))?;
        for entry in &ready {
            qm.move_failed_to_pending(entry)?;
            let again = self.output.style.cyan("↺");
            self.say(&format!(
                "{again} {} back to pending (retry_count {})",
                movie_label(&entry.movie),
                entry.retry_count
            ))?;
        }
        self.download_all(qm, false)
    }

    fn trail(&mut self, qm: &QueueManager) -> anyhow::Result<()> {
        let title = qm
            .get(TRAIL_ID)
            .map_or_else(|| TRAIL_ID.to_owned(), |(_, entry)| movie_label(&entry.movie));
        self.section(&format!("6. Audit trail of {title}: history(\"{TRAIL_ID}\")"))?;
        let style = self.output.style;
        for record in qm.history(TRAIL_ID)? {
            writeln!(self.output.out, "{}", event_line(style, &record))?;
        }
        if let Some((_, entry)) = qm.get(HOPELESS_ID)
            && let Some(retry_after) = entry.retry_after
        {
            self.say("")?;
            self.say(&format!(
                "{} stays failed ({} failures); it may be retried at {}",
                movie_label(&entry.movie),
                entry.retry_count,
                local_time(retry_after)
            ))?;
        }
        Ok(())
    }

    fn explore(&mut self, dir: &Path) -> anyhow::Result<()> {
        self.section("Explore the store yourself")?;
        self.say(&format!("the store is kept at {}", safe_path(dir)))?;
        let quoted = shell_quote(&safe_path(dir));
        // Started by `cargo run`: the binary may not be on PATH yet.
        let program = if std::env::var_os("CARGO").is_some() {
            "cargo run --release --"
        } else {
            "movie-queue"
        };
        for command in [
            "stats",
            "list completed",
            "list failed",
            &format!("show {TRAIL_ID}"),
            "log",
            "replay --until 10",
            "verify",
        ] {
            self.say(&format!("{program} --dir {quoted} {command}"))?;
        }
        Ok(())
    }
}

/// Quotes a path for a POSIX shell when it needs it.
fn shell_quote(text: &str) -> String {
    let plain = text
        .chars()
        .all(|character| character.is_ascii_alphanumeric() || "/._-+:@%".contains(character));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
