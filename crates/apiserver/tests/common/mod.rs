//! Test harness: an embedded API server on loopback and kube-rs clients
//! for it.

// Each test binary uses its own subset of the harness.
#![allow(dead_code, unused_imports)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use apiserver::{CacheOptions, Server, ServerConfig, WatchSettings};
use kube::Client;
use store::etcd_server::TestEtcd;
use store::{DiskStore, DiskStoreOptions, MemoryStore, MemoryStoreOptions, Store};

/// Generous bound for anything a test waits for on a busy machine.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct TestServer {
    pub server: Server,
    pub client: Client,
    /// What the store needs kept alive: its data directory or its etcd.
    _backend: Backend,
}

/// The resources behind a test server's store, released with it.
enum Backend {
    Memory,
    Disk(tempfile::TempDir),
    Etcd(TestEtcd),
}

/// The store every test server uses: `KSTRESS_TEST_STORE` names the backend
/// (`memory`, the default, `disk` or `etcd`), so that the whole suite runs
/// against each of them.
async fn test_store() -> (Arc<dyn Store>, Backend) {
    let progress_interval = Duration::from_millis(200);
    match std::env::var("KSTRESS_TEST_STORE").as_deref() {
        Ok("disk") => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let store = DiskStore::open(
                dir.path(),
                DiskStoreOptions {
                    progress_interval,
                    ..DiskStoreOptions::default()
                },
            )
            .expect("the disk store opens");
            (Arc::new(store), Backend::Disk(dir))
        }
        Ok("etcd") => {
            let etcd = TestEtcd::start().await;
            let store = store::EtcdStore::connect(store::EtcdStoreOptions {
                progress_interval,
                ..etcd.options()
            })
            .await
            .expect("the test etcd answers");
            (Arc::new(store), Backend::Etcd(etcd))
        }
        Ok("memory") | Err(_) => {
            let store = MemoryStore::new(MemoryStoreOptions {
                progress_interval,
                ..MemoryStoreOptions::default()
            });
            (Arc::new(store), Backend::Memory)
        }
        Ok(other) => panic!("KSTRESS_TEST_STORE={other}: expected memory, disk or etcd"),
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::with(ServerConfig::default()).await
    }

    /// A server with short bookmark intervals and a small watch window, for
    /// tests of watch edge cases.
    pub async fn with_small_watch_cache() -> TestServer {
        Self::with(ServerConfig {
            watch: WatchSettings {
                bookmark_interval: Duration::from_millis(300),
                ..WatchSettings::default()
            },
            cache: CacheOptions {
                window: 20,
                ..CacheOptions::default()
            },
            ..ServerConfig::default()
        })
        .await
    }

    pub async fn with(config: ServerConfig) -> TestServer {
        let (store, backend) = test_store().await;
        let (server, client) = testkit::start_server(store, config).await;
        TestServer {
            server,
            client,
            _backend: backend,
        }
    }

    /// Stops the server; every test ends with it so that no listener or
    /// background task outlives its test.
    pub async fn stop(self) {
        self.server.shutdown().await;
    }

    /// A raw TLS connection to the server that trusts its CA, for tests
    /// that drive HTTP by hand (slow bodies, readers that stop reading).
    pub async fn tls_connection(&self) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        self.tls_connection_with_alpn(Vec::new()).await
    }

    /// An HTTP/2 connection (negotiated by ALPN, as kubectl's client-go
    /// does), for requests a test drives by hand.
    pub async fn http2(
        &self,
    ) -> hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>> {
        let tls = self.tls_connection_with_alpn(vec![b"h2".to_vec()]).await;
        let (sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tls),
        )
        .await
        .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        sender
    }

    async fn tls_connection_with_alpn(
        &self,
        alpn: Vec<Vec<u8>>,
    ) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut self.server.ca_pem().as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("CA certificate");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut config = config;
        config.alpn_protocols = alpn;
        let tcp = tokio::net::TcpStream::connect(self.server.addr())
            .await
            .expect("TCP connection");
        let server_name = rustls::pki_types::ServerName::IpAddress(self.server.addr().ip().into());
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(server_name, tcp)
            .await
            .expect("TLS handshake")
    }

    /// A client that trusts the server's CA but presents no token.
    pub fn anonymous_client(&self) -> Client {
        let mut config = kube::Config::new(self.server.url().parse().expect("server URL"));
        let der: Vec<Vec<u8>> = rustls_pemfile::certs(&mut self.server.ca_pem().as_bytes())
            .map(|c| c.expect("CA PEM").to_vec())
            .collect();
        config.root_cert = Some(der);
        config.default_retry = false;
        Client::try_from(config).expect("anonymous client")
    }

    /// Sends a raw request; returns the status code and the body as JSON
    /// (or as a JSON string when it is not JSON).
    pub async fn raw(
        &self,
        client: &Client,
        request: http::Request<Vec<u8>>,
    ) -> (u16, serde_json::Value) {
        let (code, _, value) = self.raw_with_headers(client, request).await;
        (code, value)
    }

    /// [`TestServer::raw`], with the response headers.
    pub async fn raw_with_headers(
        &self,
        client: &Client,
        request: http::Request<Vec<u8>>,
    ) -> (u16, http::HeaderMap, serde_json::Value) {
        let request = request.map(kube::client::Body::from);
        let response = client.send(request).await.expect("request sent");
        let code = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect_bytes()
            .await
            .expect("response body");
        let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        });
        (code, headers, value)
    }

    /// GET `path` with the admin token; (code, body).
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.raw(
            &self.client,
            http::Request::get(path).body(Vec::new()).unwrap(),
        )
        .await
    }
}

pub use testkit::client_for;

/// Retries `check` until it returns `Some`, failing after [`WAIT`] with
/// `what` in the message.
pub async fn wait_until<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    testkit::wait_until_within(WAIT, what, check).await
}

/// The Status of a failed kube-rs call.
pub fn status_of<T: std::fmt::Debug>(result: kube::Result<T>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected a Kubernetes Status error, got {other:?}"),
    }
}

/// The Status of a failed kube-rs call, if it failed with one.
pub fn status_of_opt<T>(result: kube::Result<T>) -> Option<Box<kube::core::Status>> {
    match result {
        Err(kube::Error::Api(status)) => Some(status),
        _ => None,
    }
}

/// Whether a kube-rs call failed with 404 NotFound.
pub fn is_not_found<T>(result: kube::Result<T>) -> bool {
    status_of_opt(result).is_some_and(|s| s.code == 404 && s.reason == "NotFound")
}
