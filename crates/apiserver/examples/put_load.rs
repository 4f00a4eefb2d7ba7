//! Closed-loop PUT load for the API server benchmark.
//!
//! Each of `--streams` workers owns one pod and updates it as fast as the
//! server answers: every PUT toggles an annotation and carries the
//! resourceVersion of the previous response, so every request is a real,
//! conflict-free write (an unchanged object would be a no-op upstream and
//! here). The pods are bound to a node that does not exist, so that no
//! scheduler or kubelet of the cluster writes them. All streams share one HTTP/2 connection over TLS, like h2load's
//! `-c1 -m16`.
//!
//! ```text
//! cargo run --release -p apiserver --example put_load -- \
//!     URL TOKEN CA_FILE NAMESPACE [STREAMS] [SECONDS] [OBJECT_BYTES]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;

type Sender = hyper::client::conn::http2::SendRequest<Full<Bytes>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        return Err(
            "usage: put_load URL TOKEN CA_FILE NAMESPACE [STREAMS] [SECONDS] [OBJECT_BYTES]".into(),
        );
    }
    let (url, token, ca_file, namespace) = (&args[1], &args[2], &args[3], &args[4]);
    let streams: usize = args.get(5).map_or(Ok(16), |s| s.parse())?;
    let seconds: u64 = args.get(6).map_or(Ok(10), |s| s.parse())?;
    let size: usize = args.get(7).map_or(Ok(10 * 1024), |s| s.parse())?;
    let authority = url
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    let sender = connect(&authority, ca_file).await?;
    let auth = format!("Bearer {token}");

    let mut workers = Vec::new();
    let count = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut latencies = Vec::new();
    for i in 0..streams {
        let name = format!("put-load-{i}");
        let path = format!("/api/v1/namespaces/{namespace}/pods");
        let body = pod_json(namespace, &name, size, "", false);
        let created = send(&sender, "POST", &path, &auth, body).await?;
        if created.0 != 201 && created.0 != 409 {
            return Err(format!(
                "creating {name}: HTTP {}: {}",
                created.0,
                String::from_utf8_lossy(&created.1)
            )
            .into());
        }
        let (code, current) = send(
            &sender,
            "GET",
            &format!("{path}/{name}"),
            &auth,
            Bytes::new(),
        )
        .await?;
        if code != 200 {
            return Err(format!("reading {name}: HTTP {code}").into());
        }
        let rv = resource_version(&current).ok_or("no resourceVersion in the pod")?;
        let (sender, auth, count, errors, stop) = (
            sender.clone(),
            auth.clone(),
            count.clone(),
            errors.clone(),
            stop.clone(),
        );
        let namespace = namespace.clone();
        workers.push(tokio::spawn(async move {
            let mut rv = rv;
            let mut toggle = false;
            let mut local = Vec::with_capacity(1 << 16);
            let item = format!("/api/v1/namespaces/{namespace}/pods/{name}");
            while !stop.load(Ordering::Relaxed) {
                toggle = !toggle;
                let body = pod_json(&namespace, &name, size, &rv, toggle);
                let started = Instant::now();
                match send(&sender, "PUT", &item, &auth, body).await {
                    Ok((200, response)) => {
                        local.push(started.elapsed());
                        count.fetch_add(1, Ordering::Relaxed);
                        match resource_version(&response) {
                            Some(next) => rv = next,
                            None => break,
                        }
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            local
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        latencies.extend(w.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "PUT {} streams, {size} B pods: {} requests in {elapsed:.1} s = {:.0} req/s, errors {}, p50 {:.2} ms, p99 {:.2} ms",
        streams,
        count.load(Ordering::Relaxed),
        count.load(Ordering::Relaxed) as f64 / elapsed,
        errors.load(Ordering::Relaxed),
        pct(0.50),
        pct(0.99),
    );
    Ok(())
}

async fn connect(authority: &str, ca_file: &str) -> Result<Sender, BoxError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut std::fs::read(ca_file)?.as_slice()) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(authority).await?;
    tcp.set_nodelay(true)?;
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let server_name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await?;
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(8 << 20)
        .handshake(TokioIo::new(tls))
        .await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn send(
    sender: &Sender,
    method: &str,
    path: &str,
    auth: &str,
    body: Bytes,
) -> Result<(u16, Bytes), BoxError> {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", auth)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(Full::new(body))?;
    let mut sender = sender.clone();
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let code = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((code, body))
}

/// A pod of about `size` bytes; `rv` empty for a create.
fn pod_json(namespace: &str, name: &str, size: usize, rv: &str, toggle: bool) -> Bytes {
    let payload = "x".repeat(size.saturating_sub(400));
    let rv_field = if rv.is_empty() {
        String::new()
    } else {
        format!(r#","resourceVersion":"{rv}""#)
    };
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"{namespace}"{rv_field},"annotations":{{"kstress.io/toggle":"{toggle}","kstress.io/payload":"{payload}"}}}},"spec":{{"nodeName":"bench-node","containers":[{{"name":"c","image":"busybox"}}]}}}}"#
    ))
}

/// The first `"resourceVersion":"N"` of a response: the object's own.
fn resource_version(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"resourceVersion\":\"";
    let start = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let end = start + body[start..].iter().position(|b| *b == b'"')?;
    String::from_utf8(body[start..end].to_vec()).ok()
}
