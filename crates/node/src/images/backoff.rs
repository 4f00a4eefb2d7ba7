//! Per-key exponential back-off with the semantics of client-go's
//! `flowcontrol.Backoff`, which the kubelet uses for image pulls (and for
//! container restarts).
//!
//! Each key starts at the initial duration, doubles on every failure up to
//! the maximum, and is forgotten once it has not failed for twice the
//! maximum: a key that has been healthy that long starts over from the
//! initial duration.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::clock::Clock;

/// Exponential back-off tracked per key.
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    backoff: Duration,
    last_update: Instant,
}

impl Backoff {
    /// A back-off starting at `initial` and capped at `max`, reading time from `clock`.
    pub fn new(initial: Duration, max: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            initial,
            max,
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `id` is still inside the window that began at its last failure.
    pub fn is_in_backoff_since_update(&self, id: &str, event_time: Instant) -> bool {
        let entries = self.entries.lock();
        let Some(entry) = entries.get(id) else {
            return false;
        };
        if self.has_expired(event_time, entry.last_update) {
            return false;
        }
        event_time.saturating_duration_since(entry.last_update) < entry.backoff
    }

    /// Records a failure of `id`: starts its window at the initial duration,
    /// or doubles the current window (capped at the maximum).
    pub fn next(&self, id: &str, event_time: Instant) {
        let now = self.clock.now();
        let mut entries = self.entries.lock();
        let backoff = match entries.get(id) {
            Some(entry) if !self.has_expired(event_time, entry.last_update) => {
                entry.backoff.saturating_mul(2).min(self.max)
            }
            _ => self.initial,
        };
        entries.insert(
            id.to_owned(),
            Entry {
                backoff,
                last_update: now,
            },
        );
    }

    /// Whether `id` has failed recently enough to still be remembered.
    pub fn is_tracked(&self, id: &str) -> bool {
        self.entries.lock().contains_key(id)
    }

    /// Forgets keys that have not failed for twice the maximum duration.
    pub fn gc(&self) {
        let now = self.clock.now();
        let horizon = self.max.saturating_mul(2);
        self.entries
            .lock()
            .retain(|_, entry| now.saturating_duration_since(entry.last_update) <= horizon);
    }

    fn has_expired(&self, event_time: Instant, last_update: Instant) -> bool {
        event_time.saturating_duration_since(last_update) > self.max.saturating_mul(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::clock::FakeClock;

    fn backoff() -> (Arc<FakeClock>, Backoff) {
        let clock = Arc::new(FakeClock::new());
        let backoff = Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(8),
            clock.clone(),
        );
        (clock, backoff)
    }

    #[test]
    fn unknown_key_is_not_backing_off() {
        let (clock, backoff) = backoff();
        assert!(!backoff.is_in_backoff_since_update("k", clock.now()));
    }

    #[test]
    fn window_doubles_and_caps_at_max() {
        let (clock, backoff) = backoff();
        let mut expected = [1, 2, 4, 8, 8].into_iter().map(Duration::from_secs);
        for window in expected.by_ref() {
            backoff.next("k", clock.now());
            clock.step(window - Duration::from_millis(1));
            assert!(
                backoff.is_in_backoff_since_update("k", clock.now()),
                "inside {window:?}"
            );
            clock.step(Duration::from_millis(1));
            assert!(
                !backoff.is_in_backoff_since_update("k", clock.now()),
                "after {window:?}"
            );
        }
    }

    #[test]
    fn window_restarts_after_twice_max_without_failures() {
        let (clock, backoff) = backoff();
        backoff.next("k", clock.now());
        backoff.next("k", clock.now());
        clock.step(Duration::from_secs(17));
        backoff.next("k", clock.now());
        clock.step(Duration::from_secs(1));
        assert!(!backoff.is_in_backoff_since_update("k", clock.now()));
    }

    #[test]
    fn gc_forgets_only_stale_keys() {
        let (clock, backoff) = backoff();
        backoff.next("old", clock.now());
        clock.step(Duration::from_secs(10));
        backoff.next("new", clock.now());
        clock.step(Duration::from_secs(7));
        backoff.gc();
        assert!(!backoff.is_tracked("old"));
        assert!(backoff.is_tracked("new"));
    }
}
