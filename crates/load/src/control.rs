//! When a run ends: its duration, an interrupt, a driver that finished its
//! work, or a server that has failed every request for too long.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use measure::Measurement;
use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The requested duration elapsed.
    Duration,
    /// The driver did all the work it was asked for.
    Finished,
    /// The user interrupted the run.
    Interrupted,
    /// Every request failed for this long.
    Failing(Duration),
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Duration => f.write_str("duration elapsed"),
            StopReason::Finished => f.write_str("all work done"),
            StopReason::Interrupted => f.write_str("interrupted"),
            StopReason::Failing(window) => write!(
                f,
                "every request failed for {} s",
                window.as_secs_f64().round()
            ),
        }
    }
}

/// Ends a run once, remembering the first reason given.
#[derive(Clone, Debug, Default)]
pub struct Control {
    token: CancellationToken,
    reason: Arc<Mutex<Option<StopReason>>>,
}

impl Control {
    /// A run that has not ended.
    pub fn new() -> Self {
        Self::default()
    }

    /// The token drivers watch.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Ends the run; later reasons are ignored.
    pub fn stop(&self, reason: StopReason) {
        self.reason.lock().get_or_insert(reason);
        self.token.cancel();
    }

    /// Why the run ended, once it has.
    pub fn reason(&self) -> Option<StopReason> {
        self.reason.lock().clone()
    }

    /// Ends the run after `duration`.
    pub fn stop_after(&self, duration: Duration) -> JoinHandle<()> {
        let control = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(duration) => control.stop(StopReason::Duration),
                () = control.token.cancelled() => {}
            }
        })
    }

    /// Ends the run when requests have been failing, with no success at
    /// all, for `window`: a server that is down for good makes the run
    /// stop instead of hammering it until the end.
    pub fn stop_when_failing(&self, measurement: Measurement, window: Duration) -> JoinHandle<()> {
        let control = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut watch = FailureWatch::new(window);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = control.token.cancelled() => return,
                }
                let live = measurement.live();
                if watch.observe(live.requests, live.errors, measurement.elapsed()) {
                    control.stop(StopReason::Failing(window));
                    return;
                }
            }
        })
    }
}

/// Tracks how long requests have completed without a single success.
#[derive(Debug)]
struct FailureWatch {
    window: Duration,
    last_successes: u64,
    failing_since: Option<Duration>,
    last_errors: u64,
}

impl FailureWatch {
    fn new(window: Duration) -> Self {
        Self {
            window,
            last_successes: 0,
            failing_since: None,
            last_errors: 0,
        }
    }

    /// Feeds the running totals at time `now`; true once failing too long.
    fn observe(&mut self, requests: u64, errors: u64, now: Duration) -> bool {
        let successes = requests.saturating_sub(errors);
        if successes > self.last_successes {
            self.failing_since = None;
        } else if errors > self.last_errors && self.failing_since.is_none() {
            self.failing_since = Some(now);
        }
        self.last_successes = successes;
        self.last_errors = errors;
        self.failing_since
            .is_some_and(|since| now.saturating_sub(since) >= self.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn failures_without_successes_for_the_window_stop_the_run() {
        let mut watch = FailureWatch::new(secs(3));
        assert!(!watch.observe(10, 0, secs(1)));
        assert!(!watch.observe(12, 2, secs(2)), "failing starts");
        assert!(!watch.observe(14, 4, secs(4)));
        assert!(watch.observe(16, 6, secs(5)), "3 s without a success");
    }

    #[test]
    fn one_success_resets_the_window() {
        let mut watch = FailureWatch::new(secs(3));
        assert!(!watch.observe(2, 2, secs(1)));
        assert!(!watch.observe(5, 4, secs(3)), "a success at 3 s");
        assert!(!watch.observe(7, 6, secs(5)));
        assert!(!watch.observe(8, 7, secs(7)));
        assert!(watch.observe(9, 8, secs(8)));
    }

    #[test]
    fn an_idle_run_is_not_failing() {
        let mut watch = FailureWatch::new(secs(1));
        assert!(!watch.observe(0, 0, secs(5)));
        assert!(!watch.observe(0, 0, secs(10)));
    }

    #[test]
    fn the_first_stop_reason_wins() {
        let control = Control::new();
        control.stop(StopReason::Interrupted);
        control.stop(StopReason::Duration);
        assert_eq!(control.reason(), Some(StopReason::Interrupted));
        assert!(control.token().is_cancelled());
    }
}
