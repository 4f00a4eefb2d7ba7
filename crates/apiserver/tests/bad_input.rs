//! Bad input through the HTTP API: each kind gets the Status upstream
//! answers with, and the server keeps serving afterwards.

mod common;

use apiserver::{Limits, ServerConfig};
use common::TestServer;
use serde_json::{Value, json};

const CMS: &str = "/api/v1/namespaces/default/configmaps";

fn request(
    method: &str,
    path: &str,
    content_type: &str,
    body: impl Into<Vec<u8>>,
) -> http::Request<Vec<u8>> {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(body.into())
        .unwrap()
}

fn create(body: impl Into<Vec<u8>>) -> http::Request<Vec<u8>> {
    request("POST", CMS, "application/json", body)
}

fn patch(content_type: &str, body: impl Into<Vec<u8>>) -> http::Request<Vec<u8>> {
    request("PATCH", &format!("{CMS}/target"), content_type, body)
}

/// `depth` nested arrays: `[[[...]]]`.
fn nested_arrays(depth: usize) -> Vec<u8> {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
}

/// `depth` nested objects: `{"a":{"a":...1...}}`.
fn nested_objects(depth: usize) -> Vec<u8> {
    format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)).into_bytes()
}

/// Sends a request that must fail; checks its code, reason and (when
/// given) message, then that the server still answers a list.
async fn refused(
    ts: &TestServer,
    request: http::Request<Vec<u8>>,
    code: u16,
    reason: &str,
    message: Option<&str>,
) -> Value {
    let what = format!("{} {}", request.method(), request.uri());
    let (got, body) = ts.raw(&ts.client, request).await;
    assert_eq!(got, code, "{what}: {body}");
    assert_eq!(body["kind"], "Status", "{what}: {body}");
    assert_eq!(body["reason"], reason, "{what}: {body}");
    assert_eq!(body["code"], code, "{what}: {body}");
    if let Some(message) = message {
        assert_eq!(body["message"], message, "{what}");
    }
    let (after, list) = ts.get(CMS).await;
    assert_eq!(after, 200, "the server serves after {what}: {list}");
    body
}

#[tokio::test]
async fn malformed_and_mismatched_bodies() {
    let ts = TestServer::start().await;
    let body = refused(
        &ts,
        create(&b"{\"metadata\": "[..]),
        400,
        "BadRequest",
        None,
    )
    .await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("the body of the request could not be decoded as JSON"),
        "{body}"
    );
    refused(&ts, create(&b"{} trailing"[..]), 400, "BadRequest", None).await;
    refused(
        &ts,
        create(
            json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
                .to_string(),
        ),
        400,
        "BadRequest",
        Some("the API version in the data (apps/v1) does not match the expected API version (v1)"),
    )
    .await;
    refused(
        &ts,
        create(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}).to_string()),
        400,
        "BadRequest",
        Some("the kind in the data (Pod) does not match the expected kind (ConfigMap)"),
    )
    .await;
    refused(&ts, create(&b"[1, 2]"[..]), 400, "BadRequest", None).await;

    let (code, _) = ts
        .raw(
            &ts.client,
            create(json!({"metadata": {"name": "target"}}).to_string()),
        )
        .await;
    assert_eq!(code, 201);
    let put = |body: Value| {
        request(
            "PUT",
            &format!("{CMS}/target"),
            "application/json",
            body.to_string(),
        )
    };
    refused(
        &ts,
        put(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "target"}})),
        400,
        "BadRequest",
        Some("the kind in the data (Secret) does not match the expected kind (ConfigMap)"),
    )
    .await;
    refused(
        &ts,
        put(json!({"metadata": {"name": "other"}})),
        400,
        "BadRequest",
        Some("the name of the object (other) does not match the name on the URL (target)"),
    )
    .await;
    refused(
        &ts,
        create(json!({"metadata": {"name": "x", "namespace": "kube-system"}}).to_string()),
        400,
        "BadRequest",
        Some(
            "the namespace of the provided object does not match the namespace sent on the request",
        ),
    )
    .await;
    ts.stop().await;
}

#[tokio::test]
async fn invalid_and_too_long_names() {
    let ts = TestServer::start().await;
    let body = refused(
        &ts,
        create(json!({"metadata": {"name": "Not_A_Name"}}).to_string()),
        422,
        "Invalid",
        None,
    )
    .await;
    assert_eq!(body["details"]["causes"][0]["field"], "metadata.name");
    let long = "a".repeat(254);
    let body = refused(
        &ts,
        create(json!({"metadata": {"name": long}}).to_string()),
        422,
        "Invalid",
        None,
    )
    .await;
    assert_eq!(
        body["details"]["causes"][0]["message"],
        format!("Invalid value: {long:?}: must be no more than 253 characters")
    );
    let body = refused(
        &ts,
        request(
            "POST",
            "/api/v1/namespaces",
            "application/json",
            json!({"metadata": {"name": "x".repeat(64)}}).to_string(),
        ),
        422,
        "Invalid",
        None,
    )
    .await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("must be no more than 63 characters"),
        "{body}"
    );
    ts.stop().await;
}

#[tokio::test]
async fn deeply_nested_json_is_refused_without_overflowing() {
    let ts = TestServer::start().await;
    let depth = 100_000;
    let body = refused(&ts, create(nested_arrays(depth)), 400, "BadRequest", None).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("recursion limit exceeded"),
        "{body}"
    );
    let object = format!(
        "{{\"metadata\": {{\"name\": \"deep\"}}, \"data\": {}}}",
        String::from_utf8(nested_objects(depth)).unwrap()
    );
    refused(&ts, create(object), 400, "BadRequest", None).await;

    let (code, _) = ts
        .raw(
            &ts.client,
            create(json!({"metadata": {"name": "target"}}).to_string()),
        )
        .await;
    assert_eq!(code, 201);
    for content_type in [
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ] {
        refused(
            &ts,
            patch(content_type, nested_objects(depth)),
            400,
            "BadRequest",
            None,
        )
        .await;
    }
    refused(
        &ts,
        patch("application/json-patch+json", nested_arrays(depth)),
        400,
        "BadRequest",
        None,
    )
    .await;
    let json_patch = format!(
        "[{{\"op\": \"add\", \"path\": \"/data/x\", \"value\": {}}}]",
        String::from_utf8(nested_objects(depth)).unwrap()
    );
    refused(
        &ts,
        patch("application/json-patch+json", json_patch),
        400,
        "BadRequest",
        None,
    )
    .await;
    refused(
        &ts,
        request(
            "DELETE",
            &format!("{CMS}/target"),
            "application/json",
            nested_objects(depth),
        ),
        400,
        "BadRequest",
        None,
    )
    .await;
    ts.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let ts = TestServer::with(ServerConfig {
        limits: Limits {
            max_body_bytes: 64 * 1024,
            ..Limits::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let big =
        json!({"metadata": {"name": "big"}, "data": {"x": "a".repeat(65 * 1024)}}).to_string();
    refused(
        &ts,
        create(big.clone()),
        413,
        "RequestEntityTooLarge",
        Some("Request entity too large: limit is 65536"),
    )
    .await;
    refused(
        &ts,
        patch("application/merge-patch+json", big),
        413,
        "RequestEntityTooLarge",
        None,
    )
    .await;
    ts.stop().await;
}

#[tokio::test]
async fn invalid_selectors_versions_and_tokens() {
    let ts = TestServer::start().await;
    let get = |path: String| http::Request::get(path).body(Vec::new()).unwrap();
    for selector in ["a%20in%20(", "a%3D%3D%3Db", "!", "a%20notin%20(x", "%3Dx"] {
        refused(
            &ts,
            get(format!("{CMS}?labelSelector={selector}")),
            400,
            "BadRequest",
            None,
        )
        .await;
    }
    refused(
        &ts,
        get(format!("{CMS}?fieldSelector=metadata.name")),
        400,
        "BadRequest",
        Some("invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
    )
    .await;
    refused(
        &ts,
        get("/api/v1/pods?fieldSelector=spec.unknown%3Dx".to_string()),
        400,
        "BadRequest",
        Some("field label not supported: spec.unknown"),
    )
    .await;
    for query in [
        "resourceVersion=abc",
        "watch=1&resourceVersion=abc",
        "resourceVersion=-5",
    ] {
        refused(&ts, get(format!("{CMS}?{query}")), 400, "BadRequest", None).await;
    }
    refused(
        &ts,
        get(format!("{CMS}?limit=abc")),
        400,
        "BadRequest",
        Some("invalid value for limit: \"abc\""),
    )
    .await;
    let body = refused(
        &ts,
        get(format!("{CMS}?limit=1&continue=abc")),
        400,
        "BadRequest",
        None,
    )
    .await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid continue token: "),
        "{body}"
    );
    // A well-formed token whose start key climbs out of the list.
    let escaping = apimachinery_token("../secrets/x");
    refused(
        &ts,
        get(format!("{CMS}?limit=1&continue={escaping}")),
        400,
        "BadRequest",
        None,
    )
    .await;
    ts.stop().await;
}

/// A continue token as the server encodes them, for a start key of our
/// choosing.
fn apimachinery_token(start: &str) -> String {
    use base64::Engine;
    let json = json!({"v": "meta.k8s.io/v1", "rv": 1, "start": start}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

#[tokio::test]
async fn unknown_resources_get_404() {
    let ts = TestServer::start().await;
    let get = |path: &str| http::Request::get(path).body(Vec::new()).unwrap();
    for path in [
        "/api/v1/nothings",
        "/api/v2/pods",
        "/apis/nogroup/v1/things",
        "/apis/apps/v1/namespaces/default/widgets/x",
        "/api/v1/namespaces/default/configmaps/x/nosub",
        "/api/v1/namespaces/default/nodes",
        "/nowhere",
    ] {
        refused(
            &ts,
            get(path),
            404,
            "NotFound",
            Some("the server could not find the requested resource"),
        )
        .await;
    }
    ts.stop().await;
}

#[tokio::test]
async fn invalid_patches() {
    let ts = TestServer::start().await;
    let (code, _) = ts
        .raw(
            &ts.client,
            create(json!({"metadata": {"name": "target"}, "data": {"a": "b"}}).to_string()),
        )
        .await;
    assert_eq!(code, 201);
    let json_patch = "application/json-patch+json";
    let merge = "application/merge-patch+json";
    let strategic = "application/strategic-merge-patch+json";
    refused(
        &ts,
        patch(json_patch, r#"{"op": "add"}"#),
        400,
        "BadRequest",
        None,
    )
    .await;
    refused(
        &ts,
        patch(json_patch, r#"[{"op": "jump", "path": "/a"}]"#),
        400,
        "BadRequest",
        None,
    )
    .await;
    refused(
        &ts,
        patch(
            json_patch,
            r#"[{"op": "test", "path": "/data/a", "value": "x"}]"#,
        ),
        422,
        "Invalid",
        None,
    )
    .await;
    refused(
        &ts,
        patch(json_patch, r#"[{"op": "remove", "path": "/data/missing"}]"#),
        422,
        "Invalid",
        None,
    )
    .await;
    refused(
        &ts,
        patch(merge, r#"{"data": "#),
        400,
        "BadRequest",
        Some("Invalid JSON Patch"),
    )
    .await;
    refused(&ts, patch(merge, "[1]"), 422, "Invalid", None).await;
    refused(&ts, patch(strategic, "{"), 400, "BadRequest", None).await;
    refused(
        &ts,
        patch(merge, r#"{"metadata": {"labels": {"bad key": "x"}}}"#),
        422,
        "Invalid",
        None,
    )
    .await;
    refused(
        &ts,
        patch("text/plain", "x"),
        415,
        "UnsupportedMediaType",
        None,
    )
    .await;
    let (code, body) = ts.get(&format!("{CMS}/target")).await;
    assert_eq!(
        (code, &body["data"]),
        (200, &json!({"a": "b"})),
        "no failed patch changed the object"
    );
    ts.stop().await;
}
