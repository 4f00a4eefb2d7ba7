//! Kubernetes protobuf request bodies.
//!
//! kubectl's typed clients (`kubectl create namespace`, `create configmap`,
//! `create secret`, `create serviceaccount`, `create role`, `create
//! clusterrole`, `create rolebinding`, `create clusterrolebinding`) send
//! `application/vnd.kubernetes.protobuf`: the magic `k8s\0`, then a
//! `runtime.Unknown` envelope whose `raw` field holds the object. The
//! server stores JSON, so the kinds those commands send are decoded (with
//! k8s-pb's generated types) into the JSON form; other kinds are refused
//! with 415 so the client can tell what to send instead.

use base64::Engine;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::rbac::v1 as rbac;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::registry::ResourceDef;

pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// Decodes a protobuf request body for `def` into its JSON form.
pub fn decode(def: &ResourceDef, body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| {
        ApiError::bad_request("protobuf body does not start with the Kubernetes magic number")
    })?;
    let unknown = Unknown::decode(envelope).map_err(|err| bad(&err))?;
    let raw = unknown.raw.unwrap_or_default();
    let mut object = match (def.group.as_str(), def.kind.as_str()) {
        ("", "Namespace") => {
            let ns = core::Namespace::decode(raw.as_slice()).map_err(|err| bad(&err))?;
            let mut obj = json!({"metadata": object_meta(ns.metadata.unwrap_or_default())});
            if let Some(spec) = ns.spec.filter(|s| !s.finalizers.is_empty()) {
                obj["spec"] = json!({"finalizers": spec.finalizers});
            }
            obj
        }
        ("", "ConfigMap") => {
            let cm = core::ConfigMap::decode(raw.as_slice()).map_err(|err| bad(&err))?;
            let mut obj = json!({"metadata": object_meta(cm.metadata.unwrap_or_default())});
            if !cm.data.is_empty() {
                obj["data"] = json!(cm.data);
            }
            if !cm.binary_data.is_empty() {
                obj["binaryData"] = base64_map(cm.binary_data);
            }
            if let Some(immutable) = cm.immutable {
                obj["immutable"] = immutable.into();
            }
            obj
        }
        ("", "Secret") => {
            let secret = core::Secret::decode(raw.as_slice()).map_err(|err| bad(&err))?;
            let mut obj = json!({"metadata": object_meta(secret.metadata.unwrap_or_default())});
            if !secret.data.is_empty() {
                obj["data"] = base64_map(secret.data);
            }
            if !secret.string_data.is_empty() {
                obj["stringData"] = json!(secret.string_data);
            }
            if let Some(t) = secret.r#type {
                obj["type"] = t.into();
            }
            if let Some(immutable) = secret.immutable {
                obj["immutable"] = immutable.into();
            }
            obj
        }
        ("", "ServiceAccount") => {
            let sa = core::ServiceAccount::decode(raw.as_slice()).map_err(|err| bad(&err))?;
            let mut obj = json!({"metadata": object_meta(sa.metadata.unwrap_or_default())});
            if !sa.image_pull_secrets.is_empty() {
                let names: Vec<Value> = sa
                    .image_pull_secrets
                    .into_iter()
                    .map(|s| json!({"name": s.name.unwrap_or_default()}))
                    .collect();
                obj["imagePullSecrets"] = names.into();
            }
            if let Some(automount) = sa.automount_service_account_token {
                obj["automountServiceAccountToken"] = automount.into();
            }
            obj
        }
        ("rbac.authorization.k8s.io", "Role") => {
            let role = rbac::Role::decode(raw.as_slice()).map_err(|err| bad(&err))?;
            json!({
                "metadata": object_meta(role.metadata.unwrap_or_default()),
                "rules": role.rules.into_iter().map(policy_rule).collect::<Vec<_>>(),
            })
        }
        ("rbac.authorization.k8s.io", "ClusterRole") => {
            let role = rbac::ClusterRole::decode(raw.as_slice()).map_err(|err| bad(&err))?;
            json!({
                "metadata": object_meta(role.metadata.unwrap_or_default()),
                "rules": role.rules.into_iter().map(policy_rule).collect::<Vec<_>>(),
            })
        }
        ("rbac.authorization.k8s.io", "RoleBinding") => {
            let binding = rbac::RoleBinding::decode(raw.as_slice()).map_err(|err| bad(&err))?;
            role_binding(binding.metadata, binding.role_ref, binding.subjects)
        }
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            let binding =
                rbac::ClusterRoleBinding::decode(raw.as_slice()).map_err(|err| bad(&err))?;
            role_binding(binding.metadata, binding.role_ref, binding.subjects)
        }
        _ => {
            return Err(ApiError::unsupported_media_type(&format!(
                "{CONTENT_TYPE} (for {}; send application/json)",
                def.kind
            )));
        }
    };
    object["apiVersion"] = def.api_version().into();
    object["kind"] = def.kind.clone().into();
    Ok(object)
}

fn policy_rule(rule: rbac::PolicyRule) -> Value {
    let mut out = Map::new();
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

fn role_binding(
    metadata: Option<meta::ObjectMeta>,
    role_ref: Option<rbac::RoleRef>,
    subjects: Vec<rbac::Subject>,
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
        "metadata": object_meta(metadata.unwrap_or_default()),
        "roleRef": {"apiGroup": role_ref.api_group, "kind": role_ref.kind, "name": role_ref.name},
        "subjects": subjects,
    })
}

fn bad(err: &prost::DecodeError) -> ApiError {
    ApiError::bad_request(format!(
        "the body of the request could not be decoded as protobuf: {err}"
    ))
}

fn base64_map(map: std::collections::BTreeMap<String, Vec<u8>>) -> Value {
    let engine = base64::engine::general_purpose::STANDARD;
    Value::Object(
        map.into_iter()
            .map(|(k, v)| (k, Value::String(engine.encode(v))))
            .collect(),
    )
}

/// The fields of ObjectMeta a client may set on create.
fn object_meta(m: meta::ObjectMeta) -> Value {
    let mut out = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            out.insert(key.to_string(), v);
        }
    };
    put("name", m.name.filter(|s| !s.is_empty()).map(Value::from));
    put(
        "generateName",
        m.generate_name.filter(|s| !s.is_empty()).map(Value::from),
    );
    put(
        "namespace",
        m.namespace.filter(|s| !s.is_empty()).map(Value::from),
    );
    put("labels", (!m.labels.is_empty()).then(|| json!(m.labels)));
    put(
        "annotations",
        (!m.annotations.is_empty()).then(|| json!(m.annotations)),
    );
    put(
        "finalizers",
        (!m.finalizers.is_empty()).then(|| json!(m.finalizers)),
    );
    let owners: Vec<Value> = m
        .owner_references
        .into_iter()
        .map(|o| {
            json!({
                "apiVersion": o.api_version.unwrap_or_default(),
                "kind": o.kind.unwrap_or_default(),
                "name": o.name.unwrap_or_default(),
                "uid": o.uid.unwrap_or_default(),
                "controller": o.controller,
                "blockOwnerDeletion": o.block_owner_deletion,
            })
        })
        .collect();
    put(
        "ownerReferences",
        (!owners.is_empty()).then(|| owners.into()),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn envelope(kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
                api_version: Some("v1".into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: None,
            content_type: None,
        };
        let mut body = MAGIC.to_vec();
        body.extend(unknown.encode_to_vec());
        body
    }

    #[test]
    fn configmaps_decode_to_json() {
        let cm = core::ConfigMap {
            metadata: Some(meta::ObjectMeta {
                name: Some("hello".into()),
                labels: [("a".to_string(), "b".to_string())].into(),
                ..Default::default()
            }),
            data: [("k".to_string(), "v".to_string())].into(),
            binary_data: [("bin".to_string(), vec![0u8, 1])].into(),
            immutable: None,
        };
        let def = Registry::new()
            .snapshot()
            .get("", "v1", "configmaps")
            .unwrap();
        let obj = decode(&def, &envelope("ConfigMap", cm.encode_to_vec())).unwrap();
        assert_eq!(
            obj,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hello", "labels": {"a": "b"}},
                   "data": {"k": "v"}, "binaryData": {"bin": "AAE="}})
        );
    }

    #[test]
    fn rbac_objects_decode_to_json() {
        let binding = rbac::RoleBinding {
            metadata: Some(meta::ObjectMeta {
                name: Some("rb".into()),
                ..Default::default()
            }),
            subjects: vec![rbac::Subject {
                kind: Some("ServiceAccount".into()),
                api_group: Some(String::new()),
                name: Some("w".into()),
                namespace: Some("team".into()),
            }],
            role_ref: Some(rbac::RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: Some("Role".into()),
                name: Some("reader".into()),
            }),
        };
        let snapshot = Registry::new().snapshot();
        let def = snapshot
            .get("rbac.authorization.k8s.io", "v1", "rolebindings")
            .unwrap();
        let obj = decode(&def, &envelope("RoleBinding", binding.encode_to_vec())).unwrap();
        assert_eq!(
            obj,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
                   "subjects": [{"kind": "ServiceAccount", "name": "w", "namespace": "team"}]})
        );
        let role = rbac::ClusterRole {
            metadata: Some(meta::ObjectMeta {
                name: Some("metrics".into()),
                ..Default::default()
            }),
            rules: vec![rbac::PolicyRule {
                verbs: vec!["get".into()],
                non_resource_ur_ls: vec!["/metrics".into()],
                ..Default::default()
            }],
            aggregation_rule: None,
        };
        let def = snapshot
            .get("rbac.authorization.k8s.io", "v1", "clusterroles")
            .unwrap();
        let obj = decode(&def, &envelope("ClusterRole", role.encode_to_vec())).unwrap();
        assert_eq!(
            obj["rules"],
            json!([{"verbs": ["get"], "nonResourceURLs": ["/metrics"]}])
        );
    }

    #[test]
    fn bad_bodies_and_other_kinds_are_refused() {
        let def = Registry::new()
            .snapshot()
            .get("", "v1", "configmaps")
            .unwrap();
        assert_eq!(decode(&def, b"{}").unwrap_err().code, 400);
        assert_eq!(decode(&def, b"k8s\0\xff\xff").unwrap_err().code, 400);
        let pods = Registry::new().snapshot().get("", "v1", "pods").unwrap();
        assert_eq!(
            decode(&pods, &envelope("Pod", Vec::new()))
                .unwrap_err()
                .code,
            415
        );
    }
}
