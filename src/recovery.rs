//! Recovery: the one decision, from all the evidence on disk, of where the
//! state starts (snapshot, compaction base, legacy files or nothing) and
//! which journal records continue it; and the decoding of those records
//! into events, which the journal itself never does.
//!
//! Start-up, numbered as in `docs/DURABILITY.md`:
//! 1. create the directory (0700) if missing; take `LOCK` (writer only);
//! 2. remove `.tmp` leftovers of an interrupted snapshot or segment creation;
//! 3. list the journal's segments; load the snapshot if its manifest and
//!    files agree (else log why and ignore it);
//! 4. pick the starting point: the snapshot if the journal continues it,
//!    else the compaction base, else empty (a journal from record 1), else
//!    — no journal at all — the legacy files, imported as one event;
//! 5. replay every record after it, checking each (torn tail: cut under
//!    the writer, stop before it for a reader);
//! 6. start the writer at the journal's end.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::event::{EventRecord, PayloadError, decode_payload};
use crate::journal::reader::{self, RawRecord, RecordPlace, ReplayReport, TailPolicy};
use crate::journal::segment;
use crate::projection::QueueState;
use crate::seq::Seq;
use crate::snapshot::base::{self, BASE_FILE};
use crate::snapshot::{self, SnapshotData, legacy, manifest};
use crate::storage::Storage;

/// The journal's directory inside a store.
pub const JOURNAL_DIR: &str = "journal";

/// Does `dir` hold a movie-queue store (a journal, or any of the documented
/// files)? A directory that does not is not read as an empty store by the
/// command-line tool.
#[must_use]
pub fn holds_store(dir: &Path) -> bool {
    dir.join(JOURNAL_DIR).is_dir() || snapshot::QUEUE_FILES.iter().any(|name| dir.join(name).is_file())
}

/// The queues rebuilt at open, and where the journal ends.
#[derive(Debug)]
pub struct Recovered {
    /// The projection as of `last_seq`.
    pub state: QueueState,
    /// What replay saw.
    pub report: ReplayReport,
    /// The last record covered by the state (journal end or snapshot, whichever is later).
    pub last_seq: Seq,
    /// Legacy files to import as the first event (writer only).
    pub legacy: Option<SnapshotData>,
    /// Events the documented files on disk do not reflect (at least 1 when
    /// they were not used at all), so the next snapshot is not skipped.
    pub events_since_snapshot: u64,
}

/// Recovers the state of the store in `dir` (steps 2–5 above).
///
/// # Errors
/// Corruption naming file and offset; [`Error::Io`]; [`Error::BadQueueFile`].
pub fn recover(storage: &dyn Storage, dir: &Path, policy: TailPolicy) -> Result<Recovered> {
    let journal_dir = dir.join(JOURNAL_DIR);
    if policy == TailPolicy::Truncate {
        manifest::remove_leftovers(storage, dir)?;
        segment::remove_leftovers(storage, &journal_dir)?;
    }
    let segments = segment::list_segments(storage, &journal_dir)?;
    let journal_first = segments.first().map_or(Seq(0), |segment| segment.first_seq);
    let (start, start_path) = choose_start(storage, dir, journal_first)?;
    let mut legacy_files = None;
    let mut state = QueueState::new();
    let mut start_seq = Seq(0);
    match start {
        StartingPoint::Snapshot(data) => {
            start_seq = data.seq;
            state = data.into_state(&start_path)?;
        }
        StartingPoint::Legacy(data) if policy == TailPolicy::Truncate => legacy_files = Some(data),
        StartingPoint::Legacy(data) => {
            state
                .apply(0.0, &legacy::legacy_import(data))
                .map_err(|error| Error::Corrupt {
                    path: start_path.clone(),
                    offset: 0,
                    detail: error.0,
                })?;
        }
        StartingPoint::Empty => {}
    }
    let report = replay_into(storage, &journal_dir, policy, start_seq, &mut state)?;
    if !segments.is_empty() && report.last_seq < start_seq {
        return Err(Error::Corrupt {
            path: journal_dir,
            offset: 0,
            detail: format!(
                "the journal ends at record {} but {} covers record {start_seq}; records are missing",
                report.last_seq,
                start_path.display()
            ),
        });
    }
    let last_seq = report.last_seq.max(start_seq);
    let events_since_snapshot = if start_path.ends_with(snapshot::MANIFEST_FILE) {
        last_seq.0 - start_seq.0
    } else {
        (last_seq.0 - start_seq.0).max(1)
    };
    Ok(Recovered {
        state,
        report,
        last_seq,
        legacy: legacy_files,
        events_since_snapshot,
    })
}

/// Replays the journal's events from `from` on, decoding each record's
/// payload; an undecodable payload is corruption at its record.
///
/// # Errors
/// As [`reader::replay`]; [`Error::Corrupt`] / [`Error::UnsupportedVersion`]
/// for a payload that is not an event; what `on_event` returned.
pub fn replay_events(
    storage: &dyn Storage,
    journal_dir: &Path,
    policy: TailPolicy,
    from: Seq,
    on_event: &mut dyn FnMut(EventRecord, RecordPlace<'_>) -> Result<()>,
) -> Result<ReplayReport> {
    reader::replay(storage, journal_dir, policy, from, &mut |raw| {
        let event = decode_record(raw)?;
        on_event(event, raw.place)
    })
}

/// Decodes one journal record into its event.
///
/// # Errors
/// Corruption naming the record's file and offset.
pub fn decode_record(raw: RawRecord<'_>) -> Result<EventRecord> {
    let (ts, event) = decode_payload(raw.payload).map_err(|error| payload_error(raw.place, error))?;
    Ok(EventRecord {
        seq: raw.seq,
        ts,
        event,
    })
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

/// Replays the journal records after `start_seq` into `state`.
///
/// # Errors
/// As [`replay_events`]; an event that does not apply is corruption at its record.
pub fn replay_into(
    storage: &dyn Storage,
    journal_dir: &Path,
    policy: TailPolicy,
    start_seq: Seq,
    state: &mut QueueState,
) -> Result<ReplayReport> {
    replay_events(storage, journal_dir, policy, start_seq.next(), &mut |record, place| {
        apply_record(state, &record, place)
    })
}

/// Applies one replayed record, turning a refusal into corruption at its place.
///
/// # Errors
/// [`Error::Corrupt`] naming the record's file and offset.
pub fn apply_record(state: &mut QueueState, record: &EventRecord, place: RecordPlace<'_>) -> Result<()> {
    state.apply(record.ts, &record.event).map_err(|error| Error::Corrupt {
        path: place.path.to_path_buf(),
        offset: place.offset,
        detail: format!("record {} does not apply to the state before it: {error}", record.seq),
    })
}

/// Where the state starts before the journal's records are replayed.
enum StartingPoint {
    /// A snapshot or the compaction base: the state as of its `seq`.
    Snapshot(SnapshotData),
    /// The documented files of a store with no journal yet.
    Legacy(SnapshotData),
    /// Nothing: the journal starts at record 1.
    Empty,
}

fn choose_start(storage: &dyn Storage, dir: &Path, journal_first: Seq) -> Result<(StartingPoint, PathBuf)> {
    let manifest_path = dir.join(snapshot::MANIFEST_FILE);
    let rejected = match manifest::load_snapshot(storage, dir) {
        Ok(Some(data)) if journal_first.0 == 0 || data.seq.next() >= journal_first => {
            return Ok((StartingPoint::Snapshot(data), manifest_path));
        }
        Ok(Some(data)) => format!(
            "{} covers records through {} but the journal starts at {journal_first}",
            manifest_path.display(),
            data.seq
        ),
        Ok(None) => String::from("there is no snapshot"),
        Err(snapshot::Rejected(reason)) => {
            tracing::warn!(%reason, "snapshot not used; rebuilding from the journal");
            reason
        }
    };
    if journal_first.0 > 1 {
        let base_path = dir.join(JOURNAL_DIR).join(BASE_FILE);
        let data = base::load_base(storage, &base_path)?;
        if data.seq.next() < journal_first {
            return Err(Error::Corrupt {
                path: base_path,
                offset: 0,
                detail: format!(
                    "the journal starts at record {journal_first}, the compaction base covers through {}; \
                     and the snapshot is unusable ({rejected})",
                    data.seq
                ),
            });
        }
        return Ok((StartingPoint::Snapshot(data), base_path));
    }
    if journal_first.0 == 0
        && !storage.exists(&manifest_path)
        && let Some(data) = legacy::load_legacy(storage, dir)?
    {
        return Ok((StartingPoint::Legacy(data), dir.to_path_buf()));
    }
    Ok((StartingPoint::Empty, dir.to_path_buf()))
}

/// The state the journal's first segment continues: empty for a journal
/// starting at record 1, else the compaction base.
///
/// # Errors
/// [`Error::Corrupt`] naming the base file when it is missing or damaged.
pub fn journal_base(storage: &dyn Storage, journal_dir: &Path) -> Result<(QueueState, Seq)> {
    let segments = segment::list_segments(storage, journal_dir)?;
    match segments.first() {
        Some(first) if first.first_seq.0 > 1 => {
            let base_path = journal_dir.join(BASE_FILE);
            let data = base::load_base(storage, &base_path)?;
            let seq = data.seq;
            Ok((data.into_state(&base_path)?, seq))
        }
        _ => Ok((QueueState::new(), Seq(0))),
    }
}

/// The latest state on disk at or before record `seq` to replay from: the
/// snapshot when it is consistent, not past `seq` and continued by the
/// journal; else [`journal_base`]. Returns the state and the record it covers.
///
/// # Errors
/// As [`journal_base`].
pub fn starting_point(storage: &dyn Storage, dir: &Path, seq: Seq) -> Result<(QueueState, Seq)> {
    let journal_dir = dir.join(JOURNAL_DIR);
    let journal_first = segment::list_segments(storage, &journal_dir)?
        .first()
        .map_or(Seq(0), |segment| segment.first_seq);
    if let Ok(Some(data)) = manifest::load_snapshot(storage, dir)
        && data.seq <= seq
        && (journal_first.0 == 0 || data.seq.next() >= journal_first)
    {
        let covered = data.seq;
        return Ok((data.into_state(&dir.join(snapshot::MANIFEST_FILE))?, covered));
    }
    journal_base(storage, &journal_dir)
}
