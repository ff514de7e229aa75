//! The question recovery asks of a scanned journal for each possible
//! starting point (the state known as of record `c`): from record `c + 1`
//! on, how far do valid records continue without a hole, and what lies
//! after them? Sequence numbers and positions only; no event is decoded.

use super::format::SEGMENT_HEADER_BYTES;
use super::holes::Hole;
use super::reader::{DamageKind, JournalScan, Run};
use super::tail::TailMarker;
use crate::error::Error;
use crate::seq::Seq;

/// A place in the journal: a segment's index and a byte offset in it.
pub type Position = (usize, u64);

/// What follows a chain's last record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainEnd {
    /// Nothing: the journal ends cleanly.
    Clean,
    /// Damage in the last segment with no valid record after it (a torn
    /// tail, or damage a checkpoint covers): `segment`, `damage` index.
    Tail {
        /// The segment (the last one).
        segment: usize,
        /// The damage's index in it.
        damage: usize,
    },
    /// Valid records follow that the chain cannot reach: it is broken
    /// here, by the damage or the gap before them.
    Broken(Break),
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// At this damage of this segment.
    Damage {
        /// The segment.
        segment: usize,
        /// The damage's index in it.
        damage: usize,
    },
    /// At the start of this run of this segment: its first record is not
    /// the one due (`expected`).
    Gap {
        /// The segment.
        segment: usize,
        /// The run's index in it.
        run: usize,
        /// The sequence number due there.
        expected: Seq,
    },
    /// The last segment holds no valid record and its header says it
    /// starts past the record due: the records between were lost (a
    /// segment is created only once every record before it is durable).
    Ahead {
        /// The segment (the last one).
        segment: usize,
        /// The sequence number due there.
        expected: Seq,
    },
    /// The segment the tail marker names (starting at this record) is
    /// missing: the journal went on past what is left of it.
    Missing {
        /// The missing segment's first sequence number.
        first_seq: Seq,
    },
}

/// How far valid records continue a starting point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The starting point: the state is known as of this record.
    pub start: Seq,
    /// The last record the chain reaches (`start` if none continues it).
    pub end: Seq,
    /// Where the record after `start` sits, if the journal holds it.
    pub first: Option<Position>,
    /// Where the chain's last record ends (`None`: the chain is empty).
    pub last: Option<Position>,
    /// What follows the chain.
    pub after: ChainEnd,
}

impl Chain {
    /// Does the chain reach every valid record after its start (the
    /// journal continues this starting point, up to a tail at most)?
    #[must_use]
    pub fn is_complete(&self) -> bool {
        !matches!(self.after, ChainEnd::Broken(_))
    }
}

/// One piece of the journal in file order.
#[derive(Debug, Clone, Copy)]
enum Piece {
    Run(usize, usize),
    Damage(usize, usize),
}

impl JournalScan {
    /// Every run and damage in journal order.
    fn pieces(&self) -> Vec<Piece> {
        let mut pieces = Vec::new();
        for (index, segment) in self.segments.iter().enumerate() {
            let mut runs = segment.runs.iter().enumerate().peekable();
            let mut damages = segment.damages.iter().enumerate().peekable();
            loop {
                let run_at = runs.peek().map(|(_, run)| run.start);
                let damage_at = damages.peek().map(|(_, damage)| damage.offset);
                match (run_at, damage_at) {
                    (Some(run), Some(damage)) if run < damage => {
                        pieces.extend(runs.next().map(|(at, _)| Piece::Run(index, at)));
                    }
                    (_, Some(_)) => pieces.extend(damages.next().map(|(at, _)| Piece::Damage(index, at))),
                    (Some(_), None) => pieces.extend(runs.next().map(|(at, _)| Piece::Run(index, at))),
                    (None, None) => break,
                }
            }
        }
        pieces
    }

    fn run(&self, segment: usize, run: usize) -> &Run {
        &self.segments[segment].runs[run]
    }

    /// The highest sequence number of any valid record (`None`: no record).
    #[must_use]
    pub fn last_seq(&self) -> Option<Seq> {
        self.segments
            .iter()
            .flat_map(|segment| segment.runs.iter().map(|run| run.last))
            .max()
    }

    /// The lowest sequence number of any valid record.
    #[must_use]
    pub fn first_seq(&self) -> Option<Seq> {
        self.segments
            .iter()
            .flat_map(|segment| segment.runs.iter().map(|run| run.first))
            .min()
    }

    /// How many valid records the journal holds.
    #[must_use]
    pub fn records(&self) -> u64 {
        self.segments
            .iter()
            .flat_map(|segment| &segment.runs)
            .map(|run| run.last.0 - run.first.0 + 1)
            .sum()
    }

    /// The hole `repair` recorded for damage `damage` of segment
    /// `segment`, if it is exactly that damage: the same bytes, the record
    /// due there its first, and valid records resuming where it ends (in
    /// the segment, or at the next segment's start) with the record after
    /// its last.
    #[must_use]
    pub fn hole_for(&self, segment: usize, damage: usize) -> Option<&Hole> {
        let scan = &self.segments[segment];
        let found = &scan.damages[damage];
        let hole = self.holes.at(scan.first_seq, found.offset, found.expected)?;
        (hole.end == found.end && self.resumes_after(segment, damage) == Some(hole.last.next())).then_some(hole)
    }

    /// The record valid records resume with after damage `damage` of
    /// segment `segment`: the first of the run that starts where the
    /// damage ends, or, for damage to the segment's end, the first record
    /// of the next segment (whose header holds up: the record its name
    /// gives, whether that record reads or is itself a hole). `None`: none
    /// resumes there.
    #[must_use]
    pub fn resumes_after(&self, segment: usize, damage: usize) -> Option<Seq> {
        let scan = &self.segments[segment];
        let found = &scan.damages[damage];
        scan.runs
            .iter()
            .find(|run| run.start == found.end)
            .map(|run| run.first)
            .or_else(|| {
                (found.end == scan.end)
                    .then(|| self.segments.get(segment + 1))
                    .flatten()
                    .filter(|next| next.header_ok())
                    .map(|next| next.first_seq)
            })
    }

    /// Does any damage or hole lie before `position` (history a starting
    /// point at or after it makes unnecessary)?
    #[must_use]
    pub fn damages_before(&self, position: Option<Position>) -> Vec<(usize, usize)> {
        self.pieces()
            .into_iter()
            .filter_map(|piece| match piece {
                Piece::Damage(segment, damage) => {
                    let at = (segment, self.segments[segment].damages[damage].offset);
                    position
                        .is_none_or(|position| at < position)
                        .then_some((segment, damage))
                }
                Piece::Run(..) => None,
            })
            .collect()
    }

    /// How far valid records continue the state known as of record `start`.
    #[must_use]
    pub fn chain_from(&self, start: Seq) -> Chain {
        let mut chain = self.chain_through_segments(start);
        let expected = chain.end.next();
        if chain.is_complete()
            && let Some(last) = self.segments.len().checked_sub(1)
            && self.segments[last].runs.is_empty()
            && self.segments[last].first_seq > expected
        {
            chain.after = ChainEnd::Broken(Break::Ahead {
                segment: last,
                expected,
            });
        }
        if let (ChainEnd::Clean | ChainEnd::Tail { .. }, TailMarker::Segment(first_seq)) = (&chain.after, self.tail)
            && self.segments.last().is_none_or(|last| last.first_seq < first_seq)
        {
            chain.after = ChainEnd::Broken(Break::Missing { first_seq });
        }
        chain
    }

    /// [`JournalScan::chain_from`], from the segments alone.
    fn chain_through_segments(&self, start: Seq) -> Chain {
        let pieces = self.pieces();
        let wanted = start.next();
        let found = pieces.iter().position(|piece| match *piece {
            Piece::Run(segment, run) => {
                let run = self.run(segment, run);
                run.first <= wanted && wanted <= run.last
            }
            Piece::Damage(..) => false,
        });
        let Some(begin) = found else {
            return self.empty_chain(start, &pieces);
        };
        if let Some(broken) = self.uncovered(&pieces[..begin], start) {
            return Chain {
                start,
                end: start,
                first: None,
                last: None,
                after: ChainEnd::Broken(broken),
            };
        }
        let Piece::Run(segment, run_index) = pieces[begin] else {
            unreachable!("position found a run");
        };
        let run = self.run(segment, run_index);
        let mut chain = Chain {
            start,
            end: run.last,
            first: Some((segment, run.start)),
            last: Some((segment, run.end)),
            after: ChainEnd::Clean,
        };
        for (at, piece) in pieces.iter().enumerate().skip(begin + 1) {
            match *piece {
                Piece::Run(next_segment, next_run) => {
                    let next = self.run(next_segment, next_run);
                    // Runs continue each other only across a segment boundary.
                    let across = next_segment != segment_of(&chain) && next.start == SEGMENT_HEADER_BYTES as u64;
                    if across && next.first == chain.end.next() {
                        chain.end = next.last;
                        chain.last = Some((next_segment, next.end));
                    } else {
                        chain.after = ChainEnd::Broken(Break::Gap {
                            segment: next_segment,
                            run: next_run,
                            expected: chain.end.next(),
                        });
                        return chain;
                    }
                }
                Piece::Damage(damage_segment, damage) => {
                    chain.after = self.after_damage(&pieces[at + 1..], damage_segment, damage);
                    return chain;
                }
            }
        }
        chain
    }

    /// The chain of a starting point the journal holds no next record for.
    fn empty_chain(&self, start: Seq, pieces: &[Piece]) -> Chain {
        let mut chain = Chain {
            start,
            end: start,
            first: None,
            last: None,
            after: ChainEnd::Clean,
        };
        // Records after `start` that the chain cannot reach break it.
        let beyond = pieces.iter().position(|piece| match *piece {
            Piece::Run(segment, run) => self.run(segment, run).last > start,
            Piece::Damage(..) => false,
        });
        if let Some(at) = beyond {
            let Piece::Run(segment, run) = pieces[at] else {
                unreachable!("position found a run");
            };
            chain.after = ChainEnd::Broken(match at.checked_sub(1).map(|before| pieces[before]) {
                Some(Piece::Damage(segment, damage)) => Break::Damage { segment, damage },
                _ => Break::Gap {
                    segment,
                    run,
                    expected: start.next(),
                },
            });
            return chain;
        }
        // Only damage may follow the last run: the tail.
        let last_run = pieces.iter().rposition(|piece| matches!(piece, Piece::Run(..)));
        let history = &pieces[..last_run.map_or(0, |at| at + 1)];
        if let Some(broken) = self.uncovered(history, start) {
            chain.after = ChainEnd::Broken(broken);
            return chain;
        }
        let rest = &pieces[last_run.map_or(0, |at| at + 1)..];
        if let Some(&Piece::Damage(segment, damage)) = rest.first() {
            chain.after = self.after_damage(&rest[1..], segment, damage);
            chain.last = last_run.map(|at| match pieces[at] {
                Piece::Run(segment, run) => (segment, self.run(segment, run).end),
                Piece::Damage(..) => unreachable!("rposition found a run"),
            });
        }
        chain
    }

    /// The first damage among `pieces` (all before the chain) that a start
    /// at `start` does not cover: it ate a record after `start`.
    fn uncovered(&self, pieces: &[Piece], start: Seq) -> Option<Break> {
        pieces.iter().find_map(|piece| match *piece {
            Piece::Damage(segment, damage) if self.segments[segment].damages[damage].expected > start => {
                Some(Break::Damage { segment, damage })
            }
            _ => None,
        })
    }

    /// What a damage after a chain means: a tail if it is in the last
    /// segment with nothing valid after it, else a break.
    fn after_damage(&self, rest: &[Piece], segment: usize, damage: usize) -> ChainEnd {
        let is_last = segment + 1 == self.segments.len();
        let valid_after = |segment: usize, damage: usize| self.segments[segment].damages[damage].valid_after;
        let nothing_after = !valid_after(segment, damage)
            && rest.iter().all(|piece| match *piece {
                Piece::Run(..) => false,
                Piece::Damage(segment, damage) => !valid_after(segment, damage),
            });
        // A header is never torn: segments are created whole.
        let record = matches!(self.segments[segment].damages[damage].kind, DamageKind::Record(_));
        if is_last && nothing_after && record {
            ChainEnd::Tail { segment, damage }
        } else {
            ChainEnd::Broken(Break::Damage { segment, damage })
        }
    }

    /// The error that names where `broken` breaks a chain.
    #[must_use]
    pub fn break_error(&self, broken: &Break) -> Error {
        match *broken {
            Break::Damage { segment, damage } => {
                let is_last = segment + 1 == self.segments.len();
                let scan = &self.segments[segment];
                scan.error(&scan.damages[damage], is_last)
            }
            Break::Ahead { segment, expected } => Error::SequenceGap {
                path: self.segments[segment].path.clone(),
                offset: 16,
                expected: expected.0,
                found: self.segments[segment].first_seq.0,
            },
            Break::Missing { first_seq } => super::tail::missing_segment(&self.dir, first_seq),
            Break::Gap { segment, run, expected } => {
                let scan = &self.segments[segment];
                let run = scan.runs[run];
                Error::SequenceGap {
                    path: scan.path.clone(),
                    offset: if run.start == SEGMENT_HEADER_BYTES as u64 {
                        16
                    } else {
                        run.start
                    },
                    expected: expected.0,
                    found: run.first.0,
                }
            }
        }
    }
}

fn segment_of(chain: &Chain) -> usize {
    chain.last.map_or(usize::MAX, |(segment, _)| segment)
}
