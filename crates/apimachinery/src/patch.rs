//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and
//! strategic merge patch, the form kubectl sends for built-in kinds.
//!
//! A strategic merge patch differs from a merge patch in how lists merge:
//! lists declared `patchStrategy: merge` in the Kubernetes types merge their
//! items by a key (containers by name, ports by containerPort, ...), and
//! the patch may carry directives (`$patch`, `$retainKeys`,
//! `$setElementOrder/<field>`, `$deleteFromPrimitiveList/<field>`).
//! [`PatchMeta`] holds that per-kind list metadata.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// The patch formats, by their content types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    JsonPatch,
    MergePatch,
    StrategicMergePatch,
    /// Server-side apply; recognised so a server can refuse it clearly.
    ApplyPatch,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        match content_type {
            "application/json-patch+json" => Some(PatchType::JsonPatch),
            "application/merge-patch+json" => Some(PatchType::MergePatch),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMergePatch),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(PatchType::ApplyPatch),
            _ => None,
        }
    }
}

/// Why a patch failed. Upstream answers a malformed patch with 400 Bad
/// Request and a patch that cannot be applied to the object (a failed
/// `test`, a missing path) with 422; [`PatchError::is_malformed`] tells
/// which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Inapplicable(String),
    #[error("strategic merge patch is not supported for this kind")]
    NoStrategy,
}

impl PatchError {
    pub fn is_malformed(&self) -> bool {
        matches!(self, PatchError::Malformed(_) | PatchError::NoStrategy)
    }
}

/// How a list field merges in a strategic merge patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// Items are objects merged by the value of this key.
    MergeByKey(&'static str),
    /// Items are scalars; the patch's are added (a set union).
    MergePrimitives,
}

/// List strategies of one kind, by field path (`spec.containers`,
/// `spec.containers.ports`: list item levels are not written).
#[derive(Debug, Clone, Default)]
pub struct PatchMeta {
    lists: HashMap<String, ListStrategy>,
}

const OBJECT_META: &[(&str, ListStrategy)] = &[
    ("metadata.ownerReferences", ListStrategy::MergeByKey("uid")),
    ("metadata.finalizers", ListStrategy::MergePrimitives),
];

const POD_SPEC: &[(&str, ListStrategy)] = &[
    ("containers", ListStrategy::MergeByKey("name")),
    ("initContainers", ListStrategy::MergeByKey("name")),
    ("ephemeralContainers", ListStrategy::MergeByKey("name")),
    ("volumes", ListStrategy::MergeByKey("name")),
    ("imagePullSecrets", ListStrategy::MergeByKey("name")),
    ("hostAliases", ListStrategy::MergeByKey("ip")),
    ("resourceClaims", ListStrategy::MergeByKey("name")),
    ("topologySpreadConstraints", ListStrategy::MergeByKey("topologyKey")),
];

/// Fields of containers (and init/ephemeral containers).
const CONTAINER: &[(&str, ListStrategy)] = &[
    ("ports", ListStrategy::MergeByKey("containerPort")),
    ("env", ListStrategy::MergeByKey("name")),
    ("volumeMounts", ListStrategy::MergeByKey("mountPath")),
    ("volumeDevices", ListStrategy::MergeByKey("devicePath")),
    ("resizePolicy", ListStrategy::MergeByKey("resourceName")),
];

const CONDITIONS: (&str, ListStrategy) = ("status.conditions", ListStrategy::MergeByKey("type"));

impl PatchMeta {
    /// The metadata of a built-in kind; none for kinds strategic merge
    /// patch does not apply to (custom resources).
    pub fn for_kind(group: &str, _version: &str, kind: &str) -> Option<PatchMeta> {
        let mut meta = PatchMeta::default();
        meta.add("", OBJECT_META);
        match (group, kind) {
            ("", "Pod") => {
                meta.add_pod_spec("spec");
                meta.add("", &[CONDITIONS, ("status.podIPs", ListStrategy::MergeByKey("ip"))]);
            }
            ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") | ("batch", "Job") => {
                meta.add_pod_spec("spec.template.spec");
                meta.add("spec.template.", OBJECT_META);
                meta.add("", &[CONDITIONS]);
            }
            ("", "Node") => meta.add(
                "",
                &[
                    CONDITIONS,
                    ("status.addresses", ListStrategy::MergeByKey("type")),
                    ("spec.podCIDRs", ListStrategy::MergePrimitives),
                ],
            ),
            ("", "Service") => meta.add(
                "",
                &[("spec.ports", ListStrategy::MergeByKey("port")), CONDITIONS],
            ),
            ("", "Namespace") => meta.add("", &[CONDITIONS]),
            ("", "ServiceAccount") => meta.add("", &[("secrets", ListStrategy::MergeByKey("name"))]),
            ("", "ConfigMap" | "Secret" | "Event")
            | ("events.k8s.io", "Event")
            | ("coordination.k8s.io", "Lease")
            | ("apiextensions.k8s.io", "CustomResourceDefinition")
            | ("rbac.authorization.k8s.io", _) => {}
            _ => return None,
        }
        Some(meta)
    }

    fn add(&mut self, prefix: &str, entries: &[(&str, ListStrategy)]) {
        for (path, strategy) in entries {
            self.lists.insert(format!("{prefix}{path}"), *strategy);
        }
    }

    fn add_pod_spec(&mut self, at: &str) {
        self.add(&format!("{at}."), POD_SPEC);
        for list in ["containers", "initContainers", "ephemeralContainers"] {
            self.add(&format!("{at}.{list}."), CONTAINER);
        }
    }

    fn strategy(&self, path: &str) -> Option<ListStrategy> {
        self.lists.get(path).copied()
    }
}

/// Applies a patch of the given type to `original`.
pub fn apply(
    patch_type: PatchType,
    original: &Value,
    patch: &[u8],
    meta: Option<&PatchMeta>,
) -> Result<Value, PatchError> {
    match patch_type {
        PatchType::JsonPatch => {
            let ops: json_patch::Patch = serde_json::from_slice(patch)
                .map_err(|err| PatchError::Malformed(format!("invalid JSON patch: {err}")))?;
            let mut doc = original.clone();
            json_patch::patch(&mut doc, &ops).map_err(|err| PatchError::Inapplicable(err.to_string()))?;
            Ok(doc)
        }
        PatchType::MergePatch => {
            let patch = parse_object(patch)?;
            let mut doc = original.clone();
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
        PatchType::StrategicMergePatch => {
            let meta = meta.ok_or(PatchError::NoStrategy)?;
            let patch = parse_object(patch)?;
            let mut doc = original.clone();
            let Value::Object(patch_map) = &patch else {
                return Err(PatchError::Malformed("a strategic merge patch must be a JSON object".into()));
            };
            match &mut doc {
                Value::Object(doc_map) => merge_map(doc_map, patch_map, "", meta)?,
                other => *other = Value::Object(fresh_map(patch_map, "", meta)?),
            }
            Ok(doc)
        }
        PatchType::ApplyPatch => Err(PatchError::Malformed("server-side apply is not supported".into())),
    }
}

fn parse_object(patch: &[u8]) -> Result<Value, PatchError> {
    let value: Value = serde_json::from_slice(patch)
        .map_err(|err| PatchError::Malformed(format!("invalid JSON in patch: {err}")))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(PatchError::Malformed("the patch must be a JSON object".into()))
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// A patch value applied to nothing: directives resolved away.
fn fresh(value: &Value, path: &str, meta: &PatchMeta) -> Result<Value, PatchError> {
    match value {
        Value::Object(map) => Ok(Value::Object(fresh_map(map, path, meta)?)),
        Value::Array(items) => {
            let mut out = Vec::new();
            merge_list(&mut out, items, path, meta)?;
            Ok(Value::Array(out))
        }
        other => Ok(other.clone()),
    }
}

fn fresh_map(patch: &Map<String, Value>, path: &str, meta: &PatchMeta) -> Result<Map<String, Value>, PatchError> {
    let mut out = Map::new();
    merge_map(&mut out, patch, path, meta)?;
    Ok(out)
}

fn merge_map(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    path: &str,
    meta: &PatchMeta,
) -> Result<(), PatchError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replacement = patch.clone();
            replacement.remove("$patch");
            *original = fresh_map(&replacement, path, meta)?;
            return Ok(());
        }
        Some("delete") => {
            original.clear();
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => return Err(PatchError::Malformed(format!("unknown patch directive {other:?}"))),
    }
    let mut orders = Vec::new();
    for (key, value) in patch {
        if key == "$patch" || key == "$retainKeys" {
            continue;
        }
        if let Some(field) = key.strip_prefix("$setElementOrder/") {
            orders.push((field.to_string(), value.clone()));
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            let remove = value
                .as_array()
                .ok_or_else(|| PatchError::Malformed(format!("{key} must be a list")))?;
            if let Some(Value::Array(items)) = original.get_mut(field) {
                items.retain(|item| !remove.contains(item));
            }
            continue;
        }
        let field_path = join(path, key);
        match value {
            Value::Null => {
                original.remove(key);
            }
            Value::Object(patch_child) => match original.get_mut(key) {
                Some(Value::Object(orig_child)) => merge_map(orig_child, patch_child, &field_path, meta)?,
                _ => {
                    if patch_child.get("$patch").and_then(Value::as_str) == Some("delete") {
                        original.remove(key);
                    } else {
                        original.insert(key.clone(), Value::Object(fresh_map(patch_child, &field_path, meta)?));
                    }
                }
            },
            Value::Array(patch_items) if meta.strategy(&field_path).is_some() => {
                let entry = original.entry(key.clone()).or_insert_with(|| Value::Array(Vec::new()));
                if !entry.is_array() {
                    *entry = Value::Array(Vec::new());
                }
                if let Value::Array(orig_items) = entry {
                    merge_list(orig_items, patch_items, &field_path, meta)?;
                }
            }
            other => {
                original.insert(key.clone(), fresh(other, &field_path, meta)?);
            }
        }
    }
    if let Some(retain) = patch.get("$retainKeys") {
        let keep: Vec<&str> = retain
            .as_array()
            .ok_or_else(|| PatchError::Malformed("$retainKeys must be a list".into()))?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        original.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (field, order) in orders {
        let strategy = meta.strategy(&join(path, &field));
        if let (Some(Value::Array(items)), Some(order)) = (original.get_mut(&field), order.as_array()) {
            reorder(items, order, strategy);
        }
    }
    Ok(())
}

fn merge_list(original: &mut Vec<Value>, patch: &[Value], path: &str, meta: &PatchMeta) -> Result<(), PatchError> {
    let strategy = meta.strategy(path);
    let replace = patch
        .iter()
        .any(|item| item.get("$patch").and_then(Value::as_str) == Some("replace"));
    if replace {
        original.clear();
    }
    for item in patch {
        if item.get("$patch").and_then(Value::as_str) == Some("replace") && item.as_object().is_some_and(|m| m.len() == 1) {
            continue;
        }
        match (strategy, item) {
            (Some(ListStrategy::MergeByKey(key)), Value::Object(patch_item)) => {
                let Some(id) = patch_item.get(key) else {
                    return Err(PatchError::Malformed(format!(
                        "map: {item} does not contain declared merge key: {key}"
                    )));
                };
                let position = original.iter().position(|o| o.get(key) == Some(id));
                let delete = patch_item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (position, delete) {
                    (Some(i), true) => {
                        original.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => {
                        if let Value::Object(orig_item) = &mut original[i] {
                            merge_map(orig_item, patch_item, path, meta)?;
                        }
                    }
                    (None, false) => original.push(Value::Object(fresh_map(patch_item, path, meta)?)),
                }
            }
            (Some(ListStrategy::MergePrimitives), primitive) => {
                if !original.contains(primitive) {
                    original.push(primitive.clone());
                }
            }
            (_, other) => original.push(fresh(other, path, meta)?),
        }
    }
    Ok(())
}

/// `$setElementOrder`: items named in `order` first, in that order, then
/// the rest in their current order.
fn reorder(items: &mut Vec<Value>, order: &[Value], strategy: Option<ListStrategy>) {
    let id_of = |item: &Value| -> Value {
        match strategy {
            Some(ListStrategy::MergeByKey(key)) => item.get(key).cloned().unwrap_or(Value::Null),
            _ => item.clone(),
        }
    };
    let wanted: Vec<Value> = order.iter().map(&id_of).collect();
    let mut ordered = Vec::with_capacity(items.len());
    for id in &wanted {
        if let Some(pos) = items.iter().position(|item| id_of(item) == *id) {
            ordered.push(items.remove(pos));
        }
    }
    ordered.append(items);
    *items = ordered;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x", "y"]},
            "spec": {"containers": [
                {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
                {"name": "side", "image": "side:1"}
            ]}
        })
    }

    fn smp(original: &Value, patch: Value) -> Value {
        let meta = PatchMeta::for_kind("", "v1", "Pod").unwrap();
        apply(PatchType::StrategicMergePatch, original, patch.to_string().as_bytes(), Some(&meta)).unwrap()
    }

    #[test]
    fn containers_merge_by_name() {
        let out = smp(&pod(), json!({"spec": {"containers": [{"name": "app", "image": "app:2"}]}}));
        assert_eq!(out["spec"]["containers"][0]["image"], "app:2");
        assert_eq!(out["spec"]["containers"][0]["env"][0]["name"], "A", "unpatched fields stay");
        assert_eq!(out["spec"]["containers"][1]["name"], "side", "other containers stay");
        let merge = apply(
            PatchType::MergePatch,
            &pod(),
            br#"{"spec":{"containers":[{"name":"app","image":"app:2"}]}}"#,
            None,
        )
        .unwrap();
        assert_eq!(merge["spec"]["containers"].as_array().unwrap().len(), 1, "merge patch replaces lists");
    }

    #[test]
    fn nested_lists_merge_by_their_keys() {
        let out = smp(&pod(), json!({"spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "2"}]}]}}));
        let env = out["spec"]["containers"][0]["env"].as_array().unwrap();
        assert_eq!(env.len(), 2);
    }

    #[test]
    fn delete_directive_removes_one_item() {
        let out = smp(&pod(), json!({"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}));
        let names: Vec<&str> = out["spec"]["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["app"]);
    }

    #[test]
    fn replace_directive_and_null_deletion() {
        let out = smp(&pod(), json!({"metadata": {"labels": {"$patch": "replace", "b": "2"}, "finalizers": null}}));
        assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
        assert!(out["metadata"].get("finalizers").is_none());
        let out = smp(&pod(), json!({"metadata": {"labels": {"a": null, "c": "3"}}}));
        assert_eq!(out["metadata"]["labels"], json!({"c": "3"}));
    }

    #[test]
    fn set_element_order_and_primitive_lists() {
        let out = smp(
            &pod(),
            json!({"spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "app"}], "containers": [{"name": "side", "image": "side:2"}]}}),
        );
        assert_eq!(out["spec"]["containers"][0]["name"], "side");
        assert_eq!(out["spec"]["containers"][0]["image"], "side:2");
        let out = smp(&pod(), json!({"metadata": {"finalizers": ["z", "x"]}}));
        assert_eq!(out["metadata"]["finalizers"], json!(["x", "y", "z"]));
        let out = smp(&pod(), json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}));
        assert_eq!(out["metadata"]["finalizers"], json!(["y"]));
    }

    #[test]
    fn retain_keys_drops_unlisted_fields() {
        let original = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let meta = PatchMeta::for_kind("apps", "v1", "Deployment").unwrap();
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        let out = apply(PatchType::StrategicMergePatch, &original, patch.to_string().as_bytes(), Some(&meta)).unwrap();
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn json_patch_and_errors() {
        let ops = br#"[{"op":"replace","path":"/metadata/name","value":"q"},{"op":"add","path":"/metadata/labels/b","value":"2"}]"#;
        let out = apply(PatchType::JsonPatch, &pod(), ops, None).unwrap();
        assert_eq!(out["metadata"]["name"], "q");
        assert_eq!(out["metadata"]["labels"]["b"], "2");
        let err = apply(PatchType::JsonPatch, &pod(), b"{not json", None).unwrap_err();
        assert!(err.is_malformed());
        let failing = br#"[{"op":"test","path":"/metadata/name","value":"other"}]"#;
        let err = apply(PatchType::JsonPatch, &pod(), failing, None).unwrap_err();
        assert!(!err.is_malformed(), "a failed test is a 422, not a 400");
        let err = apply(PatchType::StrategicMergePatch, &pod(), b"{}", None).unwrap_err();
        assert_eq!(err, PatchError::NoStrategy);
        assert!(apply(PatchType::MergePatch, &pod(), b"[1]", None).unwrap_err().is_malformed());
    }

    #[test]
    fn content_types() {
        assert_eq!(PatchType::from_content_type("application/merge-patch+json"), Some(PatchType::MergePatch));
        assert_eq!(PatchType::from_content_type("application/json-patch+json"), Some(PatchType::JsonPatch));
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json"),
            Some(PatchType::StrategicMergePatch)
        );
        assert_eq!(PatchType::from_content_type("text/plain"), None);
    }
}
