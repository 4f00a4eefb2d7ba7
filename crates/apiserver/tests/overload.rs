//! Overload: ten times the in-flight limit is answered 429 with
//! Retry-After, memory stays bounded, no request outlives the request
//! timeout, the server serves normally right after, and a watcher that
//! stops reading is closed.

mod common;

use std::time::{Duration, Instant};

use apiserver::{CacheOptions, Limits, ServerConfig, WatchSettings};
use bytes::Bytes;
use common::{TestServer, WAIT, wait_until};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CMS: &str = "/api/v1/namespaces/default/configmaps";
const READONLY_LIMIT: usize = 4;
const MUTATING_LIMIT: usize = 2;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(8);

/// The in-flight test reads the process's resident memory, so the tests
/// run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The resident set of this process (server and clients), in KiB.
fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

/// Starts a POST whose body never arrives, so that it holds a mutating
/// in-flight slot; resolves to its status code and how long it took.
async fn start_stalled_post(ts: &TestServer) -> tokio::task::JoinHandle<(u16, Duration)> {
    let tls = ts.tls_connection().await;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let (body_tx, body_rx) =
        futures::channel::mpsc::channel::<Result<Frame<Bytes>, std::convert::Infallible>>(1);
    let request = http::Request::post(CMS)
        .header("authorization", format!("Bearer {}", ts.server.token()))
        .header("content-type", "application/json")
        .body(StreamBody::new(body_rx))
        .unwrap();
    tokio::spawn(async move {
        let started = Instant::now();
        let response = sender.send_request(request).await.unwrap();
        let code = response.status().as_u16();
        response.into_body().collect().await.unwrap();
        drop(body_tx);
        (code, started.elapsed())
    })
}

/// The value of a gauge line of /metrics, e.g. the mutating in-flight
/// requests or the registered ConfigMap watchers.
async fn gauge(ts: &TestServer, name: &str, label: &str) -> Option<u64> {
    let (_, metrics) = ts.get("/metrics").await;
    metrics.as_str()?.lines().find_map(|l| {
        (l.starts_with(&format!("{name}{{")) && l.contains(label))
            .then(|| l.rsplit(' ').next()?.parse().ok())
            .flatten()
    })
}

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

#[tokio::test]
async fn ten_times_the_inflight_limit() {
    let _serial = SERIAL.lock().await;
    let ts = TestServer::with(ServerConfig {
        limits: Limits {
            max_readonly_inflight: READONLY_LIMIT,
            max_mutating_inflight: MUTATING_LIMIT,
            request_timeout: REQUEST_TIMEOUT,
            ..Limits::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let api: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "default");
    let payload = "x".repeat(4 * 1024);
    for i in 0..50 {
        let cm: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": format!("cm-{i}")}, "data": {"x": payload}}),
        )
        .unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    // One warm-up round, so that the baseline includes what any flood
    // allocates once (connection state, caches).
    offer_reads(&ts, 10 * READONLY_LIMIT).await;
    let rss_before = vm_rss_kib();

    // Every mutating slot is held by a request whose body never comes.
    let stalled: Vec<_> =
        futures::future::join_all((0..MUTATING_LIMIT).map(|_| start_stalled_post(&ts))).await;
    wait_until("the stalled POSTs to hold every mutating slot", || async {
        gauge(&ts, "apiserver_current_inflight_requests", "mutating")
            .await
            .filter(|n| *n == MUTATING_LIMIT as u64)
    })
    .await;
    let offered = 10 * MUTATING_LIMIT;
    let answers = futures::future::join_all((0..offered).map(|i| {
        let request = http::Request::post(CMS)
            .header("content-type", "application/json")
            .body(
                serde_json::to_vec(&json!({"metadata": {"name": format!("excess-{i}")}})).unwrap(),
            )
            .unwrap();
        ts.raw_with_headers(&ts.client, request)
    }))
    .await;
    for (code, headers, body) in &answers {
        assert_eq!(*code, 429, "{body}");
        assert_eq!(body["reason"], "TooManyRequests", "{body}");
        assert_eq!(
            headers.get("retry-after").and_then(|v| v.to_str().ok()),
            Some("1")
        );
    }

    // Read-only requests have their own limit: a flood of ten times it
    // is answered, in full or with 429, and never otherwise.
    for _ in 0..10 {
        offer_reads(&ts, 10 * READONLY_LIMIT).await;
    }

    // The stalled requests end at the request timeout, with 504.
    for handle in stalled {
        let (code, took) = tokio::time::timeout(WAIT, handle)
            .await
            .expect("a stalled request ends")
            .unwrap();
        assert_eq!(code, 504);
        assert!(
            took >= REQUEST_TIMEOUT && took < REQUEST_TIMEOUT + Duration::from_secs(10),
            "the stalled request took {took:?}"
        );
    }
    let growth_mib = vm_rss_kib().saturating_sub(rss_before) / 1024;
    assert!(growth_mib < 64, "resident memory grew by {growth_mib} MiB");

    // Right after, the server serves normally.
    api.create(&PostParams::default(), &configmap("after"))
        .await
        .expect("a create right after the flood");
    let listed = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 51, "nothing refused was stored");
    ts.stop().await;
}

/// Sends `offered` concurrent lists; each must be a full answer or a 429
/// with Retry-After.
async fn offer_reads(ts: &TestServer, offered: usize) {
    let answers = futures::future::join_all((0..offered).map(|_| {
        ts.raw_with_headers(
            &ts.client,
            http::Request::get(CMS).body(Vec::new()).unwrap(),
        )
    }))
    .await;
    for (code, headers, body) in answers {
        match code {
            200 => assert_eq!(body["items"].as_array().map(Vec::len), Some(50)),
            429 => assert_eq!(
                headers.get("retry-after").and_then(|v| v.to_str().ok()),
                Some("1")
            ),
            other => panic!("a read under overload answered {other}: {body}"),
        }
    }
}

#[tokio::test]
async fn a_watcher_that_stops_reading_is_closed() {
    let _serial = SERIAL.lock().await;
    let ts = TestServer::with(ServerConfig {
        watch: WatchSettings {
            stall_timeout: Duration::from_secs(1),
            ..WatchSettings::default()
        },
        cache: CacheOptions {
            window: 50,
            ..CacheOptions::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let api: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "default");
    api.create(&PostParams::default(), &configmap("churn"))
        .await
        .unwrap();

    // A watch whose client sends the request and then never reads.
    let mut stalled = ts.tls_connection().await;
    let request = format!(
        "GET {CMS}?watch=1 HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
        ts.server.addr(),
        ts.server.token()
    );
    stalled.write_all(request.as_bytes()).await.unwrap();
    stalled.flush().await.unwrap();
    wait_until("the watch to be registered", || async {
        gauge(&ts, "apiserver_registered_watchers", "kind=\"ConfigMap\"")
            .await
            .filter(|n| *n == 1)
    })
    .await;

    // Far more events than socket buffers hold: 100 KiB each, 100 MiB in all.
    let chunk = "y".repeat(100 * 1024);
    let mut closed = false;
    for round in 0..1000 {
        let patch = json!({"data": {"x": format!("{round}{chunk}")}});
        api.patch("churn", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        if round % 50 == 49
            && gauge(&ts, "apiserver_registered_watchers", "kind=\"ConfigMap\"").await == Some(0)
        {
            closed = true;
            break;
        }
    }
    if !closed {
        wait_until("the stalled watch to be closed", || async {
            gauge(&ts, "apiserver_registered_watchers", "kind=\"ConfigMap\"")
                .await
                .filter(|n| *n == 0)
        })
        .await;
    }

    // The client, reading at last, finds the response ended: what was
    // queued, then the chunked terminator.
    let mut received = Vec::new();
    let ended = tokio::time::timeout(WAIT, async {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = stalled
                .read(&mut buf)
                .await
                .expect("reading the stalled watch");
            received.extend_from_slice(&buf[..n]);
            if n == 0 || received.ends_with(b"\r\n0\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the closed watch's response did not end within {WAIT:?} ({} bytes read)",
        received.len()
    );
    assert!(
        received.starts_with(b"HTTP/1.1 200"),
        "the watch was answered {:?}",
        String::from_utf8_lossy(&received[..received.len().min(64)])
    );
    drop(stalled);

    // Other watches are unaffected.
    let (code, _) = ts.get(&format!("{CMS}?watch=1&timeoutSeconds=1")).await;
    assert_eq!(code, 200);
    ts.stop().await;
}
