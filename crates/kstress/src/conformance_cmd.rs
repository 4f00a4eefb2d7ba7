//! `kstress conformance node`: node lifecycle and image-pull conformance.

use clap::Args;

#[derive(Args, Debug)]
pub struct ConformanceArgs {}

pub async fn run(_args: ConformanceArgs) -> anyhow::Result<()> {
    anyhow::bail!("kstress conformance is not available yet")
}
