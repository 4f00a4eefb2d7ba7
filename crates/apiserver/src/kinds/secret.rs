//! core/v1 Secret: `stringData` folded into `data`, type Opaque by default.

use base64::Engine;
use serde_json::{Value, json};

use super::{Builtin, Kind, set_default, text_at};
use crate::registry::ResourceDef;
use crate::table;

pub static SECRET: Builtin = Builtin::new(
    ("", "v1", "Secret", "secrets"),
    &Secret,
    openapi::type_schema::<k8s_openapi::api::core::v1::Secret>(),
);

struct Secret;

impl Kind for Secret {
    fn defaults(&self, obj: &mut Value) {
        fold_string_data(obj);
    }

    fn prepare_create(&self, _def: &ResourceDef, obj: &mut Value) {
        if let Some(secret) = obj.as_object_mut() {
            set_default(secret, "type", "Opaque".into());
        }
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Type"),
            table::int_column("Data"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            text_at(obj, "/type").into(),
            table::entries(obj, &["/data", "/stringData"]).into(),
            table::created(obj).into(),
        ]
    }
}

/// A Secret's write-only `stringData` is merged into `data` (base64), as
/// upstream does on every write; it is never stored or returned.
fn fold_string_data(secret: &mut Value) {
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
