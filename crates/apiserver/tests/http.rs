//! The HTTP surface through real clients: health probes, authentication,
//! /version, discovery, /metrics, Status shapes of every error class, and
//! the request limits (413, 429).

mod common;

use bytes::Bytes;
use common::{TestServer, WAIT, status_of, wait_until};
use futures::SinkExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchParams};
use kube::discovery::Discovery;
use serde_json::{Value, json};

/// Checks the fields every failure Status carries, as metav1.Status.
fn assert_status_shape(body: &Value, code: u16, reason: &str) {
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["apiVersion"], "v1", "{body}");
    assert_eq!(body["status"], "Failure", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["reason"], reason, "{body}");
    assert!(body["metadata"].is_object(), "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

fn post(path: &str, body: Value) -> http::Request<Vec<u8>> {
    http::Request::post(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap()
}

fn put(path: &str, body: Value) -> http::Request<Vec<u8>> {
    http::Request::put(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap()
}

#[tokio::test]
async fn status_shapes_for_each_error_class() {
    let ts = TestServer::start().await;
    const CMS: &str = "/api/v1/namespaces/default/configmaps";

    // 404, core group: details name and kind (the resource), no group.
    let (code, body) = ts.get(&format!("{CMS}/missing")).await;
    assert_eq!(code, 404);
    assert_status_shape(&body, 404, "NotFound");
    assert_eq!(body["message"], "configmaps \"missing\" not found");
    assert_eq!(
        body["details"],
        json!({"name": "missing", "kind": "configmaps"})
    );
    // 404, named group: the group is part of the message and the details.
    let (code, body) = ts
        .get("/apis/apps/v1/namespaces/default/deployments/missing")
        .await;
    assert_eq!(code, 404);
    assert_status_shape(&body, 404, "NotFound");
    assert_eq!(body["message"], "deployments.apps \"missing\" not found");
    assert_eq!(
        body["details"],
        json!({"name": "missing", "group": "apps", "kind": "deployments"})
    );

    // 409 AlreadyExists and Conflict.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let (code, created) = ts.raw(&ts.client, post(CMS, cm.clone())).await;
    assert_eq!(code, 201, "{created}");
    let (code, body) = ts.raw(&ts.client, post(CMS, cm.clone())).await;
    assert_eq!(code, 409);
    assert_status_shape(&body, 409, "AlreadyExists");
    assert_eq!(body["details"], json!({"name": "c", "kind": "configmaps"}));
    let mut stale = created.clone();
    stale["data"] = json!({"k": "v"});
    let (code, _) = ts
        .raw(&ts.client, put(&format!("{CMS}/c"), stale.clone()))
        .await;
    assert_eq!(code, 200);
    let (code, body) = ts.raw(&ts.client, put(&format!("{CMS}/c"), stale)).await;
    assert_eq!(code, 409);
    assert_status_shape(&body, 409, "Conflict");
    assert_eq!(
        body["message"],
        "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(body["details"], json!({"name": "c", "kind": "configmaps"}));

    // 422: details carry the Kind (not the resource) and one cause per field.
    let invalid = json!({"metadata": {"name": "Bad_Name", "labels": {"bad key": "x"}}});
    let (code, body) = ts.raw(&ts.client, post(CMS, invalid)).await;
    assert_eq!(code, 422);
    assert_status_shape(&body, 422, "Invalid");
    assert_eq!(body["details"]["name"], "Bad_Name");
    assert_eq!(body["details"]["kind"], "ConfigMap");
    let causes = body["details"]["causes"].as_array().expect("causes");
    let fields: Vec<&str> = causes.iter().filter_map(|c| c["field"].as_str()).collect();
    assert!(fields.contains(&"metadata.name"), "{body}");
    assert!(
        fields.iter().any(|f| f.starts_with("metadata.labels")),
        "{body}"
    );
    assert!(
        causes
            .iter()
            .all(|c| c["reason"].as_str().is_some_and(|r| r.starts_with("Field"))),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("ConfigMap \"Bad_Name\" is invalid: "),
        "{body}"
    );
    let deployment = json!({"metadata": {"name": "d"}, "spec": {"selector": {}, "template": {}}});
    let (code, body) = ts
        .raw(
            &ts.client,
            post("/apis/apps/v1/namespaces/default/deployments", deployment),
        )
        .await;
    assert_eq!(code, 422);
    assert_eq!(
        (
            body["details"]["group"].as_str(),
            body["details"]["kind"].as_str()
        ),
        (Some("apps"), Some("Deployment"))
    );

    // 400: malformed input, a bad selector, a bad resourceVersion.
    let bad_json = http::Request::post(CMS)
        .header("content-type", "application/json")
        .body(b"{".to_vec())
        .unwrap();
    let (code, body) = ts.raw(&ts.client, bad_json).await;
    assert_eq!(code, 400);
    assert_status_shape(&body, 400, "BadRequest");
    let (code, body) = ts.get(&format!("{CMS}?labelSelector=a%20in%20(")).await;
    assert_eq!(code, 400);
    assert_status_shape(&body, 400, "BadRequest");
    let (code, body) = ts.get(&format!("{CMS}?fieldSelector=data.k%3Dv")).await;
    assert_eq!(code, 400);
    assert_status_shape(&body, 400, "BadRequest");
    assert_eq!(body["message"], "field label not supported: data.k");

    // 410: an expired continue token.
    let first = Api::<ConfigMap>::namespaced(ts.client.clone(), "default");
    first
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "d"}})).unwrap(),
        )
        .await
        .unwrap();
    let token = first
        .list(&ListParams::default().limit(1))
        .await
        .unwrap()
        .metadata
        .continue_
        .unwrap();
    first
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "e"}})).unwrap(),
        )
        .await
        .unwrap();
    let current = ts.server.store().current_revision().await.unwrap();
    ts.server.store().compact(current).await.unwrap();
    let (code, body) = ts.get(&format!("{CMS}?limit=1&continue={token}")).await;
    assert_eq!(code, 410);
    assert_status_shape(&body, 410, "Expired");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("The provided continue parameter is too old"),
        "{body}"
    );

    // Unknown paths and verbs.
    let (code, body) = ts.get("/api/v1/nothings").await;
    assert_eq!(code, 404);
    assert_status_shape(&body, 404, "NotFound");
    let (code, body) = ts.raw(&ts.client, put(CMS, json!({}))).await;
    assert_eq!(code, 405, "PUT on a collection: {body}");
    assert_status_shape(&body, 405, "MethodNotAllowed");
    ts.stop().await;
}

#[tokio::test]
async fn discovery_lists_every_group_and_crd_groups() {
    let ts = TestServer::start().await;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(ts.client.clone());
    let crd = serde_json::from_value(json!({
        "metadata": {"name": "gizmos.tools.example.com"},
        "spec": {
            "group": "tools.example.com",
            "scope": "Namespaced",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo", "shortNames": ["gz"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                          "subresources": {"status": {}}}]
        }
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();

    let discovery = wait_until("discovery to serve the CRD's group", || async {
        let discovery = Discovery::new(ts.client.clone()).run().await.ok()?;
        discovery
            .has_group("tools.example.com")
            .then_some(discovery)
    })
    .await;
    let expected = [
        (
            "",
            "v1",
            &[
                "namespaces",
                "pods",
                "configmaps",
                "secrets",
                "services",
                "serviceaccounts",
                "nodes",
                "events",
            ][..],
        ),
        ("events.k8s.io", "v1", &["events"][..]),
        ("coordination.k8s.io", "v1", &["leases"][..]),
        ("apps", "v1", &["deployments", "replicasets"][..]),
        ("batch", "v1", &["jobs"][..]),
        (
            "apiextensions.k8s.io",
            "v1",
            &["customresourcedefinitions"][..],
        ),
        ("tools.example.com", "v1", &["gizmos"][..]),
    ];
    for (group, version, plurals) in expected {
        let found = discovery
            .get(group)
            .unwrap_or_else(|| panic!("discovery lacks the group {group:?}"));
        assert_eq!(found.preferred_version_or_latest(), version, "{group}");
        let served: Vec<String> = found
            .resources_by_stability()
            .into_iter()
            .map(|(ar, _)| ar.plural)
            .collect();
        for plural in plurals {
            assert!(
                served.iter().any(|p| p == plural),
                "{group} lacks {plural}: {served:?}"
            );
        }
    }

    // Subresources are advertised the way kubectl looks for them.
    let (code, core) = ts.get("/api/v1").await;
    assert_eq!(code, 200);
    let names: Vec<&str> = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for sub in ["pods/status", "pods/binding", "nodes/status"] {
        assert!(names.contains(&sub), "/api/v1 lacks {sub}: {names:?}");
    }
    let (_, apps) = ts.get("/apis/apps/v1").await;
    let names: Vec<&str> = apps["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for sub in [
        "deployments/scale",
        "deployments/status",
        "replicasets/scale",
    ] {
        assert!(names.contains(&sub), "/apis/apps/v1 lacks {sub}: {names:?}");
    }
    let (_, tools) = ts.get("/apis/tools.example.com/v1").await;
    let gizmos = tools["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "gizmos")
        .unwrap();
    assert_eq!(
        (gizmos["kind"].as_str(), gizmos["namespaced"].as_bool()),
        (Some("Gizmo"), Some(true))
    );
    assert_eq!(gizmos["shortNames"], json!(["gz"]));
    let (code, api) = ts.get("/api").await;
    assert_eq!((code, api["kind"].as_str()), (200, Some("APIVersions")));
    assert_eq!(api["versions"], json!(["v1"]));
    ts.stop().await;
}

#[tokio::test]
async fn health_auth_version_and_metrics() {
    let ts = TestServer::start().await;
    let anonymous = ts.anonymous_client();
    for path in ["/healthz", "/livez", "/readyz"] {
        let (code, body) = ts
            .raw(
                &anonymous,
                http::Request::get(path).body(Vec::new()).unwrap(),
            )
            .await;
        assert_eq!(
            (code, body.as_str()),
            (200, Some("ok")),
            "{path} answers anonymous probes"
        );
    }
    let (code, body) = ts
        .raw(
            &anonymous,
            http::Request::get("/api/v1/namespaces")
                .body(Vec::new())
                .unwrap(),
        )
        .await;
    assert_eq!(code, 401);
    assert_status_shape(&body, 401, "Unauthorized");
    let wrong_token = http::Request::get("/api/v1/namespaces")
        .header("authorization", "Bearer not-the-token")
        .body(Vec::new())
        .unwrap();
    let (code, _) = ts.raw(&anonymous, wrong_token).await;
    assert_eq!(code, 401, "a wrong token is refused");

    let version = ts.client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "33")
    );
    assert!(
        version.git_version.starts_with("v1.33."),
        "{}",
        version.git_version
    );
    assert!(!version.platform.is_empty() && !version.go_version.is_empty());

    let configmaps: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "default");
    configmaps.list(&ListParams::default()).await.unwrap();
    let _missing = configmaps.get("missing").await;
    let _open_watch = configmaps
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap();
    let text = wait_until("/metrics to count the watch", || async {
        let (code, metrics) = ts.get("/metrics").await;
        assert_eq!(code, 200);
        let text = metrics.as_str().expect("metrics are text").to_string();
        text.lines()
            .any(|l| {
                l.starts_with("apiserver_registered_watchers{")
                    && l.contains("kind=\"ConfigMap\"")
                    && !l.ends_with(" 0")
            })
            .then_some(text)
    })
    .await;
    for name in [
        "apiserver_request_total{",
        "apiserver_request_duration_seconds_bucket{",
        "apiserver_current_inflight_requests{",
        "apiserver_registered_watchers{",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}");
    }
    let counted = |verb: &str, code: &str| {
        text.lines().any(|l| {
            l.starts_with("apiserver_request_total{")
                && l.contains(&format!("verb=\"{verb}\""))
                && l.contains("resource=\"configmaps\"")
                && l.contains(&format!("code=\"{code}\""))
        })
    };
    assert!(counted("LIST", "200"), "the list is counted:\n{text}");
    // Durations carry kube-apiserver's scope: the namespaced list is
    // `namespace`, the named get `resource`.
    let timed = |verb: &str, scope: &str| {
        text.lines().any(|l| {
            l.starts_with("apiserver_request_duration_seconds_count{")
                && l.contains(&format!("verb=\"{verb}\""))
                && l.contains("resource=\"configmaps\"")
                && l.contains(&format!("scope=\"{scope}\""))
                && l.contains("component=\"apiserver\"")
        })
    };
    assert!(timed("LIST", "namespace"), "{text}");
    assert!(timed("GET", "resource"), "{text}");
    assert!(counted("GET", "404"), "the failed get is counted:\n{text}");
    // Upstream's latency buckets start at 5ms and end at 60s.
    assert!(
        text.contains("le=\"0.005\"") && text.contains("le=\"60.0\""),
        "{text}"
    );
    ts.stop().await;
}

#[tokio::test]
async fn oversized_requests_and_objects_are_refused() {
    let ts = TestServer::start().await;
    const CMS: &str = "/api/v1/namespaces/default/configmaps";
    let huge = json!({"metadata": {"name": "big"}, "data": {"x": "a".repeat(4 << 20)}});
    let (code, body) = ts.raw(&ts.client, post(CMS, huge)).await;
    assert_eq!(code, 413, "a body over 3 MiB: {body}");
    let large = json!({"metadata": {"name": "large"}, "data": {"x": "a".repeat(2 << 20)}});
    let (code, body) = ts.raw(&ts.client, post(CMS, large)).await;
    assert_eq!(code, 413, "an object over 1.5 MiB: {body}");
    assert_status_shape(&body, 413, "RequestEntityTooLarge");
    let (code, _) = ts.get(&format!("{CMS}/large")).await;
    assert_eq!(code, 404, "nothing was stored");
    let fits = json!({"metadata": {"name": "fits"}, "data": {"x": "a".repeat(1 << 20)}});
    let (code, _) = ts.raw(&ts.client, post(CMS, fits)).await;
    assert_eq!(code, 201, "1 MiB objects are fine");

    let kind_mismatch = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}});
    let (code, body) = ts.raw(&ts.client, post(CMS, kind_mismatch)).await;
    assert_eq!(code, 400, "a kind that does not match the path: {body}");
    ts.stop().await;
}

#[tokio::test]
async fn an_oversized_body_over_http2_gets_its_413() {
    let ts = TestServer::start().await;
    let huge = json!({"metadata": {"name": "big"}, "data": {"x": "a".repeat(4 << 20)}});
    // hyper's own client waits for the answer; curl, like many HTTP/2
    // clients, reports a stream reset that arrives while it still sends.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let body = dir.path().join("body.json");
    std::fs::write(&ca, ts.server.ca_pem()).unwrap();
    std::fs::write(&body, huge.to_string()).unwrap();
    let url = format!("{}/api/v1/namespaces/default/configmaps", ts.server.url());
    let curl = tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--http2", "--cacert"])
        .arg(&ca)
        .args([
            "--header",
            &format!("Authorization: Bearer {}", ts.server.token()),
        ])
        .args([
            "--header",
            "Content-Type: application/json",
            "--data-binary",
        ])
        .arg(format!("@{}", body.display()))
        .arg(&url)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(WAIT, curl)
        .await
        .expect("curl answers within the wait")
        .expect("curl runs (Debian package curl)");
    assert!(
        output.status.success(),
        "curl got no answer: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_status_shape(&status, 413, "RequestEntityTooLarge");

    let mut sender = ts.http2().await;
    let request = http::Request::post("/api/v1/namespaces/default/configmaps")
        .header("authorization", format!("Bearer {}", ts.server.token()))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(huge.to_string())))
        .unwrap();
    let response = tokio::time::timeout(WAIT, sender.send_request(request))
        .await
        .expect("an answer within the wait")
        .expect("a response, not a reset stream");
    assert_eq!(response.status().as_u16(), 413);
    ts.stop().await;
}

/// Opens an HTTP/1.1 connection with its own TLS set-up and starts a POST
/// whose body is sent only when the returned sender is told to: the
/// request occupies a mutating in-flight slot until then.
async fn start_slow_post(
    ts: &TestServer,
    path: &str,
) -> (
    futures::channel::mpsc::Sender<Result<Frame<Bytes>, std::convert::Infallible>>,
    tokio::task::JoinHandle<u16>,
) {
    let tls = ts.tls_connection().await;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let (body_tx, body_rx) = futures::channel::mpsc::channel(1);
    let request = http::Request::post(path)
        .header("authorization", format!("Bearer {}", ts.server.token()))
        .header("content-type", "application/json")
        .body(StreamBody::new(body_rx))
        .unwrap();
    let response = tokio::spawn(async move {
        let response = sender.send_request(request).await.unwrap();
        let code = response.status().as_u16();
        response.into_body().collect().await.unwrap();
        code
    });
    (body_tx, response)
}

#[tokio::test]
async fn max_inflight_limits_answer_429_with_retry_after() {
    let ts = TestServer::with(apiserver::ServerConfig {
        limits: apiserver::Limits {
            max_mutating_inflight: 1,
            ..apiserver::Limits::default()
        },
        ..apiserver::ServerConfig::default()
    })
    .await;
    const CMS: &str = "/api/v1/namespaces/default/configmaps";
    let (mut body_tx, slow) = start_slow_post(&ts, CMS).await;
    wait_until("the slow POST to hold the mutating slot", || async {
        let (_, metrics) = ts.get("/metrics").await;
        let text = metrics.as_str().unwrap_or_default().to_string();
        text.lines()
            .any(|l| {
                l.starts_with("apiserver_current_inflight_requests{")
                    && l.contains("mutating")
                    && l.ends_with(" 1")
            })
            .then_some(())
    })
    .await;

    let (code, headers, body) = ts
        .raw_with_headers(
            &ts.client,
            post(CMS, json!({"metadata": {"name": "refused"}})),
        )
        .await;
    assert_eq!(code, 429, "{body}");
    assert_status_shape(&body, 429, "TooManyRequests");
    assert_eq!(
        headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(body["details"]["retryAfterSeconds"], 1);
    let (code, _) = ts.get(CMS).await;
    assert_eq!(code, 200, "read-only requests have their own limit");

    let cm = serde_json::to_vec(&json!({"metadata": {"name": "slow"}})).unwrap();
    body_tx
        .send(Ok(Frame::data(Bytes::from(cm))))
        .await
        .unwrap();
    drop(body_tx);
    let code = tokio::time::timeout(WAIT, slow)
        .await
        .expect("the slow POST finishes")
        .unwrap();
    assert_eq!(code, 201);
    let api: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "default");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "after"}})).unwrap(),
    )
    .await
    .expect("the slot is free again");
    assert_eq!(
        status_of(api.get("refused").await).code,
        404,
        "the refused request stored nothing"
    );
    ts.stop().await;
}

#[tokio::test]
async fn table_output_has_the_columns_kubectl_prints() {
    let ts = TestServer::start().await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(ts.client.clone(), "default");
    let pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let request = http::Request::get("/api/v1/namespaces/default/pods")
        .header(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Vec::new())
        .unwrap();
    let (code, table) = ts.raw(&ts.client, request).await;
    assert_eq!(code, 200);
    assert_eq!(
        (table["kind"].as_str(), table["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        columns,
        [
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "IP",
            "Node",
            "Nominated Node",
            "Readiness Gates"
        ]
    );
    let row = &table["rows"][0];
    assert_eq!(row["cells"].as_array().unwrap().len(), columns.len());
    assert_eq!(row["cells"][8], "<none>", "no readiness gates");
    assert_eq!(row["cells"][0], "p");
    assert_eq!(row["cells"][1], "0/2");
    assert_eq!(row["cells"][2], "Pending");

    let request = http::Request::get("/api/v1/nodes")
        .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .unwrap();
    let (code, table) = ts.raw(&ts.client, request).await;
    assert_eq!(code, 200);
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(columns.starts_with(&["Name", "Status"]), "{columns:?}");
    let wide: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["priority"] == 1)
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        wide,
        [
            "Internal-IP",
            "External-IP",
            "OS-Image",
            "Kernel-Version",
            "Container-Runtime"
        ],
        "what kubectl get nodes -o wide adds"
    );
    ts.stop().await;
}

#[tokio::test]
async fn aggregated_discovery_matches_the_per_group_documents() {
    use kube::client::{APIGroupDiscovery, APIResourceDiscovery};
    fn resource<'a>(group: &'a APIGroupDiscovery, plural: &str) -> &'a APIResourceDiscovery {
        group.versions[0]
            .resources
            .iter()
            .find(|r| r.resource.as_deref() == Some(plural))
            .unwrap_or_else(|| panic!("{plural} in {:?}", group.metadata))
    }
    fn subresources(resource: &APIResourceDiscovery) -> Vec<(String, String)> {
        resource
            .subresources
            .iter()
            .map(|s| {
                let kind = s.response_kind.as_ref().and_then(|k| k.kind.clone());
                (
                    s.subresource.clone().unwrap_or_default(),
                    kind.unwrap_or_default(),
                )
            })
            .collect()
    }
    let ts = TestServer::start().await;
    let groups = ts.client.list_api_groups_aggregated().await.unwrap();
    let group_name = |g: &APIGroupDiscovery| g.metadata.as_ref().and_then(|m| m.name.clone());
    assert!(
        groups.items.iter().all(|g| group_name(g).is_some()),
        "/apis lists named groups only"
    );
    let apps = groups
        .items
        .iter()
        .find(|g| group_name(g).as_deref() == Some("apps"))
        .expect("the apps group in /apis");
    assert_eq!(apps.versions[0].version.as_deref(), Some("v1"));
    let deployments = resource(apps, "deployments");
    assert_eq!(deployments.scope.as_deref(), Some("Namespaced"));
    assert_eq!(
        deployments
            .response_kind
            .as_ref()
            .and_then(|k| k.kind.as_deref()),
        Some("Deployment")
    );
    assert_eq!(deployments.short_names, ["deploy"]);
    assert_eq!(
        subresources(deployments),
        [
            ("scale".to_string(), "Scale".to_string()),
            ("status".to_string(), "Deployment".to_string())
        ]
    );

    let core = ts.client.list_core_api_versions_aggregated().await.unwrap();
    assert_eq!(core.items.len(), 1, "/api holds the core group alone");
    let pods = resource(&core.items[0], "pods");
    let pod_subresources: Vec<String> = subresources(pods).into_iter().map(|(s, _)| s).collect();
    assert_eq!(pod_subresources, ["binding", "status"]);
    assert_eq!(
        resource(&core.items[0], "nodes").scope.as_deref(),
        Some("Cluster")
    );

    // A client that resolves kinds through aggregated discovery finds the
    // same resources as one that walks every group version.
    let aggregated = Discovery::new(ts.client.clone())
        .run_aggregated()
        .await
        .unwrap();
    let walked = Discovery::new(ts.client.clone()).run().await.unwrap();
    let served = |d: &Discovery| -> Vec<String> {
        let mut all: Vec<String> = d
            .groups()
            .flat_map(|g| {
                g.recommended_resources()
                    .into_iter()
                    .map(|(ar, _)| format!("{}/{}", ar.api_version, ar.plural))
            })
            .collect();
        all.sort();
        all
    };
    assert_eq!(served(&aggregated), served(&walked));
    ts.stop().await;
}
