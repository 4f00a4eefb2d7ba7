use std::collections::BTreeSet;

use prost::Message;
use serde_json::{Value, json};

use super::*;
use crate::gnostic::{AdditionalProperties, NonBodyKind, ParameterKind};

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn resource(
    group: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    subresources: &[&str],
) -> Resource {
    let schema = Schema::Builtin(type_of(group, kind));
    served_as(schema, (group, kind, plural), namespaced, subresources)
}

fn served_as(
    schema: Schema,
    (group, kind, plural): (&str, &str, &str),
    namespaced: bool,
    subresources: &[&str],
) -> Resource {
    Resource {
        group: group.into(),
        version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
        namespaced,
        subresources: subresources.iter().map(|s| s.to_string()).collect(),
        verbs: ALL_VERBS.iter().map(|s| s.to_string()).collect(),
        schema,
    }
}

/// The k8s-openapi type of each built-in kind the tests serve.
fn type_of(group: &str, kind: &str) -> TypeSchema {
    use k8s_openapi::api::{apps, batch, coordination, core, events, rbac};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    match (group, kind) {
        ("", "Namespace") => type_schema::<core::v1::Namespace>(),
        ("", "Pod") => type_schema::<core::v1::Pod>(),
        ("", "ConfigMap") => type_schema::<core::v1::ConfigMap>(),
        ("", "Secret") => type_schema::<core::v1::Secret>(),
        ("", "Service") => type_schema::<core::v1::Service>(),
        ("", "ServiceAccount") => type_schema::<core::v1::ServiceAccount>(),
        ("", "Node") => type_schema::<core::v1::Node>(),
        ("", "Event") => type_schema::<core::v1::Event>(),
        ("events.k8s.io", "Event") => type_schema::<events::v1::Event>(),
        ("coordination.k8s.io", "Lease") => type_schema::<coordination::v1::Lease>(),
        ("apps", "Deployment") => type_schema::<apps::v1::Deployment>(),
        ("apps", "ReplicaSet") => type_schema::<apps::v1::ReplicaSet>(),
        ("batch", "Job") => type_schema::<batch::v1::Job>(),
        ("rbac.authorization.k8s.io", "Role") => type_schema::<rbac::v1::Role>(),
        ("rbac.authorization.k8s.io", "ClusterRole") => type_schema::<rbac::v1::ClusterRole>(),
        ("rbac.authorization.k8s.io", "RoleBinding") => type_schema::<rbac::v1::RoleBinding>(),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            type_schema::<rbac::v1::ClusterRoleBinding>()
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            type_schema::<apiextensions::CustomResourceDefinition>()
        }
        _ => panic!("no type for {group}/{kind} in the tests"),
    }
}

/// Everything the kstress API server serves, as its registry lists it.
fn served() -> Vec<Resource> {
    vec![
        resource("", "Namespace", "namespaces", false, &["status"]),
        resource("", "Pod", "pods", true, &["status", "binding", "log"]),
        resource("", "ConfigMap", "configmaps", true, &[]),
        resource("", "Secret", "secrets", true, &[]),
        resource("", "Service", "services", true, &["status"]),
        resource("", "ServiceAccount", "serviceaccounts", true, &[]),
        resource("", "Node", "nodes", false, &["status"]),
        resource("", "Event", "events", true, &[]),
        resource("events.k8s.io", "Event", "events", true, &[]),
        resource("coordination.k8s.io", "Lease", "leases", true, &[]),
        resource(
            "apps",
            "Deployment",
            "deployments",
            true,
            &["status", "scale"],
        ),
        resource(
            "apps",
            "ReplicaSet",
            "replicasets",
            true,
            &["status", "scale"],
        ),
        resource("batch", "Job", "jobs", true, &["status"]),
        resource(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["status"],
        ),
        resource("rbac.authorization.k8s.io", "Role", "roles", true, &[]),
        resource(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            "clusterroles",
            false,
            &[],
        ),
        resource(
            "rbac.authorization.k8s.io",
            "RoleBinding",
            "rolebindings",
            true,
            &[],
        ),
        resource(
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            &[],
        ),
    ]
}

fn widget(schema: Value) -> Resource {
    served_as(
        Schema::Custom(schema),
        ("example.com", "Widget", "widgets"),
        true,
        &["status", "scale"],
    )
}

fn widget_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "description": "The widget's desired state.",
                "properties": {
                    "size": {"type": ["integer", "null"], "nullable": true},
                    "parts": {"type": "array", "items": {"type": "string"}},
                    "anything": {"type": "array"},
                    "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
        },
    })
}

fn v3(docs: &Documents, group_version: &str) -> Value {
    let (bytes, _) = docs.v3_group_version(group_version).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                // A string: JSONSchemaProps has a *property* named `$ref`.
                if let ("$ref", Value::String(reference)) = (key.as_str(), value) {
                    out.push(reference.clone());
                } else {
                    refs(value, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

fn assert_refs_resolve(document: &Value, prefix: &str, schemas: &Value) {
    let mut found = Vec::new();
    refs(document, &mut found);
    assert!(!found.is_empty(), "no references at all");
    for reference in found {
        let name = reference
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{reference} does not start with {prefix}"));
        assert!(schemas.get(name).is_some(), "unresolved {reference}");
    }
}

fn kind_definition(r: &Resource) -> String {
    schemas::kind_name(r)
}

fn gvk_extension(schema: &Value) -> Value {
    schema["x-kubernetes-group-version-kind"].clone()
}

/// Every (path, method, operation) of a document.
fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if method != "parameters" {
                out.push((path.clone(), method.clone(), operation.clone()));
            }
        }
    }
    out
}

#[test]
fn every_served_kind_and_its_list_carry_their_group_version_kind() {
    let resources = served();
    let docs = Documents::build(&resources);
    let v2: Value = serde_json::from_slice(&docs.v2_json()).unwrap();
    for r in &resources {
        let name = kind_definition(r);
        let expected = json!([{"group": r.group, "version": "v1", "kind": r.kind}]);
        let doc = v3(&docs, &group_version_path(r));
        let schema = &doc["components"]["schemas"][&name];
        assert_eq!(gvk_extension(schema), expected, "v3 {name}");
        assert_eq!(
            gvk_extension(&v2["definitions"][&name]),
            expected,
            "v2 {name}"
        );
        let required = schema["required"].as_array().cloned().unwrap_or_default();
        assert!(
            !required.contains(&json!("metadata")),
            "{name} requires metadata"
        );
        let description = schema["description"].as_str().unwrap_or_default();
        assert!(description.len() > 20, "{name} lacks a description");
        let list = &doc["components"]["schemas"][format!("{name}List")];
        assert_eq!(
            gvk_extension(list)[0]["kind"],
            format!("{}List", r.kind),
            "{name}List"
        );
    }
    let pod = &v2["definitions"]["io.k8s.api.core.v1.Pod"];
    assert_eq!(
        pod["properties"]["spec"]["$ref"],
        "#/definitions/io.k8s.api.core.v1.PodSpec"
    );
    assert_eq!(
        v2["definitions"][schemas::BINDING]["required"],
        json!(["target"])
    );
    let scale = &v3(&docs, "apis/apps/v1")["components"]["schemas"][schemas::SCALE];
    assert_eq!(gvk_extension(scale)[0]["group"], "autoscaling");
}

#[test]
fn every_reference_resolves_in_v2_and_v3() {
    let mut resources = served();
    resources.push(widget(widget_schema()));
    let docs = Documents::build(&resources);
    let root: Value = serde_json::from_slice(&docs.v3_root()).unwrap();
    for group_version in root["paths"].as_object().unwrap().keys() {
        let doc = v3(&docs, group_version);
        assert_refs_resolve(&doc, "#/components/schemas/", &doc["components"]["schemas"]);
    }
    let v2: Value = serde_json::from_slice(&docs.v2_json()).unwrap();
    assert_eq!(v2["swagger"], "2.0");
    assert_refs_resolve(&v2, "#/definitions/", &v2["definitions"]);
}

#[test]
fn the_v3_root_lists_every_group_version_with_a_content_hash() {
    let resources = served();
    let docs = Documents::build(&resources);
    let root: Value = serde_json::from_slice(&docs.v3_root()).unwrap();
    let listed: BTreeSet<&String> = root["paths"].as_object().unwrap().keys().collect();
    let expected: BTreeSet<String> = resources.iter().map(group_version_path).collect();
    assert_eq!(listed, expected.iter().collect());
    for group_version in &expected {
        let (_, hash) = docs.v3_group_version(group_version).unwrap();
        assert_eq!(
            root["paths"][group_version]["serverRelativeURL"],
            format!("/openapi/v3/{group_version}?hash={hash}")
        );
    }
    assert!(docs.v3_group_version("apis/nope/v1").is_none());

    // A CRD adds its group-version and changes no other document.
    let mut with_crd = resources.clone();
    with_crd.push(widget(widget_schema()));
    let grown = Documents::build(&with_crd);
    assert!(grown.v3_group_version("apis/example.com/v1").is_some());
    for group_version in &expected {
        assert_eq!(
            docs.v3_group_version(group_version).unwrap().1,
            grown.v3_group_version(group_version).unwrap().1,
            "{group_version}"
        );
    }
    // A resource added to a group-version changes its hash.
    let core: Vec<Resource> = resources
        .iter()
        .filter(|r| r.group.is_empty())
        .cloned()
        .collect();
    let fewer = Documents::build(&core[1..]);
    assert_ne!(
        fewer.v3_group_version("api/v1").unwrap().1,
        docs.v3_group_version("api/v1").unwrap().1
    );
    // A CRD schema update changes its hash.
    let mut updated = with_crd.clone();
    if let Some(last) = updated.last_mut() {
        last.schema = Schema::Custom(json!({"type": "object"}));
    }
    assert_ne!(
        Documents::build(&updated)
            .v3_group_version("apis/example.com/v1")
            .unwrap()
            .1,
        grown.v3_group_version("apis/example.com/v1").unwrap().1
    );
}

/// What kubectl's QueryParamVerifierV3 looks for: the PATCH operations
/// tagged with the kind, each with `fieldValidation` in the query.
#[test]
fn every_patch_operation_declares_the_write_parameters() {
    let mut resources = served();
    resources.push(widget(widget_schema()));
    let docs = Documents::build(&resources);
    let v2: Value = serde_json::from_slice(&docs.v2_json()).unwrap();
    let mut patched = BTreeSet::new();
    let mut documents: Vec<Value> = resources
        .iter()
        .map(|r| v3(&docs, &group_version_path(r)))
        .collect();
    documents.push(v2);
    for doc in &documents {
        for (path, method, operation) in operations(doc) {
            let gvk = &operation["x-kubernetes-group-version-kind"];
            assert!(gvk["kind"].is_string(), "{method} {path} lacks its kind");
            assert!(
                operation["x-kubernetes-action"].is_string(),
                "{method} {path}"
            );
            if method != "patch" {
                continue;
            }
            let query: BTreeSet<&str> = operation["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "query")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            for name in ["fieldValidation", "dryRun", "fieldManager", "force"] {
                assert!(query.contains(name), "patch {path} lacks {name}");
            }
            assert_eq!(operation["x-kubernetes-action"], "patch");
            patched.insert(gvk["kind"].as_str().unwrap().to_string());
        }
    }
    for r in &resources {
        assert!(
            patched.contains(&r.kind),
            "no PATCH operation for {}",
            r.kind
        );
    }
    assert!(patched.contains("Scale"));
    let doc = v3(&docs, "api/v1");
    let item = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
    assert_eq!(item["patch"]["operationId"], "patchCoreV1NamespacedPod");
    assert!(
        item["patch"]["requestBody"]["content"]["application/strategic-merge-patch+json"]
            .is_object()
    );
    assert_eq!(item["parameters"][0]["name"], "name");
    assert_eq!(item["parameters"][0]["required"], true);
    let status = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/status"];
    assert_eq!(
        status["patch"]["x-kubernetes-group-version-kind"]["kind"],
        "Pod"
    );
    let binding = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/binding"];
    assert_eq!(
        binding["post"]["x-kubernetes-group-version-kind"]["kind"],
        "Binding"
    );
    assert!(doc["paths"]["/api/v1/pods"]["get"].is_object());
    assert!(doc["paths"]["/api/v1/nodes/{name}"]["get"].is_object());
}

#[test]
fn only_the_declared_verbs_get_operations() {
    let mut config_map = resource("", "ConfigMap", "configmaps", true, &["status"]);
    config_map.verbs = vec!["get".into(), "list".into()];
    let docs = Documents::build(&[config_map]);
    let methods: BTreeSet<String> = operations(&v3(&docs, "api/v1"))
        .into_iter()
        .map(|(path, method, _)| format!("{method} {path}"))
        .collect();
    let expected: BTreeSet<String> = [
        "get /api/v1/configmaps",
        "get /api/v1/namespaces/{namespace}/configmaps",
        "get /api/v1/namespaces/{namespace}/configmaps/{name}",
        "get /api/v1/namespaces/{namespace}/configmaps/{name}/status",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(methods, expected);
}

#[test]
fn custom_resources_publish_their_crd_schema() {
    let docs = Documents::build(&[widget(widget_schema())]);
    let doc = v3(&docs, "apis/example.com/v1");
    let schemas = &doc["components"]["schemas"];
    let widget = &schemas["com.example.v1.Widget"];
    assert_eq!(
        gvk_extension(widget),
        json!([{"group": "example.com", "version": "v1", "kind": "Widget"}])
    );
    assert_eq!(
        widget["properties"]["spec"]["description"],
        "The widget's desired state."
    );
    assert_eq!(
        widget["properties"]["metadata"]["$ref"],
        format!("#/components/schemas/{}", schemas::OBJECT_META)
    );
    assert!(schemas[schemas::OBJECT_META]["properties"]["name"].is_object());
    let patch =
        &doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"];
    let media: BTreeSet<&String> = patch["requestBody"]["content"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert!(!media.contains(&"application/strategic-merge-patch+json".to_string()));
    assert!(media.contains(&"application/merge-patch+json".to_string()));

    // v2 keeps what Swagger 2.0 can say and drops the rest.
    let v2: Value = serde_json::from_slice(&docs.v2_json()).unwrap();
    let spec = &v2["definitions"]["com.example.v1.Widget"]["properties"]["spec"]["properties"];
    assert_eq!(spec["size"], json!({"type": "integer"}));
    assert_eq!(spec["parts"]["items"]["type"], "string");
    assert!(spec["anything"].get("type").is_none());
    assert!(spec["either"].get("oneOf").is_none());
}

#[test]
fn lists_merge_as_upstream_declares_them() {
    let docs = Documents::build(&served());
    let v2: Value = serde_json::from_slice(&docs.v2_json()).unwrap();
    let containers = &v2["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    let finalizers = &v2["definitions"][schemas::OBJECT_META]["properties"]["finalizers"];
    assert_eq!(finalizers["x-kubernetes-patch-strategy"], "merge");
    assert!(finalizers.get("x-kubernetes-patch-merge-key").is_none());
    // Every entry of the table names a property that exists: a typo
    // would silently turn a merging list into an atomic one.
    for (definition, property, strategy, _) in patch_meta::PATCH_FIELDS {
        let field = &v2["definitions"][*definition]["properties"][*property];
        assert!(field.is_object(), "{definition}.{property} does not exist");
        assert_eq!(field["x-kubernetes-patch-strategy"], *strategy);
    }
}

/// The rules of kube-openapi's `proto.NewOpenAPIData`, which kubectl runs
/// on the v2 protobuf before every `apply`; one violation fails them all.
fn assert_parseable(schema: &gnostic::Schema, names: &BTreeSet<String>, path: &str) {
    if !schema.r#ref.is_empty() {
        let name = schema
            .r#ref
            .strip_prefix("#/definitions/")
            .unwrap_or_else(|| panic!("{path}: reference {}", schema.r#ref));
        assert!(names.contains(name), "{path}: unknown model {name}");
        assert!(schema.r#type.is_none(), "{path}: reference with a type");
        let properties = schema
            .properties
            .as_ref()
            .map_or(0, |p| p.additional_properties.len());
        assert_eq!(properties, 0, "{path}: reference with properties");
        return;
    }
    let types = schema
        .r#type
        .as_ref()
        .map(|t| t.value.clone())
        .unwrap_or_default();
    assert!(types.len() <= 1, "{path}: several types {types:?}");
    let kind = types.first().map(String::as_str).unwrap_or("");
    match kind {
        "array" => {
            let items = schema
                .items
                .as_ref()
                .map(|i| i.schema.as_slice())
                .unwrap_or(&[]);
            assert_eq!(items.len(), 1, "{path}: array without one item schema");
            assert_parseable(&items[0], names, &format!("{path}[]"));
        }
        "object" | "" => {
            if let Some(properties) = &schema.properties {
                for named in &properties.additional_properties {
                    let value = named.value.as_ref().unwrap();
                    assert_parseable(value, names, &format!("{path}.{}", named.name));
                }
            } else if let Some(AdditionalProperties::Schema(value)) = schema
                .additional_properties
                .as_ref()
                .and_then(|a| a.oneof.as_ref())
            {
                assert_parseable(value, names, &format!("{path}{{}}"));
            }
        }
        "string" | "integer" | "number" | "boolean" => {}
        other => panic!("{path}: unknown primitive type {other}"),
    }
    for extension in &schema.vendor_extension {
        let yaml = &extension.value.as_ref().unwrap().yaml;
        serde_json::from_str::<Value>(yaml).unwrap_or_else(|e| panic!("{path}: {yaml}: {e}"));
    }
}

#[test]
fn the_protobuf_decodes_to_the_json_document() {
    let mut resources = served();
    resources.push(widget(widget_schema()));
    let docs = Documents::build(&resources);
    let v2: Value = serde_json::from_slice(&docs.v2_json()).unwrap();
    let decoded = gnostic::Document::decode(docs.v2_protobuf()).unwrap();
    assert_eq!(decoded.swagger, "2.0");

    let definitions = decoded.definitions.unwrap().additional_properties;
    let names: BTreeSet<String> = definitions.iter().map(|d| d.name.clone()).collect();
    let json_names: BTreeSet<String> = v2["definitions"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(names, json_names);
    for definition in &definitions {
        let schema = definition.value.as_ref().unwrap();
        assert_parseable(schema, &names, &definition.name);
        assert_eq!(
            schema.description,
            v2["definitions"][&definition.name]["description"]
                .as_str()
                .unwrap_or_default(),
        );
        let gvk = schema
            .vendor_extension
            .iter()
            .find(|e| e.name == "x-kubernetes-group-version-kind")
            .map(|e| serde_json::from_str::<Value>(&e.value.as_ref().unwrap().yaml).unwrap());
        let expected = v2["definitions"][&definition.name].get("x-kubernetes-group-version-kind");
        assert_eq!(gvk.as_ref(), expected, "{}", definition.name);
    }
    let pod = definitions
        .iter()
        .find(|d| d.name == "io.k8s.api.core.v1.Pod")
        .unwrap();
    let pod = pod.value.as_ref().unwrap();
    assert_eq!(pod.r#type.as_ref().unwrap().value, ["object"]);
    let spec = pod
        .properties
        .as_ref()
        .unwrap()
        .additional_properties
        .iter()
        .find(|p| p.name == "spec")
        .unwrap();
    assert_eq!(
        spec.value.as_ref().unwrap().r#ref,
        "#/definitions/io.k8s.api.core.v1.PodSpec"
    );

    // The v2 fallback of kubectl's verifier: each PATCH operation's GVK
    // extension and its `fieldValidation` query parameter.
    let paths = decoded.paths.unwrap().path;
    assert_eq!(paths.len(), v2["paths"].as_object().unwrap().len());
    let pod_item = paths
        .iter()
        .find(|p| p.name == "/api/v1/namespaces/{namespace}/pods/{name}")
        .and_then(|p| p.value.as_ref())
        .unwrap();
    let patch = pod_item.patch.as_ref().unwrap();
    let gvk = patch
        .vendor_extension
        .iter()
        .find(|e| e.name == "x-kubernetes-group-version-kind")
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&gvk.value.as_ref().unwrap().yaml).unwrap(),
        json!({"group": "", "version": "v1", "kind": "Pod"})
    );
    let query: Vec<&str> = patch
        .parameters
        .iter()
        .filter_map(|p| match p.parameter.as_ref()?.oneof.as_ref()? {
            ParameterKind::NonBody(n) => match n.oneof.as_ref()? {
                NonBodyKind::Query(q) => Some(q.name.as_str()),
                NonBodyKind::Path(_) => None,
            },
            ParameterKind::Body(_) => None,
        })
        .collect();
    assert!(query.contains(&"fieldValidation"), "{query:?}");
    assert!(!pod_item.parameters.is_empty());
}

#[test]
fn unknown_fields_are_found_and_pruned_where_the_schema_declares_fields() {
    let custom = served_as(
        Schema::Custom(json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        },
        })),
        ("example.com", "Widget", "widgets"),
        true,
        &[],
    );
    let mut resources = served();
    resources.push(custom);
    let docs = Documents::build(&resources);
    let mut deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"any": "label"}, "bogus": 1,
                     "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}]},
        "spec": {
            "replica": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [
                {"name": "c", "image": "nginx", "resources": {"limits": {"cpu": "1"}}, "imagePullPolice": "Always"}
            ]}},
        },
    });
    let unknown = docs
        .prune_unknown_fields(("apps", "v1", "Deployment"), &mut deployment)
        .unwrap();
    assert_eq!(
        unknown,
        [
            "metadata.bogus",
            "spec.replica",
            "spec.template.spec.containers[0].imagePullPolice"
        ]
    );
    assert!(deployment.pointer("/spec/replica").is_none(), "pruned");
    assert_eq!(
        deployment["metadata"]["labels"]["any"], "label",
        "maps keep their keys"
    );
    assert_eq!(
        deployment["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:spec": {}}),
        "an object without declared fields keeps its content"
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "1"}})
    );

    let mut widget = json!({
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 1, "colour": "red"},
        "status": {"anything": {"goes": true}},
    });
    let unknown = docs
        .prune_unknown_fields(("example.com", "v1", "Widget"), &mut widget)
        .unwrap();
    assert_eq!(unknown, ["spec.colour"]);
    assert_eq!(widget["status"], json!({"anything": {"goes": true}}));
    assert!(
        docs.prune_unknown_fields(("", "v1", "Nothing"), &mut json!({}))
            .is_none()
    );
}
