//! core/v1 ResourceQuota: limits on what a namespace may consume.

use serde_json::Value;

use super::{Builtin, Kind};
use crate::registry::ResourceDef;
use crate::table;

pub static RESOURCE_QUOTA: Builtin = Builtin {
    short_names: &["quota"],
    status: true,
    ..Builtin::new(
        ("", "v1", "ResourceQuota", "resourcequotas"),
        &ResourceQuota,
        openapi::type_schema::<k8s_openapi::api::core::v1::ResourceQuota>(),
    )
};

struct ResourceQuota;

impl Kind for ResourceQuota {
    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[table::name_column(), table::column("Age")])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![table::name(obj).into(), table::created(obj).into()]
    }
}
