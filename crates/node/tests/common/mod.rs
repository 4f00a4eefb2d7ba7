//! Test harness: an embedded API server on loopback, a kube-rs client for
//! it, and one node agent with short back-offs.

// Each test binary uses its own subset of the harness.
#![allow(dead_code)]

pub mod timeline;

use std::time::Duration;

use apiserver::Server;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, PostParams};
use node::images::ImageManagerConfig;
use node::{NodeAgent, NodeConfig, RuntimeKind};
pub use testkit::WAIT;

pub const NODE: &str = "node-1";

pub struct Cluster {
    pub server: Server,
    pub client: Client,
    pub agent: NodeAgent,
    pub data: tempfile::TempDir,
}

/// A node config for tests: back-offs in milliseconds instead of seconds.
pub fn test_config(runtime: RuntimeKind, data: &std::path::Path) -> NodeConfig {
    let mut config = NodeConfig::new(NODE, runtime);
    config.crash_loop_backoff_initial = Duration::from_millis(200);
    config.crash_loop_backoff_max = Duration::from_secs(1);
    config.image_retry_interval = Duration::from_millis(200);
    config.lease_renew_interval = Duration::from_millis(500);
    config.images = ImageManagerConfig {
        pull_backoff_initial: Duration::from_millis(500),
        pull_backoff_max: Duration::from_secs(2),
        ..ImageManagerConfig::default()
    };
    config.data_dir = Some(data.to_path_buf());
    config
}

impl Cluster {
    pub async fn start(runtime: RuntimeKind) -> Cluster {
        Self::with(runtime, |_| {}).await
    }

    pub async fn with(runtime: RuntimeKind, adjust: impl FnOnce(&mut NodeConfig)) -> Cluster {
        let (server, client) = testkit::start_memory_server().await;
        let data = tempfile::tempdir().expect("temporary directory");
        let mut config = test_config(runtime, data.path());
        adjust(&mut config);
        let agent = NodeAgent::start(client.clone(), config)
            .await
            .expect("the node agent starts");
        Cluster {
            server,
            client,
            agent,
            data,
        }
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    pub async fn create(&self, pod: serde_json::Value) -> Pod {
        let pod: Pod = serde_json::from_value(pod).expect("pod JSON");
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .expect("pod created")
    }

    /// Polls the pod until `done` holds; panics with the last status after [`WAIT`].
    pub async fn wait_pod(&self, name: &str, what: &str, done: impl Fn(&Pod) -> bool) -> Pod {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let pod = self.pods().get_opt(name).await.expect("pod read");
            if let Some(pod) = pod {
                if done(&pod) {
                    return pod;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "timed out waiting for {what}; last status: {:#?}",
                    pod.status
                );
            } else {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "timed out waiting for {what}; pod is gone"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the node, then the server; the temporary data directory goes
    /// with `self`.
    pub async fn stop(self) {
        self.agent.shutdown().await;
        self.server.shutdown().await;
    }
}

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

/// The container statuses, init containers first.
pub fn statuses(pod: &Pod) -> Vec<k8s_openapi::api::core::v1::ContainerStatus> {
    let status = pod.status.clone().unwrap_or_default();
    status
        .init_container_statuses
        .unwrap_or_default()
        .into_iter()
        .chain(status.container_statuses.unwrap_or_default())
        .collect()
}
