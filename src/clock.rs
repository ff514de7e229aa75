//! The wall clock, in one place: the only time the store reads is the
//! stamp a new event gets (and the "now" of the retry queries). Replay
//! never reads it.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time, Unix seconds.
#[must_use]
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}
