//! OpenAPI documents describing the resources the kstress API server
//! serves, in the shapes kubectl reads.
//!
//! kubectl v1.32 uses OpenAPI v3 for `kubectl explain` and to learn whether
//! an endpoint accepts the `fieldValidation` query parameter (then it leaves
//! validation to the server). `kubectl apply` also downloads the v2
//! document eagerly, as gnostic protobuf, and fails without one. Schemas of
//! built-in kinds are generated from k8s-openapi's types (its `schemars`
//! feature), named as upstream names them (`io.k8s.api.core.v1.Pod`), and
//! tagged with `x-kubernetes-group-version-kind`; custom resources use
//! their CRD's schema.

use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use bytes::Bytes;
use k8s_openapi::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

/// Where a resource's schema comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Schema {
    /// A built-in kind: generated from k8s-openapi.
    Builtin,
    /// A CRD version's `openAPIV3Schema`.
    Custom(Value),
}

/// One served resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    pub subresources: Vec<String>,
    pub verbs: Vec<String>,
    pub schema: Schema,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    #[error("no schema is known for built-in kind {0}")]
    UnknownKind(String),
}

/// The documents of one set of served resources, encoded once.
#[derive(Debug, Clone)]
pub struct Documents {
    v2_json: Bytes,
    v2_protobuf: Bytes,
    v3_root: Bytes,
    /// `api/v1` or `apis/{group}/{version}` -> (document, hash).
    v3: BTreeMap<String, (Bytes, String)>,
}

impl Documents {
    pub fn build(resources: &[Resource]) -> Result<Documents, OpenApiError> {
        let mut by_gv: BTreeMap<String, Vec<&Resource>> = BTreeMap::new();
        for r in resources {
            by_gv.entry(gv_path(r)).or_default().push(r);
        }
        let mut v3 = BTreeMap::new();
        let mut all_schemas = Map::new();
        let mut all_paths = Map::new();
        for (gv, members) in &by_gv {
            let mut generator = SchemaSettings::openapi3().into_generator();
            let mut custom = Map::new();
            for r in members {
                match &r.schema {
                    Schema::Builtin => {
                        builtin_schema(&mut generator, &r.group, &r.kind)?;
                    }
                    Schema::Custom(schema) => {
                        custom.insert(custom_schema_name(r), schema.clone());
                    }
                }
            }
            let mut schemas: Map<String, Value> = generator
                .definitions()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            schemas.extend(custom);
            let mut paths = Map::new();
            for r in members {
                let name = schema_name(r);
                if let Some(Value::Object(schema)) = schemas.get_mut(&name) {
                    schema.insert(
                        "x-kubernetes-group-version-kind".into(),
                        json!([{"group": r.group, "version": r.version, "kind": r.kind}]),
                    );
                }
                add_paths(&mut paths, r, &format!("#/components/schemas/{name}"));
            }
            let doc = json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": "v1.33.0"},
                "paths": paths,
                "components": {"schemas": schemas},
            });
            let bytes = Bytes::from(doc.to_string());
            let mut hasher = DefaultHasher::new();
            bytes.hash(&mut hasher);
            v3.insert(gv.clone(), (bytes, format!("{:016X}", hasher.finish())));
            all_paths.extend(v2_paths(&paths));
            all_schemas.extend(schemas);
        }
        let root_paths: Map<String, Value> = v3
            .iter()
            .map(|(gv, (_, hash))| {
                (
                    gv.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={hash}")}),
                )
            })
            .collect();
        let v3_root = Bytes::from(json!({"paths": root_paths}).to_string());
        let v2 = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "paths": all_paths,
            "definitions": rewrite_refs(Value::Object(all_schemas)),
        });
        Ok(Documents {
            v2_json: Bytes::from(v2.to_string()),
            v2_protobuf: v2_protobuf_header(),
            v3_root,
            v3,
        })
    }

    /// `GET /openapi/v2` as JSON.
    pub fn v2_json(&self) -> Bytes {
        self.v2_json.clone()
    }

    /// `GET /openapi/v2` as gnostic protobuf. It carries the document header
    /// only: kubectl parses it before every `apply` but, once the v3
    /// document shows server-side field validation, validates nothing
    /// against it.
    pub fn v2_protobuf(&self) -> Bytes {
        self.v2_protobuf.clone()
    }

    /// `GET /openapi/v3`: the group versions and their document URLs.
    pub fn v3_root(&self) -> Bytes {
        self.v3_root.clone()
    }

    /// `GET /openapi/v3/{path}` and the hash its URL carries.
    pub fn v3_group_version(&self, path: &str) -> Option<(Bytes, String)> {
        self.v3.get(path).cloned()
    }
}

fn gv_path(r: &Resource) -> String {
    if r.group.is_empty() {
        format!("api/{}", r.version)
    } else {
        format!("apis/{}/{}", r.group, r.version)
    }
}

fn custom_schema_name(r: &Resource) -> String {
    let reversed: Vec<&str> = r.group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), r.version, r.kind)
}

fn schema_name(r: &Resource) -> String {
    match &r.schema {
        Schema::Custom(_) => custom_schema_name(r),
        Schema::Builtin => builtin_name(&r.group, &r.kind).unwrap_or_default(),
    }
}

fn builtin_name(group: &str, kind: &str) -> Option<String> {
    let package = match group {
        "" => "io.k8s.api.core.v1",
        "apps" => "io.k8s.api.apps.v1",
        "batch" => "io.k8s.api.batch.v1",
        "coordination.k8s.io" => "io.k8s.api.coordination.v1",
        "events.k8s.io" => "io.k8s.api.events.v1",
        "rbac.authorization.k8s.io" => "io.k8s.api.rbac.v1",
        "apiextensions.k8s.io" => "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1",
        _ => return None,
    };
    Some(format!("{package}.{kind}"))
}

/// Registers a built-in kind's schema (and everything it references) and
/// returns its name.
fn builtin_schema(
    generator: &mut SchemaGenerator,
    group: &str,
    kind: &str,
) -> Result<String, OpenApiError> {
    fn add<T: JsonSchema>(generator: &mut SchemaGenerator) {
        generator.subschema_for::<T>();
    }
    match (group, kind) {
        ("", "Namespace") => add::<api::core::v1::Namespace>(generator),
        ("", "Pod") => add::<api::core::v1::Pod>(generator),
        ("", "ConfigMap") => add::<api::core::v1::ConfigMap>(generator),
        ("", "Secret") => add::<api::core::v1::Secret>(generator),
        ("", "Service") => add::<api::core::v1::Service>(generator),
        ("", "ServiceAccount") => add::<api::core::v1::ServiceAccount>(generator),
        ("", "Node") => add::<api::core::v1::Node>(generator),
        ("", "Event") => add::<api::core::v1::Event>(generator),
        ("events.k8s.io", "Event") => add::<api::events::v1::Event>(generator),
        ("coordination.k8s.io", "Lease") => add::<api::coordination::v1::Lease>(generator),
        ("apps", "Deployment") => add::<api::apps::v1::Deployment>(generator),
        ("apps", "ReplicaSet") => add::<api::apps::v1::ReplicaSet>(generator),
        ("batch", "Job") => add::<api::batch::v1::Job>(generator),
        ("rbac.authorization.k8s.io", "Role") => add::<api::rbac::v1::Role>(generator),
        ("rbac.authorization.k8s.io", "ClusterRole") => {
            add::<api::rbac::v1::ClusterRole>(generator)
        }
        ("rbac.authorization.k8s.io", "RoleBinding") => {
            add::<api::rbac::v1::RoleBinding>(generator)
        }
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            add::<api::rbac::v1::ClusterRoleBinding>(generator)
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            add::<apiextensions::CustomResourceDefinition>(generator)
        }
        _ => return Err(OpenApiError::UnknownKind(format!("{group}/{kind}"))),
    }
    builtin_name(group, kind).ok_or_else(|| OpenApiError::UnknownKind(format!("{group}/{kind}")))
}

/// The query parameters of writes: kubectl checks that PATCH declares
/// `fieldValidation` before it leaves validation to the server.
fn write_parameters() -> Value {
    json!([
        {"name": "dryRun", "in": "query", "schema": {"type": "string"}, "uniqueItems": true},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string"}, "uniqueItems": true},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}, "uniqueItems": true},
    ])
}

fn list_parameters() -> Value {
    let names = [
        ("allowWatchBookmarks", "boolean"),
        ("continue", "string"),
        ("fieldSelector", "string"),
        ("labelSelector", "string"),
        ("limit", "integer"),
        ("resourceVersion", "string"),
        ("resourceVersionMatch", "string"),
        ("sendInitialEvents", "boolean"),
        ("timeoutSeconds", "integer"),
        ("watch", "boolean"),
    ];
    Value::Array(
        names
            .iter()
            .map(|(n, t)| json!({"name": n, "in": "query", "schema": {"type": t}, "uniqueItems": true}))
            .collect(),
    )
}

fn operation(r: &Resource, action: &str, id: &str, schema_ref: &str, params: Value) -> Value {
    json!({
        "operationId": id,
        "tags": [if r.group.is_empty() { "core_v1".to_string() } else { format!("{}_{}", r.group, r.version) }],
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": schema_ref}}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
    })
}

fn add_paths(paths: &mut Map<String, Value>, r: &Resource, schema_ref: &str) {
    let base = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let collection = if r.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{base}/{}", r.plural)
    };
    let id = |verb: &str| format!("{verb}{}", r.kind);
    paths.insert(
        collection.clone(),
        json!({
            "get": operation(r, "list", &id("list"), schema_ref, list_parameters()),
            "post": operation(r, "post", &id("create"), schema_ref, write_parameters()),
            "delete": operation(r, "deletecollection", &id("deletecollection"), schema_ref, json!([])),
        }),
    );
    let item = format!("{collection}/{{name}}");
    let item_ops = json!({
        "get": operation(r, "get", &id("read"), schema_ref, json!([])),
        "put": operation(r, "put", &id("replace"), schema_ref, write_parameters()),
        "patch": operation(r, "patch", &id("patch"), schema_ref, write_parameters()),
        "delete": operation(r, "delete", &id("delete"), schema_ref, json!([])),
    });
    paths.insert(item.clone(), item_ops.clone());
    for sub in &r.subresources {
        if sub == "status" {
            paths.insert(format!("{item}/status"), item_ops.clone());
        }
    }
}

/// v2 paths: the same operations with v2 parameter and response shapes.
fn v2_paths(paths: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (path, ops) in paths {
        let mut v2_ops = Map::new();
        for (method, op) in ops.as_object().into_iter().flatten() {
            let mut op = op.clone();
            if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                for p in params.iter_mut() {
                    if let Some(t) = p.pointer("/schema/type").cloned() {
                        p["type"] = t;
                        if let Some(o) = p.as_object_mut() {
                            o.remove("schema");
                        }
                    }
                }
            }
            if let Some(schema_ref) = op
                .pointer("/responses/200/content/application~1json/schema/$ref")
                .cloned()
            {
                op["responses"] =
                    json!({"200": {"description": "OK", "schema": {"$ref": schema_ref}}});
            }
            v2_ops.insert(method.clone(), rewrite_refs(op));
        }
        out.insert(path.clone(), Value::Object(v2_ops));
    }
    out
}

/// Points v3 `#/components/schemas/X` references at v2 `#/definitions/X`.
fn rewrite_refs(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    if k == "$ref"
                        && let Some(s) = v.as_str()
                    {
                        let rewritten = s.replace("#/components/schemas/", "#/definitions/");
                        return (k, Value::String(rewritten));
                    }
                    (k, rewrite_refs(v))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(rewrite_refs).collect()),
        other => other,
    }
}

/// A gnostic `openapi_v2.Document` with only `swagger: "2.0"` (field 1).
fn v2_protobuf_header() -> Bytes {
    let value = b"2.0";
    let mut out = vec![(1 << 3) | 2, value.len() as u8];
    out.extend_from_slice(value);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Resource {
        Resource {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced,
            subresources: vec!["status".into()],
            verbs: vec!["get".into(), "patch".into()],
            schema: Schema::Builtin,
        }
    }

    fn all_refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "$ref" {
                        out.push(v.as_str().unwrap_or("").to_string());
                    } else {
                        all_refs(v, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| all_refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn v3_documents_describe_kinds_and_field_validation() {
        let docs = Documents::build(&[
            builtin("", "v1", "Pod", "pods", true),
            builtin("apps", "v1", "Deployment", "deployments", true),
        ])
        .unwrap();
        let root: Value = serde_json::from_slice(&docs.v3_root()).unwrap();
        let url = root["paths"]["api/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        let (bytes, hash) = docs.v3_group_version("api/v1").unwrap();
        assert!(url.ends_with(&hash));
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        let pod = &doc["components"]["schemas"]["io.k8s.api.core.v1.Pod"];
        assert_eq!(pod["x-kubernetes-group-version-kind"][0]["kind"], "Pod");
        assert!(pod["properties"]["spec"].is_object());
        let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Pod");
        let params: Vec<&str> = patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(params.contains(&"fieldValidation"));
        let mut refs = Vec::new();
        all_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let name = r.trim_start_matches("#/components/schemas/");
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "unresolved {r}"
            );
        }
        assert!(docs.v3_group_version("apis/apps/v1").is_some());
        assert!(docs.v3_group_version("apis/nope/v1").is_none());
    }

    #[test]
    fn custom_resources_use_their_crd_schema_and_change_the_hash() {
        let mut widget = builtin("example.com", "v1", "Widget", "widgets", true);
        widget.schema =
            Schema::Custom(json!({"type": "object", "properties": {"spec": {"type": "object"}}}));
        let one = Documents::build(std::slice::from_ref(&widget)).unwrap();
        let (bytes, hash) = one.v3_group_version("apis/example.com/v1").unwrap();
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            doc["components"]["schemas"]["com.example.v1.Widget"]["x-kubernetes-group-version-kind"]
                [0]["kind"],
            "Widget"
        );
        widget.schema = Schema::Custom(json!({"type": "object"}));
        let two = Documents::build(&[widget]).unwrap();
        assert_ne!(two.v3_group_version("apis/example.com/v1").unwrap().1, hash);
    }

    #[test]
    fn v2_documents_resolve_and_protobuf_has_the_header() {
        let docs = Documents::build(&[builtin("", "v1", "ConfigMap", "configmaps", true)]).unwrap();
        let v2: Value = serde_json::from_slice(&docs.v2_json()).unwrap();
        assert_eq!(v2["swagger"], "2.0");
        let mut refs = Vec::new();
        all_refs(&v2, &mut refs);
        for r in refs {
            let name = r.trim_start_matches("#/definitions/");
            assert!(v2["definitions"].get(name).is_some(), "unresolved {r}");
        }
        assert_eq!(&docs.v2_protobuf()[..], b"\x0a\x032.0");
    }

    #[test]
    fn unknown_builtin_kinds_are_errors() {
        let err = Documents::build(&[builtin("", "v1", "Gizmo", "gizmos", true)]).unwrap_err();
        assert!(err.to_string().contains("Gizmo"));
    }
}
