//! Jittered exponential backoff (KIP-580): the wait doubles on every
//! attempt from `retry.backoff.ms` up to `retry.backoff.max.ms`, and each
//! wait is spread by ±20 % so that clients retrying together do not stay in
//! step. Pure: the caller supplies the random number.

use std::time::Duration;

/// Backoff schedule.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
}

/// The spread applied to each wait (Java's `CommonClientConfigs.RETRY_BACKOFF_JITTER`).
const JITTER: f64 = 0.2;

impl Backoff {
    /// A schedule from `initial` doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
        }
    }

    /// The wait before retry number `attempt` (0 = first retry), given a
    /// uniform random `unit` in `[0, 1)`.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.initial.as_secs_f64() * 2f64.powi(attempt.min(30) as i32);
        let capped = base.min(self.max.as_secs_f64());
        let factor = 1.0 - JITTER + 2.0 * JITTER * unit.clamp(0.0, 1.0);
        Duration::from_secs_f64((capped * factor).min(self.max.as_secs_f64()))
    }

    /// Same as [`Backoff::delay`] with thread-local randomness.
    pub fn delay_random(&self, attempt: u32) -> Duration {
        self.delay(attempt, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_and_caps() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        assert_eq!(b.delay(0, 0.5), Duration::from_millis(100));
        assert_eq!(b.delay(1, 0.5), Duration::from_millis(200));
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(800));
        assert_eq!(b.delay(4, 0.5), Duration::from_millis(1000));
        assert_eq!(b.delay(40, 0.99), Duration::from_millis(1000));
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(80));
        assert!(b.delay(0, 1.0) <= Duration::from_millis(120));
    }
}
