//! The v2 document as gnostic's `openapi.v2.Document` protobuf, the form
//! client-go's `OpenAPISchema()` asks for; kubectl parses it whenever it
//! validates on the client or explains with `plaintext-openapiv2`.
//!
//! The messages mirror gnostic's OpenAPIv2.proto with the same field
//! numbers, cut to the fields kube-openapi and kubectl read: definitions
//! (for validation, `explain --output=plaintext-openapiv2` and the patch
//! metadata of client-side apply) and paths (the fallback check for the
//! `fieldValidation` parameter). Vendor extensions travel as YAML text in
//! `Any.yaml`, which is where kube-openapi's `VendorExtensionToMap` looks;
//! JSON text is valid YAML.

use serde_json::{Map, Value};

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Document {
    #[prost(string, tag = "1")]
    pub swagger: String,
    #[prost(message, optional, tag = "2")]
    pub info: Option<Info>,
    #[prost(message, optional, tag = "8")]
    pub paths: Option<Paths>,
    #[prost(message, optional, tag = "9")]
    pub definitions: Option<Definitions>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Info {
    #[prost(string, tag = "1")]
    pub title: String,
    #[prost(string, tag = "2")]
    pub version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Definitions {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NamedSchema {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Schema>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Any {
    #[prost(string, tag = "2")]
    pub yaml: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NamedAny {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Any>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Schema {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    #[prost(string, tag = "2")]
    pub format: String,
    #[prost(string, tag = "3")]
    pub title: String,
    #[prost(string, tag = "4")]
    pub description: String,
    #[prost(message, optional, tag = "5")]
    pub default: Option<Any>,
    #[prost(double, tag = "6")]
    pub multiple_of: f64,
    #[prost(double, tag = "7")]
    pub maximum: f64,
    #[prost(bool, tag = "8")]
    pub exclusive_maximum: bool,
    #[prost(double, tag = "9")]
    pub minimum: f64,
    #[prost(bool, tag = "10")]
    pub exclusive_minimum: bool,
    #[prost(int64, tag = "11")]
    pub max_length: i64,
    #[prost(int64, tag = "12")]
    pub min_length: i64,
    #[prost(string, tag = "13")]
    pub pattern: String,
    #[prost(int64, tag = "14")]
    pub max_items: i64,
    #[prost(int64, tag = "15")]
    pub min_items: i64,
    #[prost(bool, tag = "16")]
    pub unique_items: bool,
    #[prost(int64, tag = "17")]
    pub max_properties: i64,
    #[prost(int64, tag = "18")]
    pub min_properties: i64,
    #[prost(string, repeated, tag = "19")]
    pub required: Vec<String>,
    #[prost(message, repeated, tag = "20")]
    pub r#enum: Vec<Any>,
    #[prost(message, optional, tag = "21")]
    pub additional_properties: Option<AdditionalPropertiesItem>,
    #[prost(message, optional, tag = "22")]
    pub r#type: Option<TypeItem>,
    #[prost(message, optional, tag = "23")]
    pub items: Option<ItemsItem>,
    #[prost(message, repeated, tag = "24")]
    pub all_of: Vec<Schema>,
    #[prost(message, optional, tag = "25")]
    pub properties: Option<Properties>,
    #[prost(bool, tag = "27")]
    pub read_only: bool,
    #[prost(message, repeated, tag = "31")]
    pub vendor_extension: Vec<NamedAny>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct AdditionalPropertiesItem {
    #[prost(oneof = "AdditionalProperties", tags = "1, 2")]
    pub oneof: Option<AdditionalProperties>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub(crate) enum AdditionalProperties {
    #[prost(message, tag = "1")]
    Schema(Box<Schema>),
    #[prost(bool, tag = "2")]
    Boolean(bool),
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TypeItem {
    #[prost(string, repeated, tag = "1")]
    pub value: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ItemsItem {
    #[prost(message, repeated, tag = "1")]
    pub schema: Vec<Schema>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Properties {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Paths {
    #[prost(message, repeated, tag = "2")]
    pub path: Vec<NamedPathItem>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NamedPathItem {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<PathItem>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PathItem {
    #[prost(message, optional, tag = "2")]
    pub get: Option<Operation>,
    #[prost(message, optional, tag = "3")]
    pub put: Option<Operation>,
    #[prost(message, optional, tag = "4")]
    pub post: Option<Operation>,
    #[prost(message, optional, tag = "5")]
    pub delete: Option<Operation>,
    #[prost(message, optional, tag = "8")]
    pub patch: Option<Operation>,
    #[prost(message, repeated, tag = "9")]
    pub parameters: Vec<ParametersItem>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Operation {
    #[prost(string, repeated, tag = "1")]
    pub tags: Vec<String>,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "5")]
    pub operation_id: String,
    #[prost(string, repeated, tag = "6")]
    pub produces: Vec<String>,
    #[prost(string, repeated, tag = "7")]
    pub consumes: Vec<String>,
    #[prost(message, repeated, tag = "8")]
    pub parameters: Vec<ParametersItem>,
    #[prost(message, optional, tag = "9")]
    pub responses: Option<Responses>,
    #[prost(message, repeated, tag = "13")]
    pub vendor_extension: Vec<NamedAny>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ParametersItem {
    #[prost(message, optional, tag = "1")]
    pub parameter: Option<Parameter>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Parameter {
    #[prost(oneof = "ParameterKind", tags = "1, 2")]
    pub oneof: Option<ParameterKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub(crate) enum ParameterKind {
    #[prost(message, tag = "1")]
    Body(Box<BodyParameter>),
    #[prost(message, tag = "2")]
    NonBody(NonBodyParameter),
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct BodyParameter {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub r#in: String,
    #[prost(bool, tag = "4")]
    pub required: bool,
    #[prost(message, optional, tag = "5")]
    pub schema: Option<Schema>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NonBodyParameter {
    #[prost(oneof = "NonBodyKind", tags = "3, 4")]
    pub oneof: Option<NonBodyKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub(crate) enum NonBodyKind {
    #[prost(message, tag = "3")]
    Query(QueryParameterSubSchema),
    #[prost(message, tag = "4")]
    Path(PathParameterSubSchema),
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct QueryParameterSubSchema {
    #[prost(bool, tag = "1")]
    pub required: bool,
    #[prost(string, tag = "2")]
    pub r#in: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(string, tag = "6")]
    pub r#type: String,
    #[prost(bool, tag = "20")]
    pub unique_items: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PathParameterSubSchema {
    #[prost(bool, tag = "1")]
    pub required: bool,
    #[prost(string, tag = "2")]
    pub r#in: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(string, tag = "5")]
    pub r#type: String,
    #[prost(bool, tag = "19")]
    pub unique_items: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Responses {
    #[prost(message, repeated, tag = "1")]
    pub response_code: Vec<NamedResponseValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NamedResponseValue {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<ResponseValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ResponseValue {
    #[prost(message, optional, tag = "1")]
    pub response: Option<Response>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Response {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(message, optional, tag = "2")]
    pub schema: Option<SchemaItem>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SchemaItem {
    #[prost(message, optional, tag = "1")]
    pub schema: Option<Schema>,
}

fn text(map: &Map<String, Value>, key: &str) -> String {
    map.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn texts(map: &Map<String, Value>, key: &str) -> Vec<String> {
    map.get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn number(map: &Map<String, Value>, key: &str) -> f64 {
    map.get(key).and_then(Value::as_f64).unwrap_or_default()
}

fn integer(map: &Map<String, Value>, key: &str) -> i64 {
    map.get(key).and_then(Value::as_i64).unwrap_or_default()
}

fn flag(map: &Map<String, Value>, key: &str) -> bool {
    map.get(key).and_then(Value::as_bool).unwrap_or_default()
}

fn any(value: &Value) -> Any {
    Any {
        yaml: value.to_string(),
    }
}

fn extensions(map: &Map<String, Value>) -> Vec<NamedAny> {
    map.iter()
        .filter(|(key, _)| key.starts_with("x-"))
        .map(|(key, value)| NamedAny {
            name: key.clone(),
            value: Some(any(value)),
        })
        .collect()
}

fn named_schemas(value: Option<&Value>) -> Vec<NamedSchema> {
    value
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(name, value)| NamedSchema {
                    name: name.clone(),
                    value: Some(schema(value)),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Converts a v2 JSON schema.
pub(crate) fn schema(value: &Value) -> Schema {
    let Value::Object(map) = value else {
        return Schema::default();
    };
    Schema {
        r#ref: text(map, "$ref"),
        format: text(map, "format"),
        title: text(map, "title"),
        description: text(map, "description"),
        default: map.get("default").map(any),
        multiple_of: number(map, "multipleOf"),
        maximum: number(map, "maximum"),
        exclusive_maximum: flag(map, "exclusiveMaximum"),
        minimum: number(map, "minimum"),
        exclusive_minimum: flag(map, "exclusiveMinimum"),
        max_length: integer(map, "maxLength"),
        min_length: integer(map, "minLength"),
        pattern: text(map, "pattern"),
        max_items: integer(map, "maxItems"),
        min_items: integer(map, "minItems"),
        unique_items: flag(map, "uniqueItems"),
        max_properties: integer(map, "maxProperties"),
        min_properties: integer(map, "minProperties"),
        required: texts(map, "required"),
        r#enum: map
            .get("enum")
            .and_then(Value::as_array)
            .map(|values| values.iter().map(any).collect())
            .unwrap_or_default(),
        additional_properties: match map.get("additionalProperties") {
            Some(Value::Bool(allowed)) => Some(AdditionalPropertiesItem {
                oneof: Some(AdditionalProperties::Boolean(*allowed)),
            }),
            Some(nested @ Value::Object(_)) => Some(AdditionalPropertiesItem {
                oneof: Some(AdditionalProperties::Schema(Box::new(schema(nested)))),
            }),
            _ => None,
        },
        r#type: map.get("type").and_then(Value::as_str).map(|t| TypeItem {
            value: vec![t.to_string()],
        }),
        items: map.get("items").map(|items| ItemsItem {
            schema: vec![schema(items)],
        }),
        all_of: map
            .get("allOf")
            .and_then(Value::as_array)
            .map(|all| all.iter().map(schema).collect())
            .unwrap_or_default(),
        properties: map.get("properties").map(|properties| Properties {
            additional_properties: named_schemas(Some(properties)),
        }),
        read_only: flag(map, "readOnly"),
        vendor_extension: extensions(map),
    }
}

fn parameter(value: &Value) -> ParametersItem {
    let empty = Map::new();
    let map = value.as_object().unwrap_or(&empty);
    let kind = match text(map, "in").as_str() {
        "body" => ParameterKind::Body(Box::new(BodyParameter {
            description: text(map, "description"),
            name: text(map, "name"),
            r#in: "body".into(),
            required: flag(map, "required"),
            schema: map.get("schema").map(schema),
        })),
        "path" => ParameterKind::NonBody(NonBodyParameter {
            oneof: Some(NonBodyKind::Path(PathParameterSubSchema {
                required: flag(map, "required"),
                r#in: "path".into(),
                description: text(map, "description"),
                name: text(map, "name"),
                r#type: text(map, "type"),
                unique_items: flag(map, "uniqueItems"),
            })),
        }),
        _ => ParameterKind::NonBody(NonBodyParameter {
            oneof: Some(NonBodyKind::Query(QueryParameterSubSchema {
                required: flag(map, "required"),
                r#in: "query".into(),
                description: text(map, "description"),
                name: text(map, "name"),
                r#type: text(map, "type"),
                unique_items: flag(map, "uniqueItems"),
            })),
        }),
    };
    ParametersItem {
        parameter: Some(Parameter { oneof: Some(kind) }),
    }
}

fn parameters(map: &Map<String, Value>) -> Vec<ParametersItem> {
    map.get("parameters")
        .and_then(Value::as_array)
        .map(|all| all.iter().map(parameter).collect())
        .unwrap_or_default()
}

fn operation(value: &Value) -> Operation {
    let empty = Map::new();
    let map = value.as_object().unwrap_or(&empty);
    let responses = map
        .get("responses")
        .and_then(Value::as_object)
        .map(|codes| Responses {
            response_code: codes
                .iter()
                .map(|(code, response)| NamedResponseValue {
                    name: code.clone(),
                    value: Some(ResponseValue {
                        response: Some(Response {
                            description: response
                                .get("description")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string(),
                            schema: response.get("schema").map(|s| SchemaItem {
                                schema: Some(schema(s)),
                            }),
                        }),
                    }),
                })
                .collect(),
        });
    Operation {
        tags: texts(map, "tags"),
        description: text(map, "description"),
        operation_id: text(map, "operationId"),
        produces: texts(map, "produces"),
        consumes: texts(map, "consumes"),
        parameters: parameters(map),
        responses,
        vendor_extension: extensions(map),
    }
}

fn path_item(value: &Value) -> PathItem {
    let empty = Map::new();
    let map = value.as_object().unwrap_or(&empty);
    PathItem {
        get: map.get("get").map(operation),
        put: map.get("put").map(operation),
        post: map.get("post").map(operation),
        delete: map.get("delete").map(operation),
        patch: map.get("patch").map(operation),
        parameters: parameters(map),
    }
}

/// Converts a v2 JSON document.
pub(crate) fn document(value: &Value) -> Document {
    let empty = Map::new();
    let map = value.as_object().unwrap_or(&empty);
    let info = map.get("info").and_then(Value::as_object).map(|info| Info {
        title: text(info, "title"),
        version: text(info, "version"),
    });
    Document {
        swagger: text(map, "swagger"),
        info,
        paths: map
            .get("paths")
            .and_then(Value::as_object)
            .map(|paths| Paths {
                path: paths
                    .iter()
                    .map(|(name, item)| NamedPathItem {
                        name: name.clone(),
                        value: Some(path_item(item)),
                    })
                    .collect(),
            }),
        definitions: Some(Definitions {
            additional_properties: named_schemas(map.get("definitions")),
        }),
    }
}
