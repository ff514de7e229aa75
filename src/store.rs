//! Opening a store directory: the writer's lock, choosing the starting
//! point (snapshot, compaction base, legacy files or nothing), replaying
//! the journal after it, and the compaction base file.
//!
//! Start-up, numbered as in `docs/DURABILITY.md`:
//! 1. create the directory (0700) if missing; take `LOCK` (writer only);
//! 2. remove `.tmp` leftovers of an interrupted snapshot or segment creation;
//! 3. list the journal's segments; load the snapshot if its manifest and
//!    files agree (else log why and ignore it);
//! 4. pick the base: the snapshot if the journal continues it, else the
//!    compaction base, else empty (a journal from record 1), else — no
//!    journal at all — the legacy files, imported as one event;
//! 5. replay every record after the base, checking each (torn tail: cut
//!    under the writer, stop before it for a reader);
//! 6. start the writer at the journal's end.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::{Event, EventRecord, QueueEntry, Seq};
use crate::projection::{Place, QueueState};
use crate::recovery::{self, RecordPlace, ReplayReport, TailPolicy};
use crate::segment;
use crate::snapshot::{self, SnapshotData};
use crate::storage::{self, Storage};

/// The journal's directory inside a store.
pub const JOURNAL_DIR: &str = "journal";
/// The lock file a writer holds for its lifetime.
pub const LOCK_FILE: &str = "LOCK";
/// The compaction base: the state the first remaining segment continues.
pub use crate::segment::BASE_FILE;

/// Takes the store's writer lock, or fails at once with [`Error::Locked`].
///
/// # Errors
/// [`Error::Locked`] if another writer holds it; [`Error::Io`].
pub fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(&path).map_err(|error| Error::io("open", &path, error))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked { dir: dir.to_path_buf() }),
        Err(std::fs::TryLockError::Error(error)) => Err(Error::io("lock", &path, error)),
    }
}

/// Fails unless `dir` is an existing directory (a reader never creates one,
/// and a regular file is not an empty store).
///
/// # Errors
/// [`Error::Io`] naming `dir`: not found, or not a directory.
pub fn require_directory(dir: &Path) -> Result<()> {
    let metadata = std::fs::metadata(dir).map_err(|error| Error::io("open store", dir, error))?;
    if metadata.is_dir() {
        Ok(())
    } else {
        Err(Error::io(
            "open store",
            dir,
            std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        ))
    }
}

/// The queues rebuilt at open, and where the journal ends.
#[derive(Debug)]
pub struct Recovered {
    /// The projection as of `report.last_seq`.
    pub state: QueueState,
    /// What replay saw.
    pub report: ReplayReport,
    /// The last record covered by the state (journal end or snapshot, whichever is later).
    pub last_seq: Seq,
    /// Legacy files to import as the first event (writer only).
    pub legacy: Option<SnapshotData>,
    /// Events the documented files on disk do not reflect (at least 1 when
    /// they were not used at all), so the next snapshot is not skipped.
    pub uncovered: u64,
}

/// Builds the state a snapshot's content describes.
///
/// # Errors
/// [`Error::Corrupt`] if the content cannot be a state (an id twice).
pub fn state_from_snapshot(data: SnapshotData, source: &Path) -> Result<QueueState> {
    let mut state = QueueState::new();
    state.reserve(data.in_flight.len() + data.pending.len() + data.failed.len() + data.completed.len());
    let places = [
        (Place::InFlight, data.in_flight),
        (Place::Pending, data.pending),
        (Place::Failed, data.failed),
        (Place::Completed, data.completed),
    ];
    for (place, entries) in places {
        for entry in entries {
            state.push_new(place, &entry).map_err(|error| Error::Corrupt {
                path: source.to_path_buf(),
                offset: 0,
                detail: format!("{}; it appears again among the {place} entries", error.0),
            })?;
        }
    }
    Ok(state)
}

/// The event that imports a legacy store's files: the writer journals it
/// as its first record; a reader applies it to an empty state, so both see
/// the same queues (an id listed twice keeps its first entry).
#[must_use]
pub fn legacy_import(data: SnapshotData) -> Event {
    let mut pending = data.in_flight;
    pending.extend(data.pending);
    Event::Imported {
        pending,
        failed: data.failed,
        completed: data.completed,
    }
}

/// Recovers the state of the store in `dir` (steps 2–5 above).
///
/// # Errors
/// Corruption naming file and offset; [`Error::Io`]; [`Error::BadQueueFile`].
pub fn recover(storage: &dyn Storage, dir: &Path, policy: TailPolicy) -> Result<Recovered> {
    let journal_dir = dir.join(JOURNAL_DIR);
    if policy == TailPolicy::Truncate {
        snapshot::remove_leftovers(storage, dir)?;
        segment::remove_leftovers(storage, &journal_dir)?;
    }
    let segments = segment::list_segments(storage, &journal_dir)?;
    let journal_first = segments.first().map_or(Seq(0), |segment| segment.first_seq);
    let (base, base_path) = choose_base(storage, dir, journal_first)?;
    let mut legacy = None;
    let mut state = QueueState::new();
    let mut base_seq = Seq(0);
    match base {
        Base::Snapshot(data) => {
            base_seq = data.seq;
            state = state_from_snapshot(data, &base_path)?;
        }
        Base::Legacy(data) if policy == TailPolicy::Truncate => legacy = Some(data),
        Base::Legacy(data) => {
            state.apply(0.0, &legacy_import(data)).map_err(|error| Error::Corrupt {
                path: base_path.clone(),
                offset: 0,
                detail: error.0,
            })?;
        }
        Base::Empty => {}
    }
    let report = replay_into(storage, &journal_dir, policy, base_seq, &mut state)?;
    if !segments.is_empty() && report.last_seq < base_seq {
        return Err(Error::Corrupt {
            path: journal_dir,
            offset: 0,
            detail: format!(
                "the journal ends at record {} but {} covers record {base_seq}; records are missing",
                report.last_seq,
                base_path.display()
            ),
        });
    }
    let last_seq = report.last_seq.max(base_seq);
    let uncovered = if base_path.ends_with(snapshot::MANIFEST_FILE) {
        last_seq.0 - base_seq.0
    } else {
        (last_seq.0 - base_seq.0).max(1)
    };
    Ok(Recovered {
        state,
        report,
        last_seq,
        legacy,
        uncovered,
    })
}

/// Replays the journal records after `base_seq` into `state`.
///
/// # Errors
/// As [`recovery::replay`]; an event that does not apply is corruption at its record.
pub fn replay_into(
    storage: &dyn Storage,
    journal_dir: &Path,
    policy: TailPolicy,
    base_seq: Seq,
    state: &mut QueueState,
) -> Result<ReplayReport> {
    recovery::replay(storage, journal_dir, policy, base_seq.next(), &mut |record, place| {
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

enum Base {
    Snapshot(SnapshotData),
    Legacy(SnapshotData),
    Empty,
}

fn choose_base(storage: &dyn Storage, dir: &Path, journal_first: Seq) -> Result<(Base, PathBuf)> {
    let manifest = dir.join(snapshot::MANIFEST_FILE);
    let rejected = match snapshot::load_snapshot(storage, dir) {
        Ok(Some(data)) if journal_first.0 == 0 || data.seq.next() >= journal_first => {
            return Ok((Base::Snapshot(data), manifest));
        }
        Ok(Some(data)) => format!(
            "{} covers records through {} but the journal starts at {journal_first}",
            manifest.display(),
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
        let base = load_base(storage, &base_path)?;
        if base.seq.next() < journal_first {
            return Err(Error::Corrupt {
                path: base_path,
                offset: 0,
                detail: format!(
                    "the journal starts at record {journal_first}, the compaction base covers through {}; \
                     and the snapshot is unusable ({rejected})",
                    base.seq
                ),
            });
        }
        return Ok((Base::Snapshot(base), base_path));
    }
    if journal_first.0 == 0
        && !storage.exists(&manifest)
        && let Some(data) = snapshot::load_legacy(storage, dir)?
    {
        return Ok((Base::Legacy(data), dir.to_path_buf()));
    }
    Ok((Base::Empty, dir.to_path_buf()))
}

#[derive(Serialize, Deserialize)]
struct BaseFile {
    version: u32,
    seq: Seq,
    crc32: u32,
    in_flight: Vec<QueueEntry>,
    pending: Vec<QueueEntry>,
    failed: Vec<QueueEntry>,
    completed: Vec<QueueEntry>,
}

fn base_crc(data: &SnapshotData) -> Result<u32> {
    let lists = (&data.in_flight, &data.pending, &data.failed, &data.completed);
    let bytes = serde_json::to_vec(&lists).map_err(|error| Error::InvalidArgument(error.to_string()))?;
    Ok(crc32fast::hash(&bytes))
}

/// Writes the compaction base (the state as of `data.seq`) atomically.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_base(storage: &dyn Storage, journal_dir: &Path, data: SnapshotData) -> Result<()> {
    let crc32 = base_crc(&data)?;
    let file = BaseFile {
        version: 1,
        seq: data.seq,
        crc32,
        in_flight: data.in_flight,
        pending: data.pending,
        failed: data.failed,
        completed: data.completed,
    };
    let bytes = serde_json::to_vec(&file).map_err(|error| Error::InvalidArgument(error.to_string()))?;
    storage::write_atomic(storage, &journal_dir.join(BASE_FILE), &bytes)
}

/// Loads and checks the compaction base.
///
/// # Errors
/// [`Error::Corrupt`] naming the file when it is missing, unreadable or its CRC disagrees.
pub fn load_base(storage: &dyn Storage, path: &Path) -> Result<SnapshotData> {
    let corrupt = |detail: String| Error::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        detail,
    };
    if !storage.exists(path) {
        return Err(corrupt(
            "the journal was compacted but its base file is missing and no usable snapshot covers the gap".into(),
        ));
    }
    let bytes = storage.read(path).map_err(|error| Error::io("read", path, error))?;
    let file: BaseFile = serde_json::from_slice(&bytes).map_err(|error| corrupt(error.to_string()))?;
    let data = SnapshotData {
        seq: file.seq,
        in_flight: file.in_flight,
        pending: file.pending,
        failed: file.failed,
        completed: file.completed,
    };
    let found = base_crc(&data)?;
    if data.seq.0 > crate::record::SEQ_MAX {
        return Err(corrupt(format!("sequence number {} is out of range", data.seq)));
    }
    if found != file.crc32 || file.version != 1 {
        return Err(corrupt(format!(
            "checksum {found:#010x} does not match the recorded {:#010x}",
            file.crc32
        )));
    }
    Ok(data)
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
            let data = load_base(storage, &base_path)?;
            let seq = data.seq;
            Ok((state_from_snapshot(data, &base_path)?, seq))
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
    if let Ok(Some(data)) = snapshot::load_snapshot(storage, dir)
        && data.seq <= seq
        && (journal_first.0 == 0 || data.seq.next() >= journal_first)
    {
        let covered = data.seq;
        return Ok((state_from_snapshot(data, &dir.join(snapshot::MANIFEST_FILE))?, covered));
    }
    journal_base(storage, &journal_dir)
}
