//! The rules every kind shares on create and update — identity, metadata
//! ownership, the spec/status split, generation, metadata validation, the
//! generic selectable fields — around the hooks of the kind's own rules
//! (`crate::kinds`).

use apimachinery::validation;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, FieldError, Subject};
use crate::kinds::{NameRule, StatusWrites, text_at};
use crate::registry::ResourceDef;

/// The largest total size of an object's annotations, as upstream.
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteScope {
    /// The main resource: everything but status (for kinds with a status
    /// subresource).
    Main,
    /// The status subresource: only status.
    Status,
    /// The server's own change of a stored object (deletion marks, bindings,
    /// scale): nothing is carried over or reset.
    Internal,
}

pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn subject(def: &ResourceDef, obj: &Value) -> Subject {
    Subject::new(&def.group, &def.plural, name_of(obj))
}

pub fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

/// Checks that a request body is an object of the kind the path names.
pub fn check_kind(def: &ResourceDef, obj: &Value) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let expected_version = def.api_version();
    if !api_version.is_empty() && api_version != expected_version {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({expected_version})"
        )));
    }
    if !kind.is_empty() && kind != def.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            def.kind
        )));
    }
    if obj.get("metadata").is_some_and(|m| !m.is_object()) {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    Ok(())
}

/// Prepares a new object for storage: identity, timestamps, defaults and the
/// status a new object starts with.
pub fn prepare_create(def: &ResourceDef, obj: &mut Value, namespace: Option<&str>) {
    obj["apiVersion"] = def.api_version().into();
    obj["kind"] = def.kind.clone().into();
    let meta = metadata_mut(obj);
    if meta
        .get("name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
        && let Some(base) = meta.get("generateName").and_then(Value::as_str)
        && !base.is_empty()
    {
        let name = validation::generate_name(base);
        meta.insert("name".into(), name.into());
    }
    match namespace {
        Some(ns) if def.namespaced => {
            meta.insert("namespace".into(), ns.into());
        }
        _ => {
            meta.remove("namespace");
        }
    }
    meta.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
    meta.insert("creationTimestamp".into(), now_rfc3339().into());
    meta.remove("resourceVersion");
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    meta.remove("selfLink");
    if def.generation {
        meta.insert("generation".into(), 1.into());
    } else {
        meta.remove("generation");
    }
    if def.status_subresource
        && !def.rules.keeps_status_on_create()
        && let Some(obj) = obj.as_object_mut()
    {
        obj.remove("status");
    }
    def.rules.defaults(obj);
    def.rules.prepare_create(def, obj);
}

/// Carries over what a write may not change and splits spec from status.
pub fn prepare_update(def: &ResourceDef, new: &mut Value, old: &Value, scope: WriteScope) {
    // The stored form keeps its own apiVersion (a view such as
    // events.k8s.io/v1 was converted before this point).
    new["apiVersion"] = old
        .get("apiVersion")
        .cloned()
        .unwrap_or_else(|| def.api_version().into());
    new["kind"] = def.kind.clone().into();
    if scope == WriteScope::Internal {
        bump_generation(def, new, old);
        return;
    }
    if scope == WriteScope::Status && def.rules.status_writes() == StatusWrites::StatusAndMetadata {
        // Pod and node status writes (kubelets) may also change labels and
        // annotations; spec and the identity fields stay as they were.
        keep_identity(new, old);
        if let Some(owners) = old.pointer("/metadata/ownerReferences") {
            metadata_mut(new).insert("ownerReferences".into(), owners.clone());
        } else {
            metadata_mut(new).remove("ownerReferences");
        }
        match old.get("spec") {
            Some(spec) => new["spec"] = spec.clone(),
            None => {
                new.as_object_mut().map(|o| o.remove("spec"));
            }
        }
        return;
    }
    if scope == WriteScope::Status {
        // Other status writes change status only.
        let status = new.get("status").cloned();
        let mut merged = old.clone();
        match status {
            Some(status) => merged["status"] = status,
            None => {
                merged.as_object_mut().map(|o| o.remove("status"));
            }
        }
        *new = merged;
        return;
    }
    keep_identity(new, old);
    if def.status_subresource {
        match old.get("status") {
            Some(status) => new["status"] = status.clone(),
            None => {
                new.as_object_mut().map(|o| o.remove("status"));
            }
        }
    }
    def.rules.defaults(new);
    def.rules.prepare_update(def, new, old);
    bump_generation(def, new, old);
}

fn bump_generation(def: &ResourceDef, new: &mut Value, old: &Value) {
    if def.generation && spec_changed(new, old) {
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        metadata_mut(new).insert("generation".into(), (generation + 1).into());
    }
}

/// Carries over the metadata a client may not change.
fn keep_identity(new: &mut Value, old: &Value) {
    let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let meta = metadata_mut(new);
    for field in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_meta.get(field) {
            Some(v) => {
                meta.insert(field.into(), v.clone());
            }
            None => {
                meta.remove(field);
            }
        }
    }
    meta.remove("resourceVersion");
    meta.remove("selfLink");
}

/// Whether anything outside metadata and status differs.
fn spec_changed(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| -> Map<String, Value> {
        v.as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    strip(new) != strip(old)
}

/// Validates an object about to be stored; returns the 422 to send.
pub fn validate(def: &ResourceDef, obj: &Value) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    let name = name_of(obj);
    if name.is_empty() {
        if obj
            .pointer("/metadata/generateName")
            .and_then(Value::as_str)
            .is_none()
        {
            errors.push(FieldError::required("metadata.name"));
        }
    } else {
        for msg in name_errors(def, name) {
            errors.push(FieldError::invalid("metadata.name", name, msg));
        }
    }
    validate_labels(obj, &mut errors);
    validate_annotations(obj, &mut errors);
    validate_finalizers(obj, &mut errors);
    def.rules.validate(def, obj, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&def.kind, subject(def, obj), errors))
    }
}

/// The kind's checks of an update against the stored object; the 422 to
/// send.
pub fn validate_update(def: &ResourceDef, new: &Value, old: &Value) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    def.rules.validate_update(new, old, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&def.kind, subject(def, new), errors))
    }
}

fn name_errors(def: &ResourceDef, name: &str) -> Vec<String> {
    match def.rules.name_rule() {
        NameRule::Label => validation::is_dns1123_label(name),
        NameRule::Dns1035Label => validation::is_dns1035_label(name),
        NameRule::PathSegment => validation::is_path_segment_name(name)
            .into_iter()
            .chain(if name.len() > 253 {
                Some("must be no more than 253 characters".to_string())
            } else {
                None
            })
            .collect(),
        NameRule::Subdomain => validation::is_dns1123_subdomain(name),
    }
}

fn validate_labels(obj: &Value, errors: &mut Vec<FieldError>) {
    let Some(labels) = obj.pointer("/metadata/labels") else {
        return;
    };
    let Some(labels) = labels.as_object() else {
        errors.push(FieldError::invalid(
            "metadata.labels",
            &labels.to_string(),
            "must be a map of strings",
        ));
        return;
    };
    for (key, value) in labels {
        for msg in validation::is_qualified_name(key) {
            errors.push(FieldError::invalid("metadata.labels", key, msg));
        }
        match value.as_str() {
            Some(v) => {
                for msg in validation::is_valid_label_value(v) {
                    errors.push(FieldError::invalid(
                        format!("metadata.labels.{key}"),
                        v,
                        msg,
                    ));
                }
            }
            None if value.is_null() => {}
            None => errors.push(FieldError::invalid(
                format!("metadata.labels.{key}"),
                &value.to_string(),
                "must be a string",
            )),
        }
    }
}

fn validate_annotations(obj: &Value, errors: &mut Vec<FieldError>) {
    let Some(annotations) = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    else {
        return;
    };
    let mut total = 0;
    for (key, value) in annotations {
        for msg in validation::is_qualified_name(&key.to_lowercase()) {
            errors.push(FieldError::invalid("metadata.annotations", key, msg));
        }
        total += key.len() + value.as_str().map_or(0, str::len);
    }
    if total > MAX_ANNOTATIONS_BYTES {
        errors.push(FieldError::too_long(
            "metadata.annotations",
            MAX_ANNOTATIONS_BYTES,
        ));
    }
}

fn validate_finalizers(obj: &Value, errors: &mut Vec<FieldError>) {
    let Some(finalizers) = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
    else {
        return;
    };
    for (i, f) in finalizers.iter().enumerate() {
        let field = format!("metadata.finalizers[{i}]");
        match f.as_str() {
            Some(name) => {
                for msg in validation::is_qualified_name(name) {
                    errors.push(FieldError::invalid(field.clone(), name, msg));
                }
            }
            None => errors.push(FieldError::invalid(
                field,
                &f.to_string(),
                "must be a string",
            )),
        }
    }
}

/// The value of a selectable field, or `None` when the kind does not
/// support selecting on it (a 400 upstream).
pub fn field_value(def: &ResourceDef, obj: &Value, field: &str) -> Option<String> {
    match field {
        "metadata.name" => Some(text_at(obj, "/metadata/name")),
        "metadata.namespace" if def.namespaced => Some(text_at(obj, "/metadata/namespace")),
        _ => def.rules.field(obj, field),
    }
}

/// The index a watch cache keeps for a kind: watches selecting exactly on
/// this field are found without scanning all watchers.
pub fn indexed_field(def: &ResourceDef) -> Option<&'static str> {
    def.rules.indexed_field()
}
