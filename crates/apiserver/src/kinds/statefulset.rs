//! apps/v1 StatefulSet: pods with stable identities, created in order.

use serde_json::{Value, json};

use super::{Builtin, Kind, set_default, workload};
use crate::error::FieldError;
use crate::registry::ResourceDef;
use crate::table;

pub static STATEFUL_SET: Builtin = Builtin {
    short_names: &["sts"],
    categories: &["all"],
    status: true,
    scale: true,
    generation: true,
    ..Builtin::new(
        ("apps", "v1", "StatefulSet", "statefulsets"),
        &StatefulSet,
        openapi::type_schema::<k8s_openapi::api::apps::v1::StatefulSet>(),
    )
};

struct StatefulSet;

impl Kind for StatefulSet {
    fn defaults(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            set_default(spec, "replicas", 1.into());
            set_default(spec, "podManagementPolicy", "OrderedReady".into());
            set_default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            set_default(spec, "revisionHistoryLimit", 10.into());
            set_default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            workload::default_template(obj);
        }
    }

    fn validate(&self, _def: &ResourceDef, obj: &Value, errors: &mut Vec<FieldError>) {
        workload::validate_replicated(obj, errors);
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Ready"),
            table::column("Age"),
            table::wide(table::column("Containers")),
            table::wide(table::column("Images")),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        let (containers, images) = workload::containers_and_images(obj, "/spec/template/spec");
        vec![
            table::name(obj).into(),
            format!(
                "{}/{}",
                table::int(obj, "/status/readyReplicas"),
                table::int(obj, "/spec/replicas")
            )
            .into(),
            table::created(obj).into(),
            containers.into(),
            images.into(),
        ]
    }
}
