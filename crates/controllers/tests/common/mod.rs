//! Test harness: an embedded API server on loopback, a kube-rs client for
//! it, and builders for the nodes and pods the tests schedule.

// Each test binary uses its own subset of the harness.
#![allow(dead_code)]

use std::collections::BTreeMap;

use apiserver::Server;
use controllers::{ControllerOptions, Controllers};
use k8s_openapi::api::core::v1::{
    Container, Node, NodeCondition, NodeSpec, NodeStatus, Pod, PodSpec, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, PostParams};
pub use testkit::wait_until;

/// An embedded API server with the controllers running against it.
pub struct Cluster {
    pub server: Server,
    pub client: Client,
    pub controllers: Option<Controllers>,
}

impl Cluster {
    /// A server and every controller with default options.
    pub async fn start() -> Cluster {
        Self::with(ControllerOptions::default()).await
    }

    pub async fn with(options: ControllerOptions) -> Cluster {
        let mut cluster = Self::server_only().await;
        cluster.controllers = Some(
            Controllers::start(cluster.client.clone(), options)
                .await
                .expect("the controllers start"),
        );
        cluster
    }

    /// A server and the scheduler alone.
    pub async fn with_scheduler() -> Cluster {
        let mut cluster = Self::server_only().await;
        cluster.controllers = Some(
            Controllers::start_scheduler(cluster.client.clone(), ControllerOptions::default())
                .await
                .expect("the scheduler starts"),
        );
        cluster
    }

    pub async fn server_only() -> Cluster {
        let (server, client) = testkit::start_memory_server().await;
        Cluster {
            server,
            client,
            controllers: None,
        }
    }

    /// Stops the controllers, then the server; every test ends with it.
    pub async fn stop(self) {
        if let Some(controllers) = self.controllers {
            controllers.shutdown().await;
        }
        self.server.shutdown().await;
    }

    pub fn pods(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Creates `node` (see [`node`] for a Ready one).
    pub async fn add_node(&self, node: Node) -> Node {
        Api::<Node>::all(self.client.clone())
            .create(&PostParams::default(), &node)
            .await
            .expect("node created")
    }
}

/// A Ready node with the given allocatable CPU, memory and pod count.
pub fn node(name: &str, cpu: &str, memory: &str, pods: u32) -> Node {
    let resources = BTreeMap::from([
        ("cpu".to_string(), Quantity(cpu.to_string())),
        ("memory".to_string(), Quantity(memory.to_string())),
        ("pods".to_string(), Quantity(pods.to_string())),
    ]);
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([(
                "kubernetes.io/hostname".to_string(),
                name.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            capacity: Some(resources.clone()),
            allocatable: Some(resources),
            conditions: Some(vec![NodeCondition {
                type_: "Ready".to_string(),
                status: "True".to_string(),
                reason: Some("KubeletReady".to_string()),
                ..NodeCondition::default()
            }]),
            ..NodeStatus::default()
        }),
    }
}

/// A pod with one container requesting `cpu` and `memory` (none when
/// empty).
pub fn pod(name: &str, cpu: &str, memory: &str) -> Pod {
    let mut requests = BTreeMap::new();
    if !cpu.is_empty() {
        requests.insert("cpu".to_string(), Quantity(cpu.to_string()));
    }
    if !memory.is_empty() {
        requests.insert("memory".to_string(), Quantity(memory.to_string()));
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".to_string(),
                image: Some("busybox".to_string()),
                resources: Some(ResourceRequirements {
                    requests: Some(requests),
                    ..ResourceRequirements::default()
                }),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// The node a pod is bound to, once it is.
pub async fn bound_node(pods: &Api<Pod>, name: &str) -> String {
    wait_until(&format!("pod {name} to be bound"), || async {
        pods.get(name)
            .await
            .ok()
            .and_then(|p| p.spec.and_then(|s| s.node_name))
    })
    .await
}

/// The message of a pod's PodScheduled=False/Unschedulable condition,
/// once it has one.
pub async fn unschedulable_message(pods: &Api<Pod>, name: &str) -> String {
    wait_until(
        &format!("pod {name} to be marked unschedulable"),
        || async {
            let pod = pods.get(name).await.ok()?;
            let condition = pod
                .status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "PodScheduled")?;
            (condition.status == "False" && condition.reason.as_deref() == Some("Unschedulable"))
                .then(|| condition.message.unwrap_or_default())
        },
    )
    .await
}

/// Waits until a pod's PodScheduled=False condition carries `expected`.
pub async fn message_becomes(pods: &Api<Pod>, name: &str, expected: &str) {
    wait_until(&format!("pod {name} to say {expected:?}"), || async {
        let pod = pods.get(name).await.ok()?;
        pod.status?
            .conditions?
            .into_iter()
            .any(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.message.as_deref() == Some(expected)
            })
            .then_some(())
    })
    .await
}
