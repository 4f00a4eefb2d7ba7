//! The node agent: wires registration, the lease, status reports, the log
//! endpoint and the pod workers together, and takes them down again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::events::Recorder;
use crate::images::{ImageManager, TokioClock};
use crate::lease::{self, NODE_LEASE_NAMESPACE};
use crate::logs::{LogRegistry, LogServer};
use crate::pods::{self, Context};
use crate::registration::{self, Advertised};
use crate::runtime::{self, Catalogue};
use crate::{Error, NodeConfig, RuntimeKind};

/// Discards pull timings; the node reports pod startup through pod status.
struct NoPullTimes;

impl crate::images::PodPullingTimeRecorder for NoPullTimes {
    fn record_image_started_pulling(&self, _pod_uid: &str) {}
    fn record_image_finished_pulling(&self, _pod_uid: &str) {}
}

/// A running simulated kubelet; [`NodeAgent::shutdown`] takes it out of the
/// cluster again.
pub struct NodeAgent {
    name: String,
    /// Whether the Node is the agent's own (see [`crate::ExistingNode`]); only
    /// then does it delete the Node and its Lease on shutdown.
    own_node: bool,
    client: kube::Client,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    log_server: Option<LogServer>,
    events: JoinHandle<()>,
    runtime: Arc<dyn runtime::Runtime>,
}

impl NodeAgent {
    /// Registers the node, takes its Lease and starts serving its pods.
    pub async fn start(client: kube::Client, config: NodeConfig) -> Result<NodeAgent, Error> {
        if config.name.is_empty() {
            return Err(Error::Config("the node name must not be empty".into()));
        }
        let runtime = runtime::build(&config)?;
        let logs = LogRegistry::default();
        let log_server = if config.serve_logs {
            let server = LogServer::start(SocketAddr::new(config.address, 0), logs.clone())
                .await
                .map_err(Error::io(format!(
                    "cannot serve container logs on {}",
                    config.address
                )))?;
            Some(server)
        } else {
            None
        };
        let kubelet_port = log_server
            .as_ref()
            .map_or(0, |server| i32::from(server.addr().port()));
        let since = Timestamp::now();
        let nodes: Api<Node> = Api::all(client.clone());
        let advertised = Advertised {
            config: &config,
            runtime_version: runtime.version(),
            kubelet_port,
            boot_id: uuid::Uuid::new_v4().to_string(),
        };
        let leases: Api<Lease> = Api::namespaced(client.clone(), NODE_LEASE_NAMESPACE);
        let registered = registration::register(&nodes, &leases, &advertised, since).await?;
        lease::acquire(
            &leases,
            &config.name,
            &registered.uid,
            config.lease_duration,
        )
        .await?;

        let (recorder, events) = Recorder::start(client.clone(), &config.name);
        let images = ImageManager::new(
            config.images.clone(),
            Arc::new(Catalogue::new(config.unpullable_registry_prefix.clone())),
            Arc::new(recorder.clone()),
            Arc::new(NoPullTimes),
            Arc::new(TokioClock),
        )
        .map_err(|err| Error::Config(err.to_string()))?;
        let (shutdown, stop) = watch::channel(false);
        let heartbeat = tokio::spawn(heartbeat(
            nodes,
            leases,
            HeartbeatInput {
                config: config.clone(),
                runtime_version: runtime.version(),
                kubelet_port,
                boot_id: advertised.boot_id.clone(),
                since,
            },
            stop.clone(),
        ));
        let ctx = Arc::new(Context {
            client: client.clone(),
            host_ip: config.address.to_string(),
            host_network: config.runtime == RuntimeKind::Process,
            config: config.clone(),
            runtime: runtime.clone(),
            images,
            recorder,
            logs,
        });
        let pods = tokio::spawn(pods::run(ctx, stop));
        Ok(NodeAgent {
            name: config.name,
            own_node: registered.own,
            client,
            shutdown,
            tasks: vec![heartbeat, pods],
            log_server,
            events,
            runtime,
        })
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops every container, then deletes the node's Lease and Node so the
    /// cluster sees it leave rather than go silent. A Node the agent took
    /// over without owning it is not its to delete: it is left with its
    /// Lease, which expires, so the node lifecycle controller marks the Node
    /// NotReady as for any kubelet that stopped.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        if let Some(server) = self.log_server {
            server.shutdown().await;
        }
        if self.own_node {
            let leases: Api<Lease> = Api::namespaced(self.client.clone(), NODE_LEASE_NAMESPACE);
            lease::release(&leases, &self.name).await;
            registration::deregister(&Api::all(self.client.clone()), &self.name).await;
        }
        self.runtime.shutdown().await;
        // Pod workers held the last recorder clones; queued events drain now.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.events).await;
    }
}

/// What the heartbeat task needs to re-post the node's status.
struct HeartbeatInput {
    config: NodeConfig,
    runtime_version: String,
    kubelet_port: i32,
    boot_id: String,
    since: Timestamp,
}

/// Renews the Lease every `lease_renew_interval` and re-posts the Node's
/// status every `status_report_interval`.
async fn heartbeat(
    nodes: Api<Node>,
    leases: Api<Lease>,
    input: HeartbeatInput,
    mut stop: watch::Receiver<bool>,
) {
    let name = input.config.name.clone();
    let mut renew = tokio::time::interval(input.config.lease_renew_interval);
    let mut report = tokio::time::interval(input.config.status_report_interval);
    renew.tick().await;
    report.tick().await;
    loop {
        tokio::select! {
            _ = renew.tick() => {
                if let Err(err) = lease::renew(&leases, &name).await {
                    tracing::warn!(%err, node = name, "lease renewal failed");
                }
            }
            _ = report.tick() => {
                let advertised = Advertised {
                    config: &input.config,
                    runtime_version: input.runtime_version.clone(),
                    kubelet_port: input.kubelet_port,
                    boot_id: input.boot_id.clone(),
                };
                if let Err(err) = registration::report(&nodes, &advertised, input.since).await {
                    tracing::warn!(%err, node = name, "node status update failed");
                }
            }
            () = crate::stopped(&mut stop) => return,
        }
    }
}
