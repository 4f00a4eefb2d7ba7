//! core/v1 LimitRange: default and bounding resources of a namespace's containers.

use serde_json::Value;

use super::{Builtin, Kind, text_at};
use crate::registry::ResourceDef;
use crate::table;

pub static LIMIT_RANGE: Builtin = Builtin {
    short_names: &["limits"],
    ..Builtin::new(
        ("", "v1", "LimitRange", "limitranges"),
        &LimitRange,
        openapi::type_schema::<k8s_openapi::api::core::v1::LimitRange>(),
    )
};

struct LimitRange;

impl Kind for LimitRange {
    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[table::name_column(), table::column("Created At")])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            table::or_none(text_at(obj, "/metadata/creationTimestamp")).into(),
        ]
    }
}
