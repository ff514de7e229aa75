//! What happened: the versioned event enum, one event per state change,
//! and its journal payload. Each event carries its own timestamp, so replay
//! never reads the clock.

use serde::{Deserialize, Serialize};

use crate::entry::QueueEntry;
use crate::error::{Error, Result};
use crate::movie::Movie;
use crate::seq::Seq;

/// The event schema version this build writes (`"v"` in every payload).
pub const EVENT_VERSION: u32 = 2;

/// The oldest event schema version this build reads: version 1 records
/// replay by version 1's rules (no stamped fields), so a journal written
/// before version 2 replays to exactly the state it had.
pub const EVENT_VERSION_MIN: u32 = 1;

/// Every state change of the queue (event schema version 2; see
/// `docs/FORMAT.md`).
///
/// The projection (`QueueState::apply`) gives each its meaning, by the
/// rules of the record's schema version; the manager only journals events
/// that change something.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A movie joined the back of pending.
    Added {
        /// The movie as given.
        movie: Movie,
    },
    /// The movie at the front of pending was taken into flight.
    Taken {
        /// Its id.
        id: String,
    },
    /// A movie failed (from pending, in flight, failed, or unknown). Its
    /// `retry_count` goes up by one from what it had; `failed_at` is this
    /// event's time on its first failure only.
    Failed {
        /// The movie as given by the caller (its fields replace the stored ones).
        movie: Movie,
        /// The error message.
        error: String,
        /// When it may be retried, Unix seconds.
        retry_after: f64,
    },
    /// A failed movie went to the back of pending, keeping its retry count.
    MovedToPending {
        /// Its id.
        id: String,
    },
    /// A failed movie went to the back of pending with a fresh retry count.
    Reset {
        /// Its id.
        id: String,
    },
    /// A movie was completed (from wherever it was); `completed_at` is this
    /// event's time.
    Completed {
        /// The movie as given by the caller.
        movie: Movie,
    },
    /// Completed entries older than `cutoff` were removed.
    CleanedUp {
        /// Entries with `completed_at < cutoff` went, Unix seconds.
        cutoff: f64,
        /// The ids removed, in completed order.
        ids: Vec<String>,
    },
    /// Movies in flight went back to the front of pending, in this order.
    Requeued {
        /// Their ids.
        ids: Vec<String>,
    },
    /// Entries imported from the documented JSON files (a legacy store or
    /// `import DIR`). Entries whose id the store already holds are skipped.
    Imported {
        /// `queue_pending.json`, in order.
        pending: Vec<QueueEntry>,
        /// `queue_failed.json`, in order.
        failed: Vec<QueueEntry>,
        /// `queue_completed.json`, in order.
        completed: Vec<QueueEntry>,
        /// `queue_removed.json`, in order (version 2; absent in version 1).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        removed: Vec<QueueEntry>,
    },
    /// A movie left the watchlist: from wherever it was (or nowhere) to
    /// the back of removed, `removed_at` = this event's time (version 2).
    Removed {
        /// The movie as given by the caller (its fields replace the stored ones).
        movie: Movie,
    },
    /// Pending and completed movies that left the watchlist, to the back
    /// of removed in this order, as they are stored (version 2).
    MarkedRemoved {
        /// Their ids.
        ids: Vec<String>,
    },
    /// A removed movie went back to the end of pending (version 2).
    Restored {
        /// Its id.
        id: String,
    },
    /// A removed movie was dropped from the store (its files deleted by
    /// the application); its id is unknown again (version 2).
    Forgotten {
        /// Its id.
        id: String,
    },
}

impl Event {
    /// The ids this event concerns, for `history(id)`.
    pub fn ids(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Event::Added { movie }
            | Event::Failed { movie, .. }
            | Event::Completed { movie }
            | Event::Removed { movie } => Box::new(std::iter::once(movie.id())),
            Event::Taken { id }
            | Event::MovedToPending { id }
            | Event::Reset { id }
            | Event::Restored { id }
            | Event::Forgotten { id } => Box::new(std::iter::once(id.as_str())),
            Event::CleanedUp { ids, .. } | Event::Requeued { ids } | Event::MarkedRemoved { ids } => {
                Box::new(ids.iter().map(String::as_str))
            }
            Event::Imported {
                pending,
                failed,
                completed,
                removed,
            } => Box::new(
                pending
                    .iter()
                    .chain(failed)
                    .chain(completed)
                    .chain(removed)
                    .map(QueueEntry::id),
            ),
        }
    }

    /// Does this event concern the movie `id`?
    #[must_use]
    pub fn concerns(&self, id: &str) -> bool {
        self.ids().any(|other| other == id)
    }

    /// The event's name as written in the journal (`"added"`, `"taken"`, ...).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Added { .. } => "added",
            Event::Taken { .. } => "taken",
            Event::Failed { .. } => "failed",
            Event::MovedToPending { .. } => "moved_to_pending",
            Event::Reset { .. } => "reset",
            Event::Completed { .. } => "completed",
            Event::CleanedUp { .. } => "cleaned_up",
            Event::Requeued { .. } => "requeued",
            Event::Imported { .. } => "imported",
            Event::Removed { .. } => "removed",
            Event::MarkedRemoved { .. } => "marked_removed",
            Event::Restored { .. } => "restored",
            Event::Forgotten { .. } => "forgotten",
        }
    }

    /// The first event schema version that has this event (as it is:
    /// an `imported` event with removed entries is version 2).
    #[must_use]
    pub fn since_version(&self) -> u32 {
        match self {
            Event::Removed { .. } | Event::MarkedRemoved { .. } | Event::Restored { .. } | Event::Forgotten { .. } => 2,
            Event::Imported { removed, .. } if !removed.is_empty() => 2,
            _ => 1,
        }
    }
}

/// An event as the journal holds it: its sequence number, its time, the
/// schema version it was written in and what happened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EventRecord {
    /// Its place in the journal.
    pub seq: Seq,
    /// When it happened, Unix seconds.
    pub ts: f64,
    /// The event schema version it was written in (its rules apply on replay).
    pub version: u32,
    /// What happened.
    pub event: Event,
}

impl EventRecord {
    /// An event that happened at `ts` (Unix seconds), journaled as record
    /// `seq` in the current schema version.
    #[must_use]
    pub fn new(seq: Seq, ts: f64, event: Event) -> Self {
        EventRecord {
            seq,
            ts,
            version: EVENT_VERSION,
            event,
        }
    }

    /// As [`EventRecord::new`], written in schema `version`.
    #[must_use]
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }
}

#[derive(Serialize)]
struct PayloadOut<'a> {
    v: u32,
    ts: f64,
    event: &'a Event,
}

#[derive(Deserialize)]
struct PayloadIn {
    v: u32,
    ts: f64,
    event: Event,
}

/// Encodes an event's journal payload: `{"v":2,"ts":…,"event":{…}}`.
///
/// # Errors
/// [`Error::OutOfRange`] when `ts` is not finite.
pub fn encode_payload(ts: f64, event: &Event) -> Result<Vec<u8>> {
    encode_payload_with(&mut Vec::new(), ts, event)
}

/// The journal payload of `record` in the schema version it carries (a
/// restore writes each record as its source wrote it).
///
/// # Errors
/// [`Error::InvalidArgument`] for a version this build does not write or
/// an event newer than the version; [`Error::OutOfRange`] for a time that
/// is not finite.
pub fn encode_record_payload(record: &EventRecord) -> Result<Vec<u8>> {
    if !(EVENT_VERSION_MIN..=EVENT_VERSION).contains(&record.version) {
        return Err(Error::InvalidArgument(format!(
            "record {} is of event version {}; this build reads {EVENT_VERSION_MIN} to {EVENT_VERSION}",
            record.seq, record.version
        )));
    }
    if record.event.since_version() > record.version {
        return Err(Error::InvalidArgument(format!(
            "record {} is a version {} record holding a {} event, which came in version {}",
            record.seq,
            record.version,
            record.event.kind(),
            record.event.since_version()
        )));
    }
    encode_versioned(&mut Vec::new(), record.version, record.ts, &record.event)
}

/// A scratch buffer larger than this is let go after use (an import's
/// payload can be megabytes; every other event's is under a kilobyte).
const PAYLOAD_SCRATCH_BYTES_MAX: usize = 64 * 1024;

/// As [`encode_payload`], serializing into `scratch` (kept between calls)
/// and returning an exact-size copy: one allocation per payload instead of
/// a buffer grown (reallocated) while serializing. The payload goes to the
/// writer thread and is freed there, so this thread's allocator never gets
/// it back; each allocation it makes for one is a slow-path `malloc`.
///
/// # Errors
/// As [`encode_payload`].
pub(crate) fn encode_payload_with(scratch: &mut Vec<u8>, ts: f64, event: &Event) -> Result<Vec<u8>> {
    encode_versioned(scratch, EVENT_VERSION, ts, event)
}

fn encode_versioned(scratch: &mut Vec<u8>, version: u32, ts: f64, event: &Event) -> Result<Vec<u8>> {
    if !ts.is_finite() {
        return Err(Error::OutOfRange {
            name: "event time",
            value: ts,
            min: f64::MIN,
            max: f64::MAX,
        });
    }
    scratch.clear();
    let encoded = serde_json::to_writer(&mut *scratch, &PayloadOut { v: version, ts, event });
    let payload = encoded
        .map(|()| scratch.as_slice().to_vec())
        .map_err(|error| Error::InvalidArgument(format!("event cannot be encoded: {error}")));
    if scratch.capacity() > PAYLOAD_SCRATCH_BYTES_MAX {
        *scratch = Vec::new();
    }
    payload
}

/// Why a payload could not be decoded.
#[derive(Debug)]
pub enum PayloadError {
    /// The payload is not an event of any known shape.
    Malformed(String),
    /// The payload's `"v"` is not a version this build reads
    /// ([`EVENT_VERSION_MIN`]`..=`[`EVENT_VERSION`]).
    Version(u32),
}

/// A decoded payload: the schema version, the time, the event.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The schema version it was written in.
    pub version: u32,
    /// Its time, Unix seconds.
    pub ts: f64,
    /// What happened.
    pub event: Event,
}

/// The movie ids an event's journal payload names (the id filters read
/// them). `None`: not a payload this version reads.
#[must_use]
pub fn decode_ids(bytes: &[u8]) -> Option<Vec<String>> {
    let decoded = decode_payload(bytes).ok()?;
    Some(decoded.event.ids().map(str::to_owned).collect())
}

/// The time of an event's journal payload, decoding nothing else of it
/// (the time index and time queries read it). `None`: not a payload.
#[must_use]
pub fn decode_ts(bytes: &[u8]) -> Option<f64> {
    #[derive(Deserialize)]
    struct Stamp {
        ts: f64,
    }
    written_ts(bytes)
        .or_else(|| serde_json::from_slice::<Stamp>(bytes).ok().map(|stamp| stamp.ts))
        .filter(|ts| ts.is_finite())
}

/// The time of a payload as [`encode_payload`] writes it, `{"v":N,"ts":T,…`,
/// read without parsing the rest (`None`: another layout; the caller then
/// parses it whole). `serde_json` writes the shortest text that reads back
/// as the same `f64`, and Rust's parse is correctly rounded: the same time.
fn written_ts(bytes: &[u8]) -> Option<f64> {
    let rest = bytes.strip_prefix(b"{\"v\":")?;
    let digits = rest.iter().take_while(|byte| byte.is_ascii_digit()).count();
    let rest = rest.get(digits..)?.strip_prefix(b",\"ts\":")?;
    let number = rest
        .iter()
        .take_while(|byte| byte.is_ascii_digit() || matches!(byte, b'.' | b'-' | b'+' | b'e' | b'E'))
        .count();
    if digits == 0 || rest.get(number) != Some(&b',') {
        return None;
    }
    std::str::from_utf8(rest.get(..number)?).ok()?.parse().ok()
}

/// Decodes an event's journal payload (the inverse of [`encode_payload`]).
///
/// # Errors
/// [`PayloadError`] saying what is wrong; the caller adds file and offset.
pub fn decode_payload(bytes: &[u8]) -> std::result::Result<Decoded, PayloadError> {
    let payload: PayloadIn =
        crate::json::from_slice(bytes).map_err(|error| PayloadError::Malformed(error.to_string()))?;
    if !(EVENT_VERSION_MIN..=EVENT_VERSION).contains(&payload.v) {
        return Err(PayloadError::Version(payload.v));
    }
    if !payload.ts.is_finite() {
        return Err(PayloadError::Malformed(format!(
            "event time {} is not finite",
            payload.ts
        )));
    }
    if payload.event.since_version() > payload.v {
        return Err(PayloadError::Malformed(format!(
            "a version {} payload holds a {} event of version {}",
            payload.v,
            payload.event.kind(),
            payload.event.since_version()
        )));
    }
    Ok(Decoded {
        version: payload.v,
        ts: payload.ts,
        event: payload.event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn every_event() -> Vec<Event> {
        let matrix = Movie::new("123", "The Matrix", "1999").with_slug("the-matrix");
        let mut failed = QueueEntry::new(Movie::new("2", "Heat", 1995));
        failed.retry_count = 2;
        failed.last_error = Some("Not found on tracker".into());
        failed.retry_after = Some(1_760_813_282.5);
        failed.failed_at = Some(1_760_806_482.5);
        let mut completed = QueueEntry::new(Movie::new("3", "Alien", "1979"));
        completed.completed_at = Some(1_760_813_282.123_456_7);
        vec![
            Event::Added { movie: matrix.clone() },
            Event::Taken { id: "123".into() },
            Event::Failed {
                movie: matrix.clone(),
                error: "Download failed".into(),
                retry_after: 1_760_813_282.5,
            },
            Event::MovedToPending { id: "123".into() },
            Event::Reset { id: "123".into() },
            Event::Completed { movie: matrix },
            Event::CleanedUp {
                cutoff: 1_760_000_000.0,
                ids: vec!["3".into()],
            },
            Event::Requeued {
                ids: vec!["1".into(), "2".into()],
            },
            Event::Imported {
                pending: vec![QueueEntry::new(Movie::new("4", "Up", 2009))],
                failed: vec![failed],
                completed: vec![completed],
                removed: vec![],
            },
            Event::Removed {
                movie: Movie::new("5", "Jaws", 1975),
            },
            Event::MarkedRemoved {
                ids: vec!["1".into(), "3".into()],
            },
            Event::Restored { id: "5".into() },
            Event::Forgotten { id: "5".into() },
        ]
    }

    #[test]
    fn every_event_round_trips_through_its_payload() {
        for event in every_event() {
            let bytes = encode_payload(1_760_806_482.123_456_7, &event).expect("encodes");
            let decoded = decode_payload(&bytes).expect("decodes");
            assert_eq!(decoded.ts.to_bits(), 1_760_806_482.123_456_7_f64.to_bits());
            assert_eq!(decoded.version, EVENT_VERSION);
            assert_eq!(decoded.event, event);
        }
    }

    #[test]
    fn a_reused_scratch_encodes_each_payload_alone_and_exactly_sized() {
        let mut scratch = Vec::new();
        for event in every_event().iter().chain(every_event().iter().rev()) {
            let bytes = encode_payload_with(&mut scratch, 2.5, event).expect("encodes");
            let alone = serde_json::to_vec(&PayloadOut {
                v: EVENT_VERSION,
                ts: 2.5,
                event,
            })
            .expect("encodes");
            assert_eq!(bytes, alone);
            assert_eq!(bytes.capacity(), bytes.len(), "one exact-size allocation");
        }
        let huge = Event::CleanedUp {
            cutoff: 1.0,
            ids: (0..20_000).map(|number| number.to_string()).collect(),
        };
        encode_payload_with(&mut scratch, 2.5, &huge).expect("encodes");
        assert!(
            scratch.capacity() <= PAYLOAD_SCRATCH_BYTES_MAX,
            "a huge scratch is let go"
        );
        assert!(encode_payload_with(&mut scratch, f64::INFINITY, &huge).is_err());
    }

    #[test]
    fn the_time_of_a_payload_reads_back_bit_for_bit_without_parsing_the_event() {
        for ts in [1_760_806_482.123_456_7, 0.1, 1e21, 5e-324, 1_700_000_000.0] {
            let bytes = encode_payload(ts, &Event::Taken { id: "1".into() }).expect("encodes");
            assert_eq!(written_ts(&bytes).map(f64::to_bits), Some(ts.to_bits()), "{ts}");
            assert_eq!(decode_ts(&bytes).map(f64::to_bits), Some(ts.to_bits()));
        }
        let reordered = br#"{"ts":2.5,"v":2,"event":{"taken":{"id":"1"}}}"#;
        assert_eq!(written_ts(reordered), None);
        assert_eq!(decode_ts(reordered), Some(2.5));
        assert_eq!(decode_ts(br#"{"v":2,"ts":1.5"#), None, "not a payload");
    }

    #[test]
    fn unknown_versions_and_kinds_are_refused() {
        let wrong_version = br#"{"v":3,"ts":1.0,"event":{"taken":{"id":"1"}}}"#;
        assert!(matches!(decode_payload(wrong_version), Err(PayloadError::Version(3))));
        let no_version = br#"{"v":0,"ts":1.0,"event":{"taken":{"id":"1"}}}"#;
        assert!(matches!(decode_payload(no_version), Err(PayloadError::Version(0))));
        let unknown_kind = br#"{"v":1,"ts":1.0,"event":{"exploded":{"id":"1"}}}"#;
        assert!(matches!(decode_payload(unknown_kind), Err(PayloadError::Malformed(_))));
        assert!(encode_payload(f64::NAN, &Event::Taken { id: "1".into() }).is_err());
    }

    #[test]
    fn version_1_payloads_still_decode_but_hold_no_version_2_event() {
        let old = br#"{"v":1,"ts":1.5,"event":{"taken":{"id":"1"}}}"#;
        let decoded = decode_payload(old).expect("a version 1 payload");
        assert_eq!((decoded.version, decoded.event), (1, Event::Taken { id: "1".into() }));
        let too_new = br#"{"v":1,"ts":1.5,"event":{"forgotten":{"id":"1"}}}"#;
        assert!(matches!(decode_payload(too_new), Err(PayloadError::Malformed(_))));
        let removed_entries = br#"{"v":1,"ts":1.5,"event":{"imported":{"pending":[],"failed":[],"completed":[],
            "removed":[{"id":"1"}]}}}"#;
        assert!(matches!(
            decode_payload(removed_entries),
            Err(PayloadError::Malformed(_))
        ));
    }
}
