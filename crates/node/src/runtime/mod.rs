//! Container runtimes behind one interface, the node's counterpart of the
//! CRI: create a pod's sandbox, start containers, exec into them, and tear
//! the pod down. Images go through the shared [`catalogue::Catalogue`].

mod catalogue;
mod network;
mod process;
mod sim;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::oneshot;

pub use catalogue::Catalogue;
pub use network::NetworkProbe;
pub use process::ProcessRuntime;
pub use sim::SimRuntime;

/// A pod as the runtime sees it.
#[derive(Debug, Clone)]
pub struct PodSandbox {
    pub uid: String,
    /// Names of the pod's emptyDir volumes, shared by all its containers.
    pub empty_dirs: Vec<String>,
}

/// A volume bound into a container.
#[derive(Debug, Clone)]
pub struct Mount {
    pub volume: String,
    pub path: String,
    pub read_only: bool,
}

/// One run of one container: everything the runtime needs to start it.
#[derive(Debug, Clone)]
pub struct ContainerRun {
    pub pod_uid: String,
    pub pod_name: String,
    pub container: String,
    /// 0 for the first run, then the restart count.
    pub attempt: u32,
    /// `command` followed by `args`, with `$(VAR)` references expanded.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub mounts: Vec<Mount>,
    pub termination_message_path: String,
    /// The pod's annotations, which script the `sim` runtime.
    pub annotations: BTreeMap<String, String>,
}

/// How a container run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    /// The content of the termination message file (at most 4 KiB, the tail).
    pub message: String,
}

/// A signal the node sends to a running container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// Ask the container to stop (SIGTERM).
    Term,
    /// Stop it now (SIGKILL).
    Kill,
}

/// Sends signals to one running container.
pub trait ContainerControl: Send + Sync {
    fn signal(&self, signal: StopSignal);
}

/// A container that has started.
pub struct Started {
    /// The runtime's container ID, shown as `containerStatuses[].containerID`.
    pub id: String,
    /// Resolves once the container has exited and its output is flushed.
    pub exit: oneshot::Receiver<Exit>,
    pub control: Box<dyn ContainerControl>,
    /// Where the container's output is kept, for `kubectl logs`.
    pub log: Option<PathBuf>,
}

/// The result of a command run inside a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub code: i32,
    pub output: String,
}

/// A runtime's failure to set up or start something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuntimeError(pub String);

/// The operations the pod workers need from a container runtime.
#[async_trait]
pub trait Runtime: Send + Sync {
    /// `containerRuntimeVersion` of the Node, e.g. `kstress-sim://0.1.0`.
    fn version(&self) -> String;
    /// Creates the pod's shared state (its emptyDir volumes).
    async fn create_pod(&self, pod: &PodSandbox) -> Result<(), RuntimeError>;
    /// Starts one container run; returns once it is running.
    async fn start(&self, run: &ContainerRun) -> Result<Started, RuntimeError>;
    /// Runs `command` with the filesystem view of `run`, for hooks and exec probes.
    async fn exec(
        &self,
        run: &ContainerRun,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError>;
    /// Checks an `httpGet` or `tcpSocket` probe target.
    async fn probe_network(&self, probe: &NetworkProbe, timeout: Duration) -> Result<(), String>;
    /// Removes everything the pod left behind; its containers have stopped.
    async fn remove_pod(&self, pod_uid: &str);
    /// Removes the runtime's own state when the node leaves.
    async fn shutdown(&self);
}

/// The runtime a node config asks for.
pub fn build(config: &crate::NodeConfig) -> Result<Arc<dyn Runtime>, crate::Error> {
    match config.runtime {
        crate::RuntimeKind::Sim => Ok(Arc::new(SimRuntime)),
        crate::RuntimeKind::Process => {
            let (dir, owned) = match &config.data_dir {
                Some(dir) => (dir.clone(), false),
                None => (
                    std::env::temp_dir().join("kstress-node").join(format!(
                        "{}-{}",
                        config.name,
                        std::process::id()
                    )),
                    true,
                ),
            };
            Ok(Arc::new(ProcessRuntime::new(
                dir,
                owned,
                config.bwrap.clone(),
            )?))
        }
    }
}

/// `kstress://<random>`-style container IDs, unique per run.
fn container_id(runtime: &str) -> String {
    format!("{runtime}://{}", uuid::Uuid::new_v4().simple())
}
