//! The one-pass reader of a movie or queue-entry object: the declared and
//! queue-managed fields by name, every other one kept in order.

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// The fields of one movie or queue-entry object as they came, before
/// validation: the declared and queue-managed ones by name, every other
/// one in its original order. Deserializing it reads the object in one pass
/// without building a map of all its fields (the hot path of replay,
/// start-up and every query).
#[derive(Debug, Default)]
pub(crate) struct RawFields {
    pub(super) id: Option<Value>,
    pub(super) title: Option<Value>,
    pub(super) year: Option<Value>,
    pub(super) slug: Option<Value>,
    pub(super) imdb_id: Option<Value>,
    /// `retry_count`, as it came.
    pub(crate) retry_count: Option<Value>,
    /// `last_error`, as it came.
    pub(crate) last_error: Option<Value>,
    /// `retry_after`, as it came.
    pub(crate) retry_after: Option<Value>,
    /// `failed_at`, as it came.
    pub(crate) failed_at: Option<Value>,
    /// `completed_at`, as it came.
    pub(crate) completed_at: Option<Value>,
    /// `removed_at`, as it came.
    pub(crate) removed_at: Option<Value>,
    pub(super) extra: Map<String, Value>,
}

/// A field name of a movie or queue-entry object.
enum FieldKey {
    Id,
    Title,
    Year,
    Slug,
    ImdbId,
    RetryCount,
    LastError,
    RetryAfter,
    FailedAt,
    CompletedAt,
    RemovedAt,
    Other(String),
}

impl FieldKey {
    /// The declared or queue-managed field `key` names, if any.
    fn known(key: &str) -> Option<Self> {
        Some(match key {
            "id" => FieldKey::Id,
            "title" => FieldKey::Title,
            "year" => FieldKey::Year,
            "slug" => FieldKey::Slug,
            "imdb_id" => FieldKey::ImdbId,
            "retry_count" => FieldKey::RetryCount,
            "last_error" => FieldKey::LastError,
            "retry_after" => FieldKey::RetryAfter,
            "failed_at" => FieldKey::FailedAt,
            "completed_at" => FieldKey::CompletedAt,
            "removed_at" => FieldKey::RemovedAt,
            _ => return None,
        })
    }
}

impl<'de> Deserialize<'de> for FieldKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct KeyVisitor;

        impl Visitor<'_> for KeyVisitor {
            type Value = FieldKey;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a field name")
            }

            fn visit_str<E: serde::de::Error>(self, key: &str) -> std::result::Result<FieldKey, E> {
                Ok(FieldKey::known(key).unwrap_or_else(|| FieldKey::Other(key.to_owned())))
            }

            fn visit_string<E: serde::de::Error>(self, key: String) -> std::result::Result<FieldKey, E> {
                Ok(FieldKey::known(&key).unwrap_or(FieldKey::Other(key)))
            }
        }

        deserializer.deserialize_str(KeyVisitor)
    }
}

impl RawFields {
    /// Sorts an object's fields (later duplicates replace earlier ones, as
    /// in a JSON map).
    pub(crate) fn from_map(map: Map<String, Value>) -> Self {
        let mut raw = RawFields::default();
        for (key, value) in map {
            let key = FieldKey::known(&key).unwrap_or(FieldKey::Other(key));
            raw.set(key, value);
        }
        raw
    }

    fn set(&mut self, key: FieldKey, value: Value) {
        // A declared field given as `null` is kept as it came, among the
        // others and in its place, so that it reads back where it was.
        let declared = match key {
            FieldKey::Title => Some("title"),
            FieldKey::Year => Some("year"),
            FieldKey::Slug => Some("slug"),
            FieldKey::ImdbId => Some("imdb_id"),
            _ => None,
        };
        if let Some(name) = declared {
            if value.is_null() {
                // (A later duplicate replaces an earlier value, as in a map.)
                match key {
                    FieldKey::Title => self.title = None,
                    FieldKey::Year => self.year = None,
                    FieldKey::Slug => self.slug = None,
                    _ => self.imdb_id = None,
                }
                self.extra.insert(name.to_owned(), value);
                return;
            }
            // (Only a duplicate key can have put a `null` there: the
            // common case, declared fields before any other, hashes nothing.)
            if !self.extra.is_empty() {
                self.extra.shift_remove(name);
            }
        }
        let slot = match key {
            FieldKey::Id => &mut self.id,
            FieldKey::Title => &mut self.title,
            FieldKey::Year => &mut self.year,
            FieldKey::Slug => &mut self.slug,
            FieldKey::ImdbId => &mut self.imdb_id,
            FieldKey::RetryCount => &mut self.retry_count,
            FieldKey::LastError => &mut self.last_error,
            FieldKey::RetryAfter => &mut self.retry_after,
            FieldKey::FailedAt => &mut self.failed_at,
            FieldKey::CompletedAt => &mut self.completed_at,
            FieldKey::RemovedAt => &mut self.removed_at,
            FieldKey::Other(key) => {
                self.extra.insert(key, value);
                return;
            }
        };
        *slot = Some(value);
    }
}

impl<'de> Deserialize<'de> for RawFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = RawFields;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> std::result::Result<RawFields, A::Error> {
                let mut raw = RawFields::default();
                while let Some(key) = access.next_key::<FieldKey>()? {
                    let value = access.next_value::<Value>()?;
                    raw.set(key, value);
                }
                Ok(raw)
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}
