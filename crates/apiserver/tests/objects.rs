//! Object semantics through kube-rs: CRUD, metadata, concurrency, status
//! and scale subresources, patches, deletion, namespaces, CRDs, errors.

mod common;

use common::{TestServer, is_not_found, status_of, wait_until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, Preconditions, PropagationPolicy,
};
use serde_json::{Value, json};

fn configmap(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"},
    }))
    .unwrap()
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap()
}

async fn namespace(ts: &TestServer, name: &str) {
    let api: Api<Namespace> = Api::all(ts.client.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn typed_crud_with_server_set_metadata() {
    let ts = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "default");
    let created = api
        .create(&PostParams::default(), &configmap("one", json!({})))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(
        meta.uid.as_deref().is_some_and(|u| u.len() == 36),
        "uid set: {meta:?}"
    );
    assert!(meta.creation_timestamp.is_some());
    assert!(
        meta.resource_version
            .as_deref()
            .is_some_and(|rv| rv.parse::<i64>().unwrap() > 0)
    );
    assert_eq!(meta.namespace.as_deref(), Some("default"));

    let got = api.get("one").await.unwrap();
    assert_eq!(
        got.metadata.resource_version,
        created.metadata.resource_version
    );

    let mut changed = got.clone();
    changed.data = Some([("k".to_string(), "w".to_string())].into());
    let replaced = api
        .replace("one", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        got.metadata.resource_version
    );
    assert_eq!(
        replaced.metadata.uid, created.metadata.uid,
        "uid is immutable"
    );

    // A stale resourceVersion is a conflict with upstream's reason and message.
    let stale = status_of(api.replace("one", &PostParams::default(), &changed).await);
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        stale.message,
        "Operation cannot be fulfilled on configmaps \"one\": the object has been modified; please apply your changes to the latest version and try again"
    );

    let exists = status_of(
        api.create(&PostParams::default(), &configmap("one", json!({})))
            .await,
    );
    assert_eq!(
        (exists.code, exists.reason.as_str()),
        (409, "AlreadyExists")
    );
    assert_eq!(exists.message, "configmaps \"one\" already exists");
    let details = exists.details.unwrap();
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("one", "configmaps")
    );

    api.delete("one", &DeleteParams::default()).await.unwrap();
    let missing = status_of(api.get("one").await);
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(missing.message, "configmaps \"one\" not found");
    ts.stop().await;
}

#[tokio::test]
async fn generate_name_and_invalid_names() {
    let ts = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "default");
    let generated: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let a = api
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let b = api
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let (a, b) = (a.metadata.name.unwrap(), b.metadata.name.unwrap());
    assert!(a.starts_with("gen-") && a.len() == 9, "{a}");
    assert_ne!(a, b);

    let invalid = status_of(
        api.create(&PostParams::default(), &configmap("Not_Valid", json!({})))
            .await,
    );
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));
    assert!(
        invalid
            .message
            .starts_with("ConfigMap \"Not_Valid\" is invalid: metadata.name: Invalid value"),
        "{}",
        invalid.message
    );
    let causes = invalid.details.unwrap().causes;
    assert_eq!(causes[0].field, "metadata.name");
    assert_eq!(causes[0].reason, "FieldValueInvalid");

    let bad_label = status_of(
        api.create(
            &PostParams::default(),
            &configmap("ok", json!({"bad key": "x"})),
        )
        .await,
    );
    assert_eq!(bad_label.code, 422);
    ts.stop().await;
}

#[tokio::test]
async fn namespaces_must_exist_and_not_be_terminating_and_deletion_cascades() {
    let ts = TestServer::start().await;
    let missing: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "nowhere");
    let err = status_of(
        missing
            .create(&PostParams::default(), &configmap("c", json!({})))
            .await,
    );
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert_eq!(err.message, "namespaces \"nowhere\" not found");

    namespace(&ts, "team").await;
    let api: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "team");
    api.create(&PostParams::default(), &configmap("keep", json!({})))
        .await
        .unwrap();
    Api::<Pod>::namespaced(ts.client.clone(), "team")
        .create(&PostParams::default(), &pod("p"))
        .await
        .unwrap();
    let secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "data": {"k": "dg=="}})).unwrap();
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(ts.client.clone(), "team")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    // A finalizer holds one object, and so the namespace, in Terminating.
    let mut held = configmap("held", json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();
    let namespaces: Api<Namespace> = Api::all(ts.client.clone());
    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();

    let terminating = wait_until("the namespace to be Terminating", || async {
        let ns = namespaces.get("team").await.ok()?;
        (ns.status?.phase.as_deref() == Some("Terminating")).then_some(())
    });
    terminating.await;
    let forbidden = status_of(
        api.create(&PostParams::default(), &configmap("late", json!({})))
            .await,
    );
    assert_eq!(
        (forbidden.code, forbidden.reason.as_str()),
        (403, "Forbidden")
    );
    assert!(
        forbidden.message.contains("because it is being terminated"),
        "{}",
        forbidden.message
    );

    wait_until("content without finalizers to be deleted", || async {
        let pods: Api<Pod> = Api::namespaced(ts.client.clone(), "team");
        let secrets: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(ts.client.clone(), "team");
        (is_not_found(api.get("keep").await)
            && is_not_found(pods.get("p").await)
            && is_not_found(secrets.get("s").await))
        .then_some(())
    })
    .await;
    let marked = api.get("held").await.unwrap();
    assert!(
        marked.metadata.deletion_timestamp.is_some(),
        "the held object is marked for deletion"
    );
    assert!(
        namespaces.get("team").await.is_ok(),
        "the namespace waits for its content"
    );

    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait_until("the namespace to be removed", || async {
        is_not_found(namespaces.get("team").await).then_some(())
    })
    .await;
    assert!(
        is_not_found(api.get("held").await),
        "the held object went with its last finalizer"
    );
    ts.stop().await;
}

#[tokio::test]
async fn pod_status_split_binding_and_graceful_deletion() {
    let ts = TestServer::start().await;
    let api: Api<Pod> = Api::namespaced(ts.client.clone(), "default");
    let created = api.create(&PostParams::default(), &pod("p")).await.unwrap();
    assert_eq!(
        created.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Pending")
    );
    assert_eq!(
        created
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref()),
        Some("Always"),
        "defaulted"
    );

    // A write to the main resource cannot change status...
    let mut main = created.clone();
    main.status.as_mut().unwrap().phase = Some("Running".into());
    main.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("x".into(), "y".into());
    let after_main = api
        .replace("p", &PostParams::default(), &main)
        .await
        .unwrap();
    assert_eq!(after_main.status.unwrap().phase.as_deref(), Some("Pending"));
    assert_eq!(after_main.metadata.labels.unwrap()["x"], "y");
    // ...and a status write cannot change spec.
    let status = api
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"activeDeadlineSeconds": 5}, "status": {"phase": "Running"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(status.status.unwrap().phase.as_deref(), Some("Running"));
    assert_eq!(
        status.spec.unwrap().active_deadline_seconds,
        None,
        "a status write leaves spec alone"
    );

    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "node-1"}});
    let _: Value = api
        .create_subresource("binding", "p", &PostParams::default(), &binding)
        .await
        .unwrap();
    let bound = api.get("p").await.unwrap();
    assert_eq!(
        bound.spec.as_ref().unwrap().node_name.as_deref(),
        Some("node-1")
    );
    let conditions = bound.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "PodScheduled" && c.status == "True")
    );
    let again = status_of(
        api.create_subresource::<_, Value>("binding", "p", &PostParams::default(), &binding)
            .await,
    );
    assert_eq!(again.code, 409);

    // A bound pod waits for its kubelet; grace period 0 removes it.
    api.delete("p", &DeleteParams::default()).await.unwrap();
    let terminating = api.get("p").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(30));
    api.delete(
        "p",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(status_of(api.get("p").await).code, 404);
    ts.stop().await;
}

#[tokio::test]
async fn delete_preconditions_finalizers_and_deletecollection() {
    let ts = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "default");
    let cm = api
        .create(&PostParams::default(), &configmap("pre", json!({})))
        .await
        .unwrap();
    let wrong_uid = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let err = status_of(api.delete("pre", &wrong_uid).await);
    assert_eq!(err.code, 409);
    assert!(
        err.message
            .contains("Precondition failed: UID in precondition: not-the-uid"),
        "{}",
        err.message
    );
    let wrong_rv = DeleteParams {
        preconditions: Some(Preconditions {
            uid: None,
            resource_version: Some("1".into()),
        }),
        ..DeleteParams::default()
    };
    assert_eq!(status_of(api.delete("pre", &wrong_rv).await).code, 409);
    let right = DeleteParams {
        preconditions: Some(Preconditions {
            uid: cm.metadata.uid.clone(),
            resource_version: cm.metadata.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    api.delete("pre", &right).await.unwrap();

    // Foreground propagation holds the object with its finalizer.
    api.create(&PostParams::default(), &configmap("fg", json!({})))
        .await
        .unwrap();
    let foreground = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..DeleteParams::default()
    };
    api.delete("fg", &foreground).await.unwrap();
    let held = api.get("fg").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    assert_eq!(
        held.metadata.finalizers.as_deref(),
        Some(&["foregroundDeletion".to_string()][..])
    );

    for (name, tier) in [("a", "x"), ("b", "x"), ("c", "y")] {
        api.create(
            &PostParams::default(),
            &configmap(name, json!({"tier": tier})),
        )
        .await
        .unwrap();
    }
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("tier=x"),
    )
    .await
    .unwrap();
    let left: Vec<String> = api
        .list(&ListParams::default().labels("tier"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(left, ["c"]);
    ts.stop().await;
}

#[tokio::test]
async fn patches_merge_json_and_strategic() {
    let ts = TestServer::start().await;
    let api: Api<Pod> = Api::namespaced(ts.client.clone(), "default");
    let mut two = pod("sp");
    two.spec
        .as_mut()
        .unwrap()
        .containers
        .push(serde_json::from_value(json!({"name": "side", "image": "side:1"})).unwrap());
    api.create(&PostParams::default(), &two).await.unwrap();

    let strategic =
        Patch::Strategic(json!({"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}));
    let patched = api
        .patch("sp", &PatchParams::default(), &strategic)
        .await
        .unwrap();
    let containers = patched.spec.unwrap().containers;
    assert_eq!(
        containers.len(),
        2,
        "strategic merge keeps the other container"
    );
    assert_eq!(containers[0].image.as_deref(), Some("busybox:2"));

    let merge = Patch::Merge(json!({"metadata": {"labels": {"m": "1", "app": null}}}));
    let merged = api
        .patch("sp", &PatchParams::default(), &merge)
        .await
        .unwrap();
    let labels = merged.metadata.labels.unwrap();
    assert_eq!(labels.get("m").map(String::as_str), Some("1"));
    assert!(!labels.contains_key("app"));

    let json_patch = br#"[{"op":"add","path":"/metadata/annotations","value":{"j":"1"}}]"#.to_vec();
    let request = http::Request::patch("/api/v1/namespaces/default/pods/sp")
        .header("content-type", "application/json-patch+json")
        .body(json_patch)
        .unwrap();
    let (code, body) = ts.raw(&ts.client, request).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["metadata"]["annotations"]["j"], "1");

    let failing = br#"[{"op":"test","path":"/metadata/name","value":"other"}]"#.to_vec();
    let request = http::Request::patch("/api/v1/namespaces/default/pods/sp")
        .header("content-type", "application/json-patch+json")
        .body(failing)
        .unwrap();
    let (code, body) = ts.raw(&ts.client, request).await;
    assert_eq!(code, 422, "{body}");
    let request = http::Request::patch("/api/v1/namespaces/default/pods/sp")
        .header("content-type", "application/merge-patch+json")
        .body(b"{not json".to_vec())
        .unwrap();
    let (code, body) = ts.raw(&ts.client, request).await;
    assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")));
    ts.stop().await;
}

#[tokio::test]
async fn deployments_generation_status_and_scale() {
    let ts = TestServer::start().await;
    let api: Api<Deployment> = Api::namespaced(ts.client.clone(), "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        }
    }))
    .unwrap();
    let created = api
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(
        created.spec.as_ref().unwrap().replicas,
        Some(1),
        "defaulted"
    );

    let labelled = api
        .patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        labelled.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );
    let status = api
        .patch_status(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 1, "readyReplicas": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(
        status.metadata.generation,
        Some(1),
        "status changes keep the generation"
    );
    let scaled = api
        .patch_scale(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(4));
    assert_eq!(
        scaled.status.as_ref().unwrap().selector.as_deref(),
        Some("app=d")
    );
    let after = api.get("d").await.unwrap();
    assert_eq!(after.spec.unwrap().replicas, Some(4));
    assert_eq!(
        after.metadata.generation,
        Some(2),
        "a spec change bumps the generation"
    );
    assert_eq!(
        api.get_scale("d").await.unwrap().status.unwrap().replicas,
        1
    );

    let mismatched: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "bad"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {"metadata": {"labels": {"app": "y"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}
    }))
    .unwrap();
    assert_eq!(
        status_of(api.create(&PostParams::default(), &mismatched).await).code,
        422
    );
    ts.stop().await;
}

#[tokio::test]
async fn custom_resources_from_a_crd() {
    let ts = TestServer::start().await;
    let crds: Api<DynamicObject> = Api::all_with(
        ts.client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    for (plural, kind, scope) in [
        ("widgets", "Widget", "Namespaced"),
        ("gadgets", "Gadget", "Cluster"),
    ] {
        let crd: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.example.com")},
            "spec": {
                "group": "example.com",
                "scope": scope,
                "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind, "shortNames": [&plural[..2]]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                              "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                              "subresources": {"status": {}}}]
            }
        }))
        .unwrap();
        let created = crds.create(&PostParams::default(), &crd).await.unwrap();
        let conditions = created.data["status"]["conditions"]
            .as_array()
            .unwrap()
            .clone();
        assert!(
            conditions
                .iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        );
    }

    let widget_ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> =
        Api::namespaced_with(ts.client.clone(), "default", &widget_ar);
    let w = DynamicObject::new("w1", &widget_ar)
        .data(json!({"spec": {"size": 3}, "status": {"ignored": true}}));
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert!(
        created.data.get("status").is_none(),
        "status is dropped on create with a status subresource"
    );
    assert_eq!(created.metadata.generation, Some(1));
    let status = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}, "spec": {"size": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(status.data["status"]["ready"], true);
    assert_eq!(
        status.data["spec"]["size"], 3,
        "a status write leaves spec alone"
    );
    let spec = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 5}, "status": {"ready": false}})),
        )
        .await
        .unwrap();
    assert_eq!(
        spec.data["status"]["ready"], true,
        "a main write leaves status alone"
    );
    assert_eq!(spec.metadata.generation, Some(2));
    let strategic = status_of(
        widgets
            .patch(
                "w1",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {}})),
            )
            .await,
    );
    assert_eq!(strategic.code, 415);

    let gadget_ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Gadget"),
        "gadgets",
    );
    let gadgets: Api<DynamicObject> = Api::all_with(ts.client.clone(), &gadget_ar);
    gadgets
        .create(
            &PostParams::default(),
            &DynamicObject::new("g1", &gadget_ar).data(json!({"spec": {}})),
        )
        .await
        .unwrap();
    assert_eq!(
        gadgets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    let discovery = kube::Discovery::new(ts.client.clone()).run().await.unwrap();
    assert!(
        discovery.groups().any(|g| g.name() == "example.com"),
        "discovery serves the CRD's group"
    );

    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    let gone = status_of(widgets.list(&ListParams::default()).await);
    assert_eq!(
        gone.code, 404,
        "the deleted CRD's resources are no longer served"
    );
    ts.stop().await;
}

#[tokio::test]
async fn core_and_events_api_share_events() {
    let ts = TestServer::start().await;
    let core: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(ts.client.clone(), "default");
    let event: k8s_openapi::api::core::v1::Event = serde_json::from_value(json!({
        "metadata": {"name": "e1"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Pulled", "message": "pulled it", "type": "Normal",
    }))
    .unwrap();
    core.create(&PostParams::default(), &event).await.unwrap();
    let v1: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(ts.client.clone(), "default");
    let seen = v1.get("e1").await.unwrap();
    assert_eq!(seen.note.as_deref(), Some("pulled it"));
    assert_eq!(seen.regarding.unwrap().name.as_deref(), Some("p"));
    let written: k8s_openapi::api::events::v1::Event = serde_json::from_value(json!({
        "metadata": {"name": "e2"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "regarding": {"kind": "Node", "name": "n1"},
        "reason": "Ready", "note": "node ready", "type": "Normal", "action": "Start",
        "reportingController": "kstress", "reportingInstance": "kstress-1",
    }))
    .unwrap();
    v1.create(&PostParams::default(), &written).await.unwrap();
    let as_core = core.get("e2").await.unwrap();
    assert_eq!(as_core.message.as_deref(), Some("node ready"));
    assert_eq!(as_core.involved_object.name.as_deref(), Some("n1"));
    ts.stop().await;
}

#[tokio::test]
async fn finalizers_hold_a_deleted_object_until_removed() {
    let ts = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "default");
    let mut held = configmap("held", json!({}));
    held.metadata.finalizers = Some(vec!["example.com/a".into(), "example.com/b".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();

    let deleted = api.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = deleted
        .left()
        .expect("a held object is answered with the object, not a Status");
    assert!(
        marked.metadata.deletion_timestamp.is_some(),
        "deletionTimestamp set"
    );
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(0));
    let stored = api.get("held").await.unwrap();
    assert_eq!(
        stored.metadata.deletion_timestamp,
        marked.metadata.deletion_timestamp
    );

    // A second delete changes nothing and succeeds.
    let again = api.delete("held", &DeleteParams::default()).await.unwrap();
    let again = again.left().expect("still held");
    assert_eq!(
        again.metadata.deletion_timestamp,
        marked.metadata.deletion_timestamp
    );
    // The deletion mark cannot be undone by a client.
    let mut revived = api.get("held").await.unwrap();
    revived.metadata.deletion_timestamp = None;
    revived.data = Some([("k".to_string(), "changed".to_string())].into());
    let kept = api
        .replace("held", &PostParams::default(), &revived)
        .await
        .unwrap();
    assert!(
        kept.metadata.deletion_timestamp.is_some(),
        "deletionTimestamp survives updates"
    );

    let one_left = api
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/b"]}})),
        )
        .await
        .unwrap();
    assert_eq!(
        one_left.metadata.finalizers.as_deref(),
        Some(&["example.com/b".to_string()][..])
    );
    assert!(
        api.get("held").await.is_ok(),
        "one finalizer still holds it"
    );
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": []}})),
    )
    .await
    .unwrap();
    assert!(
        is_not_found(api.get("held").await),
        "removing the last finalizer deletes the object"
    );
    ts.stop().await;
}

#[tokio::test]
async fn propagation_policies_are_accepted() {
    let ts = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "default");
    api.create(&PostParams::default(), &configmap("bg", json!({})))
        .await
        .unwrap();
    let background = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    api.delete("bg", &background).await.unwrap();
    assert!(
        is_not_found(api.get("bg").await),
        "background deletion removes the object at once"
    );

    // Orphaning is the garbage collector's job: the object waits for it
    // with the orphan finalizer.
    api.create(&PostParams::default(), &configmap("orphan", json!({})))
        .await
        .unwrap();
    let orphan = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..DeleteParams::default()
    };
    api.delete("orphan", &orphan).await.unwrap();
    let held = api.get("orphan").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    assert_eq!(
        held.metadata.finalizers.as_deref(),
        Some(&["orphan".to_string()][..])
    );

    let request = http::Request::delete("/api/v1/namespaces/default/configmaps/orphan")
        .header("content-type", "application/json")
        .body(br#"{"propagationPolicy":"Sideways"}"#.to_vec())
        .unwrap();
    let (code, body) = ts.raw(&ts.client, request).await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (422, Some("Invalid")),
        "an unknown policy is refused: {body}"
    );
    ts.stop().await;
}

#[tokio::test]
async fn pod_status_writes_may_change_labels_like_upstream() {
    // Upstream's pod status strategy resets spec, deletionTimestamp and
    // ownerReferences only; labels and annotations written through
    // pods/status are kept (kubelets and controllers rely on neither way,
    // but clients see it).
    let ts = TestServer::start().await;
    let api: Api<Pod> = Api::namespaced(ts.client.clone(), "default");
    api.create(&PostParams::default(), &pod("p")).await.unwrap();
    let status = api
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"z": "1"}}, "status": {"phase": "Running"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(status.status.unwrap().phase.as_deref(), Some("Running"));
    assert_eq!(
        status.metadata.labels.unwrap().get("z").map(String::as_str),
        Some("1")
    );
    ts.stop().await;
}

#[tokio::test]
async fn a_pod_spec_is_immutable_but_its_images() {
    let ts = TestServer::start().await;
    let api: Api<Pod> = Api::namespaced(ts.client.clone(), "default");
    api.create(&PostParams::default(), &pod("fixed"))
        .await
        .unwrap();
    let image = api
        .patch(
            "fixed",
            &PatchParams::default(),
            // Strategic: the container keeps its defaulted fields (a merge
            // patch would replace the list and default imagePullPolicy
            // anew, which upstream refuses too).
            &Patch::Strategic(
                json!({"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        image.spec.unwrap().containers[0].image.as_deref(),
        Some("busybox:2")
    );
    let refused = status_of(
        api.patch(
            "fixed",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"restartPolicy": "Never"}})),
        )
        .await,
    );
    assert_eq!((refused.code, refused.reason.as_str()), (422, "Invalid"));
    assert!(
        refused.message.starts_with(
            "Pod \"fixed\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        ),
        "{}",
        refused.message
    );
    let mut replaced = api.get("fixed").await.unwrap();
    replaced.spec.as_mut().unwrap().node_name = Some("elsewhere".into());
    let refused = status_of(
        api.replace("fixed", &PostParams::default(), &replaced)
            .await,
    );
    assert_eq!(refused.code, 422, "{}", refused.message);
    ts.stop().await;
}

#[tokio::test]
async fn cluster_scoped_custom_resources_with_status() {
    let ts = TestServer::start().await;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(ts.client.clone());
    let crd = serde_json::from_value(json!({
        "metadata": {"name": "clusters.infra.example.com"},
        "spec": {
            "group": "infra.example.com",
            "scope": "Cluster",
            "names": {"plural": "clusters", "singular": "cluster", "kind": "Cluster"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                          "subresources": {"status": {}}}]
        }
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("infra.example.com", "v1", "Cluster"),
        "clusters",
    );
    let clusters: Api<DynamicObject> = Api::all_with(ts.client.clone(), &ar);
    // Serving starts with the CRD's Established condition; wait for it the
    // way a client would.
    wait_until("the custom resource to be served", || async {
        clusters.list(&ListParams::default()).await.ok().map(|_| ())
    })
    .await;
    let created = clusters
        .create(
            &PostParams::default(),
            &DynamicObject::new("c1", &ar).data(json!({"spec": {"size": 1}})),
        )
        .await
        .unwrap();
    assert!(
        created.metadata.namespace.is_none(),
        "cluster-scoped objects have no namespace"
    );
    assert_eq!(created.metadata.generation, Some(1));
    let status = clusters
        .patch_status(
            "c1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}, "spec": {"size": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(status.data["status"]["phase"], "Ready");
    assert_eq!(
        status.data["spec"]["size"], 1,
        "a status write leaves spec alone"
    );
    assert_eq!(
        status.metadata.generation,
        Some(1),
        "a status write keeps the generation"
    );
    let spec = clusters
        .patch(
            "c1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 3}, "status": {"phase": "Lost"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        spec.data["status"]["phase"], "Ready",
        "a main write leaves status alone"
    );
    assert_eq!(
        spec.metadata.generation,
        Some(2),
        "a spec change bumps the generation"
    );
    let fetched = clusters.get_status("c1").await.unwrap();
    assert_eq!(fetched.data["status"]["phase"], "Ready");
    let namespaced = http::Request::get("/apis/infra.example.com/v1/namespaces/default/clusters")
        .body(Vec::new())
        .unwrap();
    let (code, _) = ts.raw(&ts.client, namespaced).await;
    assert_eq!(
        code, 404,
        "a cluster-scoped resource has no namespaced path"
    );
    ts.stop().await;
}
