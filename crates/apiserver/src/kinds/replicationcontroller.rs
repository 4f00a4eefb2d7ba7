//! core/v1 ReplicationController: the original replica controller, selecting pods by a label map.

use serde_json::Value;

use super::{Builtin, Kind, set_default, workload};
use crate::registry::ResourceDef;

pub static REPLICATION_CONTROLLER: Builtin = Builtin {
    short_names: &["rc"],
    categories: &["all"],
    status: true,
    scale: true,
    generation: true,
    ..Builtin::new(
        ("", "v1", "ReplicationController", "replicationcontrollers"),
        &ReplicationController,
        openapi::type_schema::<k8s_openapi::api::core::v1::ReplicationController>(),
    )
};

struct ReplicationController;

impl Kind for ReplicationController {
    fn defaults(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            set_default(spec, "replicas", 1.into());
        }
        workload::default_template(obj);
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        workload::replica_columns()
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        workload::replica_cells(obj)
    }
}
