//! The application's stamps: the fields Movie Sync writes on a movie as it
//! moves (`status`, `queued_at`, `last_failed_at`, `retry_attempt`, and the
//! integer `completed_at` / `removed_at`), a rule of event schema version
//! 2. Version 1 events stamp nothing, so a journal written before version
//! 2 replays to exactly the state it had. Every stamped time is the
//! event's own time in whole seconds: replay never reads the clock.

use std::ops::Deref;

use crate::movie::{Stamp, StampValue};

/// The most fields one event stamps (`reset`'s three).
const STAMPS_MAX: usize = 3;

/// An event's stamps, held inline: stamping allocates nothing (it runs
/// on every add, take-over and completion).
#[derive(Debug, Clone, Copy)]
pub(super) struct Stamps {
    fields: [Stamp; STAMPS_MAX],
    len: usize,
}

impl Stamps {
    const NONE: Stamps = Stamps {
        fields: [("", StampValue::Absent); STAMPS_MAX],
        len: 0,
    };

    /// The stamps `fields`, in order (at most [`STAMPS_MAX`]).
    fn of(fields: &[Stamp]) -> Stamps {
        debug_assert!(
            fields.len() <= STAMPS_MAX,
            "an event stamps at most {STAMPS_MAX} fields"
        );
        let mut stamps = Stamps::NONE;
        for (slot, field) in stamps.fields.iter_mut().zip(fields) {
            *slot = *field;
            stamps.len += 1;
        }
        stamps
    }
}

impl Deref for Stamps {
    type Target = [Stamp];

    fn deref(&self) -> &[Stamp] {
        self.fields.get(..self.len).unwrap_or_default()
    }
}

/// The stamping rules of one event: its schema version and time.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stamping {
    /// Version 2 or later: the application's fields are stamped.
    on: bool,
    /// The event's time.
    ts: f64,
}

impl Stamping {
    /// The rules of an event of schema `version` at time `ts`.
    pub(super) fn new(version: u32, ts: f64) -> Self {
        Stamping { on: version >= 2, ts }
    }

    /// The event's time (`failed_at` of a first failure, the seed's float).
    pub(super) fn ts(self) -> f64 {
        self.ts
    }

    /// The event's time in whole seconds, as the application stamps it.
    #[expect(clippy::cast_possible_truncation, reason = "a finite Unix time fits an i64")]
    fn seconds(self) -> i64 {
        self.ts.floor() as i64
    }

    /// `completed_at`: the event's time (version 1), its whole seconds
    /// (version 2, written as an integer).
    pub(super) fn completed_at(self) -> f64 {
        if self.on { self.ts.floor() } else { self.ts }
    }

    /// `removed_at`: the event's whole seconds.
    pub(super) fn removed_at(self) -> f64 {
        self.ts.floor()
    }

    /// `added`: `queued_at`, `status: "pending"`.
    pub(super) fn added(self) -> Stamps {
        self.when_on(&[
            ("queued_at", StampValue::Int(self.seconds())),
            ("status", StampValue::Text("pending")),
        ])
    }

    /// `failed`: `status: "failed"`, `last_failed_at` (every failure).
    pub(super) fn failed(self) -> Stamps {
        self.when_on(&[
            ("status", StampValue::Text("failed")),
            ("last_failed_at", StampValue::Int(self.seconds())),
        ])
    }

    /// `moved_to_pending`: `status: "pending"`, `retry_attempt` = the retry count.
    pub(super) fn moved_to_pending(self, retry_count: u32) -> Stamps {
        self.when_on(&[
            ("status", StampValue::Text("pending")),
            ("retry_attempt", StampValue::Int(i64::from(retry_count))),
        ])
    }

    /// `reset`: a fresh record, `status: "pending"`, no `retry_attempt` or
    /// `last_failed_at` left from the failures.
    pub(super) fn reset(self) -> Stamps {
        self.when_on(&[
            ("status", StampValue::Text("pending")),
            ("retry_attempt", StampValue::Absent),
            ("last_failed_at", StampValue::Absent),
        ])
    }

    /// `completed`: `status: "completed"`.
    pub(super) fn completed(self) -> Stamps {
        self.when_on(&[("status", StampValue::Text("completed"))])
    }

    /// `removed` and `marked_removed`: `status: "removed"` (version 2 only
    /// has them).
    pub(super) fn removed() -> Stamps {
        Stamps::of(&[("status", StampValue::Text("removed"))])
    }

    /// `restored`: `status: "pending"`.
    pub(super) fn restored() -> Stamps {
        Stamps::of(&[("status", StampValue::Text("pending"))])
    }

    fn when_on(self, fields: &[Stamp]) -> Stamps {
        if self.on { Stamps::of(fields) } else { Stamps::NONE }
    }
}
