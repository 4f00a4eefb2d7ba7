//! networking.k8s.io/v1 Ingress: HTTP routes into the cluster.

use serde_json::Value;

use super::{Builtin, Kind, text_at};
use crate::registry::ResourceDef;
use crate::table;

pub static INGRESS: Builtin = Builtin {
    short_names: &["ing"],
    status: true,
    generation: true,
    ..Builtin::new(
        ("networking.k8s.io", "v1", "Ingress", "ingresses"),
        &Ingress,
        openapi::type_schema::<k8s_openapi::api::networking::v1::Ingress>(),
    )
};

struct Ingress;

impl Kind for Ingress {
    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Class"),
            table::column("Hosts"),
            table::column("Address"),
            table::column("Ports"),
            table::column("Age"),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        vec![
            table::name(obj).into(),
            table::or_none(text_at(obj, "/spec/ingressClassName")).into(),
            hosts(obj).into(),
            address(obj).into(),
            ports(obj).into(),
            table::created(obj).into(),
        ]
    }
}

fn hosts(obj: &Value) -> String {
    let hosts: Vec<String> = obj
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .map(|rules| {
            rules
                .iter()
                .map(|r| text_at(r, "/host"))
                .filter(|h| !h.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if hosts.is_empty() {
        "*".into()
    } else {
        hosts.join(",")
    }
}

fn address(obj: &Value) -> String {
    obj.pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .map(|ingress| {
            ingress
                .iter()
                .map(|i| {
                    let ip = text_at(i, "/ip");
                    if ip.is_empty() {
                        text_at(i, "/hostname")
                    } else {
                        ip
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// `80`, or `80, 443` with TLS, as kubectl prints an Ingress's ports.
fn ports(obj: &Value) -> &'static str {
    let tls = obj
        .pointer("/spec/tls")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    if tls { "80, 443" } else { "80" }
}
