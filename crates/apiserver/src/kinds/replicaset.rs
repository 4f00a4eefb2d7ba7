//! apps/v1 ReplicaSet.

use serde_json::Value;

use super::{Builtin, Kind, set_default, workload};
use crate::error::FieldError;
use crate::registry::ResourceDef;

pub static REPLICA_SET: Builtin = Builtin {
    short_names: &["rs"],
    categories: &["all"],
    status: true,
    scale: true,
    generation: true,
    ..Builtin::new(
        ("apps", "v1", "ReplicaSet", "replicasets"),
        &ReplicaSet,
        openapi::type_schema::<k8s_openapi::api::apps::v1::ReplicaSet>(),
    )
};

struct ReplicaSet;

impl Kind for ReplicaSet {
    fn defaults(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            set_default(spec, "replicas", 1.into());
            workload::default_template(obj);
        }
    }

    fn validate(&self, _def: &ResourceDef, obj: &Value, errors: &mut Vec<FieldError>) {
        workload::validate_replicated(obj, errors);
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        workload::replica_columns()
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        workload::replica_cells(obj)
    }
}
