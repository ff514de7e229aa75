//! The projection's unit tests: each rule and query (`rules.rs`), and long
//! and random runs against the reference model (`random.rs`).

mod random;
mod removed;
mod rules;

use super::*;
use crate::movie::{Movie, Stamp, StampValue};
use crate::testing::Stamped;

pub(super) fn movie(id: &str) -> Movie {
    Movie::new(id, format!("Movie {id}"), 2000)
}

pub(super) fn added(id: &str) -> Event {
    Event::Added { movie: movie(id) }
}

pub(super) fn taken(id: &str) -> Event {
    Event::Taken { id: id.into() }
}

pub(super) fn failed(id: &str, retry_after: f64) -> Event {
    Event::Failed {
        movie: movie(id),
        error: format!("error for {id}"),
        retry_after,
    }
}

pub(super) fn completed(id: &str) -> Event {
    Event::Completed { movie: movie(id) }
}

pub(super) fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|&id| id.to_owned()).collect()
}

/// Applies every event at times 1.0, 2.0, ..., panicking on a refusal.
pub(super) fn state_of(events: &[Event]) -> QueueState {
    let mut state = QueueState::new();
    for (time, event) in (1..).map(f64::from).zip(events) {
        state.apply(time, event).expect("event applies");
    }
    state
}

pub(super) fn ids(entries: impl IntoIterator<Item = QueueEntry>) -> Vec<String> {
    entries.into_iter().map(|entry| entry.id().to_owned()).collect()
}

/// `status: word`, as version 2 stamps it.
pub(super) fn status(word: &'static str) -> Stamp {
    ("status", StampValue::Text(word))
}

/// An integer field stamped by version 2 (`queued_at`, `last_failed_at`, ...).
pub(super) fn stamp(key: &'static str, value: i64) -> Stamp {
    (key, StampValue::Int(value))
}

/// `movie(id)` as `added` at `time` leaves it: `queued_at`, `status: "pending"`.
pub(super) fn queued(id: &str, time: i64) -> Movie {
    movie(id).stamped(&[stamp("queued_at", time), status("pending")])
}
