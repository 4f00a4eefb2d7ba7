//! apps/v1 DaemonSet: one pod on every node its template selects.

use serde_json::{Value, json};

use super::{Builtin, Kind, set_default, workload};
use crate::error::FieldError;
use crate::registry::ResourceDef;
use crate::table;

pub static DAEMON_SET: Builtin = Builtin {
    short_names: &["ds"],
    categories: &["all"],
    status: true,
    generation: true,
    ..Builtin::new(
        ("apps", "v1", "DaemonSet", "daemonsets"),
        &DaemonSet,
        openapi::type_schema::<k8s_openapi::api::apps::v1::DaemonSet>(),
    )
};

struct DaemonSet;

impl Kind for DaemonSet {
    fn defaults(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            set_default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
            set_default(spec, "revisionHistoryLimit", 10.into());
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
            table::int_column("Up-to-date"),
            table::int_column("Available"),
            table::column("Node Selector"),
            table::column("Age"),
            table::wide(table::column("Containers")),
            table::wide(table::column("Images")),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        let (containers, images) = workload::containers_and_images(obj, "/spec/template/spec");
        let selector = table::label_map(obj, "/spec/template/spec/nodeSelector");
        vec![
            table::name(obj).into(),
            table::int(obj, "/status/desiredNumberScheduled").into(),
            table::int(obj, "/status/currentNumberScheduled").into(),
            table::int(obj, "/status/numberReady").into(),
            table::int(obj, "/status/updatedNumberScheduled").into(),
            table::int(obj, "/status/numberAvailable").into(),
            table::or_none(selector).into(),
            table::created(obj).into(),
            containers.into(),
            images.into(),
        ]
    }
}
