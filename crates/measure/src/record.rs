//! Recording: many workers time requests into one run without losing any.
//!
//! Each worker owns a [`Recorder`] whose buffer only it normally touches, so
//! the hot path takes an uncontended lock. The [`Measurement`] keeps every
//! live buffer registered; a buffer whose last `Recorder` is dropped (a
//! worker that finished, or whose task was cancelled on Ctrl-C) is folded
//! into the run's totals under the same lock that [`Measurement::snapshot`]
//! takes, so each sample is counted exactly once whatever the interleaving.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::histogram::{LatencyHistogram, REFERENCE_BUCKETS_MS, micros};
use crate::snapshot::{ClassSnapshot, SeriesCell, Snapshot};

/// What kind of API call an operation class is, which decides the upstream
/// latency SLO it is held to and the reference metric name it reports under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Create, update, patch or delete of a single object.
    Mutating,
    /// Get of a single object.
    Read,
    /// List within one namespace.
    ListNamespaced,
    /// List across all namespaces (or of a cluster-scoped resource).
    ListCluster,
    /// Anything that is not one API call, e.g. watch notification or work
    /// queue latency; no API SLO applies.
    Other,
}

impl Kind {
    /// The upstream API call latency SLO for the 99th percentile, if any.
    pub fn slo(self) -> Option<Duration> {
        match self {
            Kind::Mutating | Kind::Read => Some(Duration::from_secs(1)),
            Kind::ListNamespaced => Some(Duration::from_secs(5)),
            Kind::ListCluster => Some(Duration::from_secs(30)),
            Kind::Other => None,
        }
    }

    /// The stable lowercase name used in results.json and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Mutating => "mutating",
            Kind::Read => "read",
            Kind::ListNamespaced => "list-namespaced",
            Kind::ListCluster => "list-cluster",
            Kind::Other => "other",
        }
    }
}

/// An operation class: the unit every figure is reported per (for
/// pod-stress `write`, `get` and `list`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Class {
    /// Name in tables, results.json and the `class` metric label.
    pub name: String,
    /// Which SLO and reference metric applies.
    pub kind: Kind,
}

impl Class {
    /// A class called `name` of the given kind.
    pub fn new(name: impl Into<String>, kind: Kind) -> Self {
        Self {
            name: name.into(),
            kind,
        }
    }
}

/// A class's index in its [`Measurement`], resolved once so that recording
/// does not look names up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClassId(usize);

/// Why a request failed, as it is counted in `errors_by_code`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    /// An HTTP status from the server (e.g. 409, 429, 500).
    Status(u16),
    /// A failure without a status, e.g. `timeout` or `connect`.
    Other(Cow<'static, str>),
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Status(code) => write!(f, "{code}"),
            ErrorCode::Other(reason) => f.write_str(reason),
        }
    }
}

/// How a request ended. Failed requests still count towards latency: a
/// timeout that took 30 s is part of what a client saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The request did what it was meant to.
    Ok,
    /// The request failed.
    Error(ErrorCode),
}

impl Outcome {
    /// A failure with an HTTP status.
    pub fn status(code: u16) -> Self {
        Outcome::Error(ErrorCode::Status(code))
    }

    /// A failure without a status, e.g. `Outcome::error("timeout")`.
    pub fn error(reason: impl Into<Cow<'static, str>>) -> Self {
        Outcome::Error(ErrorCode::Other(reason.into()))
    }

    fn is_error(&self) -> bool {
        matches!(self, Outcome::Error(_))
    }
}

/// Running totals across all workers, cheap to read at any moment (for the
/// progress bar and live metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveTotals {
    /// Completed requests, failed ones included.
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
}

/// The measurement of one run: the classes, the clock the time series is
/// aligned to, and every recorder's samples.
///
/// Clones share the same run.
#[derive(Clone)]
pub struct Measurement {
    shared: Arc<Shared>,
}

impl fmt::Debug for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Measurement")
            .field("classes", &self.shared.classes)
            .field("started_at", &self.shared.started_at)
            .finish_non_exhaustive()
    }
}

impl Measurement {
    /// Starts measuring now with the given operation classes.
    pub fn new(classes: impl IntoIterator<Item = Class>) -> Result<Self, Error> {
        let classes: Vec<Class> = classes.into_iter().collect();
        for (i, class) in classes.iter().enumerate() {
            if classes[..i].iter().any(|c| c.name == class.name) {
                return Err(Error::DuplicateClass(class.name.clone()));
            }
        }
        let count = classes.len();
        Ok(Self {
            shared: Arc::new(Shared {
                live: classes.iter().map(|_| LiveClass::default()).collect(),
                classes,
                started: Instant::now(),
                started_at: jiff::Timestamp::now(),
                state: Mutex::new(State {
                    next_id: 0,
                    buffers: HashMap::new(),
                    retired: Totals::new(count),
                }),
                series: Mutex::new(Series::default()),
                phase: Mutex::new(String::new()),
            }),
        })
    }

    /// Names what the run is doing now (a scenario's job and its
    /// progress), for the progress line.
    pub fn set_phase(&self, phase: impl Into<String>) {
        *self.shared.phase.lock() = phase.into();
    }

    /// What [`set_phase`](Self::set_phase) last said.
    pub fn phase(&self) -> String {
        self.shared.phase.lock().clone()
    }

    /// Resolves a class name to the id recorders take.
    pub fn class(&self, name: &str) -> Result<ClassId, Error> {
        self.shared
            .classes
            .iter()
            .position(|c| c.name == name)
            .map(ClassId)
            .ok_or_else(|| Error::UnknownClass(name.to_owned()))
    }

    /// The classes, in the order given to [`new`](Self::new).
    pub fn classes(&self) -> &[Class] {
        &self.shared.classes
    }

    /// A recorder with its own buffer; create one per worker task.
    pub fn recorder(&self) -> Recorder {
        let buffer = Arc::new(Mutex::new(Buffer::new(self.shared.classes.len())));
        let id = {
            let mut state = self.shared.state.lock();
            let id = state.next_id;
            state.next_id += 1;
            state.buffers.insert(id, Arc::clone(&buffer));
            id
        };
        Recorder {
            handle: Arc::new(Handle {
                id,
                shared: Arc::clone(&self.shared),
                buffer,
            }),
        }
    }

    /// Requests and errors so far, over all classes.
    pub fn live(&self) -> LiveTotals {
        self.shared
            .live
            .iter()
            .fold(LiveTotals::default(), |total, class| LiveTotals {
                requests: total.requests + class.requests(),
                errors: total.errors + class.failure.load(Ordering::Relaxed),
            })
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.shared.started.elapsed()
    }

    /// Everything recorded so far, merged exactly.
    ///
    /// Call it once the workers have stopped (joined or aborted; dropping a
    /// recorder loses nothing) to get the run's final figures. Requests that
    /// complete after the call are not part of the returned snapshot.
    pub fn snapshot(&self) -> Snapshot {
        let shared = &self.shared;
        let duration = shared.started.elapsed();
        let totals = {
            let state = shared.state.lock();
            let mut totals = state.retired.clone();
            for buffer in state.buffers.values() {
                let mut buffer = buffer.lock();
                totals.merge(&buffer.totals);
                if let Some(window) = buffer.window.take() {
                    shared.series.lock().absorb(&window);
                }
            }
            totals
        };
        let classes = shared.classes.len();
        let series = shared
            .series
            .lock()
            .seconds
            .iter()
            .map(|cells| {
                let mut cells = cells.clone();
                cells.resize_with(classes, SeriesCell::default);
                cells
            })
            .collect();
        Snapshot {
            started_at: shared.started_at,
            duration,
            classes: shared
                .classes
                .iter()
                .zip(totals.classes)
                .map(|(class, totals)| ClassSnapshot {
                    class: class.clone(),
                    latency: totals.latency,
                    errors_by_code: totals
                        .errors
                        .into_iter()
                        .map(|(code, n)| (code.to_string(), n))
                        .fold(BTreeMap::new(), |mut map, (code, n)| {
                            *map.entry(code).or_insert(0) += n;
                            map
                        }),
                    start_lag: totals.start_lag,
                    active_s: None,
                })
                .zip(&shared.live)
                .map(|(mut snapshot, live)| {
                    snapshot.active_s = live.active_s();
                    snapshot
                })
                .collect(),
            series,
        }
    }

    pub(crate) fn live_classes(&self) -> impl Iterator<Item = (&Class, &LiveClass)> {
        self.shared.classes.iter().zip(&self.shared.live)
    }
}

/// A worker's handle for recording requests.
///
/// Cloning is cheap and the clones share one buffer, which suits short-lived
/// tasks spawned by one worker (an open-loop arrival per task); long-lived
/// concurrent workers should each call [`Measurement::recorder`] so that
/// they never contend. When the last clone is dropped its samples move into
/// the run's totals: there is nothing to flush.
#[derive(Clone)]
pub struct Recorder {
    handle: Arc<Handle>,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("id", &self.handle.id)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Records a request that just completed after `latency`.
    pub fn record(&self, class: ClassId, latency: Duration, outcome: Outcome) {
        self.record_at(class, latency, None, Instant::now(), &outcome);
    }

    /// Records an open-loop request, timed from when it was *meant* to start
    /// so that a stalled server cannot hide behind a late client
    /// (coordinated omission). The lag between `intended` and `started` goes
    /// into the class's start-lag histogram.
    pub fn record_scheduled(
        &self,
        class: ClassId,
        intended: Instant,
        started: Instant,
        finished: Instant,
        outcome: Outcome,
    ) {
        let latency = finished.saturating_duration_since(intended);
        let lag = started.saturating_duration_since(intended);
        self.record_at(class, latency, Some(lag), finished, &outcome);
    }

    fn record_at(
        &self,
        class: ClassId,
        latency: Duration,
        lag: Option<Duration>,
        finished: Instant,
        outcome: &Outcome,
    ) {
        let shared = &self.handle.shared;
        let since_start = finished.saturating_duration_since(shared.started);
        shared.live[class.0].observe(latency, outcome.is_error(), since_start);
        let second = since_start.as_secs();
        let mut buffer = self.handle.buffer.lock();
        buffer.totals.classes[class.0].record(latency, lag, outcome);
        buffer.record_series(&shared.series, class.0, second, latency, outcome.is_error());
    }
}

struct Handle {
    id: u64,
    shared: Arc<Shared>,
    buffer: Arc<Mutex<Buffer>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        state.buffers.remove(&self.id);
        let mut buffer = self.buffer.lock();
        state.retired.merge(&buffer.totals);
        if let Some(window) = buffer.window.take() {
            self.shared.series.lock().absorb(&window);
        }
    }
}

/// Shared run state. Locks are always taken in the order
/// `state` -> a buffer -> `series`.
struct Shared {
    classes: Vec<Class>,
    live: Vec<LiveClass>,
    started: Instant,
    started_at: jiff::Timestamp,
    state: Mutex<State>,
    series: Mutex<Series>,
    phase: Mutex<String>,
}

struct State {
    next_id: u64,
    buffers: HashMap<u64, Arc<Mutex<Buffer>>>,
    retired: Totals,
}

/// Lock-free counters per class for live views: request counts and the
/// reference's Prometheus buckets.
#[derive(Default)]
pub(crate) struct LiveClass {
    pub(crate) success: AtomicU64,
    pub(crate) failure: AtomicU64,
    sum_us: AtomicU64,
    /// `u64::MAX` minus the earliest request start (nanoseconds since the
    /// run's start), so that 0 means none and `fetch_max` keeps the
    /// earliest.
    first_start: AtomicU64,
    /// The latest request end plus one (nanoseconds since the run's
    /// start); 0 means none.
    last_end: AtomicU64,
    /// Non-cumulative counts per [`REFERENCE_BUCKETS_MS`] bound; samples
    /// above the last bound are `requests - sum(buckets)`.
    buckets: [AtomicU64; REFERENCE_BUCKETS_MS.len()],
}

impl LiveClass {
    fn observe(&self, latency: Duration, error: bool, finished: Duration) {
        let end = u64::try_from(finished.as_nanos()).unwrap_or(u64::MAX - 1);
        let start = end.saturating_sub(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
        self.first_start
            .fetch_max(u64::MAX - start, Ordering::Relaxed);
        self.last_end.fetch_max(end + 1, Ordering::Relaxed);
        let us = micros(latency);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        let bucket = REFERENCE_BUCKETS_MS
            .iter()
            .position(|&le_ms| us as f64 <= le_ms * 1000.0);
        if let Some(bucket) = bucket {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        let counter = if error { &self.failure } else { &self.success };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The window the class was active in, as seconds since the run's
    /// start.
    fn active_s(&self) -> Option<[f64; 2]> {
        let first = self.first_start.load(Ordering::Relaxed);
        let last = self.last_end.load(Ordering::Relaxed);
        (first > 0 && last > 0).then(|| [(u64::MAX - first) as f64 / 1e9, (last - 1) as f64 / 1e9])
    }

    pub(crate) fn requests(&self) -> u64 {
        self.success.load(Ordering::Relaxed) + self.failure.load(Ordering::Relaxed)
    }

    pub(crate) fn sum_ms(&self) -> f64 {
        self.sum_us.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// `(upper bound, non-cumulative count)` pairs ending with `+Inf`
    /// (`f64::MAX`), the form Prometheus encoders take.
    pub(crate) fn buckets(&self) -> (u64, Vec<(f64, u64)>) {
        let requests = self.requests();
        let mut pairs: Vec<(f64, u64)> = REFERENCE_BUCKETS_MS
            .iter()
            .zip(&self.buckets)
            .map(|(&le, count)| (le, count.load(Ordering::Relaxed)))
            .collect();
        let below: u64 = pairs.iter().map(|(_, n)| n).sum();
        pairs.push((f64::MAX, requests.saturating_sub(below)));
        (requests.max(below), pairs)
    }
}

/// One worker's samples since its start.
struct Buffer {
    totals: Totals,
    window: Option<Window>,
}

impl Buffer {
    fn new(classes: usize) -> Self {
        Self {
            totals: Totals::new(classes),
            window: None,
        }
    }

    /// Adds a sample to the current second's window, handing the previous
    /// window to the shared series when a new second starts.
    fn record_series(
        &mut self,
        series: &Mutex<Series>,
        class: usize,
        second: u64,
        latency: Duration,
        error: bool,
    ) {
        match &mut self.window {
            Some(window) if window.second == second => window.cells[class].record(latency, error),
            Some(window) if window.second > second => {
                series.lock().cell(second, class).record(latency, error);
            }
            Some(window) => {
                series.lock().absorb(window);
                window.reset(second);
                window.cells[class].record(latency, error);
            }
            None => {
                let mut window = Window::new(second, self.totals.classes.len());
                window.cells[class].record(latency, error);
                self.window = Some(window);
            }
        }
    }
}

#[derive(Clone)]
struct Totals {
    classes: Vec<ClassTotals>,
}

impl Totals {
    fn new(classes: usize) -> Self {
        Self {
            classes: (0..classes).map(|_| ClassTotals::default()).collect(),
        }
    }

    fn merge(&mut self, other: &Totals) {
        for (mine, theirs) in self.classes.iter_mut().zip(&other.classes) {
            mine.merge(theirs);
        }
    }
}

#[derive(Clone, Default)]
struct ClassTotals {
    latency: LatencyHistogram,
    errors: HashMap<ErrorCode, u64>,
    start_lag: Option<LatencyHistogram>,
}

impl ClassTotals {
    fn record(&mut self, latency: Duration, lag: Option<Duration>, outcome: &Outcome) {
        self.latency.record(latency);
        if let Some(lag) = lag {
            self.start_lag
                .get_or_insert_with(LatencyHistogram::new)
                .record(lag);
        }
        if let Outcome::Error(code) = outcome {
            match self.errors.get_mut(code) {
                Some(n) => *n += 1,
                None => {
                    self.errors.insert(code.clone(), 1);
                }
            }
        }
    }

    fn merge(&mut self, other: &ClassTotals) {
        self.latency.merge(&other.latency);
        for (code, n) in &other.errors {
            *self.errors.entry(code.clone()).or_insert(0) += n;
        }
        if let Some(lag) = &other.start_lag {
            self.start_lag
                .get_or_insert_with(LatencyHistogram::new)
                .merge(lag);
        }
    }
}

/// One worker's samples within one second of the run.
struct Window {
    second: u64,
    cells: Vec<SeriesCell>,
}

impl Window {
    fn new(second: u64, classes: usize) -> Self {
        Self {
            second,
            cells: vec![SeriesCell::default(); classes],
        }
    }

    fn reset(&mut self, second: u64) {
        self.second = second;
        for cell in &mut self.cells {
            cell.reset();
        }
    }
}

/// The run's time series: `seconds[s][class]`.
#[derive(Default)]
struct Series {
    seconds: Vec<Vec<SeriesCell>>,
}

impl Series {
    fn cell(&mut self, second: u64, class: usize) -> &mut SeriesCell {
        &mut self.second(second, class + 1)[class]
    }

    fn second(&mut self, second: u64, classes: usize) -> &mut Vec<SeriesCell> {
        let index = usize::try_from(second).unwrap_or(usize::MAX);
        if self.seconds.len() <= index {
            self.seconds.resize_with(index + 1, Vec::new);
        }
        let cells = &mut self.seconds[index];
        if cells.len() < classes {
            cells.resize_with(classes, SeriesCell::default);
        }
        cells
    }

    fn absorb(&mut self, window: &Window) {
        let cells = self.second(window.second, window.cells.len());
        for (mine, theirs) in cells.iter_mut().zip(&window.cells) {
            mine.merge(theirs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement() -> Measurement {
        Measurement::new([
            Class::new("write", Kind::Mutating),
            Class::new("get", Kind::Read),
        ])
        .unwrap()
    }

    #[test]
    fn duplicate_and_unknown_classes_are_errors() {
        let duplicate =
            Measurement::new([Class::new("get", Kind::Read), Class::new("get", Kind::Read)]);
        assert!(matches!(duplicate, Err(Error::DuplicateClass(name)) if name == "get"));
        assert!(matches!(
            measurement().class("list"),
            Err(Error::UnknownClass(name)) if name == "list"
        ));
    }

    #[test]
    fn dropped_and_live_recorders_are_both_counted() {
        let m = measurement();
        let write = m.class("write").unwrap();
        let get = m.class("get").unwrap();
        let kept = m.recorder();
        kept.record(write, Duration::from_millis(2), Outcome::Ok);
        {
            let gone = m.recorder();
            let clone = gone.clone();
            gone.record(get, Duration::from_millis(1), Outcome::status(404));
            clone.record(get, Duration::from_millis(1), Outcome::error("timeout"));
            clone.record(get, Duration::from_millis(1), Outcome::error("timeout"));
        }
        let snapshot = m.snapshot();
        assert_eq!(snapshot.classes[0].latency.count(), 1);
        assert_eq!(snapshot.classes[1].latency.count(), 3);
        let errors = &snapshot.classes[1].errors_by_code;
        assert_eq!(errors.get("404"), Some(&1));
        assert_eq!(errors.get("timeout"), Some(&2));
        assert_eq!(
            m.live(),
            LiveTotals {
                requests: 4,
                errors: 3
            }
        );

        // A second snapshot counts everything once more, not twice.
        kept.record(write, Duration::from_millis(2), Outcome::Ok);
        let again = m.snapshot();
        assert_eq!(again.classes[0].latency.count(), 2);
        let series_total: u64 = again.series.iter().flatten().map(|c| c.requests).sum();
        assert_eq!(series_total, 5);
    }

    #[test]
    fn scheduled_requests_are_timed_from_their_intended_start() {
        let m = measurement();
        let write = m.class("write").unwrap();
        let intended = Instant::now();
        let started = intended + Duration::from_millis(3);
        let finished = intended + Duration::from_millis(10);
        m.recorder()
            .record_scheduled(write, intended, started, finished, Outcome::Ok);
        let snapshot = m.snapshot();
        let class = &snapshot.classes[0];
        // Within the histogram's 0.1% precision.
        let max = class.latency.max();
        assert!(max >= Duration::from_millis(10) && max <= Duration::from_micros(10_010));
        let lag = class.start_lag.as_ref().unwrap();
        assert_eq!(lag.count(), 1);
        assert!(lag.max() >= Duration::from_millis(3) && lag.max() <= Duration::from_micros(3_003));
        assert!(snapshot.classes[1].start_lag.is_none());
    }

    #[test]
    fn samples_land_in_the_second_they_completed() {
        let m = measurement();
        let write = m.class("write").unwrap();
        let get = m.class("get").unwrap();
        let recorder = m.recorder();
        let start = m.shared.started;
        let at = |ms: u64| start + Duration::from_millis(ms);
        let ok = Outcome::Ok;
        // Second 0: two writes; second 2: one write and one failed get,
        // recorded out of order across the window boundary; second 1 empty.
        recorder.record_scheduled(write, at(100), at(100), at(200), ok.clone());
        recorder.record_scheduled(write, at(2_100), at(2_100), at(2_500), ok.clone());
        recorder.record_scheduled(write, at(0), at(0), at(900), ok.clone());
        recorder.record_scheduled(get, at(2_000), at(2_000), at(2_999), Outcome::status(500));
        let other = m.recorder();
        other.record_scheduled(write, at(0), at(0), at(999), ok);
        drop(other);

        let series = m.snapshot().series;
        assert_eq!(series.len(), 3);
        let requests = |s: usize, c: usize| series[s][c].requests;
        assert_eq!(requests(0, 0), 3);
        assert_eq!(requests(0, 1), 0);
        assert_eq!(requests(1, 0), 0);
        assert_eq!(requests(2, 0), 1);
        assert_eq!(requests(2, 1), 1);
        assert_eq!(series[2][1].errors, 1);
        let p100 = series[0][0].latency.as_ref().unwrap().max();
        assert!(p100 >= Duration::from_millis(990), "{p100:?}");
    }

    #[test]
    fn classes_know_when_they_were_active() {
        let measurement =
            Measurement::new([Class::new("a", Kind::Read), Class::new("b", Kind::Read)]).unwrap();
        let recorder = measurement.recorder();
        let a = measurement.class("a").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        recorder.record(a, Duration::from_millis(10), Outcome::Ok);
        let snapshot = measurement.snapshot();
        let [start, end] = snapshot.classes[0].active_s.expect("a was active");
        assert!((0.005..0.025).contains(&start), "{start}");
        assert!(end >= start + 0.009 && end < 1.0, "{start}..{end}");
        assert_eq!(snapshot.classes[1].active_s, None, "b never ran");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_sample_is_lost_across_concurrent_recorders() {
        let m = measurement();
        let write = m.class("write").unwrap();
        let get = m.class("get").unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..32u64 {
            let recorder = m.recorder();
            tasks.spawn(async move {
                for i in 0..10_000u64 {
                    let class = if i % 4 == 0 { get } else { write };
                    let outcome = if i % 100 == 0 {
                        Outcome::status(429)
                    } else {
                        Outcome::Ok
                    };
                    recorder.record(class, Duration::from_micros(task * 100 + i % 1000), outcome);
                    if i % 1_000 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.unwrap();
        }
        let snapshot = m.snapshot();
        assert_eq!(snapshot.classes[0].latency.count(), 32 * 7_500);
        assert_eq!(snapshot.classes[1].latency.count(), 32 * 2_500);
        let errors: u64 = snapshot
            .classes
            .iter()
            .flat_map(|c| c.errors_by_code.values())
            .sum();
        assert_eq!(errors, 32 * 100);
        let series_total: u64 = snapshot.series.iter().flatten().map(|c| c.requests).sum();
        assert_eq!(series_total, 320_000);
        assert_eq!(m.live().requests, 320_000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aborted_workers_lose_nothing() {
        let m = measurement();
        let get = m.class("get").unwrap();
        let done = Arc::new(AtomicU64::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let recorder = m.recorder();
            let done = Arc::clone(&done);
            tasks.spawn(async move {
                // Bounded, but far more than happens before the abort.
                for _ in 0..50_000_000u64 {
                    recorder.record(get, Duration::from_micros(5), Outcome::Ok);
                    done.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            });
        }
        let progressed = tokio::time::timeout(Duration::from_secs(30), async {
            while done.load(Ordering::SeqCst) < 10_000 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(progressed.is_ok(), "workers recorded nothing within 30 s");
        // Like Ctrl-C: cancel every worker mid-loop, then report.
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        let snapshot = m.snapshot();
        assert_eq!(
            snapshot.classes[1].latency.count(),
            done.load(Ordering::SeqCst)
        );
        assert!(
            m.shared.state.lock().buffers.is_empty(),
            "dropped buffers are retired"
        );
    }

    #[test]
    fn live_buckets_follow_the_reference_bounds() {
        let m = measurement();
        let write = m.class("write").unwrap();
        let recorder = m.recorder();
        for us in [400, 500, 501, 5_000_000] {
            recorder.record(write, Duration::from_micros(us), Outcome::Ok);
        }
        let (_, live) = m.live_classes().next().unwrap();
        let (count, buckets) = live.buckets();
        assert_eq!(count, 4);
        assert_eq!(buckets.len(), 15);
        assert_eq!(buckets[0], (0.5, 2));
        assert_eq!(buckets[1], (1.0, 1));
        assert_eq!(buckets[14], (f64::MAX, 1));
    }
}
