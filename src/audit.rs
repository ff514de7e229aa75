//! Audit and replay: one movie's history, the events from a sequence
//! number, the state as of a record or a time, and `verify`, over a store
//! directory as it is on disk (the manager flushes first). All of it reads
//! the journal; none of it writes.

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::event::EventRecord;
use crate::journal::reader::TailPolicy;
use crate::lock;
use crate::projection::QueueState;
use crate::recovery::{self, JOURNAL_DIR};
use crate::seq::Seq;
use crate::snapshot::{self, manifest};
use crate::storage::{RealStorage, Storage};

/// Where a replay for `state_at` stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Until {
    /// Through this record, included.
    Seq(Seq),
    /// Through the last record stamped at or before this Unix time.
    Time(f64),
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Segment files checked.
    pub segments: usize,
    /// Records checked.
    pub records: u64,
    /// Bytes of records checked.
    pub bytes: u64,
    /// The first record the journal holds (later than 1 after compaction).
    pub first_seq: u64,
    /// The last record.
    pub last_seq: u64,
    /// The sequence number the snapshot covers, if there is a consistent one.
    pub snapshot_seq: Option<u64>,
    /// Problems that are not journal damage (an inconsistent snapshot).
    pub problems: Vec<String>,
}

/// The journal's files (segments and what lies beside them) and their
/// sizes, sorted by name: what changes when the journal does.
#[must_use]
pub fn journal_files(dir: &Path) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir.join(JOURNAL_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| {
            let size = entry.metadata().map_or(0, |metadata| metadata.len());
            (entry.file_name().to_string_lossy().into_owned(), size)
        })
        .collect();
    files.sort();
    files
}

/// Hands every event of the store in `dir` from `from` on to `visit`, in
/// order, streaming (nothing is collected). A torn tail (a write in
/// progress) ends the events.
///
/// # Errors
/// Corruption or I/O while reading the journal; what `visit` returned.
pub fn for_each_event(
    storage: &dyn Storage,
    dir: &Path,
    from: Seq,
    visit: &mut dyn FnMut(EventRecord) -> Result<()>,
) -> Result<()> {
    recovery::replay_events(
        storage,
        &dir.join(JOURNAL_DIR),
        TailPolicy::Stop,
        from.max(Seq(1)),
        &mut |record, _| visit(record),
    )?;
    Ok(())
}

/// The state of the store in `dir` as of `until`, replayed from the
/// journal's beginning (or its compaction base).
///
/// # Errors
/// As [`QueueManager::state_at`].
pub fn state_until(storage: &dyn Storage, dir: &Path, until: Until) -> Result<QueueState> {
    let journal_dir = dir.join(JOURNAL_DIR);
    let (mut state, base_seq) = match until {
        Until::Seq(seq) => recovery::starting_point(storage, dir, seq)?,
        Until::Time(_) => recovery::journal_base(storage, &journal_dir)?,
    };
    if let Until::Seq(seq) = until
        && seq < base_seq
    {
        return Err(Error::InvalidArgument(format!(
            "records through {base_seq} were compacted away; the earliest state available is as of record {base_seq}"
        )));
    }
    let mut done = false;
    recovery::replay_events(
        storage,
        &journal_dir,
        TailPolicy::Stop,
        base_seq.next(),
        &mut |record, place| {
            done = done
                || match until {
                    Until::Seq(seq) => record.seq > seq,
                    Until::Time(time) => record.ts > time,
                };
            if done {
                return Ok(());
            }
            recovery::apply_record(&mut state, &record, place)
        },
    )?;
    Ok(state)
}

/// Checks every record, the sequence, and the snapshot of the store in
/// `dir` without changing anything (no lock needed).
///
/// # Errors
/// The first journal damage, naming its file and offset (a torn tail too).
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    verify_with(&RealStorage, dir)
}

/// [`verify`] through a given storage.
///
/// # Errors
/// As [`verify`].
pub fn verify_with(storage: &dyn Storage, dir: &Path) -> Result<VerifyReport> {
    lock::require_directory(dir)?;
    let journal_dir = dir.join(JOURNAL_DIR);
    let mut report = VerifyReport::default();
    let snapshot = match manifest::load_snapshot(storage, dir) {
        Ok(snapshot) => snapshot,
        Err(snapshot::Rejected(reason)) => {
            report.problems.push(format!(
                "snapshot unusable (start-up rebuilds from the journal): {reason}"
            ));
            None
        }
    };
    let (mut state, base_seq) = recovery::journal_base(storage, &journal_dir)?;
    let mut at_snapshot = None;
    let snapshot_seq = snapshot.as_ref().map(|data| data.seq);
    if snapshot_seq == Some(base_seq) {
        at_snapshot = Some(state.clone());
    }
    let replayed = recovery::replay_events(
        storage,
        &journal_dir,
        TailPolicy::Reject,
        base_seq.next(),
        &mut |record, place| {
            recovery::apply_record(&mut state, &record, place)?;
            if Some(record.seq) == snapshot_seq {
                at_snapshot = Some(state.clone());
            }
            Ok(())
        },
    )?;
    report.segments = replayed.segments.len();
    report.records = replayed.segments.iter().map(|segment| segment.records).sum();
    report.bytes = replayed.bytes;
    report.first_seq = replayed.first_seq.0;
    report.last_seq = replayed.last_seq.0;
    if let Some(data) = snapshot {
        check_snapshot(dir, data, at_snapshot, replayed.segments.is_empty(), &mut report)?;
    }
    Ok(report)
}

fn check_snapshot(
    dir: &Path,
    data: snapshot::SnapshotData,
    at_snapshot: Option<QueueState>,
    journal_empty: bool,
    report: &mut VerifyReport,
) -> Result<()> {
    let seq = data.seq;
    let manifest = dir.join(snapshot::MANIFEST_FILE);
    let from_snapshot = data.into_state(&manifest)?;
    match at_snapshot {
        Some(from_journal) if from_journal == from_snapshot => report.snapshot_seq = Some(seq.0),
        Some(_) => report.problems.push(format!(
            "{}: the snapshot of record {seq} differs from the journal's state at that record",
            manifest.display()
        )),
        None if journal_empty => report.snapshot_seq = Some(seq.0),
        None => report.problems.push(format!(
            "{}: the snapshot covers record {seq}, which the journal does not reach",
            manifest.display()
        )),
    }
    Ok(())
}
