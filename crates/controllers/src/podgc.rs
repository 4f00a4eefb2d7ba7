//! The pod garbage collector, as upstream's PodGC controller collects
//! orphaned pods: a pod bound to a node that no longer exists has no
//! kubelet left to run it, or to finish its graceful deletion, so it would
//! stay Running (or Terminating) forever. Such a pod is marked as upstream
//! marks it (condition `DisruptionTarget`, reason `DeletionByPodGC`, phase
//! Failed unless it already finished) and deleted with grace period 0.
//!
//! The node cache only nominates candidates: a node is taken to be gone
//! once a live GET answers 404, so a pod bound to a node this controller
//! has not seen yet is never collected. Passes run when a node is deleted,
//! once the node cache is first complete, and every [`GC_CHECK_PERIOD`]
//! for pods bound to nodes that never existed.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::watch as signal;

use crate::util::{is_conflict, is_not_found, pod_is_terminal};
use crate::workload::PodIndex;

/// How often every pod's node is checked (upstream's `gcCheckPeriod`).
const GC_CHECK_PERIOD: Duration = Duration::from_secs(20);

/// Runs the collector until `shutdown` turns true.
pub async fn run(client: Client, pods: PodIndex, mut shutdown: signal::Receiver<bool>) {
    tokio::select! {
        _ = shutdown.changed() => return,
        () = pods.wait_until_ready() => {}
    }
    let nodes_api: Api<Node> = Api::all(client.clone());
    let (known, writer) = reflector::store();
    let mut nodes = reflector::reflector(
        writer,
        watcher::watcher(nodes_api.clone(), watcher::Config::default()),
    )
    .default_backoff()
    .boxed();
    let mut tick = tokio::time::interval(GC_CHECK_PERIOD);
    let mut synced = false;
    loop {
        let pass = tokio::select! {
            _ = shutdown.changed() => break,
            Some(event) = nodes.next() => match event {
                Ok(Event::InitDone) => {
                    synced = true;
                    true
                }
                Ok(Event::Delete(_)) => synced,
                Ok(_) => false,
                Err(err) => {
                    tracing::warn!(error = %err, "pod GC: node watch failed");
                    false
                }
            },
            _ = tick.tick() => synced,
        };
        if pass {
            collect_orphans(&client, &nodes_api, &known, &pods).await;
        }
    }
}

/// Force-deletes every pod bound to a node that the API server says does
/// not exist.
async fn collect_orphans(client: &Client, nodes: &Api<Node>, known: &Store<Node>, pods: &PodIndex) {
    // Whether each node missing from the cache is really gone.
    let mut gone: HashMap<String, bool> = HashMap::new();
    for pod in pods.store.state() {
        let Some(node) = pod
            .spec
            .as_ref()
            .and_then(|spec| spec.node_name.as_deref())
            .filter(|node| !node.is_empty())
        else {
            continue;
        };
        if known.get(&ObjectRef::new(node)).is_some() {
            continue;
        }
        let is_gone = match gone.get(node) {
            Some(is_gone) => *is_gone,
            None => {
                let is_gone = match nodes.get_opt(node).await {
                    Ok(found) => found.is_none(),
                    Err(err) => {
                        tracing::warn!(node, error = %err, "pod GC: cannot look the node up");
                        false
                    }
                };
                gone.insert(node.to_owned(), is_gone);
                is_gone
            }
        };
        if is_gone && let Err(err) = force_delete(client, &pod).await {
            tracing::warn!(pod = %pod.name_any(), error = %err, "pod GC: cannot delete the pod");
        }
    }
}

/// Marks `pod` failed by the pod GC and deletes it at once; a pod that is
/// gone already, or was replaced by another of its name, is left alone.
async fn force_delete(client: &Client, pod: &Pod) -> Result<(), kube::Error> {
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    let mut status = json!({
        "conditions": [{
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists",
            "lastTransitionTime": Time(jiff::Timestamp::now()),
        }],
    });
    if !pod_is_terminal(pod) {
        status["phase"] = json!("Failed");
    }
    let ignore_gone = |result: Result<(), kube::Error>| match result {
        Err(err) if is_not_found(&err) || is_conflict(&err) => Ok(()),
        other => other,
    };
    ignore_gone(
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Strategic(json!({ "status": status })),
        )
        .await
        .map(drop),
    )?;
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    tracing::info!(pod = %name, "pod GC: deleting a pod whose node no longer exists");
    ignore_gone(api.delete(&name, &params).await.map(drop))
}
