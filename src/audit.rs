//! Audit and replay: one movie's history, the events from a sequence
//! number, the state as of a record or a time, and `verify`, over a store
//! directory as it is on disk (the manager flushes first). All of it reads
//! the journal; none of it writes.

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::event::EventRecord;
use crate::journal::reader::{self, JournalScan};
use crate::lock;
use crate::projection::QueueState;
use crate::recovery::decision;
use crate::recovery::{self, CheckpointKind, Evidence, JOURNAL_DIR};
use crate::seq::Seq;
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
#[non_exhaustive]
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
    /// What an open would start from: `empty`, `snapshot`, `base` or `legacy`.
    pub start: String,
    /// Problems that do not keep the store from opening (damage a
    /// checkpoint covers, a torn tail, a snapshot that does not hold up),
    /// each with what the next writer open or `repair` does about it.
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
/// journal order, streaming (nothing is collected). Damaged records and a
/// torn tail (maybe a write in progress) are not events: they are skipped.
///
/// # Errors
/// Corruption or I/O while reading the journal; what `visit` returned.
pub fn for_each_event(
    storage: &dyn Storage,
    dir: &Path,
    from: Seq,
    visit: &mut dyn FnMut(EventRecord) -> Result<()>,
) -> Result<()> {
    let scan = reader::scan(storage, &dir.join(JOURNAL_DIR))?;
    recovery::replay_events(storage, &scan, from.max(Seq(1)), Seq(u64::MAX), &mut |record, _| {
        visit(record)
    })
}

/// The state of the store in `dir` as of `until`: from the latest
/// checkpoint at or before the target whose records reach it.
///
/// # Errors
/// [`Error::InvalidArgument`] when no starting point reaches the target
/// (compacted or damaged history), saying what can be answered; corruption
/// or I/O.
pub fn state_until(storage: &dyn Storage, dir: &Path, until: Until) -> Result<QueueState> {
    let mut evidence = Evidence::gather(storage, dir)?;
    let starts = starts_for(&evidence, until);
    let Some((kind, start_seq)) = starts.into_iter().next() else {
        return Err(unanswerable(&evidence, until));
    };
    let mut state = match kind {
        Some(kind) => {
            let path = evidence.checkpoint_path(kind);
            let data = match kind {
                CheckpointKind::Snapshot => evidence.snapshot.take(),
                CheckpointKind::Base => evidence.base.take(),
            };
            data.and_then(std::result::Result::ok)
                .unwrap_or_default()
                .into_state(&path)?
        }
        None => QueueState::new(),
    };
    let chain = evidence.journal.chain_from(start_seq);
    let through = match until {
        Until::Seq(seq) => seq.min(chain.end),
        Until::Time(_) => chain.end,
    };
    let mut done = false;
    recovery::replay_events(
        storage,
        &evidence.journal,
        start_seq.next(),
        through,
        &mut |record, place| {
            if let Until::Time(time) = until {
                done = done || record.ts > time;
            }
            if done {
                return Ok(());
            }
            recovery::apply_record(&mut state, &record, place)
        },
    )?;
    Ok(state)
}

/// The starting points that can answer `until`, best first: a checkpoint
/// (`Some(kind)`) or nothing (`None`), and the record it covers. A record
/// target takes the latest start at or before it whose records reach it
/// (or reach the journal's end); a time target the earliest start.
fn starts_for(evidence: &Evidence, until: Until) -> Vec<(Option<CheckpointKind>, Seq)> {
    let mut starts: Vec<(Option<CheckpointKind>, Seq)> = vec![(None, Seq(0))];
    for kind in [CheckpointKind::Base, CheckpointKind::Snapshot] {
        if let Some(data) = evidence.checkpoint(kind) {
            starts.push((Some(kind), data.seq));
        }
    }
    let reaches = |seq: Seq, target: Seq| {
        let chain = evidence.journal.chain_from(seq);
        chain.end >= target || chain.is_complete()
    };
    match until {
        Until::Seq(target) => {
            starts.retain(|&(_, seq)| seq <= target && reaches(seq, target));
            starts.sort_by_key(|&(_, seq)| std::cmp::Reverse(seq));
        }
        Until::Time(_) => {
            starts.retain(|&(_, seq)| reaches(seq, Seq(u64::MAX)));
            starts.sort_by_key(|&(_, seq)| seq);
        }
    }
    starts
}

fn unanswerable(evidence: &Evidence, until: Until) -> Error {
    let first = evidence.journal.first_seq().unwrap_or_default();
    let base = evidence.checkpoint(CheckpointKind::Base).map(|data| data.seq);
    let earliest = base.unwrap_or(first.previous());
    Error::InvalidArgument(match until {
        Until::Seq(seq) => format!(
            "the state as of record {seq} cannot be rebuilt: records before {} were compacted away or are damaged; \
             the earliest state available is as of record {earliest}",
            earliest.next()
        ),
        Until::Time(time) => format!("the state as of time {time} cannot be rebuilt from what the journal holds"),
    })
}

/// Checks the store in `dir` as an open would, without changing anything
/// (no lock needed): `Ok` exactly when the store opens, with the problems
/// that do not keep it from opening.
///
/// # Errors
/// What keeps the store from opening, naming the file and offset.
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    verify_with(&RealStorage, dir)
}

/// [`verify`] through a given storage.
///
/// # Errors
/// As [`verify`].
pub fn verify_with(storage: &dyn Storage, dir: &Path) -> Result<VerifyReport> {
    lock::require_directory(dir)?;
    let evidence = Evidence::gather(storage, dir)?;
    let mut decision = decision::decide(storage, evidence)?;
    let problems = decision.problems();
    let snapshot = decision.evidence.checkpoint(CheckpointKind::Snapshot).cloned();
    let scan = decision.evidence.journal.clone();
    let start = decision.start;
    let own_base = decision
        .evidence
        .checkpoint(CheckpointKind::Base)
        .map(|data| (data.clone(), decision.evidence.checkpoint_path(CheckpointKind::Base)));
    decision.build_state(storage)?;
    let mut report = VerifyReport {
        segments: scan.segments.len(),
        records: scan.records(),
        bytes: scan.segments.iter().map(|segment| segment.len).sum(),
        first_seq: scan.first_seq().map_or(0, |seq| seq.0),
        last_seq: decision.chain.end.0,
        snapshot_seq: None,
        start: start.name().to_owned(),
        problems,
    };
    if let Some(data) = snapshot {
        check_snapshot(storage, dir, &scan, own_base, data, &mut report)?;
    }
    Ok(report)
}

/// Checks the snapshot against the journal's own state at its record,
/// where the journal (from its base, or from nothing) reaches it.
fn check_snapshot(
    storage: &dyn Storage,
    dir: &Path,
    scan: &JournalScan,
    own_base: Option<(crate::snapshot::SnapshotData, std::path::PathBuf)>,
    data: crate::snapshot::SnapshotData,
    report: &mut VerifyReport,
) -> Result<()> {
    let seq = data.seq;
    let (mut state, own) = match own_base {
        Some((base, path)) => {
            let own = base.seq;
            (base.into_state(&path)?, own)
        }
        None => (QueueState::new(), Seq(0)),
    };
    let manifest = dir.join(crate::snapshot::MANIFEST_FILE);
    let from_snapshot = data.into_state(&manifest)?;
    if own > seq || scan.chain_from(own).end < seq {
        report.snapshot_seq = Some(seq.0);
        return Ok(());
    }
    recovery::replay_into(storage, scan, own, seq, &mut state)?;
    if state == from_snapshot {
        report.snapshot_seq = Some(seq.0);
    } else {
        report.problems.push(format!(
            "{}: the snapshot of record {seq} differs from the journal's state at that record",
            manifest.display()
        ));
    }
    Ok(())
}
