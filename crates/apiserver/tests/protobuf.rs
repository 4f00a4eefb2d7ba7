//! `application/vnd.kubernetes.protobuf` with real clients: kubectl's
//! typed `create` commands send protobuf bodies, and GET, LIST and WATCH
//! with a protobuf Accept header answer what k8s-pb decodes.

mod common;

use common::{TestServer, WAIT};
use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, PostParams};
use prost::Message;
use serde_json::json;

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// Runs kubectl against the server and insists that it succeeds.
async fn kubectl(ts: &TestServer, dir: &std::path::Path, args: &[&str]) -> String {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, ts.server.kubeconfig()).expect("write kubeconfig");
    let output = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish within {WAIT:?}"))
    .expect("kubectl (v1.32) must be on PATH");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "kubectl {args:?} failed: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn kubectl_creates_workloads_and_services_in_protobuf() {
    let ts = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let ns = ["-n", "default"];
    kubectl(
        &ts,
        dir,
        &[
            &ns[..],
            &[
                "create",
                "deployment",
                "web",
                "--image=nginx",
                "--replicas=0",
            ],
        ]
        .concat(),
    )
    .await;
    kubectl(
        &ts,
        dir,
        &[
            &ns[..],
            &["create", "job", "once", "--image=busybox", "--", "true"],
        ]
        .concat(),
    )
    .await;
    kubectl(
        &ts,
        dir,
        &[
            &ns[..],
            &["create", "service", "clusterip", "front", "--tcp=80:8080"],
        ]
        .concat(),
    )
    .await;
    kubectl(
        &ts,
        dir,
        &[
            &ns[..],
            &[
                "create",
                "cronjob",
                "tick",
                "--image=busybox",
                "--schedule=*/5 * * * *",
            ],
        ]
        .concat(),
    )
    .await;

    let client = ts.client.clone();
    let deployment = Api::<Deployment>::namespaced(client.clone(), "default")
        .get("web")
        .await
        .unwrap();
    let spec = deployment.spec.unwrap();
    // An explicit zero survives: replicas is a pointer in Go.
    assert_eq!(spec.replicas, Some(0));
    assert_eq!(
        spec.selector.match_labels.unwrap()["app"],
        "web",
        "kubectl's selector"
    );
    let container = &spec.template.spec.unwrap().containers[0];
    assert_eq!(
        (container.name.as_str(), container.image.as_deref()),
        ("nginx", Some("nginx"))
    );
    // Unset non-pointer fields (empty strings, zero Times) stay absent.
    let meta = &deployment.metadata;
    assert!(meta.generate_name.is_none());
    assert!(meta.creation_timestamp.is_some(), "set by the server");

    let job = Api::<Job>::namespaced(client.clone(), "default")
        .get("once")
        .await
        .unwrap();
    let pod_spec = job.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod_spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(
        pod_spec.containers[0].command,
        Some(vec!["true".to_string()])
    );

    let service = Api::<Service>::namespaced(client.clone(), "default")
        .get("front")
        .await
        .unwrap();
    let port = &service.spec.unwrap().ports.unwrap()[0];
    assert_eq!(port.port, 80);
    assert_eq!(
        port.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080))
    );

    let cronjob = Api::<CronJob>::namespaced(client.clone(), "default")
        .get("tick")
        .await
        .unwrap();
    assert_eq!(cronjob.spec.unwrap().schedule, "*/5 * * * *");

    // And kubectl reads them back (in JSON, as `-o json` asks).
    let listed = kubectl(
        &ts,
        dir,
        &[
            "-n",
            "default",
            "get",
            "deployments,jobs,services,cronjobs",
            "-o",
            "name",
        ],
    )
    .await;
    for name in [
        "deployment.apps/web",
        "job.batch/once",
        "service/front",
        "cronjob.batch/tick",
    ] {
        assert!(listed.contains(name), "{name} in {listed}");
    }
    kubectl(&ts, dir, &["-n", "default", "delete", "service", "front"]).await;

    // The kinds kubectl sent in protobuf before every kind had messages.
    kubectl(&ts, dir, &["create", "namespace", "team"]).await;
    kubectl(
        &ts,
        dir,
        &[
            "-n",
            "team",
            "create",
            "configmap",
            "cm",
            "--from-literal=greeting=hi",
        ],
    )
    .await;
    kubectl(
        &ts,
        dir,
        &[
            "-n",
            "team",
            "create",
            "secret",
            "generic",
            "s",
            "--from-literal=password=hunter2",
        ],
    )
    .await;
    kubectl(
        &ts,
        dir,
        &[
            "create",
            "clusterrole",
            "reader",
            "--verb=get,list",
            "--resource=pods",
        ],
    )
    .await;
    let (code, cm) = ts.get("/api/v1/namespaces/team/configmaps/cm").await;
    assert_eq!((code, &cm["data"]), (200, &json!({"greeting": "hi"})));
    let (_, secret) = ts.get("/api/v1/namespaces/team/secrets/s").await;
    assert_eq!(secret["data"]["password"], "aHVudGVyMg==");
    let (_, role) = ts
        .get("/apis/rbac.authorization.k8s.io/v1/clusterroles/reader")
        .await;
    assert_eq!(
        role["rules"],
        json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}])
    );
    ts.stop().await;
}

/// A GET-like request with a protobuf Accept header; (code, content type,
/// body).
async fn get_protobuf(ts: &TestServer, path: &str) -> (u16, String, Vec<u8>) {
    let request = http::Request::get(path)
        .header(http::header::ACCEPT, format!("{PROTOBUF}, */*"))
        .body(kube::client::Body::empty())
        .unwrap();
    let response = ts.client.send(request).await.expect("request sent");
    let code = response.status().as_u16();
    let content_type = response.headers()[http::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    let body = response.into_body().collect_bytes().await.unwrap().to_vec();
    (code, content_type, body)
}

/// The message inside a `k8s\0` + runtime.Unknown envelope.
fn unwrap(body: &[u8]) -> (String, Vec<u8>) {
    let envelope = body.strip_prefix(b"k8s\0").expect("the protobuf magic");
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(envelope).unwrap();
    (
        unknown.type_meta.unwrap().kind.unwrap_or_default(),
        unknown.raw.unwrap_or_default(),
    )
}

#[tokio::test]
async fn pods_get_list_and_watch_in_protobuf() {
    let ts = TestServer::start().await;
    let pods: Api<Pod> = Api::namespaced(ts.client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "main", "image": "nginx",
                 "resources": {"requests": {"cpu": "250m"}},
                 "ports": [{"containerPort": 80}]}]},
    }))
    .unwrap();
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();

    let (code, content_type, body) = get_protobuf(&ts, "/api/v1/namespaces/default/pods/web").await;
    assert_eq!((code, content_type.as_str()), (200, PROTOBUF));
    let (kind, raw) = unwrap(&body);
    assert_eq!(kind, "Pod");
    let got = k8s_pb::api::core::v1::Pod::decode(raw.as_slice()).unwrap();
    let meta = got.metadata.unwrap();
    assert_eq!(meta.name.as_deref(), Some("web"));
    assert_eq!(meta.uid, created.metadata.uid);
    assert_eq!(meta.resource_version, created.metadata.resource_version);
    let created_at = created.metadata.creation_timestamp.unwrap().0.as_second();
    assert_eq!(meta.creation_timestamp.unwrap().seconds, Some(created_at));
    let container = &got.spec.unwrap().containers[0];
    assert_eq!(
        container.resources.as_ref().unwrap().requests["cpu"]
            .string
            .as_deref(),
        Some("250m")
    );

    let (code, _, body) = get_protobuf(&ts, "/api/v1/namespaces/default/pods").await;
    assert_eq!(code, 200);
    let (kind, raw) = unwrap(&body);
    assert_eq!(kind, "PodList");
    let list = k8s_pb::api::core::v1::PodList::decode(raw.as_slice()).unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.unwrap().resource_version.is_some());

    // A watch from the start: the pod's ADDED event, framed by length.
    let request =
        http::Request::get("/api/v1/namespaces/default/pods?watch=true&resourceVersion=0")
            .header(http::header::ACCEPT, format!("{PROTOBUF}, */*"))
            .body(kube::client::Body::empty())
            .unwrap();
    let response = ts.client.send(request).await.unwrap();
    assert_eq!(
        response.headers()[http::header::CONTENT_TYPE],
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    let mut body = response.into_body();
    let mut buffered = Vec::new();
    let event = tokio::time::timeout(WAIT, async {
        loop {
            if buffered.len() >= 4 {
                let len = u32::from_be_bytes(buffered[..4].try_into().unwrap()) as usize;
                if buffered.len() >= 4 + len {
                    break k8s_pb::apimachinery::pkg::apis::meta::v1::WatchEvent::decode(
                        &buffered[4..4 + len],
                    )
                    .unwrap();
                }
            }
            let frame = body.frame().await.expect("the watch stays open").unwrap();
            if let Ok(data) = frame.into_data() {
                buffered.extend_from_slice(&data);
            }
        }
    })
    .await
    .expect("a watch event within the bound");
    assert_eq!(event.r#type.as_deref(), Some("ADDED"));
    let (kind, raw) = unwrap(&event.object.unwrap().raw.unwrap());
    assert_eq!(kind, "Pod");
    let watched = k8s_pb::api::core::v1::Pod::decode(raw.as_slice()).unwrap();
    assert_eq!(watched.metadata.unwrap().name.as_deref(), Some("web"));
    drop(body);

    // JSON stays the answer to everything else, and Tables stay JSON.
    let (code, body) = ts.get("/api/v1/namespaces/default/pods/web").await;
    assert_eq!(
        (code, body["metadata"]["name"].as_str()),
        (200, Some("web"))
    );
    ts.stop().await;
}

#[tokio::test]
async fn custom_resources_are_json_only() {
    let ts = TestServer::start().await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
    });
    let (code, _) = ts
        .raw(
            &ts.client,
            http::Request::post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(crd.to_string().into_bytes())
                .unwrap(),
        )
        .await;
    assert_eq!(code, 201);
    let path = "/apis/example.com/v1/namespaces/default/widgets";
    let list = common::wait_until("the widgets resource", || async {
        let (code, _, body) = get_protobuf(&ts, path).await;
        (code == 200).then_some(body)
    })
    .await;
    // client-go's `protobuf, */*` gets JSON; protobuf alone is refused.
    assert!(serde_json::from_slice::<serde_json::Value>(&list).is_ok());
    let (code, _) = ts
        .raw(
            &ts.client,
            http::Request::get(path)
                .header(http::header::ACCEPT, PROTOBUF)
                .body(Vec::new())
                .unwrap(),
        )
        .await;
    assert_eq!(code, 406);
    ts.stop().await;
}
