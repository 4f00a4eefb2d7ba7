//! The server and the client against each other on loopback.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Empty};
use httperf::{
    BlockRequest, Client, ClientConfig, ClientTrust, Error, Http2Tuning, KeyLogWriter, Server,
    ServerConfig, ServerIdentity,
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tempfile::TempDir;

/// Bound on anything a test waits for; generous for a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// A server on 127.0.0.1:0 and its certificate in a PEM file.
struct Harness {
    server: Server,
    dir: TempDir,
    ca: PathBuf,
}

impl Harness {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> Self {
        let listen = "127.0.0.1:0".parse().unwrap();
        let identity = ServerIdentity::self_signed("127.0.0.1".parse().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("server.pem");
        std::fs::write(&ca, identity.certificate_pem()).unwrap();
        let mut config = ServerConfig::new(listen, identity);
        configure(&mut config);
        let server = Server::start(config).await.unwrap();
        Self { server, dir, ca }
    }

    fn client_config(&self, threads: usize, connections: usize, request: &str) -> ClientConfig {
        ClientConfig {
            base_url: self.server.url(),
            threads,
            connections,
            request: BlockRequest::parse(Some(request), u64::MAX).unwrap(),
            duration: PATIENCE,
            max_requests: None,
            trust: ClientTrust::Ca(self.ca.clone()),
            keylog: None,
            tuning: Http2Tuning::default(),
        }
    }

    /// One request on a fresh connection, over HTTP/2 or HTTP/1.1 as
    /// `alpn` asks; returns status, headers and the whole body.
    async fn fetch(
        &self,
        alpn: &[u8],
        method: Method,
        path: &str,
    ) -> (StatusCode, http::HeaderMap, Bytes) {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&self.ca).unwrap())
            .unwrap();
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![alpn.to_vec()];
        let tcp = tokio::net::TcpStream::connect(self.server.local_addr())
            .await
            .unwrap();
        let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .unwrap();
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(alpn));
        let io = TokioIo::new(stream);
        let url = format!("{}{path}", self.server.url());
        let response = if alpn == b"h2" {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .unwrap();
            tokio::spawn(connection);
            let request = Request::builder()
                .method(method)
                .uri(url)
                .body(Empty::<Bytes>::new())
                .unwrap();
            sender.send_request(request).await.unwrap()
        } else {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(connection);
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header(header::HOST, self.server.local_addr().to_string())
                .body(Empty::<Bytes>::new())
                .unwrap();
            sender.send_request(request).await.unwrap()
        };
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, body)
    }
}

/// Awaits `condition`, checking every 10 ms, failing after [`PATIENCE`].
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn run(config: ClientConfig) -> httperf::ClientReport {
    let client = Client::connect(config).await.unwrap();
    tokio::time::timeout(PATIENCE, client.run(std::future::pending()))
        .await
        .expect("client run ended in time")
        .unwrap()
}

#[tokio::test]
async fn the_client_receives_exactly_what_the_server_sends() {
    let harness = Harness::start().await;
    let mut config = harness.client_config(2, 1, "size=1000&n=3&periodMS=1");
    config.max_requests = Some(6);
    let report = run(config).await;

    assert_eq!(report.requests(), 6);
    assert_eq!(report.errors(), 0, "{report}");
    assert_eq!(report.received_bytes(), 6 * 3 * 1000);
    let stats = harness.server.stats();
    assert_eq!(stats.sent_bytes_total, 6 * 3 * 1000);
    assert_eq!(stats.requests_total, 6);
    assert_eq!(stats.connections_total, 1);

    let summary = report.to_string();
    assert!(summary.contains("received 18000 bytes"), "{summary}");
    assert!(summary.contains("6 completed, 0 failed"), "{summary}");

    let path = report.write_json(&harness.dir.path().join("out")).unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(doc["scenario"], "httperf");
    assert_eq!(doc["target"], harness.server.url());
    assert_eq!(doc["config"]["threads"], 2);
    assert_eq!(doc["config"]["size"], 1000);
    assert!(doc["started_at"].is_string());
    assert!(doc["duration_s"].as_f64().unwrap() > 0.0);
    for class in ["first-block", "response"] {
        let summary = &doc["operations"][class];
        assert_eq!(summary["count"], 6, "{class}: {summary}");
        assert_eq!(summary["errors"], 0, "{class}: {summary}");
        for key in [
            "rate_per_s",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "p999_ms",
            "p9999_ms",
            "max_ms",
        ] {
            assert!(summary[key].is_f64(), "{class}.{key}: {summary}");
        }
        assert!(summary["errors_by_code"].is_object());
        assert!(doc["timeseries"]["operations"][class].is_array());
    }
    let throughput = &doc["extra"]["throughput"];
    assert_eq!(throughput["received_bytes"], 18000);
    assert_eq!(throughput["connections"], 1);
    let per_second: u64 = throughput["per_second"]
        .as_array()
        .unwrap()
        .iter()
        .map(|point| point["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(per_second, 18000);

    harness.server.shutdown().await;
}

#[tokio::test]
async fn blocks_are_paced_by_the_period() {
    let harness = Harness::start().await;
    let mut config = harness.client_config(1, 1, "size=512&n=4&periodMS=150");
    config.max_requests = Some(1);
    let report = run(config).await;

    assert_eq!(report.requests(), 1);
    assert_eq!(report.received_bytes(), 4 * 512);
    let operations = &report.results().operations;
    let response = &operations["response"];
    // Four blocks at 150 ms: the last starts three periods after the first.
    assert!(
        response.max_ms >= 450.0,
        "response took {} ms",
        response.max_ms
    );
    let first_block = &operations["first-block"];
    assert_eq!(first_block.count, 1);
    assert!(
        first_block.max_ms < response.max_ms,
        "first block at {} ms, whole response at {} ms",
        first_block.max_ms,
        response.max_ms
    );
    harness.server.shutdown().await;
}

#[tokio::test]
async fn threads_share_exactly_the_requested_connections() {
    let harness = Harness::start().await;
    let mut config = harness.client_config(6, 3, "size=4096&n=2&periodMS=1");
    config.max_requests = Some(30);
    let report = run(config).await;

    assert_eq!(report.requests(), 30);
    assert_eq!(report.errors(), 0, "{report}");
    assert_eq!(report.received_bytes(), 30 * 2 * 4096);
    assert_eq!(harness.server.stats().connections_total, 3);
    harness.server.shutdown().await;
}

#[tokio::test]
async fn bad_parameters_are_400s_naming_the_parameter() {
    let harness = Harness::start_with(|config| config.max_response_bytes = 10_000).await;
    for (query, named) in [
        ("n=1&periodMS=1", "\"size\""),
        ("size=1&periodMS=1", "\"n\""),
        ("size=1&n=1", "\"periodMS\""),
        ("size=abc&n=1&periodMS=1", "\"size\""),
        ("size=0&n=1&periodMS=1", "\"size\""),
        ("size=1&n=-2&periodMS=1", "\"n\""),
        ("size=1&n=0&periodMS=1", "\"n\""),
        ("size=1&n=1&periodMS=0", "\"periodMS\""),
        ("size=1&n=1&periodMS=-1", "\"periodMS\""),
        ("size=1&n=1&periodMS=x", "\"periodMS\""),
        ("size=5000&n=3&periodMS=1", "--max-response-bytes"),
    ] {
        let (status, _, body) = harness
            .fetch(b"h2", Method::GET, &format!("/blocks?{query}"))
            .await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body.contains(named), "{query}: {body}");
    }
    let (status, headers, _) = harness
        .fetch(b"http/1.1", Method::POST, "/blocks?size=1&n=1&periodMS=1")
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[header::ALLOW], "GET");
    let (status, _, _) = harness.fetch(b"h2", Method::GET, "/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(harness.server.stats().sent_bytes_total, 0);
    harness.server.shutdown().await;
}

#[tokio::test]
async fn http1_clients_get_the_same_blocks() {
    let harness = Harness::start().await;
    let (status, headers, body) = harness
        .fetch(
            b"http/1.1",
            Method::GET,
            "/blocks?size=300000&n=2&periodMS=1",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_LENGTH], "600000");
    assert_eq!(body.len(), 600_000);
    assert_eq!(harness.server.stats().sent_bytes_total, 600_000);
    harness.server.shutdown().await;
}

#[tokio::test]
async fn metrics_report_the_server_counters() {
    let harness = Harness::start().await;
    let mut config = harness.client_config(2, 2, "size=100&n=5&periodMS=1");
    config.max_requests = Some(4);
    run(config).await;

    let (status, headers, body) = harness.fetch(b"http/1.1", Method::GET, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = String::from_utf8(body.to_vec()).unwrap();
    for line in [
        "httperf_sent_bytes_total 2000",
        "httperf_requests_total{handler=\"blocks\",code=\"200\"} 4",
        "httperf_connections_total 3",
        "httperf_active_streams 0",
        "# EOF",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    assert!(
        text.contains("# TYPE httperf_active_connections gauge"),
        "{text}"
    );
    harness.server.shutdown().await;
}

#[tokio::test]
async fn tls_keys_are_logged_only_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let server_keys = dir.path().join("server.keys");
    let client_keys = dir.path().join("client.keys");
    let writer = Arc::new(KeyLogWriter::open(&server_keys).unwrap());
    let harness = Harness::start_with(|config| config.keylog = Some(writer)).await;

    // Without a key log, the client writes nothing.
    let mut config = harness.client_config(1, 1, "size=10&n=1&periodMS=1");
    config.max_requests = Some(1);
    run(config).await;
    let server_lines = std::fs::read_to_string(&server_keys).unwrap();
    assert!(
        server_lines.contains("SERVER_TRAFFIC_SECRET_0 "),
        "{server_lines}"
    );
    assert!(!client_keys.exists());

    let mut config = harness.client_config(1, 1, "size=10&n=1&periodMS=1");
    config.max_requests = Some(1);
    config.keylog = Some(Arc::new(KeyLogWriter::open(&client_keys).unwrap()));
    run(config).await;
    let client_lines = std::fs::read_to_string(&client_keys).unwrap();
    let line = client_lines
        .lines()
        .find(|line| line.starts_with("CLIENT_TRAFFIC_SECRET_0 "))
        .unwrap_or_else(|| panic!("no client traffic secret in {client_lines}"));
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields.len(), 3, "{line}");
    assert_eq!(fields[1].len(), 64, "client random is 32 bytes: {line}");
    assert!(fields[2].chars().all(|c| c.is_ascii_hexdigit()), "{line}");
    // The same session is in the server's log, under the same client random.
    assert!(
        std::fs::read_to_string(&server_keys)
            .unwrap()
            .contains(fields[1])
    );
    harness.server.shutdown().await;
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_clear_error() {
    let harness = Harness::start().await;
    let mut config = harness.client_config(1, 1, "size=10&n=1&periodMS=1");
    let other = harness.dir.path().join("other.pem");
    let stranger = ServerIdentity::self_signed("127.0.0.1".parse().unwrap()).unwrap();
    std::fs::write(&other, stranger.certificate_pem()).unwrap();
    config.trust = ClientTrust::Ca(other);
    let err = Client::connect(config).await.err().expect("connect fails");
    assert!(matches!(err, Error::Handshake { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("--ca") && message.contains("--insecure"),
        "{message}"
    );
    assert_eq!(harness.server.stats().connections_total, 0);

    let mut config = harness.client_config(1, 1, "size=10&n=1&periodMS=1");
    config.trust = ClientTrust::Insecure;
    config.max_requests = Some(1);
    assert_eq!(run(config).await.received_bytes(), 10);
    harness.server.shutdown().await;
}

#[tokio::test]
async fn bad_client_options_fail_before_connecting() {
    let harness = Harness::start().await;
    let config = harness.client_config(2, 3, "size=10&n=1&periodMS=1");
    let err = Client::connect(config).await.err().expect("refused");
    assert!(err.to_string().contains("--connections (3)"), "{err}");
    let mut config = harness.client_config(1, 1, "size=10&n=1&periodMS=1");
    config.base_url = format!("http://{}", harness.server.local_addr());
    let err = Client::connect(config).await.err().expect("refused");
    assert!(err.to_string().contains("https"), "{err}");
    assert_eq!(harness.server.stats().connections_total, 0);
    harness.server.shutdown().await;
}

#[tokio::test]
async fn a_refused_request_ends_the_run_with_the_servers_reason() {
    let harness = Harness::start_with(|config| config.max_response_bytes = 1000).await;
    let config = harness.client_config(3, 1, "size=600&n=2&periodMS=1");
    let client = Client::connect(config).await.unwrap();
    let err = tokio::time::timeout(PATIENCE, client.run(std::future::pending()))
        .await
        .expect("a refusal ends the run at once")
        .expect_err("the run fails");
    assert!(
        matches!(err, Error::Refused { status, .. } if status == StatusCode::BAD_REQUEST),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("/blocks?size=600&n=2&periodMS=1")
            && message.contains("--max-response-bytes"),
        "{message}"
    );
    // Each loop stops at its first refusal instead of retrying.
    assert!(harness.server.stats().requests_total <= 3);
    harness.server.shutdown().await;
}

#[tokio::test]
async fn the_cpu_profile_is_pprof_or_svg() {
    use pprof::protos::Message as _;

    let harness = Harness::start().await;
    let (status, _, body) = harness
        .fetch(b"h2", Method::GET, "/debug/pprof/profile?seconds=0")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("\"seconds\""));

    let (status, headers, body) = harness
        .fetch(b"h2", Method::GET, "/debug/pprof/profile?seconds=1")
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers[header::CONTENT_TYPE], "application/octet-stream");
    let profile = pprof::protos::Profile::decode(body).unwrap();
    let strings = &profile.string_table;
    let sample_types: Vec<&str> = profile
        .sample_type
        .iter()
        .map(|t| strings[t.ty as usize].as_str())
        .collect();
    assert_eq!(sample_types, ["samples", "cpu"]);
    assert!(profile.duration_nanos >= 1_000_000_000);

    let (status, headers, body) = harness
        .fetch(
            b"http/1.1",
            Method::GET,
            "/debug/pprof/profile?seconds=1&format=svg",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "image/svg+xml");
    assert!(String::from_utf8_lossy(&body).contains("<svg"));
    harness.server.shutdown().await;
}

#[tokio::test]
async fn stopping_ends_the_run_with_a_summary_and_shutdown_is_clean() {
    let harness =
        Harness::start_with(|config| config.shutdown_grace = Duration::from_millis(200)).await;
    // Each response would take 1000 periods of 1 s: only stop or shutdown
    // can end this run.
    let config = harness.client_config(2, 1, "size=1000&n=1000&periodMS=1000");
    let client = Client::connect(config).await.unwrap();
    let received = client.received();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(client.run(async {
        let _ = stopped.await;
    }));
    eventually("both streams to start", || {
        harness.server.stats().active_streams == 2 && received.get() == 2000
    })
    .await;
    stop.send(()).unwrap();
    let report = tokio::time::timeout(PATIENCE, run)
        .await
        .expect("run stopped in time")
        .unwrap()
        .unwrap();
    // The cut-off responses are not requests, but their bytes arrived.
    assert_eq!(report.requests(), 0);
    assert_eq!(report.received_bytes(), 2000);
    assert!(report.to_string().contains("received 2000 bytes"));

    // A stream still open when the server stops is cut after the grace.
    let config = harness.client_config(1, 1, "size=10&n=1000&periodMS=1000");
    let client = Client::connect(config).await.unwrap();
    let run = tokio::spawn(client.run(std::future::pending()));
    eventually("the stream to start", || {
        harness.server.stats().active_streams == 1
    })
    .await;
    let addr = harness.server.local_addr();
    tokio::time::timeout(PATIENCE, harness.server.shutdown())
        .await
        .expect("shutdown within the grace period");
    let report = tokio::time::timeout(PATIENCE, run)
        .await
        .expect("the client notices the closed connection")
        .unwrap()
        .unwrap();
    assert!(report.errors() >= 1, "{report}");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
