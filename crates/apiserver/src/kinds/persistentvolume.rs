//! core/v1 PersistentVolume: a piece of storage, cluster-scoped.

use serde_json::{Value, json};

use super::{Builtin, Kind, set_default, text_at};
use crate::registry::ResourceDef;
use crate::table;

pub static PERSISTENT_VOLUME: Builtin = Builtin {
    short_names: &["pv"],
    namespaced: false,
    status: true,
    ..Builtin::new(
        ("", "v1", "PersistentVolume", "persistentvolumes"),
        &PersistentVolume,
        openapi::type_schema::<k8s_openapi::api::core::v1::PersistentVolume>(),
    )
};

struct PersistentVolume;

impl Kind for PersistentVolume {
    fn defaults(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            set_default(spec, "persistentVolumeReclaimPolicy", "Retain".into());
            set_default(spec, "volumeMode", "Filesystem".into());
        }
    }

    fn prepare_create(&self, _def: &ResourceDef, obj: &mut Value) {
        obj["status"] = json!({"phase": "Pending"});
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Capacity"),
            table::column("Access Modes"),
            table::column("Reclaim Policy"),
            table::column("Status"),
            table::column("Claim"),
            table::column("StorageClass"),
            table::column("VolumeAttributesClass"),
            table::column("Reason"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            table::or_none(text_at(obj, "/spec/capacity/storage")).into(),
            table::access_modes(obj, "/spec/accessModes").into(),
            table::or_none(text_at(obj, "/spec/persistentVolumeReclaimPolicy")).into(),
            table::or_none(text_at(obj, "/status/phase")).into(),
            claim(obj).into(),
            table::or_none(text_at(obj, "/spec/storageClassName")).into(),
            table::or_none(text_at(obj, "/spec/volumeAttributesClassName")).into(),
            table::or_none(text_at(obj, "/status/reason")).into(),
            table::created(obj).into(),
        ]
    }
}

/// The bound claim as `namespace/name`.
fn claim(obj: &Value) -> String {
    match obj.pointer("/spec/claimRef/name").and_then(Value::as_str) {
        Some(name) => format!("{}/{name}", text_at(obj, "/spec/claimRef/namespace")),
        None => String::new(),
    }
}
