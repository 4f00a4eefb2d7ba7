//! The resource registry: one table describing every served resource.
//!
//! Handlers are generic; what differs between kinds (names, scope,
//! subresources, defaulting, validation, selectable fields, table columns)
//! is data in a [`ResourceDef`] plus the [`Behavior`] hooks in
//! `strategy`. CustomResourceDefinitions add entries at run time, which is
//! why the registry is a snapshot swapped as a whole.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::Value;

/// What is special about a kind; selects the strategy hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    Namespace,
    Pod,
    Node,
    Service,
    /// core/v1 Event, the stored form of events.
    Event,
    /// events.k8s.io/v1 Event: a view converted from the stored core form.
    EventV1,
    /// Deployments, ReplicaSets, Jobs: spec/status workloads with generation.
    Workload,
    CustomResourceDefinition,
    CustomResource,
    /// Roles, ClusterRoles and their bindings: names are path segments
    /// (`system:discovery`), not DNS names.
    Rbac,
    /// Kinds with no special rules (configmaps, secrets, leases, ...).
    Plain,
}

/// The `scale` subresource's mapping to the object's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleSpec {
    pub spec_replicas_path: String,
    pub status_replicas_path: String,
    pub label_selector_path: Option<String>,
}

/// A printer column of `kubectl get` for custom resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub json_path: String,
    pub description: String,
    pub priority: i64,
}

/// One served resource: a group/version/plural and everything handlers need
/// to know about it.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    pub behavior: Behavior,
    /// Store prefix of this resource's objects, e.g. `/registry/pods/`.
    /// Two views of one kind (the two Event APIs) share a prefix.
    pub storage_prefix: String,
    pub status_subresource: bool,
    pub scale: Option<ScaleSpec>,
    pub binding: bool,
    /// Whether `metadata.generation` tracks spec changes.
    pub generation: bool,
    pub printer_columns: Vec<PrinterColumn>,
    /// For custom resources: the CRD version's schema, for OpenAPI.
    pub schema: Option<Value>,
}

impl ResourceDef {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/{name}", self.storage_prefix),
            _ => format!("{}{name}", self.storage_prefix),
        }
    }

    /// The store prefix of a list: the whole resource, or one namespace.
    pub fn list_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/", self.storage_prefix),
            _ => self.storage_prefix.clone(),
        }
    }

    /// The verbs discovery advertises.
    pub fn verbs(&self) -> Vec<&'static str> {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }

    /// Subresource names, as `pods/status`, for discovery.
    pub fn subresources(&self) -> Vec<&'static str> {
        let mut subs = Vec::new();
        if self.status_subresource {
            subs.push("status");
        }
        if self.scale.is_some() {
            subs.push("scale");
        }
        if self.binding {
            subs.push("binding");
        }
        subs
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    short_names: &'static [&'static str],
    namespaced: bool,
    behavior: Behavior,
    storage: &'static str,
    status: bool,
    scale: bool,
}

/// A built-in resource: `(group, version, kind, plural)` and the rest.
const fn builtin(
    (group, version, kind, plural): (&'static str, &'static str, &'static str, &'static str),
    short_names: &'static [&'static str],
    namespaced: bool,
    behavior: Behavior,
    storage: &'static str,
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        short_names,
        namespaced,
        behavior,
        storage,
        status: false,
        scale: false,
    }
}

const fn with_status(mut b: Builtin) -> Builtin {
    b.status = true;
    b
}

const fn with_scale(mut b: Builtin) -> Builtin {
    b.scale = true;
    b
}

const BUILTINS: &[Builtin] = &[
    with_status(builtin(
        ("", "v1", "Namespace", "namespaces"),
        &["ns"],
        false,
        Behavior::Namespace,
        "namespaces",
    )),
    with_status(builtin(
        ("", "v1", "Pod", "pods"),
        &["po"],
        true,
        Behavior::Pod,
        "pods",
    )),
    builtin(
        ("", "v1", "ConfigMap", "configmaps"),
        &["cm"],
        true,
        Behavior::Plain,
        "configmaps",
    ),
    builtin(
        ("", "v1", "Secret", "secrets"),
        &[],
        true,
        Behavior::Plain,
        "secrets",
    ),
    with_status(builtin(
        ("", "v1", "Service", "services"),
        &["svc"],
        true,
        Behavior::Service,
        "services/specs",
    )),
    builtin(
        ("", "v1", "ServiceAccount", "serviceaccounts"),
        &["sa"],
        true,
        Behavior::Plain,
        "serviceaccounts",
    ),
    with_status(builtin(
        ("", "v1", "Node", "nodes"),
        &["no"],
        false,
        Behavior::Node,
        "minions",
    )),
    builtin(
        ("", "v1", "Event", "events"),
        &["ev"],
        true,
        Behavior::Event,
        "events",
    ),
    builtin(
        ("events.k8s.io", "v1", "Event", "events"),
        &["ev"],
        true,
        Behavior::EventV1,
        "events",
    ),
    builtin(
        ("coordination.k8s.io", "v1", "Lease", "leases"),
        &[],
        true,
        Behavior::Plain,
        "leases",
    ),
    with_scale(with_status(builtin(
        ("apps", "v1", "Deployment", "deployments"),
        &["deploy"],
        true,
        Behavior::Workload,
        "deployments",
    ))),
    with_scale(with_status(builtin(
        ("apps", "v1", "ReplicaSet", "replicasets"),
        &["rs"],
        true,
        Behavior::Workload,
        "replicasets",
    ))),
    with_status(builtin(
        ("batch", "v1", "Job", "jobs"),
        &[],
        true,
        Behavior::Workload,
        "jobs",
    )),
    with_status(builtin(
        (
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
        ),
        &["crd", "crds"],
        false,
        Behavior::CustomResourceDefinition,
        "apiextensions.k8s.io/customresourcedefinitions",
    )),
    builtin(
        (
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
        ),
        &[],
        false,
        Behavior::Rbac,
        "clusterroles",
    ),
    builtin(
        (
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
        ),
        &[],
        false,
        Behavior::Rbac,
        "clusterrolebindings",
    ),
    builtin(
        ("rbac.authorization.k8s.io", "v1", "Role", "roles"),
        &[],
        true,
        Behavior::Rbac,
        "roles",
    ),
    builtin(
        (
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
        ),
        &[],
        true,
        Behavior::Rbac,
        "rolebindings",
    ),
];

fn builtin_def(b: &Builtin) -> ResourceDef {
    let scale = b.scale.then(|| ScaleSpec {
        spec_replicas_path: ".spec.replicas".into(),
        status_replicas_path: ".status.replicas".into(),
        label_selector_path: Some(".status.selector".into()),
    });
    ResourceDef {
        group: b.group.into(),
        version: b.version.into(),
        kind: b.kind.into(),
        list_kind: format!("{}List", b.kind),
        plural: b.plural.into(),
        singular: b.kind.to_lowercase(),
        short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
        categories: match b.behavior {
            Behavior::Pod | Behavior::Service | Behavior::Workload => vec!["all".into()],
            _ => Vec::new(),
        },
        namespaced: b.namespaced,
        behavior: b.behavior,
        storage_prefix: format!("/registry/{}/", b.storage),
        status_subresource: b.status,
        scale,
        binding: b.behavior == Behavior::Pod,
        generation: matches!(
            b.behavior,
            Behavior::Workload | Behavior::CustomResourceDefinition
        ),
        printer_columns: Vec::new(),
        schema: None,
    }
}

/// An immutable view of everything served, swapped when CRDs change.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// (group, version, plural) -> definition.
    resources: BTreeMap<(String, String, String), Arc<ResourceDef>>,
    /// Group name -> served versions, preferred first.
    groups: BTreeMap<String, Vec<String>>,
    /// Group names in discovery order (built-in first, as registered).
    group_order: Vec<String>,
}

impl Snapshot {
    fn build(defs: Vec<ResourceDef>) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for def in defs {
            let versions = snapshot.groups.entry(def.group.clone()).or_default();
            if !versions.contains(&def.version) {
                versions.push(def.version.clone());
            }
            if !snapshot.group_order.contains(&def.group) {
                snapshot.group_order.push(def.group.clone());
            }
            snapshot.resources.insert(
                (def.group.clone(), def.version.clone(), def.plural.clone()),
                Arc::new(def),
            );
        }
        snapshot
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.resources
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceDef>> {
        self.resources.values()
    }

    /// Resources of one group version, in plural order.
    pub fn group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceDef>> {
        self.resources
            .values()
            .filter(|d| d.group == group && d.version == version)
            .cloned()
            .collect()
    }

    /// Served groups in discovery order with their versions, preferred first.
    pub fn groups(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.group_order
            .iter()
            .filter_map(|g| self.groups.get(g).map(|v| (g.as_str(), v.as_slice())))
    }

    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.groups
            .get(group)
            .is_some_and(|versions| versions.iter().any(|v| v == version))
    }
}

/// The live registry: built-in kinds plus those of established CRDs.
pub struct Registry {
    snapshot: RwLock<Arc<Snapshot>>,
    custom: RwLock<BTreeMap<String, Vec<ResourceDef>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    pub fn new() -> Registry {
        let registry = Registry {
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            custom: RwLock::new(BTreeMap::new()),
        };
        registry.rebuild();
        registry
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().clone()
    }

    /// Serves (or replaces) the resources of one CRD; returns whether the
    /// served set changed.
    pub fn set_custom(&self, crd_name: &str, defs: Vec<ResourceDef>) -> bool {
        let mut custom = self.custom.write();
        let changed = custom
            .get(crd_name)
            .is_none_or(|old| !same_defs(old, &defs));
        if changed {
            custom.insert(crd_name.to_string(), defs);
            drop(custom);
            self.rebuild();
        }
        changed
    }

    /// Stops serving the resources of a CRD.
    pub fn remove_custom(&self, crd_name: &str) -> bool {
        let removed = self.custom.write().remove(crd_name).is_some();
        if removed {
            self.rebuild();
        }
        removed
    }

    fn rebuild(&self) {
        let mut defs: Vec<ResourceDef> = BUILTINS.iter().map(builtin_def).collect();
        defs.extend(self.custom.read().values().flatten().cloned());
        *self.snapshot.write() = Arc::new(Snapshot::build(defs));
    }
}

fn same_defs(a: &[ResourceDef], b: &[ResourceDef]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.group == y.group
                && x.version == y.version
                && x.plural == y.plural
                && x.kind == y.kind
                && x.namespaced == y.namespaced
                && x.status_subresource == y.status_subresource
                && x.scale == y.scale
                && x.printer_columns == y.printer_columns
                && x.schema == y.schema
                && x.short_names == y.short_names
                && x.categories == y.categories
        })
}
