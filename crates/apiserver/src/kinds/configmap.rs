//! core/v1 ConfigMap.

use prost::Message;
use serde_json::{Value, json};

use super::{Builtin, Kind};
use crate::protobuf;
use crate::registry::ResourceDef;
use crate::table;

pub static CONFIG_MAP: Builtin = Builtin {
    short_names: &["cm"],
    ..Builtin::new(
        ("", "v1", "ConfigMap", "configmaps"),
        &ConfigMap,
        openapi::type_schema::<k8s_openapi::api::core::v1::ConfigMap>(),
    )
};

struct ConfigMap;

impl Kind for ConfigMap {
    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::int_column("Data"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            table::entries(obj, &["/data", "/binaryData"]).into(),
            table::created(obj).into(),
        ]
    }

    fn decode_protobuf(&self, raw: &[u8]) -> Option<Result<Value, prost::DecodeError>> {
        let cm = match k8s_pb::api::core::v1::ConfigMap::decode(raw) {
            Ok(cm) => cm,
            Err(err) => return Some(Err(err)),
        };
        let mut obj = json!({"metadata": protobuf::object_meta(cm.metadata.unwrap_or_default())});
        if !cm.data.is_empty() {
            obj["data"] = json!(cm.data);
        }
        if !cm.binary_data.is_empty() {
            obj["binaryData"] = protobuf::base64_map(cm.binary_data);
        }
        if let Some(immutable) = cm.immutable {
            obj["immutable"] = immutable.into();
        }
        Some(Ok(obj))
    }
}
