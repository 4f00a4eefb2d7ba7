//! Authorization: whether a user may make a request.
//!
//! Two modes, as kube-apiserver's `--authorization-mode`: `AlwaysAllow`
//! lets every authenticated user do anything; `RBAC` evaluates the Roles,
//! ClusterRoles, RoleBindings and ClusterRoleBindings the server stores
//! (rbac.authorization.k8s.io/v1) with upstream's matching rules, so that
//! in-cluster workers can run with least privilege. Members of
//! `system:masters` are allowed everything in both modes.
//!
//! RBAC decisions read an in-memory index that a background task rebuilds
//! from the watch caches whenever an RBAC object changes; like upstream's
//! informer-fed authorizer, a change takes effect shortly after it is
//! written, not atomically with it.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::Api;
use crate::authn::{AUTHENTICATED_GROUP, MASTERS_GROUP, UNAUTHENTICATED_GROUP, UserInfo};
use crate::error::{ApiError, Subject};
use crate::watchcache::{CacheWatch, Delivery, WatchCache, WatchStart};

/// The API group of the RBAC resources.
pub const GROUP: &str = "rbac.authorization.k8s.io";

/// How requests are authorized (`--authorization-mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthorizationMode {
    /// Every authenticated request is allowed.
    #[default]
    AlwaysAllow,
    /// Requests are allowed by RBAC rules only.
    Rbac,
}

impl FromStr for AuthorizationMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "AlwaysAllow" => Ok(AuthorizationMode::AlwaysAllow),
            "RBAC" => Ok(AuthorizationMode::Rbac),
            other => Err(format!(
                "unknown authorization mode {other:?}: expected AlwaysAllow or RBAC"
            )),
        }
    }
}

impl fmt::Display for AuthorizationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthorizationMode::AlwaysAllow => "AlwaysAllow",
            AuthorizationMode::Rbac => "RBAC",
        })
    }
}

/// What a request asks to do, in the terms RBAC rules use.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The Kubernetes verb (`get`, `list`, `create`, ...), or for
    /// non-resource paths the lower-case HTTP method.
    pub verb: &'a str,
    pub target: Target<'a>,
}

/// The object of a request.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Resource {
        group: &'a str,
        resource: &'a str,
        /// Empty when the request is on the resource itself.
        subresource: &'a str,
        /// Empty for cluster-scoped requests.
        namespace: &'a str,
        /// Empty for collections and creates.
        name: &'a str,
    },
    NonResource {
        path: &'a str,
    },
}

/// Decides requests under one authorization mode.
pub struct Authorizer {
    mode: AuthorizationMode,
    index: RwLock<Arc<Index>>,
}

impl Authorizer {
    pub fn new(mode: AuthorizationMode) -> Authorizer {
        Authorizer {
            mode,
            index: RwLock::new(Arc::new(Index::default())),
        }
    }

    /// `Ok` when `user` may make `request`; otherwise the 403 Status
    /// upstream answers, e.g. `pods is forbidden: User "alice" cannot list
    /// resource "pods" in API group "" in the namespace "default"`.
    pub fn authorize(&self, user: &UserInfo, request: &Request<'_>) -> Result<(), ApiError> {
        if self.mode == AuthorizationMode::AlwaysAllow || user.in_group(MASTERS_GROUP) {
            return Ok(());
        }
        let index = self.index.read().clone();
        let mut errors = Vec::new();
        if index.allows(user, request, &mut errors) {
            return Ok(());
        }
        let mut detail = denial(user, request);
        if !errors.is_empty() {
            let errors = if errors.len() == 1 {
                errors.remove(0)
            } else {
                format!("[{}]", errors.join(", "))
            };
            detail = format!("{detail}: RBAC: {errors}");
        }
        Err(match request.target {
            Target::Resource {
                group,
                resource,
                name,
                ..
            } => ApiError::forbidden_request(Subject::new(group, resource, name), detail),
            Target::NonResource { .. } => ApiError::forbidden_request(Subject::default(), detail),
        })
    }

    /// Builds the index from the RBAC objects stored now, so that the
    /// first requests after start are decided on them.
    pub async fn sync(&self, api: &Api) -> Result<(), ApiError> {
        let revision = api.store.current_revision().await?;
        let caches = rbac_caches(api);
        for (_, cache, _) in &caches {
            cache.wait_for(revision, SYNC_WAIT).await?;
        }
        self.rebuild(&caches);
        Ok(())
    }

    /// Keeps the RBAC index current until the API is dropped: rebuilds it
    /// from the watch caches of the four RBAC resources on every change.
    pub async fn keep_current(self: Arc<Self>, api: std::sync::Weak<Api>) {
        loop {
            let Some(strong) = api.upgrade() else {
                return;
            };
            let caches = rbac_caches(&strong);
            drop(strong);
            let mut watches = Vec::new();
            for (_, cache, prefix) in &caches {
                if cache.wait_for(0, SYNC_WAIT).await.is_err() {
                    break;
                }
                if let Ok(watch) = cache.watch(prefix, None, WatchStart::Current) {
                    watches.push(watch);
                }
            }
            if watches.len() != caches.len() {
                continue;
            }
            self.rebuild(&caches);
            next_change(&mut watches).await;
        }
    }

    fn rebuild(&self, caches: &[(Kind, Arc<WatchCache>, String)]) {
        let mut index = Index::default();
        for (kind, cache, prefix) in caches {
            for object in cache.list(prefix).0 {
                index.add(*kind, &object.value);
            }
        }
        *self.index.write() = Arc::new(index);
    }
}

/// How long the index waits for a watch cache to catch up.
const SYNC_WAIT: Duration = Duration::from_secs(10);

/// The watch caches of the RBAC resources, with their kinds and prefixes.
fn rbac_caches(api: &Api) -> Vec<(Kind, Arc<WatchCache>, String)> {
    let snapshot = api.registry.snapshot();
    Kind::ALL
        .into_iter()
        .filter_map(|kind| Some((kind, snapshot.get(GROUP, "v1", kind.plural())?)))
        .map(|(kind, def)| (kind, api.cache(&def), def.storage_prefix.clone()))
        .collect()
}

/// Returns when a watched RBAC object changed or a watch closed (its cache
/// was reset); either way the index is rebuilt from fresh watches.
async fn next_change(watches: &mut [CacheWatch]) {
    loop {
        let receives = watches.iter_mut().map(|w| Box::pin(w.live.recv()));
        let (delivery, _, _) = futures::future::select_all(receives).await;
        match delivery {
            Some(Delivery::Progress(_)) => {}
            Some(Delivery::Event(_)) | None => return,
        }
    }
}

/// Upstream's reason text for a refused request, without the `RBAC:`
/// details.
fn denial(user: &UserInfo, request: &Request<'_>) -> String {
    match request.target {
        Target::NonResource { path } => format!(
            "User {:?} cannot {} path {:?}",
            user.name, request.verb, path
        ),
        Target::Resource {
            group,
            resource,
            subresource,
            namespace,
            ..
        } => {
            let resource = if subresource.is_empty() {
                resource.to_string()
            } else {
                format!("{resource}/{subresource}")
            };
            let scope = if namespace.is_empty() {
                "at the cluster scope".to_string()
            } else {
                format!("in the namespace {namespace:?}")
            };
            format!(
                "User {:?} cannot {} resource {resource:?} in API group {group:?} {scope}",
                user.name, request.verb
            )
        }
    }
}

/// The four RBAC kinds, in the order the index reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ClusterRole,
    Role,
    ClusterRoleBinding,
    RoleBinding,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::ClusterRole,
        Kind::Role,
        Kind::ClusterRoleBinding,
        Kind::RoleBinding,
    ];

    fn plural(self) -> &'static str {
        match self {
            Kind::ClusterRole => "clusterroles",
            Kind::Role => "roles",
            Kind::ClusterRoleBinding => "clusterrolebindings",
            Kind::RoleBinding => "rolebindings",
        }
    }
}

/// One `PolicyRule`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Rule {
    verbs: Vec<String>,
    api_groups: Vec<String>,
    resources: Vec<String>,
    resource_names: Vec<String>,
    #[serde(rename = "nonResourceURLs")]
    non_resource_urls: Vec<String>,
}

impl Rule {
    fn allows(&self, request: &Request<'_>) -> bool {
        if !matches_or_star(&self.verbs, request.verb) {
            return false;
        }
        match request.target {
            Target::Resource {
                group,
                resource,
                subresource,
                name,
                ..
            } => {
                matches_or_star(&self.api_groups, group)
                    && self.resource_matches(resource, subresource)
                    && (self.resource_names.is_empty()
                        || self.resource_names.iter().any(|n| n == name))
            }
            Target::NonResource { path } => self.non_resource_urls.iter().any(|url| {
                url == "*"
                    || url == path
                    || url
                        .strip_suffix('*')
                        .is_some_and(|prefix| path.starts_with(prefix))
            }),
        }
    }

    /// `*`, the resource itself, `resource/subresource`, or `*/subresource`.
    fn resource_matches(&self, resource: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            if r == "*" {
                return true;
            }
            if subresource.is_empty() {
                return r == resource;
            }
            r.split_once('/')
                .is_some_and(|(res, sub)| sub == subresource && (res == "*" || res == resource))
        })
    }
}

fn matches_or_star(values: &[String], wanted: &str) -> bool {
    values.iter().any(|v| v == "*" || v == wanted)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BindingSubject {
    kind: String,
    name: String,
    namespace: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RoleRef {
    kind: String,
    name: String,
}

/// A RoleBinding or ClusterRoleBinding.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Binding {
    subjects: Vec<BindingSubject>,
    role_ref: RoleRef,
}

impl Binding {
    /// Whether the binding names the user; `namespace` is the binding's
    /// own (empty for ClusterRoleBindings), the default namespace of its
    /// ServiceAccount subjects.
    fn applies_to(&self, user: &UserInfo, namespace: &str) -> bool {
        self.subjects.iter().any(|s| match s.kind.as_str() {
            "User" => s.name == user.name,
            "Group" => user.in_group(&s.name),
            "ServiceAccount" => {
                let sa_namespace = if s.namespace.is_empty() {
                    namespace
                } else {
                    &s.namespace
                };
                !sa_namespace.is_empty()
                    && user.name == format!("system:serviceaccount:{sa_namespace}:{}", s.name)
            }
            _ => false,
        })
    }
}

/// The stored RBAC objects, parsed.
#[derive(Debug, Default)]
struct Index {
    cluster_roles: HashMap<String, Vec<Rule>>,
    /// (namespace, name) -> rules.
    roles: HashMap<(String, String), Vec<Rule>>,
    cluster_bindings: Vec<Binding>,
    /// namespace -> bindings.
    bindings: HashMap<String, Vec<Binding>>,
}

impl Index {
    fn add(&mut self, kind: Kind, object: &Value) {
        let meta = |field: &str| {
            object
                .pointer(&format!("/metadata/{field}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        match kind {
            Kind::ClusterRole => {
                self.cluster_roles.insert(meta("name"), rules_of(object));
            }
            Kind::Role => {
                self.roles
                    .insert((meta("namespace"), meta("name")), rules_of(object));
            }
            Kind::ClusterRoleBinding => self.cluster_bindings.push(binding_of(object)),
            Kind::RoleBinding => self
                .bindings
                .entry(meta("namespace"))
                .or_default()
                .push(binding_of(object)),
        }
    }

    /// Whether any rule bound to the user allows the request: first the
    /// cluster-wide bindings, then the bindings of the request's namespace.
    /// Bindings to missing roles are noted in `errors`, as upstream reports
    /// them in the refusal.
    fn allows(&self, user: &UserInfo, request: &Request<'_>, errors: &mut Vec<String>) -> bool {
        let mut rules_allow = |rules: Option<&Vec<Rule>>, missing: &dyn Fn() -> String| match rules
        {
            Some(rules) => rules.iter().any(|r| r.allows(request)),
            None => {
                errors.push(missing());
                false
            }
        };
        for binding in self
            .cluster_bindings
            .iter()
            .filter(|b| b.applies_to(user, ""))
        {
            let name = &binding.role_ref.name;
            if binding.role_ref.kind == "ClusterRole"
                && rules_allow(self.cluster_roles.get(name), &|| {
                    format!("clusterrole.{GROUP} {name:?} not found")
                })
            {
                return true;
            }
        }
        let namespace = match request.target {
            Target::Resource { namespace, .. } if !namespace.is_empty() => namespace,
            _ => return false,
        };
        let bindings = self.bindings.get(namespace).into_iter().flatten();
        for binding in bindings.filter(|b| b.applies_to(user, namespace)) {
            let name = &binding.role_ref.name;
            let allowed = match binding.role_ref.kind.as_str() {
                "ClusterRole" => rules_allow(self.cluster_roles.get(name), &|| {
                    format!("clusterrole.{GROUP} {name:?} not found")
                }),
                "Role" => rules_allow(
                    self.roles.get(&(namespace.to_string(), name.clone())),
                    &|| format!("role.{GROUP} {name:?} not found"),
                ),
                _ => false,
            };
            if allowed {
                return true;
            }
        }
        false
    }
}

fn rules_of(object: &Value) -> Vec<Rule> {
    object
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|rule| Rule::deserialize(rule).ok())
        .collect()
}

fn binding_of(object: &Value) -> Binding {
    Binding::deserialize(object).unwrap_or_default()
}

/// The default roles and bindings every cluster has: `cluster-admin` for
/// `system:masters`, discovery for authenticated users, and the health and
/// version endpoints for everyone. Written once; an operator's later
/// changes to them are kept.
pub async fn bootstrap(api: &Api) -> Result<(), ApiError> {
    let snapshot = api.registry.snapshot();
    let (Some(roles), Some(bindings)) = (
        snapshot.get(GROUP, "v1", "clusterroles"),
        snapshot.get(GROUP, "v1", "clusterrolebindings"),
    ) else {
        return Ok(());
    };
    let discovery_urls = [
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/healthz",
        "/livez",
        "/openapi",
        "/openapi/*",
        "/readyz",
        "/version",
        "/version/",
    ];
    let public_urls = ["/healthz", "/livez", "/readyz", "/version", "/version/"];
    let defaults = [
        (
            "cluster-admin",
            json!([
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ]),
            vec![MASTERS_GROUP],
        ),
        (
            "system:discovery",
            json!([{"nonResourceURLs": discovery_urls, "verbs": ["get"]}]),
            vec![AUTHENTICATED_GROUP],
        ),
        (
            "system:public-info-viewer",
            json!([{"nonResourceURLs": public_urls, "verbs": ["get"]}]),
            vec![AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP],
        ),
    ];
    let metadata = |name: &str| {
        json!({
            "name": name,
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        })
    };
    for (name, rules, groups) in defaults {
        let role = json!({
            "apiVersion": format!("{GROUP}/v1"),
            "kind": "ClusterRole",
            "metadata": metadata(name),
            "rules": rules,
        });
        let subjects: Vec<Value> = groups
            .iter()
            .map(|g| json!({"kind": "Group", "apiGroup": GROUP, "name": g}))
            .collect();
        let binding = json!({
            "apiVersion": format!("{GROUP}/v1"),
            "kind": "ClusterRoleBinding",
            "metadata": metadata(name),
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": name},
            "subjects": subjects,
        });
        for (def, object) in [(&roles, role), (&bindings, binding)] {
            match api.create(def, None, object, false).await {
                Ok(_) => {}
                Err(err) if err.reason == "AlreadyExists" => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo::authenticated(name, "", groups.iter().map(|g| g.to_string()).collect())
    }

    fn pods(verb: &'static str, namespace: &'static str, name: &'static str) -> Request<'static> {
        Request {
            verb,
            target: Target::Resource {
                group: "",
                resource: "pods",
                subresource: "",
                namespace,
                name,
            },
        }
    }

    fn authorizer(objects: &[(Kind, Value)]) -> Authorizer {
        let mut index = Index::default();
        for (kind, object) in objects {
            index.add(*kind, object);
        }
        let authorizer = Authorizer::new(AuthorizationMode::Rbac);
        *authorizer.index.write() = Arc::new(index);
        authorizer
    }

    fn reader_in(namespace: &str) -> Vec<(Kind, Value)> {
        vec![
            (
                Kind::Role,
                json!({"metadata": {"name": "reader", "namespace": namespace},
                       "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]}),
            ),
            (
                Kind::RoleBinding,
                json!({"metadata": {"name": "alice-reads", "namespace": namespace},
                       "roleRef": {"kind": "Role", "name": "reader"},
                       "subjects": [{"kind": "User", "name": "alice"},
                                    {"kind": "ServiceAccount", "name": "worker"}]}),
            ),
        ]
    }

    #[test]
    fn roles_allow_only_their_namespace_and_verbs() {
        let authz = authorizer(&reader_in("team"));
        let alice = user("alice", &[]);
        assert!(authz.authorize(&alice, &pods("list", "team", "")).is_ok());
        let err = authz
            .authorize(&alice, &pods("delete", "team", "p1"))
            .unwrap_err();
        assert_eq!(err.code, 403);
        assert_eq!(
            err.message,
            r#"pods "p1" is forbidden: User "alice" cannot delete resource "pods" in API group "" in the namespace "team""#
        );
        let err = authz.authorize(&alice, &pods("list", "", "")).unwrap_err();
        assert_eq!(
            err.message,
            r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" at the cluster scope"#
        );
        assert!(authz.authorize(&alice, &pods("list", "other", "")).is_err());
        let worker = user("system:serviceaccount:team:worker", &[]);
        assert!(authz.authorize(&worker, &pods("get", "team", "p")).is_ok());
    }

    #[test]
    fn subresources_names_and_wildcards() {
        let role = json!({"metadata": {"name": "r"}, "rules": [
            {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update"]},
            {"apiGroups": ["*"], "resources": ["configmaps"], "resourceNames": ["cfg"], "verbs": ["*"]},
            {"nonResourceURLs": ["/metrics", "/debug/*"], "verbs": ["get"]},
        ]});
        let binding = json!({"metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "r"},
                             "subjects": [{"kind": "Group", "name": "ops"}]});
        let authz = authorizer(&[
            (Kind::ClusterRole, role),
            (Kind::ClusterRoleBinding, binding),
        ]);
        let bob = user("bob", &["ops"]);
        let resource = |verb, group, resource, subresource, name| Request {
            verb,
            target: Target::Resource {
                group,
                resource,
                subresource,
                namespace: "ns",
                name,
            },
        };
        let path = |path| Request {
            verb: "get",
            target: Target::NonResource { path },
        };
        assert!(
            authz
                .authorize(
                    &bob,
                    &resource("update", "apps", "deployments", "scale", "d")
                )
                .is_ok()
        );
        assert!(
            authz
                .authorize(&bob, &resource("update", "apps", "deployments", "", "d"))
                .is_err()
        );
        assert!(
            authz
                .authorize(&bob, &resource("delete", "", "configmaps", "", "cfg"))
                .is_ok()
        );
        assert!(
            authz
                .authorize(&bob, &resource("delete", "", "configmaps", "", "x"))
                .is_err()
        );
        assert!(authz.authorize(&bob, &path("/metrics")).is_ok());
        assert!(authz.authorize(&bob, &path("/debug/pprof/heap")).is_ok());
        let err = authz.authorize(&bob, &path("/version")).unwrap_err();
        assert_eq!(
            err.message,
            r#"forbidden: User "bob" cannot get path "/version""#
        );
    }

    #[test]
    fn masters_bypass_and_missing_roles_are_reported() {
        let binding = json!({"metadata": {"name": "b", "namespace": "ns"},
                             "roleRef": {"kind": "ClusterRole", "name": "gone"},
                             "subjects": [{"kind": "User", "name": "carol"}]});
        let authz = authorizer(&[(Kind::RoleBinding, binding)]);
        assert!(
            authz
                .authorize(&user("root", &[MASTERS_GROUP]), &pods("delete", "x", "y"))
                .is_ok()
        );
        let err = authz
            .authorize(&user("carol", &[]), &pods("get", "ns", "p"))
            .unwrap_err();
        assert!(
            err.message.ends_with(
                r#"in the namespace "ns": RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found"#
            ),
            "{}",
            err.message
        );
    }
}
