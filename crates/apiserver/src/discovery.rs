//! API discovery: `/api`, `/apis`, `/apis/{group}` and the resource lists
//! of each group version, in the (unaggregated) form every client accepts.
//! kubectl asks for aggregated discovery first and falls back to this when
//! the response is plain `application/json`.

use serde_json::{Value, json};

use crate::registry::{ResourceDef, Snapshot};

pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

pub fn groups(snapshot: &Snapshot) -> Value {
    let groups: Vec<Value> = snapshot
        .groups()
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, versions)| group_json(name, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(snapshot: &Snapshot, name: &str) -> Option<Value> {
    let (_, versions) = snapshot
        .groups()
        .find(|(g, _)| *g == name && !name.is_empty())?;
    let mut group = group_json(name, versions);
    group["kind"] = "APIGroup".into();
    group["apiVersion"] = "v1".into();
    Some(group)
}

pub fn resource_list(snapshot: &Snapshot, group: &str, version: &str) -> Option<Value> {
    if !snapshot.has_group_version(group, version) {
        return None;
    }
    let mut resources = Vec::new();
    for def in snapshot.group_version(group, version) {
        resources.push(resource_json(&def));
        for sub in def.subresources() {
            resources.push(subresource_json(&def, sub));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

fn resource_json(def: &ResourceDef) -> Value {
    let mut r = json!({
        "name": def.plural,
        "singularName": def.singular,
        "namespaced": def.namespaced,
        "kind": def.kind,
        "verbs": def.verbs(),
    });
    if !def.short_names.is_empty() {
        r["shortNames"] = def.short_names.clone().into();
    }
    if !def.categories.is_empty() {
        r["categories"] = def.categories.clone().into();
    }
    r
}

fn subresource_json(def: &ResourceDef, sub: &str) -> Value {
    let name = format!("{}/{sub}", def.plural);
    match sub {
        "scale" => json!({
            "name": name, "singularName": "", "namespaced": def.namespaced,
            "group": "autoscaling", "version": "v1", "kind": "Scale",
            "verbs": ["get", "patch", "update"],
        }),
        "binding" => json!({
            "name": name, "singularName": "", "namespaced": def.namespaced,
            "kind": "Binding", "verbs": ["create"],
        }),
        _ => json!({
            "name": name, "singularName": "", "namespaced": def.namespaced,
            "kind": def.kind, "verbs": ["get", "patch", "update"],
        }),
    }
}
