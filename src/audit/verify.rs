//! `verify`: the store checked as an open would check it, changing
//! nothing, with the snapshot compared against the journal's own state.

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::journal::reader::JournalScan;
use crate::layout::Layout;
use crate::lock;
use crate::projection::QueueState;
use crate::recovery::decision;
use crate::recovery::{self, CheckpointKind, Evidence, Start};
use crate::seq::Seq;
use crate::snapshot::manifest;
use crate::storage::{RealStorage, Storage};

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
    /// Was that snapshot compared with the journal's own state at its
    /// record (and found equal)? `false` when the journal, from its start
    /// or its compaction base, does not rebuild that state by itself (the
    /// snapshot is then the only copy of it).
    pub snapshot_compared: bool,
    /// What an open would start from.
    pub start: Start,
    /// Problems that do not keep the store from opening (damage a
    /// checkpoint covers, a torn tail, a snapshot that does not hold up),
    /// each with what the next writer open or `repair` does about it.
    /// Empty exactly when nothing in the store is damaged.
    pub problems: Vec<String>,
    /// Damaged history `repair` already set aside and recorded
    /// (`journal/holes`): not a problem, the history reads on past it; each
    /// names the records, the bytes and where they were copied.
    pub holes: Vec<String>,
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
    // A writer beside it may snapshot or compact while it reads: a
    // manifest of one snapshot with files of the next, a base or segments
    // replaced under it. An answer that finds something wrong stands only
    // when nothing it reads changed meanwhile; otherwise it verifies again.
    // A temporary manifest seen the same across two attempts is a killed
    // writer's leftover, not a snapshot being written (whose renames take
    // moments): it no longer stops an answer.
    let mut previous_temporary = None;
    for attempt in 1..=VERIFY_ATTEMPTS {
        let before = Moment::of(storage, dir);
        let outcome = verify_once(storage, dir);
        if matches!(&outcome, Ok(report) if report.problems.is_empty()) {
            return outcome;
        }
        let after = Moment::of(storage, dir);
        let settled = after.temporary_manifest.is_none() || after.temporary_manifest == previous_temporary;
        if before == after && settled {
            return outcome;
        }
        previous_temporary = after.temporary_manifest;
        tracing::info!(
            attempt,
            "the store changed while it was verified (a writer snapshotting or compacting); verifying again"
        );
        std::thread::sleep(std::time::Duration::from_millis(10 * u64::from(attempt)));
    }
    Err(Error::Changing {
        dir: dir.to_path_buf(),
        attempts: VERIFY_ATTEMPTS,
    })
}

/// How many times [`verify_with`] reads a store that keeps changing under
/// it before it says so ([`Error::Changing`]) instead of answering.
const VERIFY_ATTEMPTS: u32 = 10;

/// What a writer changes when it writes, snapshots or compacts, read
/// cheaply: the manifest's bytes, the temporary manifest's (a snapshot is
/// being written while it is there, from before its files are renamed into
/// place until the manifest is — or a killed writer left it), the
/// compaction base's length and first bytes (its checksum is among them),
/// the journal's file names, and where the last segment's written bytes
/// end (records go over the zeros laid down for them, so its length does
/// not say: a record being written reads as a torn tail until it is whole).
#[derive(Debug, PartialEq, Eq)]
struct Moment {
    manifest: Option<Vec<u8>>,
    temporary_manifest: Option<Vec<u8>>,
    base: Option<(u64, Vec<u8>)>,
    journal: Option<Vec<String>>,
    written: Option<u64>,
}

impl Moment {
    fn of(storage: &dyn Storage, dir: &Path) -> Moment {
        let layout = Layout::new(dir);
        let manifest = layout.manifest();
        let base = layout.base();
        let base = match storage.entry(&base) {
            Ok(crate::storage::Entry::File(size)) => {
                let mut head = vec![0; 64];
                let read = storage
                    .open_read(&base)
                    .and_then(|mut file| file.read_at(0, &mut head))
                    .unwrap_or(0);
                head.truncate(read);
                Some((size, head))
            }
            _ => None,
        };
        // The temporary manifest first: a snapshot whose files were
        // renamed into place before this reading and whose manifest was
        // not yet, then is seen here, however the manifest's own rename
        // falls between the two reads (read the other way round, a
        // reading could take the old manifest, then miss the temporary
        // file the rename just took away).
        let temporary_manifest = storage.exists(&crate::layout::temporary_path(&manifest)).then(|| {
            storage
                .read(&crate::layout::temporary_path(&manifest))
                .unwrap_or_default()
        });
        let journal = storage.list_dir(&layout.journal()).ok();
        let last = journal
            .iter()
            .flatten()
            .filter(|name| crate::layout::parse_segment_name(name).is_some())
            .max();
        let written =
            last.and_then(|name| crate::journal::reader::written_len(storage, &layout.journal().join(name)).ok());
        Moment {
            manifest: storage.read(&manifest).ok(),
            temporary_manifest,
            base,
            journal,
            written,
        }
    }
}

/// One reading of the store (see [`verify_with`]).
fn verify_once(storage: &dyn Storage, dir: &Path) -> Result<VerifyReport> {
    let evidence = Evidence::gather(storage, dir)?;
    let mut decision = decision::decide(storage, evidence)?;
    let problems = decision.problems();
    let holes = decision
        .holes
        .iter()
        .filter_map(|&(segment, damage)| {
            let hole = decision.evidence.journal.hole_for(segment, damage)?;
            let (records, were) = if hole.first == hole.last {
                (format!("record {}", hole.first), "was")
            } else {
                (format!("records {} to {}", hole.first, hole.last), "were")
            };
            let aside = hole.set_aside.as_ref().map_or_else(
                || "all zeros, nothing to keep".to_owned(),
                |name| format!("copied to {}", decision.evidence.journal.dir.join(name).display()),
            );
            Some(format!(
                "{}: {records} at bytes {} to {} {were} damaged and set aside by `repair` ({aside}); the \
                 history reads on past the hole",
                decision.evidence.journal.segments[segment].path.display(),
                hole.offset,
                hole.end
            ))
        })
        .collect();
    let scan = decision.evidence.journal.clone();
    let start = decision.start;
    let mut report = VerifyReport {
        segments: scan.segments.len(),
        records: scan.records(),
        bytes: scan.segments.iter().map(|segment| segment.len).sum(),
        first_seq: scan.first_seq().map_or(0, |seq| seq.0),
        last_seq: decision.chain.end.0,
        snapshot_seq: None,
        snapshot_compared: false,
        start,
        problems,
        holes,
    };
    // The snapshot is compared with the journal's state first, holding
    // one state at a time: the snapshot's is set down while the journal
    // rebuilds its own (from the compaction base, read again for it), which
    // is compared with the documented files as it renders. When they agree
    // it is the snapshot's state, and the open's check below goes on from
    // it; otherwise the snapshot is read again for that.
    if let Some(Ok(data)) = decision.evidence.snapshot.as_mut() {
        let seq = data.seq;
        drop(std::mem::take(&mut data.state));
        let own_base = match decision.evidence.checkpoint(CheckpointKind::Base) {
            Some(_) => Some(decision.evidence.load_base(storage)?),
            None => None,
        };
        let state = match check_snapshot(storage, dir, &scan, own_base, seq, &mut report)? {
            Some(state) => state,
            None if start == Start::Snapshot => reload_snapshot(storage, dir, seq)?,
            // The open's check does not start from it.
            None => QueueState::new(),
        };
        if let Some(Ok(data)) = decision.evidence.snapshot.as_mut() {
            data.state = state;
        }
    }
    decision.build_state(storage)?;
    Ok(report)
}

/// Checks the snapshot of record `seq` against the journal's own state at
/// that record, where the journal (from its base, or from nothing) reaches
/// it. Returns the snapshot's state when it has it: the journal's, when it
/// renders as the documented files byte for byte; the files' own, read
/// whole to compare when it does not.
fn check_snapshot(
    storage: &dyn Storage,
    dir: &Path,
    scan: &JournalScan,
    own_base: Option<crate::snapshot::SnapshotData>,
    seq: Seq,
    report: &mut VerifyReport,
) -> Result<Option<QueueState>> {
    let (mut state, own) = match own_base {
        Some(base) => {
            let own = base.seq;
            (base.into_state(), own)
        }
        None => (QueueState::new(), Seq(0)),
    };
    if own > seq || scan.chain_from(own).end < seq {
        report.snapshot_seq = Some(seq.0);
        return Ok(None);
    }
    // A record under the snapshot that does not apply (history only: the
    // store opens from the snapshot) means the journal cannot rebuild the
    // snapshot's state by itself: a problem to report, not a refusal.
    if let Err(error) = recovery::replay_into(storage, scan, own, seq, &mut state) {
        if !error.is_corruption() {
            return Err(error);
        }
        report.snapshot_seq = Some(seq.0);
        report.problems.push(format!(
            "{error} (history only: the snapshot of record {seq} covers it; the journal cannot rebuild that state \
             by itself)"
        ));
        return Ok(None);
    }
    if manifest::renders_as_files(storage, dir, &state, seq) {
        report.snapshot_seq = Some(seq.0);
        report.snapshot_compared = true;
        return Ok(Some(state));
    }
    // Not byte for byte (files an older release rendered, say): the
    // states compared, the files' read whole.
    let from_snapshot = reload_snapshot(storage, dir, seq)?;
    if state == from_snapshot {
        report.snapshot_seq = Some(seq.0);
        report.snapshot_compared = true;
    } else {
        report.problems.push(format!(
            "{}: the snapshot of record {seq} differs from the journal's state at that record",
            Layout::new(dir).manifest().display()
        ));
    }
    drop(state);
    Ok(Some(from_snapshot))
}

/// The snapshot's state, read again (it held up a moment ago).
///
/// # Errors
/// [`Error::Corrupt`] naming the manifest when it no longer holds up or
/// covers another record (another process wrote a snapshot meanwhile).
fn reload_snapshot(storage: &dyn Storage, dir: &Path, seq: Seq) -> Result<QueueState> {
    match manifest::load_snapshot(storage, dir) {
        Ok(Some(data)) if data.seq == seq => Ok(data.into_state()),
        _ => Err(Error::Corrupt {
            path: Layout::new(dir).manifest(),
            offset: 0,
            detail: format!(
                "the snapshot of record {seq} changed while it was verified (another process wrote one?); \
                 verify again"
            ),
        }),
    }
}
