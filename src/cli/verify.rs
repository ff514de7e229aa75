//! `verify`: check every record, the sequence and the snapshot without
//! changing anything; exit 1 naming the first problem, with what to do.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::inspect::journal_size;
use super::output::{Output, Progress, write_json};
use super::{fail_with_hint, require_directory};

/// `verify [--json]`: exit 1 naming the first problem.
pub fn verify(output: &mut Output, dir: &Path, json: bool) -> anyhow::Result<()> {
    require_directory(dir)?;
    let progress = Progress::start(format!(
        "verifying {} of journal in {}",
        journal_size(dir),
        dir.display()
    ));
    let verified = movie_queue::verify(dir);
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
            return fail_with_hint(
                error.to_string(),
                "run `movie-queue repair`: it keeps every record before the damage and sets the rest aside",
            );
        }
        Err(error) => return Err(error.into()),
    };
    if json {
        let mut value = serde_json::to_value(&report)?;
        if let Value::Object(map) = &mut value {
            map.insert("ok".into(), Value::Bool(report.problems.is_empty()));
        }
        write_json(output, &value)?;
    } else {
        write_verify_report(output, &report)?;
    }
    if let Some(first) = report.problems.first() {
        return fail_with_hint(
            format!("verify found {} problem(s); the first: {first}", report.problems.len()),
            "start-up ignores an inconsistent snapshot and rebuilds from the journal; \
             `movie-queue snapshot` writes a fresh one",
        );
    }
    Ok(())
}

fn write_verify_report(output: &mut Output, report: &movie_queue::VerifyReport) -> std::io::Result<()> {
    let records = if report.records == 0 {
        "no records".to_owned()
    } else {
        format!("records {}..={}", report.first_seq, report.last_seq)
    };
    writeln!(
        output.out,
        "journal   {} segment(s), {} records, {} bytes, {records}",
        report.segments, report.records, report.bytes
    )?;
    match report.snapshot_seq {
        Some(seq) => writeln!(output.out, "snapshot  covers record {seq}, agrees with the journal")?,
        None if report.problems.is_empty() => writeln!(output.out, "snapshot  none")?,
        None => {}
    }
    for problem in &report.problems {
        writeln!(output.out, "{} {problem}", output.style.red("problem"))?;
    }
    if report.problems.is_empty() {
        writeln!(output.out, "{}", output.style.green("ok"))?;
    }
    Ok(())
}
