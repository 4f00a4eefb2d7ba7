//! The measurement options of `kstress run` and `kstress scenario run`:
//! pod startup latency and the server's API responsiveness.

use clap::Args;
use load::lifecycle::PodLatencyOptions;
use measure::{Metric, Threshold};

use crate::units::parse_duration;

/// Pod startup latency (kube-burner's `podLatency` measurement) and API
/// responsiveness (ClusterLoader2's).
#[derive(Args, Clone, Debug)]
pub struct MeasurementArgs {
    /// Measure the startup latency of the pods the run creates: each
    /// transition stamped as its watch event arrives.
    #[arg(long)]
    pub pod_latency: bool,

    /// A gate on pod startup latency as kube-burner's thresholds,
    /// CONDITION:METRIC:LIMIT (e.g. Ready:P99:5s); repeatable, implies
    /// --pod-latency. A run that fails a gate exits with status 3.
    #[arg(long = "pod-latency-threshold", value_name = "CONDITION:METRIC:LIMIT",
          value_parser = parse_threshold)]
    pub thresholds: Vec<Threshold>,

    /// Keep one record per pod in results.json (implies --pod-latency).
    #[arg(long)]
    pub pod_latency_records: bool,

    /// Measure the API server's own latency of the run's calls from its
    /// /metrics (apiserver_request_duration_seconds), per verb, resource
    /// and scope, judged against the upstream SLOs as gates.
    #[arg(long)]
    pub api_responsiveness: bool,
}

impl MeasurementArgs {
    /// The pod latency measurement these options ask for, if any.
    pub fn pod_latency(&self) -> Option<PodLatencyOptions> {
        (self.pod_latency || self.pod_latency_records || !self.thresholds.is_empty()).then(|| {
            PodLatencyOptions {
                thresholds: self.thresholds.clone(),
                records: self.pod_latency_records,
            }
        })
    }
}

/// Parses `Ready:P99:5s`.
fn parse_threshold(text: &str) -> Result<Threshold, String> {
    let mut parts = text.splitn(3, ':');
    let (Some(condition), Some(metric), Some(limit)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "expected CONDITION:METRIC:LIMIT such as Ready:P99:5s, got {text:?}"
        ));
    };
    let metric: Metric = metric.parse()?;
    Threshold::new(condition, metric, parse_duration(limit)?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn thresholds_parse_in_kube_burners_terms() {
        assert_eq!(
            parse_threshold("Ready:P99:5s"),
            Threshold::new("Ready", Metric::P99, Duration::from_secs(5))
        );
        assert!(
            parse_threshold("Ready:P99")
                .unwrap_err()
                .contains("CONDITION:METRIC:LIMIT")
        );
        assert!(
            parse_threshold("Redy:P99:5s")
                .unwrap_err()
                .contains("conditionType")
        );
        assert!(
            parse_threshold("Ready:p99:5s")
                .unwrap_err()
                .contains("metric")
        );
        assert!(
            parse_threshold("Ready:P99:soon")
                .unwrap_err()
                .contains("duration")
        );
    }
}
