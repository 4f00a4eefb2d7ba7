//! Every served kind through the typed kube-rs API and through the dynamic
//! API (`DynamicObject`, resolved by discovery as a generic client does),
//! plus the kind-specific subresources and defaults clients rely on.

mod common;

use std::fmt::Debug;

use common::{TestServer, is_not_found, status_of, wait_until};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, Namespace, Node, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Resource;
use kube::api::{
    Api, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::discovery::{Discovery, Scope};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The body of one object of each served kind, by `(group, version, kind)`.
fn body(kind: &str, name: &str) -> Value {
    let pod_spec = json!({"containers": [{"name": "c", "image": "busybox"}]});
    let template =
        |labels: Value| json!({"metadata": {"labels": labels}, "spec": pod_spec.clone()});
    let (api_version, rest) = match kind {
        "Namespace" => ("v1", json!({})),
        "Pod" => ("v1", json!({"spec": pod_spec})),
        "ConfigMap" => ("v1", json!({"data": {"k": "v"}})),
        "Secret" => ("v1", json!({"type": "Opaque", "data": {"k": "dg=="}})),
        "Service" => (
            "v1",
            json!({"spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        ),
        "ServiceAccount" => ("v1", json!({})),
        "Node" => ("v1", json!({"spec": {}})),
        "Event" => (
            "v1",
            json!({
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
                "reason": "Created", "message": "created it", "type": "Normal",
            }),
        ),
        "events.k8s.io/Event" => (
            "events.k8s.io/v1",
            json!({
                "eventTime": "2026-01-01T00:00:00.000000Z",
                "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
                "reason": "Created", "note": "created it", "type": "Normal", "action": "Create",
                "reportingController": "kstress.io/tests", "reportingInstance": "tests-1",
            }),
        ),
        "Lease" => (
            "coordination.k8s.io/v1",
            json!({"spec": {"holderIdentity": "a", "leaseDurationSeconds": 40}}),
        ),
        "Deployment" => (
            "apps/v1",
            json!({"spec": {"selector": {"matchLabels": {"app": name}}, "template": template(json!({"app": name}))}}),
        ),
        "ReplicaSet" => (
            "apps/v1",
            json!({"spec": {"selector": {"matchLabels": {"app": name}}, "template": template(json!({"app": name}))}}),
        ),
        "Job" => (
            "batch/v1",
            json!({"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}),
        ),
        "CustomResourceDefinition" => ("apiextensions.k8s.io/v1", crd_spec(name)),
        "StatefulSet" => (
            "apps/v1",
            json!({"spec": {"serviceName": name, "selector": {"matchLabels": {"app": name}}, "template": template(json!({"app": name}))}}),
        ),
        "DaemonSet" => (
            "apps/v1",
            json!({"spec": {"selector": {"matchLabels": {"app": name}}, "template": template(json!({"app": name}))}}),
        ),
        "ControllerRevision" => ("apps/v1", json!({"revision": 1, "data": {"spec": {}}})),
        "CronJob" => (
            "batch/v1",
            json!({"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}}),
        ),
        "ReplicationController" => (
            "v1",
            json!({"spec": {"selector": {"app": name}, "template": template(json!({"app": name}))}}),
        ),
        "PersistentVolumeClaim" => (
            "v1",
            json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
        ),
        "PersistentVolume" => (
            "v1",
            json!({"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/pv"}}}),
        ),
        "Endpoints" => (
            "v1",
            json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}),
        ),
        "ResourceQuota" => ("v1", json!({"spec": {"hard": {"pods": "10"}}})),
        "LimitRange" => (
            "v1",
            json!({"spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}}]}}),
        ),
        "PodTemplate" => ("v1", json!({"template": template(json!({"app": name}))})),
        "Ingress" => (
            "networking.k8s.io/v1",
            json!({"spec": {"rules": [{"host": "example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}),
        ),
        "IngressClass" => (
            "networking.k8s.io/v1",
            json!({"spec": {"controller": "example.com/ingress"}}),
        ),
        "NetworkPolicy" => (
            "networking.k8s.io/v1",
            json!({"spec": {"podSelector": {"matchLabels": {"app": name}}}}),
        ),
        "PodDisruptionBudget" => (
            "policy/v1",
            json!({"spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": name}}}}),
        ),
        "StorageClass" => (
            "storage.k8s.io/v1",
            json!({"provisioner": "example.com/disk"}),
        ),
        "PriorityClass" => ("scheduling.k8s.io/v1", json!({"value": 1000})),
        "EndpointSlice" => (
            "discovery.k8s.io/v1",
            json!({"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}]}),
        ),
        other => panic!("no body for {other}"),
    };
    let mut object = rest;
    object["apiVersion"] = api_version.into();
    object["kind"] = kind.rsplit('/').next().unwrap().into();
    object["metadata"] = json!({"name": name});
    object
}

/// A CRD named `<plural>.<group>`: `things.a.example.com` serves `Thing`.
fn crd_spec(name: &str) -> Value {
    let (plural, group) = name.split_once('.').unwrap();
    let kind = format!(
        "{}{}",
        plural[..1].to_uppercase(),
        &plural[1..plural.len() - 1]
    );
    json!({"spec": {
        "group": group,
        "scope": "Namespaced",
        "names": {"plural": plural, "singular": &plural[..plural.len() - 1], "kind": kind},
        "versions": [{"name": "v1", "served": true, "storage": true,
                      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
    }})
}

fn typed<K: DeserializeOwned>(kind: &str, name: &str) -> K {
    serde_json::from_value(body(kind, name)).unwrap()
}

/// Create, get, list, replace, patch and delete one object through a typed
/// API; checks the metadata the server owns on the way.
async fn typed_lifecycle<K>(api: &Api<K>, object: K)
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
    K::DynamicType: Default,
{
    let kind = K::kind(&Default::default()).into_owned();
    let name = object.meta().name.clone().unwrap();
    let created = api.create(&PostParams::default(), &object).await.unwrap();
    let meta = created.meta();
    assert!(
        meta.uid.as_deref().is_some_and(|u| u.len() == 36),
        "{kind}: uid set: {meta:?}"
    );
    assert!(
        meta.creation_timestamp.is_some(),
        "{kind}: creationTimestamp set"
    );
    let created_rv: i64 = meta.resource_version.as_deref().unwrap().parse().unwrap();

    let got = api.get(&name).await.unwrap();
    assert_eq!(
        got.meta().resource_version,
        created.meta().resource_version,
        "{kind}: get"
    );
    let listed = api.list(&ListParams::default()).await.unwrap();
    assert!(
        listed
            .items
            .iter()
            .any(|o| o.meta().name.as_deref() == Some(name.as_str())),
        "{kind}: list contains {name}"
    );
    let list_rv: i64 = listed
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        list_rv >= created_rv,
        "{kind}: a list is not older than what it contains"
    );

    let mut changed = got.clone();
    changed
        .meta_mut()
        .annotations
        .get_or_insert_with(Default::default)
        .insert("replaced".into(), "yes".into());
    let replaced = api
        .replace(&name, &PostParams::default(), &changed)
        .await
        .unwrap();
    let replaced_rv: i64 = replaced
        .meta()
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        replaced_rv > created_rv,
        "{kind}: an update moves the resourceVersion forward"
    );
    assert_eq!(
        replaced.meta().uid,
        created.meta().uid,
        "{kind}: uid is immutable"
    );
    assert_eq!(
        replaced.meta().creation_timestamp,
        created.meta().creation_timestamp,
        "{kind}"
    );
    let stale = status_of(api.replace(&name, &PostParams::default(), &changed).await);
    assert_eq!(
        (stale.code, stale.reason.as_str()),
        (409, "Conflict"),
        "{kind}: stale update"
    );

    let patched = api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"patched": "yes"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.meta().labels.as_ref().unwrap()["patched"],
        "yes",
        "{kind}: merge patch"
    );
    assert_eq!(
        patched.meta().annotations.as_ref().unwrap()["replaced"],
        "yes",
        "{kind}: patch keeps the rest"
    );

    let duplicate = status_of(api.create(&PostParams::default(), &object).await);
    assert_eq!(
        (duplicate.code, duplicate.reason.as_str()),
        (409, "AlreadyExists"),
        "{kind}"
    );

    api.delete(&name, &DeleteParams::default()).await.unwrap();
    // Namespaces finish their deletion asynchronously; everything else here
    // is gone at once, which the bounded wait also accepts.
    wait_until(&format!("{kind} {name} to be deleted"), || async {
        is_not_found(api.get(&name).await).then_some(())
    })
    .await;
}

#[tokio::test]
async fn typed_crud_for_every_served_kind() {
    let ts = TestServer::start().await;
    let c = || ts.client.clone();
    typed_lifecycle::<Namespace>(&Api::all(c()), typed("Namespace", "typed-ns")).await;
    typed_lifecycle::<Pod>(&Api::namespaced(c(), "default"), typed("Pod", "typed-pod")).await;
    typed_lifecycle::<ConfigMap>(
        &Api::namespaced(c(), "default"),
        typed("ConfigMap", "typed-cm"),
    )
    .await;
    typed_lifecycle::<Secret>(
        &Api::namespaced(c(), "default"),
        typed("Secret", "typed-secret"),
    )
    .await;
    typed_lifecycle::<Service>(
        &Api::namespaced(c(), "default"),
        typed("Service", "typed-svc"),
    )
    .await;
    typed_lifecycle::<ServiceAccount>(
        &Api::namespaced(c(), "default"),
        typed("ServiceAccount", "typed-sa"),
    )
    .await;
    typed_lifecycle::<Node>(&Api::all(c()), typed("Node", "typed-node")).await;
    typed_lifecycle::<Event>(
        &Api::namespaced(c(), "default"),
        typed("Event", "typed-event"),
    )
    .await;
    typed_lifecycle::<k8s_openapi::api::events::v1::Event>(
        &Api::namespaced(c(), "default"),
        typed("events.k8s.io/Event", "typed-event-v1"),
    )
    .await;
    typed_lifecycle::<Lease>(
        &Api::namespaced(c(), "default"),
        typed("Lease", "typed-lease"),
    )
    .await;
    typed_lifecycle::<Deployment>(
        &Api::namespaced(c(), "default"),
        typed("Deployment", "typed-deploy"),
    )
    .await;
    typed_lifecycle::<ReplicaSet>(
        &Api::namespaced(c(), "default"),
        typed("ReplicaSet", "typed-rs"),
    )
    .await;
    typed_lifecycle::<Job>(&Api::namespaced(c(), "default"), typed("Job", "typed-job")).await;
    typed_lifecycle::<CustomResourceDefinition>(
        &Api::all(c()),
        typed("CustomResourceDefinition", "things.typed.example.com"),
    )
    .await;
    ts.stop().await;
}

#[tokio::test]
async fn dynamic_crud_for_every_served_kind_resolved_by_discovery() {
    let ts = TestServer::start().await;
    let discovery = Discovery::new(ts.client.clone()).run().await.unwrap();
    let kinds = [
        ("", "Namespace"),
        ("", "Pod"),
        ("", "ConfigMap"),
        ("", "Secret"),
        ("", "Service"),
        ("", "ServiceAccount"),
        ("", "Node"),
        ("", "Event"),
        ("events.k8s.io", "Event"),
        ("coordination.k8s.io", "Lease"),
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("batch", "Job"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("apps", "ControllerRevision"),
        ("batch", "CronJob"),
        ("", "ReplicationController"),
        ("", "PersistentVolumeClaim"),
        ("", "PersistentVolume"),
        ("", "Endpoints"),
        ("", "ResourceQuota"),
        ("", "LimitRange"),
        ("", "PodTemplate"),
        ("networking.k8s.io", "Ingress"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("policy", "PodDisruptionBudget"),
        ("storage.k8s.io", "StorageClass"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("discovery.k8s.io", "EndpointSlice"),
    ];
    for (group, kind) in kinds {
        let gvk = GroupVersionKind::gvk(group, "v1", kind);
        let (resource, capabilities) = discovery
            .resolve_gvk(&gvk)
            .unwrap_or_else(|| panic!("discovery lists {gvk:?}"));
        let api: Api<DynamicObject> = match capabilities.scope {
            Scope::Namespaced => Api::namespaced_with(ts.client.clone(), "default", &resource),
            Scope::Cluster => Api::all_with(ts.client.clone(), &resource),
        };
        let name = if kind == "CustomResourceDefinition" {
            "things.dynamic.example.com".to_string()
        } else {
            format!("dynamic-{}", kind.to_lowercase())
        };
        let key = if group == "events.k8s.io" {
            "events.k8s.io/Event"
        } else {
            kind
        };
        let object: DynamicObject = serde_json::from_value(body(key, &name)).unwrap();
        let created = api.create(&PostParams::default(), &object).await.unwrap();
        assert_eq!(
            created.types.as_ref().map(|t| t.kind.as_str()),
            Some(kind),
            "{kind}: kind in the answer"
        );
        assert!(
            created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some(),
            "{kind}"
        );

        let got = api.get(&name).await.unwrap();
        assert_eq!(got.metadata.uid, created.metadata.uid, "{kind}");
        let listed = api
            .list(&ListParams::default().fields(&format!("metadata.name={name}")))
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 1, "{kind}: field-selected list");

        let mut changed = got.clone();
        changed
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("replaced".into(), "yes".into());
        let replaced = api
            .replace(&name, &PostParams::default(), &changed)
            .await
            .unwrap();
        assert_eq!(
            replaced.metadata.labels.as_ref().unwrap()["replaced"],
            "yes",
            "{kind}: replace"
        );
        let patched = api
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"a": "b"}}})),
            )
            .await
            .unwrap();
        assert_eq!(
            patched.metadata.annotations.as_ref().unwrap()["a"],
            "b",
            "{kind}: patch"
        );

        api.delete(&name, &DeleteParams::default()).await.unwrap();
        wait_until(&format!("{kind} {name} to be deleted"), || async {
            is_not_found(api.get(&name).await).then_some(())
        })
        .await;
    }
    ts.stop().await;
}

#[tokio::test]
async fn secrets_merge_string_data_into_data() {
    let ts = TestServer::start().await;
    let api: Api<Secret> = Api::namespaced(ts.client.clone(), "default");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "s"},
        "stringData": {"user": "admin"},
        "data": {"pass": "c2VjcmV0"},
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &secret).await.unwrap();
    assert!(created.string_data.is_none(), "stringData is write-only");
    let data = created.data.unwrap();
    assert_eq!(data["user"].0, b"admin");
    assert_eq!(data["pass"].0, b"secret");
    assert_eq!(created.type_.as_deref(), Some("Opaque"), "defaulted type");
    ts.stop().await;
}

#[tokio::test]
async fn node_status_is_split_from_the_main_resource() {
    let ts = TestServer::start().await;
    let api: Api<Node> = Api::all(ts.client.clone());
    let created = api
        .create(&PostParams::default(), &typed::<Node>("Node", "n1"))
        .await
        .unwrap();

    let mut main = created.clone();
    main.spec.get_or_insert_with(Default::default).unschedulable = Some(true);
    main.status = Some(
        serde_json::from_value(json!({"phase": "Running", "capacity": {"pods": "110"}})).unwrap(),
    );
    let after_main = api
        .replace("n1", &PostParams::default(), &main)
        .await
        .unwrap();
    assert_eq!(
        after_main.spec.as_ref().unwrap().unschedulable,
        Some(true),
        "a main write changes spec"
    );
    assert!(
        after_main
            .status
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .is_none(),
        "a main write leaves status alone: {:?}",
        after_main.status
    );

    let status = json!({
        "spec": {"unschedulable": false},
        "status": {"capacity": {"pods": "110"}, "conditions": [{"type": "Ready", "status": "True"}]},
    });
    let after_status = api
        .patch_status("n1", &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
    assert_eq!(
        after_status.spec.as_ref().unwrap().unschedulable,
        Some(true),
        "a status write leaves spec alone"
    );
    let node_status = after_status.status.unwrap();
    assert_eq!(node_status.capacity.unwrap()["pods"].0, "110");
    assert_eq!(node_status.conditions.unwrap()[0].type_, "Ready");
    let fetched = api.get_status("n1").await.unwrap();
    assert_eq!(
        fetched.metadata.resource_version,
        after_status.metadata.resource_version
    );

    let unschedulable = api
        .list(&ListParams::default().fields("spec.unschedulable=true"))
        .await
        .unwrap();
    assert_eq!(
        unschedulable.items.len(),
        1,
        "nodes select on spec.unschedulable"
    );
    ts.stop().await;
}

#[tokio::test]
async fn replicasets_status_and_scale() {
    let ts = TestServer::start().await;
    let api: Api<ReplicaSet> = Api::namespaced(ts.client.clone(), "default");
    let created = api
        .create(
            &PostParams::default(),
            &typed::<ReplicaSet>("ReplicaSet", "rs"),
        )
        .await
        .unwrap();
    assert_eq!(
        created.spec.as_ref().unwrap().replicas,
        Some(1),
        "defaulted replicas"
    );
    assert_eq!(created.metadata.generation, Some(1));

    let status = api
        .patch_status(
            "rs",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 1, "readyReplicas": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(status.status.as_ref().unwrap().ready_replicas, Some(1));
    assert_eq!(
        status.metadata.generation,
        Some(1),
        "a status write keeps the generation"
    );

    let mut scale = api.get_scale("rs").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(1));
    assert_eq!(scale.status.as_ref().unwrap().replicas, 1);
    assert_eq!(
        scale.status.as_ref().unwrap().selector.as_deref(),
        Some("app=rs")
    );
    scale.spec.as_mut().unwrap().replicas = Some(3);
    let scaled = api
        .replace_scale("rs", &PostParams::default(), &scale)
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(3));
    let stale = status_of(
        api.replace_scale("rs", &PostParams::default(), &scale)
            .await,
    );
    assert_eq!(
        stale.code, 409,
        "a scale write with a stale resourceVersion conflicts"
    );

    let after = api.get("rs").await.unwrap();
    assert_eq!(after.spec.unwrap().replicas, Some(3));
    assert_eq!(
        after.metadata.generation,
        Some(2),
        "scaling is a spec change"
    );
    assert_eq!(
        after.status.unwrap().ready_replicas,
        Some(1),
        "scaling leaves status alone"
    );
    ts.stop().await;
}

#[tokio::test]
async fn jobs_defaults_status_and_generation() {
    let ts = TestServer::start().await;
    let api: Api<Job> = Api::namespaced(ts.client.clone(), "default");
    let created = api
        .create(&PostParams::default(), &typed::<Job>("Job", "job"))
        .await
        .unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    let spec = created.spec.as_ref().unwrap();
    let selector = spec
        .selector
        .as_ref()
        .and_then(|s| s.match_labels.as_ref())
        .expect("a generated selector");
    assert_eq!(selector["batch.kubernetes.io/controller-uid"], uid);
    let template_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref())
        .unwrap();
    assert_eq!(template_labels["batch.kubernetes.io/controller-uid"], uid);
    assert_eq!(
        (spec.parallelism, spec.completions, spec.backoff_limit),
        (Some(1), Some(1), Some(6))
    );
    assert!(created.status.as_ref().and_then(|s| s.active).is_none());

    let mut main = created.clone();
    main.status = Some(serde_json::from_value(json!({"active": 5})).unwrap());
    main.metadata.labels = Some([("l".to_string(), "1".to_string())].into());
    let after_main = api
        .replace("job", &PostParams::default(), &main)
        .await
        .unwrap();
    assert!(
        after_main.status.as_ref().and_then(|s| s.active).is_none(),
        "a main write leaves status alone"
    );
    assert_eq!(
        after_main.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );

    let status = api
        .patch_status(
            "job",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"active": 1}, "spec": {"parallelism": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(status.status.unwrap().active, Some(1));
    assert_eq!(
        status.spec.unwrap().parallelism,
        Some(1),
        "a status write leaves spec alone"
    );

    let parallel = api
        .patch(
            "job",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"parallelism": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(
        parallel.metadata.generation,
        Some(2),
        "a spec change bumps the generation"
    );
    assert_eq!(parallel.status.unwrap().active, Some(1));
    ts.stop().await;
}

#[tokio::test]
async fn leases_serve_leader_election() {
    let ts = TestServer::start().await;
    let api: Api<Lease> = Api::namespaced(ts.client.clone(), "kube-node-lease");
    let lease = api
        .create(&PostParams::default(), &typed::<Lease>("Lease", "leader"))
        .await
        .unwrap();
    // Two candidates read the same version; only the first renewal wins.
    let mut first = lease.clone();
    first.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let mut second = lease.clone();
    second.spec.as_mut().unwrap().holder_identity = Some("c".into());
    api.replace("leader", &PostParams::default(), &first)
        .await
        .unwrap();
    let lost = status_of(api.replace("leader", &PostParams::default(), &second).await);
    assert_eq!((lost.code, lost.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        api.get("leader")
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("b")
    );
    ts.stop().await;
}

#[tokio::test]
async fn services_and_pods_get_upstream_defaults() {
    let ts = TestServer::start().await;
    let services: Api<Service> = Api::namespaced(ts.client.clone(), "default");
    let svc = services
        .create(&PostParams::default(), &typed::<Service>("Service", "web"))
        .await
        .unwrap();
    let spec = svc.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(spec.session_affinity.as_deref(), Some("None"));
    let port = &spec.ports.unwrap()[0];
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert_eq!(
        port.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(80)),
        "targetPort defaults to port"
    );

    let pods: Api<Pod> = Api::namespaced(ts.client.clone(), "default");
    let pod = pods
        .create(&PostParams::default(), &typed::<Pod>("Pod", "p"))
        .await
        .unwrap();
    let spec = pod.spec.unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(spec.termination_grace_period_seconds, Some(30));
    assert_eq!(spec.scheduler_name.as_deref(), Some("default-scheduler"));
    assert_eq!(
        spec.containers[0].image_pull_policy.as_deref(),
        Some("Always"),
        ":latest pulls Always"
    );
    let status = pod.status.unwrap();
    assert_eq!(
        (status.phase.as_deref(), status.qos_class.as_deref()),
        (Some("Pending"), Some("BestEffort"))
    );

    let invalid: Pod =
        serde_json::from_value(json!({"metadata": {"name": "empty"}, "spec": {"containers": []}}))
            .unwrap();
    let err = status_of(pods.create(&PostParams::default(), &invalid).await);
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.details
            .unwrap()
            .causes
            .iter()
            .any(|c| c.field == "spec.containers"),
        "the cause names the field"
    );
    ts.stop().await;
}
