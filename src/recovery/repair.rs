//! `repair`: make a store that does not open open again, keeping every
//! acknowledged change that survives anywhere in it, destroying nothing.
//!
//! Each round gathers the evidence and asks the one decision:
//! * it works: the journal's records are decoded and applied as an open
//!   would (an event that does not decode or apply breaks the chain at its
//!   record), then what a writer's open does is done (a damaged tail set
//!   aside, the compaction base recorded);
//! * no starting point works: the one whose chain keeps the most is
//!   chosen, and everything after its break (the damaged record on, and
//!   every later segment) is set aside;
//! * no journal record and a manifest or base that does not hold up: that
//!   file is set aside, and the documented files become a legacy store;
//! * a legacy file that does not parse: every entry before its damage is
//!   kept, the import is made, and the file is set aside;
//! * a compaction base that does not hold up and nothing else knowing the
//!   state before the journal: its content is used if it still parses.
//!
//! Set-aside files are `*.broken` beside where they were; a name is never
//! reused.

use std::path::{Path, PathBuf};

use super::decision::{self, Decision};
use super::evidence::{CheckpointKind, Evidence};
use super::execute;
use super::execute::{ImportLimits, mark_tail, record_base};
use crate::error::{Error, Result};
use crate::journal::chain::{Break, ChainEnd};
use crate::journal::holes::{Hole, Holes};
use crate::journal::reader::SegmentScan;
use crate::journal::{repair, staging};
use crate::layout::{BASE_FILE, Layout, QUEUE_FILES};
use crate::seq::Seq;
use crate::snapshot::base;
use crate::snapshot::files::render_snapshot;
use crate::snapshot::{legacy, manifest};
use crate::storage::Storage;

/// What `repair` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepairReport {
    /// The first problem found (`None`: the store was sound and nothing changed).
    pub damage: Option<String>,
    /// What was done, one line each.
    pub actions: Vec<String>,
    /// Files written with set-aside bytes, or renamed aside (`*.broken`).
    pub set_aside: Vec<PathBuf>,
    /// The last record the repaired store holds.
    pub last_seq: Seq,
}

/// How many rounds `repair` takes at most (each sets something aside).
const ROUNDS_MAX: usize = 64;

/// Repairs the store in `dir` (its lock held by the caller).
///
/// # Errors
/// [`Error::Io`] of a step (what was set aside before it stays aside);
/// the last error if the store still does not open after every round.
pub fn repair_store(storage: &dyn Storage, dir: &Path, limits: ImportLimits) -> Result<RepairReport> {
    let mut report = RepairReport::default();
    let mut finished = false;
    for _ in 0..ROUNDS_MAX {
        let evidence = match Evidence::gather(storage, dir) {
            Ok(evidence) => evidence,
            Err(error) => {
                note(&mut report, &error);
                set_aside_foreign_file(storage, dir, &error, &mut report)?;
                continue;
            }
        };
        match decision::decide(storage, evidence) {
            Ok(mut decision) => {
                if let Err(error) = decision.build_state(storage) {
                    note(&mut report, &error);
                    cut_at_error(storage, dir, &error, &mut report)?;
                    continue;
                }
                if !decision.needs_repair() && (report.damage.is_none() || finished) {
                    report.last_seq = decision.chain.end;
                    return Ok(report);
                }
                if report.damage.is_none() {
                    report.damage = decision.problems().into_iter().next();
                }
                // Once more after it: the fresh snapshot (or the base the
                // writer's open recorded) may cover history it had to leave.
                report = finish(storage, dir, limits, &decision, report)?;
                finished = true;
            }
            Err(error) => {
                note(&mut report, &error);
                repair_round(storage, dir, &error, &mut report)?;
            }
        }
    }
    Err(Error::Corrupt {
        path: dir.to_path_buf(),
        offset: 0,
        detail: format!("repair did not converge after {ROUNDS_MAX} rounds"),
    })
}

fn note(report: &mut RepairReport, error: &Error) {
    if report.damage.is_none() {
        report.damage = Some(error.to_string());
    }
}

fn set_aside(report: &mut RepairReport, path: PathBuf, why: &str) {
    report.actions.push(format!("set {} aside: {why}", path.display()));
    report.set_aside.push(path);
}

/// The store opens: set aside the checkpoints that do not hold up, do
/// what a writer's open does, then write a fresh snapshot of the state, as
/// a writer's close would (the documented files are right again).
fn finish(
    storage: &dyn Storage,
    dir: &Path,
    limits: ImportLimits,
    decision: &Decision,
    mut report: RepairReport,
) -> Result<RepairReport> {
    for rejected in decision.evidence.rejected() {
        if storage.exists(&rejected.path) {
            let aside = repair::move_aside(storage, &rejected.path, crate::layout::DAMAGED_TAG)?;
            set_aside(&mut report, aside, "it does not hold up");
        }
    }
    let before = broken_files(storage, dir);
    let recovered = execute::recover_for_writer(storage, dir, limits)?;
    for path in broken_files(storage, dir) {
        if !before.contains(&path) {
            set_aside(
                &mut report,
                path,
                "by the writer's open: a damaged tail, a superseded compaction base, or a journal without records an import replaced",
            );
        }
    }
    // The writer's open made the compaction base cover the history damage.
    record_holes(storage, decision, &mut report)?;
    for segment in &decision.evidence.journal.segments {
        if let Some((offset, _)) = segment.stray {
            let copy = repair::cut_aside(storage, &segment.path, offset)?;
            let why = format!(
                "{} from byte {offset} on, after its last record (no record was missing; zeros written over them)",
                segment.path.display()
            );
            match copy {
                Some(copy) => set_aside(&mut report, copy, &why),
                None => report.actions.push(why),
            }
        }
    }
    if decision.evidence.journal.tail == crate::journal::tail::TailMarker::Damaged {
        mark_tail(storage, &decision.evidence.journal_dir)?;
        report
            .actions
            .push("wrote the tail marker anew (it did not parse), naming the last segment".into());
    }
    // The documented files may be the only copy of something (a manifest
    // deleted by hand, the journal cut): whichever the fresh snapshot would
    // change is kept aside first.
    let rendered = render_snapshot(&recovered.state);
    for (name, bytes) in QUEUE_FILES.iter().zip(&rendered.files) {
        let path = dir.join(name);
        let Ok(current) = storage.read(&path) else { continue };
        if current == *bytes {
            continue;
        }
        let copy = copy_aside(storage, &path, &mut report)?;
        if let (Some(held), Some(kept), Some(copy)) = (entry_count(&current), entry_count(bytes), copy)
            && held > kept
        {
            report.actions.push(format!(
                "WARNING: {} held {held} entries, the repaired state has {kept}: the documented files may hold \
                 changes whose journal records are lost; they are kept in {}",
                path.display(),
                copy.display()
            ));
        }
    }
    manifest::write_rendered(storage, dir, &rendered, recovered.last_seq)?;
    report.actions.push(format!(
        "wrote a snapshot of the repaired state (record {})",
        recovered.last_seq
    ));
    report.last_seq = recovered.last_seq;
    Ok(report)
}

/// History damage under the checkpoint: each damaged span is copied aside
/// (durably; nothing is cut) and recorded in `journal/holes` with the holes
/// recorded before that still match, so every reader steps over it naming
/// the records and where their bytes went, instead of stopping there.
fn record_holes(storage: &dyn Storage, decision: &Decision, report: &mut RepairReport) -> Result<()> {
    let scan = &decision.evidence.journal;
    let mut holes: Vec<Hole> = decision
        .holes
        .iter()
        .filter_map(|&(segment, damage)| scan.hole_for(segment, damage).cloned())
        .collect();
    let mut recorded = false;
    let mut gone = Vec::new();
    for &(segment, damage) in &decision.history {
        // A segment renamed aside for one damage has no others to record.
        if gone.contains(&segment) {
            continue;
        }
        if let Some(aside) = set_aside_unreadable_segment(storage, decision, segment, damage)? {
            gone.push(segment);
            set_aside(
                report,
                aside,
                "its header does not hold up, and the compaction base holds the state its records made",
            );
            continue;
        }
        if decision.header_rewrite_due(segment, damage) {
            rewrite_header(storage, &scan.segments[segment], report)?;
            continue;
        }
        if let Some(hole) = record_hole(storage, decision, segment, damage, report)? {
            holes.push(hole);
            recorded = true;
        }
    }
    holes.sort_by_key(|hole| (hole.segment, hole.offset));
    let now = if holes.is_empty() {
        Holes::None
    } else {
        Holes::Known(holes)
    };
    if recorded || scan.holes != now {
        crate::journal::holes::write(storage, &scan.dir, now.list())?;
    }
    Ok(())
}

/// Copies history damage `damage` of segment `segment` aside, when it can
/// be a hole, and returns the hole to record.
fn record_hole(
    storage: &dyn Storage,
    decision: &Decision,
    segment: usize,
    damage: usize,
    report: &mut RepairReport,
) -> Result<Option<Hole>> {
    let Some(mut hole) = decision.hole_due(segment, damage) else {
        return Ok(None);
    };
    let path = &decision.evidence.journal.segments[segment].path;
    let aside = repair::copy_span_aside(storage, path, hole.offset, hole.end)?;
    let records = if hole.first == hole.last {
        format!("record {}", hole.first)
    } else {
        format!("records {} to {}", hole.first, hole.last)
    };
    let kept = match &aside {
        Some(aside) => format!("copied to {}", aside.display()),
        None => "all zeros, nothing to copy".to_owned(),
    };
    report.actions.push(format!(
        "recorded {records} ({} bytes {} to {}, {kept}) as a hole the history reads on past: the {} holds the \
         state they made",
        path.display(),
        hole.offset,
        hole.end,
        decision.start.name()
    ));
    hole.set_aside = aside
        .as_deref()
        .and_then(Path::file_name)
        .map(|name| name.to_string_lossy().into_owned());
    report.set_aside.extend(aside);
    Ok(Some(hole))
}

/// Writes a damaged header anew from the segment's name (its records hold
/// up), keeping the damaged one aside.
fn rewrite_header(storage: &dyn Storage, scan: &SegmentScan, report: &mut RepairReport) -> Result<()> {
    let aside = repair::rewrite_header(storage, &scan.path, scan.first_seq)?;
    report.actions.push(format!(
        "wrote the header of {} anew from its name (its records hold up){}",
        scan.path.display(),
        aside.as_ref().map_or_else(String::new, |aside| format!(
            "; the damaged one is in {}",
            aside.display()
        ))
    ));
    report.set_aside.extend(aside);
    Ok(())
}

/// A segment under the checkpoint whose header does not hold up (none of
/// its records can be read) is renamed aside whole: the journal then
/// jumps over its records, which the compaction base covers, and the
/// event stream says so where they were. The last segment is never
/// renamed here (the writer's open deals with a damaged tail).
fn set_aside_unreadable_segment(
    storage: &dyn Storage,
    decision: &Decision,
    segment: usize,
    damage: usize,
) -> Result<Option<PathBuf>> {
    let path = &decision.evidence.journal.segments[segment].path;
    if !decision.segment_aside_due(segment, damage) || !storage.exists(path) {
        return Ok(None);
    }
    repair::move_aside(storage, path, crate::layout::HEADER_TAG).map(Some)
}

/// How many entries a documented file (a JSON array) holds, if it parses.
fn entry_count(bytes: &[u8]) -> Option<usize> {
    serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(bytes)
        .ok()
        .map(|entries| entries.len())
}

/// Keeps a copy of a documented file (as it is) before a snapshot replaces
/// it; returns the copy's path.
fn copy_aside(storage: &dyn Storage, path: &Path, report: &mut RepairReport) -> Result<Option<PathBuf>> {
    let Ok(crate::storage::Entry::File(_)) = storage.entry(path) else {
        return Ok(None);
    };
    let bytes = storage.read(path).map_err(|error| Error::io("read", path, error))?;
    let copy = repair::free_broken_name(storage, path, crate::layout::BEFORE_REPAIR_TAG)?;
    crate::storage::write_new(storage, &copy, &bytes)?;
    crate::storage::sync_parent(storage, &copy)?;
    set_aside(
        report,
        copy.clone(),
        "a copy of the documented file the new snapshot replaces",
    );
    Ok(Some(copy))
}

/// Every `*.broken` file in the store and its journal directory.
fn broken_files(storage: &dyn Storage, dir: &Path) -> Vec<PathBuf> {
    [dir.to_path_buf(), Layout::new(dir).journal()]
        .into_iter()
        .flat_map(|directory| {
            storage
                .list_dir(&directory)
                .unwrap_or_default()
                .into_iter()
                .filter(|name| crate::layout::is_aside(name))
                .map(move |name| directory.join(name))
        })
        .collect()
}

/// One round for a store no starting point opens.
fn repair_round(storage: &dyn Storage, dir: &Path, error: &Error, report: &mut RepairReport) -> Result<()> {
    let evidence = Evidence::gather(storage, dir)?;
    if let Error::BadQueueFile { .. } = error {
        return salvage_legacy_files(storage, dir, report);
    }
    if evidence.journal.last_seq().is_none() && evidence.covered_through().0 == 0 {
        // No record, and the checkpoint that held the state does not hold
        // up: its manifest (or base) goes aside, and the documented files
        // are read as a legacy store (salvaged if they must be).
        let base = evidence.journal_dir.join(crate::layout::BASE_FILE);
        let rejected_base = evidence.rejected().any(|rejected| rejected.path == base);
        let manifest = Layout::new(dir).manifest();
        let mut moved = false;
        for (path, why) in [(manifest, evidence.snapshot.is_some()), (base, rejected_base)] {
            if why && storage.exists(&path) {
                let aside = repair::move_aside(storage, &path, crate::layout::DAMAGED_TAG)?;
                set_aside(report, aside, "it does not hold up and nothing else records the queues");
                moved = true;
            }
        }
        if moved {
            return Ok(());
        }
        // Nothing to set aside there: what breaks the journal (a segment
        // that starts past the records due, say) is dealt with below.
    }
    if try_lenient_base(storage, &evidence, report)? {
        return Ok(());
    }
    let all = decision::candidates(&evidence);
    let best = all
        .iter()
        .max_by_key(|candidate| (candidate.chain.end, candidate.chain.start))
        .ok_or_else(|| error_clone(error))?;
    let ChainEnd::Broken(broken) = &best.chain.after else {
        return Err(error_clone(error));
    };
    let (segment, offset) = match *broken {
        Break::Damage { segment, damage } if continues_past(&evidence, &best.chain, segment, damage) => {
            // A file with a segment's name that holds nothing the chain
            // needs (planted, or left by something else): the records on
            // both sides of it continue each other, so it alone goes aside.
            let aside = repair::move_aside(
                storage,
                &evidence.journal.segments[segment].path,
                crate::layout::FOREIGN_TAG,
            )?;
            set_aside(
                report,
                aside,
                "not a segment of this journal: the records around it continue each other",
            );
            return Ok(());
        }
        Break::Damage { segment, damage } => (segment, evidence.journal.segments[segment].damages[damage].offset),
        Break::Gap { segment, run, .. } => {
            // A segment whose first record is not the one due is wrong
            // from its header on (the header names that record).
            let start = evidence.journal.segments[segment].runs[run].start;
            (
                segment,
                if start == crate::journal::format::SEGMENT_HEADER_BYTES as u64 {
                    0
                } else {
                    start
                },
            )
        }
        Break::Ahead { segment, .. } => (segment, 0),
        Break::Missing { first_seq } => {
            report.actions.push(format!(
                "accepted that the segment of records {first_seq} on is gone: the journal now ends at its last segment"
            ));
            return mark_tail(storage, &evidence.journal_dir);
        }
    };
    set_aside_from_on(storage, &evidence, segment, offset, report)
}

/// Is damage `damage` of segment `segment` a whole file (its header does
/// not hold) that the chain does not need: the next segment's first record,
/// right after its header, is the one due after the chain's end?
fn continues_past(evidence: &Evidence, chain: &crate::journal::chain::Chain, segment: usize, damage: usize) -> bool {
    let segments = &evidence.journal.segments;
    let header = crate::journal::format::SEGMENT_HEADER_BYTES as u64;
    segments[segment].damages[damage].offset < header
        && segments[segment].runs.is_empty()
        && segments.get(segment + 1).is_some_and(|next| {
            next.runs
                .first()
                .is_some_and(|run| run.start == header && run.first == chain.end.next())
        })
}

/// Sets aside segment `segment` from `offset` on, and every later segment,
/// in an order where a kill at any step leaves either the store as it was
/// (refused at the same damage) or the repaired one: the damaged bytes are
/// copied first, the tail marker is pointed at the segment that stays
/// last, the later segments go aside from the last one back (each one
/// gone leaves the damage where it was), and only then is the damaged
/// segment cut (or, damaged in its header, moved aside).
fn set_aside_from_on(
    storage: &dyn Storage,
    evidence: &Evidence,
    segment: usize,
    offset: u64,
    report: &mut RepairReport,
) -> Result<()> {
    let scans = &evidence.journal.segments;
    let path = &scans[segment].path;
    let whole = offset < crate::journal::format::SEGMENT_HEADER_BYTES as u64;
    let copy = if whole {
        None
    } else {
        repair::copy_aside(storage, path, offset)?
    };
    let stays_last = if whole { segment.checked_sub(1) } else { Some(segment) };
    match stays_last {
        Some(last) => crate::journal::tail::write(storage, &evidence.journal_dir, scans[last].first_seq)?,
        None => crate::journal::tail::remove(storage, &evidence.journal_dir)?,
    }
    let mut later_aside = Vec::new();
    for later in scans[segment + 1..].iter().rev() {
        later_aside.push(repair::move_aside(storage, &later.path, crate::layout::WHOLE_TAG)?);
    }
    if whole {
        let aside = repair::move_aside(storage, path, crate::layout::WHOLE_TAG)?;
        set_aside(report, aside, "damaged from its header on");
    } else {
        repair::cut(storage, path, offset)?;
        match copy {
            Some(copy) => set_aside(report, copy, &format!("{} from byte {offset} on", path.display())),
            None => report
                .actions
                .push(format!("cut {} at byte {offset} (zeros only after it)", path.display())),
        }
    }
    for aside in later_aside.into_iter().rev() {
        set_aside(report, aside, "after the damage, its records cannot be applied");
    }
    Ok(())
}

/// An event that does not decode or apply: its record on is set aside.
fn cut_at_error(storage: &dyn Storage, dir: &Path, error: &Error, report: &mut RepairReport) -> Result<()> {
    let evidence = Evidence::gather(storage, dir)?;
    let Some((path, offset)) = error.place() else {
        return Err(error_clone(error));
    };
    let Some(segment) = evidence.journal.segments.iter().position(|scan| scan.path == path) else {
        return Err(error_clone(error));
    };
    set_aside_from_on(storage, &evidence, segment, offset, report)
}

/// A file in `journal/` that is no segment: moved aside.
fn set_aside_foreign_file(storage: &dyn Storage, dir: &Path, error: &Error, report: &mut RepairReport) -> Result<()> {
    match error {
        Error::Corrupt { path, .. } if *path == Layout::new(dir).journal() => {
            let aside = repair::move_aside(storage, path, crate::layout::NOT_A_DIRECTORY_TAG)?;
            set_aside(report, aside, "not a directory where the journal belongs");
            Ok(())
        }
        Error::Corrupt { path, .. } if path.parent() == Some(Layout::new(dir).journal().as_path()) => {
            let aside = repair::move_aside(storage, path, crate::layout::FOREIGN_TAG)?;
            set_aside(report, aside, "not a journal segment");
            Ok(())
        }
        _ => Err(error_clone(error)),
    }
}

/// The legacy files do not all parse: keep every entry before each one's
/// damage, import them, and set the damaged files aside.
fn salvage_legacy_files(storage: &dyn Storage, dir: &Path, report: &mut RepairReport) -> Result<()> {
    let (data, damaged) = legacy::salvage_legacy(storage, dir)?;
    let journal_dir = Layout::new(dir).journal();
    let staging = staging::staging_dir(&journal_dir);
    let payloads = legacy::import_payloads(
        data,
        crate::clock::now(),
        crate::journal::format::RECORD_PAYLOAD_BYTES_MAX as usize,
    )?;
    staging::write_staged(storage, &staging, &payloads, 64 << 20)?;
    staging::install_staged(storage, &staging, &journal_dir)?;
    report
        .actions
        .push("imported every entry of the documented files that still reads".into());
    for path in damaged {
        let aside = repair::move_aside(storage, &path, crate::layout::DAMAGED_TAG)?;
        set_aside(report, aside, "its entries after the damage could not be read");
    }
    Ok(())
}

/// Nothing knows the state before the journal but a compaction base whose
/// checksum fails: its content is used if it parses.
fn try_lenient_base(storage: &dyn Storage, evidence: &Evidence, report: &mut RepairReport) -> Result<bool> {
    let path = evidence.journal_dir.join(BASE_FILE);
    let needed = evidence.journal.first_seq().is_some_and(|first| first.0 > 1)
        && evidence.covered_through() < evidence.journal.first_seq().unwrap_or_default().previous();
    if !needed || evidence.checkpoint(CheckpointKind::Base).is_some() || !storage.exists(&path) {
        return Ok(false);
    }
    let Some(data) = base::load_base_leniently(storage, &path) else {
        return Ok(false);
    };
    report
        .actions
        .push("used the compaction base whose checksum fails: nothing else knows the state before the journal".into());
    record_base(storage, evidence, &data)?;
    Ok(true)
}

fn error_clone(error: &Error) -> Error {
    let path = match error {
        Error::Io { path, .. } | Error::BadQueueFile { path, .. } => Some(path.clone()),
        _ => error.place().map(|(path, _)| path.to_path_buf()),
    };
    Error::Corrupt {
        path: path.unwrap_or_default(),
        offset: error.place().map_or(0, |(_, offset)| offset),
        detail: format!("repair cannot resolve this: {error}"),
    }
}
