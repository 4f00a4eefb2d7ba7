//! The subresources with a shape of their own: `scale` (an
//! autoscaling/v1 Scale mapped onto the object's replica fields) and
//! `pods/binding` (the scheduler's assignment of a pod to a node).

use serde_json::{Value, json};

use crate::api::Api;
use crate::error::ApiError;
use crate::registry::{ResourceDef, ScaleSelector};
use crate::verb::Verb;

/// Rejects subresources the resource does not have, or verbs they do not
/// support.
pub(crate) fn check_subresource(
    def: &ResourceDef,
    sub: Option<&str>,
    verb: Verb,
) -> Result<(), ApiError> {
    let Some(sub) = sub else {
        return Ok(());
    };
    let allowed: &[Verb] = match sub {
        "status" if def.status_subresource => &[Verb::Get, Verb::Update, Verb::Patch],
        "scale" if def.scale.is_some() => &[Verb::Get, Verb::Update, Verb::Patch],
        "binding" if def.binding => &[Verb::Create],
        _ => return Err(ApiError::no_route()),
    };
    if allowed.contains(&verb) {
        Ok(())
    } else {
        Err(ApiError::method_not_supported(
            &format!("{}/{sub}", def.plural),
            verb.metric_label(),
        ))
    }
}

fn pointer_of(path: &str) -> String {
    format!("/{}", path.trim_start_matches('.').replace('.', "/"))
}

/// The autoscaling/v1 Scale of a scalable object.
pub(crate) fn scale_view(def: &ResourceDef, obj: &Value) -> Value {
    let Some(scale) = &def.scale else {
        return Value::Null;
    };
    let spec = obj
        .pointer(&pointer_of(&scale.spec_replicas_path))
        .cloned()
        .unwrap_or(0.into());
    let status = obj
        .pointer(&pointer_of(&scale.status_replicas_path))
        .cloned()
        .unwrap_or(0.into());
    let selector = match &scale.selector {
        ScaleSelector::SpecSelector => obj
            .pointer("/spec/selector")
            .and_then(|s| apimachinery::labels::LabelSelector::from_label_selector_json(s).ok())
            .map(|s| s.to_string()),
        ScaleSelector::Path(path) => obj
            .pointer(&pointer_of(path))
            .and_then(Value::as_str)
            .map(str::to_string),
        ScaleSelector::None => None,
    };
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut status_obj = json!({"replicas": status});
    if let Some(selector) = selector {
        status_obj["selector"] = selector.into();
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": spec},
        "status": status_obj,
    })
}

/// Applies a change to an object's Scale and writes its replicas back.
pub(crate) async fn update_scale(
    api: &Api,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    change: impl Fn(&mut Value) -> Result<(), ApiError>,
) -> Result<crate::api::Written, ApiError> {
    let Some(spec) = &def.scale else {
        return Err(ApiError::no_route());
    };
    let key = def.key(ns, name);
    let spec_pointer = pointer_of(&spec.spec_replicas_path);
    api.update_with(def, &key, |obj| {
        let mut scale = scale_view(def, obj);
        let current_rv = scale.pointer("/metadata/resourceVersion").cloned();
        change(&mut scale)?;
        let requested_rv = scale.pointer("/metadata/resourceVersion").cloned();
        if requested_rv
            .as_ref()
            .is_some_and(|rv| !rv.is_null() && rv.as_str() != Some(""))
            && requested_rv != current_rv
        {
            return Err(ApiError::conflict(crate::error::Subject::new(
                &def.group,
                &def.plural,
                name,
            )));
        }
        let replicas = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .ok_or_else(|| ApiError::bad_request("spec.replicas must be an integer"))?;
        if replicas < 0 {
            return Err(ApiError::invalid(
                "Scale",
                crate::error::Subject::new("autoscaling", "Scale", name),
                vec![crate::error::FieldError::invalid(
                    "spec.replicas",
                    &replicas.to_string(),
                    "must be greater than or equal to 0",
                )],
            ));
        }
        set_pointer(obj, &spec_pointer, replicas.into());
        Ok(())
    })
    .await
}

fn set_pointer(obj: &mut Value, pointer: &str, value: Value) {
    let mut current = obj;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            if let Some(map) = current.as_object_mut() {
                map.insert(part.to_string(), value);
            }
            return;
        }
        if !current.get(*part).is_some_and(Value::is_object) {
            current[*part] = json!({});
        }
        current = &mut current[*part];
    }
}

/// pods/binding: assigns a pending pod to a node, once.
pub(crate) async fn bind_pod(
    api: &Api,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    binding: &Value,
) -> Result<(), ApiError> {
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                "Binding",
                crate::error::Subject::new("", "Binding", name),
                vec![crate::error::FieldError::required("target.name")],
            )
        })?
        .to_string();
    let key = def.key(ns, name);
    let subject = crate::error::Subject::new(&def.group, "pods/binding", name);
    let now = crate::strategy::now_rfc3339();
    api.update_with(def, &key, |pod| {
        if pod.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::conflict_with(subject.clone(), format!("pod {name} is being deleted, cannot be assigned to a host")));
        }
        if let Some(existing) = pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            return Err(ApiError::conflict_with(
                subject.clone(),
                format!("pod {name} is already assigned to node {existing:?}"),
            ));
        }
        pod["spec"]["nodeName"] = node.clone().into();
        let conditions = pod["status"]
            .as_object_mut()
            .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
        if let Some(Value::Array(conditions)) = conditions {
            conditions.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
            conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
        }
        Ok(())
    })
    .await?;
    Ok(())
}
