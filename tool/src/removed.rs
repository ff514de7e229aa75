//! The removed queue's commands: `mark-removed`, `restore`, `forget`
//! (mutating, with the writer lock) and `removed [--ready]` (read-only).

use std::io::{BufRead, Write};
use std::path::Path;

use movie_queue::{Place, QueueEntry};
use serde_json::Value;

use super::args::{ListWhich, RemovedArgs};
use super::inspect::entry_table;
use super::operate::{unknown_id, with_writer};
use super::output::{Output, movie_label, quoted, show_id, write_json, write_table};
use super::{fail, open_reader};

/// `mark-removed ID... | -`: the watchlist's ids, from the arguments or stdin.
pub fn mark_removed(output: &mut Output, dir: &Path, ids: &[String]) -> anyhow::Result<()> {
    let watchlist = if ids == ["-"] {
        read_ids(std::io::stdin().lock())?
    } else {
        ids.to_vec()
    };
    let moved = with_writer(dir, |qm| Ok(qm.mark_movies_as_removed(&watchlist)?))?;
    writeln!(
        output.out,
        "{} {moved} movies not on the watchlist ({} ids given)",
        output.style.green("removed"),
        watchlist.len()
    )?;
    Ok(())
}

/// One id a line; blank lines and surrounding spaces are ignored.
fn read_ids(input: impl BufRead) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for (index, line) in input.lines().enumerate() {
        match line {
            Ok(line) if line.trim().is_empty() => {}
            Ok(line) => ids.push(line.trim().to_owned()),
            Err(error) => return fail(format!("stdin line {}: {error}", index + 1)),
        }
    }
    Ok(ids)
}

/// `restore ID`.
pub fn restore(output: &mut Output, dir: &Path, id: &str) -> anyhow::Result<()> {
    with_writer(dir, |qm| match qm.get(id)? {
        None => unknown_id(id, dir),
        Some((Place::Removed, entry)) => {
            qm.restore_removed_movie(id)?;
            let label = movie_label(&entry.movie);
            writeln!(
                output.out,
                "{} {}  {label}",
                output.style.green("restored"),
                show_id(id)
            )?;
            Ok(())
        }
        Some((place, _)) => fail(format!("movie {} is {place}, not removed; nothing changed", quoted(id))),
    })
}

/// `forget ID`.
pub fn forget(output: &mut Output, dir: &Path, id: &str) -> anyhow::Result<()> {
    with_writer(dir, |qm| match qm.get(id)? {
        None => unknown_id(id, dir),
        Some((Place::Removed, entry)) => {
            qm.remove_from_removed_queue(id)?;
            let label = movie_label(&entry.movie);
            writeln!(output.out, "{} {}  {label}", output.style.green("forgot"), show_id(id))?;
            Ok(())
        }
        Some((place, _)) => fail(format!("movie {} is {place}, not removed; nothing changed", quoted(id))),
    })
}

/// `removed [--ready [--grace D]] [--json]`.
pub fn list(output: &mut Output, dir: &Path, args: &RemovedArgs) -> anyhow::Result<()> {
    let qm = open_reader(dir)?;
    let entries = if args.ready {
        qm.get_movies_ready_for_deletion(args.grace)
    } else {
        qm.list(Place::Removed)
    };
    if args.json.json {
        let values: Vec<Value> = entries.iter().map(QueueEntry::to_value).collect();
        return write_json(output, &values);
    }
    if entries.is_empty() {
        let what = if args.ready { "ready for deletion" } else { "removed" };
        writeln!(output.out, "no movies {what}")?;
        return Ok(());
    }
    let (header, rows, right) = entry_table(ListWhich::Removed, &entries, output.style, 0);
    write_table(output, &header, &rows, &right)?;
    Ok(())
}
