//! ReplicaSet, Deployment and Job controllers against the embedded API
//! server. No kubelet runs: the tests finish pods through pods/status.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Cluster, wait_until};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const NS: &str = "default";

fn template(app: &str, restart: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(BTreeMap::from([("app".to_string(), app.to_string())])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: Some("busybox".into()),
                ..Container::default()
            }],
            restart_policy: Some(restart.into()),
            ..PodSpec::default()
        }),
    }
}

fn selector(app: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([("app".to_string(), app.to_string())])),
        ..LabelSelector::default()
    }
}

/// The active pods labelled `app=<app>`, once there are exactly `n`.
async fn active_pods(pods: &Api<Pod>, app: &str, n: usize) -> Vec<Pod> {
    wait_until(&format!("{n} active {app} pods"), || async {
        let list = pods
            .list(&ListParams::default().labels(&format!("app={app}")))
            .await
            .ok()?;
        let active: Vec<Pod> = list
            .items
            .into_iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && !matches!(
                        p.status.as_ref().and_then(|s| s.phase.as_deref()),
                        Some("Succeeded" | "Failed")
                    )
            })
            .collect();
        (active.len() == n).then_some(active)
    })
    .await
}

async fn finish(pods: &Api<Pod>, pod: &Pod, phase: &str) {
    pods.patch_status(
        &pod.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": phase}})),
    )
    .await
    .expect("pod status patched");
}

#[tokio::test]
async fn replicaset_scales_and_replaces_lost_pods() {
    let cluster = Cluster::start().await;
    let sets: Api<ReplicaSet> = Api::namespaced(cluster.client.clone(), NS);
    let rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some("web".into()),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(3),
            selector: selector("web"),
            template: Some(template("web", "Always")),
            ..ReplicaSetSpec::default()
        }),
        status: None,
    };
    let rs = sets.create(&PostParams::default(), &rs).await.unwrap();
    let pods = cluster.pods(NS);
    let created = active_pods(&pods, "web", 3).await;
    for pod in &created {
        assert!(pod.name_any().starts_with("web-"));
        let owner = &pod.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("ReplicaSet", rs.uid().unwrap().as_str())
        );
        assert_eq!(owner.controller, Some(true));
    }
    wait_until("status.replicas 3", || async {
        let status = sets.get("web").await.ok()?.status?;
        (status.replicas == 3 && status.observed_generation == Some(1)).then_some(())
    })
    .await;

    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    )
    .await
    .unwrap();
    active_pods(&pods, "web", 5).await;
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .unwrap();
    let remaining = active_pods(&pods, "web", 2).await;
    wait_until("status.replicas 2", || async {
        (sets.get("web").await.ok()?.status?.replicas == 2).then_some(())
    })
    .await;

    let lost = remaining[0].name_any();
    pods.delete(&lost, &DeleteParams::default()).await.unwrap();
    let replaced = wait_until("a replacement pod", || async {
        let now = active_pods(&pods, "web", 2).await;
        now.iter().all(|p| p.name_any() != lost).then_some(now)
    })
    .await;
    assert!(
        replaced
            .iter()
            .any(|p| p.name_any() == remaining[1].name_any())
    );
    cluster.stop().await;
}

#[tokio::test]
async fn deployment_runs_a_hashed_replicaset_and_scales_it() {
    let cluster = Cluster::start().await;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), NS);
    let deploy = Deployment {
        metadata: ObjectMeta {
            name: Some("api".into()),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(2),
            selector: selector("api"),
            template: template("api", "Always"),
            ..DeploymentSpec::default()
        }),
        status: None,
    };
    let deploy = deployments
        .create(&PostParams::default(), &deploy)
        .await
        .unwrap();
    let sets: Api<ReplicaSet> = Api::namespaced(cluster.client.clone(), NS);
    let rs = wait_until("the Deployment's ReplicaSet", || async {
        sets.list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .next()
    })
    .await;
    let hash = rs
        .labels()
        .get("pod-template-hash")
        .cloned()
        .expect("hash label");
    assert_eq!(rs.name_any(), format!("api-{hash}"));
    assert_eq!(rs.owner_references()[0].uid, deploy.uid().unwrap());
    let pods = cluster.pods(NS);
    for pod in active_pods(&pods, "api", 2).await {
        assert_eq!(pod.labels().get("pod-template-hash"), Some(&hash));
    }
    deployments
        .patch(
            "api",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    active_pods(&pods, "api", 4).await;
    wait_until("Deployment status with 4 replicas", || async {
        let status = deployments.get("api").await.ok()?.status?;
        (status.replicas == Some(4)
            && status.updated_replicas == Some(4)
            && status.observed_generation == Some(2))
        .then_some(())
    })
    .await;
    let sets_now = sets.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(sets_now.len(), 1, "scaling keeps one ReplicaSet");
    cluster.stop().await;
}

fn job(name: &str, completions: i32, parallelism: i32, indexed: bool, backoff: i32) -> Job {
    Job {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            completions: Some(completions),
            parallelism: Some(parallelism),
            backoff_limit: Some(backoff),
            completion_mode: Some(if indexed { "Indexed" } else { "NonIndexed" }.into()),
            template: template(name, "Never"),
            ..JobSpec::default()
        }),
        status: None,
    }
}

async fn job_condition(jobs: &Api<Job>, name: &str, type_: &str) -> Job {
    wait_until(&format!("job {name} to be {type_}"), || async {
        let job = jobs.get(name).await.ok()?;
        job.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == type_ && c.status == "True")
            .then_some(job)
    })
    .await
}

#[tokio::test]
async fn non_indexed_job_completes_after_its_completions() {
    let cluster = Cluster::start().await;
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), NS);
    jobs.create(&PostParams::default(), &job("batch", 3, 2, false, 6))
        .await
        .unwrap();
    let pods = cluster.pods(NS);
    let first = active_pods(&pods, "batch", 2).await;
    finish(&pods, &first[0], "Succeeded").await;
    finish(&pods, &first[1], "Failed").await;
    // One success is still missing twice over: two replacements run.
    let second = active_pods(&pods, "batch", 2).await;
    for pod in &second {
        finish(&pods, pod, "Succeeded").await;
    }
    let done = job_condition(&jobs, "batch", "Complete").await;
    let status = done.status.unwrap();
    assert_eq!(status.succeeded, Some(3));
    assert_eq!(status.failed, Some(1));
    assert_eq!(status.active, Some(0));
    assert!(status.completion_time.is_some());
    cluster.stop().await;
}

#[tokio::test]
async fn indexed_job_runs_one_pod_per_index() {
    let cluster = Cluster::start().await;
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), NS);
    jobs.create(&PostParams::default(), &job("shard", 3, 3, true, 6))
        .await
        .unwrap();
    let pods = cluster.pods(NS);
    let running = active_pods(&pods, "shard", 3).await;
    let mut indexes = BTreeSet::new();
    for pod in &running {
        let index = pod.annotations()["batch.kubernetes.io/job-completion-index"].clone();
        assert_eq!(
            pod.labels()["batch.kubernetes.io/job-completion-index"],
            index
        );
        assert_eq!(
            pod.spec.as_ref().unwrap().hostname.as_deref(),
            Some(format!("shard-{index}").as_str())
        );
        indexes.insert(index);
    }
    assert_eq!(
        indexes,
        BTreeSet::from(["0".into(), "1".into(), "2".into()])
    );
    // Index 1 fails once and is run again under the same index.
    let one = running
        .iter()
        .find(|p| p.annotations()["batch.kubernetes.io/job-completion-index"] == "1")
        .unwrap();
    finish(&pods, one, "Failed").await;
    let again = active_pods(&pods, "shard", 3).await;
    assert!(again.iter().any(
        |p| p.annotations()["batch.kubernetes.io/job-completion-index"] == "1"
            && p.name_any() != one.name_any()
    ));
    for pod in &again {
        finish(&pods, pod, "Succeeded").await;
    }
    let done = job_condition(&jobs, "shard", "Complete").await;
    let status = done.status.unwrap();
    assert_eq!(status.completed_indexes.as_deref(), Some("0-2"));
    assert_eq!(status.succeeded, Some(3));
    assert_eq!(status.failed, Some(1));
    cluster.stop().await;
}

#[tokio::test]
async fn job_fails_past_its_backoff_limit() {
    let cluster = Cluster::start().await;
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), NS);
    jobs.create(&PostParams::default(), &job("flaky", 1, 1, false, 1))
        .await
        .unwrap();
    let pods = cluster.pods(NS);
    for _ in 0..2 {
        let pod = active_pods(&pods, "flaky", 1).await;
        finish(&pods, &pod[0], "Failed").await;
    }
    let failed = job_condition(&jobs, "flaky", "Failed").await;
    let condition = failed
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Failed")
        .unwrap();
    assert_eq!(condition.reason.as_deref(), Some("BackoffLimitExceeded"));
    active_pods(&pods, "flaky", 0).await;
    cluster.stop().await;
}
