//! CustomResourceDefinitions: turning a CRD into served resources.
//!
//! The server accepts names immediately and marks the CRD Established in
//! the same write that stores it, then serves its resources before the
//! write returns, so a client that waits for `Established` (or does not
//! wait at all) can use the new resources right away.

use std::sync::Arc;

use serde_json::{Value, json};
use store::ListRequest;

use crate::api::Api;
use crate::error::{ApiError, FieldError, Subject};
use crate::kinds::custom::CUSTOM_RESOURCE;
use crate::registry::{PrinterColumn, Registry, ResourceDef, ScaleSelector, ScaleSpec};
use crate::strategy::now_rfc3339;
use crate::watchcache::CachedObject;

/// Fills the status a CRD gets once its names are accepted.
pub fn prepare(crd: &mut Value) {
    let names = crd
        .pointer("/spec/names")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut accepted = names.clone();
    if let Some(kind) = names.get("kind").and_then(Value::as_str) {
        if accepted.get("listKind").is_none() {
            accepted["listKind"] = format!("{kind}List").into();
        }
        if accepted.get("singular").is_none() {
            accepted["singular"] = kind.to_lowercase().into();
        }
    }
    let now = now_rfc3339();
    let stored: Vec<Value> = versions(crd)
        .iter()
        .filter(|v| v.get("storage") == Some(&Value::Bool(true)))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    crd["status"] = json!({
        "acceptedNames": accepted,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "storedVersions": stored,
    });
}

/// The 422 causes of an invalid CRD.
pub fn validate(crd: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let text = |p: &str| crd.pointer(p).and_then(Value::as_str).unwrap_or("");
    let (group, plural, kind) = (
        text("/spec/group"),
        text("/spec/names/plural"),
        text("/spec/names/kind"),
    );
    if group.is_empty() {
        errors.push(FieldError::required("spec.group"));
    }
    if plural.is_empty() {
        errors.push(FieldError::required("spec.names.plural"));
    }
    if kind.is_empty() {
        errors.push(FieldError::required("spec.names.kind"));
    }
    let name = text("/metadata/name");
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        errors.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if !matches!(text("/spec/scope"), "Namespaced" | "Cluster") {
        errors.push(FieldError::invalid(
            "spec.scope",
            text("/spec/scope"),
            "must be either Namespaced or Cluster",
        ));
    }
    let versions = versions(crd);
    if versions.is_empty() {
        errors.push(FieldError::required("spec.versions"));
    }
    let storage = versions
        .iter()
        .filter(|v| v.get("storage") == Some(&Value::Bool(true)))
        .count();
    if !versions.is_empty() && storage != 1 {
        errors.push(FieldError::invalid(
            "spec.versions",
            &storage.to_string(),
            "must have exactly one version marked as storage version",
        ));
    }
    errors
}

fn versions(crd: &Value) -> Vec<Value> {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The resources a CRD serves, preferred version first.
pub fn resource_defs(crd: &Value) -> Vec<ResourceDef> {
    let text = |p: &str| {
        crd.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let strings = |p: &str| -> Vec<String> {
        crd.pointer(p)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let group = text("/spec/group");
    let plural = text("/spec/names/plural");
    let kind = text("/spec/names/kind");
    let list_kind = Some(text("/spec/names/listKind"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{kind}List"));
    let singular = Some(text("/spec/names/singular"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| kind.to_lowercase());
    let mut served: Vec<Value> = versions(crd)
        .into_iter()
        .filter(|v| v.get("served") != Some(&Value::Bool(false)))
        .collect();
    served.sort_by(|a, b| {
        let name = |v: &Value| {
            v.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        version_priority(&name(b)).cmp(&version_priority(&name(a)))
    });
    served
        .iter()
        .map(|v| {
            let scale = v.pointer("/subresources/scale").map(|s| ScaleSpec {
                spec_replicas_path: s
                    .get("specReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".spec.replicas")
                    .to_string(),
                status_replicas_path: s
                    .get("statusReplicasPath")
                    .and_then(Value::as_str)
                    .unwrap_or(".status.replicas")
                    .to_string(),
                selector: match s.get("labelSelectorPath").and_then(Value::as_str) {
                    Some(path) => ScaleSelector::Path(path.to_string()),
                    None => ScaleSelector::None,
                },
            });
            let printer_columns = v
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .map(|cols| {
                    cols.iter()
                        .map(|c| PrinterColumn {
                            name: c
                                .get("name")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                            type_: c
                                .get("type")
                                .and_then(Value::as_str)
                                .unwrap_or("string")
                                .to_string(),
                            json_path: c
                                .get("jsonPath")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                            description: c
                                .get("description")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                            priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                        })
                        .collect()
                })
                .unwrap_or_default();
            ResourceDef {
                group: group.clone(),
                version: v
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                kind: kind.clone(),
                list_kind: list_kind.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                short_names: strings("/spec/names/shortNames"),
                categories: strings("/spec/names/categories"),
                namespaced: text("/spec/scope") == "Namespaced",
                rules: &CUSTOM_RESOURCE,
                storage_prefix: format!("/registry/{group}/{plural}/"),
                status_subresource: v.pointer("/subresources/status").is_some(),
                scale,
                binding: false,
                generation: true,
                printer_columns,
                // A version without a schema keeps whatever it is given.
                schema: openapi::Schema::Custom(
                    v.pointer("/schema/openAPIV3Schema").cloned().unwrap_or_else(
                        || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
                    ),
                ),
            }
        })
        .collect()
}

/// Kubernetes version ordering: GA > beta > alpha, higher numbers first,
/// anything else last.
fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    let minor = |t: &str| t.parse::<u32>().ok();
    if tail.is_empty() {
        (3, major, 0)
    } else if let Some(n) = tail.strip_prefix("beta").and_then(minor) {
        (2, major, n)
    } else if let Some(n) = tail.strip_prefix("alpha").and_then(minor) {
        (1, major, n)
    } else {
        (0, 0, 0)
    }
}

/// Serves the resources of a stored CRD.
pub fn register(registry: &Registry, crd: &Value) {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if crd.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    registry.set_custom(name, resource_defs(crd));
}

/// Serves every CRD already in the store (at start-up).
pub async fn load_all(api: &Api) -> Result<(), ApiError> {
    let listed = api
        .store
        .list(ListRequest {
            prefix: "/registry/apiextensions.k8s.io/customresourcedefinitions/".into(),
            ..Default::default()
        })
        .await?;
    for kv in &listed.kvs {
        let object = CachedObject::decode(kv)?;
        register(&api.registry, &object.value);
    }
    Ok(())
}

/// Deletes a CRD: its custom resources first, then the CRD itself.
pub async fn delete(
    api: &Api,
    def: &ResourceDef,
    key: &str,
    old: &Arc<CachedObject>,
) -> Result<Arc<CachedObject>, ApiError> {
    let name = old
        .value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let defs = resource_defs(&old.value);
    api.registry.remove_custom(name);
    if let Some(first) = defs.first() {
        let listed = api
            .store
            .list(ListRequest {
                prefix: first.storage_prefix.clone(),
                ..Default::default()
            })
            .await?;
        for kv in listed.kvs {
            match api.store.delete(&kv.key, None).await {
                Ok(_) | Err(store::StoreError::NotFound { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        api.drop_cache(&first.storage_prefix);
    }
    match api.store.delete(key, None).await {
        Ok(kv) => {
            let mut value = old.value.clone();
            Ok(Arc::new(CachedObject::from_value(
                key.to_string(),
                kv.mod_revision,
                &mut value,
            )))
        }
        Err(store::StoreError::NotFound { .. }) => Err(ApiError::not_found(Subject::new(
            &def.group,
            &def.plural,
            name,
        ))),
        Err(err) => Err(err.into()),
    }
}
