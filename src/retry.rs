//! `RetryPolicy`: when a failed movie may be tried again.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Exponential backoff with a cap and optional jitter. The default is the
/// application's own: 1 hour, doubling per failure (1 h, 2 h, 4 h, 8 h,
/// 16 h), 5 retries, no jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The delay after the first failure.
    pub base_delay: Duration,
    /// Each further failure multiplies the delay by this.
    pub multiplier: f64,
    /// The longest delay.
    pub max_delay: Duration,
    /// Spread each delay by up to ± this fraction (0.0: none; at most 1.0).
    pub jitter: f64,
    /// Failures after which a movie is a permanent failure.
    pub max_retries: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_delay: Duration::from_secs(3600),
            multiplier: 2.0,
            max_delay: Duration::from_secs(16 * 3600),
            jitter: 0.0,
            max_retries: 5,
        }
    }
}

impl RetryPolicy {
    /// The delay before the next try of a movie that has now failed
    /// `retry_count` times (1 for the first failure).
    #[must_use]
    pub fn delay(&self, retry_count: u32) -> Duration {
        let exponent = i32::try_from(retry_count.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.base_delay.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let capped = secs.min(self.max_delay.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let spread = if jitter > 0.0 {
            capped * jitter * (2.0 * unit_random() - 1.0)
        } else {
            0.0
        };
        Duration::try_from_secs_f64((capped + spread).max(0.0)).unwrap_or(self.max_delay)
    }
}

/// A number in [0, 1) from the standard library's per-process random hash keys.
fn unit_random() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x9e37_79b9_7f4a_7c15);
    #[expect(clippy::cast_precision_loss, reason = "53 random bits are plenty for jitter")]
    let unit = (hasher.finish() >> 11) as f64 / (1_u64 << 53) as f64;
    unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_applications_doubling_hour() {
        let policy = RetryPolicy::default();
        let hours: Vec<u64> = (1..=6).map(|count| policy.delay(count).as_secs() / 3600).collect();
        assert_eq!(hours, [1, 2, 4, 8, 16, 16]);
        assert_eq!(policy.max_retries, 5);
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let policy = RetryPolicy {
            jitter: 0.25,
            ..RetryPolicy::default()
        };
        for _ in 0..100 {
            let secs = policy.delay(1).as_secs_f64();
            assert!((2700.0..=4500.0).contains(&secs), "{secs}");
        }
    }
}
