//! `kstress node`: one simulated kubelet joined to any cluster.

use clap::Args;

#[derive(Args, Debug)]
pub struct NodeArgs {}

pub async fn run(_args: NodeArgs) -> anyhow::Result<()> {
    anyhow::bail!("kstress node is not available yet")
}
