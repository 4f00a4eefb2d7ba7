//! Garbage collection by ownerReferences: background, foreground and
//! orphan propagation.

mod common;

use std::collections::BTreeMap;

use common::{Cluster, wait_until};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const NS: &str = "default";

async fn config_map(
    api: &Api<ConfigMap>,
    name: &str,
    owner: Option<&ConfigMap>,
    finalizer: bool,
) -> ConfigMap {
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            owner_references: owner.map(|o| {
                vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    name: o.name_any(),
                    uid: o.uid().unwrap(),
                    block_owner_deletion: Some(true),
                    controller: None,
                }]
            }),
            finalizers: finalizer.then(|| vec!["kstress.test/hold".to_string()]),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    api.create(&PostParams::default(), &cm)
        .await
        .expect("config map created")
}

async fn gone(api: &Api<ConfigMap>, name: &str) {
    wait_until(&format!("{name} to be deleted"), || async {
        matches!(api.get_opt(name).await, Ok(None)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn background_deletion_removes_dependents_of_a_deleted_owner() {
    let cluster = Cluster::start().await;
    let sets: Api<ReplicaSet> = Api::namespaced(cluster.client.clone(), NS);
    let labels = BTreeMap::from([("app".to_string(), "gc".to_string())]);
    let rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some("gc".into()),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(3),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            },
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "main".into(),
                        image: Some("busybox".into()),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            }),
            ..ReplicaSetSpec::default()
        }),
        status: None,
    };
    sets.create(&PostParams::default(), &rs).await.unwrap();
    let pods = cluster.pods(NS);
    let by_label = ListParams::default().labels("app=gc");
    wait_until("three pods", || async {
        (pods.list(&by_label).await.ok()?.items.len() == 3).then_some(())
    })
    .await;
    sets.delete("gc", &DeleteParams::background())
        .await
        .unwrap();
    wait_until("the pods to be collected", || async {
        pods.list(&by_label)
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await;
    cluster.stop().await;
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let cluster = Cluster::start().await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    let owner = config_map(&maps, "owner", None, false).await;
    config_map(&maps, "held", Some(&owner), true).await;
    config_map(&maps, "free", Some(&owner), false).await;
    maps.delete("owner", &DeleteParams::foreground())
        .await
        .unwrap();
    gone(&maps, "free").await;
    let held = wait_until("the held dependent to be deleting", || async {
        let held = maps.get("held").await.ok()?;
        held.metadata.deletion_timestamp.is_some().then_some(held)
    })
    .await;
    assert!(held.metadata.deletion_timestamp.is_some());
    let waiting = maps
        .get("owner")
        .await
        .expect("the owner waits for its dependents");
    assert!(
        waiting
            .finalizers()
            .iter()
            .any(|f| f == "foregroundDeletion")
    );
    maps.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    gone(&maps, "held").await;
    gone(&maps, "owner").await;
    cluster.stop().await;
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_without_the_reference() {
    let cluster = Cluster::start().await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    let owner = config_map(&maps, "parent", None, false).await;
    config_map(&maps, "child", Some(&owner), false).await;
    maps.delete(
        "parent",
        &DeleteParams {
            propagation_policy: Some(kube::api::PropagationPolicy::Orphan),
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap();
    gone(&maps, "parent").await;
    let child = maps.get("child").await.expect("the dependent stays");
    assert!(child.owner_references().is_empty());
    cluster.stop().await;
}
