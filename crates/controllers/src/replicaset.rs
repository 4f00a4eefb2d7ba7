//! The ReplicaSet controller: keeps `spec.replicas` active pods made from
//! the template (creating the missing, deleting the surplus, replacing the
//! lost) and reports them in the status.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use crate::util::patch_status;
use crate::workload::{
    OwnerContext, cache_state, owner_reference, pod_from_template, pod_is_active, ready_since,
};

/// Brings the ReplicaSet's active pods to `spec.replicas` and reports them
/// in its status; driven by
/// [`run_owner_controller`](crate::workload::run_owner_controller).
pub async fn reconcile(rs: Arc<ReplicaSet>, ctx: Arc<OwnerContext>) -> Result<Action, kube::Error> {
    ctx.pods.wait_until_ready().await;
    let namespace = rs.namespace().unwrap_or_default();
    let uid = rs.uid().unwrap_or_default();
    let spec = rs.spec.clone().unwrap_or_default();
    let in_flight = ctx
        .expectations
        .in_flight(&uid, |name| cache_state(&ctx.pods.store, &namespace, name));
    let mut active: Vec<Arc<Pod>> = ctx
        .pods
        .owned_by(&uid)
        .into_iter()
        .filter(|p| pod_is_active(p) && !in_flight.deleting.contains(&p.name_any()))
        .collect();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let wanted = usize::try_from(spec.replicas.unwrap_or(1)).unwrap_or(0);
    let have = active.len() + in_flight.creating.len();
    let mut result = Ok(());
    if rs.metadata.deletion_timestamp.is_none() && have < wanted {
        let template = spec.template.clone().unwrap_or_default();
        let owner = owner_reference(rs.as_ref());
        let generate_name = format!("{}-", rs.name_any());
        result = ctx
            .create_pods(&pods, &uid, wanted - have, |_| {
                pod_from_template(&template, owner.clone(), generate_name.clone())
            })
            .await;
    } else if have > wanted {
        active.sort_by_key(|p| deletion_rank(p));
        let surplus = (have - wanted).min(active.len());
        result = ctx.delete_pods(&pods, &uid, &active[..surplus]).await;
    }
    let (status, recheck) = status_of(&rs, &active);
    if rs.status.as_ref() != Some(&status)
        && !patch_status(&ctx.client, rs.as_ref(), &status).await?
    {
        return Ok(Action::await_change());
    }
    result?;
    Ok(recheck.map_or_else(Action::await_change, Action::requeue))
}

/// The order in which surplus pods go: unassigned before assigned, pending
/// before running, not ready before ready, newer before older.
fn deletion_rank(pod: &Pod) -> (bool, u8, bool, Reverse<Option<jiff::Timestamp>>) {
    let assigned = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_ref())
        .is_some_and(|n| !n.is_empty());
    let phase = match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") | None => 0,
        Some("Running") => 2,
        _ => 1,
    };
    let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
    (
        assigned,
        phase,
        ready_since(pod).is_some(),
        Reverse(created),
    )
}

/// The status the ReplicaSet should show, and when to look again for pods
/// that become available once `minReadySeconds` have passed.
fn status_of(rs: &ReplicaSet, active: &[Arc<Pod>]) -> (ReplicaSetStatus, Option<Duration>) {
    let spec = rs.spec.clone().unwrap_or_default();
    let min_ready = jiff::SignedDuration::from_secs(i64::from(spec.min_ready_seconds.unwrap_or(0)));
    let template_labels: BTreeMap<String, String> = spec
        .template
        .and_then(|t| t.metadata)
        .and_then(|m| m.labels)
        .unwrap_or_default();
    let now = jiff::Timestamp::now();
    let mut ready = 0;
    let mut available = 0;
    let mut recheck: Option<Duration> = None;
    for pod in active {
        let Some(since) = ready_since(pod) else {
            continue;
        };
        ready += 1;
        let available_at = since.checked_add(min_ready).unwrap_or(since);
        if available_at <= now {
            available += 1;
        } else {
            let wait = Duration::try_from(available_at.duration_since(now)).unwrap_or_default();
            recheck = Some(recheck.map_or(wait, |r| r.min(wait)));
        }
    }
    let fully_labeled = active
        .iter()
        .filter(|p| {
            let labels = p.labels();
            template_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
        })
        .count();
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let status = ReplicaSetStatus {
        replicas: count(active.len()),
        fully_labeled_replicas: Some(count(fully_labeled)),
        ready_replicas: Some(count(ready)),
        available_replicas: Some(count(available)),
        observed_generation: rs.metadata.generation,
        conditions: rs.status.as_ref().and_then(|s| s.conditions.clone()),
        terminating_replicas: rs.status.as_ref().and_then(|s| s.terminating_replicas),
    };
    (status, recheck)
}
