//! Pod startup latency as results.json records it, and the gates judged on
//! it (kube-burner's `podLatency` thresholds).
//!
//! The figures are computed by the `podlatency` crate from a pod watch;
//! this module holds what every report reads: quantiles per transition and
//! per group, the pods that never became Ready, and the verdicts.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::histogram::{LatencyHistogram, millis};

/// The transitions of a pod, in the order they happen: the four pod
/// conditions kube-burner measures, then the first watch observation of
/// phase Running.
pub const TRANSITIONS: [&str; 5] = [
    "PodScheduled",
    "Initialized",
    "ContainersReady",
    "Ready",
    "Running",
];

/// A latency distribution with the quantiles kube-burner and
/// ClusterLoader2 report, and its histogram for exact merging.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
    /// The full histogram (microseconds).
    pub histogram: LatencyHistogram,
}

impl Quantiles {
    /// The quantiles of `histogram`.
    pub fn of(histogram: &LatencyHistogram) -> Self {
        let q = |q: f64| millis(histogram.quantile(q));
        Quantiles {
            count: histogram.count(),
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            max_ms: millis(histogram.max()),
            mean_ms: millis(histogram.mean()),
            histogram: histogram.clone(),
        }
    }

    /// The figure a gate's metric names.
    pub fn metric(&self, metric: Metric) -> f64 {
        match metric {
            Metric::P50 => self.p50_ms,
            Metric::P90 => self.p90_ms,
            Metric::P95 => self.p95_ms,
            Metric::P99 => self.p99_ms,
            Metric::Max => self.max_ms,
            Metric::Avg => self.mean_ms,
        }
    }
}

/// Pod startup latency of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodLatencySummary {
    /// How the figures were taken, for the reader of the report.
    pub method: String,
    /// Pods created while the measurement watched.
    pub pods: u64,
    /// Of which became Ready.
    pub ready: u64,
    /// Deleted before they became Ready (churn deletes pods on purpose).
    pub deleted_before_ready: u64,
    /// Latency from creation to each transition (see [`TRANSITIONS`]).
    pub transitions: BTreeMap<String, Quantiles>,
    /// ClusterLoader2's breakdown: `create_to_schedule`,
    /// `schedule_to_run`, `run_to_watch` and `pod_startup`.
    pub breakdown: BTreeMap<String, Quantiles>,
    /// The same transitions per group (a scenario's job, a driver's name).
    pub groups: BTreeMap<String, GroupLatency>,
    /// Pods that did not become Ready and were not deleted, with their
    /// last state (at most [`NOT_READY_LISTED`]; `pods - ready -
    /// deleted_before_ready` is the full count).
    pub not_ready: Vec<PodState>,
    /// One record per pod, when asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<PodRecord>,
}

/// Pods listed by name in [`PodLatencySummary::not_ready`] at most.
pub const NOT_READY_LISTED: usize = 100;

/// The transitions of one group of pods.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupLatency {
    /// Pods of the group.
    pub pods: u64,
    /// Of which became Ready.
    pub ready: u64,
    /// Latency from creation to each transition.
    pub transitions: BTreeMap<String, Quantiles>,
}

/// The last state of a pod that did not become Ready.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodState {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its group.
    pub group: String,
    /// `status.phase` as last seen.
    pub phase: String,
    /// Why it is not ready, as the pod says (a waiting container's reason
    /// or a false condition's), if it says.
    pub reason: String,
}

/// One pod's transitions, in milliseconds since the measurement started
/// (client clock), beside the server's second-resolution timestamps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PodRecord {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its group.
    pub group: String,
    /// First observed by the watch.
    pub created_ms: f64,
    /// Each transition observed, by name (see [`TRANSITIONS`]).
    pub observed_ms: BTreeMap<String, f64>,
    /// The server's `creationTimestamp`.
    pub creation_timestamp: Option<String>,
    /// The server's `lastTransitionTime` per condition that became true.
    pub server_times: BTreeMap<String, String>,
}

/// A statistic a gate compares against its limit (kube-burner's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Metric {
    P50,
    P90,
    P95,
    P99,
    Max,
    Avg,
}

impl FromStr for Metric {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "P50" => Metric::P50,
            "P90" => Metric::P90,
            "P95" => Metric::P95,
            "P99" => Metric::P99,
            "Max" => Metric::Max,
            "Avg" => Metric::Avg,
            other => {
                return Err(format!(
                    "unknown metric {other:?} (expected P50, P90, P95, P99, Max or Avg)"
                ));
            }
        })
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A pod latency gate: `metric` of `condition` at most `limit`, as
/// kube-burner's `thresholds: [{conditionType, metric, threshold}]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Threshold {
    /// One of [`TRANSITIONS`].
    pub condition: String,
    /// The statistic compared.
    pub metric: Metric,
    /// Its upper bound.
    pub limit: Duration,
}

impl Threshold {
    /// A gate, refusing transitions that are not measured.
    pub fn new(condition: &str, metric: Metric, limit: Duration) -> Result<Self, String> {
        if !TRANSITIONS.contains(&condition) {
            return Err(format!(
                "unknown conditionType {condition:?} (expected one of {})",
                TRANSITIONS.join(", ")
            ));
        }
        Ok(Threshold {
            condition: condition.to_owned(),
            metric,
            limit,
        })
    }
}

/// The verdict on one gate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateVerdict {
    /// The measurement judged (`podLatency`).
    pub measurement: String,
    /// What was measured (`Ready`).
    pub subject: String,
    /// The statistic (`P99`).
    pub metric: Metric,
    /// The limit in milliseconds.
    pub limit_ms: f64,
    /// The measured figure; `None` when nothing was measured.
    pub value_ms: Option<f64>,
    /// Whether the gate held. A gate with nothing measured fails: a run
    /// that never saw a pod become Ready cannot have met a Ready bound.
    pub passed: bool,
}

impl fmt::Display for GateVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed { "met" } else { "FAILED" };
        let value = self
            .value_ms
            .map_or_else(|| "nothing measured".to_owned(), |v| format!("{v:.1} ms"));
        write!(
            f,
            "{} {} {}: {value} (limit {:.0} ms) {verdict}",
            self.measurement, self.subject, self.metric, self.limit_ms
        )
    }
}

impl PodLatencySummary {
    /// Judges `thresholds` on the run's transitions.
    pub fn judge(&self, thresholds: &[Threshold]) -> Vec<GateVerdict> {
        thresholds
            .iter()
            .map(|t| {
                let limit_ms = millis(t.limit);
                let value_ms = self
                    .transitions
                    .get(&t.condition)
                    .filter(|q| q.count > 0)
                    .map(|q| q.metric(t.metric));
                GateVerdict {
                    measurement: "podLatency".to_owned(),
                    subject: t.condition.clone(),
                    metric: t.metric,
                    limit_ms,
                    value_ms,
                    passed: value_ms.is_some_and(|v| v <= limit_ms),
                }
            })
            .collect()
    }

    /// The terminal table: one row per transition and breakdown figure,
    /// then the count of pods that did not become Ready.
    pub fn table(&self) -> String {
        let mut out = format!(
            "pod latency: {} pods, {} Ready, {} deleted before Ready\n",
            self.pods, self.ready, self.deleted_before_ready
        );
        let header = [
            "transition",
            "count",
            "p50 ms",
            "p90 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
        ];
        let rows: Vec<[String; 7]> = TRANSITIONS
            .iter()
            .filter_map(|t| self.transitions.get(*t).map(|q| (*t, q)))
            .chain(self.breakdown.iter().map(|(k, q)| (k.as_str(), q)))
            .map(|(name, q)| {
                [
                    name.to_owned(),
                    q.count.to_string(),
                    format!("{:.1}", q.p50_ms),
                    format!("{:.1}", q.p90_ms),
                    format!("{:.1}", q.p95_ms),
                    format!("{:.1}", q.p99_ms),
                    format!("{:.1}", q.max_ms),
                ]
            })
            .collect();
        let width = |i: usize| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..header.len()).map(width).collect();
        let header = header.map(str::to_owned);
        for row in std::iter::once(&header).chain(&rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i == 0 {
                    let _ = write!(line, "{cell:<w$}", w = widths[0]);
                } else {
                    let _ = write!(line, "  {cell:>w$}", w = widths[i]);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let unready = self.pods - self.ready - self.deleted_before_ready;
        if unready > 0 {
            let _ = writeln!(out, "{unready} pods did not become Ready:");
            for pod in &self.not_ready {
                let _ = writeln!(
                    out,
                    "  {}/{} ({}): {} {}",
                    pod.namespace, pod.name, pod.group, pod.phase, pod.reason
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary_with_ready(samples_ms: &[u64]) -> PodLatencySummary {
        let mut histogram = LatencyHistogram::new();
        for ms in samples_ms {
            histogram.record(Duration::from_millis(*ms));
        }
        PodLatencySummary {
            method: String::new(),
            pods: samples_ms.len() as u64,
            ready: samples_ms.len() as u64,
            deleted_before_ready: 0,
            transitions: [("Ready".to_owned(), Quantiles::of(&histogram))].into(),
            breakdown: BTreeMap::new(),
            groups: BTreeMap::new(),
            not_ready: Vec::new(),
            records: Vec::new(),
        }
    }

    #[test]
    fn gates_pass_at_their_limit_and_fail_above_it_or_unmeasured() {
        let summary = summary_with_ready(&[100, 200, 300]);
        let gate = |condition: &str, metric, ms| {
            Threshold::new(condition, metric, Duration::from_millis(ms)).expect("a valid gate")
        };
        let verdicts = summary.judge(&[
            gate("Ready", Metric::Max, 301),
            gate("Ready", Metric::P50, 150),
            gate("PodScheduled", Metric::P99, 1000),
        ]);
        assert!(verdicts[0].passed, "{}", verdicts[0]);
        assert!(!verdicts[1].passed, "{}", verdicts[1]);
        assert_eq!(verdicts[2].value_ms, None);
        assert!(!verdicts[2].passed, "nothing measured fails");
        assert_eq!(
            verdicts[1].to_string(),
            "podLatency Ready P50: 200.1 ms (limit 150 ms) FAILED"
        );
    }

    #[test]
    fn unknown_conditions_and_metrics_are_refused_with_the_choices() {
        let err = Threshold::new("Readyy", Metric::P99, Duration::ZERO).unwrap_err();
        assert!(err.contains("PodScheduled, Initialized"), "{err}");
        let err = "p99".parse::<Metric>().unwrap_err();
        assert!(err.contains("P50, P90, P95, P99, Max or Avg"), "{err}");
    }

    #[test]
    fn the_table_lists_transitions_in_order_and_the_unready_pods() {
        let mut summary = summary_with_ready(&[100]);
        summary.pods = 2;
        summary.not_ready.push(PodState {
            namespace: "ns".into(),
            name: "web-1".into(),
            group: "job".into(),
            phase: "Pending".into(),
            reason: "ImagePullBackOff".into(),
        });
        let table = summary.table();
        assert!(table.starts_with("pod latency: 2 pods, 1 Ready"), "{table}");
        assert!(table.contains("\nReady  "), "{table}");
        assert!(
            table.ends_with(
                "1 pods did not become Ready:\n  ns/web-1 (job): Pending ImagePullBackOff\n"
            ),
            "{table}"
        );
    }
}
