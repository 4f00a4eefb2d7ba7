//! API discovery: `/api`, `/apis`, `/apis/{group}` and the resource lists
//! of each group version, in the unaggregated form every client accepts,
//! and `/api` and `/apis` in the aggregated form (apidiscovery.k8s.io v2
//! and v2beta1) that kubectl and client-go ask for first.

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

/// The media type of aggregated discovery, which kubectl and client-go
/// ask for first: every group, version and resource in one response
/// instead of one request per group version.
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// Which aggregated discovery version an Accept header asks for, in the
/// client's order of preference; `None` for the unaggregated documents.
pub fn aggregated_version(accept: &str) -> Option<&'static str> {
    accept.split(',').find_map(|part| {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        if !params.contains(&"as=APIGroupDiscoveryList")
            || !params.contains(&"g=apidiscovery.k8s.io")
        {
            return None;
        }
        if params.contains(&"v=v2") {
            Some(AGGREGATED_V2)
        } else if params.contains(&"v=v2beta1") {
            Some(AGGREGATED_V2BETA1)
        } else {
            None
        }
    })
}

/// The APIGroupDiscoveryList of `/api` (`core`: the legacy group only) or
/// `/apis` (every named group), for the media type `media`.
pub fn aggregated(snapshot: &Snapshot, core: bool, media: &str) -> Value {
    let api_version = if media == AGGREGATED_V2 {
        "apidiscovery.k8s.io/v2"
    } else {
        "apidiscovery.k8s.io/v2beta1"
    };
    let items: Vec<Value> = snapshot
        .groups()
        .filter(|(name, _)| name.is_empty() == core)
        .map(|(name, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|version| {
                    let resources: Vec<Value> = snapshot
                        .group_version(name, version)
                        .iter()
                        .map(|def| aggregated_resource(def))
                        .collect();
                    json!({"version": version, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let mut metadata = json!({"creationTimestamp": null});
            if !name.is_empty() {
                metadata["name"] = name.into();
            }
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": api_version,
        "metadata": {},
        "items": items,
    })
}

/// One resource with its subresources, sorted by name as upstream lists
/// them.
fn aggregated_resource(def: &ResourceDef) -> Value {
    let mut names = def.subresources();
    names.sort_unstable();
    let subresources: Vec<Value> = names
        .into_iter()
        .map(|sub| {
            let (group, version, kind, verbs): (&str, &str, &str, &[&str]) = match sub {
                "scale" => ("autoscaling", "v1", "Scale", &["get", "patch", "update"]),
                "binding" => ("", "v1", "Binding", &["create"]),
                _ => (
                    &def.group,
                    &def.version,
                    &def.kind,
                    &["get", "patch", "update"],
                ),
            };
            json!({
                "subresource": sub,
                "responseKind": {"group": group, "version": version, "kind": kind},
                "verbs": verbs,
            })
        })
        .collect();
    let mut resource = json!({
        "resource": def.plural,
        "responseKind": {"group": def.group, "version": def.version, "kind": def.kind},
        "scope": if def.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": def.singular,
        "verbs": def.verbs(),
    });
    if !def.short_names.is_empty() {
        resource["shortNames"] = def.short_names.clone().into();
    }
    if !def.categories.is_empty() {
        resource["categories"] = def.categories.clone().into();
    }
    if !subresources.is_empty() {
        resource["subresources"] = subresources.into();
    }
    resource
}
