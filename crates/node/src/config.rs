//! What a node agent is and how it behaves: identity, advertised
//! resources, heartbeat cadence, back-off timings and runtime settings.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use crate::images::ImageManagerConfig;

/// Prefix of the pod annotations that script containers of the `sim`
/// runtime, e.g. `sim.kstress.io/web.run-duration: "5s"`.
pub const SIM_ANNOTATION_PREFIX: &str = "sim.kstress.io/";

/// Which container runtime a node uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// No processes: containers are timers scripted by pod annotations, so
    /// thousands of nodes fit in one process.
    Sim,
    /// Container commands run for real inside a bubblewrap sandbox.
    Process,
}

impl RuntimeKind {
    /// The runtime's name as the command line and `nodeInfo` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Sim => "sim",
            RuntimeKind::Process => "process",
        }
    }
}

/// Everything a [`crate::NodeAgent`] needs besides its API client.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The Node's name; pods reach the node through `spec.nodeName`.
    pub name: String,
    /// The container runtime.
    pub runtime: RuntimeKind,
    /// Advertised as the `InternalIP` address and bound by the log endpoint.
    pub address: IpAddr,
    /// `status.capacity.cpu` (and allocatable).
    pub cpu: String,
    /// `status.capacity.memory` (and allocatable).
    pub memory: String,
    /// `status.capacity.pods` (and allocatable).
    pub max_pods: u32,
    /// `spec.leaseDurationSeconds` of the node's Lease (upstream: 40 s).
    pub lease_duration: Duration,
    /// How often the Lease is renewed (upstream: 10 s).
    pub lease_renew_interval: Duration,
    /// How often the Node's conditions are re-posted with a fresh heartbeat
    /// even when nothing changed (upstream: 5 min).
    pub status_report_interval: Duration,
    /// First delay before restarting a crashed container (upstream: 10 s).
    /// Its first restart is immediate, later ones wait this long, doubling.
    pub crash_loop_backoff_initial: Duration,
    /// Longest crash-loop delay (upstream: 5 min).
    pub crash_loop_backoff_max: Duration,
    /// How often a container whose image could not be pulled is retried;
    /// the image manager's back-off decides whether a pull actually happens.
    pub image_retry_interval: Duration,
    /// Pull policy back-off, rate limits and pull concurrency.
    pub images: ImageManagerConfig,
    /// Images whose registry host starts with this cannot be pulled, like
    /// upstream's e2e "invalid registry" image.
    pub unpullable_registry_prefix: String,
    /// Where the `process` runtime keeps container roots, volumes and logs;
    /// a directory under the system temporary directory when absent.
    pub data_dir: Option<PathBuf>,
    /// The bubblewrap executable of the `process` runtime.
    pub bwrap: PathBuf,
    /// Whether to serve container logs (the kubelet's `/containerLogs`
    /// endpoint) on [`NodeConfig::address`].
    pub serve_logs: bool,
    /// What to do when a Node of this name exists already.
    pub existing: ExistingNode,
}

/// How an agent treats a Node of its name that exists when it starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExistingNode {
    /// Take over a stale Node, as a restarted kubelet does, but refuse one
    /// that a live kubelet holds (Ready, with a fresh Lease), so that two
    /// agents never fight over one Node. Only a Node the agent created is
    /// deleted when it stops.
    #[default]
    TakeOverStale,
    /// Take over even a live Node; it is still not the agent's to delete.
    TakeOver,
    /// The Node is the agent's own whoever created it, e.g. an embedded
    /// cluster's node left in its persistent store by a run that was
    /// killed: take it over and delete it when the agent stops.
    Own,
}

impl NodeConfig {
    /// Upstream kubelet defaults for a node called `name`.
    pub fn new(name: impl Into<String>, runtime: RuntimeKind) -> Self {
        NodeConfig {
            name: name.into(),
            runtime,
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            cpu: "8".into(),
            memory: "32Gi".into(),
            max_pods: 110,
            lease_duration: Duration::from_secs(40),
            lease_renew_interval: Duration::from_secs(10),
            status_report_interval: Duration::from_secs(300),
            crash_loop_backoff_initial: Duration::from_secs(10),
            crash_loop_backoff_max: Duration::from_secs(300),
            image_retry_interval: Duration::from_secs(1),
            images: ImageManagerConfig::default(),
            unpullable_registry_prefix: "invalid.".into(),
            data_dir: None,
            bwrap: PathBuf::from("bwrap"),
            serve_logs: true,
            existing: ExistingNode::default(),
        }
    }
}
