//! `QueueEntry`: one movie as a queue holds it, exactly as the documented
//! JSON files show an entry.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::movie::{Movie, RawFields, Stamp, kind_of};

/// One movie as a queue holds it: the movie's own fields plus what the
/// queue keeps about it. Serialized flat, exactly as the documented JSON
/// files show an entry (`retry_count`, `last_error`, `retry_after`,
/// `failed_at`, `completed_at`, `removed_at` beside the movie's fields, each
/// written only when set). A time of whole seconds is written as a JSON
/// integer (as the application stamps them), any other as a float.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
    /// When it left the watchlist (moved to removed), Unix seconds.
    pub removed_at: Option<f64>,
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
            removed_at: None,
        }
    }

    /// The movie's id.
    #[must_use]
    pub fn id(&self) -> &str {
        self.movie.id()
    }

    /// The entry as one flat JSON object (the documented files' shape):
    /// the movie's fields, then `retry_count` (once it has failed),
    /// `last_error`, `retry_after`, `failed_at`, `completed_at`, `removed_at`
    /// where set.
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
        let removed_at = time_field(raw.removed_at.take(), "removed_at")?;
        Ok(QueueEntry {
            movie: Movie::from_raw(raw)?,
            retry_count,
            last_error,
            retry_after,
            failed_at,
            completed_at,
            removed_at,
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
    pub(crate) removed_at: Option<f64>,
    /// Fields stamped on the movie (`status`, `queued_at`, ...).
    pub(crate) stamps: &'a [Stamp],
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
            removed_at: None,
            stamps: &[],
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
            removed_at: self.removed_at,
            stamps: &[],
        }
    }
}

impl Serialize for EntryFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        self.movie.serialize_fields(&mut map, self.stamps)?;
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
            ("removed_at", self.removed_at),
        ] {
            if let Some(time) = time.filter(|time| time.is_finite()) {
                match whole_seconds(time) {
                    Some(seconds) => map.serialize_entry(key, &seconds)?,
                    None => map.serialize_entry(key, &time)?,
                }
            }
        }
        map.end()
    }
}

/// The largest magnitude below which every whole `f64` is exact (2^53).
const EXACT_INTEGER_MAX: f64 = 9_007_199_254_740_992.0;

/// A time of whole seconds as the integer it is (written as a JSON
/// integer, as the application stamps its times); `None` for any other.
#[expect(clippy::cast_possible_truncation, reason = "whole and within 2^53, so exact")]
pub(crate) fn whole_seconds(time: f64) -> Option<i64> {
    (time.fract() == 0.0 && time.abs() < EXACT_INTEGER_MAX).then_some(time as i64)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn entries_parse_integer_and_float_timestamps() {
        let entry = QueueEntry::from_value(json!({"id": "1", "title": "x", "year": "1", "retry_count": 2,
            "last_error": "e", "retry_after": 1760813282, "failed_at": 1760806482.5}))
        .expect("valid");
        assert_eq!(entry.retry_after, Some(1_760_813_282.0));
        assert_eq!(entry.failed_at, Some(1_760_806_482.5));
        assert_eq!(entry.retry_count, 2);
        // Whole seconds stay integers, as the application writes them.
        assert_eq!(
            serde_json::to_string(&entry).expect("serializes"),
            r#"{"id":"1","title":"x","year":"1","retry_count":2,"last_error":"e","retry_after":1760813282,"failed_at":1760806482.5}"#
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
            Just("removed_at"),
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
