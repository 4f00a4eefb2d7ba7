//! `kstress conformance node`: node lifecycle and image-pull conformance.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::builder::TypedValueParser as _;
use clap::{Args, Subcommand};
use conformance::{OnResult, Options, Regex};

#[derive(Args, Debug)]
pub struct ConformanceArgs {
    #[command(subcommand)]
    suite: Suite,
}

#[derive(Subcommand, Debug)]
enum Suite {
    /// Container lifecycle (init containers, PostStart, restarts) and image
    /// pulls (policies, ErrImagePull and back-off), checked through the API.
    Node(NodeArgs),
}

#[derive(Args, Debug)]
struct NodeArgs {
    /// Run against this cluster instead of the embedded one.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,

    /// Context of the kubeconfig to use (implies a real cluster).
    #[arg(long)]
    context: Option<String>,

    /// Do not ask before running against a real cluster.
    #[arg(long)]
    yes: bool,

    /// Image of the containers; it needs sh, cat, cut, date, tee and sleep.
    #[arg(long, default_value = conformance::DEFAULT_IMAGE)]
    image: String,

    /// Run only the scenarios whose name matches.
    #[arg(long)]
    focus: Option<Regex>,

    /// Skip the scenarios whose name matches.
    #[arg(long)]
    skip: Option<Regex>,

    /// Scenarios to run at the same time.
    #[arg(long, default_value_t = conformance::DEFAULT_PARALLEL,
          value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    parallel: usize,

    /// Directory for results.json.
    #[arg(long, default_value = ".")]
    output: PathBuf,
}

pub async fn run(args: ConformanceArgs) -> anyhow::Result<()> {
    let Suite::Node(args) = args.suite;
    if args.kubeconfig.is_none() && args.context.is_none() {
        anyhow::bail!(
            "the embedded cluster is not available in this build; \
             pass --kubeconfig or --context to run against a real cluster"
        );
    }
    let target = conformance::connect(args.kubeconfig.as_deref(), args.context.as_deref())
        .await
        .context("cannot connect to the cluster")?;
    println!("target: {}", target.url);
    if !args.yes && std::io::stdin().is_terminal() && !confirmed()? {
        anyhow::bail!("not confirmed; nothing was run");
    }

    let options = Options {
        image: args.image,
        focus: args.focus,
        skip: args.skip,
        parallel: args.parallel,
        target: target.url,
        on_result: Some(OnResult(Arc::new(|result| println!("{result}")))),
        ..Options::default()
    };
    let report = tokio::select! {
        report = conformance::run(target.client, options) => report?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!(
            "interrupted; remove leftover namespaces with \
             `kubectl delete namespace -l {}`",
            conformance::SCENARIO_LABEL
        ),
    };
    print!("{}", report.summary());
    let path = report
        .write_json(&args.output)
        .with_context(|| format!("cannot write results to {}", args.output.display()))?;
    println!("results written to {}", path.display());
    match report.failed() {
        0 => Ok(()),
        n => anyhow::bail!("{n} conformance scenario(s) failed"),
    }
}

/// Asks on the terminal whether to run against the printed target.
fn confirmed() -> anyhow::Result<bool> {
    print!("Run node conformance scenarios (they create and delete namespaces) there? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
