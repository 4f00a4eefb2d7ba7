//! The scheduler against the embedded API server: capacity, selectors,
//! taints, unschedulable nodes, spreading, and the PodScheduled condition.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{Cluster, bound_node, message_becomes, node, pod, unschedulable_message, wait_until};
use k8s_openapi::api::core::v1::{Pod, Taint, Toleration};
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

const NS: &str = "default";

async fn create(cluster: &Cluster, pod: Pod) {
    cluster
        .pods(NS)
        .create(&PostParams::default(), &pod)
        .await
        .expect("pod created");
}

#[tokio::test]
async fn pods_bind_to_ready_nodes_with_scheduled_condition() {
    let cluster = Cluster::with_scheduler().await;
    cluster.add_node(node("n1", "4", "8Gi", 110)).await;
    create(&cluster, pod("web", "100m", "64Mi")).await;
    let pods = cluster.pods(NS);
    assert_eq!(bound_node(&pods, "web").await, "n1");
    let pod = pods.get("web").await.unwrap();
    let scheduled = pod
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .expect("a PodScheduled condition");
    assert_eq!(scheduled.status, "True");
    cluster.stop().await;
}

#[tokio::test]
async fn pod_count_capacity_is_honoured() {
    let cluster = Cluster::with_scheduler().await;
    cluster.add_node(node("small", "8", "16Gi", 3)).await;
    for i in 0..4 {
        create(&cluster, pod(&format!("p{i}"), "", "")).await;
    }
    let pods = cluster.pods(NS);
    let message = wait_until("three bound pods and one unschedulable", || async {
        let list = pods.list(&Default::default()).await.ok()?;
        let bound = list
            .items
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
            .count();
        let waiting: Vec<String> = list
            .items
            .iter()
            .filter_map(|p| {
                p.status
                    .as_ref()?
                    .conditions
                    .as_ref()?
                    .iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "False")?
                    .message
                    .clone()
            })
            .collect();
        (bound == 3 && waiting.len() == 1).then(|| waiting[0].clone())
    })
    .await;
    assert_eq!(message, "0/1 nodes are available: 1 Too many pods.");
    cluster.stop().await;
}

#[tokio::test]
async fn cpu_and_memory_requests_are_checked_against_allocatable() {
    let cluster = Cluster::with_scheduler().await;
    cluster.add_node(node("n1", "1", "1Gi", 110)).await;
    let pods = cluster.pods(NS);
    create(&cluster, pod("half", "600m", "600Mi")).await;
    assert_eq!(bound_node(&pods, "half").await, "n1");
    create(&cluster, pod("too-much-cpu", "500m", "100Mi")).await;
    assert_eq!(
        unschedulable_message(&pods, "too-much-cpu").await,
        "0/1 nodes are available: 1 Insufficient cpu."
    );
    create(&cluster, pod("too-much-both", "500m", "500Mi")).await;
    assert_eq!(
        unschedulable_message(&pods, "too-much-both").await,
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."
    );
    create(&cluster, pod("fits", "400m", "400Mi")).await;
    assert_eq!(bound_node(&pods, "fits").await, "n1");
    cluster.stop().await;
}

#[tokio::test]
async fn node_selector_and_unschedulable_nodes() {
    let cluster = Cluster::with_scheduler().await;
    let mut ssd = node("ssd", "4", "8Gi", 110);
    ssd.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert("disk".into(), "ssd".into());
    cluster.add_node(ssd).await;
    cluster.add_node(node("hdd", "4", "8Gi", 110)).await;
    let mut cordoned = node("cordoned", "4", "8Gi", 110);
    cordoned.spec.as_mut().unwrap().unschedulable = Some(true);
    cordoned
        .metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert("disk".into(), "ssd".into());
    cluster.add_node(cordoned).await;
    let pods = cluster.pods(NS);
    for i in 0..5 {
        let mut p = pod(&format!("wants-ssd-{i}"), "10m", "");
        p.spec.as_mut().unwrap().node_selector =
            Some(BTreeMap::from([("disk".to_string(), "ssd".to_string())]));
        create(&cluster, p).await;
    }
    for i in 0..5 {
        assert_eq!(bound_node(&pods, &format!("wants-ssd-{i}")).await, "ssd");
    }
    let mut nvme = pod("wants-nvme", "10m", "");
    nvme.spec.as_mut().unwrap().node_selector =
        Some(BTreeMap::from([("disk".to_string(), "nvme".to_string())]));
    create(&cluster, nvme).await;
    assert_eq!(
        unschedulable_message(&pods, "wants-nvme").await,
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match Pod's node affinity/selector."
    );
    cluster.stop().await;
}

#[tokio::test]
async fn taints_repel_pods_without_tolerations() {
    let cluster = Cluster::with_scheduler().await;
    let mut tainted = node("gpu", "4", "8Gi", 110);
    tainted.spec.as_mut().unwrap().taints = Some(vec![Taint {
        key: "dedicated".into(),
        value: Some("gpu".into()),
        effect: "NoSchedule".into(),
        ..Taint::default()
    }]);
    cluster.add_node(tainted).await;
    let pods = cluster.pods(NS);
    create(&cluster, pod("plain", "10m", "")).await;
    assert_eq!(
        unschedulable_message(&pods, "plain").await,
        "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}."
    );
    let mut tolerant = pod("tolerant", "10m", "");
    tolerant.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
        key: Some("dedicated".into()),
        operator: Some("Equal".into()),
        value: Some("gpu".into()),
        effect: Some("NoSchedule".into()),
        ..Toleration::default()
    }]);
    create(&cluster, tolerant).await;
    assert_eq!(bound_node(&pods, "tolerant").await, "gpu");
    // Still unschedulable: the taint did not go away.
    assert!(
        pods.get("plain")
            .await
            .unwrap()
            .spec
            .unwrap()
            .node_name
            .is_none()
    );
    cluster.stop().await;
}

#[tokio::test]
async fn unschedulable_pods_are_retried_when_a_node_is_added() {
    let cluster = Cluster::with_scheduler().await;
    let pods = cluster.pods(NS);
    create(&cluster, pod("early", "100m", "")).await;
    assert_eq!(
        unschedulable_message(&pods, "early").await,
        "no nodes available to schedule pods"
    );
    cluster.add_node(node("small", "50m", "1Gi", 110)).await;
    message_becomes(
        &pods,
        "early",
        "0/1 nodes are available: 1 Insufficient cpu.",
    )
    .await;
    cluster.add_node(node("late", "2", "4Gi", 110)).await;
    assert_eq!(bound_node(&pods, "early").await, "late");
    cluster.stop().await;
}

#[tokio::test]
async fn least_allocated_nodes_are_preferred() {
    let cluster = Cluster::with_scheduler().await;
    for name in ["a", "b", "c"] {
        cluster.add_node(node(name, "4", "8Gi", 110)).await;
    }
    let pods = cluster.pods(NS);
    for i in 0..30 {
        create(&cluster, pod(&format!("spread-{i}"), "100m", "128Mi")).await;
    }
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for i in 0..30 {
        *per_node
            .entry(bound_node(&pods, &format!("spread-{i}")).await)
            .or_default() += 1;
    }
    assert_eq!(per_node.len(), 3, "pods on every node: {per_node:?}");
    assert!(
        per_node.values().all(|&n| (9..=11).contains(&n)),
        "pods spread evenly: {per_node:?}"
    );
    cluster.stop().await;
}

#[tokio::test]
async fn other_schedulers_pods_are_left_alone_and_freed_slots_reused() {
    let cluster = Cluster::with_scheduler().await;
    cluster.add_node(node("n1", "1", "1Gi", 1)).await;
    let pods = cluster.pods(NS);
    let mut foreign = pod("foreign", "", "");
    foreign.spec.as_mut().unwrap().scheduler_name = Some("other-scheduler".into());
    create(&cluster, foreign).await;
    create(&cluster, pod("first", "", "")).await;
    assert_eq!(bound_node(&pods, "first").await, "n1");
    create(&cluster, pod("second", "", "")).await;
    unschedulable_message(&pods, "second").await;
    // Finishing the first pod frees its slot.
    pods.patch_status(
        "first",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Succeeded"}})),
    )
    .await
    .expect("status patched");
    assert_eq!(bound_node(&pods, "second").await, "n1");
    let foreign = pods.get("foreign").await.unwrap();
    assert!(foreign.spec.unwrap().node_name.is_none());
    assert!(
        foreign
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .all(|c| c.type_ != "PodScheduled"),
        "a pod of another scheduler is left alone"
    );
    cluster.stop().await;
}
