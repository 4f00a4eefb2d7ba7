//! `kstress run <driver>`: one load run, from target and namespace set-up
//! through the driver to the report and clean-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use load::arrivals::ArrivalProcess;
use load::churn::Churn;
use load::control::{Control, StopReason};
use load::driver::{Driver, ObjectSpec, Writer};
use load::get::Gets;
use load::lifecycle::{Cluster, Plan, RunOptions};
use load::list::Lists;
use load::namespace;
use load::pod_stress::PodStress;
use load::thrash::Thrash;
use load::watch_latency::WatchLatency;
use load::watch_loop::WatchLoop;

use crate::measurement_args::MeasurementArgs;
use crate::signals::Interrupts;
use crate::target::TargetArgs;
use crate::units::{parse_duration, parse_size};

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Pod get / create / update from concurrent workers, with paged lists
    /// alongside.
    PodStress(PodStressArgs),
    /// Open-loop creates at a target rate, each object deleted after a
    /// fixed lifetime.
    Churn(ChurnArgs),
    /// Closed-loop workers cycling create -> update -> delete.
    Thrash(ThrashArgs),
    /// Informer notification and work queue latency while a writer runs.
    WatchLatency(WatchLatencyArgs),
    /// Clients looping over time-limited watches while a writer runs.
    WatchLoop(WatchLoopArgs),
    /// Clients paging through a resource, namespaced and cluster-wide.
    List(ListArgs),
    /// Closed-loop reads of one object from many workers.
    Get(GetArgs),
}

impl Scenario {
    fn common(&self) -> &CommonArgs {
        match self {
            Scenario::PodStress(args) => &args.common,
            Scenario::Churn(args) => &args.common,
            Scenario::Thrash(args) => &args.common,
            Scenario::WatchLatency(args) => &args.common,
            Scenario::WatchLoop(args) => &args.common,
            Scenario::List(args) => &args.common,
            Scenario::Get(args) => &args.common,
        }
    }
}

/// Options every driver shares.
#[derive(Args, Debug)]
struct CommonArgs {
    #[command(flatten)]
    target: TargetArgs,

    /// How long the load runs, e.g. 30s, 5m.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    duration: Duration,

    /// Directory to write results.json (and report.html) into.
    #[arg(long)]
    output: Option<PathBuf>,

    /// Also write a report in this format into --output.
    #[arg(long, value_enum, requires = "output")]
    report: Option<ReportFormat>,

    /// Serve live Prometheus metrics (stress_client_*) on this address.
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,

    /// Namespace of the run's objects [default: <driver>-<random>-<time>].
    #[arg(long)]
    namespace: Option<String>,

    /// Use --namespace as it is instead of creating it (nor deleting it).
    #[arg(long, requires = "namespace")]
    skip_namespace_creation: bool,

    /// Keep the run's namespace and objects afterwards.
    #[arg(long)]
    keep: bool,

    /// End the run when every request has failed for this many seconds
    /// (at least 1).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    max_error_seconds: u64,

    #[command(flatten)]
    measurements: MeasurementArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ReportFormat {
    /// A self-contained report.html with SVG charts.
    Html,
}

#[derive(Args, Debug)]
struct PodStressArgs {
    #[command(flatten)]
    common: CommonArgs,

    /// Get/create/update steps in all; negative runs until the run ends.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    objects: i64,

    /// Payload bytes per pod, e.g. 10KiB.
    #[arg(long, default_value = "10KiB", value_parser = parse_size)]
    object_size: u64,

    /// Workers taking get/create/update steps concurrently.
    #[arg(long, default_value_t = 10)]
    update_concurrency: usize,

    /// Page size of the list loop; negative disables lists.
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true)]
    list_batch_limit: i64,

    /// Prefix of the pod names [default: pod<7 random characters>].
    #[arg(long)]
    key_prefix: Option<String>,

    /// Nodes a real cluster must have.
    #[arg(long, default_value_t = 1)]
    min_nodes: usize,

    /// Container image of the pods.
    #[arg(long, default_value = "busybox")]
    image: String,
}

/// The objects a driver writes (or seeds, or reads).
#[derive(Args, Debug)]
struct ObjectArgs {
    /// Resource: a plural (configmaps), NAME.GROUP or GROUP/VERSION/NAME;
    /// custom resources included.
    #[arg(long, default_value = "configmaps")]
    resource: String,

    /// An object (YAML or JSON) of the resource's kind to write, e.g. for
    /// resources without a built-in shape; its name and namespace are
    /// replaced.
    #[arg(long)]
    template: Option<String>,

    /// Payload bytes per object, e.g. 1KiB [default: 1KiB; none with
    /// --template, which it pads with an annotation].
    #[arg(long, value_parser = parse_size)]
    object_size: Option<u64>,
}

impl ObjectArgs {
    /// The objects to work on, as asked for.
    fn spec(&self) -> ObjectSpec {
        ObjectSpec::new(
            self.resource.clone(),
            self.template.clone(),
            self.object_size,
        )
    }
}

#[derive(Args, Debug)]
///
/// The options are optional rather than defaulted so that a watch driver
/// can refuse them when its writer is not churn; [`churn`] fills in the
/// defaults the help text names.
struct ChurnOptions {
    /// Target creates per second [default: 100].
    #[arg(long)]
    rate: Option<f64>,

    /// Arrival process: poisson or constant [default: poisson].
    #[arg(long)]
    arrivals: Option<ArrivalProcess>,

    /// Time from each object's creation to its deletion [default: 10s].
    #[arg(long, value_parser = parse_duration)]
    lifetime: Option<Duration>,

    /// Requests in flight at most; later arrivals wait (and show as lag)
    /// [default: 1000].
    #[arg(long)]
    max_in_flight: Option<usize>,

    /// Seed of the Poisson schedule [default: random].
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Args, Debug)]
struct ThrashOptions {
    /// Closed-loop workers [default: 10].
    #[arg(long)]
    workers: Option<usize>,
}

impl ChurnOptions {
    /// The flags given on the command line.
    fn given(&self) -> Vec<&'static str> {
        [
            ("--rate", self.rate.is_some()),
            ("--arrivals", self.arrivals.is_some()),
            ("--lifetime", self.lifetime.is_some()),
            ("--max-in-flight", self.max_in_flight.is_some()),
            ("--seed", self.seed.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }
}

#[derive(Args, Debug)]
struct ChurnArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    objects: ObjectArgs,
    #[command(flatten)]
    churn: ChurnOptions,
}

#[derive(Args, Debug)]
struct ThrashArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    objects: ObjectArgs,
    #[command(flatten)]
    thrash: ThrashOptions,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum WriterKind {
    /// Open-loop churn (--rate, --lifetime, --arrivals).
    Churn,
    /// Closed-loop thrash (--workers).
    Thrash,
    /// No writes (watch-loop only).
    None,
}

/// The writer running alongside a watch measurement.
#[derive(Args, Debug)]
struct WriterArgs {
    /// The writer driver running alongside.
    #[arg(long, value_enum, default_value = "churn")]
    driver: WriterKind,
    #[command(flatten)]
    objects: ObjectArgs,
    #[command(flatten)]
    churn: ChurnOptions,
    #[command(flatten)]
    thrash: ThrashOptions,
}

#[derive(Args, Debug)]
struct WatchLatencyArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Informers, each with its own work queue.
    #[arg(long, default_value_t = 1)]
    watchers: usize,
    #[command(flatten)]
    writer: WriterArgs,
}

#[derive(Args, Debug)]
struct WatchLoopArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Clients looping over watches.
    #[arg(long, default_value_t = 10)]
    clients: usize,
    /// Server-side time limit of each watch.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    watch_timeout: Duration,
    #[command(flatten)]
    writer: WriterArgs,
}

#[derive(Args, Debug)]
struct ListArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Concurrent listing clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Page size; 0 lists everything in one response.
    #[arg(long, default_value_t = 500)]
    limit: u32,
    /// Objects created in the namespace before listing starts.
    #[arg(long = "objects", default_value_t = 1000)]
    seed_objects: u64,
    #[command(flatten)]
    objects: ObjectArgs,
}

#[derive(Args, Debug)]
struct GetArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Closed-loop workers.
    #[arg(long, default_value_t = 64)]
    workers: usize,
    #[command(flatten)]
    objects: ObjectArgs,
}

/// Runs one driver end to end.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let scenario = args.scenario;
    let plan = scenario.plan()?;
    let common = scenario.common();
    if let Some(dir) = &common.output {
        measure::prepare_output_dir(dir)
            .with_context(|| format!("--output {} cannot hold the results", dir.display()))?;
    }
    let target = common
        .target
        .connect(&format!("Run {}", plan.name()))
        .await?;
    // From here on a signal must not end the process before the run's
    // namespace is gone; a signal during start-up ends it with nothing to
    // clean up.
    let control = Control::new();
    let interrupts = match Interrupts::install() {
        Ok(interrupts) => interrupt_on_signal(control.clone(), interrupts),
        Err(err) => {
            target.close().await;
            return Err(err);
        }
    };
    let cluster = Cluster {
        client: &target.client,
        description: &target.description,
        embedded_nodes: target
            .cluster
            .is_some()
            .then_some(common.target.cluster.nodes),
    };
    let outcome = plan.run(&cluster, &control).await;
    target.close().await;
    interrupts.abort();
    Ok(outcome?)
}

impl Scenario {
    /// The run the command line asks for, validated, with every default
    /// settled (random seeds and name prefixes included), so that what
    /// runs is what results.json records.
    fn plan(&self) -> anyhow::Result<Plan> {
        let (driver, objects): (Box<dyn Driver>, Option<&ObjectArgs>) = match self {
            Scenario::PodStress(args) => (Box::new(pod_stress(args)?), None),
            Scenario::Churn(args) => (Box::new(churn(&args.churn)), Some(&args.objects)),
            Scenario::Thrash(args) => (Box::new(thrash(&args.thrash)), Some(&args.objects)),
            Scenario::WatchLatency(args) => (
                Box::new(WatchLatency {
                    watchers: args.watchers,
                    writer: args.writer.writer()?,
                }),
                Some(&args.writer.objects),
            ),
            Scenario::WatchLoop(args) => (
                Box::new(WatchLoop {
                    clients: args.clients,
                    watch_timeout: args.watch_timeout,
                    writer: args.writer.writer()?,
                }),
                Some(&args.writer.objects),
            ),
            Scenario::List(args) => (
                Box::new(Lists {
                    clients: args.clients,
                    limit: args.limit,
                    seed_objects: args.seed_objects,
                }),
                Some(&args.objects),
            ),
            Scenario::Get(args) => (
                Box::new(Gets {
                    workers: args.workers,
                }),
                Some(&args.objects),
            ),
        };
        let common = self.common();
        let options = RunOptions {
            duration: common.duration,
            output: common.output.clone(),
            html_report: common.report.is_some(),
            metrics_addr: common.metrics_addr,
            namespace: common.namespace.clone(),
            skip_namespace_creation: common.skip_namespace_creation,
            keep: common.keep,
            max_error_seconds: common.max_error_seconds,
            pod_latency: common.measurements.pod_latency(),
            api_responsiveness: common.measurements.api_responsiveness,
        };
        Ok(Plan::new(driver, objects.map(ObjectArgs::spec), options)?)
    }
}

impl WriterArgs {
    /// The writer, refusing the options of the writer not chosen: a
    /// `--rate` that a thrash writer would ignore is a mistake to report.
    fn writer(&self) -> anyhow::Result<Writer> {
        let mut misplaced = match self.driver {
            WriterKind::Churn => Vec::new(),
            WriterKind::Thrash | WriterKind::None => self.churn.given(),
        };
        if self.driver != WriterKind::Thrash && self.thrash.workers.is_some() {
            misplaced.push("--workers");
        }
        if !misplaced.is_empty() {
            let driver = match self.driver {
                WriterKind::Churn => "churn",
                WriterKind::Thrash => "thrash",
                WriterKind::None => "none",
            };
            let verb = if misplaced.len() == 1 { "does" } else { "do" };
            anyhow::bail!(
                "{} {verb} not apply to --driver {driver} (--rate, --arrivals, --lifetime, \
                 --max-in-flight and --seed set up a churn writer, --workers a thrash writer)",
                misplaced.join(", ")
            );
        }
        Ok(match self.driver {
            WriterKind::Churn => Writer::Churn(churn(&self.churn)),
            WriterKind::Thrash => Writer::Thrash(thrash(&self.thrash)),
            WriterKind::None => Writer::None,
        })
    }
}

/// The first Ctrl-C or SIGTERM ends the run gracefully: in-flight requests
/// finish, results are written and the namespace is removed, and the exit
/// status is that of any run that ended. A second one exits at once, with
/// the status a shell reports for that signal (130, 143).
pub(crate) fn interrupt_on_signal(
    control: Control,
    mut interrupts: Interrupts,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let first = interrupts.next().await;
        eprintln!(
            "\ninterrupted ({first}): finishing in-flight requests, then writing results and \
             cleaning up ({first} again to exit at once)"
        );
        control.stop(StopReason::Interrupted);
        let second = interrupts.next().await;
        std::process::exit(second.exit_code());
    })
}

fn pod_stress(args: &PodStressArgs) -> anyhow::Result<PodStress> {
    Ok(PodStress {
        objects: u64::try_from(args.objects).ok(),
        object_size: usize::try_from(args.object_size)
            .context("--object-size does not fit in memory")?,
        update_concurrency: args.update_concurrency,
        list_batch_limit: u32::try_from(args.list_batch_limit).ok(),
        key_prefix: args
            .key_prefix
            .clone()
            .unwrap_or_else(|| format!("pod{}", &namespace::generated_name("x")[2..9])),
        image: args.image.clone(),
        min_nodes: args.min_nodes,
    })
}

fn churn(options: &ChurnOptions) -> Churn {
    Churn {
        rate: options.rate.unwrap_or(100.0),
        arrivals: options.arrivals.unwrap_or(ArrivalProcess::Poisson),
        lifetime: options.lifetime.unwrap_or(Duration::from_secs(10)),
        max_in_flight: options.max_in_flight.unwrap_or(1000),
        seed: options.seed.unwrap_or_else(rand_seed),
    }
}

fn thrash(options: &ThrashOptions) -> Thrash {
    Thrash {
        workers: options.workers.unwrap_or(10),
    }
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_nanos() as u64)
        .unwrap_or_default()
}
