//! Live Prometheus metrics under the pod-stress reference's names.
//!
//! Dashboards built for the reference tester keep working: each class is
//! reported under the reference family for its kind (`write` for mutating
//! calls, `get` for single reads, `range_get` for lists), e.g.
//! `stress_client_write_requests_success_total{class="write"}` and
//! `stress_client_range_get_request_latency_milliseconds_bucket{class="list",le="0.5"}`.
//! Unlike the reference, the counters are Prometheus counters (not gauges)
//! and every class is labelled, so drivers with several classes of one kind
//! (churn's create and delete) stay apart. Classes of kind
//! [`Kind::Other`] use the `other` family.
//!
//! Values are read from the recorders' lock-free counters at scrape time,
//! so serving metrics costs the load nothing between scrapes.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::Error;
use crate::record::{Kind, Measurement};

/// The OpenMetrics text media type the encoder produces.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Reference families, and the words their help text uses.
const FAMILIES: [(&str, &str); 4] = [
    ("write", "write"),
    ("get", "get"),
    ("range_get", "range get"),
    ("other", "other"),
];

fn family(kind: Kind) -> &'static str {
    match kind {
        Kind::Mutating => "write",
        Kind::Read => "get",
        Kind::ListNamespaced | Kind::ListCluster => "range_get",
        Kind::Other => "other",
    }
}

impl Measurement {
    /// Adds this run's `stress_client_*` metrics to `registry`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(LiveCollector {
            measurement: self.clone(),
        }));
    }
}

struct LiveCollector {
    measurement: Measurement,
}

impl fmt::Debug for LiveCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveCollector").finish_non_exhaustive()
    }
}

impl Collector for LiveCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        for (prefix, words) in FAMILIES {
            let classes: Vec<_> = self
                .measurement
                .live_classes()
                .filter(|(class, _)| family(class.kind) == prefix)
                .collect();
            if classes.is_empty() {
                continue;
            }

            let name = format!("stress_client_{prefix}_requests_success");
            let help = format!("Total number of successful {words} requests.");
            let mut metric = encoder.encode_descriptor(&name, &help, None, MetricType::Counter)?;
            for (class, live) in &classes {
                let value = live.success.load(Ordering::Relaxed);
                metric
                    .encode_family(&[("class", class.name.as_str())])?
                    .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
            }

            let name = format!("stress_client_{prefix}_requests_failure");
            let help = format!("Total number of failed {words} requests.");
            let mut metric = encoder.encode_descriptor(&name, &help, None, MetricType::Counter)?;
            for (class, live) in &classes {
                let value = live.failure.load(Ordering::Relaxed);
                metric
                    .encode_family(&[("class", class.name.as_str())])?
                    .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
            }

            let name = format!("stress_client_{prefix}_request_latency_milliseconds");
            let help =
                format!("Bucketed histogram of client-side {words} request and response latency.");
            let mut metric =
                encoder.encode_descriptor(&name, &help, None, MetricType::Histogram)?;
            for (class, live) in &classes {
                let (count, buckets) = live.buckets();
                metric
                    .encode_family(&[("class", class.name.as_str())])?
                    .encode_histogram::<NoLabelSet>(live.sum_ms(), count, &buckets, None)?;
            }
        }
        Ok(())
    }
}

/// An HTTP server for `--metrics-addr` that answers `GET /metrics`.
///
/// It stops when [`shutdown`](Self::shutdown) is awaited or when it is
/// dropped, so it cannot outlive the run that owns it.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port) and serves `registry`.
    pub async fn start(addr: SocketAddr, registry: Registry) -> Result<Self, Error> {
        let bind_error = |source| Error::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let task = tokio::spawn(serve(listener, Arc::new(registry)));
        Ok(Self { local_addr, task })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and closes open connections.
    pub async fn shutdown(mut self) {
        self.task.abort();
        // The task ends as cancelled; there is no other outcome to report.
        let _ = (&mut self.task).await;
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, registry: Arc<Registry>) {
    // Connections live in the set so that aborting the server ends them.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let registry = Arc::clone(&registry);
                    connections.spawn(async move {
                        let service = service_fn(move |request| {
                            let response = respond(&request, &registry);
                            async move { Ok::<_, Infallible>(response) }
                        });
                        let served = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                        if let Err(error) = served {
                            tracing::debug!(%error, "metrics connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    // Out of file descriptors, most likely: back off rather
                    // than spin, and keep serving once the load drops.
                    tracing::warn!(%error, "metrics server cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn respond(request: &Request<Incoming>, registry: &Registry) -> Response<Full<Bytes>> {
    let plain = |status: StatusCode, text: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
        *response.status_mut() = status;
        response
    };
    if request.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let mut body = String::new();
    if prometheus_client::encoding::text::encode(&mut body, registry).is_err() {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n");
    }
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(CONTENT_TYPE),
    );
    response
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::record::{Class, Outcome};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn serves_the_reference_metric_names() {
        let measurement = Measurement::new([
            Class::new("write", Kind::Mutating),
            Class::new("get", Kind::Read),
            Class::new("list", Kind::ListNamespaced),
        ])
        .unwrap();
        let recorder = measurement.recorder();
        let write = measurement.class("write").unwrap();
        let list = measurement.class("list").unwrap();
        recorder.record(write, Duration::from_micros(300), Outcome::Ok);
        recorder.record(write, Duration::from_millis(3), Outcome::status(409));
        recorder.record(list, Duration::from_secs(10), Outcome::Ok);

        let mut registry = Registry::default();
        measurement.register_metrics(&mut registry);
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), registry)
            .await
            .unwrap();
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);

        let response = tokio::time::timeout(Duration::from_secs(10), get(addr, "/metrics"))
            .await
            .expect("the metrics server answers within 10 s");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.contains("openmetrics-text"), "{response}");
        for line in [
            "stress_client_write_requests_success_total{class=\"write\"} 1",
            "stress_client_write_requests_failure_total{class=\"write\"} 1",
            "stress_client_get_requests_success_total{class=\"get\"} 0",
            "stress_client_write_request_latency_milliseconds_count{class=\"write\"} 2",
            "stress_client_write_request_latency_milliseconds_bucket{le=\"0.5\",class=\"write\"} 1",
            "stress_client_write_request_latency_milliseconds_bucket{le=\"4.0\",class=\"write\"} 2",
            "stress_client_range_get_requests_success_total{class=\"list\"} 1",
            "stress_client_range_get_request_latency_milliseconds_bucket{le=\"4096.0\",class=\"list\"} 0",
            "stress_client_range_get_request_latency_milliseconds_bucket{le=\"+Inf\",class=\"list\"} 1",
        ] {
            assert!(response.contains(line), "missing {line:?} in\n{response}");
        }
        assert!(!response.contains("stress_client_other_"), "{response}");

        let missing = tokio::time::timeout(Duration::from_secs(10), get(addr, "/nope"))
            .await
            .expect("the metrics server answers within 10 s");
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

        server.shutdown().await;
        let refused = tokio::net::TcpStream::connect(addr).await;
        assert!(refused.is_err(), "the listener is closed after shutdown");
    }
}
