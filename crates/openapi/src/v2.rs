//! v3 component schemas as v2 definitions.
//!
//! Besides pointing references at `#/definitions/`, the schemas are cut to
//! what Swagger 2.0 and kube-openapi's `proto.NewOpenAPIData` accept, as
//! upstream does when it publishes CRD schemas in v2: no `nullable`,
//! `oneOf`, `anyOf` or `not`; one type at most; no siblings next to a
//! `$ref` that the parser rejects; no `array` without a single item
//! schema. A definition it cannot parse would make every `kubectl apply`
//! fail, not only those of that kind.

use serde_json::{Map, Value};

use crate::schemas::V3_PREFIX;

pub(crate) const V2_PREFIX: &str = "#/definitions/";

/// Converts one v3 schema to v2.
pub(crate) fn schema(value: &Value) -> Value {
    let Value::Object(map) = value else {
        // `true`/`false` schemas: v2 knows only objects; accept anything.
        return Value::Object(Map::new());
    };
    let mut out = Map::new();
    for (key, value) in map {
        match key.as_str() {
            "nullable" | "oneOf" | "anyOf" | "not" => {}
            "$ref" => {
                if let Some(reference) = value.as_str() {
                    let name = reference.strip_prefix(V3_PREFIX).unwrap_or(reference);
                    out.insert(key.clone(), format!("{V2_PREFIX}{name}").into());
                }
            }
            "properties" | "patternProperties" => {
                let converted = value
                    .as_object()
                    .map(|properties| {
                        properties
                            .iter()
                            .map(|(name, property)| (name.clone(), schema(property)))
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Object(converted));
            }
            "items" => {
                // Tuple items have no v2 form; the array check below
                // then drops the type.
                if value.is_object() {
                    out.insert(key.clone(), schema(value));
                }
            }
            "additionalProperties" if value.is_object() => {
                out.insert(key.clone(), schema(value));
            }
            "allOf" => {
                let converted = value
                    .as_array()
                    .map(|all| all.iter().map(schema).collect())
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Array(converted));
            }
            "type" => {
                if let Some(single) = single_type(value) {
                    out.insert(key.clone(), single.into());
                }
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if out.contains_key("$ref") {
        out.remove("type");
        out.remove("properties");
    }
    if out.get("type").and_then(Value::as_str) == Some("array")
        && !out.get("items").is_some_and(Value::is_object)
    {
        out.remove("type");
    }
    Value::Object(out)
}

/// The one non-null type of a `type` that may be a list.
fn single_type(value: &Value) -> Option<&str> {
    match value {
        Value::String(single) => Some(single),
        Value::Array(types) => {
            let mut named = types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null");
            match (named.next(), named.next()) {
                (Some(single), None) => Some(single),
                _ => None,
            }
        }
        _ => None,
    }
}
