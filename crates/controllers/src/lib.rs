//! The control plane loops of kstress: the scheduler, the garbage
//! collector, the pod garbage collector, the node lifecycle controller and
//! the workload controllers (ReplicaSet, Deployment, Job).
//!
//! Every loop is an API client through kube-rs and never touches a store,
//! so the same code drives the embedded cluster and can run against a real
//! one. Namespace lifecycle is left to the API server, which finalizes
//! namespaces itself.

mod deployment;
mod gc;
mod job;
mod nodelifecycle;
mod podgc;
mod replicaset;
mod scheduler;
mod serviceaccount;
mod tainteviction;
mod util;
mod workload;

use std::time::Duration;

use tokio::sync::watch as signal;
use tokio::task::JoinHandle;

/// The scheduler name pods get when they name none.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// Settings of the control plane loops.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// How long a node may go without renewing its lease or posting its
    /// status before it is marked NotReady (Ready=Unknown).
    pub node_monitor_grace_period: Duration,
    /// The `spec.schedulerName` of the pods the scheduler binds.
    pub scheduler_name: String,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            node_monitor_grace_period: Duration::from_secs(40),
            scheduler_name: DEFAULT_SCHEDULER_NAME.to_string(),
        }
    }
}

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach the API server: {0}")]
    Unreachable(#[source] kube::Error),
    #[error("cannot discover the resources to garbage-collect: {0}")]
    Discovery(#[source] kube::Error),
}

/// Running control plane loops; [`Controllers::shutdown`] stops them.
pub struct Controllers {
    shutdown: signal::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Controllers {
    /// Starts the scheduler and all controllers against the cluster behind
    /// `client`.
    pub async fn start(
        client: kube::Client,
        options: ControllerOptions,
    ) -> Result<Controllers, Error> {
        client
            .apiserver_version()
            .await
            .map_err(Error::Unreachable)?;
        let resources = gc::Resources::discover(&client)
            .await
            .map_err(Error::Discovery)?;
        let (shutdown, signal) = signal::channel(false);
        let (pods, triggers, pod_watch) = workload::watch_pods(client.clone(), signal.clone());
        let tasks = vec![
            tokio::spawn(scheduler::run(
                client.clone(),
                options.scheduler_name.clone(),
                signal.clone(),
            )),
            pod_watch,
            tokio::spawn(workload::run_owner_controller(
                client.clone(),
                pods.clone(),
                triggers.replicasets,
                signal.clone(),
                replicaset::reconcile,
            )),
            tokio::spawn(deployment::run(client.clone(), signal.clone())),
            tokio::spawn(podgc::run(client.clone(), pods.clone(), signal.clone())),
            tokio::spawn(workload::run_owner_controller(
                client.clone(),
                pods.clone(),
                triggers.jobs,
                signal.clone(),
                job::reconcile,
            )),
            tokio::spawn(gc::run(client.clone(), resources, signal.clone())),
            tokio::spawn(serviceaccount::run(client.clone(), signal.clone())),
            tokio::spawn(nodelifecycle::run(
                client.clone(),
                pods.store,
                options.node_monitor_grace_period,
                signal.clone(),
            )),
        ];
        Ok(Controllers { shutdown, tasks })
    }

    /// Starts only the scheduler, for clusters whose other controllers run
    /// elsewhere.
    pub async fn start_scheduler(
        client: kube::Client,
        options: ControllerOptions,
    ) -> Result<Controllers, Error> {
        client
            .apiserver_version()
            .await
            .map_err(Error::Unreachable)?;
        let (shutdown, signal) = signal::channel(false);
        let tasks = vec![tokio::spawn(scheduler::run(
            client,
            options.scheduler_name,
            signal,
        ))];
        Ok(Controllers { shutdown, tasks })
    }

    /// Stops every loop and waits for them to finish.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            if let Err(err) = task.await {
                tracing::warn!(error = %err, "a controller task panicked");
            }
        }
    }
}
