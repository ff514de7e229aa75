//! The one decision, from all the evidence, of where the state starts and
//! which records continue it. Open, `verify` and `repair` all ask it, so
//! `verify` passes exactly when open succeeds; `replay`, which reads only
//! the prefix its target needs, tries its starting points by the same rule
//! ([`in_order`]) and names them with the same [`Start`].
//!
//! The rules, in `docs/DURABILITY.md` as a table:
//! * A starting point is a valid checkpoint (snapshot or compaction base:
//!   the state as of record `c`), or nothing (record 0) — or, for a store
//!   with no valid journal record, no manifest and no base, its legacy
//!   files (the state at record 0, when the journal from nothing works).
//! * A starting point works when valid records continue it without a hole
//!   to the journal's end: `c + 1, c + 2, …`, every valid record after it
//!   reached, at most a damaged tail in the last segment after them.
//! * Of the starting points that work, the latest is used. Damage before
//!   the records it needs is history only (the checkpoint knows the state
//!   there). A damaged tail after them is a torn tail when the record due
//!   there is past the starting point (it was never acknowledged), else an
//!   acknowledged record the checkpoint covers.
//! * No starting point works: the store does not open, and the error names
//!   the first damage that breaks the best one (the one `repair` keeps).

use super::evidence::{CheckpointKind, Evidence};
use crate::error::{Error, Result};
use crate::journal::chain::{Break, Chain, ChainEnd};
use crate::journal::holes::{Hole, Holes};
use crate::journal::reader::DamageKind;
use crate::layout::{BASE_FILE, HOLES_FILE};
use crate::seq::Seq;
use crate::snapshot::legacy;
use crate::snapshot::manifest::OnDisk;
use crate::storage::Storage;

/// Where a rebuild of the queues starts: before any record, at a
/// checkpoint the store keeps beside its journal, or from a legacy store's
/// files. Open, `verify`, `repair` and `replay` name it the same way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Start {
    /// Nothing: the journal holds every record from 1 (or none at all).
    #[default]
    Empty,
    /// The snapshot: the documented files and their manifest.
    Snapshot,
    /// The compaction base (`journal/base.json`).
    Base,
    /// A legacy store's documented files (no journal yet).
    Legacy,
}

impl From<CheckpointKind> for Start {
    fn from(kind: CheckpointKind) -> Start {
        match kind {
            CheckpointKind::Snapshot => Start::Snapshot,
            CheckpointKind::Base => Start::Base,
        }
    }
}

impl std::fmt::Display for Start {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

/// Which starting point a rebuild tries first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The latest (the least to replay): the one rule.
    Latest,
    /// The earliest (the most to replay): what the tests compare with.
    Earliest,
}

/// Sorts `points` the way the one rule tries them: the latest starting
/// point first, and at the same record the snapshot, then the base, then
/// nothing (each gives the same state there; the snapshot also vouches for
/// the documented files). The first whose records reach the target is used.
pub fn in_order<T>(points: &mut [T], start_of: impl Fn(&T) -> (Start, Seq), order: Order) {
    let rank = |point: &T| {
        let (start, seq) = start_of(point);
        let preference = match start {
            Start::Snapshot => 3,
            Start::Base => 2,
            Start::Legacy => 1,
            Start::Empty => 0,
        };
        std::cmp::Reverse((seq, preference))
    };
    points.sort_by_key(rank);
    if order == Order::Earliest {
        points.reverse();
    }
}

/// A damaged tail the chosen chain leaves in the last segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail {
    /// The segment (the last one).
    pub segment: usize,
    /// The damage's index in it.
    pub damage: usize,
    /// Is the record due there covered by the starting point (acknowledged
    /// and known), or past it (a torn write, never acknowledged)?
    pub covered: bool,
}

/// What recovery decided.
#[derive(Debug)]
pub struct Decision {
    /// The evidence it was decided from.
    pub evidence: Evidence,
    /// Where the state starts.
    pub start: Start,
    /// The starting point's record and the records that continue it.
    pub chain: Chain,
    /// The damaged tail, if any.
    pub tail: Option<Tail>,
    /// Damage before the records the chain needs (segment, damage index):
    /// history the starting point makes unnecessary.
    pub history: Vec<(usize, usize)>,
    /// Such damage `repair` already set aside and recorded as a hole
    /// (`journal/holes`): readers step over it, naming it.
    pub holes: Vec<(usize, usize)>,
    /// Does only the snapshot know the state at the starting point (the
    /// journal cannot reach it by itself), so that a writer must record it
    /// as the compaction base?
    pub base_needed: bool,
    /// The legacy files' content, for [`Start::Legacy`].
    pub legacy: Option<legacy::LegacyFiles>,
    /// The time of the chain's last record, once `build_state` has read it.
    pub last_ts: Option<f64>,
    /// The time of the first record after the starting point (set by
    /// `build_state` when it replays one).
    pub first_ts: Option<f64>,
    /// The documented files the state started from (set by `build_state`
    /// when it starts from the snapshot).
    pub on_disk: OnDisk,
}

impl Start {
    /// Its name in reports: `empty`, `snapshot`, `base` or `legacy`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Start::Empty => "empty",
            Start::Snapshot => "snapshot",
            Start::Base => "base",
            Start::Legacy => "legacy",
        }
    }

    /// The checkpoint it is, if it is one.
    #[must_use]
    pub(crate) fn checkpoint(self) -> Option<CheckpointKind> {
        match self {
            Start::Snapshot => Some(CheckpointKind::Snapshot),
            Start::Base => Some(CheckpointKind::Base),
            Start::Empty | Start::Legacy => None,
        }
    }
}

impl Decision {
    /// Would `repair` change anything: a damaged tail to set aside, a base
    /// to record, a checkpoint that does not hold up, a legacy store to
    /// import? (History damage a durable base covers is left as it is.)
    #[must_use]
    pub fn needs_repair(&self) -> bool {
        self.tail.is_some()
            || self.base_needed
            || self.evidence.rejected().next().is_some()
            || self.start == Start::Legacy
            || self.evidence.journal.holes == Holes::Damaged
            || self.evidence.journal.tail == crate::journal::tail::TailMarker::Damaged
            || !self.evidence.pinned_empty.is_empty()
            || self
                .evidence
                .journal
                .segments
                .iter()
                .any(|segment| segment.stray.is_some())
            || self.history.iter().any(|&(segment, damage)| {
                self.hole_due(segment, damage).is_some()
                    || self.segment_aside_due(segment, damage)
                    || self.header_rewrite_due(segment, damage)
            })
    }

    /// Is damage `damage` of segment `segment` its header (the header does
    /// not hold up, or names another first record than the file's name)?
    fn header_damage(&self, segment: usize, damage: usize) -> bool {
        let found = &self.evidence.journal.segments[segment].damages[damage];
        found.offset == 0 && matches!(found.kind, DamageKind::Header(_) | DamageKind::NameMismatch { .. })
    }

    /// Does `repair` rename segment `segment` aside whole for its history
    /// damage `damage`: a header that does not hold up and no record that
    /// can be read, under a checkpoint that covers every record it held
    /// (it is not the last segment, and the next starts at most one past
    /// the checkpoint)?
    #[must_use]
    pub fn segment_aside_due(&self, segment: usize, damage: usize) -> bool {
        let segments = &self.evidence.journal.segments;
        self.header_damage(segment, damage)
            && segments[segment].runs.is_empty()
            && self.start.checkpoint().is_some()
            && segments
                .get(segment + 1)
                .is_some_and(|next| next.first_seq <= self.chain.start.next())
    }

    /// Does `repair` write segment `segment`'s header anew for its history
    /// damage `damage`: a header that does not hold up over records that
    /// do (their checksums are seeded with the first record its name
    /// gives, so they confirm the name: the header holds nothing else)?
    #[must_use]
    pub fn header_rewrite_due(&self, segment: usize, damage: usize) -> bool {
        let scan = &self.evidence.journal.segments[segment];
        self.header_damage(segment, damage)
            && scan.runs.first().is_some_and(|run| {
                run.start == crate::journal::format::SEGMENT_HEADER_BYTES as u64 && run.first == scan.first_seq
            })
    }

    /// The hole `repair` records for history damage `damage` of segment
    /// `segment`, when it can be one: damaged bytes (not a header or a
    /// sequence number out of place) under a checkpoint, with valid
    /// records resuming after them. Its `set_aside` is not filled in.
    #[must_use]
    pub fn hole_due(&self, segment: usize, damage: usize) -> Option<Hole> {
        let scan = &self.evidence.journal;
        let found = &scan.segments[segment].damages[damage];
        if self.start.checkpoint().is_none() || !matches!(found.kind, DamageKind::Record(_)) {
            return None;
        }
        let resumes = scan.resumes_after(segment, damage)?;
        (resumes > found.expected && resumes <= self.chain.start.next()).then(|| Hole {
            segment: scan.segments[segment].first_seq,
            offset: found.offset,
            end: found.end,
            first: found.expected,
            last: resumes.previous(),
            set_aside: None,
        })
    }

    /// The problems an open of this store survives, in words: each says
    /// what the next writer open (or `repair`) does about it.
    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        let decision = self;
        let evidence = &decision.evidence;
        let mut problems: Vec<String> = decision
            .history
            .iter()
            .map(|&(segment, damage)| decision.history_problem(segment, damage))
            .collect();
        for path in &evidence.pinned_empty {
            problems.push(format!(
                "{}: missing; the manifest pins it as an empty queue, so the snapshot holds without it (the next \
                 writer close, or `movie-queue repair`, writes it again)",
                path.display()
            ));
        }
        if evidence.journal.tail == crate::journal::tail::TailMarker::Damaged {
            problems.push(format!(
                "{}: the tail marker does not parse, so a lost last segment would go unnoticed (a writer's open, \
                 or `movie-queue repair`, writes it anew)",
                evidence.journal.dir.join(crate::layout::TAIL_FILE).display()
            ));
        }
        if evidence.journal.holes == Holes::Damaged {
            problems.push(format!(
                "{}: the record of the holes `repair` set aside does not parse, so the damage it recorded is \
                 reported again (`movie-queue repair` records it anew)",
                evidence.journal.dir.join(HOLES_FILE).display()
            ));
        }
        problems.extend(evidence.identity_damaged.clone());
        problems.extend(missing_between_segments(evidence));
        problems.extend(stray_bytes(evidence));
        if let Some(tail) = decision.tail {
            let scan = &evidence.journal.segments[tail.segment];
            let damage = &scan.damages[tail.damage];
            problems.push(if tail.covered {
                format!(
                    "{}: record {} at byte offset {} is damaged; the {} covers it, and the next writer open sets the bytes aside",
                    scan.path.display(),
                    damage.expected,
                    damage.offset,
                    decision.start.name()
                )
            } else {
                format!(
                    "{}: a torn tail of {} bytes at byte offset {} (an incomplete last write, never acknowledged); \
                     the next writer open sets it aside",
                    scan.path.display(),
                    damage.end - damage.offset,
                    damage.offset
                )
            });
        }
        if let Some(Err(rejected)) = &evidence.snapshot {
            problems.push(format!(
                "{rejected} (not used: the journal rebuilds the state; `movie-queue snapshot` writes a new \
                 snapshot, as does the next close of a writer that opens the whole store, such as the application)"
            ));
        }
        if let Some(Err(rejected)) = &evidence.base {
            problems.push(format!("{rejected} (not used; `movie-queue repair` sets it aside)"));
        }
        if decision.base_needed {
            problems.push(decision.base_needed_problem());
        }
        problems
    }

    /// History damage `damage` of segment `segment`, in words, with what
    /// `repair` does about it.
    fn history_problem(&self, segment: usize, damage: usize) -> String {
        let segments = &self.evidence.journal.segments;
        let scan = &segments[segment];
        let then = match self.hole_due(segment, damage) {
            Some(hole) if hole.first == hole.last => format!(
                "`movie-queue repair` sets record {} aside so that the history reads on past it",
                hole.first
            ),
            Some(hole) => format!(
                "`movie-queue repair` sets records {} to {} aside so that the history reads on past them",
                hole.first, hole.last
            ),
            None if self.segment_aside_due(segment, damage) => {
                "`movie-queue repair` sets the segment aside so that the history reads on past it".to_owned()
            }
            None if self.header_rewrite_due(segment, damage) => {
                "its records hold up: `movie-queue repair` writes the header anew from the file's name, keeping \
                 the damaged one aside"
                    .to_owned()
            }
            None => "`movie-queue log` and `replay` stop at it".to_owned(),
        };
        format!(
            "{} (history only: the {} covers it; {then})",
            scan.error(&scan.damages[damage], segment + 1 == segments.len()),
            self.start.name()
        )
    }

    /// Only the snapshot knows the state the journal continues, in words.
    fn base_needed_problem(&self) -> String {
        let last = self.evidence.journal.last_seq().unwrap_or_default();
        if last < self.chain.start {
            format!(
                "the journal ends at record {last}, but the snapshot covers record {}: records {} to {} are \
                 missing from the journal (cut, or lost with a segment); the snapshot holds the state they made, \
                 and the next writer open records it as the compaction base",
                self.chain.start,
                last.next(),
                self.chain.start
            )
        } else {
            "only the snapshot knows the state the journal continues; the next writer open records it as the \
             compaction base"
                .into()
        }
    }
}

/// Records missing between two segments (one deleted by hand, say) that
/// a store opens past because a checkpoint covers them: history only, as
/// damage under a checkpoint is. Records the compaction base covers are
/// not reported: `compact` and `repair` leave such holes on purpose.
/// The sealed segments' stray bytes after their records, each worded.
fn stray_bytes(evidence: &Evidence) -> impl Iterator<Item = String> + '_ {
    evidence.journal.segments.iter().filter_map(|segment| {
        let (offset, end) = segment.stray?;
        Some(format!(
            "{}: bytes {offset} to {end}, after the segment's last record, are not the zeros its writer laid down; \
             no record is missing (the next segment goes on at the next record), and `movie-queue repair` sets \
             them aside",
            segment.path.display()
        ))
    })
}

fn missing_between_segments(evidence: &Evidence) -> Vec<String> {
    let base = evidence.checkpoint(CheckpointKind::Base).unwrap_or_default();
    let mut missing = Vec::new();
    for pair in evidence.journal.segments.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        let Some(run) = before.runs.last() else { continue };
        let due = run.last.next();
        if before.damages.iter().any(|damage| damage.offset >= run.end) || after.first_seq <= due {
            continue;
        }
        let last = after.first_seq.previous();
        if last <= base {
            continue;
        }
        missing.push(format!(
            "{}: records {due} to {last} are missing before it (a segment deleted?); history only if a checkpoint \
             covers them: `movie-queue log` and `replay` stop there",
            after.path.display()
        ));
    }
    missing
}

/// A starting point and how far the journal continues it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Which.
    pub start: Start,
    /// Its chain.
    pub chain: Chain,
}

/// Every starting point that holds up, with its chain.
#[must_use]
pub fn candidates(evidence: &Evidence) -> Vec<Candidate> {
    let mut candidates = vec![Candidate {
        start: Start::Empty,
        chain: evidence.journal.chain_from(Seq(0)),
    }];
    for kind in [CheckpointKind::Base, CheckpointKind::Snapshot] {
        if let Some(seq) = evidence.checkpoint(kind) {
            candidates.push(Candidate {
                start: Start::from(kind),
                chain: evidence.journal.chain_from(seq),
            });
        }
    }
    candidates
}

/// Decides where the state of the store `evidence` describes starts.
///
/// # Errors
/// The corruption that keeps the store from opening, naming the file (and
/// offset) involved; [`Error::BadQueueFile`] for a legacy file that does
/// not parse; [`Error::Io`].
pub fn decide(storage: &dyn Storage, evidence: Evidence) -> Result<Decision> {
    // No valid record, no checkpoint: the legacy files are the state at
    // record 0 — as long as the journal from nothing holds up (at most a
    // torn first write, never acknowledged), for reader and writer alike.
    let from_nothing = evidence.journal.chain_from(Seq(0));
    if evidence.is_legacy()
        && from_nothing.is_complete()
        && let Some(data) = legacy::load_legacy(storage, &evidence.dir)?
    {
        return Ok(finish(evidence, Start::Legacy, from_nothing, Some(data)));
    }
    refuse_empty_start_over_lost_state(&evidence)?;
    let all = candidates(&evidence);
    let mut tried = all.clone();
    in_order(
        &mut tried,
        |candidate| (candidate.start, candidate.chain.start),
        Order::Latest,
    );
    let chosen = tried.into_iter().find(|candidate| candidate.chain.is_complete());
    match chosen {
        Some(candidate) => Ok(finish(evidence, candidate.start, candidate.chain, None)),
        None => Err(refusal(&evidence, &all)),
    }
}

/// A store whose journal holds no record but whose manifest or base exists
/// (and does not hold up) is not an empty store: those files were the only
/// copy of its state.
fn refuse_empty_start_over_lost_state(evidence: &Evidence) -> Result<()> {
    if evidence.journal.last_seq().is_some() || evidence.covered_through().0 > 0 {
        return Ok(());
    }
    match evidence.rejected().next() {
        Some(rejected)
            if evidence.checkpoint(CheckpointKind::Snapshot).is_none()
                && evidence.checkpoint(CheckpointKind::Base).is_none() =>
        {
            Err(Error::Corrupt {
                path: rejected.path.clone(),
                offset: 0,
                detail: format!(
                    "{}; the journal holds no record, so nothing else knows the queues: \
                     run `movie-queue repair` to keep every entry that still reads and set the damaged file aside",
                    rejected.detail
                ),
            })
        }
        _ => Ok(()),
    }
}

fn finish(evidence: Evidence, start: Start, chain: Chain, legacy: Option<legacy::LegacyFiles>) -> Decision {
    let tail = match chain.after {
        ChainEnd::Tail { segment, damage } => Some(Tail {
            segment,
            damage,
            covered: evidence.journal.segments[segment].damages[damage].expected <= chain.start,
        }),
        _ => None,
    };
    let mut history = evidence.journal.damages_before(chain.first);
    if let Some(tail) = tail {
        history.retain(|&at| at != (tail.segment, tail.damage));
    }
    history.retain(|&(segment, damage)| !compacted_gap(&evidence, segment, damage));
    // History `repair` set aside and recorded: read past, not damage.
    let (holes, history) = history
        .into_iter()
        .partition(|&(segment, damage)| evidence.journal.hole_for(segment, damage).is_some());
    let base_needed = start == Start::Snapshot && !journal_reaches(&evidence, chain.start);
    Decision {
        evidence,
        start,
        chain,
        tail,
        history,
        holes,
        base_needed,
        legacy,
        last_ts: None,
        first_ts: None,
        on_disk: OnDisk::default(),
    }
}

/// Is damage `damage` of `segment` only a jump over records the compaction
/// base covers (a valid record followed by a later one, every record
/// between them at or below the base)? That is compaction, not damage:
/// `compact` and `repair` leave such holes, inside a segment as between
/// segments, and the event stream names them as compacted away.
fn compacted_gap(evidence: &Evidence, segment: usize, damage: usize) -> bool {
    let base = evidence.checkpoint(CheckpointKind::Base).unwrap_or_default();
    let damage = &evidence.journal.segments[segment].damages[damage];
    matches!(damage.kind, DamageKind::Sequence { found } if found > damage.expected && found.previous() <= base)
}

/// Can the journal (from its own base, or from nothing) reproduce the
/// state as of record `seq` without the snapshot?
fn journal_reaches(evidence: &Evidence, seq: Seq) -> bool {
    let own = evidence.checkpoint(CheckpointKind::Base).unwrap_or_default();
    own >= seq || evidence.journal.chain_from(own).end >= seq
}

/// The error for a store no starting point opens: the break of the
/// candidate that keeps the most (the one `repair` would keep).
fn refusal(evidence: &Evidence, all: &[Candidate]) -> Error {
    let best = all
        .iter()
        .max_by_key(|candidate| (candidate.chain.end, candidate.chain.start))
        .unwrap_or(&all[0]);
    let ChainEnd::Broken(broken) = &best.chain.after else {
        unreachable!("no candidate is complete");
    };
    if let (Start::Empty, Break::Gap { expected, .. }) = (best.start, broken)
        && *expected == Seq(1)
        && evidence.checkpoint(CheckpointKind::Base).is_none()
    {
        let first = evidence.journal.first_seq().unwrap_or_default();
        let why = match &evidence.base {
            None => "is missing".to_owned(),
            Some(Err(rejected)) => format!("does not hold up ({})", rejected.detail),
            Some(Ok(_)) => "does not reach it".to_owned(),
        };
        return Error::Corrupt {
            path: evidence.journal_dir.join(BASE_FILE),
            offset: 0,
            detail: format!(
                "the journal starts at record {first}; the compaction base that holds the state before it {why}, \
                 and no snapshot covers the gap"
            ),
        };
    }
    evidence.journal.break_error(broken)
}
