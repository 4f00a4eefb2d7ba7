//! The strategic-merge metadata of the built-in kinds kstress serves.
//!
//! `kubectl apply` computes its three-way patch from the OpenAPI schema of
//! the kind when it finds one: a list property without
//! `x-kubernetes-patch-strategy` is replaced whole, so `containers` would no
//! longer merge by `name`. Upstream derives these extensions from the
//! `patchStrategy` and `patchMergeKey` struct tags of k8s.io/api;
//! k8s-openapi's schemars output does not carry them, so this table,
//! transcribed from the k8s.io/api v0.33 tags of the types reachable from
//! the served kinds, puts them back.

use serde_json::{Map, Value};

/// One tagged property: (definition, property, strategy, merge key).
type PatchField = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const POD_SPEC: &str = "io.k8s.api.core.v1.PodSpec";
const CONTAINER: &str = "io.k8s.api.core.v1.Container";
const EPHEMERAL_CONTAINER: &str = "io.k8s.api.core.v1.EphemeralContainer";

pub(crate) const PATCH_FIELDS: &[PatchField] = &[
    (META, "finalizers", "merge", None),
    (META, "ownerReferences", "merge", Some("uid")),
    (POD_SPEC, "containers", "merge", Some("name")),
    (POD_SPEC, "initContainers", "merge", Some("name")),
    (POD_SPEC, "ephemeralContainers", "merge", Some("name")),
    (POD_SPEC, "volumes", "merge,retainKeys", Some("name")),
    (POD_SPEC, "imagePullSecrets", "merge", Some("name")),
    (POD_SPEC, "hostAliases", "merge", Some("ip")),
    (
        POD_SPEC,
        "topologySpreadConstraints",
        "merge",
        Some("topologyKey"),
    ),
    (POD_SPEC, "schedulingGates", "merge", Some("name")),
    (POD_SPEC, "resourceClaims", "merge,retainKeys", Some("name")),
    (CONTAINER, "ports", "merge", Some("containerPort")),
    (CONTAINER, "env", "merge", Some("name")),
    (CONTAINER, "volumeMounts", "merge", Some("mountPath")),
    (CONTAINER, "volumeDevices", "merge", Some("devicePath")),
    (EPHEMERAL_CONTAINER, "env", "merge", Some("name")),
    (
        EPHEMERAL_CONTAINER,
        "volumeMounts",
        "merge",
        Some("mountPath"),
    ),
    (
        EPHEMERAL_CONTAINER,
        "volumeDevices",
        "merge",
        Some("devicePath"),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "podIPs",
        "merge",
        Some("ip"),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "hostIPs",
        "merge",
        Some("ip"),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "resourceClaimStatuses",
        "merge,retainKeys",
        Some("name"),
    ),
    ("io.k8s.api.core.v1.NodeSpec", "podCIDRs", "merge", None),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        "merge",
        Some("port"),
    ),
    (
        "io.k8s.api.core.v1.ServiceStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.ServiceAccount",
        "secrets",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        "retainKeys",
        None,
    ),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.batch.v1.JobStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
];

/// Adds the patch extensions to the properties of `schemas` the table
/// names; definitions absent from `schemas` are skipped.
pub(crate) fn annotate(schemas: &mut Map<String, Value>) {
    for (definition, property, strategy, key) in PATCH_FIELDS {
        let Some(Value::Object(field)) = schemas
            .get_mut(*definition)
            .and_then(|schema| schema.get_mut("properties"))
            .and_then(|properties| properties.get_mut(*property))
        else {
            continue;
        };
        field.insert("x-kubernetes-patch-strategy".into(), (*strategy).into());
        if let Some(key) = key {
            field.insert("x-kubernetes-patch-merge-key".into(), (*key).into());
        }
    }
}
