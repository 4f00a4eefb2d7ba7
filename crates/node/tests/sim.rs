//! The `sim` runtime scripted by pod annotations, and node registration.

mod common;

use common::{Cluster, NODE, phase, statuses};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use node::RuntimeKind;
use serde_json::json;

#[tokio::test]
async fn node_registers_and_renews_its_lease() {
    let cluster = Cluster::start(RuntimeKind::Sim).await;
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let node = nodes.get(NODE).await.expect("node registered");
    let status = node.status.unwrap();
    let ready = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
    assert_eq!(status.capacity.unwrap()["pods"].0, "110");
    assert!(
        status
            .daemon_endpoints
            .unwrap()
            .kubelet_endpoint
            .unwrap()
            .port
            > 0
    );
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "kube-node-lease");
    let first = leases
        .get(NODE)
        .await
        .expect("lease")
        .spec
        .unwrap()
        .renew_time
        .unwrap();
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let renewed = leases
            .get(NODE)
            .await
            .unwrap()
            .spec
            .unwrap()
            .renew_time
            .unwrap();
        if renewed.0 > first.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "lease never renewed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    cluster.agent.shutdown().await;
    assert!(
        nodes.get_opt(NODE).await.unwrap().is_none(),
        "node deregistered"
    );
    assert!(
        leases.get_opt(NODE).await.unwrap().is_none(),
        "lease released"
    );
    cluster.server.shutdown().await;
}

#[tokio::test]
async fn annotations_script_sim_containers() {
    let cluster = Cluster::start(RuntimeKind::Sim).await;
    cluster
        .create(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "scripted", "annotations": {
                "sim.kstress.io/job.run-duration": "300ms",
                "sim.kstress.io/job.exit-code": "3",
                "sim.kstress.io/job.message": "bye",
            }},
            "spec": {
                "nodeName": NODE,
                "restartPolicy": "Never",
                "containers": [{"name": "job", "image": "app:1"}],
            }
        }))
        .await;
    let done = cluster
        .wait_pod("scripted", "the pod to fail", |pod| phase(pod) == "Failed")
        .await;
    let terminated = statuses(&done)[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(terminated.exit_code, 3);
    assert_eq!(terminated.message.as_deref(), Some("bye"));
    cluster
        .create(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "unpullable"},
            "spec": {
                "nodeName": NODE,
                "containers": [{"name": "c", "image": "invalid.example.com/app:1"}],
            }
        }))
        .await;
    cluster
        .wait_pod("unpullable", "ImagePullBackOff", |pod| {
            statuses(pod)[0]
                .state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .is_some_and(|w| w.reason.as_deref() == Some("ImagePullBackOff"))
        })
        .await;
    cluster.stop().await;
}
