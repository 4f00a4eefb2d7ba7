//! `meta.k8s.io/v1` Table responses: what `kubectl get` prints.
//!
//! kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and
//! prints the columns the server chooses; each kind defines its columns
//! (the ones kube-apiserver's printers produce) with the helpers here.

use serde_json::{Value, json};

use crate::registry::ResourceDef;

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

/// A column of a built-in kind's Table.
pub struct Column {
    name: &'static str,
    type_: &'static str,
    format: &'static str,
    priority: i64,
}

/// A string column.
pub const fn column(name: &'static str) -> Column {
    Column {
        name,
        type_: "string",
        format: "",
        priority: 0,
    }
}

/// The Name column, which kubectl recognises by its format.
pub const fn name_column() -> Column {
    Column {
        name: "Name",
        type_: "string",
        format: "name",
        priority: 0,
    }
}

pub const fn int_column(name: &'static str) -> Column {
    Column {
        name,
        type_: "integer",
        format: "",
        priority: 0,
    }
}

/// A column `kubectl get -o wide` adds.
pub const fn wide(mut c: Column) -> Column {
    c.priority = 1;
    c
}

/// The Table's column definitions.
pub fn columns(columns: &[Column]) -> Vec<Value> {
    columns
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": c.type_, "format": c.format, "description": "", "priority": c.priority})
        })
        .collect()
}

/// Builds a Table of `objects` (full objects, as the requested version
/// shows them) with the kind's columns. `list_meta` is the list's
/// metadata, or none for a single object or a watch event.
pub fn build(
    def: &ResourceDef,
    objects: &[Value],
    list_meta: Option<Value>,
    headers: bool,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            json!({
                "cells": def.rules.cells(def, obj),
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
        table["columnDefinitions"] = def.rules.columns(def).into();
    }
    table
}

/// The object's name.
pub fn name(obj: &Value) -> String {
    crate::kinds::text_at(obj, "/metadata/name")
}

/// The object's age, for the Age column.
pub fn created(obj: &Value) -> String {
    age(obj, "/metadata/creationTimestamp")
}

pub fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// How many entries the maps at `pointers` hold together (a ConfigMap's
/// DATA column).
pub fn entries(obj: &Value, pointers: &[&str]) -> usize {
    pointers
        .iter()
        .filter_map(|p| obj.pointer(p).and_then(Value::as_object))
        .map(|m| m.len())
        .sum()
}

/// Access modes as kubectl abbreviates them (RWO, ROX, RWX, RWOP).
pub fn access_modes(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(|modes| {
            modes
                .iter()
                .filter_map(Value::as_str)
                .map(|m| match m {
                    "ReadWriteOnce" => "RWO",
                    "ReadOnlyMany" => "ROX",
                    "ReadWriteMany" => "RWX",
                    "ReadWriteOncePod" => "RWOP",
                    other => other,
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// A string map (labels, a node selector) as `k=v,k2=v2`.
pub fn label_map(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

pub fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

/// A duration in kubectl's short form (`5s`, `3m`, `2d4h`), from the
/// timestamp at `pointer` until now.
pub fn age(obj: &Value, pointer: &str) -> String {
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
