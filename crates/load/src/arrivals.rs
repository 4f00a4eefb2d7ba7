//! Arrival processes for open-loop drivers.
//!
//! An open-loop driver decides *when* each request should start before it
//! knows how long earlier requests take, so a slow server cannot slow the
//! offered load down. The schedule is a sequence of offsets from the start
//! of the run; a pacer thread releases each arrival at its offset (see
//! [`Pacer`]), and the driver times every request from that intended start.

use std::collections::BinaryHeap;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Exp};
use tokio::sync::{mpsc, oneshot};

/// How arrivals are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArrivalProcess {
    /// Exponentially distributed gaps: independent arrivals, the usual
    /// model of many uncoordinated clients.
    Poisson,
    /// Evenly spaced arrivals, for precise rate experiments.
    Constant,
}

impl FromStr for ArrivalProcess {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "poisson" => Ok(ArrivalProcess::Poisson),
            "constant" => Ok(ArrivalProcess::Constant),
            other => Err(format!(
                "unknown arrival process {other:?} (expected poisson or constant)"
            )),
        }
    }
}

/// The intended start offsets of an arrival process at a given rate.
#[derive(Debug)]
pub struct Schedule {
    gaps: Gaps,
    next: Duration,
}

#[derive(Debug)]
enum Gaps {
    Constant(Duration),
    Poisson { exp: Exp<f64>, rng: Box<StdRng> },
}

impl Schedule {
    /// A schedule of `rate` arrivals per second. `seed` makes a Poisson
    /// schedule reproducible.
    ///
    /// # Panics
    /// When `rate` is not a positive finite number; callers validate it.
    pub fn new(process: ArrivalProcess, rate: f64, seed: u64) -> Self {
        assert!(
            rate.is_finite() && rate > 0.0,
            "arrival rate must be positive"
        );
        let gaps = match process {
            ArrivalProcess::Constant => Gaps::Constant(Duration::from_secs_f64(1.0 / rate)),
            ArrivalProcess::Poisson => Gaps::Poisson {
                exp: Exp::new(rate).expect("a positive rate is a valid exponential parameter"),
                rng: Box::new(StdRng::seed_from_u64(seed)),
            },
        };
        let mut schedule = Schedule {
            gaps,
            next: Duration::ZERO,
        };
        // The first arrival is one gap in, so that the rate holds from t = 0.
        schedule.next = schedule.gap();
        schedule
    }

    fn gap(&mut self) -> Duration {
        match &mut self.gaps {
            Gaps::Constant(gap) => *gap,
            Gaps::Poisson { exp, rng } => Duration::from_secs_f64(exp.sample(rng.as_mut())),
        }
    }
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let current = self.next;
        self.next = current + self.gap();
        Some(current)
    }
}

/// Releases the arrivals of a schedule at their intended instants, and
/// wakes [`Timer`] sleepers at theirs.
///
/// The pacer is an OS thread sleeping with the kernel's high-resolution
/// timers rather than a task on the async runtime, whose timer wheel only
/// has millisecond resolution; each arrival is handed over as its intended
/// [`Instant`], so lateness anywhere downstream is measured, not hidden.
/// Work an arrival schedules for later (churn's delete, a lifetime after
/// the create) sleeps on the same thread through a [`Timer`], so it starts
/// as precisely.
#[derive(Debug)]
pub struct Pacer {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A handle for precise sleeps on a [`Pacer`]'s thread.
#[derive(Clone, Debug)]
pub struct Timer {
    shared: Arc<Shared>,
    thread: std::thread::Thread,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    sleepers: Mutex<BinaryHeap<Sleeper>>,
}

/// A pending sleep, ordered so that the earliest deadline is the heap's
/// greatest element.
#[derive(Debug)]
struct Sleeper {
    deadline: Instant,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Sleeper {
    fn eq(&self, other: &Self) -> bool {
        self.deadline == other.deadline
    }
}

impl Eq for Sleeper {}

impl PartialOrd for Sleeper {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Sleeper {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.deadline.cmp(&self.deadline)
    }
}

/// How far ahead of an instant the pacer wakes to spin for the last
/// stretch: thread wake-ups overshoot by tens of microseconds.
const SPIN_WINDOW: Duration = Duration::from_micros(25);

/// Longest single sleep, so that a stop request is seen promptly even when
/// nothing is due for long.
const POLL: Duration = Duration::from_millis(50);

impl Pacer {
    /// Starts releasing `schedule` relative to `start`, until `end` or until
    /// [`Pacer::stop`]. The receiver gets each arrival's intended instant;
    /// timers keep working after the last arrival, until the pacer stops.
    pub fn start(
        schedule: Schedule,
        start: Instant,
        end: Instant,
    ) -> std::io::Result<(Pacer, mpsc::UnboundedReceiver<Instant>)> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("kstress-pacer".into())
            .spawn(move || {
                if let Err(err) = lowlatency::favour_wakeups() {
                    tracing::debug!(%err, "the pacer runs without wake-up latency hints");
                }
                let arrivals = schedule
                    .map(move |offset| start + offset)
                    .take_while(move |intended| *intended < end);
                pace(arrivals, sender, &thread_shared);
            })?;
        Ok((
            Pacer {
                shared,
                thread: Some(thread),
            },
            receiver,
        ))
    }

    /// A handle for sleeping on this pacer's thread.
    pub fn timer(&self) -> Timer {
        let thread = self
            .thread
            .as_ref()
            .expect("a running pacer has its thread")
            .thread()
            .clone();
        Timer {
            shared: Arc::clone(&self.shared),
            thread,
        }
    }

    /// Stops releasing arrivals and waking sleepers: the receiver ends, and
    /// pending sleeps end at once.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            // Its panics are not ours to propagate.
            let _ = thread.join();
        }
        self.shared.sleepers.lock().clear();
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.halt();
    }
}

impl Timer {
    /// Sleeps until `deadline`, or returns at once when it has passed.
    /// A sleep outliving its pacer ends when the pacer stops.
    pub async fn sleep_until(&self, deadline: Instant) {
        if deadline <= Instant::now() {
            return;
        }
        let (wake, woken) = oneshot::channel();
        let earliest = {
            let mut sleepers = self.shared.sleepers.lock();
            sleepers.push(Sleeper { deadline, wake });
            sleepers.peek().is_some_and(|s| s.deadline == deadline)
        };
        if self.shared.stop.load(Ordering::Relaxed) {
            // The pacer stopped while this sleeper was being queued.
            return;
        }
        if earliest {
            // The pacer may be sleeping towards a later instant.
            self.thread.unpark();
        }
        // An error means the pacer stopped: the sleep is over either way.
        let _ = woken.await;
    }
}

fn pace(
    mut arrivals: impl Iterator<Item = Instant>,
    sender: mpsc::UnboundedSender<Instant>,
    shared: &Shared,
) {
    let mut sender = Some(sender);
    let mut next_arrival = arrivals.next();
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while let Some(intended) = next_arrival.filter(|at| *at <= now) {
            let delivered = sender.as_ref().is_some_and(|s| s.send(intended).is_ok());
            next_arrival = if delivered { arrivals.next() } else { None };
        }
        if next_arrival.is_none() {
            // Dropping the sender ends the receiver's stream.
            sender = None;
        }
        let next_sleeper = {
            let mut sleepers = shared.sleepers.lock();
            while sleepers.peek().is_some_and(|s| s.deadline <= now) {
                if let Some(sleeper) = sleepers.pop() {
                    let _ = sleeper.wake.send(());
                }
            }
            sleepers.peek().map(|s| s.deadline)
        };
        let Some(due) = [next_arrival, next_sleeper].into_iter().flatten().min() else {
            std::thread::park_timeout(POLL);
            continue;
        };
        let wait = due.saturating_duration_since(Instant::now());
        if wait > SPIN_WINDOW {
            // Unparked early when a sleeper with an earlier deadline comes.
            std::thread::park_timeout((wait - SPIN_WINDOW).min(POLL));
        } else {
            // The last stretch: spin on the clock alone, without taking the
            // sleepers' lock on every turn.
            while Instant::now() < due {
                std::hint::spin_loop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn offsets(process: ArrivalProcess, rate: f64, horizon: Duration) -> Vec<Duration> {
        Schedule::new(process, rate, 7)
            .take_while(|offset| *offset < horizon)
            .collect()
    }

    #[test]
    fn constant_arrivals_are_evenly_spaced_at_the_rate() {
        let arrivals = offsets(ArrivalProcess::Constant, 2000.0, Duration::from_secs(10));
        assert!(
            (19_999..=20_000).contains(&arrivals.len()),
            "{} arrivals in 10 s at 2000/s",
            arrivals.len()
        );
        for pair in arrivals.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap.abs_diff(Duration::from_micros(500)) < Duration::from_nanos(2),
                "gap {gap:?}"
            );
        }
    }

    #[test]
    fn poisson_count_is_within_statistical_bounds() {
        // 100,000 expected arrivals: the count is Poisson distributed with a
        // standard deviation of about 316; five of them is far beyond chance.
        let rate = 1000.0;
        let arrivals = offsets(ArrivalProcess::Poisson, rate, Duration::from_secs(100));
        let expected = 100_000.0_f64;
        let deviation = (arrivals.len() as f64 - expected).abs();
        assert!(
            deviation < 5.0 * expected.sqrt(),
            "{} arrivals, expected about {expected}",
            arrivals.len()
        );
    }

    #[test]
    fn poisson_gaps_are_exponentially_distributed() {
        let rate = 500.0;
        let arrivals = offsets(ArrivalProcess::Poisson, rate, Duration::from_secs(200));
        let gaps: Vec<f64> = arrivals
            .windows(2)
            .map(|pair| (pair[1] - pair[0]).as_secs_f64())
            .collect();
        let n = gaps.len() as f64;
        let mean = gaps.iter().sum::<f64>() / n;
        let variance = gaps.iter().map(|gap| (gap - mean).powi(2)).sum::<f64>() / n;
        // Mean 1/rate and coefficient of variation 1, within 2%.
        assert!((mean * rate - 1.0).abs() < 0.02, "mean gap {mean}");
        assert!(
            (variance.sqrt() / mean - 1.0).abs() < 0.02,
            "coefficient of variation {}",
            variance.sqrt() / mean
        );
        // The survival function at the mean: P(gap > 1/rate) = e^-1.
        let above = gaps.iter().filter(|gap| **gap > 1.0 / rate).count() as f64 / n;
        assert!(
            (above - (-1.0_f64).exp()).abs() < 0.01,
            "P(gap > mean) = {above}"
        );
    }

    #[test]
    fn poisson_schedules_are_reproducible_from_their_seed() {
        let first: Vec<_> = Schedule::new(ArrivalProcess::Poisson, 100.0, 42)
            .take(100)
            .collect();
        let second: Vec<_> = Schedule::new(ArrivalProcess::Poisson, 100.0, 42)
            .take(100)
            .collect();
        assert_eq!(first, second);
    }

    #[test]
    fn arrival_process_names_parse() {
        assert_eq!("poisson".parse(), Ok(ArrivalProcess::Poisson));
        assert_eq!("constant".parse(), Ok(ArrivalProcess::Constant));
        assert!("bursty".parse::<ArrivalProcess>().is_err());
    }

    #[tokio::test]
    async fn the_pacer_releases_every_arrival_on_time_and_stops_at_the_end() {
        let start = Instant::now();
        let end = start + Duration::from_millis(300);
        let schedule = Schedule::new(ArrivalProcess::Constant, 100.0, 0);
        let (_pacer, mut arrivals) = Pacer::start(schedule, start, end).expect("pacer thread");
        let mut released = Vec::new();
        while let Some(intended) = arrivals.recv().await {
            assert!(Instant::now() >= intended, "released before its time");
            released.push(intended - start);
        }
        assert_eq!(released.len(), 29, "arrivals at 10 ms .. 290 ms");
        assert_eq!(released[0], Duration::from_millis(10));
    }

    /// A pacer with no arrivals, serving its timer only.
    fn timer_only_pacer() -> Pacer {
        let now = Instant::now();
        let schedule = Schedule::new(ArrivalProcess::Constant, 1.0, 0);
        Pacer::start(schedule, now, now).expect("pacer thread").0
    }

    #[tokio::test]
    async fn timer_sleepers_wake_at_their_deadlines_in_order() {
        let pacer = timer_only_pacer();
        let start = Instant::now();
        let timer = pacer.timer();
        // The pacer first parks towards the far deadline; the nearer ones,
        // registered later, must wake it.
        let deadlines = [400, 100, 250, 30].map(|ms| start + Duration::from_millis(ms));
        let woken = futures::future::join_all(deadlines.iter().map(|deadline| {
            let timer = timer.clone();
            async move {
                timer.sleep_until(*deadline).await;
                Instant::now()
            }
        }))
        .await;
        for (deadline, woken) in deadlines.iter().zip(&woken) {
            assert!(woken >= deadline, "woken before its deadline");
        }
        let mut by_deadline: Vec<_> = deadlines.iter().zip(&woken).collect();
        by_deadline.sort();
        assert!(
            by_deadline.windows(2).all(|pair| pair[0].1 <= pair[1].1),
            "woken out of deadline order: {by_deadline:?}"
        );
        let past = Instant::now() - Duration::from_secs(1);
        assert!(
            timer.sleep_until(past).now_or_never().is_some(),
            "a past deadline waits"
        );
    }

    #[tokio::test]
    async fn stopping_the_pacer_ends_pending_sleeps() {
        let pacer = timer_only_pacer();
        let timer = pacer.timer();
        let sleeping = tokio::spawn(async move {
            timer
                .sleep_until(Instant::now() + Duration::from_secs(3600))
                .await;
        });
        let registered = async {
            while pacer.shared.sleepers.lock().is_empty() {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), registered)
            .await
            .expect("the sleeper is queued");
        pacer.stop();
        tokio::time::timeout(Duration::from_secs(10), sleeping)
            .await
            .expect("the sleep ends when the pacer stops")
            .unwrap();
    }
}
