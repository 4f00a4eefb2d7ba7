//! A Kubernetes-compatible API server over a kstress [`store::Store`].
//!
//! It follows the Kubernetes API conventions wherever a client can see
//! them — paths, verbs, `Status` errors, resourceVersion semantics of get,
//! list and watch, optimistic concurrency, pagination, bookmarks, 410 Gone,
//! discovery, OpenAPI and Table output — so that kube-rs, client-go and
//! kubectl work against it unchanged. Every other kstress component is a
//! client of this server over HTTPS.

mod api;
mod authn;
mod convert;
mod crd;
mod discovery;
mod error;
mod fieldvalidation;
mod health;
mod kinds;
mod logs;
mod metrics;
mod namespaces;
mod path;
mod protobuf;
mod query;
mod rbac;
mod registry;
mod response;
mod rest;
mod server;
mod strategy;
mod subresources;
mod table;
mod tls;
mod verb;
mod watch;
mod watchcache;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch as signal;
use tokio::task::JoinHandle;

pub use authn::{AuthnError, TokenFile};
pub use error::ApiError;
pub use rbac::AuthorizationMode;
pub use server::{KUBERNETES_VERSION, Limits};
pub use tls::{ClientIdentity, SubjectAltName, TlsError, TlsMaterial};
pub use watch::WatchSettings;
pub use watchcache::CacheOptions;

/// How the server is set up.
#[derive(Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Serving certificate; a fresh CA and certificate when absent.
    pub tls: Option<TlsMaterial>,
    /// More names the generated serving certificate covers (with `tls`
    /// absent): how clients elsewhere reach the server.
    pub tls_sans: Vec<SubjectAltName>,
    /// The admin bearer token (a user in `system:masters`); random when
    /// absent.
    pub token: Option<String>,
    /// More users by bearer token, in kube-apiserver's `--token-auth-file`
    /// format.
    pub token_auth_file: Option<PathBuf>,
    /// PEM CA bundle that signs client certificates. Without it, the
    /// generated cluster CA does; with a given serving certificate and no
    /// client CA, client certificates are not asked for.
    pub client_ca: Option<String>,
    /// How authenticated requests are authorized; `AlwaysAllow` keeps
    /// every user unrestricted, `RBAC` grants what the stored roles bind.
    pub authorization: AuthorizationMode,
    pub limits: Limits,
    pub watch: WatchSettings,
    pub cache: CacheOptions,
    /// How often the store's history is compacted (upstream: 5 minutes);
    /// each compaction keeps the history since the previous one.
    pub compaction_interval: Option<Duration>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: None,
            tls_sans: Vec::new(),
            token: None,
            token_auth_file: None,
            client_ca: None,
            authorization: AuthorizationMode::AlwaysAllow,
            limits: Limits::default(),
            watch: WatchSettings::default(),
            cache: CacheOptions::default(),
            compaction_interval: Some(Duration::from_secs(300)),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Authn(#[from] AuthnError),
    #[error("cannot load the stored CustomResourceDefinitions: {0}")]
    Crds(ApiError),
    #[error("cannot create the system namespaces: {0}")]
    Bootstrap(ApiError),
    #[error("cannot set up the RBAC roles and bindings: {0}")]
    RbacBootstrap(ApiError),
}

/// A running API server; [`Server::shutdown`] stops it.
pub struct Server {
    addr: SocketAddr,
    tls: TlsMaterial,
    token: String,
    store: Arc<dyn Store>,
    shutdown: signal::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Binds, starts serving and returns once the server accepts requests.
    pub async fn start(store: Arc<dyn Store>, config: ServerConfig) -> Result<Server, ServerError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ServerError::Listen {
                addr: config.listen,
                source,
            })?;
        let tls = match config.tls {
            Some(material) => material,
            None => {
                let mut names = config.tls_sans;
                names.push(SubjectAltName::Ip(connect_ip(addr.ip())));
                TlsMaterial::generate(&names)?
            }
        };
        let client_ca = match (&config.client_ca, &tls.ca_key_pem) {
            (Some(pem), _) => Some(pem.as_str()),
            (None, Some(_)) => Some(tls.ca_pem.as_str()),
            (None, None) => None,
        };
        let rustls_config = tls.server_config(client_ca)?;
        let token = config.token.unwrap_or_else(random_token);
        let token_file = match &config.token_auth_file {
            Some(path) => TokenFile::read(path)?,
            None => TokenFile::default(),
        };
        let authenticator = authn::Authenticator::new(&token, token_file);
        let authorizer = Arc::new(rbac::Authorizer::new(config.authorization));
        let registry = Arc::new(registry::Registry::new());
        let api = Arc::new(api::Api::new(store.clone(), registry, config.cache));
        crd::load_all(&api).await.map_err(ServerError::Crds)?;
        bootstrap_namespaces(&api)
            .await
            .map_err(ServerError::Bootstrap)?;
        rbac::bootstrap(&api)
            .await
            .map_err(ServerError::RbacBootstrap)?;
        if config.authorization == AuthorizationMode::Rbac {
            authorizer
                .sync(&api)
                .await
                .map_err(ServerError::RbacBootstrap)?;
        }
        let shared = Arc::new(server::Shared::new(
            api.clone(),
            authenticator,
            authorizer.clone(),
            config.limits,
            config.watch,
            SocketAddr::new(connect_ip(addr.ip()), addr.port()).to_string(),
        ));
        let (shutdown, shutdown_rx) = signal::channel(false);
        let mut tasks = vec![
            tokio::spawn(server::serve(
                listener,
                rustls_config,
                shared,
                shutdown_rx.clone(),
            )),
            tokio::spawn(stop_on(
                shutdown_rx.clone(),
                namespaces::run(Arc::downgrade(&api)),
            )),
        ];
        if config.authorization == AuthorizationMode::Rbac {
            tasks.push(tokio::spawn(stop_on(
                shutdown_rx.clone(),
                authorizer.keep_current(Arc::downgrade(&api)),
            )));
        }
        if let Some(interval) = config.compaction_interval {
            tasks.push(tokio::spawn(stop_on(
                shutdown_rx,
                compact_periodically(store.clone(), interval),
            )));
        }
        drop(api);
        Ok(Server {
            addr,
            tls,
            token,
            store,
            shutdown,
            tasks,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where clients on this host reach the server: its address, or
    /// loopback of the same family when it listens on all addresses.
    pub fn connect_addr(&self) -> SocketAddr {
        SocketAddr::new(connect_ip(self.addr.ip()), self.addr.port())
    }

    /// `https://127.0.0.1:PORT`, or the address it listens on.
    pub fn url(&self) -> String {
        format!("https://{}", self.connect_addr())
    }

    pub fn ca_pem(&self) -> &str {
        &self.tls.ca_pem
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The serving TLS material (and the cluster CA's key when generated,
    /// to issue client certificates with).
    pub fn tls(&self) -> &TlsMaterial {
        &self.tls
    }

    /// The store behind the server (tests compact it to provoke 410s).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// A kubeconfig for this server: its CA, URL and token.
    pub fn kubeconfig(&self) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(self.tls.ca_pem.as_bytes());
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: kstress
  cluster:
    server: {url}
    certificate-authority-data: {ca}
users:
- name: kstress-admin
  user:
    token: {token}
contexts:
- name: kstress
  context:
    cluster: kstress
    user: kstress-admin
current-context: kstress
",
            url = self.url(),
            token = self.token,
        )
    }

    /// Stops accepting, closes connections and background tasks.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

/// The address a client on this host connects to for a server listening
/// on `listen`: an unspecified address (0.0.0.0 or ::) cannot be connected
/// to by name in a certificate, so loopback of the same family stands in.
pub fn connect_ip(listen: IpAddr) -> IpAddr {
    match listen {
        IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V6(ip) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    }
}

async fn stop_on(
    mut shutdown: signal::Receiver<bool>,
    task: impl std::future::Future<Output = ()>,
) {
    tokio::select! {
        _ = task => {}
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
}

/// Compacts the store every interval to the revision seen one interval
/// earlier, as kube-apiserver does on etcd.
async fn compact_periodically(store: Arc<dyn Store>, interval: Duration) {
    let mut previous = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if let Some(revision) = previous
            && let Err(err) = store.compact(revision).await
        {
            tracing::warn!(%err, revision, "compaction failed");
        }
        previous = store.current_revision().await.ok();
    }
}

/// The namespaces every cluster has; nodes keep their leases in
/// `kube-node-lease`.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

async fn bootstrap_namespaces(api: &api::Api) -> Result<(), ApiError> {
    let Some(def) = api.registry.snapshot().get("", "v1", "namespaces") else {
        return Ok(());
    };
    for name in SYSTEM_NAMESPACES {
        let namespace = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name},
        });
        match api.create(&def, None, namespace, false).await {
            Ok(_) => {}
            Err(err) if err.reason == "AlreadyExists" => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
