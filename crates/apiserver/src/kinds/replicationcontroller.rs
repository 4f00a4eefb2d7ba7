//! core/v1 ReplicationController: the original replica controller, selecting pods by a label map.

use serde_json::Value;

use super::{Builtin, Kind, set_default};
use crate::registry::ResourceDef;
use crate::table;

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
        super::pod::default_pod_spec(obj.pointer_mut("/spec/template/spec"));
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
