//! `kstress httperf`: an HTTP/2 + TLS block-transfer throughput tool, a
//! cousin of iperf built on HTTP/2.
//!
//! Every process is a [`Server`]: `GET /blocks?size=B&n=N&periodMS=P`
//! streams N blocks of B bytes, one every P milliseconds; `/metrics` serves
//! Prometheus counters and `/debug/pprof/profile` a CPU profile, so the
//! server's side of a transfer can be inspected while it runs. Given a
//! base URL, the process is also a [`Client`]: request loops multiplexed
//! over a few HTTP/2 connections fetch blocks back to back, and the run
//! ends with throughput and latency figures ([`ClientReport`]) in the same
//! results.json layout as every other kstress driver.
//!
//! ```no_run
//! use std::time::Duration;
//! use httperf::{BlockRequest, Client, ClientConfig, ClientTrust, Http2Tuning, Server,
//!     ServerConfig, ServerIdentity};
//!
//! # async fn example() -> Result<(), httperf::Error> {
//! let listen: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
//! let identity = ServerIdentity::self_signed(listen.ip())?;
//! let server = Server::start(ServerConfig::new(listen, identity)).await?;
//! let client = Client::connect(ClientConfig {
//!     base_url: server.url(),
//!     threads: 4,
//!     connections: 2,
//!     request: BlockRequest::new(1 << 20, 16, 1).unwrap(),
//!     duration: Duration::from_secs(5),
//!     max_requests: None,
//!     trust: ClientTrust::Insecure,
//!     keylog: None,
//!     tuning: Http2Tuning::default(),
//! })
//! .await?;
//! let report = client.run(std::future::pending()).await?;
//! print!("{report}");
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod blocks;
mod client;
mod metrics;
mod profile;
mod report;
mod server;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use blocks::{BlockRequest, MAX_PERIOD_MS, QueryError};
pub use client::{
    Client, ClientConfig, FIRST_BLOCK, Http2Tuning, MAX_FRAME_SIZE, MIN_FRAME_SIZE, RESPONSE,
    ReceivedBytes, RunEnd,
};
pub use metrics::ServerStats;
pub use profile::MAX_SECONDS as MAX_PROFILE_SECONDS;
pub use report::{ClientReport, RateMeter, Rates, SCENARIO};
pub use server::{DEFAULT_MAX_RESPONSE_BYTES, Server, ServerConfig};
pub use tls::{ClientTrust, KeyLogWriter, ServerIdentity, keylog_path};

/// Errors of the httperf server and client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// The underlying failure.
        source: std::io::Error,
    },
    /// A certificate, key or CA file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying failure.
        source: std::io::Error,
    },
    /// A PEM file does not hold what it should.
    #[error("{}: {reason}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The self-signed certificate cannot be generated.
    #[error("cannot generate a self-signed certificate: {0}")]
    Certificate(String),
    /// TLS configuration was refused (e.g. a key that does not match the
    /// certificate).
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The key log file cannot be opened.
    #[error("cannot open TLS key log file {}: {source}", path.display())]
    KeyLog {
        /// The file.
        path: PathBuf,
        /// The underlying failure.
        source: std::io::Error,
    },
    /// `--base-url` is not a usable https URL.
    #[error("invalid base URL {url:?}: {reason}")]
    BaseUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The client's options contradict each other.
    #[error("{0}")]
    InvalidConfig(String),
    /// The server cannot be reached.
    #[error("cannot connect to {target}: {reason}")]
    Connect {
        /// host:port.
        target: String,
        /// Why.
        reason: String,
    },
    /// The TLS handshake failed, typically on an untrusted certificate.
    #[error("TLS handshake with {target} failed: {reason}{}", if hint.is_empty() { String::new() } else { format!(" ({hint})") })]
    Handshake {
        /// host:port.
        target: String,
        /// The TLS error.
        reason: String,
        /// How to fix it, when the trust settings suggest a fix.
        hint: &'static str,
    },
    /// The server did not agree to HTTP/2.
    #[error("{target} did not negotiate HTTP/2 through ALPN")]
    NotHttp2 {
        /// host:port.
        target: String,
    },
    /// The server refused the request itself (a 4xx status), so every
    /// further request would fail the same way.
    #[error("the server refused {path}: {status}: {message}")]
    Refused {
        /// The request's path and query.
        path: String,
        /// The HTTP status.
        status: http::StatusCode,
        /// The first line of the response body.
        message: String,
    },
    /// Recording or writing results failed.
    #[error(transparent)]
    Measure(#[from] measure::Error),
}

impl From<rcgen::Error> for Error {
    fn from(err: rcgen::Error) -> Self {
        Error::Certificate(err.to_string())
    }
}
