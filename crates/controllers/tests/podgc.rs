//! The pod garbage collector: pods bound to a node that no longer exists,
//! running or terminating, are force-deleted; pods on live nodes stay.

mod common;

use common::{Cluster, node, pod, wait_until};
use controllers::{ControllerOptions, Controllers};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// Creates `name` bound to `node` and reports it Running, as a kubelet
/// would.
async fn running_pod(pods: &Api<Pod>, name: &str, node: &str) {
    let mut pod = pod(name, "", "");
    pod.spec.as_mut().expect("spec").node_name = Some(node.to_owned());
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("pod created");
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .expect("status posted");
}

async fn wait_gone(pods: &Api<Pod>, name: &str) {
    wait_until(&format!("pod {name} to be deleted"), || async {
        pods.get_opt(name)
            .await
            .expect("pod lookup")
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn pods_of_a_deleted_node_are_force_deleted() {
    let cluster = Cluster::start().await;
    let pods = cluster.pods("default");
    cluster.add_node(node("doomed", "4", "8Gi", 110)).await;
    cluster.add_node(node("kept", "4", "8Gi", 110)).await;
    running_pod(&pods, "running", "doomed").await;
    running_pod(&pods, "terminating", "doomed").await;
    running_pod(&pods, "elsewhere", "kept").await;
    // Its kubelet would finish this graceful deletion; there is none left.
    pods.delete("terminating", &DeleteParams::default())
        .await
        .expect("graceful deletion starts");
    let terminating = pods.get("terminating").await.expect("still there");
    assert!(terminating.metadata.deletion_timestamp.is_some());

    Api::<Node>::all(cluster.client.clone())
        .delete("doomed", &DeleteParams::default())
        .await
        .expect("node deleted");
    wait_gone(&pods, "running").await;
    wait_gone(&pods, "terminating").await;
    let elsewhere = pods
        .get("elsewhere")
        .await
        .expect("the pod on a live node stays");
    assert_eq!(
        elsewhere.status.and_then(|status| status.phase).as_deref(),
        Some("Running")
    );
    cluster.stop().await;
}

#[tokio::test]
async fn pods_bound_to_a_node_that_never_existed_are_collected_at_start() {
    let mut cluster = Cluster::server_only().await;
    let pods = cluster.pods("default");
    running_pod(&pods, "stray", "ghost").await;
    cluster.controllers = Some(
        Controllers::start(cluster.client.clone(), ControllerOptions::default())
            .await
            .expect("the controllers start"),
    );
    wait_gone(&pods, "stray").await;
    cluster.stop().await;
}
