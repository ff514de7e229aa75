//! What a writer's open does once the decision is made (and only then: a
//! store that cannot open is left exactly as it was).
//!
//! * Leftovers of interrupted work (`*.tmp`, a staging directory) go.
//! * A legacy store is imported: the whole import is written aside,
//!   made durable, and installed at once; the legacy files stay as they
//!   are until a snapshot replaces them.
//! * A damaged tail is set aside (copied to `*.broken`, then cut) — a torn
//!   write, or an acknowledged record the starting point covers.
//! * If only the snapshot knows the starting state (the journal cannot
//!   reach it by itself), it is recorded as the compaction base, so the
//!   journal never depends on the documented files.
//! * The writer then appends to the last segment if it ends exactly at
//!   the chain's end, else starts a new one.

use std::path::Path;

use super::Recovered;
use super::decision::{self, Decision, Start};
use super::evidence::{CheckpointKind, Evidence};
use crate::error::Result;
use crate::journal::reader::SegmentScan;
use crate::journal::{format, repair, segment, staging};
use crate::layout::{BASE_FILE, Layout};
use crate::seq::Seq;
use crate::snapshot::base;
use crate::snapshot::{legacy, manifest};
use crate::storage::{self, Storage};

/// The limits a legacy import respects (the writer's own).
#[derive(Debug, Clone, Copy)]
pub struct ImportLimits {
    /// The largest event, in bytes.
    pub event_bytes_max: usize,
    /// A segment's size before it rolls over.
    pub segment_bytes_max: u64,
    /// The import's time stamp.
    pub now: f64,
}

/// Recovers the store in `dir` for a writer that holds its lock: decides,
/// carries the decision out, and says where to append.
///
/// # Errors
/// As [`decision::decide`] (nothing changed); [`crate::error::Error::Io`] of a
/// step after it.
pub fn recover_for_writer(storage: &dyn Storage, dir: &Path, limits: ImportLimits) -> Result<Recovered> {
    let evidence = Evidence::gather(storage, dir)?;
    let mut decision = decision::decide(storage, evidence)?;
    remove_leftovers(storage, dir)?;
    if decision.start == Start::Legacy {
        import_legacy(storage, &decision, limits)?;
        decision = decision::decide(storage, Evidence::gather(storage, dir)?)?;
    }
    if carry_out(storage, &decision)? {
        decision = decision::decide(storage, Evidence::gather(storage, dir)?)?;
    }
    let state = decision.build_state(storage)?;
    let mut recovered = decision.recovered(storage, state)?;
    recovered.end.last_segment = append_point(storage, &decision)?;
    // A hint for time queries: failing to write it costs them speed only.
    if let Err(error) = crate::journal::times::refresh(storage, &decision.evidence.journal, &crate::event::decode_ts) {
        tracing::warn!(%error, "could not update the journal's time index");
    }
    // A hint for one movie's history, likewise.
    if let Err(error) = crate::journal::ids::refresh(storage, &decision.evidence.journal, &crate::event::decode_ids) {
        tracing::warn!(%error, "could not update the journal's id filters");
    }
    Ok(recovered)
}

/// Leftovers of an interrupted snapshot, segment creation or import.
pub(crate) fn remove_leftovers(storage: &dyn Storage, dir: &Path) -> Result<()> {
    let journal_dir = Layout::new(dir).journal();
    manifest::remove_leftovers(storage, dir)?;
    segment::remove_leftovers(storage, &journal_dir)?;
    staging::remove_staging(storage, &staging::staging_dir(&journal_dir))
}

/// Imports a legacy store's files as records `1..=n`, all at once.
fn import_legacy(storage: &dyn Storage, decision: &Decision, limits: ImportLimits) -> Result<()> {
    let data = decision.legacy.clone().unwrap_or_default();
    let payloads = legacy::import_payloads(data, limits.now, limits.event_bytes_max)?;
    let journal_dir = &decision.evidence.journal_dir;
    let staging = staging::staging_dir(journal_dir);
    tracing::info!(
        dir = %decision.evidence.dir.display(),
        records = payloads.len(),
        "importing the legacy queue files"
    );
    staging::write_staged(storage, &staging, &payloads, limits.segment_bytes_max)?;
    staging::install_staged(storage, &staging, journal_dir)
}

/// Sets a damaged tail aside and records the base the decision needs.
/// Says whether anything changed (the evidence is then gathered again).
fn carry_out(storage: &dyn Storage, decision: &Decision) -> Result<bool> {
    let mut changed = false;
    if let Some(tail) = decision.tail {
        let segment = &decision.evidence.journal.segments[tail.segment];
        let damage = &segment.damages[tail.damage];
        if tail.covered {
            tracing::warn!(
                path = %segment.path.display(),
                offset = damage.offset,
                record = %damage.expected,
                "an acknowledged record at the journal's end is damaged; the checkpoint covers it, the bytes are set aside"
            );
        } else {
            tracing::warn!(
                path = %segment.path.display(),
                offset = damage.offset,
                bytes = damage.end - damage.offset,
                "setting the torn tail of the journal aside (an incomplete last write, never acknowledged)"
            );
        }
        set_aside_from(storage, segment, damage.offset)?;
        changed = true;
    }
    if decision.base_needed
        && let Some(data) = decision.evidence.snapshot()
    {
        record_base(storage, &decision.evidence, data)?;
        changed = true;
    }
    Ok(changed)
}

/// Sets a segment's bytes from `offset` on aside: the whole file when the
/// damage reaches into its header, else a copy of the rest, then a cut.
pub(super) fn set_aside_from(storage: &dyn Storage, segment: &SegmentScan, offset: u64) -> Result<()> {
    if offset < format::SEGMENT_HEADER_BYTES as u64 {
        repair::move_aside(storage, &segment.path, crate::layout::WHOLE_TAG)?;
    } else {
        repair::cut_aside(storage, &segment.path, offset)?;
    }
    Ok(())
}

/// Writes the snapshot's state as the compaction base; a base already
/// there (an older one, or one that does not hold up) is set aside first.
pub(super) fn record_base(
    storage: &dyn Storage,
    evidence: &Evidence,
    data: &crate::snapshot::SnapshotData,
) -> Result<()> {
    let path = evidence.journal_dir.join(BASE_FILE);
    if storage.exists(&path) {
        let tag = match evidence.checkpoint(CheckpointKind::Base) {
            Some(old) => old.to_string(),
            None => crate::layout::DAMAGED_TAG.to_owned(),
        };
        repair::move_aside(storage, &path, &tag)?;
    }
    storage
        .create_dir_all(&evidence.journal_dir)
        .map_err(|error| crate::error::Error::io("create directory", &evidence.journal_dir, error))?;
    storage::sync_parent(storage, &evidence.journal_dir)?;
    tracing::info!(seq = %data.seq, "recording the snapshot's state as the compaction base");
    base::write_base(storage, &evidence.journal_dir, data)
}

/// The last segment, if the writer can append to it: its header holds,
/// nothing damaged is in it, and it ends exactly at the chain's end (or
/// holds no record and starts at the next one). A header-only segment that
/// starts elsewhere holds nothing and is set aside.
fn append_point(storage: &dyn Storage, decision: &Decision) -> Result<Option<(std::path::PathBuf, Seq, u64)>> {
    let Some(last) = decision.evidence.journal.segments.last() else {
        return Ok(None);
    };
    let next = decision.chain.end.next();
    let clean = last.header_ok() && last.damages.is_empty();
    let continues = match last.runs.last() {
        Some(run) => run.last == decision.chain.end,
        None => last.first_seq == next,
    };
    if clean && continues {
        return Ok(Some((last.path.clone(), last.first_seq, last.valid_end())));
    }
    if clean && last.runs.is_empty() {
        repair::move_aside(storage, &last.path, crate::layout::EMPTY_TAG)?;
        mark_tail(storage, &decision.evidence.journal_dir)?;
    }
    Ok(None)
}

/// Points the tail marker at the journal's last segment as it is now (or
/// removes it when no segment is left).
pub(super) fn mark_tail(storage: &dyn Storage, journal_dir: &Path) -> Result<()> {
    let segments = crate::journal::segment::list_segments(storage, journal_dir)?;
    match segments.last() {
        Some(last) => crate::journal::tail::write(storage, journal_dir, last.first_seq),
        None => crate::journal::tail::remove(storage, journal_dir),
    }
}
