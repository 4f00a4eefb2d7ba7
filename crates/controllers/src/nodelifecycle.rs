//! The node lifecycle controller: a node whose kubelet stops renewing its
//! Lease (in `kube-node-lease`) and posting its status for longer than the
//! grace period gets its conditions set to Unknown (reason
//! NodeStatusUnknown), and every node's taints follow its Ready condition
//! (`node.kubernetes.io/unreachable` for Unknown,
//! `node.kubernetes.io/not-ready` for False), with effect NoSchedule, so
//! the scheduler avoids it, and NoExecute, whose tolerations decide when
//! its pods are evicted (see [`crate::tainteviction`]).
//!
//! Heartbeats are timed by when this controller observes them change, not
//! by the timestamps they carry, so clock skew between nodes and the
//! controller does not matter.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::Store;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::watch as signal;
use tokio::time::Instant;

use crate::tainteviction::Evictions;
use crate::util::is_not_found;

const LEASE_NAMESPACE: &str = "kube-node-lease";
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
/// The effects of the taints a node that is not Ready gets, in sorted
/// order: NoExecute for eviction, NoSchedule for the scheduler.
const TAINT_EFFECTS: [&str; 2] = ["NoExecute", "NoSchedule"];
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

/// Runs the controller until `shutdown` turns true; `pods` is every pod in
/// the cluster, for the pods of nodes that are not Ready.
pub async fn run(
    client: Client,
    pods: Store<Pod>,
    grace_period: Duration,
    mut shutdown: signal::Receiver<bool>,
) {
    let nodes_api: Api<Node> = Api::all(client.clone());
    let mut evictions = Evictions::default();
    let mut nodes = watcher::watcher(nodes_api.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut leases = watcher::watcher(
        Api::<Lease>::namespaced(client.clone(), LEASE_NAMESPACE),
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
                let mut not_ready = HashMap::new();
                for (name, h) in &health {
                    match monitor(&nodes_api, h, now, grace_period).await {
                        Ok(Some(taint)) => {
                            not_ready.insert(name.clone(), taint);
                        }
                        Ok(None) => {}
                        Err(err) if is_not_found(&err) => {}
                        Err(err) => {
                            tracing::warn!(node = %name, error = %err, "node lifecycle: update failed");
                        }
                    }
                }
                evictions.sync(&client, &pods, &not_ready, now).await;
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
/// Ready condition. Returns the key of the taint a node that is not Ready
/// carries.
async fn monitor(
    api: &Api<Node>,
    h: &Health,
    now: Instant,
    grace_period: Duration,
) -> Result<Option<&'static str>, kube::Error> {
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
        TAINT_EFFECTS.contains(&t.effect.as_str())
            && (t.key == UNREACHABLE_TAINT || t.key == NOT_READY_TAINT)
    };
    let mut current: Vec<(&str, &str)> = taints
        .iter()
        .filter(|t| is_ours(t))
        .map(|t| (t.key.as_str(), t.effect.as_str()))
        .collect();
    current.sort_unstable();
    let expected: Vec<(&str, &str)> = wanted
        .into_iter()
        .flat_map(|key| TAINT_EFFECTS.map(|effect| (key, effect)))
        .collect();
    if current == expected {
        return Ok(wanted);
    }
    let mut updated: Vec<Taint> = taints.iter().filter(|t| !is_ours(t)).cloned().collect();
    let added = Time(jiff::Timestamp::now());
    updated.extend(expected.iter().map(|(key, effect)| Taint {
        key: (*key).to_string(),
        effect: (*effect).to_string(),
        time_added: Some(added.clone()),
        value: None,
    }));
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"taints": updated}})),
    )
    .await?;
    Ok(wanted)
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
