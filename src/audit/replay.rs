//! Time travel: the state as of a record or a time, rebuilt from the
//! latest starting point at or before it (snapshot, compaction base, or
//! nothing) and the records up to it — and no further. Segments after the
//! target are not read, so the answer costs the prefix, not the journal,
//! and damage after the target does not stop it. A target the store
//! cannot answer exactly (before what it still holds, behind damage, past
//! its end, in the future) is refused with the range it can answer.

use std::path::Path;

use super::time::time_target;
use crate::error::{Answerable, Error, Refusal, Result};
use crate::journal::chain::{Break, Chain, ChainEnd};
use crate::journal::reader::{self, JournalScan};
use crate::journal::segment;
use crate::journal::tail::TailMarker;
use crate::layout::Layout;
use crate::projection::QueueState;
use crate::recovery::{self, Order, Start, in_order};
use crate::seq::{Seq, Until};
use crate::snapshot::base;
use crate::snapshot::manifest::{self, OnDisk};
use crate::storage::{RealStorage, Storage};

/// A past state, and how it was rebuilt.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Replayed {
    /// The queues as of `seq`.
    pub state: QueueState,
    /// The last record the state reflects (`Seq(0)`: none, the empty store).
    pub seq: Seq,
    /// That record's time, when it was read (a replay that starts from a
    /// checkpoint at `seq` itself reads no record).
    pub ts: Option<f64>,
    /// Where the rebuild started: [`Start::Empty`], [`Start::Snapshot`]
    /// or [`Start::Base`] (chosen by the rule open uses: the latest whose
    /// records reach the target).
    pub start: Start,
    /// Records after `seq` exist and were not read: damage among them
    /// does not change this answer (`verify` checks the whole journal).
    pub unread_after: bool,
    /// The documented files the rebuild started from (the snapshot's), whose
    /// queues the state records changes to: what a snapshot of it keeps.
    pub(crate) on_disk: OnDisk,
}

/// The state of the store in `dir` as of `until`, read from disk; see
/// [`Replayed`]. Needs no lock and changes nothing; works while a writer
/// appends (a record it has not written yet is past the end).
///
/// # Errors
/// [`Error::Unanswerable`] for a target the store cannot answer
/// exactly, with the range it can; [`Error::OutOfRange`] for a time that
/// is not finite; corruption or I/O in the records the answer needs.
pub fn replay(dir: &Path, until: Until) -> Result<Replayed> {
    crate::lock::require_directory(dir)?;
    replay_with(&RealStorage, dir, until)
}

/// [`replay`] through a given storage.
///
/// # Errors
/// As [`replay`].
pub fn replay_with(storage: &dyn Storage, dir: &Path, until: Until) -> Result<Replayed> {
    let journal_dir = Layout::new(dir).journal();
    match until {
        Until::Seq(seq) => rebuild_from(storage, dir, seq, Order::Latest, None).map(|replayed| replayed.0),
        Until::Time(time) => {
            // The time index only says where to look; the records read
            // confirm it (every one at or before the time, the starting
            // point's too), else the search is made again without it.
            let target = time_target(storage, &journal_dir, time, true)?;
            let replayed = rebuild_from(storage, dir, target, Order::Latest, Some(time))?;
            if replayed.1 {
                return Ok(replayed.0);
            }
            tracing::warn!(dir = %dir.display(), "the journal's time index does not hold up; searching without it");
            let target = time_target(storage, &journal_dir, time, false)?;
            rebuild_from(storage, dir, target, Order::Latest, None).map(|replayed| replayed.0)
        }
    }
}

/// The state an open of the store in `dir` reaches, rebuilt from the
/// earliest starting point that reaches it (nothing, or the compaction
/// base), not the snapshot: what the tests compare the live state with.
///
/// # Errors
/// What keeps the store from opening; corruption or I/O.
#[cfg(any(test, feature = "testing"))]
pub fn full_replay(storage: &dyn Storage, dir: &Path) -> Result<QueueState> {
    let evidence = crate::recovery::Evidence::gather(storage, dir)?;
    let target = crate::recovery::decision::decide(storage, evidence)?.chain.end;
    rebuild_from(storage, dir, target, Order::Earliest, None).map(|replayed| replayed.0.state)
}

/// A starting point: the state as of record `seq`.
struct Point {
    start: Start,
    seq: Seq,
}

/// What the checkpoints on disk say, read cheaply: the snapshot's record
/// from its manifest alone, the base's from its head once its checksum
/// holds (each is loaded whole only when a replay starts from it).
struct Checkpoints {
    snapshot: Option<Seq>,
    base: Option<Seq>,
}

impl Checkpoints {
    fn read(storage: &dyn Storage, dir: &Path) -> Self {
        Checkpoints {
            snapshot: manifest::snapshot_seq(storage, dir),
            base: base::sealed_seq(storage, &Layout::new(dir).base()),
        }
    }

    /// The starting points at or before `target`, in the order the one
    /// rule tries them ([`in_order`]).
    fn starts(&self, target: Seq, order: Order) -> Vec<Point> {
        let mut points = vec![Point {
            start: Start::Empty,
            seq: Seq(0),
        }];
        if let Some(seq) = self.base.filter(|&seq| seq <= target) {
            points.push(Point {
                start: Start::Base,
                seq,
            });
        }
        if let Some(seq) = self.snapshot.filter(|&seq| seq <= target) {
            points.push(Point {
                start: Start::Snapshot,
                seq,
            });
        }
        in_order(&mut points, |point| (point.start, point.seq), order);
        points
    }

    /// The earliest record the store can rebuild the state as of, given
    /// where its journal begins.
    fn earliest(&self, journal_first: Option<Seq>) -> Seq {
        match journal_first {
            None | Some(Seq(1)) => Seq(0),
            Some(first) => self.base.or(self.snapshot).unwrap_or(first.previous()),
        }
    }
}

/// Rebuilds the state as of record `target` from the first starting point
/// in `order` whose records reach it. With `time`, also says whether every
/// record read (the starting point's, when the journal holds it, and each
/// one replayed) is stamped at or before it.
fn rebuild_from(
    storage: &dyn Storage,
    dir: &Path,
    target: Seq,
    order: Order,
    time: Option<f64>,
) -> Result<(Replayed, bool)> {
    let journal_dir = Layout::new(dir).journal();
    let checkpoints = Checkpoints::read(storage, dir);
    let mut tried = Vec::new();
    for point in checkpoints.starts(target, order) {
        let Some((mut state, on_disk)) = starting_state(storage, dir, &point) else {
            continue;
        };
        let bound = time.unwrap_or(f64::INFINITY);
        match stream(storage, &journal_dir, point.seq, target, bound, &mut state)? {
            Streamed::Reached { ts, consistent, unread } => {
                let replayed = Replayed {
                    state,
                    seq: target,
                    ts,
                    start: point.start,
                    unread_after: unread,
                    on_disk,
                };
                return Ok((replayed, consistent));
            }
            Streamed::Short { chain, scan } => tried.push((point.seq, chain, scan)),
        }
    }
    let first = segment::list_segments(storage, &journal_dir)?
        .first()
        .map(|file| file.first_seq);
    Err(refusal(target, &tried, checkpoints.earliest(first), first))
}

/// What replaying the records after a starting point gave.
enum Streamed {
    /// The target was reached: the last record's time, whether every
    /// record read was stamped within the bound, whether records after
    /// the target were left unread.
    Reached {
        ts: Option<f64>,
        consistent: bool,
        unread: bool,
    },
    /// The records stop short of the target: how far they go, and the
    /// segments read (for the refusal).
    Short { chain: Chain, scan: JournalScan },
}

/// How far a replay has got.
struct Applied {
    /// The last record applied.
    seq: Seq,
    /// Its time.
    ts: Option<f64>,
    /// Was every record read stamped within the bound?
    consistent: bool,
}

impl Applied {
    /// Applies the records of `segment` (whose content is `bytes`) after
    /// the last applied, through `through`; reads the starting point's
    /// record too, for its time.
    fn segment(
        &mut self,
        segment: &crate::journal::reader::SegmentScan,
        bytes: &[u8],
        start: Seq,
        through: Seq,
        bound: f64,
        state: &mut QueueState,
    ) -> Result<()> {
        for run in segment
            .runs
            .iter()
            .filter(|run| run.last >= start && run.first <= through)
        {
            // The scan checked these very bytes a moment ago.
            for record in reader::scanned_records(segment, bytes, run) {
                if record.seq > through {
                    break;
                }
                if record.seq <= self.seq {
                    // The starting point's own record, for its time only:
                    // the checkpoint holds its event, so a payload that
                    // does not decode (history the base covers) is no
                    // error here.
                    if record.seq == start
                        && let Ok(event) = recovery::decode_record(record)
                    {
                        self.consistent &= event.ts <= bound;
                    }
                    continue;
                }
                if record.seq != self.seq.next() {
                    return Err(crate::error::Error::Corrupt {
                        path: record.place.path.to_path_buf(),
                        offset: record.place.offset,
                        detail: format!("record {} is not the one due ({})", record.seq, self.seq.next()),
                    });
                }
                let event = recovery::decode_record(record)?;
                self.consistent &= event.ts <= bound;
                self.ts = Some(event.ts);
                recovery::apply_record(state, &event, record.place)?;
                self.seq = record.seq;
            }
        }
        Ok(())
    }
}

/// Applies records `start + 1 ..= target` to `state`, reading each segment
/// they need once and no segment after the target's: each segment is
/// scanned, the chain from `start` recomputed over the segments so far,
/// and the records it now reaches applied before the next is read.
fn stream(
    storage: &dyn Storage,
    journal_dir: &Path,
    start: Seq,
    target: Seq,
    bound: f64,
    state: &mut QueueState,
) -> Result<Streamed> {
    let files = segment::list_segments(storage, journal_dir)?;
    if start >= target && bound == f64::INFINITY {
        // The starting point is the target: nothing to read.
        return Ok(Streamed::Reached {
            ts: None,
            consistent: true,
            unread: !files.is_empty(),
        });
    }
    let mut scan = JournalScan {
        dir: journal_dir.to_path_buf(),
        segments: Vec::new(),
        tail: TailMarker::Missing,
        holes: crate::journal::holes::Holes::None,
        unread: files.last().is_some_and(|file| file.first_seq > target),
    };
    let mut applied = Applied {
        seq: start,
        ts: None,
        consistent: true,
    };
    let from = start.max(Seq(1));
    for (index, file) in files.iter().enumerate() {
        if files.get(index + 1).is_some_and(|next| next.first_seq <= from) {
            continue;
        }
        if file.first_seq > target {
            break;
        }
        let bytes = reader::read_segment(storage, file)?;
        scan.segments.push(reader::scan_segment_through(file, &bytes, target));
        scan.settle_strays();
        let chain = scan.chain_from(start);
        let through = chain.end.min(target);
        let Some(segment) = scan.segments.last() else {
            break;
        };
        applied.segment(segment, &bytes, start, through, bound, state)?;
        if applied.seq >= target {
            let stopped_early = segment
                .runs
                .last()
                .is_some_and(|run| run.last >= target && run.end < segment.end);
            return Ok(Streamed::Reached {
                ts: applied.ts,
                consistent: applied.consistent,
                unread: scan.unread || stopped_early || index + 1 < files.len(),
            });
        }
        if matches!(chain.after, ChainEnd::Broken(_)) {
            return Ok(Streamed::Short { chain, scan });
        }
    }
    if applied.seq >= target {
        return Ok(Streamed::Reached {
            ts: applied.ts,
            consistent: applied.consistent,
            unread: scan.unread,
        });
    }
    let chain = scan.chain_from(start);
    Ok(Streamed::Short { chain, scan })
}

/// The state at a starting point, and the files it was read from; `None`:
/// a checkpoint that does not hold up after all, or no longer covers the
/// record it did (another start is tried).
fn starting_state(storage: &dyn Storage, dir: &Path, point: &Point) -> Option<(QueueState, OnDisk)> {
    let checkpoint = match point.start {
        Start::Snapshot => manifest::load_snapshot(storage, dir),
        Start::Base => base::load_base(storage, &Layout::new(dir).base()),
        Start::Empty | Start::Legacy => return Some((QueueState::new(), OnDisk::default())),
    };
    match checkpoint {
        Ok(Some(data)) if data.seq == point.seq => Some(data.into_tracked()),
        _ => None,
    }
}

/// Why no starting point reaches `target`, with the range the store can
/// answer: the records it still holds begin after it, damage breaks the
/// records before it, or the journal ends before it.
fn refusal(target: Seq, tried: &[(Seq, Chain, JournalScan)], earliest: Seq, first: Option<Seq>) -> Error {
    let refused = |reason, answerable| Error::Unanswerable {
        target: Until::Seq(target),
        reason,
        answerable,
    };
    let best = tried.iter().max_by_key(|(start, chain, _)| (chain.end, *start));
    let Some((start, chain, scan)) = best else {
        // Cannot happen (the empty starting point is always tried); no
        // range is known.
        return refused(Refusal::PastEnd, None);
    };
    let journal_begins_later = chain.first.is_none()
        && first.is_some_and(|first| first > start.next())
        && matches!(chain.after, ChainEnd::Clean | ChainEnd::Broken(Break::Gap { .. }));
    if target < earliest || journal_begins_later {
        refused(
            Refusal::Compacted {
                first_held: first.unwrap_or_default(),
            },
            Some(Answerable::Records {
                first: earliest,
                last: None,
            }),
        )
    } else if let ChainEnd::Broken(broken) = &chain.after {
        refused(
            Refusal::Damaged {
                damage: Some(Box::new(scan.break_error(broken))),
                next: None,
            },
            Some(Answerable::Records {
                first: *start,
                last: Some(chain.end),
            }),
        )
    } else {
        refused(
            Refusal::PastEnd,
            Some(Answerable::Records {
                first: earliest,
                last: Some(chain.end),
            }),
        )
    }
}
