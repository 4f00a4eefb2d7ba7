//! Token bucket for registry pull QPS, with the non-blocking `TryAccept`
//! semantics of client-go's token-bucket rate limiter: a pull that finds the
//! bucket empty fails at once instead of waiting, exactly like the kubelet's
//! `registryPullQPS` / `registryBurst`.
//!
//! Written here rather than taken from a rate-limiting crate because those
//! cannot express a burst of zero (which upstream treats as "refuse every
//! pull") and read time from their own clock rather than from [`Clock`].
//!
//! [`Clock`]: super::clock::Clock

use std::time::Instant;

/// A bucket of `burst` tokens refilled at `qps` tokens per second.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket. `qps` must be finite and positive.
    pub(crate) fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst);
        Self {
            qps,
            burst,
            tokens: burst,
            last: None,
        }
    }

    /// Takes one token if one is available at `now`.
    pub(crate) fn try_accept(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * self.qps;
            self.tokens = (self.tokens + refill).min(self.burst);
        }
        self.last = Some(self.last.map_or(now, |last| last.max(now)));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_is_available_at_once_then_refills_at_qps() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 3);
        assert_eq!(
            (0..4).map(|_| bucket.try_accept(start)).collect::<Vec<_>>(),
            [true, true, true, false]
        );
        let half_second = start + Duration::from_millis(500);
        assert!(bucket.try_accept(half_second), "one token refills in 1/qps");
        assert!(!bucket.try_accept(half_second));
    }

    #[test]
    fn refill_never_exceeds_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(100.0, 2);
        let later = start + Duration::from_secs(60);
        let accepted = (0..5).filter(|_| bucket.try_accept(later)).count();
        assert_eq!(accepted, 2);
    }

    #[test]
    fn zero_burst_refuses_every_pull() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2000.0, 0);
        assert!(!bucket.try_accept(start));
        assert!(!bucket.try_accept(start + Duration::from_secs(10)));
    }
}
