//! `verify`: check the store exactly as an open would, without changing
//! anything. Exit 0 when nothing in it is damaged; exit 3 when it opens
//! but something is (each problem listed with what `repair`, or the next
//! writer open, does about it); exit 1 naming the damage that keeps it
//! from opening, with the command that repairs it.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::output::{Output, Progress, safe, store_bytes_reading_journal, write_json};
use super::{fail_with_hint, require_directory};

/// The store opens, but `verify` found damage: exit status 3.
#[derive(Debug)]
pub struct Damaged {
    /// How many problems it listed.
    pub problems: usize,
}

impl std::fmt::Display for Damaged {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let problems = if self.problems == 1 {
            "1 problem".to_owned()
        } else {
            format!("{} problems", self.problems)
        };
        write!(formatter, "the store opens, but it is damaged ({problems} above)")
    }
}

impl std::error::Error for Damaged {}

/// The exit status of a store that opens but is damaged.
pub const DAMAGED_STATUS: u8 = 3;

/// `verify [--json]`: exit 0 when nothing is damaged, 3 when the store
/// opens with damage, 1 when it does not open.
pub fn verify(output: &mut Output, dir: &Path, json: bool) -> anyhow::Result<()> {
    require_directory(dir)?;
    // `verify` scans the journal, then replays it to check the snapshot.
    let progress = Progress::bytes("verifying", store_bytes_reading_journal(dir, 2));
    let verified = progress.options(movie_queue::Options::default()).verify(dir);
    drop(progress);
    let report = match verified {
        Ok(report) => report,
        Err(error) if error.is_corruption() => {
            if json {
                let place = error.place();
                let value = json!({
                    "ok": false,
                    "error": error.to_string(),
                    "file": place.map(|(path, _)| path.display().to_string()),
                    "offset": place.map(|(_, offset)| offset),
                });
                write_json(output, &value)?;
            }
            return fail_with_hint(super::describe(&error), super::REPAIR_HINT);
        }
        Err(error) => return Err(error.into()),
    };
    if json {
        let mut value = serde_json::to_value(&report)?;
        if let Value::Object(map) = &mut value {
            map.insert("ok".into(), Value::Bool(report.problems.is_empty()));
            map.insert("opens".into(), Value::Bool(true));
        }
        write_json(output, &value)?;
    } else {
        write_verify_report(output, &report)?;
    }
    if report.problems.is_empty() {
        Ok(())
    } else {
        Err(Damaged {
            problems: report.problems.len(),
        }
        .into())
    }
}

fn write_verify_report(output: &mut Output, report: &movie_queue::VerifyReport) -> std::io::Result<()> {
    let records = if report.records == 0 {
        "no records".to_owned()
    } else {
        format!("records {}..={}", report.first_seq, report.last_seq)
    };
    writeln!(
        output.out,
        "journal   {}, {records}",
        crate::output::journal_words(report.segments, report.records, report.bytes)
    )?;
    match report.snapshot_seq {
        Some(seq) if report.snapshot_compared => {
            writeln!(output.out, "snapshot  covers record {seq}, agrees with the journal")?;
        }
        Some(seq) => writeln!(
            output.out,
            "snapshot  covers record {seq}; the only copy of that state (the journal does not rebuild it by itself), \
             so not compared with it"
        )?,
        None if report.problems.is_empty() => writeln!(output.out, "snapshot  none")?,
        None => {}
    }
    if report.start == movie_queue::Start::Legacy {
        writeln!(
            output.out,
            "legacy    the documented files of a store with no journal yet: the next writer open imports them"
        )?;
    }
    for hole in &report.holes {
        writeln!(output.out, "hole    {}", safe(hole))?;
    }
    for problem in &report.problems {
        writeln!(output.out, "{} {}", output.style.red("problem"), safe(problem))?;
    }
    if report.problems.is_empty() {
        writeln!(output.out, "{}", output.style.green("ok"))?;
    } else {
        writeln!(
            output.out,
            "{} the store opens, but it is damaged; `movie-queue repair` deals with each problem as it says",
            output.style.red("damaged")
        )?;
    }
    Ok(())
}
