//! The library's one error type.
//!
//! Every I/O error names its path; every corruption names its file and byte
//! offset, so a message can be acted on without a debugger.

use std::path::PathBuf;

use crate::seq::{Seq, Until};

/// The result type of every fallible call in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `movie_queue`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call on `path` failed.
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was being done (`open`, `write`, `fsync`, ...).
        operation: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Another process (or another `QueueManager` in this one) holds the store.
    #[error("store {dir} is locked by another writer (its LOCK file is held); close it first or open read-only")]
    Locked {
        /// The store directory.
        dir: PathBuf,
    },

    /// A write or fsync of the journal failed (this call's or an earlier one); nothing more is
    /// written until the store is reopened.
    #[error("a write or fsync of the journal failed ({cause}); nothing more is written until the store is reopened")]
    Poisoned {
        /// The first failure, as text.
        cause: String,
        /// The first failure's kind, when it was an I/O error
        /// (`StorageFull` for a full disk, say).
        kind: Option<std::io::ErrorKind>,
    },

    /// A record's checksum does not match its bytes.
    #[error(
        "{path}: checksum mismatch in record at byte offset {offset} (stored {expected:#010x}, computed {found:#010x})"
    )]
    ChecksumMismatch {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record's header in the file.
        offset: u64,
        /// The CRC stored in the record.
        expected: u32,
        /// The CRC computed over its bytes.
        found: u32,
    },

    /// A record that is incomplete or zero-filled (or, under a reader that
    /// rejects them, any damaged last record: a torn tail).
    #[error("{path}: truncated record at byte offset {offset}: {defect} {situation}")]
    TruncatedRecord {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record's header in the file.
        offset: u64,
        /// What is wrong with the record.
        defect: RecordDefect,
        /// Where the damage sits, which decides what it means.
        situation: DamageSituation,
    },

    /// A record's length field is larger than the format allows.
    #[error("{path}: record at byte offset {offset} declares {length} payload bytes, over the limit of {limit}")]
    RecordTooLarge {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record's header in the file.
        offset: u64,
        /// The declared payload length.
        length: u64,
        /// The maximum payload length.
        limit: u64,
    },

    /// Sequence numbers are not contiguous.
    #[error("{path}: sequence gap at byte offset {offset}: expected record {expected}, found {found}")]
    SequenceGap {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record's header in the file.
        offset: u64,
        /// The sequence number that should come next.
        expected: u64,
        /// The sequence number found.
        found: u64,
    },

    /// A segment header or record carries a version this build cannot read.
    #[error(
        "{path}: unsupported format version {version} at byte offset {offset} (this build reads version {supported})"
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Byte offset of the version field.
        offset: u64,
        /// The version found.
        version: u32,
        /// The version this build reads and writes.
        supported: u32,
    },

    /// Any other damage: a bad magic number, an undecodable event, a
    /// non-final segment with a torn end, a foreign file in `journal/`.
    #[error("{path}: corrupt at byte offset {offset}: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset where the damage starts.
        offset: u64,
        /// What is wrong.
        detail: String,
    },

    /// A movie (or an argument about one) is not acceptable.
    #[error("invalid movie: {0}")]
    InvalidMovie(String),

    /// An argument the library cannot act on (a directory that holds
    /// no queue files to import, no home directory, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A number outside the range the library accepts: a time that is
    /// NaN or infinite (`retry_after`, a clean-up cutoff, a time-travel
    /// target, an event's time from the clock).
    #[error("invalid argument: {name} {value} is {}", range_words(*.min, *.max))]
    OutOfRange {
        /// The argument (`retry_after`, `cutoff`, `time`, `event time`).
        name: &'static str,
        /// The value given.
        value: f64,
        /// The smallest value accepted (`f64::MIN`: any finite number
        /// down to it).
        min: f64,
        /// The largest value accepted.
        max: f64,
    },

    /// A time-travel target (`state_at`, `replay`) the
    /// store cannot answer exactly: `reason` says why, `answerable` what
    /// it can answer instead. Never a nearby state instead.
    #[error("invalid argument: the state as of {target} cannot be rebuilt: {}", refusal_words(.target, .reason, .answerable.as_ref()))]
    Unanswerable {
        /// The record or time asked for.
        target: Until,
        /// Why it cannot be answered.
        reason: Refusal,
        /// The records or times the store can answer, where it knows them.
        answerable: Option<Answerable>,
    },

    /// This process is a child made by `fork()` (without `exec`) of the
    /// process that opened the manager: it inherited a copy of the
    /// manager but not its threads (the journal's writer lives on in the
    /// process that opened it), and its copy of the writer's lock was
    /// closed at the fork. Every call on the copy fails with this, and
    /// dropping it does nothing to the store. Open the store again in this
    /// process once the other has closed it, or better, let one process
    /// own the store (see the README, "Several processes").
    #[error(
        "store {dir} was opened by process {owner_pid}, and this process is a fork of it: a queue manager does \
         not survive fork() (its writer stays in process {owner_pid}); open the store again in this process \
         after that one closes it, or let one process own the store"
    )]
    Forked {
        /// The store directory.
        dir: PathBuf,
        /// The process that opened the manager (and owns it).
        owner_pid: u32,
    },

    /// An event is larger than the journal's record limit.
    #[error("event of {length} bytes is over the record limit of {limit} bytes")]
    EventTooLarge {
        /// The encoded size.
        length: u64,
        /// The limit.
        limit: u64,
    },

    /// No movie with this id is where the operation needs it.
    #[error("no movie with id {id:?} is {wanted}")]
    NotFound {
        /// The id asked for.
        id: String,
        /// Where it was looked for ("failed", "pending or in flight", ...).
        wanted: &'static str,
    },

    /// A documented JSON file cannot be read and there is no journal to rebuild it from.
    #[error("{path}: {detail}")]
    BadQueueFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },

    /// The store was opened read-only and a mutation was asked for.
    #[error("store {dir} is open read-only")]
    ReadOnly {
        /// The store directory.
        dir: PathBuf,
    },

    /// Every change is durable in the journal, but writing the snapshot
    /// (the documented files) failed; the next open rebuilds it. A caller
    /// that made changes may report them as done.
    #[error(
        "every change through record {seq} is durable in the journal, but the snapshot was not written ({cause}); the next open rebuilds it"
    )]
    SnapshotFailed {
        /// The record the journal is durable through.
        seq: u64,
        /// Why the snapshot failed.
        cause: Box<Error>,
    },

    /// The store is held by another process, and asking it through its
    /// control socket is not possible: `reason` says why (no socket, a
    /// killed holder's socket, a holder that does not answer in time, a
    /// socket of another user).
    #[error("store {dir} is held by another process, and its control socket does not answer: {reason}")]
    ControlUnavailable {
        /// The store directory.
        dir: PathBuf,
        /// Why not.
        reason: String,
    },

    /// The connection to the process holding the store was lost after a
    /// request was sent and before its answer came: whether it was carried
    /// out is not known. The journal tells: the records after `last_seq`.
    #[error(
        "the process holding store {dir} did not answer `{operation}` ({reason}): whether it was carried out is unknown"
    )]
    OutcomeUnknown {
        /// The store directory.
        dir: PathBuf,
        /// The request's operation.
        operation: String,
        /// The last record the holder had applied when the connection was made.
        last_seq: u64,
        /// What happened to the connection.
        reason: String,
    },

    /// An error the process holding the store answered a control request
    /// with, as the holder worded it (`kind`: its kind on the wire, see
    /// `docs/FORMAT.md`).
    #[error("{message}")]
    Remote {
        /// The error's kind on the wire (`busy`, `closed`, `failed`, ...).
        kind: String,
        /// The holder's words.
        message: String,
    },

    /// The manager was closed (or its writer thread is gone).
    #[error("the queue manager is closed")]
    Closed,

    /// `verify` read the store again and again while a writer beside it
    /// kept snapshotting or compacting, and each reading found something
    /// that had changed under it: no answer about damage can be given.
    /// Not damage.
    #[error(
        "store {dir} kept changing while it was verified ({attempts} readings, a writer snapshotting or compacting beside it); nothing is known to be damaged"
    )]
    Changing {
        /// The store directory.
        dir: PathBuf,
        /// How many times it was read.
        attempts: u32,
    },

    /// Records asked for (or due next to a reader that fell behind) are
    /// no longer in the journal: `compact` removed them; their effect is in
    /// the compaction base, their events are gone. Not damage.
    #[error("records {from} to {last} are no longer in the journal (compacted away); it goes on at record {resumes}")]
    CompactedAway {
        /// The first record asked for.
        from: u64,
        /// The last one removed.
        last: u64,
        /// The record the journal goes on at.
        resumes: u64,
    },

    /// A follower of the journal (`follow`, `log --follow`) had read a
    /// record that is no longer there: the journal was cut below it (by
    /// `repair`, or a power loss took records that were never synced) or
    /// its segment was set aside. What it reads next might not continue
    /// the history it has handed on, so it stops.
    #[error(
        "{path}: record {seq} (byte offset {offset}) was already read but is no longer in the journal: it was cut \
         (by `movie-queue repair`, or a power loss took records that were never synced) or its segment was set \
         aside; events read after it might not continue the same history"
    )]
    FollowedRecordGone {
        /// The segment it was read from.
        path: PathBuf,
        /// Where it was.
        offset: u64,
        /// Its sequence number.
        seq: u64,
    },
}

/// Why a time-travel target cannot be answered exactly.
#[derive(Debug)]
#[non_exhaustive]
pub enum Refusal {
    /// It is before the records the journal still holds: those before
    /// record `first_held` were compacted away (their effect lives on in
    /// the compaction base, their events are gone).
    Compacted {
        /// The first record the journal holds.
        first_held: Seq,
    },
    /// Damaged records lie before it. For a record: `damage`, the damage
    /// that stops the records before it (as `verify` names it). For a
    /// time: `next`, the first record after the damage and its time —
    /// which of the damaged records happened by then is unknown.
    Damaged {
        /// The damage, when a record was asked for.
        damage: Option<Box<Error>>,
        /// The first valid record after the damage and its time, when a
        /// time was asked for.
        next: Option<(Seq, f64)>,
    },
    /// It is past the journal's last record.
    PastEnd,
    /// It is a time in the future.
    Future {
        /// The time it was then.
        now: f64,
    },
    /// It is a time, but the journal holds no event since its compaction,
    /// so no event time is known (the state as of its last record is the
    /// current one).
    NoEventTime,
}

/// The targets a store can answer, as a refusal names them.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Answerable {
    /// The states as of records `first` through `last` (`None`: not read;
    /// up to the journal's end).
    Records {
        /// The earliest record it can rebuild the state as of.
        first: Seq,
        /// The last one, when known.
        last: Option<Seq>,
    },
    /// The states as of any time from `from` through `to` (`None`:
    /// unbounded on that side).
    Times {
        /// The earliest time, when there is one.
        from: Option<f64>,
        /// The latest time (now, for a time in the future), when there is one.
        to: Option<f64>,
    },
}

/// The allowed range of [`Error::OutOfRange`] in words.
fn range_words(min: f64, max: f64) -> String {
    if min <= f64::MIN && max >= f64::MAX {
        "not a finite number".to_owned()
    } else {
        format!("outside its range, {min} to {max}")
    }
}

/// What [`Error::Unanswerable`] says after "cannot be rebuilt: ", the
/// words the command-line tool has always printed.
fn refusal_words(target: &Until, reason: &Refusal, answerable: Option<&Answerable>) -> String {
    let (first, last) = match answerable {
        Some(Answerable::Records { first, last }) => (Some(*first), *last),
        _ => (None, None),
    };
    let from = match answerable {
        Some(Answerable::Times { from, .. }) => *from,
        _ => None,
    };
    let range = |first: Option<Seq>, last: Option<Seq>| match (first, last) {
        (Some(first), Some(last)) => format!("; it can be rebuilt as of records {first} to {last}"),
        (Some(first), None) => format!("; the earliest state it can rebuild is as of record {first}"),
        _ => String::new(),
    };
    match (target, reason) {
        (Until::Seq(_), Refusal::Compacted { first_held }) => {
            format!("records before {first_held} were compacted away{}", range(first, None))
        }
        (Until::Time(_), Refusal::Compacted { first_held }) => {
            let stamped = from.map(|ts| format!(", stamped {ts}")).unwrap_or_default();
            let since = from
                .map(|ts| format!("; it can be rebuilt as of any time from {ts} on"))
                .unwrap_or_default();
            format!(
                "it is before the first event the journal still holds (record {first_held}{stamped}; earlier \
                 records were compacted away){since}"
            )
        }
        (
            _,
            Refusal::Damaged {
                next: Some((seq, ts)), ..
            },
        ) => format!(
            "the records just before record {seq} (stamped {ts}) are damaged, so which of them happened by then \
             is unknown (`movie-queue verify` says more)"
        ),
        (_, Refusal::Damaged { damage, .. }) => {
            let damage = damage.as_ref().map(|damage| format!(" ({damage})")).unwrap_or_default();
            format!(
                "the records before it are damaged{damage}{} (`movie-queue verify` says more)",
                range(first, last)
            )
        }
        (_, Refusal::PastEnd) => past_end_words(target, first, last),
        (_, Refusal::Future { now }) => {
            format!("it is in the future (now is {now}); it can be rebuilt as of any time up to now")
        }
        (_, Refusal::NoEventTime) => "the journal holds no event since its compaction, so no event time is known \
                                      (the state as of its last record is the current one)"
            .to_owned(),
    }
}

/// A record past the journal's end, with a hint when the number looks
/// like a Unix time.
fn past_end_words(target: &Until, first: Option<Seq>, last: Option<Seq>) -> String {
    let Some(last) = last else {
        return "the journal holds no record at or before it".to_owned();
    };
    // A number this large is more likely a Unix time than a record.
    let time = match target {
        Until::Seq(seq) if seq.0 >= 1_000_000_000 => {
            format!(" (for the time {seq}, Unix seconds, write it with a decimal point: {seq}.0)")
        }
        _ => String::new(),
    };
    format!(
        "it is past the end of the journal, whose last record is {last}; it can be rebuilt as of records {} \
         to {last}{time}",
        first.unwrap_or_default()
    )
}

/// What is wrong with the record at some offset of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordDefect {
    /// Fewer bytes than a record header remain.
    ShortHeader {
        /// The bytes that remain.
        available: u64,
    },
    /// A zero length (never written; typically zero-filled space).
    Empty,
    /// The length is over the format's limit.
    TooLarge(u32),
    /// The payload runs past the end of the data.
    PastEnd {
        /// Declared payload length.
        length: u32,
        /// Bytes available after the header.
        available: u64,
    },
    /// The CRC does not match.
    Checksum {
        /// Stored.
        expected: u32,
        /// Computed.
        found: u32,
    },
}

impl std::fmt::Display for RecordDefect {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordDefect::ShortHeader { available } => {
                write!(formatter, "{available} bytes, less than a record header")
            }
            RecordDefect::Empty => formatter.write_str("zero-filled space"),
            RecordDefect::TooLarge(length) => write!(formatter, "a length of {length} bytes, over the format's limit"),
            RecordDefect::PastEnd { length, available } => {
                write!(formatter, "a record of {length} bytes with only {available} written")
            }
            RecordDefect::Checksum { expected, found } => write!(
                formatter,
                "a checksum mismatch (stored {expected:#010x}, computed {found:#010x})"
            ),
        }
    }
}

/// Where a damaged record sits, which decides what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DamageSituation {
    /// Valid records follow it in its segment: corruption.
    ValidRecordsFollow,
    /// It is in a segment that is not the last: corruption.
    NotLastSegment,
    /// Nothing valid follows it in the last segment: the torn tail of an
    /// interrupted write, reported by a reader that does not cut it.
    TornTail {
        /// Bytes from the damaged record to the end of the segment.
        bytes: u64,
    },
}

impl std::fmt::Display for DamageSituation {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DamageSituation::ValidRecordsFollow => formatter.write_str("with valid records after it"),
            DamageSituation::NotLastSegment => formatter.write_str("in a segment that is not the last"),
            DamageSituation::TornTail { bytes } => write!(
                formatter,
                "(a torn tail of {bytes} bytes; the next writer open truncates it, or run `movie-queue repair`)"
            ),
        }
    }
}

impl Error {
    /// Wraps an I/O error with the operation and path it concerns.
    pub(crate) fn io(operation: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            operation,
            path: path.into(),
            source,
        }
    }

    /// Is this damage found in stored bytes (as opposed to I/O, misuse or locking)?
    #[must_use]
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::ChecksumMismatch { .. }
                | Error::TruncatedRecord { .. }
                | Error::RecordTooLarge { .. }
                | Error::SequenceGap { .. }
                | Error::UnsupportedVersion { .. }
                | Error::Corrupt { .. }
        )
    }

    /// The file and byte offset a corruption error names, if it names one.
    #[must_use]
    pub fn place(&self) -> Option<(&std::path::Path, u64)> {
        match self {
            Error::ChecksumMismatch { path, offset, .. }
            | Error::TruncatedRecord { path, offset, .. }
            | Error::RecordTooLarge { path, offset, .. }
            | Error::SequenceGap { path, offset, .. }
            | Error::UnsupportedVersion { path, offset, .. }
            | Error::Corrupt { path, offset, .. } => Some((path, *offset)),
            _ => None,
        }
    }
}
