//! coordination.k8s.io/v1 Lease: node heartbeats and leader election.

use serde_json::Value;

use super::{Builtin, Kind, text_at};
use crate::registry::ResourceDef;
use crate::table;

pub static LEASE: Builtin = Builtin::new(
    ("coordination.k8s.io", "v1", "Lease", "leases"),
    &Lease,
    openapi::type_schema::<k8s_openapi::api::coordination::v1::Lease>(),
);

struct Lease;

impl Kind for Lease {
    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Holder"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            text_at(obj, "/spec/holderIdentity").into(),
            table::created(obj).into(),
        ]
    }
}
