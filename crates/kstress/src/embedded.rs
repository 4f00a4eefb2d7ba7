//! The embedded cluster: the API server on loopback with a fresh CA and
//! token, plus the scheduler, controllers and simulated nodes, all of
//! which reach the server over HTTPS like any other client.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use apiserver::{Limits, Server, ServerConfig};
use clap::{Args, ValueEnum};
use controllers::{ControllerOptions, Controllers};
use futures::StreamExt as _;
use kube::Client;
use node::{ExistingNode, NodeAgent, NodeConfig, RuntimeKind};

use crate::storage::{self, StoreArgs};

/// Options of the in-process cluster.
#[derive(Args, Clone, Debug)]
pub struct ClusterArgs {
    /// Simulated nodes of the embedded cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,

    /// Container runtime of the simulated nodes [default: sim; process for
    /// `conformance node`, which needs it].
    #[arg(long, value_enum)]
    pub runtime: Option<Runtime>,

    /// Non-mutating requests the embedded API server serves at once; more
    /// are answered 429 (kube-apiserver's --max-requests-inflight).
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_requests_inflight: u32,

    /// Mutating requests the embedded API server serves at once; more are
    /// answered 429 (kube-apiserver's --max-mutating-requests-inflight).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_mutating_requests_inflight: u32,

    #[command(flatten)]
    pub store: StoreArgs,
}

impl ClusterArgs {
    /// The API server's in-flight limits as these options set them.
    fn limits(&self, mut limits: Limits) -> Limits {
        limits.max_readonly_inflight = self.max_requests_inflight as usize;
        limits.max_mutating_inflight = self.max_mutating_requests_inflight as usize;
        limits
    }
}

/// Container runtimes of simulated nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Runtime {
    /// No processes: containers are scripted timers (thousands of nodes fit).
    Sim,
    /// Container commands run for real inside bubblewrap.
    Process,
}

impl From<Runtime> for RuntimeKind {
    fn from(runtime: Runtime) -> Self {
        match runtime {
            Runtime::Sim => RuntimeKind::Sim,
            Runtime::Process => RuntimeKind::Process,
        }
    }
}

/// A running embedded cluster.
///
/// It runs on a runtime of its own, with its own worker threads, so that
/// the load drivers of the same process never wait behind the server's
/// work: the two meet only over loopback HTTPS, as they would across
/// machines.
pub struct Cluster {
    /// Taken by [`Cluster::stop`]; a cluster dropped without it (an error
    /// return) abandons its tasks without blocking.
    runtime: Option<tokio::runtime::Runtime>,
    parts: Option<Parts>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What runs on the cluster's runtime.
struct Parts {
    server: Server,
    controllers: Controllers,
    nodes: Vec<NodeAgent>,
}

/// How long stopping waits for the cluster's remaining tasks.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(10);

/// How long one step of the cluster's start may take. Each step is a few
/// requests over loopback (or the store's connection), so one that takes
/// this long is stuck, and an error that names it beats a silent wait.
const START_STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs one step of the cluster's start, bounded by [`START_STEP_TIMEOUT`];
/// `what` names what it waits for.
async fn start_step<T>(
    what: &str,
    step: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(START_STEP_TIMEOUT, step)
        .await
        .unwrap_or_else(|_| {
            Err(anyhow!(
                "timed out after {} s waiting for {what}",
                START_STEP_TIMEOUT.as_secs()
            ))
        })
}

impl Cluster {
    /// Starts the API server with `config`, then the control plane and the
    /// nodes as its clients.
    pub async fn start(args: &ClusterArgs, mut config: ServerConfig) -> anyhow::Result<Cluster> {
        config.limits = args.limits(config.limits);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("kstress-cluster")
            // Its threads are created by the load's, which may favour
            // their own wake-ups; the server competes as usual.
            .on_thread_start(|| {
                if let Err(err) = lowlatency::restore_defaults() {
                    tracing::debug!(%err, "cannot restore default scheduling hints");
                }
            })
            .enable_all()
            .build()
            .context("cannot start the embedded cluster's runtime")?;
        let started = runtime.spawn(Parts::start(args.clone(), config)).await;
        let parts = match started {
            Ok(result) => result,
            Err(err) => Err(anyhow::anyhow!(
                "the embedded cluster failed to start: {err}"
            )),
        };
        match parts {
            Ok(parts) => Ok(Cluster {
                runtime: Some(runtime),
                parts: Some(parts),
            }),
            Err(err) => {
                shut_down(runtime).await;
                Err(err)
            }
        }
    }

    fn server(&self) -> &Server {
        &self
            .parts
            .as_ref()
            .expect("a cluster has its parts until it stops")
            .server
    }

    /// The API server's URL.
    pub fn url(&self) -> String {
        self.server().url()
    }

    /// The API server's kubeconfig (CA, URL and token).
    pub fn kubeconfig(&self) -> String {
        self.server().kubeconfig()
    }

    /// Stops the nodes, the control plane and the server, in that order,
    /// then the cluster's runtime.
    pub async fn stop(mut self) {
        let (Some(runtime), Some(parts)) = (self.runtime.take(), self.parts.take()) else {
            return;
        };
        if let Err(err) = runtime.spawn(parts.stop()).await {
            tracing::warn!(%err, "the embedded cluster did not stop cleanly");
        }
        shut_down(runtime).await;
    }
}

impl Parts {
    async fn start(args: ClusterArgs, config: ServerConfig) -> anyhow::Result<Parts> {
        let store = start_step("the store to open", storage::open(&args.store)).await?;
        let server = start_step("the embedded API server to start", async {
            Server::start(store, config)
                .await
                .context("cannot start the embedded API server")
        })
        .await?;
        let started = start_step("the embedded controllers to start", async {
            let client = client_from_kubeconfig(&server.kubeconfig(), None)
                .await
                .context("cannot build a client for the embedded API server")?;
            let controllers = Controllers::start(client.clone(), ControllerOptions::default())
                .await
                .context("cannot start the embedded controllers")?;
            Ok((client, controllers))
        })
        .await;
        let (client, controllers) = match started {
            Ok(started) => started,
            Err(err) => {
                server.shutdown().await;
                return Err(err);
            }
        };
        let mut parts = Parts {
            server,
            controllers,
            nodes: Vec::with_capacity(args.nodes),
        };
        let runtime = args.runtime.unwrap_or(Runtime::Sim);
        let mut starting = futures::stream::iter(0..args.nodes)
            .map(|index| start_node(client.clone(), format!("kstress-node-{index}"), runtime))
            .buffer_unordered(NODE_STARTS_AT_ONCE);
        let mut progress = StartProgress::new(args.nodes);
        while let Some(started) = starting.next().await {
            match started {
                Ok(node) => parts.nodes.push(node),
                Err(err) => {
                    // The starts under way finish first, so that every
                    // registered node is stopped with the rest.
                    while let Some(started) = starting.next().await {
                        parts.nodes.extend(started.ok());
                    }
                    parts.stop().await;
                    return Err(err);
                }
            }
            progress.registered(parts.nodes.len());
        }
        progress.done();
        Ok(parts)
    }

    async fn stop(self) {
        for node in self.nodes {
            node.shutdown().await;
        }
        self.controllers.shutdown().await;
        self.server.shutdown().await;
    }
}

/// Nodes registered at the same time: a node's start is a few requests,
/// so a handful in flight keeps the server busy without crowding out the
/// controllers starting beside them.
const NODE_STARTS_AT_ONCE: usize = 16;

/// Starts the simulated node `name`, bounded by [`START_STEP_TIMEOUT`].
async fn start_node(client: Client, name: String, runtime: Runtime) -> anyhow::Result<NodeAgent> {
    let mut config = NodeConfig::new(&name, runtime.into());
    // A persistent store keeps the nodes of a run that was killed; they
    // are this cluster's, live-looking or not.
    config.existing = ExistingNode::Own;
    start_step(&format!("node {name} to register"), async {
        NodeAgent::start(client, config)
            .await
            .with_context(|| format!("cannot start the embedded node {name}"))
    })
    .await
}

/// Tells a user waiting for many nodes how far their start has come: a
/// line on stderr every [`PROGRESS_EVERY`] once the start has taken that
/// long, and the total at the end if any line was printed.
struct StartProgress {
    total: usize,
    began: Instant,
    next_line: Instant,
    printed: bool,
}

/// How often [`StartProgress`] reports.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

impl StartProgress {
    fn new(total: usize) -> Self {
        Self::starting_at(total, Instant::now())
    }

    fn starting_at(total: usize, began: Instant) -> Self {
        StartProgress {
            total,
            began,
            next_line: began + PROGRESS_EVERY,
            printed: false,
        }
    }

    fn registered(&mut self, count: usize) {
        if let Some(line) = self.line(count, Instant::now()) {
            eprintln!("{line}");
        }
    }

    /// The line due at `now` with `count` nodes registered, if any.
    fn line(&mut self, count: usize, now: Instant) -> Option<String> {
        if now < self.next_line || count >= self.total {
            return None;
        }
        self.printed = true;
        self.next_line = now + PROGRESS_EVERY;
        Some(format!(
            "starting the embedded cluster: {count} of {} nodes registered",
            self.total
        ))
    }

    fn done(&self) {
        if let Some(line) = self.summary(Instant::now()) {
            eprintln!("{line}");
        }
    }

    /// The closing line, only after progress lines.
    fn summary(&self, now: Instant) -> Option<String> {
        self.printed.then(|| {
            format!(
                "starting the embedded cluster: {} nodes registered in {:.1} s",
                self.total,
                (now - self.began).as_secs_f64()
            )
        })
    }
}

/// Ends a runtime from async code, which may not block: its tasks are
/// given [`RUNTIME_SHUTDOWN`] on a blocking thread.
async fn shut_down(runtime: tokio::runtime::Runtime) {
    let ended =
        tokio::task::spawn_blocking(move || runtime.shutdown_timeout(RUNTIME_SHUTDOWN)).await;
    if let Err(err) = ended {
        tracing::warn!(%err, "the embedded cluster's runtime did not shut down");
    }
}

/// A client from kubeconfig text, for load generation: kube-rs must not
/// retry throttled or failed calls on its own, because every answer of the
/// server is a measurement.
pub async fn client_from_kubeconfig(text: &str, context: Option<&str>) -> anyhow::Result<Client> {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(text).context("invalid kubeconfig")?;
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .context("incomplete kubeconfig")?;
    client_from_config(config)
}

/// A load-generating client from a client configuration.
pub fn client_from_config(mut config: kube::Config) -> anyhow::Result<Client> {
    config.default_retry = false;
    config.connect_timeout = Some(Duration::from_secs(10));
    Client::try_from(config).context("cannot build the Kubernetes client")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        cluster: ClusterArgs,
    }

    #[test]
    fn in_flight_limits_come_from_their_flags_and_default_to_upstream_s() {
        let defaults = Flags::parse_from(["kstress"]).cluster;
        let limits = defaults.limits(Limits::default());
        assert_eq!(
            (limits.max_readonly_inflight, limits.max_mutating_inflight),
            (400, 200)
        );
        let set = Flags::parse_from([
            "kstress",
            "--max-requests-inflight",
            "7",
            "--max-mutating-requests-inflight",
            "3",
        ])
        .cluster;
        let limits = set.limits(Limits::default());
        assert_eq!(
            (limits.max_readonly_inflight, limits.max_mutating_inflight),
            (7, 3)
        );
        assert!(
            Flags::try_parse_from(["kstress", "--max-mutating-requests-inflight", "0"]).is_err()
        );
    }

    #[test]
    fn a_long_start_reports_its_progress_and_a_short_one_stays_quiet() {
        let began = Instant::now();
        let mut quick = StartProgress::starting_at(3, began);
        assert_eq!(quick.line(3, began + Duration::from_millis(50)), None);
        assert_eq!(quick.summary(began + Duration::from_millis(50)), None);

        let mut long = StartProgress::starting_at(5000, began);
        assert_eq!(long.line(100, began + Duration::from_secs(1)), None);
        assert_eq!(
            long.line(900, began + PROGRESS_EVERY).as_deref(),
            Some("starting the embedded cluster: 900 of 5000 nodes registered")
        );
        assert_eq!(
            long.line(950, began + PROGRESS_EVERY),
            None,
            "one line per period"
        );
        assert!(long.line(2000, began + 2 * PROGRESS_EVERY).is_some());
        assert_eq!(
            long.summary(began + Duration::from_millis(11_200))
                .as_deref(),
            Some("starting the embedded cluster: 5000 nodes registered in 11.2 s")
        );
    }

    /// Start-up races show as a start that never ends: the embedded
    /// cluster, with the process-runtime nodes `kstress conformance node`
    /// uses, is started and stopped many times in one process, each start
    /// bounded, on a runtime as small as the 2-core machines it runs on.
    #[test]
    fn the_embedded_cluster_starts_and_stops_many_times() {
        const STARTS: usize = 200;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("test runtime");
        let args = ClusterArgs {
            nodes: 3,
            runtime: Some(Runtime::Process),
            ..Flags::parse_from(["kstress"]).cluster
        };
        runtime.block_on(async {
            for start in 0..STARTS {
                let cluster = tokio::time::timeout(
                    Duration::from_secs(60),
                    Cluster::start(&args, ServerConfig::default()),
                )
                .await
                .unwrap_or_else(|_| panic!("start {start} of {STARTS} did not end within 60 s"))
                .unwrap_or_else(|err| panic!("start {start} of {STARTS} failed: {err:#}"));
                let client = client_from_kubeconfig(&cluster.kubeconfig(), None)
                    .await
                    .expect("a client of the cluster");
                tokio::time::timeout(Duration::from_secs(60), client.apiserver_version())
                    .await
                    .unwrap_or_else(|_| panic!("start {start}: the server does not answer"))
                    .expect("the server answers");
                cluster.stop().await;
            }
        });
    }
}
