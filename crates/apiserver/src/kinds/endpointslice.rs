//! discovery.k8s.io/v1 EndpointSlice: a slice of the endpoints behind a Service.

use serde_json::Value;

use super::{Builtin, Kind, text_at};
use crate::registry::ResourceDef;
use crate::table;

pub static ENDPOINT_SLICE: Builtin = Builtin::new(
    ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    &EndpointSlice,
    openapi::type_schema::<k8s_openapi::api::discovery::v1::EndpointSlice>(),
);

struct EndpointSlice;

impl Kind for EndpointSlice {
    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("AddressType"),
            table::column("Ports"),
            table::column("Endpoints"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            table::or_none(text_at(obj, "/addressType")).into(),
            slice_ports(obj).into(),
            slice_endpoints(obj).into(),
            table::created(obj).into(),
        ]
    }
}

fn slice_ports(obj: &Value) -> String {
    let ports: Vec<String> = obj
        .pointer("/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .map(|p| table::int(p, "/port").to_string())
                .collect()
        })
        .unwrap_or_default();
    if ports.is_empty() {
        "<unset>".into()
    } else {
        ports.join(",")
    }
}

fn slice_endpoints(obj: &Value) -> String {
    let addresses: Vec<String> = obj
        .pointer("/endpoints")
        .and_then(Value::as_array)
        .map(|endpoints| {
            endpoints
                .iter()
                .filter_map(|e| e.pointer("/addresses/0").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    match addresses.len() {
        0 => "<unset>".into(),
        n if n > 3 => format!("{} + {} more...", addresses[..3].join(","), n - 3),
        _ => addresses.join(","),
    }
}
