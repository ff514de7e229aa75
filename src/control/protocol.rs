//! The control protocol, version 1: JSON lines over the control socket
//! (`docs/FORMAT.md`, "The control socket"). A request is one line,
//! `{"v":1,"id":N,"op":"NAME",...arguments}`; its answer is one line,
//! `{"v":1,"id":N,"ok":VALUE}` or `{"v":1,"id":N,"error":{"kind":K,"message":M,...}}`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::projection::Place;

/// The protocol's version: a request of another version gets the error
/// `unsupported_version`, naming this one.
pub const PROTOCOL_VERSION: u64 = 1;

/// The longest request line the server reads (bytes, newline included):
/// a longer one gets `line_too_long` and the connection is closed. The
/// journal's record limit (64 MiB) and room for the request around it:
/// a movie the store takes can always be sent.
pub const LINE_MAX: usize = 65 << 20;

/// The most entries one `list` answer holds: a longer listing is asked
/// for in pages (`offset`, `limit`), so no answer is built whole.
pub const LIST_MAX: usize = 10_000;

/// An answer: the `ok` value as JSON text, or the error.
pub type Answer = Result<String, WireError>;

/// What a request asks of the holder: its `op` and arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Who answers: the protocol version, process id, store, last record,
    /// the retry policy's `max_retries`.
    Hello,
    /// The counts (`get_statistics`).
    Stats,
    /// One movie: `{"place":P,"entry":E}`, or `null`.
    Get {
        /// The movie's id.
        movie: String,
    },
    /// A place's entries in order, from `offset`, at most `limit` (and at
    /// most [`LIST_MAX`]).
    List {
        /// `pending`, `in_flight`, `failed`, `completed` or `removed`.
        place: String,
        /// Entries skipped first.
        #[serde(default)]
        offset: usize,
        /// Start after the entry of this id (with `offset` 0): the next
        /// page of a listing, wherever the entries before it went since.
        #[serde(default)]
        after: Option<String>,
        /// At most this many (absent: all).
        #[serde(default)]
        limit: Option<usize>,
    },
    /// `get_movies_ready_for_retry(max_retries)`.
    RetryCandidates {
        /// The retry limit.
        max_retries: u32,
    },
    /// `get_movies_ready_for_deletion(grace)`.
    RemovedReady {
        /// The grace period in seconds.
        grace_seconds: f64,
    },
    /// `load()`: the whole state in memory.
    Load,
    /// `check_addable(movie)`.
    CheckAddable {
        /// The movie, as the documented files hold it.
        movie: Value,
    },
    /// `add_many_to_pending(movies)`: how many were added.
    Add {
        /// The movies.
        movies: Vec<Value>,
    },
    /// `get_next_pending()`: the movie taken, or `null`.
    Next,
    /// `add_to_completed(movie)`.
    Complete {
        /// The movie.
        movie: Value,
    },
    /// `add_to_failed(movie, error, retry_after)`.
    Fail {
        /// The movie.
        movie: Value,
        /// The error message.
        error: String,
        /// When it may be retried (seconds since the epoch).
        #[serde(default)]
        retry_after: Option<f64>,
    },
    /// `fail_with_backoff(movie, error)`: the retry time, or `null`.
    FailWithBackoff {
        /// The movie.
        movie: Value,
        /// The error message.
        error: String,
    },
    /// `move_failed_to_pending(id)`.
    MoveFailedToPending {
        /// The movie's id.
        movie: String,
    },
    /// `reset_failed_movie(id)`.
    Reset {
        /// The movie's id.
        movie: String,
    },
    /// `requeue_in_flight()`: how many moved.
    RequeueInFlight,
    /// `cleanup_old_completed(days)`: how many were removed.
    Cleanup {
        /// Completed more than this many days ago.
        days: u32,
    },
    /// `mark_movies_as_removed(ids)`: how many moved.
    MarkRemoved {
        /// The watchlist's ids.
        ids: Vec<String>,
    },
    /// `restore_removed_movie(id)`.
    Restore {
        /// The movie's id.
        movie: String,
    },
    /// `remove_from_removed_queue(id)`.
    Forget {
        /// The movie's id.
        movie: String,
    },
}

impl Op {
    /// Does it change the queue (its answer then waits for durability)?
    #[must_use]
    pub fn mutates(&self) -> bool {
        !matches!(
            self,
            Op::Hello
                | Op::Stats
                | Op::Get { .. }
                | Op::List { .. }
                | Op::RetryCandidates { .. }
                | Op::RemovedReady { .. }
                | Op::Load
                | Op::CheckAddable { .. }
        )
    }

    /// The operation's name on the wire.
    #[must_use]
    pub fn name(&self) -> String {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map.get("op").and_then(Value::as_str).unwrap_or("?").to_owned(),
            _ => "?".to_owned(),
        }
    }
}

/// A typed error on the wire: `kind` for programs, `message` for people,
/// and the fields a kind carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    /// `bad_request`, `unsupported_version`, `line_too_long`, `timeout`,
    /// `busy`, `forbidden`, `closed`, `poisoned`, `not_found`, `invalid_movie`,
    /// `invalid_argument`, `event_too_large`, `internal` or `failed`.
    pub kind: String,
    /// The error in words.
    pub message: String,
    /// `not_found`: the id; `invalid_movie`/`invalid_argument`: what is wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `not_found`: where the movie was looked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wanted: Option<String>,
    /// `event_too_large`: the event's size and the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizes: Option<(u64, u64)>,
}

impl WireError {
    /// An error of `kind` with `message` and no fields.
    #[must_use]
    pub fn new(kind: &str, message: impl Into<String>) -> WireError {
        WireError {
            kind: kind.to_owned(),
            message: message.into(),
            detail: None,
            wanted: None,
            sizes: None,
        }
    }

    /// The library's error on the wire.
    #[must_use]
    pub fn from_error(error: &Error) -> WireError {
        let mut wire = WireError::new("failed", error.to_string());
        match error {
            Error::NotFound { id, wanted } => {
                wire.kind = "not_found".into();
                wire.detail = Some(id.clone());
                wire.wanted = Some((*wanted).to_owned());
            }
            Error::InvalidMovie(detail) => {
                wire.kind = "invalid_movie".into();
                wire.detail = Some(detail.clone());
            }
            Error::InvalidArgument(detail) => {
                wire.kind = "invalid_argument".into();
                wire.detail = Some(detail.clone());
            }
            Error::EventTooLarge { length, limit } => {
                wire.kind = "event_too_large".into();
                wire.sizes = Some((*length, *limit));
            }
            Error::Closed | Error::ReadOnly { .. } => wire.kind = "closed".into(),
            Error::Poisoned { .. } => wire.kind = "poisoned".into(),
            _ => {}
        }
        wire
    }

    /// The library's error this stands for: the same variant where the
    /// wire carries its fields, else [`Error::Remote`] with its words.
    #[must_use]
    pub fn into_error(self) -> Error {
        match (self.kind.as_str(), self.detail, self.wanted, self.sizes) {
            ("not_found", Some(id), Some(wanted), _) => match known_wanted(&wanted) {
                Some(wanted) => Error::NotFound { id, wanted },
                None => Error::Remote {
                    kind: self.kind,
                    message: self.message,
                },
            },
            ("invalid_movie", Some(detail), _, _) => Error::InvalidMovie(detail),
            ("invalid_argument", Some(detail), _, _) => Error::InvalidArgument(detail),
            ("event_too_large", _, _, Some((length, limit))) => Error::EventTooLarge { length, limit },
            _ => Error::Remote {
                kind: self.kind,
                message: self.message,
            },
        }
    }
}

/// The places an [`Error::NotFound`] names, as the library spells them.
fn known_wanted(wanted: &str) -> Option<&'static str> {
    ["failed", "removed", "in the queue", "pending or in flight", "in flight"]
        .into_iter()
        .find(|known| *known == wanted)
}

/// A place's name on the wire ([`Place::key`]).
#[must_use]
pub fn place_name(place: Place) -> &'static str {
    place.key()
}

/// The place a wire name stands for.
#[must_use]
pub fn parse_place(name: &str) -> Option<Place> {
    Place::ALL.into_iter().find(|place| place_name(*place) == name)
}

/// A request line read: its id (`None` when even that could not be read)
/// and the operation, or the error to answer with.
pub fn parse_request(line: &[u8]) -> (Option<u64>, Result<Op, WireError>) {
    let value: Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(error) => {
            return (
                None,
                Err(WireError::new("bad_request", format!("not a JSON line: {error}"))),
            );
        }
    };
    let Value::Object(mut map) = value else {
        return (None, Err(WireError::new("bad_request", "a request is a JSON object")));
    };
    let id = map.remove("id").and_then(|id| id.as_u64());
    let Some(version) = map.remove("v") else {
        return (
            id,
            Err(WireError::new(
                "bad_request",
                format!("a request carries \"v\":{PROTOCOL_VERSION}"),
            )),
        );
    };
    if version.as_u64() != Some(PROTOCOL_VERSION) {
        return (
            id,
            Err(WireError::new(
                "unsupported_version",
                format!(
                    "this holder speaks version {PROTOCOL_VERSION} of the control protocol (\"v\":{PROTOCOL_VERSION})"
                ),
            )),
        );
    }
    if id.is_none() {
        return (
            None,
            Err(WireError::new(
                "bad_request",
                "a request carries \"id\", a whole number from 0",
            )),
        );
    }
    let op: Result<Op, WireError> = serde_json::from_value(Value::Object(map.clone())).map_err(|error| {
        WireError::new(
            "bad_request",
            format!("not a request of version {PROTOCOL_VERSION}: {error}"),
        )
    });
    // serde lets an operation without arguments take any: checked here.
    let op = op.and_then(|op| match serde_json::to_value(&op) {
        Ok(Value::Object(known)) => match map.keys().find(|key| !known.contains_key(*key)) {
            Some(unknown) => Err(WireError::new(
                "bad_request",
                format!("`{}` takes no argument {unknown:?}", op.name()),
            )),
            None => Ok(op),
        },
        _ => Ok(op),
    });
    (id, op)
}

/// A request as one line (newline included).
#[must_use]
pub fn request_line(id: u64, op: &Op) -> Vec<u8> {
    let mut map = Map::new();
    map.insert("v".into(), PROTOCOL_VERSION.into());
    map.insert("id".into(), id.into());
    if let Ok(Value::Object(fields)) = serde_json::to_value(op) {
        map.extend(fields);
    }
    line_of(&Value::Object(map))
}

/// An answer as one line (newline included): the `ok` text as it is
/// (built by the holder's own serializer, never parsed again here).
#[must_use]
pub fn answer_line(id: Option<u64>, answer: &Answer) -> Vec<u8> {
    let id = id.map_or_else(|| "null".to_owned(), |id| id.to_string());
    let (key, value) = match answer {
        Ok(text) => ("ok", text.clone()),
        Err(error) => (
            "error",
            serde_json::to_string(error).unwrap_or_else(|_| "{\"kind\":\"internal\",\"message\":\"\"}".to_owned()),
        ),
    };
    format!("{{\"v\":{PROTOCOL_VERSION},\"id\":{id},\"{key}\":{value}}}\n").into_bytes()
}

fn line_of(value: &Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    line
}

/// An answer line read back: its id and the result.
///
/// # Errors
/// A message when the line is not an answer of this version.
pub fn parse_answer(line: &[u8]) -> Result<(Option<u64>, Result<Value, WireError>), String> {
    let value: Value = serde_json::from_slice(line).map_err(|error| format!("not a JSON line: {error}"))?;
    let Value::Object(mut map) = value else {
        return Err("an answer is a JSON object".into());
    };
    if map.get("v").and_then(Value::as_u64) != Some(PROTOCOL_VERSION) {
        return Err(format!("not an answer of version {PROTOCOL_VERSION}"));
    }
    let id = map.get("id").and_then(Value::as_u64);
    if let Some(ok) = map.remove("ok") {
        return Ok((id, Ok(ok)));
    }
    let error = map.remove("error").ok_or("an answer carries \"ok\" or \"error\"")?;
    let error: WireError = serde_json::from_value(error).map_err(|error| format!("a malformed error: {error}"))?;
    Ok((id, Err(error)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_back_as_written() {
        let op = Op::Fail {
            movie: serde_json::json!({"id": "603", "title": "The Matrix", "year": 1999}),
            error: "timeout".into(),
            retry_after: Some(12.5),
        };
        let line = request_line(7, &op);
        assert!(line.ends_with(b"\n"));
        assert_eq!(parse_request(&line), (Some(7), Ok(op)));
    }

    #[test]
    fn requests_that_are_not_version_1_are_refused_with_their_kind() {
        let kind = |line: &str| parse_request(line.as_bytes()).1.err().map(|error| error.kind);
        assert_eq!(
            kind(r#"{"v":2,"id":1,"op":"stats"}"#).as_deref(),
            Some("unsupported_version")
        );
        assert_eq!(kind(r#"{"id":1,"op":"stats"}"#).as_deref(), Some("bad_request"));
        assert_eq!(
            kind(r#"{"v":"1","id":1,"op":"stats"}"#).as_deref(),
            Some("unsupported_version")
        );
        assert_eq!(kind(r#"{"v":1,"id":-1,"op":"stats"}"#).as_deref(), Some("bad_request"));
        assert_eq!(kind(r#"{"v":1,"op":"stats"}"#).as_deref(), Some("bad_request"));
        assert_eq!(
            kind(r#"{"v":1,"id":1,"op":"drop_tables"}"#).as_deref(),
            Some("bad_request")
        );
        assert_eq!(kind(r#"{"v":1,"id":1,"op":"reset"}"#).as_deref(), Some("bad_request"));
        assert_eq!(
            kind(r#"{"v":1,"id":1,"op":"stats","x":1}"#).as_deref(),
            Some("bad_request")
        );
        assert_eq!(kind("[1,2]").as_deref(), Some("bad_request"));
        assert_eq!(kind("{").as_deref(), Some("bad_request"));
        assert_eq!(kind(r#"{"v":1,"id":1,"op":"stats"}"#), None);
    }

    #[test]
    fn the_errors_a_caller_decides_from_come_back_as_the_same_variant() {
        let errors = [
            Error::NotFound {
                id: "603".into(),
                wanted: "failed",
            },
            Error::InvalidMovie("no title".into()),
            Error::InvalidArgument("bad".into()),
            Error::EventTooLarge { length: 9, limit: 8 },
        ];
        for error in errors {
            let line = answer_line(Some(3), &Err(WireError::from_error(&error)));
            assert!(line.ends_with(b"}\n"));
            let (id, answer) = parse_answer(&line).expect("an answer");
            assert_eq!(id, Some(3));
            let back = answer.expect_err("an error").into_error();
            assert_eq!(back.to_string(), error.to_string());
            assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&error));
        }
        let other = WireError::from_error(&Error::Closed).into_error();
        assert!(
            matches!(other, Error::Remote { ref kind, .. } if kind == "closed"),
            "{other:?}"
        );
    }

    #[test]
    fn an_answers_text_is_sent_as_it_is() {
        let line = answer_line(Some(9), &Ok("[{\"id\":\"1\"}]".to_owned()));
        assert_eq!(line, b"{\"v\":1,\"id\":9,\"ok\":[{\"id\":\"1\"}]}\n");
        let (id, answer) = parse_answer(&line).expect("an answer");
        assert_eq!((id, answer), (Some(9), Ok(serde_json::json!([{"id": "1"}]))));
    }

    #[test]
    fn place_names_round_trip() {
        for place in Place::ALL {
            assert_eq!(parse_place(place_name(place)), Some(place));
        }
        assert_eq!(parse_place("in flight"), None);
    }
}
