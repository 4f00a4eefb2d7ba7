//! The HTTPS server every `kstress httperf` process runs.
//!
//! One accept loop hands each TCP connection to its own task, which does
//! the TLS handshake and then serves HTTP/2 or HTTP/1.1 as ALPN decided.
//! Shutdown is graceful (GOAWAY, in-flight responses may finish) for a
//! bounded grace period, after which the remaining connections are cut.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::Error;
use crate::blocks::{BlockBody, BlockRequest};
use crate::metrics::{GaugeGuard, ServerMetrics, ServerStats};
use crate::tls::{ALPN_H2, KeyLogWriter, ServerIdentity};

/// Default of `--max-response-bytes`: 16 GiB, enough for a minute of
/// 2 Gbit/s on one stream while keeping a typo from streaming for hours.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 << 30;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed accept (e.g. out of file descriptors) so that the
/// loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// HTTP/2 send buffer per stream: a few pieces of a block, so that a
/// stream never waits for the body between two flow-control updates.
const SEND_BUFFER_BYTES: usize = 1 << 20;

/// The body of every response: a paced block stream or a small full body.
pub(crate) type ResponseBody = Either<BlockBody, Full<Bytes>>;
pub(crate) type Response = http::Response<ResponseBody>;

/// How to run the server.
#[derive(Debug)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Certificate and key presented to clients.
    pub identity: ServerIdentity,
    /// Largest `/blocks` response (size x n) the server agrees to send.
    pub max_response_bytes: u64,
    /// Where to write TLS secrets, when the user asked for that.
    pub keylog: Option<Arc<KeyLogWriter>>,
    /// How long in-flight responses may go on after shutdown starts.
    pub shutdown_grace: Duration,
}

impl ServerConfig {
    /// A configuration with the defaults of `kstress httperf`.
    pub fn new(listen: SocketAddr, identity: ServerIdentity) -> Self {
        Self {
            listen,
            identity,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            keylog: None,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// A running server; [`Server::shutdown`] stops it, and so does dropping it
/// (without waiting).
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    metrics: ServerMetrics,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// What every connection task shares.
struct State {
    metrics: ServerMetrics,
    registry: Registry,
    max_response_bytes: u64,
    http2: http2::Builder<TokioExecutor>,
    http1: http1::Builder,
}

impl Server {
    /// Binds the listener and starts serving in the background.
    pub async fn start(config: ServerConfig) -> Result<Self, Error> {
        let tls = config.identity.server_config(config.keylog)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let (metrics, registry) = ServerMetrics::registered();
        let state = Arc::new(State {
            metrics: metrics.clone(),
            registry,
            max_response_bytes: config.max_response_bytes,
            http2: http2_builder(),
            http1: http1_builder(),
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(
            listener,
            TlsAcceptor::from(tls),
            state,
            stopped,
            config.shutdown_grace,
        ));
        tracing::info!(%local_addr, "httperf server listening");
        Ok(Self {
            local_addr,
            metrics,
            stop,
            task,
        })
    }

    /// The bound address (with the real port when the config asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's base URL, e.g. `https://127.0.0.1:8443`.
    pub fn url(&self) -> String {
        format!("https://{}", self.local_addr)
    }

    /// The server's counters now.
    pub fn stats(&self) -> ServerStats {
        self.metrics.stats()
    }

    /// Stops accepting, lets in-flight responses finish within the grace
    /// period, then closes every connection and returns.
    pub async fn shutdown(self) {
        // Ignoring the result: the loop may already be gone after a panic,
        // which the join below reports.
        let _ = self.stop.send(true);
        if let Err(err) = self.task.await {
            tracing::error!(%err, "httperf server task failed");
        }
    }
}

fn http2_builder() -> http2::Builder<TokioExecutor> {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_send_buf_size(SEND_BUFFER_BYTES)
        .max_concurrent_streams(1024);
    builder
}

fn http1_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new());
    builder
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // A send or a dropped Server both end the loop.
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    connections.spawn(serve_connection(
                        tcp,
                        peer,
                        acceptor.clone(),
                        Arc::clone(&state),
                        graceful.watcher(),
                    ));
                }
                Err(err) => {
                    tracing::warn!(%err, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!(
            ?grace,
            "closing connections still busy after the grace period"
        );
    }
    connections.shutdown().await;
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    state: Arc<State>,
    watcher: Watcher,
) {
    if let Err(err) = tcp.set_nodelay(true) {
        tracing::debug!(%peer, %err, "cannot disable Nagle's algorithm");
    }
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(err)) => {
            tracing::debug!(%peer, %err, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    state.metrics.connections.inc();
    let _open = GaugeGuard::raise(&state.metrics.active_connections);
    let h2 = tls.get_ref().1.alpn_protocol() == Some(ALPN_H2);
    let io = TokioIo::new(tls);
    let service = {
        let state = Arc::clone(&state);
        service_fn(move |request| {
            let state = Arc::clone(&state);
            async move { Ok::<_, Infallible>(route(request, &state).await) }
        })
    };
    let result = if h2 {
        watcher
            .watch(state.http2.serve_connection(io, service))
            .await
    } else {
        watcher
            .watch(state.http1.serve_connection(io, service))
            .await
    };
    if let Err(err) = result {
        tracing::debug!(%peer, %err, "connection ended with an error");
    }
}

async fn route(request: Request<Incoming>, state: &State) -> Response {
    let path = request.uri().path();
    let handler = match path {
        "/blocks" => "blocks",
        "/metrics" => "metrics",
        "/debug/pprof/profile" => "profile",
        _ => "other",
    };
    let response = if handler == "other" {
        text(StatusCode::NOT_FOUND, format!("no handler for {path}"))
    } else if request.method() != Method::GET {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{path} accepts GET only"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
        response
    } else {
        let query = request.uri().query();
        match handler {
            "blocks" => blocks(query, state),
            "metrics" => metrics(state),
            _ => crate::profile::handle(query).await,
        }
    };
    state
        .metrics
        .count_request(handler, response.status().as_u16());
    response
}

fn blocks(query: Option<&str>, state: &State) -> Response {
    let request = match BlockRequest::parse(query, state.max_response_bytes) {
        Ok(request) => request,
        Err(err) => return text(StatusCode::BAD_REQUEST, err.to_string()),
    };
    let body = BlockBody::new(
        request,
        state.metrics.sent_bytes.clone(),
        GaugeGuard::raise(&state.metrics.active_streams),
    );
    let mut response = http::Response::new(Either::Left(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, request.total_bytes().into());
    response
}

fn metrics(state: &State) -> Response {
    let mut encoded = String::new();
    if let Err(err) = prometheus_client::encoding::text::encode(&mut encoded, &state.registry) {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {err}"),
        );
    }
    let mut response = http::Response::new(full(encoded));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    response
}

/// A complete body.
pub(crate) fn full(body: impl Into<Bytes>) -> ResponseBody {
    Either::Right(Full::new(body.into()))
}

/// A plain-text response; error messages end with a newline like the
/// rest of kstress's text output.
pub(crate) fn text(status: StatusCode, message: impl Into<String>) -> Response {
    let mut message = message.into();
    message.push('\n');
    let mut response = http::Response::new(full(message));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
