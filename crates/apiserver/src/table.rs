//! `meta.k8s.io/v1` Table responses: what `kubectl get` prints.
//!
//! kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and
//! prints the columns the server chooses, so the columns here are the ones
//! kube-apiserver's printers produce for each kind.

use serde_json::{Value, json};

use crate::registry::{Behavior, ResourceDef};

/// Whether an Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        params.contains(&"as=Table")
            && !params
                .iter()
                .any(|p| p.starts_with("g=") && *p != "g=meta.k8s.io")
    })
}

struct Column {
    name: &'static str,
    type_: &'static str,
    format: &'static str,
    priority: i64,
}

const fn col(name: &'static str) -> Column {
    Column {
        name,
        type_: "string",
        format: "",
        priority: 0,
    }
}

const fn name_col() -> Column {
    Column {
        name: "Name",
        type_: "string",
        format: "name",
        priority: 0,
    }
}

const fn int_col(name: &'static str) -> Column {
    Column {
        name,
        type_: "integer",
        format: "",
        priority: 0,
    }
}

const fn wide(mut c: Column) -> Column {
    c.priority = 1;
    c
}

fn columns(def: &ResourceDef) -> Vec<Column> {
    match (def.behavior, def.kind.as_str()) {
        (Behavior::Pod, _) => vec![
            name_col(),
            col("Ready"),
            col("Status"),
            col("Restarts"),
            col("Age"),
            wide(col("IP")),
            wide(col("Node")),
        ],
        (Behavior::Node, _) => vec![
            name_col(),
            col("Status"),
            col("Roles"),
            col("Age"),
            col("Version"),
        ],
        (Behavior::Namespace, _) => vec![name_col(), col("Status"), col("Age")],
        (Behavior::Service, _) => vec![
            name_col(),
            col("Type"),
            col("Cluster-IP"),
            col("External-IP"),
            col("Port(s)"),
            col("Age"),
        ],
        (Behavior::Workload, "Deployment") => vec![
            name_col(),
            col("Ready"),
            int_col("Up-to-date"),
            int_col("Available"),
            col("Age"),
        ],
        (Behavior::Workload, "ReplicaSet") => vec![
            name_col(),
            int_col("Desired"),
            int_col("Current"),
            int_col("Ready"),
            col("Age"),
        ],
        (Behavior::Workload, _) => vec![name_col(), col("Status"), col("Completions"), col("Age")],
        (Behavior::Event | Behavior::EventV1, _) => vec![
            col("Last Seen"),
            col("Type"),
            col("Reason"),
            col("Object"),
            col("Message"),
        ],
        (Behavior::Plain, "ConfigMap") => vec![name_col(), int_col("Data"), col("Age")],
        (Behavior::Plain, "Secret") => vec![name_col(), col("Type"), int_col("Data"), col("Age")],
        (Behavior::Plain, "Lease") => vec![name_col(), col("Holder"), col("Age")],
        (Behavior::CustomResourceDefinition, _) => vec![name_col(), col("Created At")],
        _ => vec![name_col(), col("Age")],
    }
}

/// Builds a Table of `objects` (full objects, as the requested version
/// shows them). `list_meta` is the list's metadata, or none for a single
/// object or a watch event.
pub fn build(
    def: &ResourceDef,
    objects: &[Value],
    list_meta: Option<Value>,
    headers: bool,
) -> Value {
    let custom = def.behavior == Behavior::CustomResource;
    let column_definitions: Vec<Value> = if custom {
        custom_columns(def)
    } else {
        columns(def)
            .iter()
            .map(|c| {
                json!({"name": c.name, "type": c.type_, "format": c.format, "description": "", "priority": c.priority})
            })
            .collect()
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let cells = if custom {
                custom_cells(def, obj)
            } else {
                cells(def, obj)
            };
            json!({
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                },
            })
        })
        .collect();
    let mut table = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta.unwrap_or_else(|| json!({})),
        "rows": rows,
    });
    if headers {
        table["columnDefinitions"] = column_definitions.into();
    }
    table
}

fn custom_columns(def: &ResourceDef) -> Vec<Value> {
    let mut cols = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}),
    ];
    if def.printer_columns.is_empty() {
        cols.push(
            json!({"name": "Age", "type": "date", "format": "", "description": "", "priority": 0}),
        );
    }
    for c in &def.printer_columns {
        cols.push(json!({"name": c.name, "type": c.type_, "format": "", "description": c.description, "priority": c.priority}));
    }
    cols
}

fn custom_cells(def: &ResourceDef, obj: &Value) -> Vec<Value> {
    let mut cells = vec![Value::String(text(obj, "/metadata/name"))];
    if def.printer_columns.is_empty() {
        cells.push(age(obj, "/metadata/creationTimestamp").into());
    }
    for c in &def.printer_columns {
        let pointer = format!("/{}", c.json_path.trim_start_matches('.').replace('.', "/"));
        let value = obj.pointer(&pointer).cloned().unwrap_or(Value::Null);
        cells.push(match (c.type_.as_str(), &value) {
            ("date", Value::String(_)) => age(obj, &pointer).into(),
            _ => value,
        });
    }
    cells
}

fn text(obj: &Value, pointer: &str) -> String {
    match obj.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

/// A duration in kubectl's short form (`5s`, `3m`, `2d4h`), from the
/// timestamp at `pointer` until now.
fn age(obj: &Value, pointer: &str) -> String {
    let Some(ts) = obj
        .pointer(pointer)
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
    else {
        return "<unknown>".into();
    };
    human_duration(jiff::Timestamp::now().as_second() - ts.as_second())
}

/// kube's `duration.HumanDuration` rounding.
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

fn cells(def: &ResourceDef, obj: &Value) -> Vec<Value> {
    let name = text(obj, "/metadata/name");
    let created = age(obj, "/metadata/creationTimestamp");
    match (def.behavior, def.kind.as_str()) {
        (Behavior::Pod, _) => pod_cells(obj, name, created),
        (Behavior::Node, _) => {
            let ready = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| {
                    c.iter()
                        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
                })
                .and_then(|c| c.get("status").and_then(Value::as_str))
                == Some("True");
            let mut status = if ready {
                "Ready".to_string()
            } else {
                "NotReady".to_string()
            };
            if obj.pointer("/spec/unschedulable") == Some(&Value::Bool(true)) {
                status.push_str(",SchedulingDisabled");
            }
            let roles: Vec<String> = obj
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|l| {
                    l.keys()
                        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            vec![
                name.into(),
                status.into(),
                or_none(roles.join(",")).into(),
                created.into(),
                text(obj, "/status/nodeInfo/kubeletVersion").into(),
            ]
        }
        (Behavior::Namespace, _) => vec![
            name.into(),
            text(obj, "/status/phase").into(),
            created.into(),
        ],
        (Behavior::Service, _) => {
            let ports: Vec<String> = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ports| {
                    ports
                        .iter()
                        .map(|p| format!("{}/{}", int(p, "/port"), text(p, "/protocol")))
                        .collect()
                })
                .unwrap_or_default();
            vec![
                name.into(),
                text(obj, "/spec/type").into(),
                or_none(text(obj, "/spec/clusterIP")).into(),
                "<none>".into(),
                or_none(ports.join(",")).into(),
                created.into(),
            ]
        }
        (Behavior::Workload, "Deployment") => vec![
            name.into(),
            format!(
                "{}/{}",
                int(obj, "/status/readyReplicas"),
                int(obj, "/spec/replicas")
            )
            .into(),
            int(obj, "/status/updatedReplicas").into(),
            int(obj, "/status/availableReplicas").into(),
            created.into(),
        ],
        (Behavior::Workload, "ReplicaSet") => vec![
            name.into(),
            int(obj, "/spec/replicas").into(),
            int(obj, "/status/replicas").into(),
            int(obj, "/status/readyReplicas").into(),
            created.into(),
        ],
        (Behavior::Workload, _) => {
            let completions = int(obj, "/spec/completions");
            let succeeded = int(obj, "/status/succeeded");
            let status = if succeeded >= completions && completions > 0 {
                "Complete"
            } else if int(obj, "/status/failed") > 0 && int(obj, "/status/active") == 0 {
                "Failed"
            } else {
                "Running"
            };
            vec![
                name.into(),
                status.into(),
                format!("{succeeded}/{completions}").into(),
                created.into(),
            ]
        }
        (Behavior::Event, _) | (Behavior::EventV1, _) => {
            let (object_path, message_path) = if def.behavior == Behavior::Event {
                ("/involvedObject", "/message")
            } else {
                ("/regarding", "/note")
            };
            let object = format!(
                "{}/{}",
                text(obj, &format!("{object_path}/kind")).to_lowercase(),
                text(obj, &format!("{object_path}/name"))
            );
            vec![
                age(obj, "/lastTimestamp").into(),
                text(obj, "/type").into(),
                text(obj, "/reason").into(),
                object.into(),
                text(obj, message_path).into(),
            ]
        }
        (Behavior::Plain, "ConfigMap") => {
            let count = ["/data", "/binaryData"]
                .iter()
                .filter_map(|p| obj.pointer(p).and_then(Value::as_object))
                .map(|m| m.len())
                .sum::<usize>();
            vec![name.into(), count.into(), created.into()]
        }
        (Behavior::Plain, "Secret") => {
            let count = ["/data", "/stringData"]
                .iter()
                .filter_map(|p| obj.pointer(p).and_then(Value::as_object))
                .map(|m| m.len())
                .sum::<usize>();
            vec![
                name.into(),
                text(obj, "/type").into(),
                count.into(),
                created.into(),
            ]
        }
        (Behavior::Plain, "Lease") => vec![
            name.into(),
            text(obj, "/spec/holderIdentity").into(),
            created.into(),
        ],
        (Behavior::CustomResourceDefinition, _) => {
            vec![name.into(), text(obj, "/metadata/creationTimestamp").into()]
        }
        _ => vec![name.into(), created.into()],
    }
}

/// READY, STATUS and RESTARTS as kubectl users know them.
fn pod_cells(obj: &Value, name: String, created: String) -> Vec<Value> {
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
    let restarts: i64 = statuses.iter().map(|s| int(s, "/restartCount")).sum();
    let mut reason = text(obj, "/status/reason");
    if reason.is_empty() {
        reason = text(obj, "/status/phase");
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
        name.into(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts.into(),
        created.into(),
        or_none(text(obj, "/status/podIP")).into(),
        or_none(text(obj, "/spec/nodeName")).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_accept_header_is_recognised() {
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
        assert!(!wants_table(
            "application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io"
        ));
    }

    #[test]
    fn human_durations_match_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(800 * 86400), "2y");
    }
}
