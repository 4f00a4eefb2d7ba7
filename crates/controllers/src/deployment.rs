//! The Deployment controller: runs the pods of a Deployment through one
//! ReplicaSet per pod template, named `<deployment>-<pod-template-hash>`,
//! scales it with the Deployment, and moves replicas from old to new
//! ReplicaSets on a template change (RollingUpdate within maxSurge and
//! maxUnavailable, or Recreate).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::watch as signal;

use crate::util::{is_conflict, patch_status};
use crate::workload::{controller_of, drain, owner_reference};

/// The label that tells the ReplicaSets of one Deployment apart.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
const ERROR_REQUEUE: Duration = Duration::from_secs(2);

struct Context {
    client: Client,
    replicasets: Store<ReplicaSet>,
}

/// Runs the controller until `shutdown` turns true.
pub async fn run(client: Client, mut shutdown: signal::Receiver<bool>) {
    let writer = reflector::store::Writer::<ReplicaSet>::default();
    let replicasets = writer.as_reader();
    let rs_events = reflector::reflector(
        writer,
        watcher::watcher(
            Api::<ReplicaSet>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff(),
    )
    .touched_objects();
    let context = Arc::new(Context {
        client: client.clone(),
        replicasets,
    });
    let results = Controller::new(Api::<Deployment>::all(client), watcher::Config::default())
        .owns_stream(rs_events)
        .graceful_shutdown_on(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .run(reconcile, |_, _, _| Action::requeue(ERROR_REQUEUE), context);
    drain(results).await;
}

async fn reconcile(deploy: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action, kube::Error> {
    if deploy.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let _ = ctx.replicasets.wait_until_ready().await;
    let namespace = deploy.namespace().unwrap_or_default();
    let uid = deploy.uid().unwrap_or_default();
    let spec = deploy.spec.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1);
    let hash = template_hash(&spec.template);
    let mut owned: Vec<Arc<ReplicaSet>> = ctx
        .replicasets
        .state()
        .into_iter()
        .filter(|rs| {
            rs.namespace().as_deref() == Some(namespace.as_str())
                && controller_of(&rs.metadata).is_some_and(|o| o.uid == uid)
        })
        .collect();
    owned.sort_by_key(|rs| rs.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let is_new = |rs: &ReplicaSet| rs.labels().get(POD_TEMPLATE_HASH_LABEL) == Some(&hash);
    let old: Vec<Arc<ReplicaSet>> = owned.iter().filter(|rs| !is_new(rs)).cloned().collect();
    let old_replicas: i32 = old.iter().map(|rs| spec_replicas(rs)).sum();
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let (max_surge, max_unavailable) = rolling_limits(&deploy, replicas);
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &namespace);

    let new_rs = match owned.iter().find(|rs| is_new(rs)) {
        Some(rs) => rs.clone(),
        None => {
            let initial = if old_replicas == 0 {
                replicas
            } else if recreate {
                0
            } else {
                (replicas + max_surge - old_replicas).clamp(0, replicas)
            };
            match api
                .create(
                    &PostParams::default(),
                    &new_replicaset(&deploy, &hash, initial),
                )
                .await
            {
                Ok(rs) => Arc::new(rs),
                // Created by an earlier pass the cache does not show yet.
                Err(err) if is_conflict(&err) => {
                    return Ok(Action::requeue(Duration::from_secs(1)));
                }
                Err(err) => return Err(err),
            }
        }
    };

    let new_replicas = spec_replicas(&new_rs);
    if old_replicas == 0 {
        if new_replicas != replicas {
            scale(&api, &new_rs, replicas).await?;
        }
    } else if recreate {
        for rs in old.iter().filter(|rs| spec_replicas(rs) > 0) {
            scale(&api, rs, 0).await?;
        }
        let old_pods: i32 = old.iter().map(|rs| status_replicas(rs)).sum();
        if old_pods == 0 && new_replicas != replicas {
            scale(&api, &new_rs, replicas).await?;
        }
    } else {
        let max_total = replicas + max_surge;
        let total = old_replicas + new_replicas;
        let target = if new_replicas > replicas {
            replicas
        } else {
            (new_replicas + (max_total - total).max(0)).min(replicas)
        };
        if target != new_replicas {
            scale(&api, &new_rs, target).await?;
        }
        // Old replicas may go as long as the available ones stay above
        // replicas - maxUnavailable once the new ReplicaSet's unavailable
        // pods are counted out.
        let min_available = replicas - max_unavailable;
        let new_unavailable = new_replicas - available_replicas(&new_rs);
        let mut budget = old_replicas + new_replicas - min_available - new_unavailable;
        for rs in &old {
            if budget <= 0 {
                break;
            }
            let cut = budget.min(spec_replicas(rs));
            if cut > 0 {
                scale(&api, rs, spec_replicas(rs) - cut).await?;
                budget -= cut;
            }
        }
    }

    let mut all = old;
    all.push(new_rs.clone());
    let status = status_of(&deploy, &all, &new_rs, replicas - max_unavailable);
    if deploy.status.as_ref() != Some(&status) {
        patch_status(&ctx.client, deploy.as_ref(), &status).await?;
    }
    Ok(Action::await_change())
}

/// A stable name-safe hash of the pod template.
pub fn template_hash(template: &PodTemplateSpec) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = serde_json::to_vec(template).unwrap_or_default();
    let mut hash: u32 = 0x811c_9dc5;
    for byte in bytes {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.to_string()
        .bytes()
        .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

fn new_replicaset(deploy: &Deployment, hash: &str, replicas: i32) -> ReplicaSet {
    let spec = deploy.spec.clone().unwrap_or_default();
    let mut template = spec.template;
    let template_meta = template.metadata.get_or_insert_with(ObjectMeta::default);
    template_meta
        .labels
        .get_or_insert_with(Default::default)
        .insert(POD_TEMPLATE_HASH_LABEL.to_string(), hash.to_string());
    let mut selector: LabelSelector = spec.selector;
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(POD_TEMPLATE_HASH_LABEL.to_string(), hash.to_string());
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{}-{hash}", deploy.name_any())),
            namespace: deploy.namespace(),
            labels: template_meta.labels.clone(),
            owner_references: Some(vec![owner_reference(deploy)]),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    }
}

async fn scale(api: &Api<ReplicaSet>, rs: &ReplicaSet, replicas: i32) -> Result<(), kube::Error> {
    api.patch(
        &rs.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": replicas}})),
    )
    .await
    .map(drop)
}

/// maxSurge and maxUnavailable as pod counts (surge rounds up,
/// unavailable down, and both zero means one may be unavailable).
fn rolling_limits(deploy: &Deployment, replicas: i32) -> (i32, i32) {
    let rolling = deploy
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let quarter = IntOrString::String("25%".to_string());
    let surge = resolve(
        rolling
            .and_then(|r| r.max_surge.as_ref())
            .unwrap_or(&quarter),
        replicas,
        true,
    );
    let unavailable = resolve(
        rolling
            .and_then(|r| r.max_unavailable.as_ref())
            .unwrap_or(&quarter),
        replicas,
        false,
    );
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable.min(replicas))
    }
}

fn resolve(value: &IntOrString, total: i32, round_up: bool) -> i32 {
    match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let percent: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let scaled = percent * i64::from(total);
            let n = if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            };
            i32::try_from(n).unwrap_or(0)
        }
    }
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

fn available_replicas(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

fn status_of(
    deploy: &Deployment,
    all: &[Arc<ReplicaSet>],
    new_rs: &ReplicaSet,
    min_available: i32,
) -> DeploymentStatus {
    let replicas: i32 = all.iter().map(|rs| status_replicas(rs)).sum();
    let ready: i32 = all
        .iter()
        .map(|rs| {
            rs.status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0)
        })
        .sum();
    let available: i32 = all.iter().map(|rs| available_replicas(rs)).sum();
    let wanted = deploy.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status_replicas(new_rs);
    let previous = deploy
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let available_condition = if available >= min_available {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".to_string(),
        )
    } else {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".to_string(),
        )
    };
    let complete = updated == wanted && available_replicas(new_rs) == wanted && replicas == wanted;
    let progressing = if complete {
        (
            "True",
            "NewReplicaSetAvailable",
            format!(
                "ReplicaSet \"{}\" has successfully progressed.",
                new_rs.name_any()
            ),
        )
    } else {
        (
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{}\" is progressing.", new_rs.name_any()),
        )
    };
    DeploymentStatus {
        replicas: Some(replicas),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        unavailable_replicas: Some((wanted - available).max(0)),
        observed_generation: deploy.metadata.generation,
        collision_count: deploy.status.as_ref().and_then(|s| s.collision_count),
        terminating_replicas: None,
        conditions: Some(vec![
            condition(previous, "Available", available_condition),
            condition(previous, "Progressing", progressing),
        ]),
    }
}

/// A condition that keeps its timestamps while its status, reason and
/// message stay the same.
fn condition(
    previous: &[DeploymentCondition],
    type_: &str,
    (status, reason, message): (&str, &str, String),
) -> DeploymentCondition {
    if let Some(same) = previous.iter().find(|c| {
        c.type_ == type_
            && c.status == status
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message.as_str())
    }) {
        return same.clone();
    }
    let now = Some(Time(jiff::Timestamp::now()));
    DeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_transition_time: now.clone(),
        last_update_time: now,
    }
}
