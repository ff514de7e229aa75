//! The wall clock, in one place: the only time the store reads is the
//! stamp a new event gets (and the "now" of the retry queries). Replay
//! never reads it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The current time, Unix seconds.
#[must_use]
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// Where a manager's event stamps come from: the wall clock, or (the
/// `testing` feature) a function, so tests can step the clock back.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<dyn Fn() -> f64 + Send + Sync>>);

impl Clock {
    /// A clock that reads `read`.
    #[cfg(feature = "testing")]
    #[must_use]
    pub fn from_fn(read: Arc<dyn Fn() -> f64 + Send + Sync>) -> Self {
        Clock(Some(read))
    }

    /// Its time, Unix seconds.
    #[must_use]
    pub fn now(&self) -> f64 {
        match &self.0 {
            Some(read) => read(),
            None => now(),
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(if self.0.is_some() {
            "Clock(given)"
        } else {
            "Clock(wall)"
        })
    }
}

/// The time an event is stamped with: the clock's, but never below the
/// previous event's (`previous`), so times are monotonic in a store. A
/// clock stepped back (NTP, a virtual machine restored) stamps the
/// previous event's time until it catches up; a time that is not finite
/// is replaced the same way.
#[must_use]
pub fn stamp(clock: f64, previous: f64) -> f64 {
    if clock.is_finite() && clock >= previous {
        clock
    } else {
        previous
    }
}

#[cfg(test)]
mod tests {
    use super::stamp;

    #[test]
    fn a_clock_stepped_back_stamps_the_previous_time() {
        assert_eq!(stamp(10.0, 5.0).to_bits(), 10.0_f64.to_bits());
        assert_eq!(stamp(4.0, 5.0).to_bits(), 5.0_f64.to_bits());
        assert_eq!(stamp(f64::NAN, 5.0).to_bits(), 5.0_f64.to_bits());
    }
}
