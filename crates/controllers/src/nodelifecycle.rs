//! The node lifecycle controller: a node whose kubelet stops renewing its
//! Lease (in `kube-node-lease`) and posting its status for longer than the
//! grace period gets its conditions set to Unknown (reason
//! NodeStatusUnknown), and every node's NoSchedule taints follow its Ready
//! condition (`node.kubernetes.io/unreachable` for Unknown,
//! `node.kubernetes.io/not-ready` for False), so the scheduler avoids it.
//!
//! Heartbeats are timed by when this controller observes them change, not
//! by the timestamps they carry, so clock skew between nodes and the
//! controller does not matter.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::watch as signal;
use tokio::time::Instant;

use crate::util::is_not_found;

const LEASE_NAMESPACE: &str = "kube-node-lease";
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
/// The conditions a kubelet reports that become Unknown with it.
const KUBELET_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];
/// The longest time between two checks of all nodes.
const MAX_MONITOR_PERIOD: Duration = Duration::from_secs(5);

struct Health {
    node: Node,
    /// When a heartbeat (lease renewal or status post) was last observed.
    last_seen: Instant,
    lease_renewed: Option<MicroTime>,
}

/// Runs the controller until `shutdown` turns true.
pub async fn run(client: Client, grace_period: Duration, mut shutdown: signal::Receiver<bool>) {
    let nodes_api: Api<Node> = Api::all(client.clone());
    let mut nodes = watcher::watcher(nodes_api.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut leases = watcher::watcher(
        Api::<Lease>::namespaced(client, LEASE_NAMESPACE),
        watcher::Config::default(),
    )
    .default_backoff()
    .boxed();
    let mut health: HashMap<String, Health> = HashMap::new();
    let mut renewals: HashMap<String, MicroTime> = HashMap::new();
    let mut tick = tokio::time::interval(
        (grace_period / 4).clamp(Duration::from_millis(100), MAX_MONITOR_PERIOD),
    );
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(event) = nodes.next() => match event {
                Ok(Event::Apply(node) | Event::InitApply(node)) => {
                    observe_node(&mut health, &renewals, node);
                }
                Ok(Event::Delete(node)) => {
                    health.remove(&node.name_any());
                }
                Ok(Event::Init | Event::InitDone) => {}
                Err(err) => tracing::warn!(error = %err, "node lifecycle: node watch failed"),
            },
            Some(event) = leases.next() => match event {
                Ok(Event::Apply(lease) | Event::InitApply(lease)) => {
                    let name = lease.name_any();
                    if let Some(renewed) = lease.spec.and_then(|s| s.renew_time) {
                        if let Some(h) = health.get_mut(&name)
                            && h.lease_renewed.as_ref() != Some(&renewed)
                        {
                            h.lease_renewed = Some(renewed.clone());
                            h.last_seen = Instant::now();
                        }
                        renewals.insert(name, renewed);
                    }
                }
                Ok(Event::Delete(lease)) => {
                    renewals.remove(&lease.name_any());
                }
                Ok(Event::Init | Event::InitDone) => {}
                Err(err) => tracing::warn!(error = %err, "node lifecycle: lease watch failed"),
            },
            _ = tick.tick() => {
                let now = Instant::now();
                for (name, h) in &health {
                    if let Err(err) = monitor(&nodes_api, h, now, grace_period).await
                        && !is_not_found(&err)
                    {
                        tracing::warn!(node = %name, error = %err, "node lifecycle: update failed");
                    }
                }
            }
        }
    }
}

fn observe_node(
    health: &mut HashMap<String, Health>,
    renewals: &HashMap<String, MicroTime>,
    node: Node,
) {
    let name = node.name_any();
    let heartbeat = |n: &Node| condition(n, "Ready").and_then(|c| c.last_heartbeat_time.clone());
    match health.get_mut(&name) {
        Some(h) => {
            if heartbeat(&node) != heartbeat(&h.node) {
                h.last_seen = Instant::now();
            }
            h.node = node;
        }
        None => {
            // The grace period of a node starts when it is first seen.
            health.insert(
                name.clone(),
                Health {
                    node,
                    last_seen: Instant::now(),
                    lease_renewed: renewals.get(&name).cloned(),
                },
            );
        }
    }
}

/// Marks an overdue node Unknown and keeps its taints in line with its
/// Ready condition.
async fn monitor(
    api: &Api<Node>,
    h: &Health,
    now: Instant,
    grace_period: Duration,
) -> Result<(), kube::Error> {
    let name = h.node.name_any();
    let mut ready = condition(&h.node, "Ready").map(|c| c.status.clone());
    if now.duration_since(h.last_seen) > grace_period && ready.as_deref() != Some("Unknown") {
        mark_unknown(api, &h.node).await?;
        ready = Some("Unknown".to_string());
        tracing::info!(node = %name, "node lifecycle: node stopped posting status");
    }
    let wanted = match ready.as_deref() {
        Some("Unknown") => Some(UNREACHABLE_TAINT),
        Some("False") => Some(NOT_READY_TAINT),
        _ => None,
    };
    let taints = h
        .node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let is_ours = |t: &Taint| {
        t.effect == "NoSchedule" && (t.key == UNREACHABLE_TAINT || t.key == NOT_READY_TAINT)
    };
    let current: Vec<&str> = taints
        .iter()
        .filter(|t| is_ours(t))
        .map(|t| t.key.as_str())
        .collect();
    if current == wanted.into_iter().collect::<Vec<_>>() {
        return Ok(());
    }
    let mut updated: Vec<Taint> = taints.iter().filter(|t| !is_ours(t)).cloned().collect();
    if let Some(key) = wanted {
        updated.push(Taint {
            key: key.to_string(),
            effect: "NoSchedule".to_string(),
            time_added: Some(Time(jiff::Timestamp::now())),
            value: None,
        });
    }
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"taints": updated}})),
    )
    .await
    .map(drop)
}

async fn mark_unknown(api: &Api<Node>, node: &Node) -> Result<(), kube::Error> {
    let now = Time(jiff::Timestamp::now());
    let mut conditions = Vec::new();
    for type_ in KUBELET_CONDITIONS {
        match condition(node, type_) {
            Some(c) => conditions.push(json!({
                "type": type_,
                "status": "Unknown",
                "reason": "NodeStatusUnknown",
                "message": "Kubelet stopped posting node status.",
                "lastHeartbeatTime": c.last_heartbeat_time,
                "lastTransitionTime": now,
            })),
            None => conditions.push(json!({
                "type": type_,
                "status": "Unknown",
                "reason": "NodeStatusNeverUpdated",
                "message": "Kubelet never posted node status.",
                "lastHeartbeatTime": node.creation_timestamp(),
                "lastTransitionTime": now,
            })),
        }
    }
    api.patch_status(
        &node.name_any(),
        &PatchParams::default(),
        &Patch::Strategic(json!({"status": {"conditions": conditions}})),
    )
    .await
    .map(drop)
}

fn condition<'a>(
    node: &'a Node,
    type_: &str,
) -> Option<&'a k8s_openapi::api::core::v1::NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}
