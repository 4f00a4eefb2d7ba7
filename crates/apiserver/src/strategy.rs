//! Per-kind rules applied on create and update: defaulting, metadata
//! ownership, the spec/status split, generation, validation, and the fields
//! a field selector may use.

use apimachinery::validation;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, FieldError, Subject};
use crate::registry::{Behavior, ResourceDef};

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
    if def.generation || def.behavior == Behavior::CustomResource {
        meta.insert("generation".into(), 1.into());
    } else {
        meta.remove("generation");
    }
    match def.behavior {
        Behavior::Namespace => {
            let ns_name = name_of(obj).to_string();
            obj["status"] = json!({"phase": "Active"});
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            let labels = metadata_mut(obj)
                .entry("labels")
                .or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert("kubernetes.io/metadata.name".into(), ns_name.into());
            }
        }
        Behavior::Pod => {
            default_pod_spec(obj.get_mut("spec"));
            let qos = qos_class(obj.get("spec"));
            obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        Behavior::Workload => {
            default_workload(def, obj);
            obj.as_object_mut().map(|o| o.remove("status"));
        }
        Behavior::CustomResource if def.status_subresource => {
            obj.as_object_mut().map(|o| o.remove("status"));
        }
        Behavior::Service => default_service(obj),
        Behavior::Plain if is_secret(def) => {
            fold_string_data(obj);
            if let Some(secret) = obj.as_object_mut() {
                set_default(secret, "type", "Opaque".into());
            }
        }
        _ => {}
    }
}

fn is_secret(def: &ResourceDef) -> bool {
    def.group.is_empty() && def.kind == "Secret"
}

/// A Secret's write-only `stringData` is merged into `data` (base64), as
/// upstream does on every write; it is never stored or returned.
fn fold_string_data(secret: &mut Value) {
    use base64::Engine;
    let Some(map) = secret.as_object_mut() else {
        return;
    };
    let Some(Value::Object(strings)) = map.remove("stringData") else {
        return;
    };
    let data = map.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    if let Some(data) = data.as_object_mut() {
        for (key, value) in strings {
            let text = value.as_str().unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
            data.insert(key, encoded.into());
        }
    }
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
    if scope == WriteScope::Status && matches!(def.behavior, Behavior::Pod | Behavior::Node) {
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
    match def.behavior {
        Behavior::Pod => default_pod_spec(new.get_mut("spec")),
        Behavior::Workload => default_workload(def, new),
        Behavior::Namespace => {
            if let Some(spec) = old.get("spec") {
                new["spec"] = spec.clone();
            }
        }
        Behavior::Plain if is_secret(def) => fold_string_data(new),
        _ => {}
    }
    bump_generation(def, new, old);
}

fn bump_generation(def: &ResourceDef, new: &mut Value, old: &Value) {
    if tracks_generation(def) && spec_changed(new, old) {
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        metadata_mut(new).insert("generation".into(), (generation + 1).into());
    }
}

fn tracks_generation(def: &ResourceDef) -> bool {
    def.generation || def.behavior == Behavior::CustomResource
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
    match def.behavior {
        Behavior::Pod => validate_pod_spec(obj.get("spec"), "spec", &mut errors),
        Behavior::Workload => validate_workload(def, obj, &mut errors),
        Behavior::CustomResourceDefinition => errors.extend(crate::crd::validate(obj)),
        _ => {}
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&def.kind, subject(def, obj), errors))
    }
}

fn name_errors(def: &ResourceDef, name: &str) -> Vec<String> {
    match def.behavior {
        Behavior::Namespace => validation::is_dns1123_label(name),
        Behavior::Service => validation::is_dns1035_label(name),
        Behavior::CustomResourceDefinition
        | Behavior::CustomResource
        | Behavior::Event
        | Behavior::EventV1
        | Behavior::Rbac => validation::is_path_segment_name(name)
            .into_iter()
            .chain(if name.len() > 253 {
                Some("must be no more than 253 characters".to_string())
            } else {
                None
            })
            .collect(),
        _ => validation::is_dns1123_subdomain(name),
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

fn validate_pod_spec(spec: Option<&Value>, path: &str, errors: &mut Vec<FieldError>) {
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
        errors.push(FieldError {
            kind: "FieldValueNotSupported",
            field: format!("{path}.restartPolicy"),
            message: format!(
                "Unsupported value: {policy:?}: supported values: \"Always\", \"OnFailure\", \"Never\""
            ),
        });
    }
}

fn validate_workload(def: &ResourceDef, obj: &Value, errors: &mut Vec<FieldError>) {
    let template_labels = obj.pointer("/spec/template/metadata/labels");
    if obj.pointer("/spec/template").is_some() {
        validate_pod_spec(
            obj.pointer("/spec/template/spec"),
            "spec.template.spec",
            errors,
        );
    } else {
        errors.push(FieldError::required("spec.template"));
    }
    if def.kind == "Job" {
        if let Some(policy) = obj
            .pointer("/spec/template/spec/restartPolicy")
            .and_then(Value::as_str)
            && !matches!(policy, "OnFailure" | "Never")
        {
            errors.push(FieldError {
                kind: "FieldValueNotSupported",
                field: "spec.template.spec.restartPolicy".into(),
                message: format!(
                    "Unsupported value: {policy:?}: supported values: \"OnFailure\", \"Never\""
                ),
            });
        }
        return;
    }
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

fn set_default(obj: &mut Map<String, Value>, key: &str, value: Value) {
    obj.entry(key).or_insert(value);
}

/// The defaults kube-apiserver fills into a pod spec, so clients (and the
/// simulated kubelet) see the same object they would upstream.
fn default_pod_spec(spec: Option<&mut Value>) {
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

fn default_workload(def: &ResourceDef, obj: &mut Value) {
    let uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    match def.kind.as_str() {
        "Deployment" => {
            set_default(spec, "replicas", 1.into());
            set_default(spec, "revisionHistoryLimit", 10.into());
            set_default(spec, "progressDeadlineSeconds", 600.into());
            set_default(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
            );
        }
        "ReplicaSet" => set_default(spec, "replicas", 1.into()),
        "Job" => {
            set_default(spec, "parallelism", 1.into());
            set_default(spec, "backoffLimit", 6.into());
            set_default(spec, "completionMode", "NonIndexed".into());
            set_default(spec, "suspend", false.into());
            set_default(spec, "manualSelector", false.into());
            set_default(spec, "podReplacementPolicy", "TerminatedOrFailed".into());
            if !spec.contains_key("completions") {
                let parallelism = spec.get("parallelism").cloned().unwrap_or(1.into());
                let indexed = spec.get("completionMode").and_then(Value::as_str) == Some("Indexed");
                spec.insert(
                    "completions".into(),
                    if indexed { parallelism } else { 1.into() },
                );
            }
            // Like upstream, a Job selects its pods by its own uid unless
            // the user manages the selector.
            if spec.get("manualSelector") != Some(&Value::Bool(true)) && !uid.is_empty() {
                let labels = json!({
                    "batch.kubernetes.io/controller-uid": uid,
                    "controller-uid": uid,
                });
                if !spec.contains_key("selector") {
                    spec.insert(
                        "selector".into(),
                        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
                    );
                }
                if let Some(template_meta) = spec
                    .get_mut("template")
                    .and_then(Value::as_object_mut)
                    .map(|t| t.entry("metadata").or_insert_with(|| json!({})))
                    .and_then(Value::as_object_mut)
                {
                    let template_labels =
                        template_meta.entry("labels").or_insert_with(|| json!({}));
                    if let (Some(dst), Some(src)) =
                        (template_labels.as_object_mut(), labels.as_object())
                    {
                        for (k, v) in src {
                            dst.entry(k.clone()).or_insert(v.clone());
                        }
                    }
                }
            }
        }
        _ => {}
    }
    default_pod_spec(spec.get_mut("template").and_then(|t| t.get_mut("spec")));
}

fn default_service(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    set_default(spec, "type", "ClusterIP".into());
    set_default(spec, "sessionAffinity", "None".into());
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(port, "protocol", "TCP".into());
            if let Some(p) = port.get("port").cloned() {
                set_default(port, "targetPort", p);
            }
        }
    }
    if !obj.get("status").is_some_and(Value::is_object) {
        obj["status"] = json!({"loadBalancer": {}});
    }
}

/// The value of a selectable field, or `None` when the kind does not
/// support selecting on it (a 400 upstream).
pub fn field_value(def: &ResourceDef, obj: &Value, field: &str) -> Option<String> {
    let text = |pointer: &str| {
        obj.pointer(pointer)
            .map(|v| match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    match field {
        "metadata.name" => Some(text("/metadata/name")),
        "metadata.namespace" if def.namespaced => Some(text("/metadata/namespace")),
        _ => match (def.behavior, field) {
            (Behavior::Pod, "spec.nodeName") => Some(text("/spec/nodeName")),
            (Behavior::Pod, "status.phase") => Some(text("/status/phase")),
            (Behavior::Pod, "spec.restartPolicy") => Some(text("/spec/restartPolicy")),
            (Behavior::Pod, "spec.schedulerName") => Some(text("/spec/schedulerName")),
            (Behavior::Pod, "spec.serviceAccountName") => Some(text("/spec/serviceAccountName")),
            (Behavior::Pod, "status.podIP") => Some(text("/status/podIP")),
            (Behavior::Node, "spec.unschedulable") => Some(
                obj.pointer("/spec/unschedulable")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    .to_string(),
            ),
            (Behavior::Namespace, "status.phase") => Some(text("/status/phase")),
            (Behavior::Event, f) if f.starts_with("involvedObject.") => {
                let rest = &f["involvedObject.".len()..];
                Some(text(&format!("/involvedObject/{rest}")))
            }
            (Behavior::Event, "reason") => Some(text("/reason")),
            (Behavior::Event, "type") => Some(text("/type")),
            (Behavior::Event, "source") => Some(text("/source/component")),
            _ => None,
        },
    }
}

/// The index a watch cache keeps for a kind: watches selecting exactly on
/// this field are found without scanning all watchers.
pub fn indexed_field(def: &ResourceDef) -> Option<&'static str> {
    match def.behavior {
        Behavior::Pod => Some("spec.nodeName"),
        _ => None,
    }
}
