//! The client role: request loops multiplexed over a few HTTP/2
//! connections, each loop fetching `/blocks` back to back.
//!
//! Connections are opened up front, so that a bad URL or certificate fails
//! before any measurement, and so that the server sees exactly
//! `--connections` TLS connections. Loop `i` uses connection
//! `i % connections`, which spreads the loops evenly.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use measure::{Class, ClassId, Kind, Measurement, Outcome, Recorder};
use rustls::pki_types::ServerName;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;

use crate::Error;
use crate::blocks::BlockRequest;
use crate::report::ClientReport;
use crate::tls::{ALPN_H2, ClientTrust, KeyLogWriter};

/// Operation class of the time until the whole first block has arrived.
pub const FIRST_BLOCK: &str = "first-block";
/// Operation class of the time until the whole response has arrived.
pub const RESPONSE: &str = "response";

/// How long connecting (TCP, TLS and HTTP/2 handshakes) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Socket read buffer under TLS, sized for many records per system call.
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// Smallest SETTINGS_MAX_FRAME_SIZE HTTP/2 allows (RFC 9113, 6.5.2).
pub const MIN_FRAME_SIZE: u32 = 1 << 14;
/// Largest SETTINGS_MAX_FRAME_SIZE HTTP/2 allows.
pub const MAX_FRAME_SIZE: u32 = (1 << 24) - 1;

/// HTTP/2 settings of the client's connections.
///
/// The windows are far above what loopback or a LAN needs, so that flow
/// control never limits a transfer; frames stay at the HTTP/2 default
/// size, which matches one TLS record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Http2Tuning {
    /// SETTINGS_INITIAL_WINDOW_SIZE: bytes one stream may have in flight.
    pub stream_window: u32,
    /// The connection's window, shared by its streams.
    pub connection_window: u32,
    /// SETTINGS_MAX_FRAME_SIZE: largest DATA frame the server may send.
    pub max_frame_size: u32,
}

impl Default for Http2Tuning {
    fn default() -> Self {
        Self {
            stream_window: 16 << 20,
            connection_window: 64 << 20,
            max_frame_size: 16 << 10,
        }
    }
}

/// What the client does.
#[derive(Debug)]
pub struct ClientConfig {
    /// The server, e.g. `https://127.0.0.1:8443`; a path is a prefix.
    pub base_url: String,
    /// Concurrent request loops (HTTP/2 streams).
    pub threads: usize,
    /// TLS connections the loops share.
    pub connections: usize,
    /// What each request asks for.
    pub request: BlockRequest,
    /// How long to run.
    pub duration: Duration,
    /// Stop after this many requests in total (all loops together).
    pub max_requests: Option<u64>,
    /// Which server certificates to accept.
    pub trust: ClientTrust,
    /// Where to write TLS secrets, when the user asked for that.
    pub keylog: Option<Arc<KeyLogWriter>>,
    /// HTTP/2 settings.
    pub tuning: Http2Tuning,
}

impl ClientConfig {
    fn validate(&self) -> Result<(), Error> {
        let invalid = |message: String| Err(Error::InvalidConfig(message));
        if self.threads == 0 {
            return invalid("--threads must be at least 1".to_owned());
        }
        if self.connections == 0 {
            return invalid("--connections must be at least 1".to_owned());
        }
        if self.connections > self.threads {
            return invalid(format!(
                "--connections ({}) must not exceed --threads ({}): a connection without a \
                 request loop would sit idle",
                self.connections, self.threads
            ));
        }
        if self.duration.is_zero() {
            return invalid("--duration must be positive".to_owned());
        }
        if !(MIN_FRAME_SIZE..=MAX_FRAME_SIZE).contains(&self.tuning.max_frame_size) {
            return invalid(format!(
                "the HTTP/2 frame size must be from {MIN_FRAME_SIZE} to {MAX_FRAME_SIZE} bytes, \
                 got {}",
                self.tuning.max_frame_size
            ));
        }
        if self.max_requests == Some(0) {
            return invalid("--requests must be at least 1".to_owned());
        }
        Ok(())
    }

    /// The configuration as results.json records it.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "base_url": self.base_url,
            "threads": self.threads,
            "connections": self.connections,
            "size": self.request.size,
            "n": self.request.n,
            "period_ms": self.request.period.as_millis(),
            "duration_s": self.duration.as_secs_f64(),
            "max_requests": self.max_requests,
            "insecure": self.trust == ClientTrust::Insecure,
            "http2": {
                "stream_window": self.tuning.stream_window,
                "connection_window": self.tuning.connection_window,
                "max_frame_size": self.tuning.max_frame_size,
            },
        })
    }
}

/// A live count of body bytes received, readable while the client runs
/// (for `-v 2` rate logging).
#[derive(Clone, Debug, Default)]
pub struct ReceivedBytes(Arc<AtomicU64>);

impl ReceivedBytes {
    /// Bytes received so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self, bytes: u64) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// A client with its connections open, ready to run.
pub struct Client {
    config: ClientConfig,
    uri: Uri,
    senders: Vec<SendRequest<Empty<Bytes>>>,
    drivers: JoinSet<()>,
    received: ReceivedBytes,
}

impl Client {
    /// Checks the configuration and opens every connection.
    pub async fn connect(config: ClientConfig) -> Result<Self, Error> {
        config.validate()?;
        let target = Target::parse(&config.base_url)?;
        let uri = target.uri(&config.request)?;
        let tls = config.trust.client_config(config.keylog.clone())?;
        let connector = TlsConnector::from(tls);
        let mut drivers = JoinSet::new();
        let mut senders = Vec::with_capacity(config.connections);
        for _ in 0..config.connections {
            let (sender, driver) = tokio::time::timeout(
                CONNECT_TIMEOUT,
                connect(&target, &connector, &config.trust, config.tuning),
            )
            .await
            .map_err(|_| Error::Connect {
                target: target.authority.clone(),
                reason: format!("no connection within {CONNECT_TIMEOUT:?}"),
            })??;
            drivers.spawn(driver);
            senders.push(sender);
        }
        Ok(Self {
            config,
            uri,
            senders,
            drivers,
            received: ReceivedBytes::default(),
        })
    }

    /// The live byte count of this client.
    pub fn received(&self) -> ReceivedBytes {
        self.received.clone()
    }

    /// Runs the request loops until the duration ends, the request budget
    /// is spent, or `stop` completes (e.g. Ctrl-C), then summarizes.
    /// Requests still in flight at the end are abandoned and not counted;
    /// their bytes are, since they did cross the network.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<ClientReport, Error> {
        let Self {
            config,
            uri,
            senders,
            mut drivers,
            received,
        } = self;
        let measurement = Measurement::new([
            Class::new(FIRST_BLOCK, Kind::Other),
            Class::new(RESPONSE, Kind::Other),
        ])?;
        let classes = Classes {
            first_block: measurement.class(FIRST_BLOCK)?,
            response: measurement.class(RESPONSE)?,
        };
        let started = Instant::now();
        let (stop_tx, stop_rx) = watch::channel(false);
        let budget = config.max_requests.map(|n| Arc::new(AtomicU64::new(n)));
        let mut loops = JoinSet::new();
        for i in 0..config.threads {
            let worker = Worker {
                sender: senders[i % senders.len()].clone(),
                uri: uri.clone(),
                request: config.request,
                recorder: measurement.recorder(),
                classes,
                received: received.clone(),
                budget: budget.clone(),
            };
            loops.spawn(worker.run(stop_rx.clone()));
        }
        drop(senders);
        let sampler = tokio::spawn(sample_per_second(received.clone(), stop_rx.clone()));

        let (refused, end) = tokio::select! {
            refused = first_refusal(&mut loops) => {
                let spent = budget
                    .as_ref()
                    .is_some_and(|left| left.load(Ordering::Relaxed) == 0);
                (refused, if spent { RunEnd::Requests } else { RunEnd::ConnectionsLost })
            }
            () = tokio::time::sleep(config.duration) => (None, RunEnd::Duration),
            () = stop => (None, RunEnd::Interrupted),
        };
        // Ignoring the result: the loops hold receivers until they end.
        let _ = stop_tx.send(true);
        let refused = refused.or(first_refusal(&mut loops).await);
        let elapsed = started.elapsed();
        let per_second = sampler.await.unwrap_or_default();
        drivers.shutdown().await;
        if let Some(err) = refused {
            return Err(err);
        }
        Ok(ClientReport::new(
            &config,
            measurement.snapshot(),
            received.get(),
            elapsed,
            per_second,
            end,
        ))
    }
}

/// Why a client run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// `--duration` passed.
    Duration,
    /// The request budget (`max_requests`) was spent.
    Requests,
    /// The caller's stop future completed (Ctrl-C).
    Interrupted,
    /// Every request loop lost its connection before the run was over: the
    /// server went away, and the figures cover only part of the run.
    ConnectionsLost,
}

impl RunEnd {
    /// The stable name results.json records as `stop_reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunEnd::Duration => "duration",
            RunEnd::Requests => "requests",
            RunEnd::Interrupted => "interrupted",
            RunEnd::ConnectionsLost => "connections-lost",
        }
    }
}

/// Waits for every loop to end; returns the first refusal among them.
/// A panic in a loop is a bug and goes on unwinding here.
async fn first_refusal(loops: &mut JoinSet<Result<(), Error>>) -> Option<Error> {
    let mut refused = None;
    while let Some(joined) = loops.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                refused.get_or_insert(err);
            }
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => {}
        }
    }
    refused
}

/// The server as the URL names it.
struct Target {
    host: String,
    port: u16,
    authority: String,
    prefix: String,
}

impl Target {
    fn parse(base_url: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::BaseUrl {
            url: base_url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = base_url.parse().map_err(|_| invalid("not a URL"))?;
        if uri.scheme_str() != Some("https") {
            return Err(invalid(
                "expected https://HOST[:PORT]: the server speaks HTTP/2 over TLS",
            ));
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        if uri.query().is_some() {
            return Err(invalid("a base URL takes no query"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Self {
            host,
            port: authority.port_u16().unwrap_or(443),
            authority: authority.to_string(),
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    fn uri(&self, request: &BlockRequest) -> Result<Uri, Error> {
        format!(
            "https://{}{}{}",
            self.authority,
            self.prefix,
            request.path_and_query()
        )
        .parse()
        .map_err(|err: http::uri::InvalidUri| Error::BaseUrl {
            url: format!("https://{}{}", self.authority, self.prefix),
            reason: err.to_string(),
        })
    }
}

type Driver = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Opens one TLS connection and performs the HTTP/2 handshake. The
/// returned driver must be polled (spawned) for the connection to work.
async fn connect(
    target: &Target,
    connector: &TlsConnector,
    trust: &ClientTrust,
    tuning: Http2Tuning,
) -> Result<(SendRequest<Empty<Bytes>>, Driver), Error> {
    let connect_error = |reason: String| Error::Connect {
        target: target.authority.clone(),
        reason,
    };
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|err| connect_error(err.to_string()))?;
    tcp.set_nodelay(true)
        .map_err(|err| connect_error(err.to_string()))?;
    let server_name = ServerName::try_from(target.host.clone())
        .map_err(|err| connect_error(format!("invalid server name: {err}")))?;
    // rustls reads the socket 4 KiB at a time; a large buffer underneath
    // turns that into one system call per many TLS records.
    let tcp = BufReader::with_capacity(READ_BUFFER_BYTES, tcp);
    let tls = connector
        .connect(server_name, tcp)
        .await
        .map_err(|source| Error::Handshake {
            target: target.authority.clone(),
            reason: source.to_string(),
            hint: trust.hint(),
        })?;
    if tls.get_ref().1.alpn_protocol() != Some(ALPN_H2) {
        return Err(Error::NotHttp2 {
            target: target.authority.clone(),
        });
    }
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .initial_stream_window_size(tuning.stream_window)
        .initial_connection_window_size(tuning.connection_window)
        .max_frame_size(tuning.max_frame_size)
        .adaptive_window(false)
        .handshake(TokioIo::new(tls))
        .await
        .map_err(|err| connect_error(format!("HTTP/2 handshake failed: {err}")))?;
    let driver = Box::pin(async move {
        if let Err(err) = connection.await {
            tracing::debug!(%err, "HTTP/2 connection ended with an error");
        }
    });
    Ok((sender, driver))
}

#[derive(Clone, Copy)]
struct Classes {
    first_block: ClassId,
    response: ClassId,
}

/// One request loop.
struct Worker {
    sender: SendRequest<Empty<Bytes>>,
    uri: Uri,
    request: BlockRequest,
    recorder: Recorder,
    classes: Classes,
    received: ReceivedBytes,
    budget: Option<Arc<AtomicU64>>,
}

impl Worker {
    /// Fetches until stopped, out of budget or out of connection; ends
    /// with an error only when the server refuses the request itself.
    async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<(), Error> {
        loop {
            if *stop.borrow() || !self.take_ticket() {
                return Ok(());
            }
            let fetched = tokio::select! {
                biased;
                _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
                fetched = self.fetch() => fetched,
            };
            match fetched {
                Ok(()) => {}
                Err(Failure::Refused(err)) => return Err(err),
                Err(Failure::Failed(latency, outcome)) => {
                    self.recorder
                        .record(self.classes.response, latency, outcome);
                    if self.sender.is_closed() {
                        tracing::warn!("HTTP/2 connection closed; its request loop stops");
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Takes one request from the shared budget, if there is one.
    fn take_ticket(&self) -> bool {
        self.budget.as_ref().is_none_or(|budget| {
            budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(1)
                })
                .is_ok()
        })
    }

    /// One request; successes are recorded here, failures returned so the
    /// loop can decide whether to go on.
    async fn fetch(&mut self) -> Result<(), Failure> {
        let start = Instant::now();
        let failed =
            |reason: &'static str| Failure::Failed(start.elapsed(), Outcome::error(reason));
        self.sender
            .ready()
            .await
            .map_err(|_| failed("connection"))?;
        let mut request = Request::new(Empty::new());
        *request.uri_mut() = self.uri.clone();
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|_| failed("stream"))?;
        let status = response.status();
        if status.is_client_error() {
            return Err(Failure::Refused(Error::Refused {
                path: self.request.path_and_query(),
                status,
                message: first_line(response.into_body()).await,
            }));
        }
        if status != StatusCode::OK {
            return Err(Failure::Failed(
                start.elapsed(),
                Outcome::status(status.as_u16()),
            ));
        }
        let mut body = response.into_body();
        let mut got = 0u64;
        let mut first_block = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| failed("body"))?;
            if let Some(data) = frame.data_ref() {
                let len = data.len() as u64;
                got += len;
                self.received.add(len);
                if first_block.is_none() && got >= self.request.size {
                    first_block = Some(start.elapsed());
                }
            }
        }
        let latency = start.elapsed();
        if got != self.request.total_bytes() {
            return Err(Failure::Failed(latency, Outcome::error("short-body")));
        }
        if let Some(first_block) = first_block {
            self.recorder
                .record(self.classes.first_block, first_block, Outcome::Ok);
        }
        self.recorder
            .record(self.classes.response, latency, Outcome::Ok);
        Ok(())
    }
}

/// Why one request did not succeed.
enum Failure {
    /// The request failed (stream reset, 5xx, short body); it is recorded
    /// and the loop goes on while its connection lasts.
    Failed(Duration, Outcome),
    /// The server refused the request as such; every retry would fail alike.
    Refused(Error),
}

/// Largest part of an error response read for its message.
const ERROR_BODY_LIMIT: usize = 4096;

/// The first line of a (small, textual) error response body.
async fn first_line(body: hyper::body::Incoming) -> String {
    match Limited::new(body, ERROR_BODY_LIMIT).collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes())
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        Err(err) => format!("(unreadable body: {err})"),
    }
}

/// Bytes received in each second of the run, until `stop` turns true; the
/// last, partial second is included.
async fn sample_per_second(received: ReceivedBytes, mut stop: watch::Receiver<bool>) -> Vec<u64> {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    let mut seconds = Vec::new();
    let mut last = received.get();
    let mut take = |seconds: &mut Vec<u64>| {
        let now = received.get();
        seconds.push(now - last);
        last = now;
    };
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            _ = ticks.tick() => take(&mut seconds),
        }
    }
    take(&mut seconds);
    seconds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        let target = Target::parse("https://127.0.0.1:8443/").unwrap();
        assert_eq!((target.host.as_str(), target.port), ("127.0.0.1", 8443));
        assert_eq!(target.prefix, "");
        let target = Target::parse("https://[::1]/perf").unwrap();
        assert_eq!((target.host.as_str(), target.port), ("::1", 443));
        let request = BlockRequest::parse(Some("size=1&n=2&periodMS=3"), 10).unwrap();
        assert_eq!(
            target.uri(&request).unwrap().to_string(),
            "https://[::1]/perf/blocks?size=1&n=2&periodMS=3"
        );
        for bad in [
            "http://127.0.0.1:80",
            "127.0.0.1:8443",
            "https://h/?a=1",
            "::",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(Error::BaseUrl { .. })),
                "{bad}"
            );
        }
    }
}
