//! Recovery: the one decision, from all the evidence on disk, of where the
//! state starts (snapshot, compaction base, legacy files or nothing) and
//! which journal records continue it; carrying it out for a writer (or
//! `repair`) only after it is made; and the decoding of journal records
//! into events, which the journal itself never does.
//!
//! | file | its one job |
//! |---|---|
//! | `evidence.rs` | reading everything, changing nothing |
//! | `decision.rs` | the decision: which starting point, which records, what the damage means |
//! | `execute.rs` | what a writer's open does with it: the legacy import, a damaged tail set aside, the base recorded |
//! | `repair.rs` | what `repair` does when no starting point works |
//!
//! Open, numbered as in `docs/DURABILITY.md`:
//! 1. take `LOCK` (writer only; the directory is created, 0700, if missing);
//! 2. gather the evidence and decide — a store that cannot open is left
//!    exactly as it was;
//! 3. (writer) remove `.tmp` leftovers, import a legacy store, set a
//!    damaged tail aside, record the compaction base if only the snapshot
//!    knows the starting state;
//! 4. build the state: the starting point, then the chain's records;
//! 5. (writer) start the writer at the chain's end, after an fdatasync of
//!    the last segment and fsyncs of `journal/` and the store directory.

pub(crate) mod decision;
pub(crate) mod evidence;
mod execute;
mod repair;

use std::path::Path;

pub use self::decision::{Decision, Order, Start, in_order};
pub use self::evidence::{CheckpointKind, Evidence};
pub(crate) use self::execute::remove_leftovers;
pub use self::execute::{ImportLimits, recover_for_writer};
pub use self::repair::{RepairReport, repair_store};
use crate::error::{Error, Result};
use crate::event::{EventRecord, PayloadError, decode_payload};
use crate::journal::reader::{self, JournalScan, RawRecord, RecordPlace};
use crate::journal::writer::JournalEnd;
use crate::layout::Layout;
use crate::projection::QueueState;
use crate::seq::Seq;
use crate::snapshot::legacy;
use crate::snapshot::manifest::OnDisk;
use crate::storage::{Entry, RealStorage, Storage};

/// Does `dir` hold a movie-queue store (a journal, or any of the documented
/// files, or a link or special file in the place of one)? A directory that does not is not read as an empty store by the
/// command-line tool.
#[must_use]
pub fn holds_store(dir: &Path) -> bool {
    let layout = Layout::new(dir);
    let storage = RealStorage;
    // A link or special file where a store file goes counts: the open
    // refuses it by name, which says more than "no store here".
    matches!(storage.entry(&layout.journal()), Ok(Entry::Directory | Entry::Other))
        || layout
            .queue_files()
            .iter()
            .any(|path| matches!(storage.entry(path), Ok(Entry::File(_) | Entry::Other)))
}

/// The queues rebuilt at open, and where the journal ends.
#[derive(Debug)]
pub struct Recovered {
    /// The projection as of `last_seq`.
    pub state: QueueState,
    /// The last record the state reflects.
    pub last_seq: Seq,
    /// Where a writer appends (for a writer's open).
    pub end: JournalEnd,
    /// Events the documented files on disk do not reflect (at least 1 when
    /// they were not used at all), so the next snapshot is not skipped.
    pub events_since_snapshot: u64,
    /// Did the state start from the snapshot (its files are the store's
    /// as of its record)?
    pub snapshot_used: bool,
    /// The time of the last record (0 when the journal no longer holds
    /// it): the next event is never stamped below it.
    pub last_ts: f64,
    /// The documented files the state started from, whose queues it
    /// records changes to: what its next snapshot may keep.
    pub on_disk: OnDisk,
    /// The time of the oldest record the snapshot on disk does not
    /// reflect, when the state started from it and records follow it.
    pub oldest_change: Option<f64>,
}

/// Recovers the state of the store in `dir` for a reader: decides, builds
/// the state, changes nothing (a legacy store's import is applied in memory).
///
/// # Errors
/// As [`decision::decide`].
pub fn recover_read_only(storage: &dyn Storage, dir: &Path) -> Result<Recovered> {
    let evidence = Evidence::gather(storage, dir)?;
    let mut decision = decision::decide(storage, evidence)?;
    let state = decision.build_state(storage)?;
    decision.recovered(storage, state)
}

impl Decision {
    /// The state this decision describes: the starting point, then every
    /// record of the chain. Takes the starting checkpoint's content.
    ///
    /// # Errors
    /// Corruption at a record that does not decode or apply; [`Error::Io`].
    pub fn build_state(&mut self, storage: &dyn Storage) -> Result<QueueState> {
        let mut state = match (self.start, self.start.checkpoint()) {
            (_, Some(CheckpointKind::Snapshot)) => {
                let taken = self.evidence.snapshot.take();
                let (state, on_disk) = taken
                    .and_then(std::result::Result::ok)
                    .unwrap_or_default()
                    .into_tracked();
                self.on_disk = on_disk;
                state
            }
            (_, Some(CheckpointKind::Base)) => self.evidence.load_base(storage)?.into_state(),
            (Start::Legacy, None) => {
                let mut state = QueueState::new();
                let data = self.legacy.take().unwrap_or_default();
                state
                    .apply(0.0, &legacy::legacy_import(data))
                    .map_err(|error| Error::Corrupt {
                        path: self.evidence.dir.clone(),
                        offset: 0,
                        detail: error.0,
                    })?;
                state
            }
            (_, None) => QueueState::new(),
        };
        let (mut first_ts, mut last_ts) = (None, None);
        replay_events(
            storage,
            &self.evidence.journal,
            self.chain.start.next(),
            self.chain.end,
            &mut |record, place| {
                first_ts = first_ts.or(Some(record.ts));
                last_ts = Some(record.ts);
                apply_record(&mut state, &record, place)
            },
        )?;
        self.last_ts = last_ts;
        self.first_ts = first_ts;
        Ok(state)
    }

    /// What a reader (or a writer, before it chooses where to append)
    /// gets. Reads the starting point's record for its time when no
    /// record follows it.
    fn recovered(&self, storage: &dyn Storage, state: QueueState) -> Result<Recovered> {
        let last_ts = match self.last_ts {
            Some(ts) => ts,
            None => record_ts(storage, &self.evidence.journal, self.chain.end)?.unwrap_or(0.0),
        };
        let since = self.chain.end.0 - self.chain.start.0;
        let events_since_snapshot = if self.start == Start::Snapshot {
            since
        } else {
            since.max(1)
        };
        Ok(Recovered {
            state,
            last_seq: self.chain.end,
            end: JournalEnd {
                next_seq: self.chain.end.next(),
                last_segment: None,
            },
            events_since_snapshot,
            snapshot_used: self.start == Start::Snapshot,
            last_ts,
            oldest_change: self.first_ts.filter(|_| self.start == Start::Snapshot),
            on_disk: self.on_disk.clone(),
        })
    }
}

/// The time of record `seq`, if the scanned journal holds it.
///
/// # Errors
/// As [`replay_events`].
pub fn record_ts(storage: &dyn Storage, scan: &JournalScan, seq: Seq) -> Result<Option<f64>> {
    let mut ts = None;
    if seq.0 > 0 {
        reader::replay_one(storage, scan, seq, &mut |raw| {
            ts = Some(decode_record(raw)?.ts);
            Ok(())
        })?;
    }
    Ok(ts)
}

/// Applies the records `start + 1 ..= end` of the scanned journal to `state`.
///
/// # Errors
/// Corruption at a record that does not decode or apply; [`Error::Io`].
pub fn replay_into(
    storage: &dyn Storage,
    scan: &JournalScan,
    start: Seq,
    end: Seq,
    state: &mut QueueState,
) -> Result<()> {
    replay_events(storage, scan, start.next(), end, &mut |record, place| {
        apply_record(state, &record, place)
    })
}

/// Hands on the events of records `from..=through`, decoding each payload;
/// an undecodable payload is corruption at its record.
///
/// # Errors
/// As [`reader::replay`]; [`Error::Corrupt`] / [`Error::UnsupportedVersion`]
/// for a payload that is not an event; what `on_event` returned.
pub fn replay_events(
    storage: &dyn Storage,
    scan: &JournalScan,
    from: Seq,
    through: Seq,
    on_event: &mut dyn FnMut(EventRecord, RecordPlace<'_>) -> Result<()>,
) -> Result<()> {
    reader::replay(storage, scan, from, through, &mut |raw| {
        let event = decode_record(raw)?;
        on_event(event, raw.place)
    })
}

/// Decodes one journal record into its event.
///
/// # Errors
/// Corruption naming the record's file and offset.
pub fn decode_record(raw: RawRecord<'_>) -> Result<EventRecord> {
    let decoded = decode_payload(raw.payload).map_err(|error| payload_error(raw.place, error))?;
    Ok(EventRecord::new(raw.seq, decoded.ts, decoded.event).with_version(decoded.version))
}

fn payload_error(place: RecordPlace<'_>, error: PayloadError) -> Error {
    match error {
        PayloadError::Version(version) => Error::UnsupportedVersion {
            path: place.path.to_path_buf(),
            offset: place.offset,
            version,
            supported: crate::event::EVENT_VERSION,
        },
        PayloadError::Malformed(detail) => Error::Corrupt {
            path: place.path.to_path_buf(),
            offset: place.offset,
            detail: format!("record's checksum is valid but its event is not: {detail}"),
        },
    }
}

/// Applies one replayed record, turning a refusal into corruption at its place.
///
/// # Errors
/// [`Error::Corrupt`] naming the record's file and offset.
pub fn apply_record(state: &mut QueueState, record: &EventRecord, place: RecordPlace<'_>) -> Result<()> {
    state
        .apply_version(record.version, record.ts, &record.event)
        .map_err(|error| Error::Corrupt {
            path: place.path.to_path_buf(),
            offset: place.offset,
            detail: format!("record {} does not apply to the state before it: {error}", record.seq),
        })
}
