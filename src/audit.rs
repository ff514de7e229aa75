//! Audit and replay: one movie's history, the events from a sequence
//! number, the state as of a record or a time, and `verify`. All of it
//! reads the journal; none of it writes.

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::event::{EventRecord, Seq};
use crate::manager::QueueManager;
use crate::projection::QueueState;
use crate::recovery::{self, TailPolicy};
use crate::snapshot;
use crate::storage::{RealStorage, Storage};
use crate::store::{self, JOURNAL_DIR};

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

impl QueueManager {
    /// Every journaled event of the movie `id`, oldest first. Events before
    /// a compaction are gone from the journal and not listed.
    ///
    /// # Errors
    /// Corruption or I/O while reading the journal.
    pub fn history(&self, id: &str) -> Result<Vec<EventRecord>> {
        let mut events = Vec::new();
        self.for_each_event(Seq(1), &mut |record| {
            if record.event.concerns(id) {
                events.push(record);
            }
            Ok(())
        })?;
        Ok(events)
    }

    /// The events from sequence number `from` on, in order.
    ///
    /// # Errors
    /// Corruption or I/O while reading the journal.
    pub fn events_from(&self, from: Seq) -> Result<std::vec::IntoIter<EventRecord>> {
        let mut events = Vec::new();
        self.for_each_event(from, &mut |record| {
            events.push(record);
            Ok(())
        })?;
        Ok(events.into_iter())
    }

    /// Hands every event from `from` on to `visit`, streaming (nothing is
    /// collected).
    ///
    /// # Errors
    /// Corruption or I/O while reading the journal; what `visit` returned.
    pub fn for_each_event(&self, from: Seq, visit: &mut dyn FnMut(EventRecord) -> Result<()>) -> Result<()> {
        self.flush()?;
        let storage = self.options_ref().storage.clone();
        recovery::replay(
            storage.as_ref(),
            &self.dir().join(JOURNAL_DIR),
            TailPolicy::Stop,
            from.max(Seq(1)),
            &mut |record, _| visit(record),
        )?;
        Ok(())
    }

    /// The projection as of record `seq` (included).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the journal no longer reaches back to
    /// `seq` (compacted); corruption or I/O.
    pub fn state_at(&self, seq: Seq) -> Result<QueueState> {
        self.state_until(Until::Seq(seq))
    }

    /// The projection as of Unix time `time`: every event stamped at or
    /// before it.
    ///
    /// # Errors
    /// As [`QueueManager::state_at`].
    pub fn state_at_time(&self, time: f64) -> Result<QueueState> {
        self.state_until(Until::Time(time))
    }

    /// The projection as of `until`.
    ///
    /// # Errors
    /// As [`QueueManager::state_at`].
    pub fn state_until(&self, until: Until) -> Result<QueueState> {
        self.flush()?;
        let storage = self.options_ref().storage.clone();
        state_until(storage.as_ref(), self.dir(), until)
    }
}

/// The state of the store in `dir` as of `until`, replayed from the
/// journal's beginning (or its compaction base).
///
/// # Errors
/// As [`QueueManager::state_at`].
pub fn state_until(storage: &dyn Storage, dir: &Path, until: Until) -> Result<QueueState> {
    let journal_dir = dir.join(JOURNAL_DIR);
    let (mut state, base_seq) = match until {
        Until::Seq(seq) => store::starting_point(storage, dir, seq)?,
        Until::Time(_) => store::journal_base(storage, &journal_dir)?,
    };
    if let Until::Seq(seq) = until
        && seq < base_seq
    {
        return Err(Error::InvalidArgument(format!(
            "records through {base_seq} were compacted away; the earliest state available is as of record {base_seq}"
        )));
    }
    let mut done = false;
    recovery::replay(
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
            store::apply_record(&mut state, &record, place)
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
    store::require_directory(dir)?;
    let journal_dir = dir.join(JOURNAL_DIR);
    let mut report = VerifyReport::default();
    let snapshot = match snapshot::load_snapshot(storage, dir) {
        Ok(snapshot) => snapshot,
        Err(snapshot::Rejected(reason)) => {
            report.problems.push(format!(
                "snapshot unusable (start-up rebuilds from the journal): {reason}"
            ));
            None
        }
    };
    let (mut state, base_seq) = store::journal_base(storage, &journal_dir)?;
    let mut at_snapshot = None;
    let snapshot_seq = snapshot.as_ref().map(|data| data.seq);
    if snapshot_seq == Some(base_seq) {
        at_snapshot = Some(state.clone());
    }
    let replayed = recovery::replay(
        storage,
        &journal_dir,
        TailPolicy::Reject,
        base_seq.next(),
        &mut |record, place| {
            store::apply_record(&mut state, &record, place)?;
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
    let from_snapshot = store::state_from_snapshot(data, &manifest)?;
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
