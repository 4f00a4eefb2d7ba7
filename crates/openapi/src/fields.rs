//! Field validation: which fields of an object its kind's schema does not
//! declare, as kube-apiserver's decoder reports them for
//! `fieldValidation=Strict` and `Warn`, and drops them from what it stores.
//!
//! The walk follows `$ref`s through the component schemas of the kind's
//! group-version document, descends into `properties`, map values
//! (`additionalProperties`) and list items, and stops where a schema
//! declares nothing (an object without properties, such as `FieldsV1` or
//! `RawExtension`) or keeps unknown fields
//! (`x-kubernetes-preserve-unknown-fields`).

use serde_json::{Map, Value};

use crate::schemas::V3_PREFIX;

/// How deep the walk follows a schema; deeper values are not checked
/// (the server refuses JSON nested over 128 levels anyway).
const MAX_DEPTH: usize = 64;

/// Removes the fields of `obj` that the schema `root` does not declare and
/// returns their paths in upstream's form (`spec.template.spec.containers[0].bogus`).
/// Keys starting with `$` are patch directives and are left alone.
pub(crate) fn prune_unknown(
    schemas: &Map<String, Value>,
    root: &str,
    obj: &mut Value,
) -> Vec<String> {
    let mut unknown = Vec::new();
    if let Some(schema) = schemas.get(root) {
        walk(schemas, schema, obj, &mut String::new(), &mut unknown, 0);
    }
    unknown
}

/// The schema a `$ref` points to, or the schema itself.
fn resolve<'a>(schemas: &'a Map<String, Value>, schema: &'a Value) -> Option<&'a Value> {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => schemas.get(reference.strip_prefix(V3_PREFIX)?),
        None => Some(schema),
    }
}

fn walk(
    schemas: &Map<String, Value>,
    schema: &Value,
    value: &mut Value,
    path: &mut String,
    unknown: &mut Vec<String>,
    depth: usize,
) {
    let Some(schema) = resolve(schemas, schema) else {
        return;
    };
    if depth > MAX_DEPTH
        || schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
    {
        return;
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            if properties.is_none() && additional.is_none() {
                return;
            }
            let mut removed = Vec::new();
            for (key, child) in map.iter_mut() {
                if key.starts_with('$') {
                    continue;
                }
                let child_schema = properties.and_then(|p| p.get(key)).or(additional);
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                match child_schema {
                    Some(child_schema) => {
                        walk(schemas, child_schema, child, path, unknown, depth + 1);
                    }
                    None => {
                        unknown.push(path.clone());
                        removed.push(key.clone());
                    }
                }
                path.truncate(len);
            }
            for key in removed {
                map.remove(&key);
            }
        }
        Value::Array(items) => {
            let Some(item_schema) = schema.get("items") else {
                return;
            };
            for (index, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                walk(schemas, item_schema, item, path, unknown, depth + 1);
                path.truncate(len);
            }
        }
        _ => {}
    }
}
