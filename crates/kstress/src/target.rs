//! Which cluster a command works on: the embedded one by default, or a
//! real one named explicitly with --kubeconfig, --context or --in-cluster.
//! A KUBECONFIG variable alone never makes kstress touch a real cluster.

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use kube::Client;

use crate::embedded::{self, Cluster, ClusterArgs};

/// Options choosing the target cluster.
#[derive(Args, Clone, Debug)]
pub struct TargetArgs {
    /// Target the cluster of this kubeconfig instead of the embedded one.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// Target this context of the kubeconfig (--kubeconfig, else
    /// $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    pub context: Option<String>,

    /// Target the cluster this pod runs in (service account credentials).
    #[arg(long, conflicts_with_all = ["kubeconfig", "context"])]
    pub in_cluster: bool,

    /// Do not ask for confirmation before touching a real cluster.
    #[arg(long, short = 'y')]
    pub yes: bool,

    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// A connected target.
pub struct Target {
    /// Client of the target.
    pub client: Client,
    /// `embedded` or the API server URL, as recorded in results.
    pub description: String,
    /// The embedded cluster, when that is the target.
    pub cluster: Option<Cluster>,
}

impl TargetArgs {
    /// Whether the target is a real cluster.
    pub fn is_remote(&self) -> bool {
        self.kubeconfig.is_some() || self.context.is_some() || self.in_cluster
    }

    /// Connects to the target, starting the embedded cluster or, for a real
    /// cluster, confirming the URL with the user first. `what` says what is
    /// about to happen there, for the prompt.
    pub async fn connect(&self, what: &str) -> anyhow::Result<Target> {
        if !self.is_remote() {
            let config = apiserver::ServerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                ..apiserver::ServerConfig::default()
            };
            let cluster = Cluster::start(&self.cluster, config).await?;
            // The load's own client, on this runtime rather than the
            // cluster's.
            let client = match embedded::client_from_kubeconfig(&cluster.kubeconfig(), None).await {
                Ok(client) => client,
                Err(err) => {
                    cluster.stop().await;
                    return Err(err);
                }
            };
            return Ok(Target {
                client,
                description: "embedded".to_owned(),
                cluster: Some(cluster),
            });
        }
        let config = if self.in_cluster {
            kube::Config::incluster().context("cannot use the in-cluster configuration")?
        } else {
            let options = kube::config::KubeConfigOptions {
                context: self.context.clone(),
                ..Default::default()
            };
            let kubeconfig = match &self.kubeconfig {
                Some(path) => kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("cannot read kubeconfig {}", path.display()))?,
                None => kube::config::Kubeconfig::read()
                    .context("cannot read the kubeconfig ($KUBECONFIG or ~/.kube/config)")?,
            };
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .context("cannot use the kubeconfig")?
        };
        let url = config.cluster_url.to_string();
        if !self.yes && std::io::stdin().is_terminal() {
            confirm(&format!("{what} against {url}?"))?;
        } else {
            eprintln!("target: {url}");
        }
        let client = embedded::client_from_config(config)?;
        client.apiserver_version().await.map_err(|err| {
            anyhow::anyhow!(
                "cannot reach the API server at {url}: {}",
                load::outcome::describe(&err)
            )
        })?;
        Ok(Target {
            client,
            description: url,
            cluster: None,
        })
    }
}

impl Target {
    /// Stops the embedded cluster, if there is one.
    pub async fn close(self) {
        if let Some(cluster) = self.cluster {
            cluster.stop().await;
        }
    }
}

fn confirm(question: &str) -> anyhow::Result<()> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
        Ok(())
    } else {
        bail!("cancelled")
    }
}
