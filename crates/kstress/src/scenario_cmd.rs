//! `kstress scenario`: run, check, list and show scenario files
//! (kube-burner job configurations), built-in or from disk.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::{Api, Client};
use load::control::Control;
use load::lifecycle::{Cluster, Plan, RunOptions};
use scenario::{BUILTINS, Scenario, ScenarioDriver, Source};

use crate::measurement_args::MeasurementArgs;
use crate::signals::Interrupts;
use crate::target::TargetArgs;

#[derive(Args, Debug)]
pub struct ScenarioArgs {
    #[command(subcommand)]
    command: ScenarioCommand,
}

#[derive(Subcommand, Debug)]
enum ScenarioCommand {
    /// Run a scenario file, or a built-in scenario by name.
    Run(Box<RunArgs>),
    /// Check a scenario without touching a cluster; reports every problem.
    Check(CheckArgs),
    /// List the built-in scenarios.
    List,
    /// Print a built-in scenario's file and templates.
    Show {
        /// The built-in scenario.
        name: String,
    },
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// A scenario file, or the name of a built-in scenario.
    scenario: String,
    /// A value for the file's own template, as {{.KEY}}; wins over the
    /// environment.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    sets: Vec<(String, String)>,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    check: CheckArgs,

    #[command(flatten)]
    target: TargetArgs,

    /// Directory to write results.json (and report.html) into.
    #[arg(long)]
    output: Option<PathBuf>,

    /// Also write report.html into --output.
    #[arg(long, value_parser = ["html"], requires = "output")]
    report: Option<String>,

    /// Serve live Prometheus metrics (stress_client_*) on this address.
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,

    /// Keep what the scenario created, whatever its gc settings say.
    #[arg(long)]
    keep: bool,

    /// End the run when every request has failed for this many seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    max_error_seconds: u64,

    #[command(flatten)]
    measurements: MeasurementArgs,
}

/// What kstress tells a scenario's template about the cluster, before
/// `--set` values: `NODE_COUNT` (Ready nodes) and `FREE_POD_CAPACITY`
/// (their allocatable pods minus the pods not yet finished). `check` uses
/// the values of one default node.
const PLACEHOLDER_FACTS: [(&str, &str); 2] = [("NODE_COUNT", "1"), ("FREE_POD_CAPACITY", "110")];

pub async fn run(args: ScenarioArgs) -> anyhow::Result<()> {
    match args.command {
        ScenarioCommand::Run(args) => run_scenario(*args).await,
        ScenarioCommand::Check(args) => {
            let scenario = load(&args.scenario, &args.sets, &placeholder_facts())?;
            let jobs: Vec<String> = scenario
                .config
                .jobs
                .iter()
                .map(|job| {
                    format!(
                        "{} ({:?}, {} iterations)",
                        job.name, job.job_type, job.job_iterations
                    )
                    .to_lowercase()
                })
                .collect();
            println!(
                "{}: ok, {} job(s): {}",
                scenario.source.display(),
                jobs.len(),
                jobs.join(", ")
            );
            Ok(())
        }
        ScenarioCommand::List => {
            let width = BUILTINS.iter().map(|b| b.name.len()).max().unwrap_or(0);
            for builtin in BUILTINS {
                println!("{:width$}  {}", builtin.name, builtin.summary);
            }
            Ok(())
        }
        ScenarioCommand::Show { name } => {
            let builtin = scenario::source::builtin(&name).with_context(|| {
                let names: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
                format!(
                    "no built-in scenario {name:?} (built-in: {})",
                    names.join(", ")
                )
            })?;
            for (i, (file, text)) in builtin.files.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                println!("# ==> {file} <==");
                print!("{text}");
            }
            Ok(())
        }
    }
}

async fn run_scenario(args: RunArgs) -> anyhow::Result<()> {
    // Everything that can be wrong with the file is reported before a
    // cluster is started or touched.
    load(&args.check.scenario, &args.check.sets, &placeholder_facts())?;
    if let Some(dir) = &args.output {
        measure::prepare_output_dir(dir)
            .with_context(|| format!("--output {} cannot hold the results", dir.display()))?;
    }
    let target = args
        .target
        .connect(&format!("Run scenario {}", args.check.scenario))
        .await?;
    let control = Control::new();
    let interrupts = match Interrupts::install() {
        Ok(interrupts) => crate::run::interrupt_on_signal(control.clone(), interrupts),
        Err(err) => {
            target.close().await;
            return Err(err);
        }
    };
    let outcome = async {
        let facts = cluster_facts(&target.client).await?;
        let scenario = load(&args.check.scenario, &args.check.sets, &facts)?;
        let options = RunOptions {
            duration: scenario.config.global.timeout,
            output: args.output.clone(),
            html_report: args.report.is_some(),
            metrics_addr: args.metrics_addr,
            namespace: None,
            skip_namespace_creation: false,
            keep: args.keep,
            max_error_seconds: args.max_error_seconds,
            pod_latency: args.measurements.pod_latency(),
            api_responsiveness: args.measurements.api_responsiveness,
        };
        let driver = ScenarioDriver::new(scenario, args.keep);
        eprintln!("scenario run {}", driver.uuid());
        let plan = Plan::new(Box::new(driver), None, options)?;
        let cluster = Cluster {
            client: &target.client,
            description: &target.description,
            embedded_nodes: target
                .cluster
                .is_some()
                .then_some(args.target.cluster.nodes),
        };
        plan.run(&cluster, &control).await?;
        anyhow::Ok(())
    }
    .await;
    target.close().await;
    interrupts.abort();
    outcome
}

/// Reads and checks the scenario, printing its warnings; its problems are
/// the error, one per line.
fn load(
    name_or_path: &str,
    sets: &[(String, String)],
    facts: &[(String, String)],
) -> anyhow::Result<Scenario> {
    let source = Source::find(name_or_path).map_err(anyhow::Error::msg)?;
    let mut values = facts.to_vec();
    values.extend(sets.iter().cloned());
    match Scenario::load(source, &values) {
        Ok(scenario) => {
            for warning in &scenario.warnings {
                eprintln!("warning: {warning}");
            }
            Ok(scenario)
        }
        Err(problems) if problems.0.len() == 1 => bail!("{problems}"),
        Err(problems) => bail!(
            "the scenario has {} problems:\n{problems}",
            problems.0.len()
        ),
    }
}

fn placeholder_facts() -> Vec<(String, String)> {
    PLACEHOLDER_FACTS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The cluster's Ready nodes and their free pod capacity.
async fn cluster_facts(client: &Client) -> anyhow::Result<Vec<(String, String)>> {
    let nodes: Api<Node> = Api::all(client.clone());
    let nodes = nodes
        .list(&ListParams::default())
        .await
        .context("cannot list the cluster's nodes")?;
    let ready: Vec<&Node> = nodes
        .items
        .iter()
        .filter(|node| {
            node.status
                .as_ref()
                .and_then(|status| status.conditions.as_ref())
                .is_some_and(|conditions| {
                    conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                })
        })
        .collect();
    let capacity: u64 = ready
        .iter()
        .filter_map(|node| {
            let pods = node.status.as_ref()?.allocatable.as_ref()?.get("pods")?;
            pods.0.parse::<u64>().ok()
        })
        .sum();
    let pods: Api<Pod> = Api::all(client.clone());
    let running = pods
        .list_metadata(
            &ListParams::default().fields("status.phase!=Succeeded,status.phase!=Failed"),
        )
        .await
        .context("cannot list the cluster's pods")?
        .items
        .len() as u64;
    Ok(vec![
        ("NODE_COUNT".to_owned(), ready.len().to_string()),
        (
            "FREE_POD_CAPACITY".to_owned(),
            capacity.saturating_sub(running).to_string(),
        ),
    ])
}

fn parse_set(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}
