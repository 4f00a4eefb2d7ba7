//! networking.k8s.io/v1 IngressClass: which controller serves an Ingress.

use serde_json::Value;

use super::{Builtin, Kind, text_at};
use crate::registry::ResourceDef;
use crate::table;

pub static INGRESS_CLASS: Builtin = Builtin {
    namespaced: false,
    ..Builtin::new(
        ("networking.k8s.io", "v1", "IngressClass", "ingressclasses"),
        &IngressClass,
        openapi::type_schema::<k8s_openapi::api::networking::v1::IngressClass>(),
    )
};

struct IngressClass;

impl Kind for IngressClass {
    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Controller"),
            table::column("Parameters"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            table::or_none(text_at(obj, "/spec/controller")).into(),
            table::or_none(text_at(obj, "/spec/parameters/name")).into(),
            table::created(obj).into(),
        ]
    }
}
