//! networking.k8s.io/v1 NetworkPolicy: which traffic may reach selected pods.

use serde_json::Value;

use super::{Builtin, Kind};
use crate::registry::ResourceDef;
use crate::table;

pub static NETWORK_POLICY: Builtin = Builtin {
    short_names: &["netpol"],
    generation: true,
    ..Builtin::new(
        (
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
        ),
        &NetworkPolicy,
        openapi::type_schema::<k8s_openapi::api::networking::v1::NetworkPolicy>(),
    )
};

struct NetworkPolicy;

impl Kind for NetworkPolicy {
    fn defaults(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
            && !spec.contains_key("policyTypes")
        {
            let mut types = vec![Value::from("Ingress")];
            if spec.contains_key("egress") {
                types.push("Egress".into());
            }
            spec.insert("policyTypes".into(), types.into());
        }
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Pod-Selector"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            selector(obj, "/spec/podSelector").into(),
            table::created(obj).into(),
        ]
    }
}

/// A label selector in its string form, `<none>` when it selects all.
fn selector(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(|s| apimachinery::labels::LabelSelector::from_label_selector_json(s).ok())
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "<none>".into())
}
