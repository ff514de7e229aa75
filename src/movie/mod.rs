//! `Movie`: what the application queues, validated at the boundary, with
//! every field it did not declare kept and written back unchanged.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
pub use crate::json::MOVIE_NESTING_MAX;
use crate::json::value_depth;

mod raw;

pub(crate) use self::raw::RawFields;

/// Keys the queue itself manages on an entry (see `docs/FORMAT.md`). They
/// are never part of a movie's own fields: `Movie::from_value` drops them and
/// the queue writes its own values in their place.
pub const QUEUE_FIELDS: [&str; 6] = [
    "retry_count",
    "last_error",
    "retry_after",
    "failed_at",
    "completed_at",
    "removed_at",
];

/// A field the queue stamps on a movie as the application does
/// (`status`, `queued_at`, ...; see `docs/FORMAT.md`): set to a value, or
/// taken away.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum StampValue {
    /// An integer (Unix seconds, a count).
    Int(i64),
    /// A fixed word (`"pending"`, ...).
    Text(&'static str),
    /// The field is removed.
    Absent,
}

/// One stamped field: its key and what it becomes.
pub(crate) type Stamp = (&'static str, StampValue);

/// A movie's year, kept as the application gave it (its own data uses both).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Year {
    /// `"1999"`
    Text(String),
    /// `1999`
    Number(i64),
}

impl From<&str> for Year {
    fn from(year: &str) -> Self {
        Year::Text(year.to_owned())
    }
}

impl From<String> for Year {
    fn from(year: String) -> Self {
        Year::Text(year)
    }
}

impl From<i64> for Year {
    fn from(year: i64) -> Self {
        Year::Number(year)
    }
}

impl From<i32> for Year {
    fn from(year: i32) -> Self {
        Year::Number(i64::from(year))
    }
}

impl std::fmt::Display for Year {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Year::Text(text) => formatter.write_str(text),
            Year::Number(number) => write!(formatter, "{number}"),
        }
    }
}

impl Year {
    fn to_value(&self) -> Value {
        match self {
            Year::Text(text) => Value::String(text.clone()),
            Year::Number(number) => Value::from(*number),
        }
    }
}

/// One movie of the watchlist.
///
/// `id` is a non-empty string and identifies the movie everywhere;
/// `title` is a string; `year` a string or an integer. `title`, `year`,
/// `slug` and `imdb_id` may be missing (or `null`, which is kept as it was
/// given), and any other JSON field is kept in order and written back
/// unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct Movie {
    id: String,
    title: Option<String>,
    year: Option<Year>,
    slug: Option<String>,
    imdb_id: Option<String>,
    extra: Map<String, Value>,
}

impl Movie {
    /// A movie with the three fields every entry has.
    ///
    /// An empty `id` is accepted here and refused by every queue operation
    /// with [`Error::InvalidMovie`]; use [`Movie::from_value`] to validate
    /// untrusted input up front.
    pub fn new(id: impl Into<String>, title: impl Into<String>, year: impl Into<Year>) -> Self {
        Movie {
            id: id.into(),
            title: Some(title.into()),
            year: Some(year.into()),
            slug: None,
            imdb_id: None,
            extra: Map::new(),
        }
    }

    /// Sets the slug (`"the-matrix"`).
    #[must_use]
    pub fn with_slug(mut self, slug: impl Into<String>) -> Self {
        self.slug = Some(slug.into());
        self
    }

    /// Sets the `IMDb` id (`"tt0133093"`).
    #[must_use]
    pub fn with_imdb_id(mut self, imdb_id: impl Into<String>) -> Self {
        self.imdb_id = Some(imdb_id.into());
        self
    }

    /// Adds (or replaces) an extra JSON field. The five queue-managed keys
    /// (`retry_count`, `last_error`, `retry_after`, `failed_at`,
    /// `completed_at`) and the declared fields are refused.
    ///
    /// # Errors
    /// [`Error::InvalidMovie`] when `key` is a declared or queue-managed field.
    pub fn with_extra(mut self, key: impl Into<String>, value: Value) -> Result<Self> {
        let key = key.into();
        if is_declared(&key) || QUEUE_FIELDS.contains(&key.as_str()) {
            return Err(Error::InvalidMovie(format!(
                "{key:?} is not an extra field (it is declared or managed by the queue)"
            )));
        }
        self.extra.insert(key, value);
        Ok(self)
    }

    /// Builds a movie from a JSON object, validating `id`, `title` and `year`
    /// where given. Queue-managed keys (`retry_count`, `completed_at`, ...)
    /// are dropped: the queue keeps those itself.
    ///
    /// # Errors
    /// [`Error::InvalidMovie`] naming the field that is missing or mistyped.
    pub fn from_value(value: Value) -> Result<Self> {
        let Value::Object(map) = value else {
            return Err(Error::InvalidMovie(format!(
                "a movie is a JSON object, not {}",
                kind_of(&value)
            )));
        };
        Self::from_raw(RawFields::from_map(map))
    }

    /// Validates the fields of one JSON object (the queue-managed ones
    /// already taken out, or ignored here).
    pub(crate) fn from_raw(mut raw: RawFields) -> Result<Self> {
        let id = match raw.id {
            Some(Value::String(id)) if !id.is_empty() => id,
            Some(Value::String(_)) => return Err(Error::InvalidMovie("\"id\" is empty".into())),
            Some(other) => {
                return Err(Error::InvalidMovie(format!(
                    "\"id\" must be a string, not {}",
                    kind_of(&other)
                )));
            }
            None => return Err(Error::InvalidMovie("the movie has no \"id\"".into())),
        };
        // A declared field given as `null` is kept as it came, among the others.
        for (key, slot) in [
            ("title", &mut raw.title),
            ("year", &mut raw.year),
            ("slug", &mut raw.slug),
            ("imdb_id", &mut raw.imdb_id),
        ] {
            if let Some(Value::Null) = slot {
                *slot = None;
                raw.extra.insert(key.to_owned(), Value::Null);
            }
        }
        let year = match raw.year {
            None => None,
            Some(Value::String(year)) => Some(Year::Text(year)),
            Some(Value::Number(number)) if number.as_i64().is_some() => {
                Some(Year::Number(number.as_i64().unwrap_or_default()))
            }
            Some(Value::Number(number)) => {
                let why = if number.is_u64() || number.as_f64().is_some_and(|float| float.fract() == 0.0) {
                    "an integer too large (a year must fit in 64 bits)"
                } else {
                    "a number with a fraction"
                };
                return Err(Error::InvalidMovie(format!(
                    "movie {id:?}: \"year\" must be a string or an integer, not {why}"
                )));
            }
            Some(other) => {
                return Err(Error::InvalidMovie(format!(
                    "movie {id:?}: \"year\" must be a string or an integer, not {}",
                    kind_of(&other)
                )));
            }
        };
        Ok(Movie {
            title: optional_string(raw.title, "title", &id)?,
            slug: optional_string(raw.slug, "slug", &id)?,
            imdb_id: optional_string(raw.imdb_id, "imdb_id", &id)?,
            id,
            year,
            extra: raw.extra,
        })
    }

    /// Checks what `Movie::new` and [`Movie::with_extra`] cannot: a
    /// non-empty id, and JSON that nests at most [`MOVIE_NESTING_MAX`]
    /// levels (the movie object is the first), so that the store reads
    /// back whatever it accepted. Every queue operation checks it.
    ///
    /// # Errors
    /// [`Error::InvalidMovie`] when the id is empty or a field nests too
    /// deep (the message names the field and the limit).
    pub fn validate(&self) -> Result<()> {
        if self.id.is_empty() {
            return Err(Error::InvalidMovie("\"id\" is empty".into()));
        }
        self.check_nesting()
    }

    /// How deep the movie's JSON nests, the movie object included.
    #[must_use]
    pub fn nesting(&self) -> usize {
        1 + self.extra.values().map(value_depth).max().unwrap_or(0)
    }

    /// [`Error::InvalidMovie`] naming the first field that takes the movie
    /// past [`MOVIE_NESTING_MAX`] levels.
    fn check_nesting(&self) -> Result<()> {
        for (key, value) in &self.extra {
            let levels = 1 + value_depth(value);
            if levels > MOVIE_NESTING_MAX {
                return Err(Error::InvalidMovie(format!(
                    "movie {:?}: field {key:?} nests {levels} levels deep (the movie object is the first), \
                     over the limit of {MOVIE_NESTING_MAX}",
                    self.id
                )));
            }
        }
        Ok(())
    }

    /// The movie as a JSON object in the documented field order: `id`,
    /// `title`, `year`, `slug`, `imdb_id`, then the extra fields.
    #[must_use]
    pub fn to_value(&self) -> Value {
        Value::Object(self.to_map())
    }

    /// As [`Movie::to_value`], as a map the queue can add its own keys to.
    pub(crate) fn to_map(&self) -> Map<String, Value> {
        let mut map = Map::with_capacity(5 + self.extra.len());
        map.insert("id".into(), Value::String(self.id.clone()));
        if let Some(title) = &self.title {
            map.insert("title".into(), Value::String(title.clone()));
        }
        if let Some(year) = &self.year {
            map.insert("year".into(), year.to_value());
        }
        if let Some(slug) = &self.slug {
            map.insert("slug".into(), Value::String(slug.clone()));
        }
        if let Some(imdb_id) = &self.imdb_id {
            map.insert("imdb_id".into(), Value::String(imdb_id.clone()));
        }
        for (key, value) in &self.extra {
            map.insert(key.clone(), value.clone());
        }
        map
    }

    /// The movie's identity.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its title, if it has one.
    #[must_use]
    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }

    /// Its year as given, if it has one.
    #[must_use]
    pub fn year(&self) -> Option<&Year> {
        self.year.as_ref()
    }

    /// Its slug, if any.
    #[must_use]
    pub fn slug(&self) -> Option<&str> {
        self.slug.as_deref()
    }

    /// Its `IMDb` id, if any.
    #[must_use]
    pub fn imdb_id(&self) -> Option<&str> {
        self.imdb_id.as_deref()
    }

    /// The fields beyond the declared ones, in their original order.
    #[must_use]
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }

    /// The extra fields, to change (the reference model stamps them).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn extra_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.extra
    }
}

fn is_declared(key: &str) -> bool {
    matches!(key, "id" | "title" | "year" | "slug" | "imdb_id")
}

fn optional_string(value: Option<Value>, key: &str, id: &str) -> Result<Option<String>> {
    match value {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(Error::InvalidMovie(format!(
            "movie {id:?}: {key:?} must be a string, not {}",
            kind_of(&other)
        ))),
    }
}

/// A short name of a JSON value's type, for error messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Movie {
    /// Writes the movie's fields into a map being serialized, in the
    /// documented order (so an entry can add its own fields after them),
    /// with `stamps` applied: a stamped key the movie has takes the stamp's
    /// value in its place, the others follow the movie's fields.
    pub(crate) fn serialize_fields<M: serde::ser::SerializeMap>(
        &self,
        map: &mut M,
        stamps: &[Stamp],
    ) -> std::result::Result<(), M::Error> {
        map.serialize_entry("id", &self.id)?;
        if let Some(title) = &self.title {
            map.serialize_entry("title", title)?;
        }
        match &self.year {
            Some(Year::Text(text)) => map.serialize_entry("year", text)?,
            Some(Year::Number(number)) => map.serialize_entry("year", number)?,
            None => {}
        }
        if let Some(slug) = &self.slug {
            map.serialize_entry("slug", slug)?;
        }
        if let Some(imdb_id) = &self.imdb_id {
            map.serialize_entry("imdb_id", imdb_id)?;
        }
        for (key, value) in &self.extra {
            match stamps.iter().find(|(stamped, _)| stamped == key) {
                Some((_, stamp)) => serialize_stamp(map, key, *stamp)?,
                None => map.serialize_entry(key, value)?,
            }
        }
        for &(key, stamp) in stamps {
            if !self.extra.contains_key(key) {
                serialize_stamp(map, key, stamp)?;
            }
        }
        Ok(())
    }
}

fn serialize_stamp<M: serde::ser::SerializeMap>(
    map: &mut M,
    key: &str,
    stamp: StampValue,
) -> std::result::Result<(), M::Error> {
    match stamp {
        StampValue::Int(number) => map.serialize_entry(key, &number),
        StampValue::Text(text) => map.serialize_entry(key, text),
        StampValue::Absent => Ok(()),
    }
}

impl Serialize for Movie {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        self.serialize_fields(&mut map, &[])?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Movie {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        Movie::from_raw(RawFields::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_year_that_is_no_integer_says_what_it_is() {
        let message = |text: &str| {
            let value: Value = serde_json::from_str(text).expect("json");
            Movie::from_value(value).expect_err("not a year").to_string()
        };
        assert!(message(r#"{"id": "d", "year": 12345678901234567890123}"#).contains("an integer too large"));
        assert!(message(r#"{"id": "d", "year": 1999.5}"#).contains("a number with a fraction"));
        assert!(message(r#"{"id": "d", "year": [1]}"#).contains("not an array"));
    }

    #[test]
    fn round_trip_keeps_extra_fields_in_order() {
        let input = json!({"id": "7", "title": "Heat", "year": 1995, "status": "queued",
                           "nested": {"a": [1, 2.5]}, "queued_at": 1760806482.5});
        let movie = Movie::from_value(input.clone()).expect("valid movie");
        assert_eq!(movie.year(), Some(&Year::Number(1995)));
        let text = serde_json::to_string(&movie).expect("serializes");
        assert_eq!(
            text,
            r#"{"id":"7","title":"Heat","year":1995,"status":"queued","nested":{"a":[1,2.5]},"queued_at":1760806482.5}"#
        );
        let back: Movie = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, movie);
    }

    #[test]
    fn refuses_bad_ids_with_a_clear_message() {
        for (input, needle) in [
            (json!({"title": "x", "year": "1"}), "has no \"id\""),
            (json!({"id": "", "title": "x", "year": "1"}), "empty"),
            (
                json!({"id": 5, "title": "x", "year": "1"}),
                "must be a string, not a number",
            ),
            (json!(["id"]), "JSON object"),
            (json!({"id": "1", "title": "x", "year": 1.5}), "string or an integer"),
        ] {
            let message = Movie::from_value(input).expect_err("refused").to_string();
            assert!(message.contains(needle), "{message} lacks {needle}");
        }
        assert!(Movie::new("", "t", "1").validate().is_err());
    }

    #[test]
    fn any_object_with_an_id_comes_back_as_it_went_in() {
        let input = json!({"id": "1", "slug": null, "year": null, "rating": 7.5});
        let movie = Movie::from_value(input.clone()).expect("an id is enough");
        assert_eq!((movie.title(), movie.year(), movie.slug()), (None, None, None));
        assert_eq!(movie.to_value(), input);
        let text = serde_json::to_string(&movie).expect("serializes");
        assert_eq!(serde_json::from_str::<Movie>(&text).expect("parses"), movie);
    }

    #[test]
    fn queue_fields_are_not_movie_fields() {
        let movie = Movie::from_value(json!({"id": "1", "title": "x", "year": "1", "retry_count": 3,
                                             "completed_at": 1.0, "kept": true}))
        .expect("valid");
        assert_eq!(movie.extra().len(), 1);
        assert!(Movie::new("1", "x", "1").with_extra("retry_count", json!(1)).is_err());
        assert!(Movie::new("1", "x", "1").with_extra("id", json!(1)).is_err());
    }
}
