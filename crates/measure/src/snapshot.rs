//! Snapshots: a run's raw measurements, mergeable across processes.
//!
//! A snapshot keeps histograms rather than percentiles, so the coordinator of
//! a distributed run (one `kstress worker` pod per index) can add the
//! workers' snapshots and report percentiles that are exact for the whole
//! run. Snapshots serialize to JSON with histograms in base64.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::histogram::LatencyHistogram;
use crate::record::Class;

/// Everything measured in one run (or several merged runs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Wall-clock start; second 0 of the time series begins here.
    pub started_at: jiff::Timestamp,
    /// From the start to when the snapshot was taken.
    pub duration: Duration,
    /// Totals per class, in the measurement's class order.
    pub classes: Vec<ClassSnapshot>,
    /// `series[second][class]`: one cell per class for every second.
    pub series: Vec<Vec<SeriesCell>>,
}

/// One class's totals over the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassSnapshot {
    /// The class measured.
    pub class: Class,
    /// Latency of every completed request, failed ones included.
    pub latency: LatencyHistogram,
    /// Failed requests by HTTP status or reason.
    pub errors_by_code: BTreeMap<String, u64>,
    /// How late open-loop requests started, when the driver scheduled them.
    pub start_lag: Option<LatencyHistogram>,
    /// When the class was active, in seconds since the run's start: from
    /// its first request's start to its last request's end. A class that
    /// ran in one phase of a run (seeding, one scenario job) is rated over
    /// this window, not over the whole run.
    #[serde(default)]
    pub active_s: Option<[f64; 2]>,
}

impl ClassSnapshot {
    /// Failed requests over all codes.
    pub fn errors(&self) -> u64 {
        self.errors_by_code.values().sum()
    }

    fn merge(&mut self, other: &ClassSnapshot) {
        self.latency.merge(&other.latency);
        for (code, n) in &other.errors_by_code {
            *self.errors_by_code.entry(code.clone()).or_insert(0) += n;
        }
        self.active_s = match (self.active_s, other.active_s) {
            (Some([a, b]), Some([c, d])) => Some([a.min(c), b.max(d)]),
            (one, other) => one.or(other),
        };
        if let Some(lag) = &other.start_lag {
            self.start_lag
                .get_or_insert_with(LatencyHistogram::new)
                .merge(lag);
        }
    }
}

/// One class's requests that completed within one second.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesCell {
    /// Completed requests, failed ones included.
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// Their latencies (1% precision); absent when there were none.
    pub latency: Option<LatencyHistogram>,
}

impl SeriesCell {
    pub(crate) fn record(&mut self, latency: Duration, error: bool) {
        self.requests += 1;
        self.errors += u64::from(error);
        self.latency
            .get_or_insert_with(LatencyHistogram::coarse)
            .record(latency);
    }

    pub(crate) fn merge(&mut self, other: &SeriesCell) {
        self.requests += other.requests;
        self.errors += other.errors;
        if let Some(latency) = &other.latency {
            match &mut self.latency {
                Some(mine) => mine.merge(latency),
                None => self.latency = Some(latency.clone()),
            }
        }
    }

    pub(crate) fn reset(&mut self) {
        self.requests = 0;
        self.errors = 0;
        if let Some(latency) = &mut self.latency {
            latency.reset();
        }
    }
}

impl Snapshot {
    /// Adds another run's measurements, e.g. a distributed worker's.
    ///
    /// Classes are matched by name (a class only one side has is kept); the
    /// time series are aligned on whole seconds of wall-clock time, so
    /// workers started at different moments line up.
    pub fn merge(&mut self, other: &Snapshot) -> Result<(), Error> {
        let base = self.started_at.min(other.started_at);
        let offset = |ts: jiff::Timestamp| ts.duration_since(base).unsigned_abs();
        let (self_offset, other_offset) = (offset(self.started_at), offset(other.started_at));
        let end = (self_offset + self.duration).max(other_offset + other.duration);

        let conflict = other.classes.iter().find(|theirs| {
            self.classes
                .iter()
                .any(|c| c.class.name == theirs.class.name && c.class.kind != theirs.class.kind)
        });
        if let Some(theirs) = conflict {
            return Err(Error::ClassMismatch(theirs.class.name.clone()));
        }

        let mut columns = Vec::with_capacity(other.classes.len());
        for theirs in &other.classes {
            let column = match self
                .classes
                .iter()
                .position(|c| c.class.name == theirs.class.name)
            {
                Some(i) => {
                    self.classes[i].merge(theirs);
                    i
                }
                None => {
                    self.classes.push(theirs.clone());
                    self.classes.len() - 1
                }
            };
            columns.push(column);
        }

        let classes = self.classes.len();
        let mut series = vec![Vec::new(); self_offset.as_secs() as usize];
        series.append(&mut self.series);
        let other_start = other_offset.as_secs() as usize;
        let rows = series.len().max(other_start + other.series.len());
        series.resize_with(rows, Vec::new);
        for row in &mut series {
            row.resize_with(classes, SeriesCell::default);
        }
        for (second, cells) in other.series.iter().enumerate() {
            for (cell, &column) in cells.iter().zip(&columns) {
                series[other_start + second][column].merge(cell);
            }
        }

        self.started_at = base;
        self.duration = end;
        self.series = series;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Kind;

    fn cell(requests: u64, latency_ms: u64) -> SeriesCell {
        let mut cell = SeriesCell::default();
        for _ in 0..requests {
            cell.record(Duration::from_millis(latency_ms), false);
        }
        cell
    }

    fn snapshot(start_s: i64, class: &str, latency_ms: u64, seconds: u64) -> Snapshot {
        let mut latency = LatencyHistogram::new();
        for _ in 0..seconds {
            latency.record(Duration::from_millis(latency_ms));
        }
        Snapshot {
            started_at: jiff::Timestamp::from_second(1_800_000_000 + start_s).unwrap(),
            duration: Duration::from_secs(seconds),
            classes: vec![ClassSnapshot {
                class: Class::new(class, Kind::Read),
                latency,
                errors_by_code: BTreeMap::from([("500".to_owned(), 1)]),
                start_lag: None,
                active_s: None,
            }],
            series: (0..seconds).map(|_| vec![cell(1, latency_ms)]).collect(),
        }
    }

    #[test]
    fn merging_aligns_workers_on_wall_clock_seconds() {
        let mut first = snapshot(0, "get", 1, 3);
        let second = snapshot(2, "get", 9, 3);
        first.merge(&second).unwrap();
        assert_eq!(first.duration, Duration::from_secs(5));
        assert_eq!(first.classes.len(), 1);
        assert_eq!(first.classes[0].latency.count(), 6);
        assert_eq!(first.classes[0].errors(), 2);
        let per_second: Vec<u64> = first.series.iter().map(|row| row[0].requests).collect();
        assert_eq!(per_second, [1, 1, 2, 1, 1]);
        let busy = first.series[2][0].latency.as_ref().unwrap();
        assert_eq!(busy.count(), 2);
    }

    #[test]
    fn merging_keeps_classes_only_one_side_has() {
        let mut first = snapshot(3, "get", 1, 2);
        let second = snapshot(0, "list", 1, 2);
        first.merge(&second).unwrap();
        assert_eq!(first.started_at, second.started_at);
        let names: Vec<&str> = first
            .classes
            .iter()
            .map(|c| c.class.name.as_str())
            .collect();
        assert_eq!(names, ["get", "list"]);
        assert!(first.series.iter().all(|row| row.len() == 2));
        assert_eq!(first.series[0][1].requests, 1);
        assert_eq!(first.series[3][0].requests, 1);
        assert_eq!(first.series[2][0].requests + first.series[2][1].requests, 0);
    }

    #[test]
    fn merging_rejects_a_class_of_another_kind() {
        let mut first = snapshot(0, "get", 1, 1);
        let mut second = snapshot(0, "get", 1, 1);
        second.classes[0].class.kind = Kind::Mutating;
        assert!(matches!(first.merge(&second), Err(Error::ClassMismatch(name)) if name == "get"));
    }

    #[test]
    fn snapshots_round_trip_through_json() {
        let original = snapshot(0, "get", 4, 2);
        let json = serde_json::to_string(&original).unwrap();
        let back: Snapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, original);
    }
}
