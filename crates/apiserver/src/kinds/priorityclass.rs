//! scheduling.k8s.io/v1 PriorityClass: a named pod priority.

use serde_json::Value;

use super::{Builtin, Kind, set_default, text_at};
use crate::registry::ResourceDef;
use crate::table;

pub static PRIORITY_CLASS: Builtin = Builtin {
    short_names: &["pc"],
    namespaced: false,
    ..Builtin::new(
        (
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            "priorityclasses",
        ),
        &PriorityClass,
        openapi::type_schema::<k8s_openapi::api::scheduling::v1::PriorityClass>(),
    )
};

struct PriorityClass;

impl Kind for PriorityClass {
    fn defaults(&self, obj: &mut Value) {
        if let Some(class) = obj.as_object_mut() {
            set_default(class, "preemptionPolicy", "PreemptLowerPriority".into());
        }
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::int_column("Value"),
            table::column("Global-Default"),
            table::column("Age"),
            table::column("PreemptionPolicy"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            table::int(obj, "/value").into(),
            obj.pointer("/globalDefault")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string()
                .into(),
            table::created(obj).into(),
            table::or_none(text_at(obj, "/preemptionPolicy")).into(),
        ]
    }
}
