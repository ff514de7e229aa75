//! A time target turned into a record: the state "as of time `t`" is the
//! state after every event stamped at or before `t`. Times are monotonic
//! in a store (the manager never stamps an event below its predecessor),
//! so those events are a prefix of the journal, ending just before the
//! first record stamped after `t`.
//!
//! The search does not read from record 1: the time index
//! (`journal/times`) says which sealed segments lie wholly at or before
//! `t`, and only the segment holding the answer (and any the index does
//! not vouch for) is read.
//!
//! A journal written before times were monotonic may hold a time that
//! steps back; there the answer is still that prefix: each record counts
//! as stamped at the latest time stamped so far (the clamp the manager
//! applies now), so an event stamped after `t` ends the answer even if a
//! later one steps back below `t`.

use std::path::Path;

use crate::error::{Answerable, Error, Refusal, Result};
use crate::event::decode_ts;
use crate::journal::reader::{self, SegmentScan};
use crate::journal::segment::{self, SegmentFile};
use crate::journal::times;
use crate::seq::{Seq, Until};
use crate::storage::Storage;

/// What the search found.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Found {
    /// The first record stamped after the time.
    After { seq: Seq, ts: f64 },
    /// Every record read is stamped at or before it; the last one.
    AllBefore { last: Option<(Seq, f64)> },
}

/// The last record stamped at or before `time` (`Seq(0)`: none), or a
/// refusal when the store cannot know it (`use_index`: let the time index
/// spare the segments it vouches for): the time is before the first
/// record the journal still holds (compacted away), damaged records lie
/// where it falls, or it is in the future.
///
/// # Errors
/// [`Error::Unanswerable`] with the times the store can answer;
/// [`Error::OutOfRange`] for a time that is not finite; corruption or
/// I/O reading the journal.
pub fn time_target(storage: &dyn Storage, journal_dir: &Path, time: f64, use_index: bool) -> Result<Seq> {
    if !time.is_finite() {
        return Err(Error::OutOfRange {
            name: "time",
            value: time,
            min: f64::MIN,
            max: f64::MAX,
        });
    }
    let files = segment::list_segments(storage, journal_dir)?;
    // Sealed segments the time index vouches for are read only if the
    // answer lies in them.
    let index = if use_index {
        times::read(storage, journal_dir)
    } else {
        Vec::new()
    };
    let mut search = Search::default();
    for file in &files {
        if let Some(entry) = index.iter().find(|entry| entry.first_seq == file.first_seq)
            && entry.max_ts <= time
        {
            search.first.get_or_insert(entry.first_seq);
            search.last = Some((entry.last_seq, entry.max_ts));
            search.damaged = false;
            continue;
        }
        let bytes = reader::read_segment(storage, file)?;
        // Most segments are clean: their records are read from the header
        // and no further than the answer. Damage sends the search through
        // a scan of the whole segment.
        let found = match search.clean(&bytes, file, time) {
            Clean::Found(found) => Some(found),
            Clean::Through => None,
            Clean::Damaged => search.segment(file, &reader::scan_segment(file, &bytes), &bytes, time)?,
        };
        if let Some(found) = found {
            return answer(found, &search, time);
        }
    }
    if search.last.is_none() && files.first().is_some_and(|file| file.first_seq > Seq(1)) {
        return Err(refused(time, Refusal::NoEventTime, None));
    }
    answer(Found::AllBefore { last: search.last }, &search, time)
}

/// What reading a segment's records from its header gave.
enum Clean {
    /// The first record stamped after the time.
    Found(Found),
    /// Every record of the segment, none stamped after it.
    Through,
    /// Damage before either: the segment must be scanned.
    Damaged,
}

/// The search's state across segments.
#[derive(Debug, Default)]
struct Search {
    /// The last record read, and its time.
    last: Option<(Seq, f64)>,
    /// Damage since the last record read (its records' times are unknown).
    damaged: bool,
    /// The first record the journal holds.
    first: Option<Seq>,
}

impl Search {
    /// Reads a clean segment's records in order, stopping at the first
    /// stamped after `time`; nothing changed when damage interrupts them
    /// first.
    fn clean(&mut self, bytes: &[u8], file: &SegmentFile, time: f64) -> Clean {
        let mut read = Search {
            last: self.last,
            damaged: self.damaged,
            first: self.first,
        };
        for record in reader::clean_records(file, bytes) {
            let Some((record, ts)) = record
                .ok()
                .and_then(|record| Some((record, decode_ts(record.payload)?)))
            else {
                return Clean::Damaged;
            };
            read.first.get_or_insert(record.seq);
            if ts > time {
                *self = read;
                return Clean::Found(Found::After { seq: record.seq, ts });
            }
            read.last = Some((record.seq, ts));
            read.damaged = false;
        }
        *self = read;
        Clean::Through
    }

    /// Reads one segment's records in order, stopping at the first stamped after `time`.
    fn segment(&mut self, file: &SegmentFile, scan: &SegmentScan, bytes: &[u8], time: f64) -> Result<Option<Found>> {
        let mut damages = scan.damages.iter().peekable();
        for run in &scan.runs {
            while damages.next_if(|damage| damage.offset < run.start).is_some() {
                self.damaged = true;
            }
            for record in reader::run_records(scan, bytes, run) {
                let record = record?;
                let ts = decode_ts(record.payload).ok_or_else(|| Error::Corrupt {
                    path: file.path.clone(),
                    offset: record.place.offset,
                    detail: "record's checksum is valid but it holds no event time".into(),
                })?;
                self.first.get_or_insert(record.seq);
                if ts > time {
                    return Ok(Some(Found::After { seq: record.seq, ts }));
                }
                self.last = Some((record.seq, ts));
                self.damaged = false;
            }
        }
        self.damaged |= damages.next().is_some();
        Ok(None)
    }
}

/// The refusal of the time `time`.
fn refused(time: f64, reason: Refusal, answerable: Option<Answerable>) -> Error {
    Error::Unanswerable {
        target: Until::Time(time),
        reason,
        answerable,
    }
}

fn answer(found: Found, search: &Search, time: f64) -> Result<Seq> {
    match found {
        Found::After { seq, ts } if search.first == Some(seq) && seq > Seq(1) => Err(refused(
            time,
            Refusal::Compacted { first_held: seq },
            Some(Answerable::Times {
                from: Some(ts),
                to: None,
            }),
        )),
        Found::After { seq, ts } if search.damaged => Err(refused(
            time,
            Refusal::Damaged {
                damage: None,
                next: Some((seq, ts)),
            },
            None,
        )),
        Found::After { seq, .. } => Ok(seq.previous()),
        Found::AllBefore { last } => {
            let last_ts = last.map_or(f64::NEG_INFINITY, |(_, ts)| ts);
            let now = crate::clock::now();
            if time > now.max(last_ts) {
                return Err(refused(
                    time,
                    Refusal::Future { now },
                    Some(Answerable::Times {
                        from: None,
                        to: Some(now.max(last_ts)),
                    }),
                ));
            }
            Ok(last.map_or(Seq(0), |(seq, _)| seq))
        }
    }
}
