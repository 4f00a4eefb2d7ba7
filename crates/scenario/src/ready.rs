//! When an object counts as ready, for the kinds kube-burner waits for.

use kube::api::DynamicObject;
use serde_json::Value;

/// Whether waits look at objects of `kind` at all; others are ready once
/// created.
pub fn waits_for(kind: &str) -> bool {
    matches!(
        kind,
        "Deployment"
            | "ReplicaSet"
            | "ReplicationController"
            | "StatefulSet"
            | "DaemonSet"
            | "Job"
            | "Pod"
            | "PersistentVolumeClaim"
    )
}

/// Whether `object` of `kind` is ready: its replicas ready, its pods
/// scheduled, its job complete, its pod running and ready, its claim bound.
pub fn is_ready(kind: &str, object: &DynamicObject) -> bool {
    let data = &object.data;
    let int = |path: &str| data.pointer(path).and_then(Value::as_i64);
    let text = |path: &str| {
        data.pointer(path)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    match kind {
        "Deployment" | "ReplicaSet" | "ReplicationController" | "StatefulSet" => {
            let wanted = int("/spec/replicas").unwrap_or(1);
            int("/status/readyReplicas").unwrap_or(0) >= wanted
        }
        "DaemonSet" => {
            let desired = int("/status/desiredNumberScheduled");
            desired.is_some() && int("/status/numberReady") >= desired
        }
        "Job" => int("/status/succeeded").unwrap_or(0) >= int("/spec/completions").unwrap_or(1),
        "Pod" => match text("/status/phase") {
            "Succeeded" => true,
            "Running" => data
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|conditions| {
                    conditions
                        .iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                }),
            _ => false,
        },
        "PersistentVolumeClaim" => text("/status/phase") == "Bound",
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(data: Value) -> DynamicObject {
        let mut object: DynamicObject = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}}),
        )
        .expect("object");
        object.data = data;
        object
    }

    #[test]
    fn readiness_per_kind() {
        assert!(!is_ready(
            "Deployment",
            &object(json!({"spec": {"replicas": 2}, "status": {"readyReplicas": 1}}))
        ));
        assert!(is_ready(
            "Deployment",
            &object(json!({"spec": {"replicas": 2}, "status": {"readyReplicas": 2}}))
        ));
        assert!(is_ready(
            "Deployment",
            &object(json!({"spec": {"replicas": 0}}))
        ));
        assert!(!is_ready("DaemonSet", &object(json!({"status": {}}))));
        assert!(is_ready(
            "DaemonSet",
            &object(json!({"status": {"desiredNumberScheduled": 3, "numberReady": 3}}))
        ));
        assert!(!is_ready(
            "Job",
            &object(json!({"spec": {"completions": 2}, "status": {"succeeded": 1}}))
        ));
        assert!(!is_ready(
            "Pod",
            &object(
                json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}})
            )
        ));
        assert!(is_ready(
            "Pod",
            &object(
                json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
            )
        ));
        assert!(is_ready(
            "PersistentVolumeClaim",
            &object(json!({"status": {"phase": "Bound"}}))
        ));
        assert!(is_ready("ConfigMap", &object(json!({}))));
    }
}
