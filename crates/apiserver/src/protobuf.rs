//! Kubernetes protobuf request bodies.
//!
//! kubectl's typed clients (`kubectl create namespace`, `create configmap`,
//! `create secret`, `create serviceaccount`, `create role`, `create
//! clusterrole`, `create rolebinding`, `create clusterrolebinding`) send
//! `application/vnd.kubernetes.protobuf`: the magic `k8s\0`, then a
//! `runtime.Unknown` envelope whose `raw` field holds the object. The
//! server stores JSON, so each kind those commands send decodes its own
//! message (k8s-pb's generated types) into the JSON form, with the helpers
//! here; other kinds are refused with 415 so the client can tell what to
//! send instead.

use base64::Engine;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::registry::ResourceDef;

pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// Decodes a protobuf request body for `def` into its JSON form, through
/// the kind's own decoder; kinds without one answer 415.
pub fn decode(def: &ResourceDef, body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| {
        ApiError::bad_request("protobuf body does not start with the Kubernetes magic number")
    })?;
    let unknown = Unknown::decode(envelope).map_err(|err| bad(&err))?;
    let raw = unknown.raw.unwrap_or_default();
    let mut object = match def.rules.decode_protobuf(&raw) {
        Some(decoded) => decoded.map_err(|err| bad(&err))?,
        None => {
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

fn bad(err: &prost::DecodeError) -> ApiError {
    ApiError::bad_request(format!(
        "the body of the request could not be decoded as protobuf: {err}"
    ))
}

pub(crate) fn base64_map(map: std::collections::BTreeMap<String, Vec<u8>>) -> Value {
    let engine = base64::engine::general_purpose::STANDARD;
    Value::Object(
        map.into_iter()
            .map(|(k, v)| (k, Value::String(engine.encode(v))))
            .collect(),
    )
}

/// The fields of ObjectMeta a client may set on create.
pub(crate) fn object_meta(m: meta::ObjectMeta) -> Value {
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
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::api::rbac::v1 as rbac;

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
