//! core/v1 Endpoints: the addresses behind a Service.

use serde_json::Value;

use super::{Builtin, Kind, text_at};
use crate::registry::ResourceDef;
use crate::table;

pub static ENDPOINTS: Builtin = Builtin {
    short_names: &["ep"],
    ..Builtin::new(
        ("", "v1", "Endpoints", "endpoints"),
        &Endpoints,
        openapi::type_schema::<k8s_openapi::api::core::v1::Endpoints>(),
    )
};

struct Endpoints;

impl Kind for Endpoints {
    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Endpoints"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            endpoints(obj).into(),
            table::created(obj).into(),
        ]
    }
}

/// `ip:port` pairs, at most three, then `+ N more...` as kubectl shows them.
fn endpoints(obj: &Value) -> String {
    let mut pairs = Vec::new();
    for subset in obj
        .pointer("/subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ports: Vec<i64> = subset
            .get("ports")
            .and_then(Value::as_array)
            .map(|p| p.iter().map(|p| table::int(p, "/port")).collect())
            .unwrap_or_default();
        for address in subset
            .get("addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ip = text_at(address, "/ip");
            if ports.is_empty() {
                pairs.push(ip.clone());
            }
            for port in &ports {
                pairs.push(format!("{ip}:{port}"));
            }
        }
    }
    match pairs.len() {
        0 => "<none>".into(),
        n if n > 3 => format!("{} + {} more...", pairs[..3].join(","), n - 3),
        _ => pairs.join(","),
    }
}
