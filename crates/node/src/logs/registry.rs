//! Which log files belong to which pod containers, kept by the pod workers
//! and read by the log endpoint.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;

/// The logs of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerLog {
    /// The log of the latest run; `None` before the first start.
    pub current: Option<PathBuf>,
    /// The log of the run before it, for `--previous`.
    pub previous: Option<PathBuf>,
    /// Whether the latest run is still going (so `--follow` keeps reading).
    pub running: bool,
    /// Why the container is not running, e.g. `ContainerCreating`.
    pub waiting_reason: Option<String>,
}

type PodKey = (String, String);

/// Container logs of every pod on the node, by namespace and pod name.
#[derive(Debug, Clone, Default)]
pub struct LogRegistry {
    pods: Arc<RwLock<HashMap<PodKey, HashMap<String, ContainerLog>>>>,
}

impl LogRegistry {
    /// Replaces what is known about `container` of a pod.
    pub fn set(&self, namespace: &str, pod: &str, container: &str, log: ContainerLog) {
        self.pods
            .write()
            .entry((namespace.to_owned(), pod.to_owned()))
            .or_default()
            .insert(container.to_owned(), log);
    }

    /// Forgets a pod.
    pub fn remove(&self, namespace: &str, pod: &str) {
        self.pods
            .write()
            .remove(&(namespace.to_owned(), pod.to_owned()));
    }

    /// What is known about `container` of a pod; `None` for an unknown pod,
    /// `Some(None)` for an unknown container.
    pub fn get(&self, namespace: &str, pod: &str, container: &str) -> Option<Option<ContainerLog>> {
        self.pods
            .read()
            .get(&(namespace.to_owned(), pod.to_owned()))
            .map(|containers| containers.get(container).cloned())
    }
}
