//! core/v1 Service: type ClusterIP, session affinity and port defaults; names
//! are DNS-1035 labels (they become DNS names and environment variables).

use serde_json::{Value, json};

use super::{Builtin, Kind, NameRule, set_default, text_at};
use crate::registry::ResourceDef;
use crate::table;

pub static SERVICE: Builtin = Builtin {
    short_names: &["svc"],
    categories: &["all"],
    storage: "services/specs",
    status: true,
    ..Builtin::new(
        ("", "v1", "Service", "services"),
        &Service,
        openapi::type_schema::<k8s_openapi::api::core::v1::Service>(),
    )
};

struct Service;

impl Kind for Service {
    fn prepare_create(&self, _def: &ResourceDef, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        set_default(spec, "type", "ClusterIP".into());
        set_default(spec, "sessionAffinity", "None".into());
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                set_default(port, "protocol", "TCP".into());
                if let Some(p) = port.get("port").cloned() {
                    set_default(port, "targetPort", p);
                }
            }
        }
        if !obj.get("status").is_some_and(Value::is_object) {
            obj["status"] = json!({"loadBalancer": {}});
        }
    }

    fn name_rule(&self) -> NameRule {
        NameRule::Dns1035Label
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Type"),
            table::column("Cluster-IP"),
            table::column("External-IP"),
            table::column("Port(s)"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        let ports: Vec<String> = obj
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .map(|ports| {
                ports
                    .iter()
                    .map(|p| format!("{}/{}", table::int(p, "/port"), text_at(p, "/protocol")))
                    .collect()
            })
            .unwrap_or_default();
        vec![
            table::name(obj).into(),
            text_at(obj, "/spec/type").into(),
            table::or_none(text_at(obj, "/spec/clusterIP")).into(),
            "<none>".into(),
            table::or_none(ports.join(",")).into(),
            table::created(obj).into(),
        ]
    }
}
