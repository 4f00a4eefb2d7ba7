//! apps/v1 Deployment.

use serde_json::{Value, json};

use super::{Builtin, Kind, set_default, workload};
use crate::error::FieldError;
use crate::registry::ResourceDef;
use crate::table;

pub static DEPLOYMENT: Builtin = Builtin {
    short_names: &["deploy"],
    categories: &["all"],
    status: true,
    scale: true,
    generation: true,
    ..Builtin::new(
        ("apps", "v1", "Deployment", "deployments"),
        &Deployment,
        openapi::type_schema::<k8s_openapi::api::apps::v1::Deployment>(),
    )
};

struct Deployment;

impl Kind for Deployment {
    fn defaults(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            set_default(spec, "replicas", 1.into());
            set_default(spec, "revisionHistoryLimit", 10.into());
            set_default(spec, "progressDeadlineSeconds", 600.into());
            set_default(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
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
            table::int_column("Up-to-date"),
            table::int_column("Available"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            format!(
                "{}/{}",
                table::int(obj, "/status/readyReplicas"),
                table::int(obj, "/spec/replicas")
            )
            .into(),
            table::int(obj, "/status/updatedReplicas").into(),
            table::int(obj, "/status/availableReplicas").into(),
            table::created(obj).into(),
        ]
    }
}
