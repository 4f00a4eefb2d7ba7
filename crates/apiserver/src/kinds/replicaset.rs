//! apps/v1 ReplicaSet.

use serde_json::Value;

use super::{Builtin, Kind, set_default, workload};
use crate::error::FieldError;
use crate::registry::ResourceDef;
use crate::table;

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
        table::columns(&[
            table::name_column(),
            table::int_column("Desired"),
            table::int_column("Current"),
            table::int_column("Ready"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            table::int(obj, "/spec/replicas").into(),
            table::int(obj, "/status/replicas").into(),
            table::int(obj, "/status/readyReplicas").into(),
            table::created(obj).into(),
        ]
    }
}
