//! `kstress node`: one simulated kubelet joined to any cluster.
//!
//! The cluster is named explicitly: `--kubeconfig`, or `--context` of the
//! kubeconfig kubectl would use (`$KUBECONFIG`, then `~/.kube/config`); a
//! KUBECONFIG variable alone never makes kstress join a cluster. The node
//! runs until Ctrl-C or SIGTERM, then stops its containers and deletes its
//! Lease and Node when it created the Node. A Node that a live kubelet
//! holds is refused unless `--force`; one it took over is left in place.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};
use node::{ExistingNode, NodeAgent, NodeConfig};

use crate::embedded::Runtime;
use crate::signals;

#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("cluster").required(true).multiple(true).args(["kubeconfig", "context"]))]
pub struct NodeArgs {
    /// Kubeconfig of the cluster to join.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,

    /// Context to use (of --kubeconfig, else of $KUBECONFIG or
    /// ~/.kube/config).
    #[arg(long)]
    context: Option<String>,

    /// The Node's name; pods run here when their spec.nodeName says so.
    #[arg(long)]
    name: String,

    /// Container runtime: `sim` (no processes) or `process` (commands run
    /// in a bubblewrap sandbox).
    #[arg(long, value_enum, default_value_t = Runtime::Sim)]
    runtime: Runtime,

    /// Where the process runtime keeps container roots, volumes and logs
    /// (default: a temporary directory removed at exit).
    #[arg(long)]
    data_dir: Option<PathBuf>,

    /// Address advertised as the node's InternalIP; the log endpoint the API
    /// server proxies `kubectl logs` to listens on it.
    #[arg(long, default_value = "127.0.0.1")]
    address: IpAddr,

    /// Take over the Node even when a live kubelet holds it (Ready, with a
    /// fresh Lease); it is still left in place on exit.
    #[arg(long)]
    force: bool,
}

pub async fn run(args: NodeArgs) -> anyhow::Result<()> {
    let kubeconfig = match &args.kubeconfig {
        Some(path) => Kubeconfig::read_from(path)
            .with_context(|| format!("cannot read kubeconfig {}", path.display()))?,
        None => Kubeconfig::read().context("cannot read a kubeconfig (use --kubeconfig)")?,
    };
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .context("the kubeconfig is incomplete")?;
    let client = kube::Client::try_from(config).context("cannot build the API client")?;
    let runtime: node::RuntimeKind = args.runtime.into();
    let mut config = NodeConfig::new(&args.name, runtime);
    config.data_dir = args.data_dir;
    config.address = args.address;
    if args.force {
        config.existing = ExistingNode::TakeOver;
    }
    let agent = match NodeAgent::start(client, config).await {
        Ok(agent) => agent,
        Err(err @ node::Error::InUse { .. }) => {
            anyhow::bail!("{err}; stop that kubelet, or pass --force to take the node over")
        }
        Err(err) => return Err(err).with_context(|| format!("cannot start node {}", args.name)),
    };
    // Listening before saying so: a SIGTERM sent once the node reports
    // running must reach the clean shutdown, not end the process.
    let mut interrupts = match signals::Interrupts::install() {
        Ok(interrupts) => interrupts,
        Err(err) => {
            agent.shutdown().await;
            return Err(err);
        }
    };
    println!(
        "kstress node {} is running ({})",
        args.name,
        runtime.as_str()
    );
    interrupts.next().await;
    agent.shutdown().await;
    println!("kstress node {} has left the cluster", args.name);
    Ok(())
}
