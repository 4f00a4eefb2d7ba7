//! core/v1 Pod: the defaults kube-apiserver fills in, the kubelet's status
//! writes, graceful deletion of pods bound to a node, and the columns
//! `kubectl get pods` shows. The pod spec rules here also serve the pod
//! templates of workloads.

use apimachinery::validation;
use serde_json::{Value, json};

use super::{Builtin, Kind, StatusWrites, not_supported, set_default, text_at};
use crate::error::FieldError;
use crate::registry::ResourceDef;
use crate::table;

pub static POD: Builtin = Builtin {
    short_names: &["po"],
    categories: &["all"],
    status: true,
    binding: true,
    ..Builtin::new(
        ("", "v1", "Pod", "pods"),
        &Pod,
        openapi::type_schema::<k8s_openapi::api::core::v1::Pod>(),
    )
};

struct Pod;

impl Kind for Pod {
    fn defaults(&self, obj: &mut Value) {
        default_pod_spec(obj.get_mut("spec"));
    }

    fn prepare_create(&self, _def: &ResourceDef, obj: &mut Value) {
        let qos = qos_class(obj.get("spec"));
        obj["status"] = json!({"phase": "Pending", "qosClass": qos});
    }

    fn status_writes(&self) -> StatusWrites {
        StatusWrites::StatusAndMetadata
    }

    fn validate(&self, _def: &ResourceDef, obj: &Value, errors: &mut Vec<FieldError>) {
        validate_pod_spec(obj.get("spec"), "spec", errors);
    }

    fn validate_update(&self, new: &Value, old: &Value, errors: &mut Vec<FieldError>) {
        if let (Some(new_spec), Some(old_spec)) = (new.get("spec"), old.get("spec"))
            && !only_mutable_fields_changed(new_spec, old_spec)
        {
            errors.push(FieldError::forbidden("spec", IMMUTABLE_SPEC));
        }
    }

    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        let pointer = match field {
            "spec.nodeName" => "/spec/nodeName",
            "spec.restartPolicy" => "/spec/restartPolicy",
            "spec.schedulerName" => "/spec/schedulerName",
            "spec.serviceAccountName" => "/spec/serviceAccountName",
            "status.phase" => "/status/phase",
            "status.podIP" => "/status/podIP",
            _ => return None,
        };
        Some(text_at(obj, pointer))
    }

    fn indexed_field(&self) -> Option<&'static str> {
        Some("spec.nodeName")
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Ready"),
            table::column("Status"),
            table::column("Restarts"),
            table::column("Age"),
            table::wide(table::column("IP")),
            table::wide(table::column("Node")),
            table::wide(table::column("Nominated Node")),
            table::wide(table::column("Readiness Gates")),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        pod_cells(obj)
    }

    /// Only pods bound to a node and not yet finished wait for their
    /// kubelet; a repeated deletion can shorten the wait, never lengthen it.
    fn grace_period(&self, obj: &Value, requested: Option<i64>) -> i64 {
        let bound = obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let finished = matches!(
            obj.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        );
        if !bound || finished {
            return 0;
        }
        let requested = requested.or_else(|| {
            obj.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        });
        let requested = requested.unwrap_or(30).max(0);
        match obj
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
        {
            Some(existing) => requested.min(existing),
            None => requested,
        }
    }
}

/// Upstream's words for a pod update that changes more than it may.
const IMMUTABLE_SPEC: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Whether `new` differs from `old` only where a running pod may change,
/// as upstream's ValidatePodUpdate allows: container images, an active
/// deadline, added tolerations, removed scheduling gates, and a negative
/// grace period raised to 1.
fn only_mutable_fields_changed(new: &Value, old: &Value) -> bool {
    let mut carried = new.clone();
    let Some(spec) = carried.as_object_mut() else {
        return new == old;
    };
    for list in ["initContainers", "containers"] {
        let old_images: Vec<Option<&Value>> = old
            .get(list)
            .and_then(Value::as_array)
            .map(|c| c.iter().map(|c| c.get("image")).collect())
            .unwrap_or_default();
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut)
            && containers.len() == old_images.len()
        {
            for (container, image) in containers.iter_mut().zip(old_images) {
                if let (Some(container), Some(image)) = (container.as_object_mut(), image) {
                    container.insert("image".into(), image.clone());
                }
            }
        }
    }
    let keep_old = |spec: &mut serde_json::Map<String, Value>, field: &str| match old.get(field) {
        Some(value) => {
            spec.insert(field.into(), value.clone());
        }
        None => {
            spec.remove(field);
        }
    };
    keep_old(spec, "activeDeadlineSeconds");
    let old_tolerations = old.get("tolerations").and_then(Value::as_array);
    let added_only = match (
        spec.get("tolerations").and_then(Value::as_array),
        old_tolerations,
    ) {
        (Some(new), Some(old)) => old.iter().all(|t| new.contains(t)),
        _ => true,
    };
    if added_only {
        keep_old(spec, "tolerations");
    }
    let gates_removed = match (
        spec.get("schedulingGates").and_then(Value::as_array),
        old.get("schedulingGates").and_then(Value::as_array),
    ) {
        (Some(new), Some(old)) => new.iter().all(|g| old.contains(g)),
        (None, _) => true,
        (Some(new), None) => new.is_empty(),
    };
    if gates_removed {
        keep_old(spec, "schedulingGates");
    }
    let was_negative = old
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|g| g < 0);
    if was_negative && spec.get("terminationGracePeriodSeconds") == Some(&Value::from(1)) {
        keep_old(spec, "terminationGracePeriodSeconds");
    }
    carried == *old
}

/// The defaults kube-apiserver fills into a pod spec, so clients (and the
/// simulated kubelet) see the same object they would upstream.
pub(crate) fn default_pod_spec(spec: Option<&mut Value>) {
    let Some(spec) = spec.and_then(Value::as_object_mut) else {
        return;
    };
    set_default(spec, "restartPolicy", "Always".into());
    set_default(spec, "terminationGracePeriodSeconds", 30.into());
    set_default(spec, "dnsPolicy", "ClusterFirst".into());
    set_default(spec, "schedulerName", "default-scheduler".into());
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "enableServiceLinks", true.into());
    set_default(spec, "priority", 0.into());
    set_default(spec, "preemptionPolicy", "PreemptLowerPriority".into());
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            let image = container
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            set_default(container, "imagePullPolicy", pull_policy_for(&image).into());
            set_default(
                container,
                "terminationMessagePath",
                "/dev/termination-log".into(),
            );
            set_default(container, "terminationMessagePolicy", "File".into());
            set_default(container, "resources", json!({}));
        }
    }
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` otherwise.
fn pull_policy_for(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn qos_class(spec: Option<&Value>) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .filter_map(|l| spec.and_then(|s| s.get(*l)).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        for resource in ["cpu", "memory"] {
            let request = c.pointer(&format!("/resources/requests/{resource}"));
            let limit = c.pointer(&format!("/resources/limits/{resource}"));
            any |= request.is_some() || limit.is_some();
            guaranteed &= limit.is_some() && (request.is_none() || request == limit);
        }
    }
    if guaranteed {
        "Guaranteed"
    } else if any {
        "Burstable"
    } else {
        "BestEffort"
    }
}

/// The checks of a pod spec at `path` (`spec`, or a workload's
/// `spec.template.spec`).
pub(crate) fn validate_pod_spec(spec: Option<&Value>, path: &str, errors: &mut Vec<FieldError>) {
    let Some(spec) = spec else {
        errors.push(FieldError::required(format!("{path}.containers")));
        return;
    };
    let containers = spec.get("containers").and_then(Value::as_array);
    if containers.is_none_or(Vec::is_empty) {
        errors.push(FieldError::required(format!("{path}.containers")));
    }
    let mut seen = std::collections::HashSet::new();
    for list in ["initContainers", "containers"] {
        let Some(items) = spec.get(list).and_then(Value::as_array) else {
            continue;
        };
        for (i, c) in items.iter().enumerate() {
            let field = format!("{path}.{list}[{i}]");
            match c.get("name").and_then(Value::as_str) {
                None | Some("") => errors.push(FieldError::required(format!("{field}.name"))),
                Some(name) => {
                    for msg in validation::is_dns1123_label(name) {
                        errors.push(FieldError::invalid(format!("{field}.name"), name, msg));
                    }
                    if !seen.insert(name.to_string()) {
                        errors.push(FieldError {
                            kind: "FieldValueDuplicate",
                            field: format!("{field}.name"),
                            message: format!("Duplicate value: {name:?}"),
                        });
                    }
                }
            }
            if c.get("image")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                errors.push(FieldError::required(format!("{field}.image")));
            }
        }
    }
    if let Some(policy) = spec.get("restartPolicy").and_then(Value::as_str)
        && !matches!(policy, "Always" | "OnFailure" | "Never")
    {
        errors.push(not_supported(
            format!("{path}.restartPolicy"),
            policy,
            &["Always", "OnFailure", "Never"],
        ));
    }
}

/// READY, STATUS and RESTARTS as kubectl users know them.
fn pod_cells(obj: &Value) -> Vec<Value> {
    let statuses = obj
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let total = obj
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let ready = statuses
        .iter()
        .filter(|s| s.get("ready") == Some(&Value::Bool(true)))
        .count();
    let restarts: i64 = statuses
        .iter()
        .map(|s| table::int(s, "/restartCount"))
        .sum();
    let mut reason = text_at(obj, "/status/reason");
    if reason.is_empty() {
        reason = text_at(obj, "/status/phase");
    }
    let init_statuses = obj
        .pointer("/status/initContainerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let init_total = init_statuses.len();
    let mut initializing = false;
    for (i, s) in init_statuses.iter().enumerate() {
        let exit = s
            .pointer("/state/terminated/exitCode")
            .and_then(Value::as_i64);
        if exit == Some(0) {
            continue;
        }
        initializing = true;
        reason = if let Some(r) = s
            .pointer("/state/terminated/reason")
            .and_then(Value::as_str)
        {
            format!("Init:{r}")
        } else if let Some(code) = exit {
            format!("Init:ExitCode:{code}")
        } else if let Some(r) = s
            .pointer("/state/waiting/reason")
            .and_then(Value::as_str)
            .filter(|r| *r != "PodInitializing")
        {
            format!("Init:{r}")
        } else {
            format!("Init:{i}/{init_total}")
        };
        break;
    }
    if !initializing {
        for s in statuses.iter().rev() {
            if let Some(r) = s.pointer("/state/waiting/reason").and_then(Value::as_str) {
                reason = r.to_string();
            } else if let Some(r) = s
                .pointer("/state/terminated/reason")
                .and_then(Value::as_str)
            {
                reason = r.to_string();
            }
        }
    }
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        reason = "Terminating".into();
    }
    vec![
        table::name(obj).into(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts.into(),
        table::created(obj).into(),
        table::or_none(text_at(obj, "/status/podIP")).into(),
        table::or_none(text_at(obj, "/spec/nodeName")).into(),
        table::or_none(text_at(obj, "/status/nominatedNodeName")).into(),
        readiness_gates(obj).into(),
    ]
}

/// READINESS GATES: how many of the pod's gates are met, `<none>` without
/// gates.
fn readiness_gates(obj: &Value) -> String {
    let Some(gates) = obj
        .pointer("/spec/readinessGates")
        .and_then(Value::as_array)
        .filter(|g| !g.is_empty())
    else {
        return "<none>".into();
    };
    let conditions = obj.pointer("/status/conditions").and_then(Value::as_array);
    let met = gates
        .iter()
        .filter(|gate| {
            conditions.is_some_and(|conditions| {
                conditions.iter().any(|c| {
                    c.get("type") == gate.get("conditionType")
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            })
        })
        .count();
    format!("{met}/{}", gates.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Value {
        json!({
            "containers": [{"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80}]}],
            "tolerations": [{"key": "a", "operator": "Exists"}],
            "schedulingGates": [{"name": "wait"}],
            "terminationGracePeriodSeconds": -1,
        })
    }

    #[test]
    fn a_running_pod_may_change_images_deadline_tolerations_and_gates() {
        let old = spec();
        let mut new = spec();
        new["containers"][0]["image"] = "nginx:2".into();
        new["activeDeadlineSeconds"] = 30.into();
        new["tolerations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "b", "operator": "Exists"}));
        new["schedulingGates"] = json!([]);
        new["terminationGracePeriodSeconds"] = 1.into();
        assert!(only_mutable_fields_changed(&new, &old));
        assert!(only_mutable_fields_changed(&old, &old));
    }

    #[test]
    fn anything_else_in_a_pod_spec_is_immutable() {
        let old = spec();
        let changes: [fn(&mut Value); 5] = [
            |s| s["containers"][0]["ports"][0]["containerPort"] = 81.into(),
            |s| s["nodeName"] = "other".into(),
            |s| s["tolerations"] = json!([]),
            |s| s["schedulingGates"] = json!([{"name": "wait"}, {"name": "more"}]),
            |s| s["terminationGracePeriodSeconds"] = 5.into(),
        ];
        for change in changes {
            let mut new = spec();
            change(&mut new);
            assert!(!only_mutable_fields_changed(&new, &old), "{new}");
        }
    }
}
