//! Authentication and authorization through real clients: anonymous
//! requests, token-file users, client certificates, and RBAC decisions with
//! upstream's 403 messages.

mod common;

use std::io::Write;

use apiserver::{AuthorizationMode, ServerConfig, TlsMaterial};
use base64::Engine;
use common::{TestServer, client_for, status_of, status_of_opt, wait_until};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

/// A kubeconfig for the test server with the given `user:` entry.
fn kubeconfig(ts: &TestServer, user: serde_json::Value) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {
            "server": ts.server.url(),
            "certificate-authority-data": b64(ts.server.ca_pem()),
        }}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    })
    .to_string()
}

async fn token_client(ts: &TestServer, token: &str) -> Client {
    client_for(&kubeconfig(ts, json!({"token": token}))).await
}

async fn certificate_client(
    ts: &TestServer,
    tls: &TlsMaterial,
    user: &str,
    groups: &[&str],
) -> Client {
    let identity = tls
        .issue_client_certificate(user, groups)
        .expect("the cluster CA signs client certificates");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    client_for(&kubeconfig(
        ts,
        json!({
            "client-certificate-data": b64(&identity.cert_pem),
            "client-key-data": b64(&identity.key_pem),
        }),
    ))
    .await
}

/// A token file with alice (no groups) and bob (groups team-a, team-b).
fn token_file() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    writeln!(file, "alice-token,alice,uid-alice").unwrap();
    writeln!(file, "bob-token,bob,uid-bob,\"team-a,team-b\"").unwrap();
    file
}

async fn rbac_server(tokens: &tempfile::NamedTempFile) -> TestServer {
    TestServer::with(ServerConfig {
        token_auth_file: Some(tokens.path().to_path_buf()),
        authorization: AuthorizationMode::Rbac,
        ..ServerConfig::default()
    })
    .await
}

#[tokio::test]
async fn anonymous_requests_reach_health_checks_only() {
    let tokens = token_file();
    let ts = rbac_server(&tokens).await;
    let anonymous = ts.anonymous_client();
    for path in ["/healthz", "/livez", "/readyz", "/readyz/ping"] {
        let (code, _) = ts
            .raw(
                &anonymous,
                http::Request::get(path).body(Vec::new()).unwrap(),
            )
            .await;
        assert_eq!(code, 200, "{path} answers anonymous probes");
    }
    for path in [
        "/version",
        "/api",
        "/apis",
        "/metrics",
        "/api/v1/pods",
        "/nowhere",
    ] {
        let (code, body) = ts
            .raw(
                &anonymous,
                http::Request::get(path).body(Vec::new()).unwrap(),
            )
            .await;
        assert_eq!(code, 401, "{path}: {body}");
        assert_eq!(
            body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "Unauthorized", "reason": "Unauthorized", "code": 401}),
            "{path}"
        );
    }
    let bad_token = http::Request::get("/healthz")
        .header("authorization", "Bearer nobody-has-this")
        .body(Vec::new())
        .unwrap();
    let (code, _) = ts.raw(&anonymous, bad_token).await;
    assert_eq!(code, 401, "a token nobody owns is refused even on /healthz");
    ts.stop().await;
}

#[tokio::test]
async fn rbac_grants_exactly_what_roles_bind() {
    let tokens = token_file();
    let ts = rbac_server(&tokens).await;
    let alice = token_client(&ts, "alice-token").await;
    let alice_configmaps: Api<ConfigMap> = Api::namespaced(alice.clone(), "default");

    // Nothing is bound to alice yet: a 403 worded as upstream's.
    let status = status_of(alice_configmaps.list(&ListParams::default()).await);
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        status.message,
        r#"configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" in the namespace "default""#
    );
    // Discovery is open to every authenticated user (system:discovery).
    alice.list_core_api_versions().await.expect("/api");
    alice.list_api_groups().await.expect("/apis");
    let (code, body) = ts
        .raw(
            &alice,
            http::Request::get("/metrics").body(Vec::new()).unwrap(),
        )
        .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        r#"forbidden: User "alice" cannot get path "/metrics""#
    );

    let roles: Api<Role> = Api::namespaced(ts.client.clone(), "default");
    let bindings: Api<RoleBinding> = Api::namespaced(ts.client.clone(), "default");
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "configmap-reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}],
    }))
    .unwrap();
    roles.create(&PostParams::default(), &role).await.unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "alice-reads"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "configmap-reader"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}],
    }))
    .unwrap();
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    wait_until("alice's binding to take effect", || async {
        alice_configmaps.list(&ListParams::default()).await.ok()
    })
    .await;
    let status = status_of(
        alice_configmaps
            .create(&PostParams::default(), &ConfigMap::default())
            .await,
    );
    assert_eq!(
        status.message,
        r#"configmaps is forbidden: User "alice" cannot create resource "configmaps" in API group "" in the namespace "default""#
    );
    let status = status_of(alice_configmaps.delete("x", &DeleteParams::default()).await);
    assert_eq!(
        status.message,
        r#"configmaps "x" is forbidden: User "alice" cannot delete resource "configmaps" in API group "" in the namespace "default""#
    );
    let elsewhere: Api<ConfigMap> = Api::namespaced(alice.clone(), "kube-system");
    let status = status_of(elsewhere.list(&ListParams::default()).await);
    assert_eq!(
        status.code, 403,
        "a Role grants nothing outside its namespace"
    );
    let all: Api<ConfigMap> = Api::all(alice.clone());
    let status = status_of(all.list(&ListParams::default()).await);
    assert_eq!(
        status.message,
        r#"configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" at the cluster scope"#
    );

    // Removing the binding takes the access away again.
    bindings
        .delete("alice-reads", &DeleteParams::default())
        .await
        .unwrap();
    wait_until("alice's access to end", || async {
        list_is_forbidden(&alice_configmaps).await.then_some(())
    })
    .await;
    ts.stop().await;
}

async fn list_is_forbidden(api: &Api<ConfigMap>) -> bool {
    matches!(api.list(&ListParams::default()).await, Err(kube::Error::Api(s)) if s.code == 403)
}

#[tokio::test]
async fn groups_cluster_roles_and_masters() {
    let tokens = token_file();
    let ts = rbac_server(&tokens).await;
    let bob = token_client(&ts, "bob-token").await;
    let bob_namespaces: Api<Namespace> = Api::all(bob.clone());
    let status = status_of(bob_namespaces.get("default").await);
    assert_eq!(
        status.message,
        r#"namespaces "default" is forbidden: User "bob" cannot get resource "namespaces" in API group "" in the namespace "default""#
    );

    let cluster_roles: Api<ClusterRole> = Api::all(ts.client.clone());
    let admin = cluster_roles
        .get("cluster-admin")
        .await
        .expect("a bootstrap ClusterRole");
    assert_eq!(
        admin.metadata.labels.unwrap_or_default()["kubernetes.io/bootstrapping"],
        "rbac-defaults"
    );
    let viewer: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "namespace-viewer"},
        "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list"]}],
    }))
    .unwrap();
    cluster_roles
        .create(&PostParams::default(), &viewer)
        .await
        .unwrap();
    let cluster_bindings: Api<ClusterRoleBinding> = Api::all(ts.client.clone());
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "team-a-views"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "namespace-viewer"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "team-a"}],
    }))
    .unwrap();
    cluster_bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    wait_until("bob's group binding to take effect", || async {
        bob_namespaces.get("default").await.ok()
    })
    .await;
    let status = status_of(
        bob_namespaces
            .delete("default", &DeleteParams::default())
            .await,
    );
    assert_eq!(status.code, 403);

    // A binding to a role that does not exist is named in the refusal.
    let dangling: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "dangling"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "no-such-role"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}],
    }))
    .unwrap();
    cluster_bindings
        .create(&PostParams::default(), &dangling)
        .await
        .unwrap();
    let message = wait_until("the dangling binding to be seen", || async {
        let status = status_of_opt(
            bob_namespaces
                .delete("default", &DeleteParams::default())
                .await,
        );
        status
            .map(|s| s.message)
            .filter(|m| m.contains("no-such-role"))
    })
    .await;
    assert!(
        message
            .ends_with(r#": RBAC: clusterrole.rbac.authorization.k8s.io "no-such-role" not found"#),
        "{message}"
    );

    // The admin token is in system:masters, which no binding is needed for.
    let namespaces: Api<Namespace> = Api::all(ts.client.clone());
    namespaces.list(&ListParams::default()).await.unwrap();
    ts.stop().await;
}

#[tokio::test]
async fn client_certificates_name_users_and_groups() {
    let ts = TestServer::with(ServerConfig {
        authorization: AuthorizationMode::Rbac,
        ..ServerConfig::default()
    })
    .await;
    let tls = ts.server.tls().clone();
    let root = certificate_client(&ts, &tls, "carol", &["system:masters"]).await;
    let namespaces: Api<Namespace> = Api::all(root.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "carols"}})).unwrap(),
        )
        .await
        .expect("a system:masters certificate may do anything");

    let dave = certificate_client(&ts, &tls, "dave", &["devs"]).await;
    let status = status_of(
        Api::<Namespace>::all(dave)
            .list(&ListParams::default())
            .await,
    );
    assert_eq!(
        status.message,
        r#"namespaces is forbidden: User "dave" cannot list resource "namespaces" in API group "" at the cluster scope"#
    );

    // A certificate from another CA does not get through the handshake.
    let stranger_ca = TlsMaterial::generate(&[]).unwrap();
    let stranger = stranger_ca
        .issue_client_certificate("eve", &["system:masters"])
        .unwrap();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let eve = client_for(&kubeconfig(
        &ts,
        json!({
            "client-certificate-data": b64(&stranger.cert_pem),
            "client-key-data": b64(&stranger.key_pem),
        }),
    ))
    .await;
    let result = Api::<Namespace>::all(eve)
        .list(&ListParams::default())
        .await;
    assert!(
        !matches!(result, Ok(_) | Err(kube::Error::Api(_))),
        "a foreign certificate must fail the TLS handshake: {result:?}"
    );
    ts.stop().await;
}

#[tokio::test]
async fn always_allow_lets_every_known_user_in() {
    let tokens = token_file();
    let ts = TestServer::with(ServerConfig {
        token_auth_file: Some(tokens.path().to_path_buf()),
        ..ServerConfig::default()
    })
    .await;
    let alice = token_client(&ts, "alice-token").await;
    let configmaps: Api<ConfigMap> = Api::namespaced(alice, "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "by-alice"}})).unwrap();
    configmaps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    configmaps
        .delete("by-alice", &DeleteParams::default())
        .await
        .unwrap();
    let (code, _) = ts
        .raw(
            &ts.anonymous_client(),
            http::Request::get("/api").body(Vec::new()).unwrap(),
        )
        .await;
    assert_eq!(code, 401, "AlwaysAllow still needs authentication");
    ts.stop().await;
}

#[tokio::test]
async fn a_broken_token_file_stops_the_server_from_starting() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "t1,alice").unwrap();
    let store = std::sync::Arc::new(store::MemoryStore::new(store::MemoryStoreOptions::default()));
    let result = apiserver::Server::start(
        store,
        ServerConfig {
            token_auth_file: Some(file.path().to_path_buf()),
            ..ServerConfig::default()
        },
    )
    .await;
    let Err(err) = result else {
        panic!("the server started with a broken token file");
    };
    assert!(
        err.to_string().ends_with(
            "line 1: must have at least 3 columns (token, user name, user uid), found 2"
        ),
        "{err}"
    );
}
