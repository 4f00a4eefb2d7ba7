//! The embedded cluster: the API server on loopback with a fresh CA and
//! token, plus the scheduler, controllers and simulated nodes, all of
//! which reach the server over HTTPS like any other client.

use anyhow::Context as _;
use apiserver::{Server, ServerConfig};
use clap::{Args, ValueEnum};
use controllers::{ControllerOptions, Controllers};
use kube::Client;
use node::{NodeAgent, NodeConfig, RuntimeKind};

use crate::storage::{self, StoreArgs};

/// Options of the in-process cluster.
#[derive(Args, Clone, Debug)]
pub struct ClusterArgs {
    /// Simulated nodes of the embedded cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,

    /// Container runtime of the simulated nodes.
    #[arg(long, value_enum, default_value_t = Runtime::Sim)]
    pub runtime: Runtime,

    #[command(flatten)]
    pub store: StoreArgs,
}

/// Container runtimes of simulated nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Runtime {
    /// No processes: containers are scripted timers (thousands of nodes fit).
    Sim,
    /// Container commands run for real inside bubblewrap.
    Process,
}

impl From<Runtime> for RuntimeKind {
    fn from(runtime: Runtime) -> Self {
        match runtime {
            Runtime::Sim => RuntimeKind::Sim,
            Runtime::Process => RuntimeKind::Process,
        }
    }
}

/// A running embedded cluster.
pub struct Cluster {
    server: Server,
    client: Client,
    controllers: Controllers,
    nodes: Vec<NodeAgent>,
}

impl Cluster {
    /// Starts the API server with `config`, then the control plane and the
    /// nodes as its clients.
    pub async fn start(args: &ClusterArgs, config: ServerConfig) -> anyhow::Result<Cluster> {
        let store = storage::open(&args.store).await?;
        let server = Server::start(store, config)
            .await
            .context("cannot start the embedded API server")?;
        let client = client_from_kubeconfig(&server.kubeconfig(), None)
            .await
            .context("cannot build a client for the embedded API server")?;
        let controllers = Controllers::start(client.clone(), ControllerOptions::default())
            .await
            .context("cannot start the embedded controllers")?;
        let mut cluster = Cluster {
            server,
            client,
            controllers,
            nodes: Vec::with_capacity(args.nodes),
        };
        for index in 0..args.nodes {
            let config = NodeConfig::new(format!("kstress-node-{index}"), args.runtime.into());
            match NodeAgent::start(cluster.client.clone(), config).await {
                Ok(node) => cluster.nodes.push(node),
                Err(err) => {
                    cluster.stop().await;
                    return Err(err).context("cannot start the embedded nodes");
                }
            }
        }
        Ok(cluster)
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

    /// Stops the nodes, the control plane and the server, in that order.
    pub async fn stop(self) {
        for node in self.nodes {
            node.shutdown().await;
        }
        self.controllers.shutdown().await;
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
