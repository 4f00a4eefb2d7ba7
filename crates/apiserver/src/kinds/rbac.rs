//! rbac.authorization.k8s.io/v1 Roles, ClusterRoles and their bindings.
//! Their names are path segments (`system:discovery`), not DNS names; what
//! they grant is evaluated by `crate::rbac`.

use prost::Message;
use serde_json::{Value, json};

use super::{Builtin, Kind, NameRule};
use crate::protobuf;

const GROUP: &str = "rbac.authorization.k8s.io";

pub static CLUSTER_ROLE: Builtin = Builtin {
    namespaced: false,
    ..Builtin::new(
        (GROUP, "v1", "ClusterRole", "clusterroles"),
        &ClusterRole,
        openapi::type_schema::<k8s_openapi::api::rbac::v1::ClusterRole>(),
    )
};

pub static CLUSTER_ROLE_BINDING: Builtin = Builtin {
    namespaced: false,
    ..Builtin::new(
        (GROUP, "v1", "ClusterRoleBinding", "clusterrolebindings"),
        &ClusterRoleBinding,
        openapi::type_schema::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(),
    )
};

pub static ROLE: Builtin = Builtin::new(
    (GROUP, "v1", "Role", "roles"),
    &Role,
    openapi::type_schema::<k8s_openapi::api::rbac::v1::Role>(),
);

pub static ROLE_BINDING: Builtin = Builtin::new(
    (GROUP, "v1", "RoleBinding", "rolebindings"),
    &RoleBinding,
    openapi::type_schema::<k8s_openapi::api::rbac::v1::RoleBinding>(),
);

struct Role;
struct ClusterRole;
struct RoleBinding;
struct ClusterRoleBinding;

impl Kind for Role {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn decode_protobuf(&self, raw: &[u8]) -> Option<Result<Value, prost::DecodeError>> {
        Some(
            k8s_pb::api::rbac::v1::Role::decode(raw)
                .map(|role| rules_object(role.metadata, role.rules)),
        )
    }
}

impl Kind for ClusterRole {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn decode_protobuf(&self, raw: &[u8]) -> Option<Result<Value, prost::DecodeError>> {
        Some(
            k8s_pb::api::rbac::v1::ClusterRole::decode(raw)
                .map(|role| rules_object(role.metadata, role.rules)),
        )
    }
}

impl Kind for RoleBinding {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn decode_protobuf(&self, raw: &[u8]) -> Option<Result<Value, prost::DecodeError>> {
        Some(
            k8s_pb::api::rbac::v1::RoleBinding::decode(raw).map(|binding| {
                binding_object(binding.metadata, binding.role_ref, binding.subjects)
            }),
        )
    }
}

impl Kind for ClusterRoleBinding {
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn decode_protobuf(&self, raw: &[u8]) -> Option<Result<Value, prost::DecodeError>> {
        Some(
            k8s_pb::api::rbac::v1::ClusterRoleBinding::decode(raw).map(|binding| {
                binding_object(binding.metadata, binding.role_ref, binding.subjects)
            }),
        )
    }
}

fn rules_object(
    metadata: Option<k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
    rules: Vec<k8s_pb::api::rbac::v1::PolicyRule>,
) -> Value {
    json!({
        "metadata": protobuf::object_meta(metadata.unwrap_or_default()),
        "rules": rules.into_iter().map(policy_rule).collect::<Vec<_>>(),
    })
}

fn policy_rule(rule: k8s_pb::api::rbac::v1::PolicyRule) -> Value {
    let mut out = serde_json::Map::new();
    for (key, values) in [
        ("verbs", rule.verbs),
        ("apiGroups", rule.api_groups),
        ("resources", rule.resources),
        ("resourceNames", rule.resource_names),
        ("nonResourceURLs", rule.non_resource_ur_ls),
    ] {
        if key == "verbs" || !values.is_empty() {
            out.insert(key.to_string(), json!(values));
        }
    }
    Value::Object(out)
}

fn binding_object(
    metadata: Option<k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
    role_ref: Option<k8s_pb::api::rbac::v1::RoleRef>,
    subjects: Vec<k8s_pb::api::rbac::v1::Subject>,
) -> Value {
    let role_ref = role_ref.unwrap_or_default();
    let subjects: Vec<Value> = subjects
        .into_iter()
        .map(|s| {
            let mut subject = json!({"kind": s.kind, "name": s.name});
            if let Some(group) = s.api_group.filter(|g| !g.is_empty()) {
                subject["apiGroup"] = group.into();
            }
            if let Some(ns) = s.namespace.filter(|n| !n.is_empty()) {
                subject["namespace"] = ns.into();
            }
            subject
        })
        .collect();
    json!({
        "metadata": protobuf::object_meta(metadata.unwrap_or_default()),
        "roleRef": {"apiGroup": role_ref.api_group, "kind": role_ref.kind, "name": role_ref.name},
        "subjects": subjects,
    })
}
