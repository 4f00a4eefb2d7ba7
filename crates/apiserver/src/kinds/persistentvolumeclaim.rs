//! core/v1 PersistentVolumeClaim: a request for storage, Pending until bound.

use serde_json::{Value, json};

use super::{Builtin, Kind, set_default, text_at};
use crate::registry::ResourceDef;
use crate::table;

pub static PERSISTENT_VOLUME_CLAIM: Builtin = Builtin {
    short_names: &["pvc"],
    status: true,
    ..Builtin::new(
        ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        &PersistentVolumeClaim,
        openapi::type_schema::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(),
    )
};

struct PersistentVolumeClaim;

impl Kind for PersistentVolumeClaim {
    fn defaults(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            set_default(spec, "volumeMode", "Filesystem".into());
        }
    }

    fn prepare_create(&self, _def: &ResourceDef, obj: &mut Value) {
        obj["status"] = json!({"phase": "Pending"});
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Status"),
            table::column("Volume"),
            table::column("Capacity"),
            table::column("Access Modes"),
            table::column("StorageClass"),
            table::column("VolumeAttributesClass"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            table::or_none(text_at(obj, "/status/phase")).into(),
            table::or_none(text_at(obj, "/spec/volumeName")).into(),
            table::or_none(text_at(obj, "/status/capacity/storage")).into(),
            table::access_modes(obj, "/status/accessModes").into(),
            table::or_none(text_at(obj, "/spec/storageClassName")).into(),
            table::or_none(text_at(obj, "/spec/volumeAttributesClassName")).into(),
            table::created(obj).into(),
        ]
    }
}
