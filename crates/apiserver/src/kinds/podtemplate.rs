//! core/v1 PodTemplate: a stored pod template.

use serde_json::Value;

use super::{Builtin, Kind, workload};
use crate::registry::ResourceDef;
use crate::table;

pub static POD_TEMPLATE: Builtin = Builtin::new(
    ("", "v1", "PodTemplate", "podtemplates"),
    &PodTemplate,
    openapi::type_schema::<k8s_openapi::api::core::v1::PodTemplate>(),
);

struct PodTemplate;

impl Kind for PodTemplate {
    fn defaults(&self, obj: &mut Value) {
        super::pod::default_pod_spec(obj.pointer_mut("/template/spec"));
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Containers"),
            table::column("Images"),
            table::column("Pod Labels"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            workload::containers_and_images(obj, "/template/spec")
                .0
                .into(),
            workload::containers_and_images(obj, "/template/spec")
                .1
                .into(),
            table::or_none(table::label_map(obj, "/template/metadata/labels")).into(),
        ]
    }
}
