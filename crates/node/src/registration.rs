//! The Node object: registration at start, periodic status reports, and
//! removal when the agent shuts down.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

use crate::{Error, NodeConfig};

/// The kubelet version nodes report, matching the API server's minor.
pub const KUBELET_VERSION: &str = "v1.33.0-kstress";

/// What a node advertises about itself.
pub struct Advertised<'a> {
    pub config: &'a NodeConfig,
    pub runtime_version: String,
    /// Port of the node's log endpoint (the kubelet port).
    pub kubelet_port: i32,
    /// Set once at start: identifies this boot of the node.
    pub boot_id: String,
}

impl Advertised<'_> {
    fn status(&self, conditions_since: Timestamp) -> NodeStatus {
        let config = self.config;
        let resources: BTreeMap<String, Quantity> = [
            ("cpu", config.cpu.clone()),
            ("memory", config.memory.clone()),
            ("pods", config.max_pods.to_string()),
            ("ephemeral-storage", "100Gi".to_owned()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), Quantity(value)))
        .collect();
        NodeStatus {
            capacity: Some(resources.clone()),
            allocatable: Some(resources),
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: config.address.to_string(),
                },
                NodeAddress {
                    type_: "Hostname".into(),
                    address: config.name.clone(),
                },
            ]),
            daemon_endpoints: Some(NodeDaemonEndpoints {
                kubelet_endpoint: Some(DaemonEndpoint {
                    port: self.kubelet_port,
                }),
            }),
            node_info: Some(NodeSystemInfo {
                architecture: go_arch().into(),
                boot_id: self.boot_id.clone(),
                container_runtime_version: self.runtime_version.clone(),
                kernel_version: String::new(),
                kube_proxy_version: String::new(),
                kubelet_version: KUBELET_VERSION.into(),
                machine_id: config.name.clone(),
                operating_system: std::env::consts::OS.into(),
                os_image: "kstress simulated node".into(),
                system_uuid: config.name.clone(),
                ..NodeSystemInfo::default()
            }),
            conditions: Some(conditions(conditions_since)),
            ..NodeStatus::default()
        }
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The conditions a healthy kubelet reports, heartbeat now.
fn conditions(since: Timestamp) -> Vec<NodeCondition> {
    let now = Time(Timestamp::now());
    let since = Time(since);
    [
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ]
    .into_iter()
    .map(|(type_, status, reason, message)| NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(since.clone()),
    })
    .collect()
}

/// Creates the Node, or takes over an existing one of the same name, and
/// posts its status. Returns the Node's UID (the Lease's owner).
pub async fn register(
    api: &Api<Node>,
    advertised: &Advertised<'_>,
    since: Timestamp,
) -> Result<String, Error> {
    let name = &advertised.config.name;
    let labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", name.as_str()),
        ("kubernetes.io/os", std::env::consts::OS),
        ("kubernetes.io/arch", go_arch()),
        ("kstress.io/runtime", advertised.config.runtime.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let node = Node {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        ..Node::default()
    };
    let created = match api.create(&PostParams::default(), &node).await {
        Ok(node) => node,
        Err(kube::Error::Api(status)) if status.code == 409 => api
            .get(name)
            .await
            .map_err(Error::api(format!("cannot read existing node {name}")))?,
        Err(err) => return Err(Error::api(format!("cannot register node {name}"))(err)),
    };
    report(api, advertised, since).await?;
    Ok(created.metadata.uid.unwrap_or_default())
}

/// Posts the node's full status with a fresh heartbeat.
pub async fn report(
    api: &Api<Node>,
    advertised: &Advertised<'_>,
    since: Timestamp,
) -> Result<(), Error> {
    let name = &advertised.config.name;
    let patch = serde_json::json!({ "status": advertised.status(since) });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(drop)
        .map_err(Error::api(format!(
            "cannot update the status of node {name}"
        )))
}

/// Deletes the Node when the agent leaves the cluster.
pub async fn deregister(api: &Api<Node>, name: &str) {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(err) => tracing::warn!(%err, node = name, "cannot delete node"),
    }
}
