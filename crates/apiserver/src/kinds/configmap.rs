//! core/v1 ConfigMap.

use serde_json::Value;

use super::{Builtin, Kind};
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
}
