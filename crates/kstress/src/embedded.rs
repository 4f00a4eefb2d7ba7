//! The embedded cluster: the API server on loopback with a fresh CA and
//! token, plus the scheduler, controllers and simulated nodes, all of
//! which reach the server over HTTPS like any other client.

use std::net::SocketAddr;

use anyhow::Context as _;
use apiserver::{Server, ServerConfig};
use clap::Args;
use kube::Client;

use crate::storage::{self, StoreArgs};

/// Options of the in-process cluster.
#[derive(Args, Clone, Debug)]
pub struct ClusterArgs {
    /// Simulated nodes of the embedded cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,

    #[command(flatten)]
    pub store: StoreArgs,
}

/// A running embedded cluster.
pub struct Cluster {
    server: Server,
    client: Client,
}

impl Cluster {
    /// Starts the cluster on `listen` (port 0 picks a free port).
    pub async fn start(args: &ClusterArgs, listen: SocketAddr) -> anyhow::Result<Cluster> {
        let store = storage::open(&args.store).await?;
        let config = ServerConfig {
            listen,
            ..ServerConfig::default()
        };
        let server = Server::start(store, config)
            .await
            .context("cannot start the embedded API server")?;
        let client = client_from_kubeconfig(&server.kubeconfig(), None)
            .await
            .context("cannot build a client for the embedded API server")?;
        Ok(Cluster { server, client })
    }

    /// A client of the cluster, built from its kubeconfig like any other.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The API server's URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The API server's kubeconfig (CA, URL and token).
    pub fn kubeconfig(&self) -> String {
        self.server.kubeconfig()
    }

    /// Stops everything.
    pub async fn stop(self) {
        self.server.shutdown().await;
    }
}

/// A client from kubeconfig text, for load generation: kube-rs must not
/// retry throttled or failed calls on its own, because every answer of the
/// server is a measurement.
pub async fn client_from_kubeconfig(text: &str, context: Option<&str>) -> anyhow::Result<Client> {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(text).context("invalid kubeconfig")?;
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .context("incomplete kubeconfig")?;
    client_from_config(config)
}

/// A load-generating client from a client configuration.
pub fn client_from_config(mut config: kube::Config) -> anyhow::Result<Client> {
    config.default_retry = false;
    config.connect_timeout = Some(std::time::Duration::from_secs(10));
    Client::try_from(config).context("cannot build the Kubernetes client")
}
