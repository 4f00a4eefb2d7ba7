//! core/v1 Namespace: created Active with the `kubernetes` finalizer and
//! its name label; deleted by the namespace controller once empty.

use serde_json::{Value, json};

use super::{Builtin, Kind, Lifecycle, NameRule, text_at};
use crate::registry::ResourceDef;
use crate::strategy::{metadata_mut, name_of};
use crate::table;

pub static NAMESPACE: Builtin = Builtin {
    short_names: &["ns"],
    namespaced: false,
    status: true,
    ..Builtin::new(
        ("", "v1", "Namespace", "namespaces"),
        &Namespace,
        openapi::type_schema::<k8s_openapi::api::core::v1::Namespace>(),
    )
};

struct Namespace;

impl Kind for Namespace {
    fn prepare_create(&self, _def: &ResourceDef, obj: &mut Value) {
        let name = name_of(obj).to_string();
        obj["status"] = json!({"phase": "Active"});
        obj["spec"] = json!({"finalizers": ["kubernetes"]});
        let labels = metadata_mut(obj)
            .entry("labels")
            .or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert("kubernetes.io/metadata.name".into(), name.into());
        }
    }

    /// The spec holds the finalizers the namespace controller removes; a
    /// client's update does not change them.
    fn prepare_update(&self, _def: &ResourceDef, new: &mut Value, old: &Value) {
        if let Some(spec) = old.get("spec") {
            new["spec"] = spec.clone();
        }
    }

    fn name_rule(&self) -> NameRule {
        NameRule::Label
    }

    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        (field == "status.phase").then(|| text_at(obj, "/status/phase"))
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Status"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            text_at(obj, "/status/phase").into(),
            table::created(obj).into(),
        ]
    }

    fn lifecycle(&self) -> Lifecycle {
        Lifecycle::Namespace
    }
}
