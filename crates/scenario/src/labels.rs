//! The labels kube-burner puts on what it creates, so that label-selected
//! patch, read and delete jobs written for kube-burner find the same
//! objects: the current `kube-burner.io/...` names and the older
//! `kube-burner-...` ones.

use std::collections::BTreeMap;

use serde_json::Value;

pub const UUID: &str = "kube-burner.io/uuid";
pub const JOB: &str = "kube-burner.io/job";
pub const RUN_ID: &str = "kube-burner.io/runid";
pub const INDEX: &str = "kube-burner.io/index";
pub const ITERATION: &str = "kube-burner.io/job-iteration";
pub const REPLICA: &str = "kube-burner.io/replica";

/// The labels of a namespace a job creates.
pub fn namespace(uuid: &str, run_id: &str, job: &str) -> BTreeMap<String, String> {
    [
        (JOB, job),
        (UUID, uuid),
        (RUN_ID, run_id),
        ("kube-burner-job", job),
        ("kube-burner-uuid", uuid),
        ("kube-burner-runid", run_id),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The labels of one created object.
pub fn object(
    uuid: &str,
    run_id: &str,
    job: &str,
    index: usize,
    iteration: u64,
    replica: u64,
) -> BTreeMap<String, String> {
    let mut labels = namespace(uuid, run_id, job);
    for (key, value) in [
        (INDEX, index.to_string()),
        ("kube-burner-index", index.to_string()),
        (ITERATION, iteration.to_string()),
        (REPLICA, replica.to_string()),
    ] {
        labels.insert(key.to_owned(), value);
    }
    labels
}

/// Adds `labels` to the object and to the pod templates of the kinds that
/// have one, so that pods can be selected by them too; the template's own
/// labels win.
pub fn apply(object: &mut Value, labels: &BTreeMap<String, String>) {
    let paths: &[&str] = match object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController" => &["/metadata", "/spec/template/metadata"],
        "CronJob" => &["/metadata", "/spec/jobTemplate/spec/template/metadata"],
        _ => &["/metadata"],
    };
    for path in paths {
        if path != &"/metadata" && object.pointer(path.trim_end_matches("/metadata")).is_none() {
            continue;
        }
        let Some(meta) = ensure_object(object, path) else {
            continue;
        };
        let existing = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Default::default()));
        if !existing.is_object() {
            *existing = Value::Object(Default::default());
        }
        if let Value::Object(map) = existing {
            for (key, value) in labels {
                map.entry(key.clone())
                    .or_insert_with(|| Value::String(value.clone()));
            }
        }
    }
}

fn ensure_object<'a>(
    value: &'a mut Value,
    path: &str,
) -> Option<&'a mut serde_json::Map<String, Value>> {
    let mut current = value;
    for part in path.split('/').skip(1) {
        let map = current.as_object_mut()?;
        current = map
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Default::default()));
        if current.is_null() {
            *current = Value::Object(Default::default());
        }
    }
    current.as_object_mut()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn deployments_label_their_pods_and_keep_their_own_labels() {
        let mut deployment = json!({
            "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"app": "web", "kube-burner.io/job": "mine"}},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}}}},
        });
        apply(&mut deployment, &object("u", "r", "job", 2, 5, 1));
        assert_eq!(
            deployment["metadata"]["labels"]["kube-burner.io/job"],
            "mine"
        );
        assert_eq!(
            deployment["metadata"]["labels"]["kube-burner.io/index"],
            "2"
        );
        assert_eq!(deployment["metadata"]["labels"]["kube-burner-uuid"], "u");
        assert_eq!(
            deployment["spec"]["template"]["metadata"]["labels"]["kube-burner.io/job-iteration"],
            "5"
        );
        assert_eq!(
            deployment["spec"]["template"]["metadata"]["labels"]["app"],
            "web"
        );
        let mut config_map = json!({"kind": "ConfigMap", "metadata": {"name": "c"}});
        apply(&mut config_map, &object("u", "r", "job", 0, 0, 1));
        assert_eq!(
            config_map["metadata"]["labels"]["kube-burner.io/replica"],
            "1"
        );
        assert!(config_map.get("spec").is_none());
    }
}
