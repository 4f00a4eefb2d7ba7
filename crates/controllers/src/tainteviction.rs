//! What happens to the pods of a node that is not Ready, as upstream's node
//! lifecycle and taint eviction controllers do it.
//!
//! At once, every pod on the node gets its Ready condition set to False
//! (upstream's `MarkPodsNotReady`): the kubelet that would report it is not
//! answering, so endpoints must stop sending it traffic. Then each pod is
//! evicted once it has been on the not-ready node for as long as its
//! tolerations of the node's NoExecute taint allow: at once when none
//! tolerates the taint, never when a matching toleration has no
//! `tolerationSeconds`, else after the smallest `tolerationSeconds` of the
//! matching ones. A pod with no toleration for `not-ready` or `unreachable`
//! is treated as having the 300 s ones that kube-apiserver's
//! DefaultTolerationSeconds admission adds to every pod, since the embedded
//! API server does not add them. Eviction marks the pod (condition
//! `DisruptionTarget`, reason `DeletionByTaintManager`) and deletes it
//! gracefully, as upstream does; with no kubelet to finish that deletion,
//! the pod stays Terminating until its node comes back or is deleted, when
//! the pod garbage collector takes it.
//!
//! Times are measured from when this controller first sees a pod on a node
//! that is not Ready, as upstream's taint eviction queue measures them.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::time::Instant;

use crate::scheduler::tolerates;
use crate::util::{is_conflict, is_not_found};

/// The `tolerationSeconds` of the tolerations DefaultTolerationSeconds
/// admission gives pods that have none for `not-ready` and `unreachable`.
const DEFAULT_TOLERATION: Duration = Duration::from_secs(300);

/// The pods on nodes that are not Ready, and since when.
#[derive(Default)]
pub(crate) struct Evictions {
    /// By pod UID: when the pod was first seen on a node that is not Ready.
    since: HashMap<String, Instant>,
}

impl Evictions {
    /// Marks the pods of the `not_ready` nodes (node name to the key of its
    /// NoExecute taint) not Ready and evicts those whose tolerations have
    /// run out; forgets pods whose node is Ready again or that are gone.
    pub(crate) async fn sync(
        &mut self,
        client: &Client,
        pods: &Store<Pod>,
        not_ready: &HashMap<String, &'static str>,
        now: Instant,
    ) {
        if not_ready.is_empty() {
            self.since.clear();
            return;
        }
        let mut seen = HashMap::with_capacity(self.since.len());
        for pod in pods.state() {
            let Some(taint_key) = pod
                .spec
                .as_ref()
                .and_then(|spec| spec.node_name.as_ref())
                .and_then(|node| not_ready.get(node))
            else {
                continue;
            };
            let uid = pod.uid().unwrap_or_default();
            let since = *self.since.get(&uid).unwrap_or(&now);
            seen.insert(uid, since);
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let result = match toleration_time(&pod, taint_key) {
                Some(tolerated) if now.duration_since(since) < tolerated => {
                    mark_not_ready(client, &pod).await
                }
                None => mark_not_ready(client, &pod).await,
                Some(_) => evict(client, &pod, taint_key).await,
            };
            match result {
                Err(err) if !is_not_found(&err) && !is_conflict(&err) => {
                    tracing::warn!(pod = %pod.name_any(), error = %err, "node lifecycle: pod update failed");
                }
                _ => {}
            }
        }
        self.since = seen;
    }
}

/// How long `pod` tolerates the NoExecute taint `key`: `None` for ever,
/// zero when nothing tolerates it.
fn toleration_time(pod: &Pod, key: &str) -> Option<Duration> {
    let taint = Taint {
        key: key.to_owned(),
        effect: "NoExecute".to_owned(),
        ..Taint::default()
    };
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.tolerations.as_deref())
        .unwrap_or_default();
    let matching: Vec<&Toleration> = tolerations
        .iter()
        .filter(|toleration| tolerates(toleration, &taint))
        .collect();
    if matching.is_empty() {
        return Some(DEFAULT_TOLERATION);
    }
    matching
        .iter()
        .filter_map(|toleration| toleration.toleration_seconds)
        .min()
        .map(|seconds| Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
}

/// Sets the pod's Ready condition to False, unless it is not True already.
async fn mark_not_ready(client: &Client, pod: &Pod) -> Result<(), kube::Error> {
    let ready = pod
        .status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .and_then(|conditions| conditions.iter().find(|c| c.type_ == "Ready"));
    if ready.is_none_or(|condition| condition.status != "True") {
        return Ok(());
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    let patch = json!({"status": {"conditions": [{
        "type": "Ready",
        "status": "False",
        "lastTransitionTime": Time(jiff::Timestamp::now()),
    }]}});
    api.patch_status(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Strategic(patch),
    )
    .await
    .map(drop)
}

/// Marks the pod as evicted for the NoExecute taint `key` and deletes it
/// gracefully.
async fn evict(client: &Client, pod: &Pod, key: &str) -> Result<(), kube::Error> {
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    let now = Time(jiff::Timestamp::now());
    let patch = json!({"status": {"conditions": [
        {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastTransitionTime": now,
        },
        {"type": "Ready", "status": "False", "lastTransitionTime": now},
    ]}});
    api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
        .await?;
    tracing::info!(pod = %name, taint = key, "node lifecycle: evicting a pod from a node that is not Ready");
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: pod.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    api.delete(&name, &params).await.map(drop)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::PodSpec;

    use super::*;

    const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

    fn pod(tolerations: Vec<Toleration>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                tolerations: Some(tolerations),
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    fn toleration(key: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: (!key.is_empty()).then(|| key.to_owned()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: seconds,
            ..Toleration::default()
        }
    }

    #[test]
    fn the_smallest_matching_toleration_decides_and_none_means_the_admission_default() {
        let time = |tolerations| toleration_time(&pod(tolerations), UNREACHABLE);
        assert_eq!(time(vec![]), Some(DEFAULT_TOLERATION));
        assert_eq!(
            time(vec![toleration("node.kubernetes.io/not-ready", Some(5))]),
            Some(DEFAULT_TOLERATION),
            "a toleration of another taint does not count"
        );
        assert_eq!(time(vec![toleration(UNREACHABLE, None)]), None);
        assert_eq!(
            time(vec![toleration("", None)]),
            None,
            "tolerates every key"
        );
        assert_eq!(
            time(vec![
                toleration(UNREACHABLE, Some(20)),
                toleration(UNREACHABLE, Some(10)),
                toleration(UNREACHABLE, None),
            ]),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            time(vec![toleration(UNREACHABLE, Some(-1))]),
            Some(Duration::ZERO)
        );
    }
}
