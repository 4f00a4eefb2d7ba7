//! storage.k8s.io/v1 StorageClass: how volumes of a class are provisioned.

use serde_json::Value;

use super::{Builtin, Kind, set_default, text_at};
use crate::registry::ResourceDef;
use crate::table;

pub static STORAGE_CLASS: Builtin = Builtin {
    short_names: &["sc"],
    namespaced: false,
    ..Builtin::new(
        ("storage.k8s.io", "v1", "StorageClass", "storageclasses"),
        &StorageClass,
        openapi::type_schema::<k8s_openapi::api::storage::v1::StorageClass>(),
    )
};

struct StorageClass;

impl Kind for StorageClass {
    fn defaults(&self, obj: &mut Value) {
        if let Some(class) = obj.as_object_mut() {
            set_default(class, "reclaimPolicy", "Delete".into());
            set_default(class, "volumeBindingMode", "Immediate".into());
        }
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Provisioner"),
            table::column("ReclaimPolicy"),
            table::column("VolumeBindingMode"),
            table::column("AllowVolumeExpansion"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            table::or_none(text_at(obj, "/provisioner")).into(),
            table::or_none(text_at(obj, "/reclaimPolicy")).into(),
            table::or_none(text_at(obj, "/volumeBindingMode")).into(),
            obj.pointer("/allowVolumeExpansion")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string()
                .into(),
            table::created(obj).into(),
        ]
    }
}
