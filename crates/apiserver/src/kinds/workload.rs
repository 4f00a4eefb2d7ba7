//! What the workload kinds (Deployment, ReplicaSet, Job) share: a pod
//! template with pod defaults, and a label selector that must match it.

use serde_json::Value;

use super::pod::{default_pod_spec, validate_pod_spec};
use crate::error::FieldError;
use crate::table;

/// Pod defaults inside `spec.template.spec`.
pub(super) fn default_template(obj: &mut Value) {
    default_pod_spec(obj.pointer_mut("/spec/template/spec"));
}

/// `spec.template` is required and holds a valid pod spec.
pub(super) fn validate_template(obj: &Value, errors: &mut Vec<FieldError>) {
    if obj.pointer("/spec/template").is_some() {
        validate_pod_spec(
            obj.pointer("/spec/template/spec"),
            "spec.template.spec",
            errors,
        );
    } else {
        errors.push(FieldError::required("spec.template"));
    }
}

/// A template of pods selected by `spec.selector`: both valid, and the
/// selector matches the template's labels.
pub(super) fn validate_replicated(obj: &Value, errors: &mut Vec<FieldError>) {
    validate_template(obj, errors);
    validate_selector(obj, errors);
}

/// `spec.selector` is required, not empty, and selects the template's
/// labels.
fn validate_selector(obj: &Value, errors: &mut Vec<FieldError>) {
    let template_labels = obj.pointer("/spec/template/metadata/labels");
    let Some(selector) = obj.pointer("/spec/selector") else {
        errors.push(FieldError::required("spec.selector"));
        return;
    };
    match apimachinery::labels::LabelSelector::from_label_selector_json(selector) {
        Ok(sel) if sel.is_empty() => errors.push(FieldError::invalid(
            "spec.selector",
            &selector.to_string(),
            "empty selector is invalid for deployment",
        )),
        Ok(sel) => {
            if !sel.matches(template_labels.and_then(Value::as_object)) {
                errors.push(FieldError::invalid(
                    "spec.template.metadata.labels",
                    &template_labels.map(Value::to_string).unwrap_or_default(),
                    "`selector` does not match template `labels`",
                ));
            }
        }
        Err(err) => errors.push(FieldError::invalid(
            "spec.selector",
            &selector.to_string(),
            err.to_string(),
        )),
    }
}

/// The CONTAINERS and IMAGES columns of a pod spec at `pointer`.
pub(super) fn containers_and_images(obj: &Value, pointer: &str) -> (String, String) {
    let containers = obj
        .pointer(&format!("{pointer}/containers"))
        .and_then(Value::as_array);
    let field = |name: &str| -> String {
        containers
            .map(|containers| {
                containers
                    .iter()
                    .filter_map(|c| c.get(name).and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    (field("name"), field("image"))
}

/// DESIRED, CURRENT and READY of a replicated workload (ReplicaSets and
/// ReplicationControllers print the same columns).
pub(super) fn replica_columns() -> Vec<Value> {
    table::columns(&[
        table::name_column(),
        table::int_column("Desired"),
        table::int_column("Current"),
        table::int_column("Ready"),
        table::column("Age"),
    ])
}

/// The cells of [`replica_columns`].
pub(super) fn replica_cells(obj: &Value) -> Vec<Value> {
    vec![
        table::name(obj).into(),
        table::int(obj, "/spec/replicas").into(),
        table::int(obj, "/status/replicas").into(),
        table::int(obj, "/status/readyReplicas").into(),
        table::created(obj).into(),
    ]
}
