//! One definition per kind: everything the server does differently for a
//! kind lives in that kind's file, as upstream keeps a kind's policy in its
//! `pkg/registry/<group>/<kind>/strategy.go`.
//!
//! A built-in kind is a [`Builtin`]: its names, scope, storage and
//! subresources as data, and its rules as an implementation of [`Kind`]
//! (defaulting, validation, the status split, selectable fields, table
//! columns, deletion). The generic handlers call only
//! these hooks, so adding a kind means one new file here and one entry in
//! [`BUILTINS`]. Custom resources are served through the same interface,
//! with the rules of [`custom::CustomResource`] reading their definition.

mod configmap;
mod controllerrevision;
mod crd;
mod cronjob;
pub mod custom;
mod daemonset;
mod deployment;
mod endpoints;
mod endpointslice;
mod event;
mod ingress;
mod ingressclass;
mod job;
mod lease;
mod limitrange;
mod namespace;
mod networkpolicy;
mod node;
mod persistentvolume;
mod persistentvolumeclaim;
mod pod;
mod poddisruptionbudget;
mod podtemplate;
mod priorityclass;
mod rbac;
mod replicaset;
mod replicationcontroller;
mod resourcequota;
mod secret;
mod service;
mod serviceaccount;
mod statefulset;
mod storageclass;
mod workload;

use serde_json::Value;

use crate::error::FieldError;
use crate::registry::ResourceDef;
use crate::table;

/// Every built-in kind, in discovery order.
pub const BUILTINS: &[&Builtin] = &[
    &namespace::NAMESPACE,
    &pod::POD,
    &configmap::CONFIG_MAP,
    &secret::SECRET,
    &service::SERVICE,
    &serviceaccount::SERVICE_ACCOUNT,
    &node::NODE,
    &replicationcontroller::REPLICATION_CONTROLLER,
    &persistentvolumeclaim::PERSISTENT_VOLUME_CLAIM,
    &persistentvolume::PERSISTENT_VOLUME,
    &endpoints::ENDPOINTS,
    &resourcequota::RESOURCE_QUOTA,
    &limitrange::LIMIT_RANGE,
    &podtemplate::POD_TEMPLATE,
    &event::EVENT,
    &event::EVENT_V1,
    &lease::LEASE,
    &deployment::DEPLOYMENT,
    &replicaset::REPLICA_SET,
    &statefulset::STATEFUL_SET,
    &daemonset::DAEMON_SET,
    &controllerrevision::CONTROLLER_REVISION,
    &job::JOB,
    &cronjob::CRON_JOB,
    &ingress::INGRESS,
    &ingressclass::INGRESS_CLASS,
    &networkpolicy::NETWORK_POLICY,
    &poddisruptionbudget::POD_DISRUPTION_BUDGET,
    &storageclass::STORAGE_CLASS,
    &priorityclass::PRIORITY_CLASS,
    &endpointslice::ENDPOINT_SLICE,
    &crd::CUSTOM_RESOURCE_DEFINITION,
    &rbac::CLUSTER_ROLE,
    &rbac::CLUSTER_ROLE_BINDING,
    &rbac::ROLE,
    &rbac::ROLE_BINDING,
];

/// A built-in kind: what discovery and storage need to know, and its rules.
pub struct Builtin {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub short_names: &'static [&'static str],
    /// Discovery categories (`kubectl get all` lists the `all` category).
    pub categories: &'static [&'static str],
    pub namespaced: bool,
    /// The resource's directory under `/registry/`, as kube-apiserver names
    /// it in etcd (`minions` for nodes, `services/specs` for services).
    pub storage: &'static str,
    pub status: bool,
    /// Whether the `scale` subresource maps `.spec.replicas`,
    /// `.status.replicas` and the label selector of `.spec.selector`.
    pub scale: bool,
    pub binding: bool,
    /// Whether `metadata.generation` tracks spec changes.
    pub generation: bool,
    pub rules: &'static dyn Kind,
    /// The kind's k8s-openapi type, for OpenAPI and field validation.
    pub schema: openapi::TypeSchema,
}

impl Builtin {
    /// A namespaced kind with no subresources, defaults for the rest.
    pub const fn new(
        (group, version, kind, plural): (&'static str, &'static str, &'static str, &'static str),
        rules: &'static dyn Kind,
        schema: openapi::TypeSchema,
    ) -> Builtin {
        Builtin {
            group,
            version,
            kind,
            plural,
            short_names: &[],
            categories: &[],
            namespaced: true,
            storage: plural,
            status: false,
            scale: false,
            binding: false,
            generation: false,
            rules,
            schema,
        }
    }
}

/// What a valid `metadata.name` looks like for a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// A DNS subdomain (RFC 1123), the rule of most kinds.
    Subdomain,
    /// A DNS label (RFC 1123): namespaces.
    Label,
    /// A DNS label that starts with a letter (RFC 1035): services.
    Dns1035Label,
    /// Anything usable as a path segment, at most 253 characters: RBAC
    /// names such as `system:discovery`, events, CRDs, custom resources.
    PathSegment,
}

/// What a write to the status subresource may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWrites {
    /// Status only.
    StatusOnly,
    /// Status, labels and annotations (what kubelets write on pods and
    /// nodes); spec and the object's identity stay.
    StatusAndMetadata,
}

/// The server-side lifecycle a kind's objects follow beyond the generic
/// create / update / delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Standard,
    /// Deletion marks the namespace Terminating and waits for the
    /// namespace controller to empty it; finalizers going away do not
    /// remove it.
    Namespace,
    /// Stored objects define resources that the server then serves;
    /// deleting one removes its resources and their objects.
    ResourceDefinition,
}

/// A kind's rules. Every hook has the behaviour of a kind without special
/// rules as its default.
pub trait Kind: Send + Sync + 'static {
    /// The defaults filled into every write of the main resource, create
    /// and update alike, as upstream's defaulting runs on every decode.
    fn defaults(&self, _obj: &mut Value) {}

    /// What a new object starts with beyond its defaults (its initial
    /// status); identity and metadata are already set.
    fn prepare_create(&self, _def: &ResourceDef, _obj: &mut Value) {}

    /// Whether a new object keeps the status its creator sent. Otherwise a
    /// kind with a status subresource starts without one (or with what
    /// [`Kind::prepare_create`] sets): its controller writes it.
    fn keeps_status_on_create(&self) -> bool {
        false
    }

    /// A write of the main resource beyond its defaults, after the fields
    /// a client may not change were carried over from `old`.
    fn prepare_update(&self, _def: &ResourceDef, _new: &mut Value, _old: &Value) {}

    /// State the server derives from the object, set on every write
    /// (main, status and the server's own).
    fn derive(&self, _obj: &mut Value) {}

    fn status_writes(&self) -> StatusWrites {
        StatusWrites::StatusOnly
    }

    fn name_rule(&self) -> NameRule {
        NameRule::Subdomain
    }

    /// The kind's own validation, after the metadata checks every kind gets.
    fn validate(&self, _def: &ResourceDef, _obj: &Value, _errors: &mut Vec<FieldError>) {}

    /// The kind's checks of a client's update of the main resource against
    /// the stored object (immutable fields), after [`Kind::validate`].
    fn validate_update(&self, _new: &Value, _old: &Value, _errors: &mut Vec<FieldError>) {}

    /// The value of a field selector field beyond `metadata.name` and
    /// `metadata.namespace`; `None` when the kind does not offer it.
    fn field(&self, _obj: &Value, _field: &str) -> Option<String> {
        None
    }

    /// The field the watch cache indexes watchers by, so that a thousand
    /// watches selecting on it are found without scanning all of them.
    fn indexed_field(&self) -> Option<&'static str> {
        None
    }

    /// The Table columns of `kubectl get`, as kube-apiserver's printers
    /// define them.
    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[table::name_column(), table::column("Age")])
    }

    /// One Table row's cells, matching [`Kind::columns`].
    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![table::name(obj).into(), table::created(obj).into()]
    }

    /// For a view of another kind's storage: turns an object written
    /// through the view into the stored form.
    fn to_storage(&self, _obj: &mut Value) {}

    /// For a view: the stored form as the view shows it; `None` when the
    /// kind is its own stored form.
    fn view_of_stored(&self, _stored: &Value) -> Option<Value> {
        None
    }

    /// Whether the kind is a view of another kind's objects (which the
    /// namespace controller then leaves to the stored kind).
    fn is_view(&self) -> bool {
        false
    }

    /// Seconds a deletion of `obj` waits for its owner (a kubelet) to
    /// stop it; 0 deletes at once (unless finalizers remain). `requested`
    /// is the DeleteOptions' grace period.
    fn grace_period(&self, _obj: &Value, _requested: Option<i64>) -> i64 {
        0
    }

    fn lifecycle(&self) -> Lifecycle {
        Lifecycle::Standard
    }

    /// Whether strategic merge patches apply (custom resources answer 415,
    /// as upstream: they have no patch strategy metadata).
    fn strategic_merge(&self) -> bool {
        true
    }
}

/// `obj[key]`, inserted when absent.
pub(crate) fn set_default(obj: &mut serde_json::Map<String, Value>, key: &str, value: Value) {
    obj.entry(key).or_insert(value);
}

/// The string at a JSON pointer, "" when absent; numbers and booleans in
/// their JSON form (what field selectors compare).
pub(crate) fn text_at(obj: &Value, pointer: &str) -> String {
    match obj.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A `FieldValueNotSupported` cause listing the supported values.
pub(crate) fn not_supported(
    field: impl Into<String>,
    value: &str,
    supported: &[&str],
) -> FieldError {
    let supported: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    FieldError {
        kind: "FieldValueNotSupported",
        field: field.into(),
        message: format!(
            "Unsupported value: {value:?}: supported values: {}",
            supported.join(", ")
        ),
    }
}
