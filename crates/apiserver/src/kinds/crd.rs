//! apiextensions.k8s.io/v1 CustomResourceDefinition: accepted and
//! Established in the write that stores it; its resources are served from
//! then on (see `crate::crd`).

use serde_json::Value;

use super::{Builtin, Kind, Lifecycle, NameRule, text_at};
use crate::error::FieldError;
use crate::registry::ResourceDef;
use crate::table;

pub static CUSTOM_RESOURCE_DEFINITION: Builtin = Builtin {
    short_names: &["crd", "crds"],
    namespaced: false,
    storage: "apiextensions.k8s.io/customresourcedefinitions",
    status: true,
    generation: true,
    ..Builtin::new(
        (
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
        ),
        &CustomResourceDefinition,
        openapi::type_schema::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>(),
    )
};

struct CustomResourceDefinition;

impl Kind for CustomResourceDefinition {
    fn derive(&self, obj: &mut Value) {
        crate::crd::prepare(obj);
    }

    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn validate(&self, _def: &ResourceDef, obj: &Value, errors: &mut Vec<FieldError>) {
        errors.extend(crate::crd::validate(obj));
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[table::name_column(), table::column("Created At")])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            text_at(obj, "/metadata/creationTimestamp").into(),
        ]
    }

    fn lifecycle(&self) -> Lifecycle {
        Lifecycle::ResourceDefinition
    }
}
