//! What happened: the versioned event enum, the queue entry it carries, and
//! the sequence-number newtype. One event per state change; each carries its
//! own timestamp so replay never reads the clock.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::movie::{Movie, RawFields, kind_of};

/// The event schema version this build writes and reads (`"v"` in every payload).
pub const EVENT_VERSION: u32 = 1;

/// A journal sequence number: contiguous from 1, one per event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    /// The sequence number after this one.
    #[must_use]
    pub fn next(self) -> Seq {
        Seq(self.0.saturating_add(1))
    }
}

impl std::fmt::Display for Seq {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// One movie as a queue holds it: the movie's own fields plus what the
/// queue keeps about it. Serialized flat, exactly as the documented JSON
/// files show an entry (`retry_count`, `last_error`, `retry_after`,
/// `failed_at`, `completed_at` beside the movie's fields, each written only
/// when set).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    /// The movie.
    pub movie: Movie,
    /// How many times it failed (kept when it goes back to pending).
    pub retry_count: u32,
    /// The error of its last failure.
    pub last_error: Option<String>,
    /// When it may be retried, Unix seconds.
    pub retry_after: Option<f64>,
    /// When it first failed, Unix seconds.
    pub failed_at: Option<f64>,
    /// When it was completed, Unix seconds.
    pub completed_at: Option<f64>,
}

impl QueueEntry {
    /// A fresh entry: never failed, not completed.
    #[must_use]
    pub fn new(movie: Movie) -> Self {
        QueueEntry {
            movie,
            retry_count: 0,
            last_error: None,
            retry_after: None,
            failed_at: None,
            completed_at: None,
        }
    }

    /// The movie's id.
    #[must_use]
    pub fn id(&self) -> &str {
        self.movie.id()
    }

    /// The entry as one flat JSON object (the documented files' shape):
    /// the movie's fields, then `retry_count` (once it has failed),
    /// `last_error`, `retry_after`, `failed_at`, `completed_at` where set.
    #[must_use]
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Parses one entry of a documented file. Integer and float timestamps
    /// both load.
    ///
    /// # Errors
    /// [`Error::InvalidMovie`] naming the field that is wrong.
    pub fn from_value(value: Value) -> Result<Self> {
        let Value::Object(map) = value else {
            return Err(Error::InvalidMovie(format!(
                "a queue entry is a JSON object, not {}",
                kind_of(&value)
            )));
        };
        Self::from_raw(RawFields::from_map(map))
    }

    /// Validates one entry object's fields.
    pub(crate) fn from_raw(mut raw: RawFields) -> Result<Self> {
        let retry_count = match raw.retry_count.take() {
            None | Some(Value::Null) => 0,
            Some(Value::Number(number)) => number
                .as_u64()
                .and_then(|count| u32::try_from(count).ok())
                .ok_or_else(|| Error::InvalidMovie(format!("\"retry_count\" {number} is not a count")))?,
            Some(other) => {
                return Err(Error::InvalidMovie(format!(
                    "\"retry_count\" must be a number, not {}",
                    kind_of(&other)
                )));
            }
        };
        let last_error = match raw.last_error.take() {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text),
            Some(other) => Some(other.to_string()),
        };
        let retry_after = time_field(raw.retry_after.take(), "retry_after")?;
        let failed_at = time_field(raw.failed_at.take(), "failed_at")?;
        let completed_at = time_field(raw.completed_at.take(), "completed_at")?;
        Ok(QueueEntry {
            movie: Movie::from_raw(raw)?,
            retry_count,
            last_error,
            retry_after,
            failed_at,
            completed_at,
        })
    }
}

fn time_field(value: Option<Value>, key: &str) -> Result<Option<f64>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => Ok(number.as_f64()),
        Some(other) => Err(Error::InvalidMovie(format!(
            "{key:?} must be a Unix time in seconds, not {}",
            kind_of(&other)
        ))),
    }
}

/// An entry's fields by reference, serialized exactly as [`QueueEntry`]
/// is: the projection stores entries as JSON without cloning their movie.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryFields<'a> {
    pub(crate) movie: &'a Movie,
    pub(crate) retry_count: u32,
    pub(crate) last_error: Option<&'a str>,
    pub(crate) retry_after: Option<f64>,
    pub(crate) failed_at: Option<f64>,
    pub(crate) completed_at: Option<f64>,
}

impl<'a> EntryFields<'a> {
    /// A fresh entry of `movie`: never failed, not completed.
    pub(crate) fn fresh(movie: &'a Movie) -> Self {
        EntryFields {
            movie,
            retry_count: 0,
            last_error: None,
            retry_after: None,
            failed_at: None,
            completed_at: None,
        }
    }
}

impl QueueEntry {
    /// This entry's fields by reference.
    pub(crate) fn fields(&self) -> EntryFields<'_> {
        EntryFields {
            movie: &self.movie,
            retry_count: self.retry_count,
            last_error: self.last_error.as_deref(),
            retry_after: self.retry_after,
            failed_at: self.failed_at,
            completed_at: self.completed_at,
        }
    }
}

impl Serialize for EntryFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        self.movie.serialize_fields(&mut map)?;
        if self.retry_count > 0 || self.failed_at.is_some() {
            map.serialize_entry("retry_count", &self.retry_count)?;
        }
        if let Some(last_error) = self.last_error {
            map.serialize_entry("last_error", last_error)?;
        }
        for (key, time) in [
            ("retry_after", self.retry_after),
            ("failed_at", self.failed_at),
            ("completed_at", self.completed_at),
        ] {
            if let Some(time) = time.filter(|time| time.is_finite()) {
                map.serialize_entry(key, &time)?;
            }
        }
        map.end()
    }
}

impl Serialize for QueueEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.fields().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for QueueEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        QueueEntry::from_raw(RawFields::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

/// Every state change of the queue (schema version [`EVENT_VERSION`]).
///
/// The projection (`QueueState::apply`) gives each its meaning; the
/// manager only journals events that change something.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    },
}

impl Event {
    /// The ids this event concerns, for `history(id)`.
    pub fn ids(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Event::Added { movie } | Event::Failed { movie, .. } | Event::Completed { movie } => {
                Box::new(std::iter::once(movie.id()))
            }
            Event::Taken { id } | Event::MovedToPending { id } | Event::Reset { id } => {
                Box::new(std::iter::once(id.as_str()))
            }
            Event::CleanedUp { ids, .. } | Event::Requeued { ids } => Box::new(ids.iter().map(String::as_str)),
            Event::Imported {
                pending,
                failed,
                completed,
            } => Box::new(pending.iter().chain(failed).chain(completed).map(QueueEntry::id)),
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
        }
    }
}

/// An event as the journal holds it: its sequence number, its time and
/// what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Its place in the journal.
    pub seq: Seq,
    /// When it happened, Unix seconds.
    pub ts: f64,
    /// What happened.
    pub event: Event,
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

/// Encodes an event's journal payload: `{"v":1,"ts":…,"event":{…}}`.
///
/// # Errors
/// [`Error::InvalidArgument`] when `ts` is not finite.
pub fn encode_payload(ts: f64, event: &Event) -> Result<Vec<u8>> {
    if !ts.is_finite() {
        return Err(Error::InvalidArgument(format!("event time {ts} is not finite")));
    }
    serde_json::to_vec(&PayloadOut {
        v: EVENT_VERSION,
        ts,
        event,
    })
    .map_err(|error| Error::InvalidArgument(format!("event cannot be encoded: {error}")))
}

/// Why a payload could not be decoded.
#[derive(Debug)]
pub enum PayloadError {
    /// The payload is not an event of any known shape.
    Malformed(String),
    /// The payload's `"v"` is not [`EVENT_VERSION`].
    Version(u32),
}

/// Decodes an event's journal payload (the inverse of [`encode_payload`]).
///
/// # Errors
/// [`PayloadError`] saying what is wrong; the caller adds file and offset.
pub fn decode_payload(bytes: &[u8]) -> std::result::Result<(f64, Event), PayloadError> {
    let payload: PayloadIn =
        serde_json::from_slice(bytes).map_err(|error| PayloadError::Malformed(error.to_string()))?;
    if payload.v != EVENT_VERSION {
        return Err(PayloadError::Version(payload.v));
    }
    if !payload.ts.is_finite() {
        return Err(PayloadError::Malformed(format!(
            "event time {} is not finite",
            payload.ts
        )));
    }
    Ok((payload.ts, payload.event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

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
            },
        ]
    }

    #[test]
    fn every_event_round_trips_through_its_payload() {
        for event in every_event() {
            let bytes = encode_payload(1_760_806_482.123_456_7, &event).expect("encodes");
            let (ts, back) = decode_payload(&bytes).expect("decodes");
            assert_eq!(ts.to_bits(), 1_760_806_482.123_456_7_f64.to_bits());
            assert_eq!(back, event);
        }
    }

    #[test]
    fn unknown_versions_and_kinds_are_refused() {
        let wrong_version = br#"{"v":2,"ts":1.0,"event":{"taken":{"id":"1"}}}"#;
        assert!(matches!(decode_payload(wrong_version), Err(PayloadError::Version(2))));
        let unknown_kind = br#"{"v":1,"ts":1.0,"event":{"exploded":{"id":"1"}}}"#;
        assert!(matches!(decode_payload(unknown_kind), Err(PayloadError::Malformed(_))));
        assert!(encode_payload(f64::NAN, &Event::Taken { id: "1".into() }).is_err());
    }

    #[test]
    fn entries_parse_integer_and_float_timestamps() {
        let entry = QueueEntry::from_value(json!({"id": "1", "title": "x", "year": "1", "retry_count": 2,
            "last_error": "e", "retry_after": 1760813282, "failed_at": 1760806482.5}))
        .expect("valid");
        assert_eq!(entry.retry_after, Some(1_760_813_282.0));
        assert_eq!(entry.failed_at, Some(1_760_806_482.5));
        assert_eq!(entry.retry_count, 2);
        assert_eq!(
            entry.to_value(),
            json!({"id": "1", "title": "x", "year": "1", "retry_count": 2, "last_error": "e",
                   "retry_after": 1760813282.0, "failed_at": 1760806482.5})
        );
    }

    /// A JSON value for one field of an entry object: each type, so the
    /// validations of every field are exercised.
    fn field_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            1 => Just(Value::Null),
            1 => any::<bool>().prop_map(Value::from),
            1 => (0..3_u64).prop_map(Value::from),
            1 => Just(json!(-1)),
            1 => Just(json!(1.5)),
            1 => Just(json!(4_294_967_296_u64)),
            3 => "[a-c\"\\\\]{0,3}".prop_map(Value::from),
            1 => Just(json!([1, "x"])),
            1 => Just(json!({"k": null})),
        ]
    }

    /// An entry object's fields: a valid movie's, then known names and
    /// strangers in any order (replacing earlier ones or not).
    fn entry_object() -> impl Strategy<Value = Vec<(String, Value)>> {
        let key = prop_oneof![
            Just("id"),
            Just("title"),
            Just("year"),
            Just("slug"),
            Just("imdb_id"),
            Just("retry_count"),
            Just("last_error"),
            Just("retry_after"),
            Just("failed_at"),
            Just("completed_at"),
            Just("extra"),
            Just("other"),
        ];
        let valid =
            [("id", json!("i")), ("title", json!("t")), ("year", json!(1))].map(|(key, value)| (key.to_owned(), value));
        prop::collection::vec((key.prop_map(str::to_owned), field_value()), 0..10).prop_map(move |more| {
            let mut fields = valid.to_vec();
            fields.extend(more);
            fields
        })
    }

    /// Writes the fields as a JSON object text (duplicates and all).
    fn object_text(fields: &[(String, Value)]) -> String {
        let members: Vec<String> = fields
            .iter()
            .map(|(key, value)| format!("{}:{value}", Value::from(key.as_str())))
            .collect();
        format!("{{{}}}", members.join(","))
    }

    proptest! {
        /// Deserializing an entry or a movie in one pass accepts exactly
        /// what validating its `Value` accepts, with the same result.
        #[test]
        fn one_pass_parsing_agrees_with_value_validation(fields in entry_object()) {
            let text = object_text(&fields);
            let value: Value = serde_json::from_str(&text).expect("object text");
            let by_value = QueueEntry::from_value(value.clone()).map_err(|error| error.to_string());
            let one_pass = serde_json::from_str::<QueueEntry>(&text).map_err(|error| error.to_string());
            match (&by_value, &one_pass) {
                (Ok(expected), Ok(parsed)) => prop_assert_eq!(expected, parsed),
                (Err(expected), Err(parsed)) => {
                    prop_assert!(parsed.starts_with(expected.as_str()), "{} / {}", parsed, expected);
                }
                _ => prop_assert!(false, "{}: by value {:?}, one pass {:?}", text, by_value, one_pass),
            }
            let movie_by_value = Movie::from_value(value).map_err(|error| error.to_string());
            let movie_one_pass = serde_json::from_str::<Movie>(&text).map_err(|error| error.to_string());
            prop_assert_eq!(movie_by_value.is_ok(), movie_one_pass.is_ok(), "{}", text);
            if let (Ok(expected), Ok(parsed)) = (movie_by_value, movie_one_pass) {
                prop_assert_eq!(expected, parsed);
            }
        }
    }
}
