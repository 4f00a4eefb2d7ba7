//! The node's log endpoint: `GET /containerLogs/{namespace}/{pod}/{container}`
//! with the `pods/log` query parameters, like the kubelet's.
//!
//! It speaks plain HTTP without authentication and binds the node's
//! address (loopback for embedded nodes): the embedded API server proxies
//! to it as a real API server proxies to a kubelet's port.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::format::{LogQuery, read_tail};
use super::registry::{ContainerLog, LogRegistry};

type Body = BoxBody<Bytes, Infallible>;

/// How often a followed log is checked for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// A running log endpoint.
pub struct LogServer {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl LogServer {
    /// Serves `registry` on `listen` (port 0 picks a free port).
    pub async fn start(listen: SocketAddr, registry: LogRegistry) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (shutdown, stop) = watch::channel(false);
        let task = tokio::spawn(accept(listener, registry, stop));
        Ok(LogServer {
            addr,
            shutdown,
            task,
        })
    }

    /// The bound address; its port goes into the Node's `daemonEndpoints`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and ends open streams.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

async fn accept(listener: TcpListener, registry: LogRegistry, mut stop: watch::Receiver<bool>) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(%err, "log endpoint accept failed");
                    continue;
                }
            },
            () = crate::stopped(&mut stop) => return,
        };
        let registry = registry.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let registry = registry.clone();
                let stop = stop.clone();
                async move { Ok::<_, Infallible>(handle(&registry, &req, stop)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    response
}

fn handle(
    registry: &LogRegistry,
    req: &Request<Incoming>,
    stop: watch::Receiver<bool>,
) -> Response<Body> {
    let path = req.uri().path();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let ["containerLogs", namespace, pod, container] = parts.as_slice() else {
        return text(
            StatusCode::NOT_FOUND,
            format!("404 page not found: {path}\n"),
        );
    };
    let query = match parse_query(req.uri().query().unwrap_or_default()) {
        Ok(query) => query,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let log = match registry.get(namespace, pod, container) {
        None => {
            return text(
                StatusCode::NOT_FOUND,
                format!("pod {namespace}/{pod} is not known to this node"),
            );
        }
        Some(None) => {
            return text(
                StatusCode::NOT_FOUND,
                format!("container {container:?} in pod {pod:?} is not known to this node"),
            );
        }
        Some(Some(log)) => log,
    };
    let file = if query.previous {
        log.previous.clone().ok_or_else(|| {
            format!("previous terminated container {container:?} in pod {pod:?} not found")
        })
    } else {
        log.current.clone().ok_or_else(|| {
            format!(
                "container {container:?} in pod {pod:?} is waiting to start: {}",
                log.waiting_reason.as_deref().unwrap_or("ContainerCreating")
            )
        })
    };
    let file = match file {
        Ok(file) => file,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let follow = query.follow && !query.previous && log.running;
    let (tx, rx) = mpsc::channel(16);
    let target = Target {
        registry: registry.clone(),
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        container: container.to_string(),
        file,
    };
    tokio::spawn(stream_log(target, query, follow, tx, stop));
    let body = StreamBody::new(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
    }));
    let mut response = Response::new(BodyExt::boxed(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    response
}

/// The `pods/log` query: `follow`, `tailLines`, `timestamps`,
/// `limitBytes`, `sinceSeconds`, `sinceTime` and `previous`.
fn parse_query(query: &str) -> Result<LogQuery, String> {
    let mut parsed = LogQuery::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let number = |what: &str| {
            value
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| format!("invalid {what} {value:?}: must be a non-negative integer"))
        };
        let flag = value == "true" || value == "1";
        match key.as_ref() {
            "follow" => parsed.follow = flag,
            "previous" => parsed.previous = flag,
            "timestamps" => parsed.timestamps = flag,
            "tailLines" => parsed.tail_lines = Some(to_usize(number("tailLines")?)),
            "limitBytes" => parsed.limit_bytes = Some(to_usize(number("limitBytes")?)),
            "sinceSeconds" => {
                let seconds = number("sinceSeconds")?;
                parsed.since = jiff::Timestamp::now()
                    .checked_sub(jiff::SignedDuration::from_secs(seconds))
                    .ok();
            }
            "sinceTime" => {
                parsed.since = Some(
                    value
                        .parse()
                        .map_err(|err| format!("invalid sinceTime {value:?}: {err}"))?,
                );
            }
            _ => {}
        }
    }
    Ok(parsed)
}

fn to_usize(n: i64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The log file being streamed and the container it belongs to.
struct Target {
    registry: LogRegistry,
    namespace: String,
    pod: String,
    container: String,
    file: PathBuf,
}

impl Target {
    /// Whether the file is still being written by a running container.
    fn live(&self) -> bool {
        self.registry
            .get(&self.namespace, &self.pod, &self.container)
            .flatten()
            .is_some_and(|log: ContainerLog| {
                log.running && log.current.as_ref() == Some(&self.file)
            })
    }
}

/// Sends the selected part of the log, then (when following) new output
/// until the container stops, the client goes away or the node shuts down.
async fn stream_log(
    target: Target,
    mut query: LogQuery,
    follow: bool,
    tx: mpsc::Sender<Bytes>,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(mut file) = tokio::fs::File::open(&target.file).await else {
        return;
    };
    let mut offset = 0u64;
    let mut remaining = query.limit_bytes.unwrap_or(usize::MAX);
    loop {
        let live = follow && target.live();
        let mut fresh = Vec::new();
        if file.seek(std::io::SeekFrom::Start(offset)).await.is_err()
            || file.read_to_end(&mut fresh).await.is_err()
        {
            return;
        }
        let (mut out, consumed) = read_tail(&fresh, &query);
        offset += u64::try_from(consumed).unwrap_or(0);
        query.tail_lines = None;
        out.truncate(remaining);
        remaining -= out.len();
        if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
            return;
        }
        if !live || remaining == 0 {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(FOLLOW_POLL) => {}
            () = tx.closed() => return,
            () = crate::stopped(&mut stop) => return,
        }
    }
}
