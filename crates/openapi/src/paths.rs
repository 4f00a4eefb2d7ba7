//! The REST operations of a resource, rendered as v3 and v2 path items.
//!
//! kubectl reads operations for one thing: whether the PATCH operation
//! tagged with a kind's `x-kubernetes-group-version-kind` declares the
//! `fieldValidation` query parameter (v3 first, v2 as the fallback). It
//! takes the first PATCH operation it finds for the kind, so every one of
//! them, subresources included, declares the write parameters. The rest
//! follows upstream's shape so other OpenAPI clients see what they expect.

use serde_json::{Map, Value, json};

use crate::schemas::{
    BINDING, DELETE_OPTIONS, Gvk, PATCH, SCALE, STATUS, V3_PREFIX, kind_name, list_name,
};
use crate::{Resource, Schema};

/// One operation, independent of the OpenAPI version it is rendered in.
struct Operation {
    method: &'static str,
    id: String,
    description: String,
    action: &'static str,
    gvk: Gvk,
    parameters: Vec<Parameter>,
    body: Option<Body>,
    /// Response codes and the schema each returns.
    responses: Vec<(&'static str, Response)>,
}

enum Response {
    Ref(String),
    Text,
}

/// A request body: the schema it must match and its media types.
struct Body {
    schema: String,
    media_types: &'static [&'static str],
}

#[derive(Clone)]
struct Parameter {
    name: &'static str,
    location: &'static str,
    kind: &'static str,
    description: String,
}

/// One path and the operations on it.
pub(crate) struct PathItem {
    pub path: String,
    parameters: Vec<Parameter>,
    operations: Vec<Operation>,
}

const JSON_MEDIA: &[&str] = &["application/json", "application/yaml"];
const BUILTIN_PATCH_MEDIA: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
/// Custom resources take no strategic merge patch (upstream answers 415).
const CUSTOM_PATCH_MEDIA: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
];
const ANY_MEDIA: &[&str] = &["*/*"];

fn query(name: &'static str, kind: &'static str, description: &str) -> Parameter {
    Parameter {
        name,
        location: "query",
        kind,
        description: description.into(),
    }
}

fn dry_run() -> Parameter {
    query(
        "dryRun",
        "string",
        "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
    )
}

/// The parameters of create, update and patch.
fn write_parameters() -> Vec<Parameter> {
    vec![
        dry_run(),
        query(
            "fieldManager",
            "string",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        query(
            "fieldValidation",
            "string",
            "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
        ),
    ]
}

fn patch_parameters() -> Vec<Parameter> {
    let mut parameters = write_parameters();
    parameters.push(query(
        "force",
        "boolean",
        "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
    ));
    parameters
}

fn list_parameters() -> Vec<Parameter> {
    [
        ("allowWatchBookmarks", "boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\"."),
        ("continue", "string", "The continue option should be set when retrieving more results from the server."),
        ("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields. Defaults to everything."),
        ("labelSelector", "string", "A selector to restrict the list of returned objects by their labels. Defaults to everything."),
        ("limit", "integer", "limit is a maximum number of responses to return for a list call."),
        ("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions a request may be served from."),
        ("resourceVersionMatch", "string", "resourceVersionMatch determines how resourceVersion is applied to list calls."),
        ("sendInitialEvents", "boolean", "`sendInitialEvents=true` may be set together with `watch=true`: the stream begins with synthetic events for the current state."),
        ("timeoutSeconds", "integer", "Timeout for the list/watch call."),
        ("watch", "boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications."),
    ]
    .into_iter()
    .map(|(name, kind, description)| query(name, kind, description))
    .collect()
}

fn delete_parameters() -> Vec<Parameter> {
    vec![
        dry_run(),
        query(
            "gracePeriodSeconds",
            "integer",
            "The duration in seconds before the object should be deleted.",
        ),
        query(
            "propagationPolicy",
            "string",
            "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'.",
        ),
    ]
}

fn log_parameters() -> Vec<Parameter> {
    [
        (
            "container",
            "string",
            "The container for which to stream logs.",
        ),
        ("follow", "boolean", "Follow the log stream of the pod."),
        (
            "limitBytes",
            "integer",
            "The number of bytes to read from the server before terminating the log output.",
        ),
        (
            "previous",
            "boolean",
            "Return previous terminated container logs.",
        ),
        (
            "sinceSeconds",
            "integer",
            "A relative time in seconds before the current time from which to show logs.",
        ),
        (
            "tailLines",
            "integer",
            "The number of lines from the end of the logs to show.",
        ),
        (
            "timestamps",
            "boolean",
            "Add an RFC3339 timestamp at the beginning of every line of log output.",
        ),
    ]
    .into_iter()
    .map(|(name, kind, description)| query(name, kind, description))
    .collect()
}

fn path_parameter(name: &'static str, description: String) -> Parameter {
    Parameter {
        name,
        location: "path",
        kind: "string",
        description,
    }
}

/// `CoreV1`, `AppsV1`, `RbacAuthorizationV1`, `ExampleComV1`: the
/// group-version part of upstream's operation ids.
fn id_prefix(resource: &Resource) -> String {
    let group = if resource.group.is_empty() {
        "core"
    } else {
        resource
            .group
            .strip_suffix(".k8s.io")
            .unwrap_or(&resource.group)
    };
    let mut prefix: String = group
        .split(['.', '-'])
        .map(capitalize)
        .collect::<Vec<_>>()
        .concat();
    prefix.push_str(&capitalize(&resource.version));
    prefix
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The path items of one resource, as its verbs and subresources allow.
pub(crate) fn resource_paths(resource: &Resource) -> Vec<PathItem> {
    let kind = kind_name(resource);
    let list = list_name(resource);
    let gvk = Gvk::of(resource);
    let can = |verb: &str| resource.verbs.iter().any(|v| v == verb);
    let prefix = id_prefix(resource);
    let scope = if resource.namespaced {
        "Namespaced"
    } else {
        ""
    };
    let id = |verb: &str, suffix: &str| format!("{verb}{prefix}{scope}{}{suffix}", resource.kind);
    let base = if resource.group.is_empty() {
        format!("/api/{}", resource.version)
    } else {
        format!("/apis/{}/{}", resource.group, resource.version)
    };
    let collection = if resource.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", resource.plural)
    } else {
        format!("{base}/{}", resource.plural)
    };
    let item = format!("{collection}/{{name}}");
    let namespace_parameter = || {
        path_parameter(
            "namespace",
            "object name and auth scope, such as for teams and projects".into(),
        )
    };
    let scope_parameters = || {
        if resource.namespaced {
            vec![namespace_parameter()]
        } else {
            Vec::new()
        }
    };
    let item_parameters = |what: &str| {
        let mut parameters = vec![path_parameter("name", format!("name of the {what}"))];
        parameters.extend(scope_parameters());
        parameters
    };
    let patch_media = match resource.schema {
        Schema::Builtin(_) => BUILTIN_PATCH_MEDIA,
        Schema::Custom(_) => CUSTOM_PATCH_MEDIA,
    };
    let op = |method, id: String, action, description: String| Operation {
        method,
        id,
        description,
        action,
        gvk: gvk.clone(),
        parameters: Vec::new(),
        body: None,
        responses: Vec::new(),
    };
    let ok = |schema: &str| vec![("200", Response::Ref(schema.into()))];
    let created = |schema: &str| {
        ["200", "201", "202"]
            .into_iter()
            .map(|code| (code, Response::Ref(schema.into())))
            .collect::<Vec<_>>()
    };
    let body = |schema: &str, media_types| {
        Some(Body {
            schema: schema.into(),
            media_types,
        })
    };
    // get, replace and patch of an object or of a subresource that has
    // the object's shape (status) or another (scale).
    let read_write = |suffix: &str, schema: &str, what: &str, gvk: &Gvk| {
        let mut operations = Vec::new();
        if can("get") {
            operations.push(Operation {
                responses: ok(schema),
                ..op("get", id("read", suffix), "get", format!("read {what}"))
            });
        }
        if can("update") {
            operations.push(Operation {
                parameters: write_parameters(),
                body: body(schema, ANY_MEDIA),
                responses: created(schema),
                ..op(
                    "put",
                    id("replace", suffix),
                    "put",
                    format!("replace {what}"),
                )
            });
        }
        if can("patch") {
            operations.push(Operation {
                parameters: patch_parameters(),
                body: body(PATCH, patch_media),
                responses: created(schema),
                ..op(
                    "patch",
                    id("patch", suffix),
                    "patch",
                    format!("partially update {what}"),
                )
            });
        }
        for operation in &mut operations {
            operation.gvk = gvk.clone();
        }
        operations
    };

    let mut items = Vec::new();
    let mut collection_ops = Vec::new();
    if can("list") {
        collection_ops.push(Operation {
            parameters: list_parameters(),
            responses: ok(&list),
            ..op(
                "get",
                id("list", ""),
                "list",
                format!("list or watch objects of kind {}", resource.kind),
            )
        });
    }
    if can("create") {
        collection_ops.push(Operation {
            parameters: write_parameters(),
            body: body(&kind, ANY_MEDIA),
            responses: created(&kind),
            ..op(
                "post",
                id("create", ""),
                "post",
                format!("create a {}", resource.kind),
            )
        });
    }
    if can("deletecollection") {
        collection_ops.push(Operation {
            parameters: [delete_parameters(), list_parameters()].concat(),
            body: body(DELETE_OPTIONS, ANY_MEDIA),
            responses: ok(STATUS),
            ..op(
                "delete",
                format!("delete{prefix}Collection{scope}{}", resource.kind),
                "deletecollection",
                format!("delete collection of {}", resource.kind),
            )
        });
    }
    items.push(PathItem {
        path: collection.clone(),
        parameters: scope_parameters(),
        operations: collection_ops,
    });

    let mut item_ops = read_write("", &kind, &format!("the specified {}", resource.kind), &gvk);
    if can("delete") {
        item_ops.push(Operation {
            parameters: delete_parameters(),
            body: body(DELETE_OPTIONS, ANY_MEDIA),
            responses: vec![
                ("200", Response::Ref(STATUS.into())),
                ("202", Response::Ref(STATUS.into())),
            ],
            ..op(
                "delete",
                id("delete", ""),
                "delete",
                format!("delete a {}", resource.kind),
            )
        });
    }
    items.push(PathItem {
        path: item.clone(),
        parameters: item_parameters(&resource.kind),
        operations: item_ops,
    });

    if resource.namespaced && can("list") {
        items.push(PathItem {
            path: format!("{base}/{}", resource.plural),
            parameters: Vec::new(),
            operations: vec![Operation {
                parameters: list_parameters(),
                responses: ok(&list),
                ..op(
                    "get",
                    format!("list{prefix}{}ForAllNamespaces", resource.kind),
                    "list",
                    format!("list or watch objects of kind {}", resource.kind),
                )
            }],
        });
    }

    for sub in &resource.subresources {
        let operations = match sub.as_str() {
            "status" => read_write(
                "Status",
                &kind,
                &format!("status of the specified {}", resource.kind),
                &gvk,
            ),
            "scale" => read_write(
                "Scale",
                SCALE,
                &format!("scale of the specified {}", resource.kind),
                &Gvk::new("autoscaling", "v1", "Scale"),
            ),
            "binding" if can("create") => vec![Operation {
                gvk: Gvk::new("", "v1", "Binding"),
                parameters: write_parameters(),
                body: body(BINDING, ANY_MEDIA),
                responses: created(BINDING),
                ..op(
                    "post",
                    id("create", "Binding"),
                    "post",
                    format!("create binding of a {}", resource.kind),
                )
            }],
            "log" => vec![Operation {
                parameters: log_parameters(),
                responses: vec![("200", Response::Text)],
                ..op(
                    "get",
                    id("read", "Log"),
                    "get",
                    format!("read log of the specified {}", resource.kind),
                )
            }],
            _ => Vec::new(),
        };
        if !operations.is_empty() {
            items.push(PathItem {
                path: format!("{item}/{sub}"),
                parameters: item_parameters(&resource.kind),
                operations,
            });
        }
    }
    items.retain(|item| !item.operations.is_empty());
    items
}

fn tag(gvk: &Gvk) -> String {
    let group = if gvk.group.is_empty() {
        "core".to_string()
    } else {
        gvk.group.trim_end_matches(".k8s.io").replace('.', "_")
    };
    format!("{group}_{}", gvk.version)
}

impl PathItem {
    /// The OpenAPI v3 path item.
    pub(crate) fn to_v3(&self) -> Value {
        let mut out = Map::new();
        for operation in &self.operations {
            let mut v3 = common(operation);
            v3.insert(
                "parameters".into(),
                Value::Array(operation.parameters.iter().map(parameter_v3).collect()),
            );
            if let Some(body) = &operation.body {
                v3.insert(
                    "requestBody".into(),
                    json!({
                        "content": media(body.media_types, json!({"schema": {"$ref": format!("{V3_PREFIX}{}", body.schema)}})),
                        "required": true,
                    }),
                );
            }
            let responses: Map<String, Value> = operation
                .responses
                .iter()
                .map(|(code, response)| {
                    let content = match response {
                        Response::Ref(schema) => media(
                            JSON_MEDIA,
                            json!({"schema": {"$ref": format!("{V3_PREFIX}{schema}")}}),
                        ),
                        Response::Text => {
                            media(&["text/plain"], json!({"schema": {"type": "string"}}))
                        }
                    };
                    (
                        (*code).into(),
                        json!({"description": description(code), "content": content}),
                    )
                })
                .collect();
            v3.insert("responses".into(), Value::Object(responses));
            out.insert(operation.method.into(), Value::Object(v3));
        }
        if !self.parameters.is_empty() {
            out.insert(
                "parameters".into(),
                Value::Array(self.parameters.iter().map(parameter_v3).collect()),
            );
        }
        Value::Object(out)
    }

    /// The OpenAPI v2 path item: body parameters instead of request
    /// bodies, media types in `consumes` and `produces`.
    pub(crate) fn to_v2(&self) -> Value {
        let mut out = Map::new();
        for operation in &self.operations {
            let mut v2 = common(operation);
            let mut parameters: Vec<Value> = Vec::new();
            if let Some(body) = &operation.body {
                v2.insert("consumes".into(), json!(body.media_types));
                parameters.push(json!({
                    "name": "body",
                    "in": "body",
                    "required": true,
                    "schema": {"$ref": format!("#/definitions/{}", body.schema)},
                }));
            }
            parameters.extend(operation.parameters.iter().map(parameter_v2));
            v2.insert("parameters".into(), Value::Array(parameters));
            let text = operation
                .responses
                .iter()
                .any(|(_, response)| matches!(response, Response::Text));
            v2.insert(
                "produces".into(),
                if text {
                    json!(["text/plain"])
                } else {
                    json!(JSON_MEDIA)
                },
            );
            let responses: Map<String, Value> = operation
                .responses
                .iter()
                .map(|(code, response)| {
                    let schema = match response {
                        Response::Ref(schema) => json!({"$ref": format!("#/definitions/{schema}")}),
                        Response::Text => json!({"type": "string"}),
                    };
                    (
                        (*code).into(),
                        json!({"description": description(code), "schema": schema}),
                    )
                })
                .collect();
            v2.insert("responses".into(), Value::Object(responses));
            out.insert(operation.method.into(), Value::Object(v2));
        }
        if !self.parameters.is_empty() {
            out.insert(
                "parameters".into(),
                Value::Array(self.parameters.iter().map(parameter_v2).collect()),
            );
        }
        Value::Object(out)
    }
}

fn common(operation: &Operation) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("tags".into(), json!([tag(&operation.gvk)]));
    out.insert("description".into(), operation.description.clone().into());
    out.insert("operationId".into(), operation.id.clone().into());
    out.insert("x-kubernetes-action".into(), operation.action.into());
    out.insert(
        "x-kubernetes-group-version-kind".into(),
        operation.gvk.to_json(),
    );
    out
}

/// A v3 `content` map: the same entry under each media type.
fn media(types: &[&str], entry: Value) -> Value {
    Value::Object(
        types
            .iter()
            .map(|media_type| ((*media_type).into(), entry.clone()))
            .collect(),
    )
}

fn description(code: &str) -> &'static str {
    match code {
        "201" => "Created",
        "202" => "Accepted",
        _ => "OK",
    }
}

fn parameter_v3(parameter: &Parameter) -> Value {
    let mut out = json!({
        "name": parameter.name,
        "in": parameter.location,
        "description": parameter.description,
        "schema": {"type": parameter.kind, "uniqueItems": true},
    });
    if parameter.location == "path" {
        out["required"] = true.into();
    }
    out
}

fn parameter_v2(parameter: &Parameter) -> Value {
    let mut out = json!({
        "name": parameter.name,
        "in": parameter.location,
        "description": parameter.description,
        "type": parameter.kind,
        "uniqueItems": true,
    });
    if parameter.location == "path" {
        out["required"] = true.into();
    }
    out
}
