//! core/v1 Node: cluster-scoped, stored as `minions` like upstream, with
//! status (and label) writes from its kubelet.

use serde_json::Value;

use super::{Builtin, Kind, StatusWrites, text_at};
use crate::registry::ResourceDef;
use crate::table;

pub static NODE: Builtin = Builtin {
    short_names: &["no"],
    namespaced: false,
    storage: "minions",
    status: true,
    ..Builtin::new(
        ("", "v1", "Node", "nodes"),
        &Node,
        openapi::type_schema::<k8s_openapi::api::core::v1::Node>(),
    )
};

struct Node;

impl Kind for Node {
    /// A kubelet registers its node with the status it observed.
    fn keeps_status_on_create(&self) -> bool {
        true
    }

    fn status_writes(&self) -> StatusWrites {
        StatusWrites::StatusAndMetadata
    }

    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        (field == "spec.unschedulable").then(|| {
            obj.pointer("/spec/unschedulable")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string()
        })
    }

    fn columns(&self, _def: &ResourceDef) -> Vec<Value> {
        table::columns(&[
            table::name_column(),
            table::column("Status"),
            table::column("Roles"),
            table::column("Age"),
            table::column("Version"),
            table::wide(table::column("Internal-IP")),
            table::wide(table::column("External-IP")),
            table::wide(table::column("OS-Image")),
            table::wide(table::column("Kernel-Version")),
            table::wide(table::column("Container-Runtime")),
        ])
    }

    fn cells(&self, _def: &ResourceDef, obj: &Value) -> Vec<Value> {
        let ready = obj
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|c| {
                c.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
            })
            .and_then(|c| c.get("status").and_then(Value::as_str))
            == Some("True");
        let mut status = if ready { "Ready" } else { "NotReady" }.to_string();
        if obj.pointer("/spec/unschedulable") == Some(&Value::Bool(true)) {
            status.push_str(",SchedulingDisabled");
        }
        let roles: Vec<&str> = obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|l| {
                l.keys()
                    .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                    .collect()
            })
            .unwrap_or_default();
        vec![
            table::name(obj).into(),
            status.into(),
            table::or_none(roles.join(",")).into(),
            table::created(obj).into(),
            text_at(obj, "/status/nodeInfo/kubeletVersion").into(),
            table::or_none(address(obj, "InternalIP")).into(),
            table::or_none(address(obj, "ExternalIP")).into(),
            text_at(obj, "/status/nodeInfo/osImage").into(),
            text_at(obj, "/status/nodeInfo/kernelVersion").into(),
            text_at(obj, "/status/nodeInfo/containerRuntimeVersion").into(),
        ]
    }
}

/// The node's first address of `kind` (`InternalIP`, `ExternalIP`).
fn address(obj: &Value, kind: &str) -> String {
    obj.pointer("/status/addresses")
        .and_then(Value::as_array)
        .and_then(|addresses| {
            addresses
                .iter()
                .find(|a| a.get("type").and_then(Value::as_str) == Some(kind))
        })
        .map(|a| text_at(a, "/address"))
        .unwrap_or_default()
}
