//! `kstress conformance node`: node lifecycle and image-pull conformance.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::builder::TypedValueParser as _;
use clap::{Args, Subcommand};
use conformance::{OnResult, Options, Regex, Report, Timeouts};

use crate::embedded::Runtime;
use crate::signals;
use crate::target::{Target, TargetArgs};
use crate::units::Span;

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

    #[command(flatten)]
    timeouts: TimeoutArgs,

    /// Write results.json into this directory.
    #[arg(long)]
    output: Option<PathBuf>,

    #[command(flatten)]
    target: TargetArgs,
}

/// Bounds on the scenarios' waits; the defaults suit a real cluster with
/// a kubelet's default back-offs.
#[derive(Args, Debug)]
struct TimeoutArgs {
    /// How long a pod may take to run to completion or fail.
    #[arg(long, default_value_t = Span(Timeouts::default().pod_finish))]
    pod_timeout: Span,

    /// How long a crash-looping container may take to be restarted three
    /// times.
    #[arg(long, default_value_t = Span(Timeouts::default().restarts))]
    restart_timeout: Span,

    /// How long failing image pulls may take to reach back-off and be
    /// retried twice.
    #[arg(long, default_value_t = Span(Timeouts::default().image_pull))]
    image_pull_timeout: Span,

    /// How long an event may take to appear once the pod shows its cause.
    #[arg(long, default_value_t = Span(Timeouts::default().events))]
    event_timeout: Span,

    /// How long a scenario's namespace may take to be gone.
    #[arg(long, default_value_t = Span(Timeouts::default().cleanup))]
    cleanup_timeout: Span,
}

impl TimeoutArgs {
    fn timeouts(&self) -> Timeouts {
        Timeouts {
            pod_finish: self.pod_timeout.0,
            restarts: self.restart_timeout.0,
            image_pull: self.image_pull_timeout.0,
            events: self.event_timeout.0,
            cleanup: self.cleanup_timeout.0,
        }
    }

    /// One line naming every bound, so a long wait is never a surprise.
    fn describe(&self) -> String {
        format!(
            "waits are bounded: pods {} (--pod-timeout), restarts {} (--restart-timeout), \
             image pulls {} (--image-pull-timeout), events {} (--event-timeout), \
             clean-up {} (--cleanup-timeout)",
            self.pod_timeout,
            self.restart_timeout,
            self.image_pull_timeout,
            self.event_timeout,
            self.cleanup_timeout
        )
    }
}

pub async fn run(args: ConformanceArgs) -> anyhow::Result<()> {
    let Suite::Node(mut args) = args.suite;
    // Fail before starting or touching a cluster when nothing would run.
    let runs = |s: &conformance::Scenario| {
        conformance::selected(s.name, args.focus.as_ref(), args.skip.as_ref())
    };
    if !conformance::scenarios().iter().any(runs) {
        return Err(conformance::Error::NothingSelected.into());
    }
    if let Some(dir) = &args.output {
        measure::prepare_output_dir(dir)
            .with_context(|| format!("--output {} cannot hold the results", dir.display()))?;
    }
    // The scenarios need containers that really run: they read what the
    // containers write (files in shared volumes, termination messages) and
    // time their commands, which the sim runtime only pretends to run.
    if args.target.cluster.runtime == Some(Runtime::Sim) {
        anyhow::bail!(
            "--runtime sim cannot run the node conformance scenarios: they need containers \
             that really run their commands (--runtime process, the default)"
        );
    }
    args.target.cluster.runtime = Some(Runtime::Process);
    let target = args
        .target
        .connect("Run the node conformance scenarios (they create and delete namespaces)")
        .await?;
    eprintln!("{}", args.timeouts.describe());
    let report = run_on(&args, &target).await;
    target.close().await;
    let report = report?;

    print!("{}", report.summary());
    if let Some(dir) = &args.output {
        let path = report
            .write_json(dir)
            .with_context(|| format!("cannot write results to {}", dir.display()))?;
        println!("results written to {}", path.display());
    }
    match report.failed() {
        0 => Ok(()),
        n => anyhow::bail!("{n} conformance scenario(s) failed"),
    }
}

async fn run_on(args: &NodeArgs, target: &Target) -> anyhow::Result<Report> {
    let options = Options {
        image: args.image.clone(),
        focus: args.focus.clone(),
        skip: args.skip.clone(),
        parallel: args.parallel,
        timeouts: args.timeouts.timeouts(),
        target: target.description.clone(),
        on_result: Some(OnResult(Arc::new(|result| println!("{result}")))),
        ..Options::default()
    };
    tokio::select! {
        report = conformance::run(target.client.clone(), options) => Ok(report?),
        interrupt = signals::wait_for_interrupt() => {
            let interrupt = interrupt?;
            // The embedded cluster ends with the process, and its
            // namespaces with it; only a real cluster keeps leftovers.
            if target.cluster.is_some() {
                anyhow::bail!("interrupted ({interrupt})");
            }
            anyhow::bail!(
                "interrupted ({interrupt}); remove leftover namespaces with \
                 `kubectl delete namespace -l {}`",
                conformance::SCENARIO_LABEL
            )
        }
    }
}
