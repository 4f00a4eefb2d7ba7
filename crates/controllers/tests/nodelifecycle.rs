//! Node lifecycle: nodes whose lease is not renewed within the grace period
//! go Ready=Unknown and get the unreachable taints; renewed nodes stay
//! Ready; the pods of a node that is not Ready go not Ready at once and are
//! evicted as their tolerations say.

mod common;

use std::time::Duration;

use common::{Cluster, node, pod, wait_until};
use controllers::ControllerOptions;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, Pod, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

const GRACE: Duration = Duration::from_secs(2);

fn ready_status(node: &Node) -> Option<(String, Option<String>)> {
    let c = node
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some((c.status.clone(), c.reason.clone()))
}

fn has_unreachable_taint(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| {
            t.iter()
                .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoSchedule")
        })
}

#[tokio::test]
async fn nodes_without_lease_renewals_go_unknown_and_tainted() {
    let cluster = Cluster::with(ControllerOptions {
        node_monitor_grace_period: GRACE,
        ..ControllerOptions::default()
    })
    .await;
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    cluster.add_node(node("alive", "4", "8Gi", 110)).await;
    cluster.add_node(node("silent", "4", "8Gi", 110)).await;
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "kube-node-lease");
    create_lease(&leases, "alive").await;
    let renewer = {
        let leases = leases.clone();
        tokio::spawn(async move {
            loop {
                // The silent node has no lease until it comes back.
                for name in ["alive", "silent"] {
                    let now = MicroTime(jiff::Timestamp::now());
                    let _ = leases
                        .patch(
                            name,
                            &PatchParams::default(),
                            &Patch::Merge(json!({"spec": {"renewTime": now}})),
                        )
                        .await;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    let silent = wait_until("the silent node to go Unknown and tainted", || async {
        let n = nodes.get("silent").await.ok()?;
        (ready_status(&n)? == ("Unknown".to_string(), Some("NodeStatusUnknown".to_string()))
            && has_unreachable_taint(&n))
        .then_some(n)
    })
    .await;
    assert!(ready_status(&silent).is_some());
    // Well past the grace period, the renewed node is still Ready.
    tokio::time::sleep(GRACE).await;
    let alive = nodes.get("alive").await.unwrap();
    assert_eq!(ready_status(&alive).unwrap().0, "True");
    assert!(!has_unreachable_taint(&alive));

    // The node comes back: its taint goes.
    create_lease(&leases, "silent").await;
    nodes
        .patch_status(
            "silent",
            &PatchParams::default(),
            &Patch::Strategic(json!({"status": {"conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "lastHeartbeatTime": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            }]}})),
        )
        .await
        .unwrap();
    wait_until("the unreachable taint to go", || async {
        let n = nodes.get("silent").await.ok()?;
        (!has_unreachable_taint(&n)).then_some(())
    })
    .await;

    // Renewals stop: both nodes go.
    renewer.abort();
    let _ = renewer.await;
    for name in ["alive", "silent"] {
        wait_until(&format!("{name} to go Unknown"), || async {
            let n = nodes.get(name).await.ok()?;
            (ready_status(&n)?.0 == "Unknown" && has_unreachable_taint(&n)).then_some(())
        })
        .await;
    }
    cluster.stop().await;
}

async fn create_lease(leases: &Api<Lease>, name: &str) {
    leases
        .create(
            &PostParams::default(),
            &Lease {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(name.into()),
                    lease_duration_seconds: Some(40),
                    renew_time: Some(MicroTime(jiff::Timestamp::now())),
                    ..LeaseSpec::default()
                }),
            },
        )
        .await
        .expect("lease created");
}

/// Creates `name` on `node`, Running and Ready as a kubelet reports it,
/// with `tolerations`.
async fn ready_pod(pods: &Api<Pod>, name: &str, node: &str, tolerations: Vec<Toleration>) {
    let mut pod = pod(name, "", "");
    let spec = pod.spec.as_mut().expect("spec");
    spec.node_name = Some(node.to_owned());
    spec.tolerations = Some(tolerations);
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("pod created");
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
        }})),
    )
    .await
    .expect("status posted");
}

fn unreachable_toleration(seconds: Option<i64>) -> Toleration {
    Toleration {
        key: Some("node.kubernetes.io/unreachable".into()),
        operator: Some("Exists".into()),
        effect: Some("NoExecute".into()),
        toleration_seconds: seconds,
        ..Toleration::default()
    }
}

fn condition(pod: &Pod, type_: &str) -> Option<(String, Option<String>)> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone()))
}

#[tokio::test]
async fn pods_of_an_unreachable_node_go_not_ready_and_are_evicted_as_tolerated() {
    let cluster = Cluster::with(ControllerOptions {
        node_monitor_grace_period: GRACE,
        ..ControllerOptions::default()
    })
    .await;
    let pods = cluster.pods("default");
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    // No lease and no status posts: the node goes Unknown after GRACE.
    cluster.add_node(node("lost", "4", "8Gi", 110)).await;
    ready_pod(&pods, "defaults", "lost", Vec::new()).await;
    ready_pod(
        &pods,
        "brief",
        "lost",
        vec![unreachable_toleration(Some(1))],
    )
    .await;
    ready_pod(&pods, "forever", "lost", vec![unreachable_toleration(None)]).await;

    let lost = wait_until("the node to go Unknown", || async {
        let n = nodes.get("lost").await.ok()?;
        (ready_status(&n)?.0 == "Unknown").then_some(n)
    })
    .await;
    let taints = lost.spec.and_then(|s| s.taints).unwrap_or_default();
    for effect in ["NoSchedule", "NoExecute"] {
        assert!(
            taints
                .iter()
                .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == effect),
            "{effect} taint missing: {taints:?}"
        );
    }
    for name in ["defaults", "brief", "forever"] {
        wait_until(&format!("pod {name} to go not Ready"), || async {
            let pod = pods.get(name).await.ok()?;
            (condition(&pod, "Ready")?.0 == "False").then_some(())
        })
        .await;
    }
    let evicted = wait_until("pod brief to be evicted after its 1 s", || async {
        let pod = pods.get("brief").await.ok()?;
        pod.metadata.deletion_timestamp.is_some().then_some(pod)
    })
    .await;
    assert_eq!(
        condition(&evicted, "DisruptionTarget"),
        Some(("True".into(), Some("DeletionByTaintManager".into())))
    );
    // The default 300 s and an unbounded toleration both outlast it.
    for name in ["defaults", "forever"] {
        let pod = pods.get(name).await.expect("still there");
        assert!(
            pod.metadata.deletion_timestamp.is_none(),
            "{name} was evicted"
        );
    }
    cluster.stop().await;
}
