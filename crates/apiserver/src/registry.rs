//! The resource registry: one table describing every served resource.
//!
//! Handlers are generic; what differs between kinds is data in a
//! [`ResourceDef`] (names, scope, subresources) plus the kind's rules
//! (`crate::kinds`). CustomResourceDefinitions add entries at run time,
//! which is why the registry is a snapshot swapped as a whole.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::kinds::{BUILTINS, Builtin, Kind};

/// The `scale` subresource's mapping to the object's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleSpec {
    pub spec_replicas_path: String,
    pub status_replicas_path: String,
    pub selector: ScaleSelector,
}

/// Where a Scale's `status.selector` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaleSelector {
    /// The label selector of `.spec.selector`, in its string form (the
    /// built-in workloads).
    SpecSelector,
    /// A string field of the object (a CRD's `labelSelectorPath`).
    Path(String),
    None,
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
#[derive(Clone)]
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
    /// The kind's rules (see `crate::kinds`).
    pub rules: &'static dyn Kind,
    /// Store prefix of this resource's objects, e.g. `/registry/pods/`.
    /// Two views of one kind (the two Event APIs) share a prefix.
    pub storage_prefix: String,
    pub status_subresource: bool,
    pub scale: Option<ScaleSpec>,
    pub binding: bool,
    /// Whether `metadata.generation` tracks spec changes.
    pub generation: bool,
    pub printer_columns: Vec<PrinterColumn>,
    /// The kind's schema, for OpenAPI and field validation: a built-in
    /// kind's k8s-openapi type, a custom resource's CRD version schema.
    pub schema: openapi::Schema,
}

impl std::fmt::Debug for ResourceDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceDef")
            .field("group", &self.group)
            .field("version", &self.version)
            .field("plural", &self.plural)
            .finish_non_exhaustive()
    }
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

/// The served form of a built-in kind.
fn builtin_def(b: &Builtin) -> ResourceDef {
    let scale = b.scale.then(|| ScaleSpec {
        spec_replicas_path: ".spec.replicas".into(),
        status_replicas_path: ".status.replicas".into(),
        selector: ScaleSelector::SpecSelector,
    });
    ResourceDef {
        group: b.group.into(),
        version: b.version.into(),
        kind: b.kind.into(),
        list_kind: format!("{}List", b.kind),
        plural: b.plural.into(),
        singular: b.kind.to_lowercase(),
        short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
        categories: b.categories.iter().map(|s| s.to_string()).collect(),
        namespaced: b.namespaced,
        rules: b.rules,
        storage_prefix: format!("/registry/{}/", b.storage),
        status_subresource: b.status,
        scale,
        binding: b.binding,
        generation: b.generation,
        printer_columns: Vec::new(),
        schema: openapi::Schema::Builtin(b.schema),
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
        let mut defs: Vec<ResourceDef> = BUILTINS.iter().map(|b| builtin_def(b)).collect();
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
