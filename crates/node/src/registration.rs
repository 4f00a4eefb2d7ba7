//! The Node object: registration at start, periodic status reports, and
//! removal when the agent shuts down.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

use crate::{Error, ExistingNode, NodeConfig};

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

/// The Node the agent registered as.
pub struct Registered {
    /// The Node's UID, the owner of its Lease.
    pub uid: String,
    /// Whether the Node is the agent's to delete when it stops.
    pub own: bool,
}

/// Creates the Node, or takes over an existing one of the same name as
/// [`NodeConfig::existing`] allows, and posts its status.
pub async fn register(
    api: &Api<Node>,
    leases: &Api<Lease>,
    advertised: &Advertised<'_>,
    since: Timestamp,
) -> Result<Registered, Error> {
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
    let (node, created) = match api.create(&PostParams::default(), &node).await {
        Ok(node) => (node, true),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = api
                .get(name)
                .await
                .map_err(Error::api(format!("cannot read existing node {name}")))?;
            let policy = advertised.config.existing;
            if policy == ExistingNode::TakeOverStale {
                refuse_if_live(&existing, leases, name).await?;
            }
            (existing, policy == ExistingNode::Own)
        }
        Err(err) => return Err(Error::api(format!("cannot register node {name}"))(err)),
    };
    report(api, advertised, since).await?;
    Ok(Registered {
        uid: node.metadata.uid.unwrap_or_default(),
        own: created,
    })
}

/// Fails with [`Error::InUse`] when `node` is Ready and its Lease was
/// renewed within its duration: another kubelet is running it.
async fn refuse_if_live(node: &Node, leases: &Api<Lease>, name: &str) -> Result<(), Error> {
    let ready = node
        .status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|condition| condition.type_ == "Ready" && condition.status == "True");
    if !ready {
        return Ok(());
    }
    let Some(lease) = leases
        .get_opt(name)
        .await
        .map_err(Error::api(format!("cannot read the lease of node {name}")))?
    else {
        return Ok(());
    };
    let spec = lease.spec.unwrap_or_default();
    let (Some(renewed), Some(duration)) = (spec.renew_time, spec.lease_duration_seconds) else {
        return Ok(());
    };
    let ago = Timestamp::now().duration_since(renewed.0);
    if ago.as_secs() >= i64::from(duration) {
        return Ok(());
    }
    Err(Error::InUse {
        name: name.to_owned(),
        holder: spec.holder_identity.unwrap_or_default(),
        renewed_secs_ago: u64::try_from(ago.as_secs()).unwrap_or_default(),
    })
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

/// Deletes the Node when the agent that owns it leaves the cluster.
pub async fn deregister(api: &Api<Node>, name: &str) {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(err) => tracing::warn!(%err, node = name, "cannot delete node"),
    }
}
