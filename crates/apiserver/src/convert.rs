//! Conversion between a stored object and the API version a request names.
//!
//! Objects are stored in one form per kind. Two kinds of views differ from
//! it: the versions of a multi-version CRD (converted by setting
//! `apiVersion`, the `None` strategy) and kinds that are views of another
//! kind's storage (events.k8s.io/v1 Events), which convert through their
//! [`Kind`](crate::kinds::Kind) hooks.

use bytes::Bytes;
use serde_json::Value;

use crate::error::ApiError;
use crate::registry::ResourceDef;
use crate::watchcache::CachedObject;

/// The bytes of a stored object as seen through `def`.
pub fn render(def: &ResourceDef, object: &CachedObject) -> Bytes {
    if let Some(mut value) = def.rules.view_of_stored(&object.value) {
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

/// The same view in its protobuf envelope.
pub fn render_protobuf(def: &ResourceDef, object: &CachedObject) -> Result<Bytes, ApiError> {
    if def.rules.is_view()
        || object.value.get("apiVersion").and_then(Value::as_str) != Some(&def.api_version())
    {
        crate::protobuf::encode(&view(def, object))
            .map(Bytes::from)
            .map_err(|err| ApiError::internal(err.to_string()))
    } else {
        object.protobuf()
    }
}

/// The same view as a JSON value.
pub fn view(def: &ResourceDef, object: &CachedObject) -> Value {
    if def.rules.is_view()
        || object.value.get("apiVersion").and_then(Value::as_str) != Some(&def.api_version())
    {
        serde_json::from_slice(&render(def, object)).unwrap_or(Value::Null)
    } else {
        object.value.clone()
    }
}

/// Turns an object written through `def` into its stored form.
pub fn to_storage(def: &ResourceDef, obj: &mut Value) {
    def.rules.to_storage(obj);
}
