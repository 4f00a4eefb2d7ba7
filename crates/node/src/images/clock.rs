//! Time source for back-off and rate limiting.
//!
//! The kubelet's image back-off and pull limiter take their notion of "now"
//! from an injectable clock so that their behaviour can be checked step by
//! step. kstress does the same: production code uses [`TokioClock`], tests
//! use [`FakeClock`] and move time forward explicitly instead of sleeping.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A monotonic source of "now".
pub trait Clock: Send + Sync + Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The clock of the tokio runtime, so that time-paused tokio tests and the
/// rest of the node agent agree on what "now" is.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// A clock that only moves when told to, so tests can advance through
/// back-off windows and limiter refills deterministically.
#[derive(Debug)]
pub struct FakeClock {
    origin: Instant,
    elapsed: Mutex<Duration>,
}

impl FakeClock {
    /// A fake clock standing at an arbitrary fixed instant.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            elapsed: Mutex::new(Duration::ZERO),
        }
    }

    /// Moves the clock forward by `step`.
    pub fn step(&self, step: Duration) {
        *self.elapsed.lock() += step;
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.origin + *self.elapsed.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_moves_only_when_stepped() {
        let clock = FakeClock::new();
        let start = clock.now();
        assert_eq!(clock.now(), start);
        clock.step(Duration::from_millis(1500));
        assert_eq!(clock.now() - start, Duration::from_millis(1500));
    }

    #[test]
    fn tokio_clock_is_monotonic() {
        let clock = TokioClock;
        let first = clock.now();
        assert!(clock.now() >= first);
    }
}
