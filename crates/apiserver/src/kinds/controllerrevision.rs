//! apps/v1 ControllerRevision: an immutable snapshot of a StatefulSet's or DaemonSet's template.

use serde_json::Value;

use super::{Builtin, Kind, text_at};
use crate::registry::ResourceDef;
use crate::table;

pub static CONTROLLER_REVISION: Builtin = Builtin::new(
    ("apps", "v1", "ControllerRevision", "controllerrevisions"),
    &ControllerRevision,
    openapi::type_schema::<k8s_openapi::api::apps::v1::ControllerRevision>(),
);

struct ControllerRevision;

impl Kind for ControllerRevision {
    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Controller"),
            table::int_column("Revision"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            owner(obj).into(),
            table::int(obj, "/revision").into(),
            table::created(obj).into(),
        ]
    }
}

/// The controlling owner as `kind.group/name`.
fn owner(obj: &Value) -> String {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|owners| {
            owners
                .iter()
                .find(|o| o.get("controller") == Some(&Value::Bool(true)))
        })
        .map(|o| {
            let group = text_at(o, "/apiVersion");
            let group = group.split_once('/').map_or("", |(g, _)| g);
            let kind = text_at(o, "/kind").to_lowercase();
            let kind = if group.is_empty() {
                kind
            } else {
                format!("{kind}.{group}")
            };
            format!("{kind}/{}", text_at(o, "/name"))
        })
        .unwrap_or_else(|| "<none>".into())
}
