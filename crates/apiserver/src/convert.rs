//! Conversion between a stored object and the API version a request names.
//!
//! Objects are stored in one form per kind. Two kinds of views differ from
//! it: the versions of a multi-version CRD (converted by setting
//! `apiVersion`, the `None` strategy) and events.k8s.io/v1 Events, which
//! share storage with core/v1 Events under other field names.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::registry::{Behavior, ResourceDef};
use crate::watchcache::CachedObject;

/// Field renames between events.k8s.io/v1 (left) and core/v1 (right).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// The bytes of a stored object as seen through `def`.
pub fn render(def: &ResourceDef, object: &CachedObject) -> Bytes {
    if def.behavior == Behavior::EventV1 {
        let mut value = object.value.clone();
        rename(&mut value, |(v1, core)| (*core, *v1));
        value["apiVersion"] = def.api_version().into();
        return Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
    }
    let api_version = object.value.get("apiVersion").and_then(Value::as_str);
    if api_version.is_some_and(|v| v != def.api_version()) {
        let mut value = object.value.clone();
        value["apiVersion"] = def.api_version().into();
        return Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
    }
    object.bytes.clone()
}

/// The same view as a JSON value.
pub fn view(def: &ResourceDef, object: &CachedObject) -> Value {
    if def.behavior == Behavior::EventV1
        || object.value.get("apiVersion").and_then(Value::as_str) != Some(&def.api_version())
    {
        serde_json::from_slice(&render(def, object)).unwrap_or(Value::Null)
    } else {
        object.value.clone()
    }
}

/// Turns an object written through `def` into its stored form.
pub fn to_storage(def: &ResourceDef, obj: &mut Value) {
    if def.behavior == Behavior::EventV1 {
        rename(obj, |(v1, core)| (*v1, *core));
        obj["apiVersion"] = "v1".into();
    }
}

fn rename(
    obj: &mut Value,
    direction: impl Fn(&(&'static str, &'static str)) -> (&'static str, &'static str),
) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let mut moved = Map::new();
    for pair in EVENT_FIELDS {
        let (from, to) = direction(pair);
        if let Some(v) = map.remove(from) {
            moved.insert(to.to_string(), v);
        }
    }
    map.extend(moved);
}
