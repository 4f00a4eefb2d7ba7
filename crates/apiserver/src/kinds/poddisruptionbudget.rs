//! policy/v1 PodDisruptionBudget: how many selected pods may be disrupted at once.

use serde_json::Value;

use super::{Builtin, Kind, text_at};
use crate::registry::ResourceDef;
use crate::table;

pub static POD_DISRUPTION_BUDGET: Builtin = Builtin {
    short_names: &["pdb"],
    status: true,
    generation: true,
    ..Builtin::new(
        (
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
        ),
        &PodDisruptionBudget,
        openapi::type_schema::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(),
    )
};

struct PodDisruptionBudget;

impl Kind for PodDisruptionBudget {
    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Min Available"),
            table::column("Max Unavailable"),
            table::int_column("Allowed Disruptions"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            table::or_none(text_at(obj, "/spec/minAvailable")).into(),
            table::or_none(text_at(obj, "/spec/maxUnavailable")).into(),
            table::int(obj, "/status/disruptionsAllowed").into(),
            table::created(obj).into(),
        ]
    }
}
