//! `kstress httperf`: the block-transfer throughput server and client.

use clap::Args;

#[derive(Args)]
pub struct HttperfArgs {}

pub async fn run(_args: HttperfArgs) -> anyhow::Result<()> {
    anyhow::bail!("kstress httperf is not available yet")
}
