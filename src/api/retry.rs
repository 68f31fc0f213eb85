//! Backoff: exponential with "equal jitter", bounded. [`Backoff`] is the
//! one policy of the program: the client waits by it between attempts of a
//! request ([`RetryPolicy`]), the daemon between failed passes of a pair.
//!
//! Pure arithmetic plus one injected random source; it never sleeps itself.

use std::time::Duration;

/// Exponential backoff with "equal jitter" (half the delay fixed, half
/// random), so that clients failing together do not retry in lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the first retry (before jitter).
    pub base: Duration,
    /// Ceiling of the exponential delay.
    pub max: Duration,
}

impl Backoff {
    /// Delay before retry number `retry` (1 = first retry): `base` doubled
    /// for each retry after the first, capped at `max`, then half of it
    /// fixed and half scaled by `unit`, a random number in [0, 1).
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20));
        let capped = exp.min(self.max);
        capped / 2 + capped.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
    }
}

/// How often and how patiently a failed request is repeated.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts of one request, the first included.
    pub max_attempts: u32,
    /// Of those, how many may end in a timeout (the host not answering at
    /// all) before giving up; lower for commands someone waits for.
    pub max_timeouts: u32,
    /// Delay before the first retry (before jitter).
    pub base_delay: Duration,
    /// Ceiling of the exponential delay.
    pub max_delay: Duration,
    /// Ceiling on a server's `Retry-After`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            max_timeouts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// A policy for tests: many quick retries.
    pub fn fast() -> Self {
        RetryPolicy {
            max_attempts: 10,
            max_timeouts: 10,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(2),
        }
    }

    /// Delay before retry number `retry` (1 = first retry). `unit` is a random
    /// number in [0, 1) giving "equal jitter": half fixed, half random.
    /// A server's `Retry-After` is honoured (capped) when it is longer.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let jittered = Backoff {
            base: self.base_delay,
            max: self.max_delay,
        }
        .delay(retry, unit);
        match retry_after {
            Some(ra) => jittered.max(ra.min(self.max_retry_after)),
            None => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, None, 1.0), Duration::from_millis(500));
        assert_eq!(p.delay(2, None, 1.0), Duration::from_millis(1000));
        assert_eq!(p.delay(3, None, 0.0), Duration::from_millis(1000));
        assert_eq!(p.delay(30, None, 1.0), Duration::from_secs(30));
        assert!(p.delay(30, None, 0.0) >= Duration::from_secs(15));
    }

    #[test]
    fn retry_after_wins_when_longer_but_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(7)), 0.5),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(10_000)), 0.5),
            Duration::from_secs(300)
        );
    }
}
