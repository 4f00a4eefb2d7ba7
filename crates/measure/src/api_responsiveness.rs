//! API call latency as the API server itself measured it, from
//! `apiserver_request_duration_seconds`, judged against the upstream
//! scalability SLOs (as ClusterLoader2's APIResponsiveness does).
//!
//! The figures are computed by the `apiresponsiveness` crate from scrapes
//! of the server's `/metrics`; this module holds what reports read.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::pod_latency::{GateVerdict, Metric};

/// The server-side latency of the run's API calls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiResponsiveness {
    /// How the figures were taken.
    pub method: String,
    /// One entry per verb, resource, subresource and scope that was
    /// called during the run, slowest p99 first.
    pub calls: Vec<ApiCall>,
    /// The same per scrape interval, for a time series.
    pub series: Vec<ApiWindow>,
}

/// The calls of one verb, resource, subresource and scope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiCall {
    /// `GET`, `LIST`, `POST`, `PUT`, `PATCH`, `DELETE`.
    pub verb: String,
    /// API group (empty for the core group).
    pub group: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource, empty for none.
    pub subresource: String,
    /// `resource`, `namespace` or `cluster`.
    pub scope: String,
    /// Calls during the run.
    pub count: u64,
    /// Median, interpolated within the server's buckets.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// The upstream SLO on p99 for such calls, when there is one.
    pub slo_ms: Option<f64>,
}

impl ApiCall {
    /// Whether the call meets its SLO (`None` without one).
    pub fn meets_slo(&self) -> Option<bool> {
        self.slo_ms.map(|slo| self.p99_ms <= slo)
    }

    /// The verdict on its SLO, as a gate.
    pub fn verdict(&self) -> Option<GateVerdict> {
        let slo_ms = self.slo_ms?;
        Some(GateVerdict {
            measurement: "apiResponsiveness".to_owned(),
            subject: self.to_string(),
            metric: Metric::P99,
            limit_ms: slo_ms,
            value_ms: Some(self.p99_ms),
            passed: self.p99_ms <= slo_ms,
        })
    }
}

impl fmt::Display for ApiCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        if !self.subresource.is_empty() {
            write!(f, "/{}", self.subresource)?;
        }
        write!(f, " ({})", self.scope)
    }
}

/// The calls of one scrape interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiWindow {
    /// Seconds since the run started, at the interval's end.
    pub end_s: f64,
    /// The calls made in the interval.
    pub calls: Vec<ApiCall>,
}

impl ApiResponsiveness {
    /// The terminal table: the slowest calls, with their SLO verdicts.
    pub fn table(&self, rows: usize) -> String {
        let mut out =
            String::from("API responsiveness (server-side, apiserver_request_duration_seconds):\n");
        for call in self.calls.iter().take(rows) {
            let verdict = match call.meets_slo() {
                Some(true) => format!("  SLO {:.0} ms met", call.slo_ms.unwrap_or_default()),
                Some(false) => format!("  SLO {:.0} ms FAILED", call.slo_ms.unwrap_or_default()),
                None => String::new(),
            };
            out.push_str(&format!(
                "  {call}: {} calls, p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms{verdict}\n",
                call.count, call.p50_ms, call.p90_ms, call.p99_ms
            ));
        }
        if self.calls.len() > rows {
            out.push_str(&format!(
                "  ... {} more in results.json\n",
                self.calls.len() - rows
            ));
        }
        out
    }
}
