//! API responsiveness as ClusterLoader2 measures it, without Prometheus:
//! the API server's own `apiserver_request_duration_seconds` is scraped
//! from its `/metrics` when the run starts, every few seconds while it
//! runs and when it ends; the bucket differences give each kind of call's
//! p50, p90 and p99 (interpolated as `histogram_quantile` does), judged
//! against the upstream scalability SLOs. The same metric names make it
//! work against kube-apiserver and the embedded server alike.

mod scrape;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use measure::{ApiCall, ApiResponsiveness, ApiWindow};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

pub use crate::scrape::{Buckets, CallKey, Scrape};

/// How the report describes the method.
const METHOD: &str = "Differences of the API server's apiserver_request_duration_seconds \
buckets between scrapes of its /metrics at the run's start and end (and every interval for the \
series); quantiles interpolated within the server's buckets as Prometheus' histogram_quantile \
does, so they are as precise as those buckets. Long-running calls (WATCH, CONNECT) are left out.";

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `/metrics` could not be read.
    #[error("cannot read the API server's /metrics: {0}")]
    Scrape(#[source] kube::Error),
    /// The request could not be built.
    #[error("cannot build the /metrics request: {0}")]
    Request(#[from] http::Error),
}

/// Reads the duration buckets from the server behind `client`.
pub async fn scrape(client: &Client) -> Result<Scrape, Error> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await.map_err(Error::Scrape)?;
    Ok(Scrape::parse(&text))
}

/// The upstream SLO on a call's p99, in milliseconds: 1 s for mutating
/// calls and single-object reads, 5 s for namespace-scoped lists, 30 s for
/// cluster-wide ones.
pub fn slo_ms(verb: &str, scope: &str) -> Option<f64> {
    match (verb, scope) {
        ("POST" | "PUT" | "PATCH" | "DELETE" | "APPLY", _) => Some(1_000.0),
        ("GET" | "LIST", "resource") => Some(1_000.0),
        ("GET" | "LIST", "namespace") => Some(5_000.0),
        ("GET" | "LIST", "cluster") => Some(30_000.0),
        _ => None,
    }
}

/// The calls of a scrape difference, slowest p99 first.
pub fn calls(delta: &Scrape) -> Vec<ApiCall> {
    let mut calls: Vec<ApiCall> = delta
        .0
        .iter()
        .filter(|(key, _)| !matches!(key.verb.as_str(), "WATCH" | "WATCHLIST" | "CONNECT"))
        .map(|(key, buckets)| {
            let ms = |q: f64| buckets.quantile(q) * 1000.0;
            ApiCall {
                verb: key.verb.clone(),
                group: key.group.clone(),
                resource: key.resource.clone(),
                subresource: key.subresource.clone(),
                scope: key.scope.clone(),
                count: buckets.total().round() as u64,
                p50_ms: ms(0.5),
                p90_ms: ms(0.9),
                p99_ms: ms(0.99),
                slo_ms: slo_ms(&key.verb, &key.scope),
            }
        })
        .collect();
    calls.sort_by(|a, b| b.p99_ms.total_cmp(&a.p99_ms));
    calls
}

/// A running measurement.
pub struct Measurement {
    client: Client,
    first: Scrape,
    series: Arc<Mutex<Vec<ApiWindow>>>,
    task: JoinHandle<()>,
}

impl Measurement {
    /// Takes the first scrape, then one every `interval` for the series.
    pub async fn start(client: Client, interval: Duration) -> Result<Measurement, Error> {
        let first = scrape(&client).await?;
        let series = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(sample(
            client.clone(),
            first.clone(),
            interval,
            Arc::clone(&series),
        ));
        Ok(Measurement {
            client,
            first,
            series,
            task,
        })
    }

    /// Takes the last scrape and summarizes the run.
    pub async fn finish(mut self) -> Result<ApiResponsiveness, Error> {
        self.task.abort();
        let last = scrape(&self.client).await?;
        let series = std::mem::take(&mut *self.series.lock());
        let first = std::mem::take(&mut self.first);
        Ok(ApiResponsiveness {
            method: METHOD.to_owned(),
            calls: calls(&last.since(&first)),
            series,
        })
    }
}

impl Drop for Measurement {
    /// A measurement given up on stops sampling.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Scrapes every `interval`, recording each interval's calls; a failed
/// scrape leaves a gap and is retried at the next tick.
async fn sample(
    client: Client,
    mut previous: Scrape,
    interval: Duration,
    series: Arc<Mutex<Vec<ApiWindow>>>,
) {
    let began = Instant::now();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match scrape(&client).await {
            Ok(now) => {
                let window = ApiWindow {
                    end_s: began.elapsed().as_secs_f64(),
                    calls: calls(&now.since(&previous)),
                };
                series.lock().push(window);
                previous = now;
            }
            Err(err) => tracing::warn!(%err, "API responsiveness: a scrape failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slos_follow_the_upstream_bounds() {
        assert_eq!(slo_ms("POST", "resource"), Some(1000.0));
        assert_eq!(slo_ms("DELETE", "namespace"), Some(1000.0));
        assert_eq!(slo_ms("GET", "resource"), Some(1000.0));
        assert_eq!(slo_ms("LIST", "namespace"), Some(5000.0));
        assert_eq!(slo_ms("LIST", "cluster"), Some(30000.0));
        assert_eq!(slo_ms("WATCH", "cluster"), None);
    }

    #[test]
    fn calls_leave_out_long_running_verbs_and_put_the_slowest_first() {
        let text = "\
apiserver_request_duration_seconds_bucket{verb=\"GET\",resource=\"pods\",scope=\"resource\",le=\"0.005\"} 10
apiserver_request_duration_seconds_bucket{verb=\"GET\",resource=\"pods\",scope=\"resource\",le=\"+Inf\"} 10
apiserver_request_duration_seconds_bucket{verb=\"LIST\",resource=\"pods\",scope=\"cluster\",le=\"0.005\"} 0
apiserver_request_duration_seconds_bucket{verb=\"LIST\",resource=\"pods\",scope=\"cluster\",le=\"1.0\"} 4
apiserver_request_duration_seconds_bucket{verb=\"LIST\",resource=\"pods\",scope=\"cluster\",le=\"+Inf\"} 4
apiserver_request_duration_seconds_bucket{verb=\"WATCH\",resource=\"pods\",scope=\"cluster\",le=\"+Inf\"} 4
";
        let calls = calls(&Scrape::parse(text).since(&Scrape::default()));
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].to_string(), "LIST pods (cluster)");
        assert_eq!(calls[0].count, 4);
        assert!(calls[0].meets_slo() == Some(true));
        assert_eq!(calls[1].verb, "GET");
    }
}
