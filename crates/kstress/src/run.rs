//! `kstress run <driver>`: one load run, from target and namespace set-up
//! through the driver to the report and clean-up.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams};
use kube::{Api, Client};
use load::arrivals::ArrivalProcess;
use load::churn::Churn;
use load::control::{Control, StopReason};
use load::get::Gets;
use load::list::Lists;
use load::objects::{Template, payload};
use load::outcome::describe;
use load::pod_stress::PodStress;
use load::resource::{self, Resource};
use load::thrash::Thrash;
use load::watch_latency::{DeleteLog, WatchLatency};
use load::watch_loop::WatchLoop;
use load::{Context, Output, RUN_LABEL, namespace};
use measure::{Class, Measurement, MetricsServer, Progress, Registry, Report, RunInfo};
use serde_json::{Value, json};

use crate::signals::Interrupts;
use crate::target::{Target, TargetArgs};
use crate::units::{parse_duration, parse_size};

/// The largest object the API server stores: etcd's default request limit,
/// which kube-apiserver and the embedded server both enforce. A payload of
/// this size leaves no room for the object around it.
const MAX_OBJECT_BYTES: u64 = 1536 * 1024;

/// How long clean-up waits for the run's namespace to disappear.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(120);

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
    fn name(&self) -> &'static str {
        match self {
            Scenario::PodStress(_) => "pod-stress",
            Scenario::Churn(_) => "churn",
            Scenario::Thrash(_) => "thrash",
            Scenario::WatchLatency(_) => "watch-latency",
            Scenario::WatchLoop(_) => "watch-loop",
            Scenario::List(_) => "list",
            Scenario::Get(_) => "get",
        }
    }

    /// The objects the driver writes, seeds or reads, for drivers that
    /// take `--resource`.
    fn objects(&self) -> Option<&ObjectArgs> {
        match self {
            Scenario::PodStress(_) => None,
            Scenario::Churn(ChurnArgs { objects, .. })
            | Scenario::Thrash(ThrashArgs { objects, .. })
            | Scenario::List(ListArgs { objects, .. })
            | Scenario::Get(GetArgs { objects, .. })
            | Scenario::WatchLatency(WatchLatencyArgs {
                writer: WriterArgs { objects, .. },
                ..
            })
            | Scenario::WatchLoop(WatchLoopArgs {
                writer: WriterArgs { objects, .. },
                ..
            }) => Some(objects),
        }
    }

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

/// Payload bytes of built-in objects when `--object-size` is not given.
const DEFAULT_OBJECT_SIZE: u64 = 1024;

/// The most a template can be padded by: its payload goes into an
/// annotation, and the API server caps an object's annotations at 256 KiB
/// in all.
const MAX_TEMPLATE_PAYLOAD_BYTES: u64 = 256 * 1024;

impl ObjectArgs {
    /// Payload bytes per object: as given, else the default for built-in
    /// objects and none for a template, which is written as it is.
    fn object_size(&self) -> Option<u64> {
        match (self.object_size, &self.template) {
            (Some(size), _) => Some(size),
            (None, None) => Some(DEFAULT_OBJECT_SIZE),
            (None, Some(_)) => None,
        }
    }

    /// The objects to write as `resource`.
    fn template(&self, resource: &Resource) -> anyhow::Result<Template> {
        let padding = self
            .object_size()
            .map(|size| usize::try_from(size).map(payload))
            .transpose()?;
        Ok(match &self.template {
            Some(path) => Template::from_file(resource, path, padding.as_deref())?,
            None => Template::builtin(resource, padding.as_deref().unwrap_or_default())?,
        })
    }
}

#[derive(Args, Debug)]
struct ChurnOptions {
    /// Target creates per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,

    /// Arrival process: poisson or constant.
    #[arg(long, default_value = "poisson")]
    arrivals: ArrivalProcess,

    /// Time from each object's creation to its deletion.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    lifetime: Duration,

    /// Requests in flight at most; later arrivals wait (and show as lag).
    #[arg(long, default_value_t = 1000)]
    max_in_flight: usize,

    /// Seed of the Poisson schedule [default: random].
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Args, Debug)]
struct ThrashOptions {
    /// Closed-loop workers.
    #[arg(long, default_value_t = 10)]
    workers: usize,
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
enum Writer {
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
    driver: Writer,
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

/// Runs one scenario end to end.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let scenario = args.scenario;
    validate(&scenario)?;
    let name = scenario.name();
    let common = scenario.common();
    if let Some(dir) = &common.output {
        measure::prepare_output_dir(dir)
            .with_context(|| format!("--output {} cannot hold the results", dir.display()))?;
    }
    let target = common.target.connect(&format!("Run {name}")).await?;
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
    let outcome = run_on(&scenario, &target, &control).await;
    target.close().await;
    interrupts.abort();
    outcome
}

/// Checks what can be checked before any cluster is touched.
fn validate(scenario: &Scenario) -> anyhow::Result<()> {
    let positive = |value: u64, flag: &str| {
        if value == 0 {
            bail!("{flag} must be positive")
        }
        Ok(())
    };
    match scenario {
        Scenario::PodStress(args) => {
            positive(args.object_size, "--object-size")?;
            positive(args.update_concurrency as u64, "--update-concurrency")?;
        }
        Scenario::Churn(args) => churn(&args.churn).check()?,
        Scenario::Thrash(args) => positive(args.thrash.workers as u64, "--workers")?,
        Scenario::WatchLatency(args) => {
            positive(args.watchers as u64, "--watchers")?;
            check_writer(&args.writer)?;
            if args.writer.driver == Writer::None {
                bail!("watch-latency needs a writer: --driver churn or --driver thrash");
            }
        }
        Scenario::WatchLoop(args) => {
            positive(args.clients as u64, "--clients")?;
            if args.watch_timeout < Duration::from_secs(1) {
                bail!("--watch-timeout must be at least 1s");
            }
            check_writer(&args.writer)?;
        }
        Scenario::List(args) => positive(args.clients as u64, "--clients")?,
        Scenario::Get(args) => positive(args.workers as u64, "--workers")?,
    }
    if scenario.common().duration.is_zero() {
        bail!("--duration must be positive");
    }
    let object_size = match scenario {
        Scenario::PodStress(args) => Some(args.object_size),
        _ => scenario.objects().and_then(ObjectArgs::object_size),
    };
    if let Some(objects) = scenario.objects()
        && objects.template.is_some()
        && let Some(size) = objects.object_size
        && size > MAX_TEMPLATE_PAYLOAD_BYTES
    {
        bail!(
            "--object-size {size} bytes cannot pad a --template: the payload goes into an \
             annotation, and annotations are limited to {MAX_TEMPLATE_PAYLOAD_BYTES} bytes \
             (256 KiB) in all"
        );
    }
    if let Some(size) = object_size
        && size >= MAX_OBJECT_BYTES
    {
        bail!(
            "--object-size {size} bytes does not fit the API server's object limit of \
             {MAX_OBJECT_BYTES} bytes (1.5 MiB); every write would be refused"
        );
    }
    Ok(())
}

fn check_writer(writer: &WriterArgs) -> anyhow::Result<()> {
    match writer.driver {
        Writer::Churn => Ok(churn(&writer.churn).check()?),
        Writer::Thrash if writer.thrash.workers == 0 => bail!("--workers must be positive"),
        Writer::Thrash | Writer::None => Ok(()),
    }
}

async fn run_on(scenario: &Scenario, target: &Target, control: &Control) -> anyhow::Result<()> {
    let common = scenario.common();
    let client = target.client.clone();
    if let Scenario::PodStress(args) = scenario
        && target.cluster.is_none()
    {
        check_min_nodes(&client, args.min_nodes).await?;
    }
    let resource = match scenario.objects() {
        None => None,
        Some(objects) => {
            let resource = resource::resolve(&client, &objects.resource).await?;
            let template = objects.template(&resource)?;
            Some((resource, template))
        }
    };

    let namespace = common
        .namespace
        .clone()
        .unwrap_or_else(|| namespace::generated_name(scenario.name()));
    if control.reason() == Some(StopReason::Interrupted) {
        bail!("interrupted before the run started");
    }
    if common.skip_namespace_creation {
        namespace::check_exists(&client, &namespace).await?;
    } else {
        namespace::create(&client, &namespace).await?;
    }
    let run_id = format!("ks{}", &namespace::generated_name("x")[2..8]);

    let measurement = Measurement::new(classes(scenario))?;
    let ctx = Context {
        client: client.clone(),
        namespace: namespace.clone(),
        run_id: run_id.clone(),
        measurement: measurement.clone(),
        stop: tokio_util::sync::CancellationToken::new(),
    };
    let outcome = drive(
        scenario,
        &ctx,
        control,
        resource.as_ref(),
        &target.description,
    )
    .await;

    let run_resource = resource.as_ref().map(|(r, _)| r);
    let cleanup = if common.keep {
        if common.skip_namespace_creation {
            eprintln!("kept the run's objects ({RUN_LABEL}={run_id}) in namespace {namespace}");
        } else {
            eprintln!("kept namespace {namespace}");
        }
        Ok(())
    } else if common.skip_namespace_creation {
        delete_run_objects(&client, &namespace, &run_id, run_resource).await
    } else {
        cleanup(&client, &namespace, &run_id, run_resource).await
    };
    let ended = outcome?;
    let failure = match &ended.reason {
        Some(reason @ StopReason::Failing(_)) => Some(format!("the run ended early: {reason}")),
        _ if !ended.all_failed.is_empty() => Some(
            ended
                .all_failed
                .iter()
                .map(AllFailed::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        _ => None,
    };
    if let Some(failure) = failure {
        if let Err(err) = cleanup {
            eprintln!("warning: {}", crate::error_chain(&err));
        }
        bail!(failure);
    }
    cleanup
}

/// How a driven run ended.
struct Ended {
    /// Why the run stopped.
    reason: Option<StopReason>,
    /// Classes whose every request failed: such a run measured nothing of
    /// them, whatever its stop reason.
    all_failed: Vec<AllFailed>,
}

/// A class with requests, every one of them failed.
struct AllFailed {
    class: String,
    count: u64,
    errors_by_code: BTreeMap<String, u64>,
}

impl AllFailed {
    /// The classes of `results` whose every request failed.
    fn find(results: &measure::Results) -> Vec<AllFailed> {
        results
            .operations
            .iter()
            .filter(|(_, summary)| summary.count > 0 && summary.errors == summary.count)
            .map(|(class, summary)| AllFailed {
                class: class.clone(),
                count: summary.count,
                errors_by_code: summary.errors_by_code.clone(),
            })
            .collect()
    }
}

impl fmt::Display for AllFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let codes: Vec<String> = self
            .errors_by_code
            .iter()
            .map(|(code, n)| format!("{code}: {n}"))
            .collect();
        write!(
            f,
            "every {} request failed: {} of {} ({})",
            self.class,
            self.count,
            self.count,
            codes.join(", ")
        )
    }
}

async fn check_min_nodes(client: &Client, min_nodes: usize) -> anyhow::Result<()> {
    if min_nodes == 0 {
        return Ok(());
    }
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let count = nodes
        .list_metadata(&ListParams::default())
        .await
        .map_err(|err| anyhow!("cannot list the cluster's nodes: {}", describe(&err)))?
        .items
        .len();
    if count < min_nodes {
        bail!("the cluster has {count} node(s); --min-nodes requires {min_nodes}");
    }
    Ok(())
}

fn classes(scenario: &Scenario) -> Vec<Class> {
    let writer = |writer: Writer| match writer {
        Writer::Churn => Churn::classes(),
        Writer::Thrash => Thrash::classes(),
        Writer::None => Vec::new(),
    };
    match scenario {
        Scenario::PodStress(_) => PodStress::classes(),
        Scenario::Churn(_) => Churn::classes(),
        Scenario::Thrash(_) => Thrash::classes(),
        Scenario::WatchLatency(args) => {
            let mut classes = WatchLatency::classes();
            classes.extend(writer(args.writer.driver));
            classes
        }
        Scenario::WatchLoop(args) => {
            let mut classes = WatchLoop::classes();
            classes.extend(writer(args.writer.driver));
            classes
        }
        Scenario::List(_) => Lists::classes(),
        Scenario::Get(_) => Gets::classes(),
    }
}

/// Runs the driver with its measurement, progress, metrics and stop
/// conditions (`control` may already hold an interrupt), then reports.
/// Returns why the run stopped and which classes failed entirely.
async fn drive(
    scenario: &Scenario,
    ctx: &Context,
    control: &Control,
    resource: Option<&(Resource, Template)>,
    target: &str,
) -> anyhow::Result<Ended> {
    let common = scenario.common();
    let metrics = match common.metrics_addr {
        Some(addr) => {
            let mut registry = Registry::default();
            ctx.measurement.register_metrics(&mut registry);
            let server = MetricsServer::start(addr, registry).await?;
            eprintln!("metrics on http://{}/metrics", server.local_addr());
            Some(server)
        }
        None => None,
    };

    let mut ctx = ctx.clone();
    ctx.stop = control.token();
    let timers = [
        control.stop_after(common.duration),
        control.stop_when_failing(
            ctx.measurement.clone(),
            Duration::from_secs(common.max_error_seconds),
        ),
    ];
    let progress = Progress::start(&ctx.measurement, Some(common.duration));
    let driven = execute(scenario, &ctx, resource).await;
    if matches!(&driven, Ok(output) if output.finished_early) {
        control.stop(StopReason::Finished);
    } else {
        control.stop(StopReason::Duration);
    }
    progress.finish();
    for timer in timers {
        timer.abort();
    }
    let reason = control.reason();

    let (config, output) = match driven {
        Ok(output) => (config(scenario), output),
        Err(err) => {
            if let Some(metrics) = metrics {
                metrics.shutdown().await;
            }
            return Err(err);
        }
    };
    let mut extra = output.extra;
    if let Some(reason) = &reason {
        extra.insert("stop_reason".to_owned(), json!(reason.to_string()));
    }
    extra.insert("namespace".to_owned(), json!(ctx.namespace));
    let report = Report::new(
        RunInfo {
            scenario: scenario.name().to_owned(),
            target: target.to_owned(),
            config,
            target_rate_per_s: output.target_rate_per_s,
            achieved_rate_per_s: output.achieved_rate_per_s,
            extra,
        },
        ctx.measurement.snapshot(),
    );
    print!("{}", report.table());
    if let Some(dir) = &common.output {
        let path = report.write_json(dir)?;
        eprintln!("results written to {}", path.display());
        if common.report.is_some() {
            let path = report.write_html(dir)?;
            eprintln!("report written to {}", path.display());
        }
    }
    if let Some(metrics) = metrics {
        metrics.shutdown().await;
    }
    Ok(Ended {
        reason,
        all_failed: AllFailed::find(report.results()),
    })
}

/// The first Ctrl-C or SIGTERM ends the run gracefully: in-flight requests
/// finish, results are written and the namespace is removed, and the exit
/// status is that of any run that ended. A second one exits at once, with
/// the status a shell reports for that signal (130, 143).
fn interrupt_on_signal(
    control: Control,
    mut interrupts: Interrupts,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let first = interrupts.next().await;
        eprintln!(
            "\ninterrupted ({first}): finishing in-flight requests, then writing results and \
             removing the namespace ({first} again to exit at once)"
        );
        control.stop(StopReason::Interrupted);
        let second = interrupts.next().await;
        std::process::exit(second.exit_code());
    })
}

async fn execute(
    scenario: &Scenario,
    ctx: &Context,
    resource: Option<&(Resource, Template)>,
) -> anyhow::Result<Output> {
    let needs_resource = || resource.context("the driver needs a resource");
    let output = match scenario {
        Scenario::PodStress(args) => pod_stress(args).run(ctx).await?,
        Scenario::Churn(args) => {
            let (resource, template) = needs_resource()?;
            churn(&args.churn)
                .run(ctx, resource, template, None)
                .await?
        }
        Scenario::Thrash(args) => {
            let (resource, template) = needs_resource()?;
            thrash(&args.thrash)
                .run(ctx, resource, template, None)
                .await?
        }
        Scenario::WatchLatency(args) => {
            let (resource, template) = needs_resource()?;
            let informers = WatchLatency {
                watchers: args.watchers,
            }
            .start(ctx, resource)
            .await?;
            let written = write(
                &args.writer,
                ctx,
                resource,
                template,
                Some(informers.delete_log()),
            )
            .await;
            let seen = informers.finish().await;
            let mut output = written?;
            output.extra.insert("watch_latency".to_owned(), seen);
            output
        }
        Scenario::WatchLoop(args) => {
            let (resource, template) = needs_resource()?;
            let watchers = WatchLoop {
                clients: args.clients,
                watch_timeout: args.watch_timeout,
            }
            .start(ctx, resource)?;
            let written = write(&args.writer, ctx, resource, template, None).await;
            let seen = watchers.finish().await;
            let mut output = written?;
            output.extra.insert("watch_loop".to_owned(), seen);
            output
        }
        Scenario::List(args) => {
            let (resource, template) = needs_resource()?;
            Lists {
                clients: args.clients,
                limit: args.limit,
                seed_objects: args.seed_objects,
            }
            .run(ctx, resource, template)
            .await?
        }
        Scenario::Get(args) => {
            let (resource, template) = needs_resource()?;
            Gets {
                workers: args.workers,
            }
            .run(ctx, resource, template)
            .await?
        }
    };
    Ok(output)
}

async fn write(
    writer: &WriterArgs,
    ctx: &Context,
    resource: &Resource,
    template: &Template,
    deletes: Option<DeleteLog>,
) -> anyhow::Result<Output> {
    let output = match writer.driver {
        Writer::Churn => {
            churn(&writer.churn)
                .run(ctx, resource, template, deletes)
                .await?
        }
        Writer::Thrash => {
            thrash(&writer.thrash)
                .run(ctx, resource, template, deletes)
                .await?
        }
        Writer::None => {
            ctx.stop.cancelled().await;
            Output::default()
        }
    };
    Ok(output)
}

fn pod_stress(args: &PodStressArgs) -> PodStress {
    PodStress {
        objects: u64::try_from(args.objects).ok(),
        object_size: usize::try_from(args.object_size).unwrap_or(usize::MAX),
        update_concurrency: args.update_concurrency,
        list_batch_limit: u32::try_from(args.list_batch_limit).ok(),
        key_prefix: args
            .key_prefix
            .clone()
            .unwrap_or_else(|| format!("pod{}", &namespace::generated_name("x")[2..9])),
        image: args.image.clone(),
    }
}

fn churn(options: &ChurnOptions) -> Churn {
    Churn {
        rate: options.rate,
        arrivals: options.arrivals,
        lifetime: options.lifetime,
        max_in_flight: options.max_in_flight,
        seed: options.seed.unwrap_or_else(rand_seed),
    }
}

fn thrash(options: &ThrashOptions) -> Thrash {
    Thrash {
        workers: options.workers,
    }
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_nanos() as u64)
        .unwrap_or_default()
}

/// The run's options as results.json records them.
fn config(scenario: &Scenario) -> Value {
    let common = scenario.common();
    let mut config = match scenario {
        Scenario::PodStress(args) => serde_json::to_value(pod_stress(args)).unwrap_or_default(),
        Scenario::Churn(args) => json!({
            "resource": args.objects.resource,
            "object_size": args.objects.object_size(),
            "rate": args.churn.rate,
            "arrivals": args.churn.arrivals,
            "lifetime_s": args.churn.lifetime.as_secs_f64(),
            "max_in_flight": args.churn.max_in_flight,
        }),
        Scenario::Thrash(args) => json!({
            "resource": args.objects.resource,
            "object_size": args.objects.object_size(),
            "workers": args.thrash.workers,
        }),
        Scenario::WatchLatency(args) => json!({
            "watchers": args.watchers,
            "driver": format!("{:?}", args.writer.driver).to_lowercase(),
            "resource": args.writer.objects.resource,
            "rate": args.writer.churn.rate,
            "workers": args.writer.thrash.workers,
        }),
        Scenario::WatchLoop(args) => json!({
            "clients": args.clients,
            "watch_timeout_s": args.watch_timeout.as_secs_f64(),
            "driver": format!("{:?}", args.writer.driver).to_lowercase(),
            "resource": args.writer.objects.resource,
        }),
        Scenario::List(args) => json!({
            "clients": args.clients,
            "limit": args.limit,
            "objects": args.seed_objects,
            "resource": args.objects.resource,
        }),
        Scenario::Get(args) => json!({
            "workers": args.workers,
            "resource": args.objects.resource,
            "object_size": args.objects.object_size(),
        }),
    };
    if let Value::Object(map) = &mut config {
        map.insert("duration_s".into(), json!(common.duration.as_secs_f64()));
        map.insert("max_error_seconds".into(), json!(common.max_error_seconds));
        if common.target.cluster.nodes > 0 && !common.target.is_remote() {
            map.insert("nodes".into(), json!(common.target.cluster.nodes));
        }
    }
    config
}

/// Deletes the run's objects, found by their run label, from a namespace
/// the run did not create, and waits until they are gone: the run's
/// resource, or the pods of pod-stress.
async fn delete_run_objects(
    client: &Client,
    namespace: &str,
    run_id: &str,
    resource: Option<&Resource>,
) -> anyhow::Result<()> {
    let (api, what): (Api<DynamicObject>, String) = match resource {
        Some(resource) if resource.namespaced => (
            Api::namespaced_with(client.clone(), namespace, &resource.api),
            resource.to_string(),
        ),
        Some(resource) => (
            Api::all_with(client.clone(), &resource.api),
            resource.to_string(),
        ),
        None => (
            Api::namespaced_with(client.clone(), namespace, &ApiResource::erase::<Pod>(&())),
            "pods".to_owned(),
        ),
    };
    namespace::delete_labelled_and_wait(&api, &format!("{RUN_LABEL}={run_id}"), CLEANUP_TIMEOUT)
        .await
        .with_context(|| format!("cannot clean up the run's {what} in namespace {namespace}"))
}

/// Deletes the run's namespace and waits until it is gone; cluster-scoped
/// objects of the run are deleted by label first.
async fn cleanup(
    client: &Client,
    namespace: &str,
    run_id: &str,
    resource: Option<&Resource>,
) -> anyhow::Result<()> {
    if let Some(resource) = resource.filter(|resource| !resource.namespaced) {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource.api);
        api.delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels(&format!("{RUN_LABEL}={run_id}")),
        )
        .await
        .map_err(|err| anyhow!("cannot delete the run's {resource}: {}", describe(&err)))?;
    }
    namespace::delete_and_wait(client, namespace, CLEANUP_TIMEOUT)
        .await
        .with_context(|| format!("cannot clean up namespace {namespace}"))
}
