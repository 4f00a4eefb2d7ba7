//! results.json: the stable, versioned record of a run.
//!
//! Tools compare runs by reading this file, so its shape only changes with
//! a new [`SCHEMA`] version. Every latency is in milliseconds; every class's
//! full histogram is included (base64, HDR V2 compressed) so that results
//! from several workers can be merged exactly later.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Error;
use crate::api_responsiveness::ApiResponsiveness;
use crate::histogram::{Bucket, LatencyHistogram, REFERENCE_BUCKETS_MS, millis};
use crate::pod_latency::{GateVerdict, PodLatencySummary};
use crate::record::Kind;
use crate::slo::{SloCheck, check_slos};
use crate::snapshot::{ClassSnapshot, Snapshot};

/// Identifies the results.json layout; bumped on incompatible changes.
pub const SCHEMA: &str = "kstress.results/v1";

/// File name of the results document inside `--output`.
pub const RESULTS_FILE: &str = "results.json";

/// What the driver knows about the run that the measurements do not.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    /// Scenario name, e.g. `pod-stress`.
    pub scenario: String,
    /// Where the load went, e.g. `embedded` or the API server URL.
    pub target: String,
    /// The driver's effective options, as it wants them recorded.
    pub config: Value,
    /// Requested arrival rate of an open-loop driver.
    pub target_rate_per_s: Option<f64>,
    /// Arrival rate the driver achieved, when it measures that itself (its
    /// arrivals over its arrival window); without it, every scheduled
    /// request over the whole run counts.
    pub achieved_rate_per_s: Option<f64>,
    /// Driver-specific sections (e.g. watch events received, 410s
    /// recovered), written under `extra`.
    pub extra: BTreeMap<String, Value>,
    /// Pod startup latency, when it was measured.
    pub pod_latency: Option<PodLatencySummary>,
    /// The server's own latency of the run's calls, when it was measured.
    pub api_responsiveness: Option<ApiResponsiveness>,
    /// Verdicts of the run's gates.
    pub gates: Vec<GateVerdict>,
}

/// The results.json document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Scenario name.
    pub scenario: String,
    /// Where the load went.
    pub target: String,
    /// The driver's options.
    pub config: Value,
    /// Start of the run, RFC 3339.
    pub started_at: String,
    /// Length of the run in seconds.
    pub duration_s: f64,
    /// Summary per operation class.
    pub operations: BTreeMap<String, Summary>,
    /// Per-second figures per class.
    pub timeseries: Timeseries,
    /// Upstream API latency SLO checks, one per class that has an SLO and
    /// at least one request.
    pub slo: Vec<SloCheck>,
    /// Target versus achieved rate and start lag, for open-loop drivers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_loop: Option<OpenLoop>,
    /// Driver-specific sections.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Value>,
    /// Pod startup latency, when it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_latency: Option<PodLatencySummary>,
    /// The server's own latency of the run's calls, when it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_responsiveness: Option<ApiResponsiveness>,
    /// Verdicts of the run's gates (measurement thresholds).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateVerdict>,
}

/// One operation class over the whole run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The class's kind (`mutating`, `read`, `list-namespaced`, ...).
    pub kind: Kind,
    /// Completed requests, failed ones included.
    pub count: u64,
    /// Failed requests.
    pub errors: u64,
    /// Failed requests by HTTP status or reason.
    pub errors_by_code: BTreeMap<String, u64>,
    /// Completed requests per second over the run.
    pub rate_per_s: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// 99.99th percentile.
    pub p9999_ms: f64,
    /// Slowest request.
    pub max_ms: f64,
    /// Mean latency.
    pub mean_ms: f64,
    /// Cumulative counts at the pod-stress reference's Prometheus bucket
    /// bounds (0.5 ms x 2^k, 14 buckets), to the histogram's 0.1%
    /// precision; `count` is the `+Inf` bucket.
    pub buckets: Vec<Bucket>,
    /// The full latency histogram, for exact merging.
    pub histogram: LatencyHistogram,
}

/// Per-second figures, aligned on `started_at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timeseries {
    /// Width of one point; always 1.
    pub interval_s: u64,
    /// One point per second of the run for each class.
    pub operations: BTreeMap<String, Vec<Point>>,
}

/// One class in one second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Seconds since the start.
    pub second: u64,
    /// Requests completed in this second.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
    /// 99th percentile of those requests; null when there were none.
    pub p99_ms: Option<f64>,
}

/// How well an open-loop driver kept its schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenLoop {
    /// The requested arrival rate.
    pub target_rate_per_s: Option<f64>,
    /// Scheduled requests completed per second.
    pub achieved_rate_per_s: f64,
    /// Start lag (actual minus intended start) per class.
    pub start_lag: BTreeMap<String, LagSummary>,
}

/// Distribution of start lag for one class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LagSummary {
    /// Scheduled requests.
    pub count: u64,
    /// Median lag.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest lag.
    pub max_ms: f64,
}

impl Results {
    /// Summarizes a snapshot.
    pub fn new(info: RunInfo, snapshot: &Snapshot) -> Self {
        let duration_s = snapshot.duration.as_secs_f64();
        let operations = snapshot
            .classes
            .iter()
            .map(|class| (class.class.name.clone(), summarize(class, duration_s)))
            .collect();
        let timeseries = Timeseries {
            interval_s: 1,
            operations: snapshot
                .classes
                .iter()
                .enumerate()
                .map(|(i, class)| (class.class.name.clone(), points(snapshot, i)))
                .collect(),
        };
        Results {
            schema: SCHEMA.to_owned(),
            scenario: info.scenario,
            target: info.target,
            config: info.config,
            started_at: snapshot.started_at.to_string(),
            duration_s,
            operations,
            timeseries,
            slo: check_slos(snapshot),
            open_loop: open_loop(
                snapshot,
                info.target_rate_per_s,
                info.achieved_rate_per_s,
                duration_s,
            ),
            extra: info.extra,
            pod_latency: info.pod_latency,
            api_responsiveness: info.api_responsiveness,
            gates: info.gates,
        }
    }

    /// The gates that did not hold.
    pub fn failed_gates(&self) -> impl Iterator<Item = &GateVerdict> {
        self.gates.iter().filter(|gate| !gate.passed)
    }

    /// Writes `results.json` into `dir`, creating it; a reader never sees a
    /// half-written file.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, Error> {
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        write_atomically(dir, RESULTS_FILE, &json)
    }
}

fn summarize(class: &ClassSnapshot, duration_s: f64) -> Summary {
    let latency = &class.latency;
    let count = latency.count();
    let quantile = |q: f64| millis(latency.quantile(q));
    Summary {
        kind: class.class.kind,
        count,
        errors: class.errors(),
        errors_by_code: class.errors_by_code.clone(),
        rate_per_s: per_second(count, active_window(class).unwrap_or(duration_s)),
        p50_ms: quantile(0.5),
        p90_ms: quantile(0.9),
        p99_ms: quantile(0.99),
        p999_ms: quantile(0.999),
        p9999_ms: quantile(0.9999),
        max_ms: millis(latency.max()),
        mean_ms: millis(latency.mean()),
        buckets: latency.cumulative_buckets(&REFERENCE_BUCKETS_MS),
        histogram: latency.clone(),
    }
}

fn points(snapshot: &Snapshot, class: usize) -> Vec<Point> {
    snapshot
        .series
        .iter()
        .enumerate()
        .map(|(second, cells)| {
            let cell = cells.get(class);
            Point {
                second: second as u64,
                requests: cell.map_or(0, |c| c.requests),
                errors: cell.map_or(0, |c| c.errors),
                p99_ms: cell
                    .and_then(|c| c.latency.as_ref())
                    .filter(|latency| latency.count() > 0)
                    .map(|latency| millis(latency.quantile(0.99))),
            }
        })
        .collect()
}

fn open_loop(
    snapshot: &Snapshot,
    target: Option<f64>,
    achieved: Option<f64>,
    duration_s: f64,
) -> Option<OpenLoop> {
    let start_lag: BTreeMap<String, LagSummary> = snapshot
        .classes
        .iter()
        .filter_map(|class| {
            let lag = class.start_lag.as_ref()?;
            let summary = LagSummary {
                count: lag.count(),
                p50_ms: millis(lag.quantile(0.5)),
                p90_ms: millis(lag.quantile(0.9)),
                p99_ms: millis(lag.quantile(0.99)),
                p999_ms: millis(lag.quantile(0.999)),
                max_ms: millis(lag.max()),
            };
            Some((class.class.name.clone(), summary))
        })
        .collect();
    if start_lag.is_empty() && target.is_none() {
        return None;
    }
    let scheduled = start_lag.values().map(|lag| lag.count).sum();
    Some(OpenLoop {
        target_rate_per_s: target,
        achieved_rate_per_s: achieved.unwrap_or_else(|| per_second(scheduled, duration_s)),
        start_lag,
    })
}

/// The seconds a class was active, when that is known and long enough to
/// rate over: a burst shorter than a second is rated per second.
fn active_window(class: &ClassSnapshot) -> Option<f64> {
    class.active_s.map(|[start, end]| (end - start).max(1.0))
}

fn per_second(count: u64, duration_s: f64) -> f64 {
    if duration_s > 0.0 {
        count as f64 / duration_s
    } else {
        0.0
    }
}

/// Writes `name` into `dir` through a temporary file in the same directory
/// and a rename, so the file is either the old or the new content.
/// Creates `dir` and a temporary file in it, removed again: what
/// [`write_atomically`] needs to succeed, short of the final rename.
pub(crate) fn probe_dir(dir: &Path) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    Ok(())
}

pub(crate) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, Error> {
    use std::io::Write as _;

    let io = |source| Error::Io {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    #[cfg(unix)]
    {
        // Temporary files are private; results are meant to be shared.
        use std::os::unix::fs::PermissionsExt as _;
        let readable = std::fs::Permissions::from_mode(0o644);
        file.as_file().set_permissions(readable).map_err(io)?;
    }
    file.as_file().sync_all().map_err(io)?;
    let path = dir.join(name);
    file.persist(&path).map_err(|e| Error::Io {
        path: path.clone(),
        source: e.error,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::record::Class;
    use crate::snapshot::SeriesCell;

    fn class(name: &str, kind: Kind, latencies_ms: &[u64], lag: bool) -> ClassSnapshot {
        let mut latency = LatencyHistogram::new();
        for &ms in latencies_ms {
            latency.record(Duration::from_millis(ms));
        }
        ClassSnapshot {
            class: Class::new(name, kind),
            start_lag: lag.then(|| latency.clone()),
            active_s: None,
            latency,
            errors_by_code: BTreeMap::from([("409".to_owned(), 2)]),
        }
    }

    #[test]
    fn a_class_active_in_one_phase_is_rated_over_that_phase() {
        let mut seeding = class("seed-create", Kind::Mutating, &[1; 300], false);
        seeding.active_s = Some([0.5, 3.5]);
        assert_eq!(summarize(&seeding, 60.0).rate_per_s, 100.0);
        // A burst shorter than a second is rated per second.
        seeding.active_s = Some([1.0, 1.2]);
        assert_eq!(summarize(&seeding, 60.0).rate_per_s, 300.0);
        seeding.active_s = None;
        assert_eq!(summarize(&seeding, 60.0).rate_per_s, 5.0);
    }

    fn snapshot() -> Snapshot {
        let mut cell = SeriesCell::default();
        cell.record(Duration::from_millis(3), false);
        cell.record(Duration::from_millis(7), true);
        Snapshot {
            started_at: jiff::Timestamp::from_second(1_800_000_000).unwrap(),
            duration: Duration::from_secs(2),
            classes: vec![
                class("write", Kind::Mutating, &[1, 2, 3, 4], true),
                class("list", Kind::ListNamespaced, &[10, 20], false),
            ],
            series: vec![
                vec![cell, SeriesCell::default()],
                vec![SeriesCell::default(), SeriesCell::default()],
            ],
        }
    }

    fn info() -> RunInfo {
        RunInfo {
            scenario: "pod-stress".into(),
            target: "embedded".into(),
            config: serde_json::json!({"objects": 10}),
            target_rate_per_s: Some(3.0),
            achieved_rate_per_s: None,
            extra: BTreeMap::new(),
            ..RunInfo::default()
        }
    }

    #[test]
    fn results_json_has_every_key_with_its_type() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("nested/out");
        let path = Results::new(info(), &snapshot()).write(&out).unwrap();
        assert_eq!(path, out.join("results.json"));
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();

        assert_eq!(doc["schema"], SCHEMA);
        assert_eq!(doc["scenario"], "pod-stress");
        assert_eq!(doc["target"], "embedded");
        assert_eq!(doc["config"]["objects"], 10);
        let started = doc["started_at"].as_str().unwrap();
        assert!(started.parse::<jiff::Timestamp>().is_ok(), "{started}");
        assert_eq!(doc["duration_s"].as_f64(), Some(2.0));

        let write = &doc["operations"]["write"];
        assert_eq!(write["kind"], "mutating");
        assert_eq!(write["count"].as_u64(), Some(4));
        assert_eq!(write["errors"].as_u64(), Some(2));
        assert_eq!(write["errors_by_code"]["409"].as_u64(), Some(2));
        assert_eq!(write["rate_per_s"].as_f64(), Some(2.0));
        for key in [
            "p50_ms", "p90_ms", "p99_ms", "p999_ms", "p9999_ms", "max_ms",
        ] {
            assert!(write[key].is_f64(), "{key} in {write}");
        }
        let max = write["max_ms"].as_f64().unwrap();
        assert!((4.0..=4.004).contains(&max), "{max}");
        assert_eq!(write["buckets"].as_array().unwrap().len(), 14);
        assert_eq!(write["buckets"][2]["le_ms"].as_f64(), Some(2.0));
        assert_eq!(write["buckets"][2]["count"].as_u64(), Some(2));
        assert!(write["histogram"].is_string());

        assert_eq!(doc["timeseries"]["interval_s"].as_u64(), Some(1));
        let points = doc["timeseries"]["operations"]["write"].as_array().unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(points[0]["requests"].as_u64(), Some(2));
        assert_eq!(points[0]["errors"].as_u64(), Some(1));
        assert!(points[0]["p99_ms"].is_f64());
        assert!(points[1]["p99_ms"].is_null());

        assert_eq!(doc["slo"].as_array().unwrap().len(), 2);
        assert_eq!(doc["open_loop"]["target_rate_per_s"].as_f64(), Some(3.0));
        assert_eq!(doc["open_loop"]["achieved_rate_per_s"].as_f64(), Some(2.0));
        assert_eq!(
            doc["open_loop"]["start_lag"]["write"]["count"].as_u64(),
            Some(4)
        );
        assert!(doc.get("extra").is_none());

        let back: Results = serde_json::from_str(&text).unwrap();
        assert_eq!(back, Results::new(info(), &snapshot()));
    }

    #[test]
    fn closed_loop_runs_have_no_open_loop_section() {
        let mut snapshot = snapshot();
        snapshot.classes[0].start_lag = None;
        let mut info = info();
        info.target_rate_per_s = None;
        info.extra
            .insert("watch".into(), serde_json::json!({"gone": 0}));
        let doc = serde_json::to_value(Results::new(info, &snapshot)).unwrap();
        assert!(doc.get("open_loop").is_none());
        assert_eq!(doc["extra"]["watch"]["gone"], 0);
    }

    #[test]
    fn rewriting_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write_atomically(dir.path(), "results.json", b"old").unwrap();
        write_atomically(dir.path(), "results.json", b"new").unwrap();
        let text = std::fs::read_to_string(dir.path().join("results.json")).unwrap();
        assert_eq!(text, "new");
        let entries = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(entries, 1, "no temporary file is left behind");
    }
}
