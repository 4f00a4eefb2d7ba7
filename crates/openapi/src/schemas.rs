//! The component schemas of one group-version document.
//!
//! Built-in kinds come from k8s-openapi's `JsonSchema` implementations,
//! which already name every type as upstream does
//! (`io.k8s.api.core.v1.Pod`) and reference the others by
//! `#/components/schemas/...`; custom kinds come from their CRD. kstress
//! adds what upstream's generator adds and kubectl reads: the
//! `x-kubernetes-group-version-kind` of every kind and list, the list
//! types, the patch metadata, and the request and response types the
//! operations reference.

use k8s_openapi::api;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::{Resource, Schema, patch_meta};

/// Where v3 references point.
pub(crate) const V3_PREFIX: &str = "#/components/schemas/";

pub(crate) const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
pub(crate) const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(crate) const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";
pub(crate) const BINDING: &str = "io.k8s.api.core.v1.Binding";

/// A group, version and kind, as the `x-kubernetes-group-version-kind`
/// extension spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub(crate) fn new(group: &str, version: &str, kind: &str) -> Gvk {
        Gvk {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        }
    }

    pub(crate) fn of(resource: &Resource) -> Gvk {
        Gvk::new(&resource.group, &resource.version, &resource.kind)
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({"group": self.group, "version": self.version, "kind": self.kind})
    }
}

/// The definition name of a resource's kind: upstream's Go package path
/// for built-ins, the reversed group for custom resources
/// (`com.example.v1.Widget`).
pub(crate) fn kind_name(resource: &Resource) -> String {
    match &resource.schema {
        Schema::Builtin(schema) => schema.name(),
        Schema::Custom(_) => {
            let reversed: Vec<&str> = resource.group.split('.').rev().collect();
            format!(
                "{}.{}.{}",
                reversed.join("."),
                resource.version,
                resource.kind
            )
        }
    }
}

/// The definition name of a resource's list kind.
pub(crate) fn list_name(resource: &Resource) -> String {
    format!("{}List", kind_name(resource))
}

/// Collects the schemas of one group-version document.
pub(crate) struct Components {
    generator: SchemaGenerator,
    custom: Map<String, Value>,
    gvks: Vec<(String, Gvk)>,
}

impl Components {
    /// Starts with the types every group-version's operations reference.
    pub(crate) fn new() -> Components {
        let mut generator = SchemaSettings::openapi3().into_generator();
        generator.subschema_for::<meta::ObjectMeta>();
        generator.subschema_for::<meta::ListMeta>();
        generator.subschema_for::<meta::Status>();
        generator.subschema_for::<meta::DeleteOptions>();
        Components {
            generator,
            custom: Map::new(),
            gvks: Vec::new(),
        }
    }

    /// Adds a resource's kind, its list and its subresources' types.
    pub(crate) fn add(&mut self, resource: &Resource) {
        let name = kind_name(resource);
        match &resource.schema {
            Schema::Builtin(schema) => schema.add_to(&mut self.generator),
            Schema::Custom(schema) => {
                self.custom.insert(name.clone(), custom_kind(schema));
            }
        }
        let list = list_name(resource);
        self.custom
            .insert(list.clone(), list_schema(resource, &name));
        let gvk = Gvk::of(resource);
        self.gvks.push((
            list,
            Gvk::new(&gvk.group, &gvk.version, &format!("{}List", gvk.kind)),
        ));
        self.gvks.push((name, gvk));
        for sub in &resource.subresources {
            match sub.as_str() {
                "scale" => {
                    self.generator
                        .subschema_for::<api::autoscaling::v1::Scale>();
                    self.gvks
                        .push((SCALE.into(), Gvk::new("autoscaling", "v1", "Scale")));
                }
                "binding" => {
                    self.generator.subschema_for::<api::core::v1::Binding>();
                    self.gvks
                        .push((BINDING.into(), Gvk::new("", "v1", "Binding")));
                }
                _ => {}
            }
        }
    }

    /// The finished `components.schemas` map.
    pub(crate) fn finish(self) -> Map<String, Value> {
        let mut schemas = self.generator.definitions().clone();
        schemas.values_mut().for_each(optional_metadata);
        schemas.extend(self.custom);
        schemas.insert(
            PATCH.into(),
            json!({
                "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
                "type": "object",
            }),
        );
        for (name, gvk) in self.gvks {
            if let Some(Value::Object(schema)) = schemas.get_mut(&name) {
                schema.insert(
                    "x-kubernetes-group-version-kind".into(),
                    Value::Array(vec![gvk.to_json()]),
                );
            }
        }
        patch_meta::annotate(&mut schemas);
        schemas
    }
}

/// k8s-openapi requires `metadata` because its Rust field is not an
/// `Option`; upstream never does, and `kubectl explain` would print
/// `-required-` next to it.
fn optional_metadata(schema: &mut Value) {
    let Some(Value::Array(required)) = schema.get_mut("required") else {
        return;
    };
    required.retain(|field| field != "metadata");
    if required.is_empty()
        && let Value::Object(schema) = schema
    {
        schema.remove("required");
    }
}

const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// A CRD version's schema as upstream publishes it: an object whose
/// `apiVersion`, `kind` and `metadata` are the standard ones, whatever the
/// CRD declares for them.
fn custom_kind(schema: &Value) -> Value {
    let mut schema = match schema {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    schema.insert("type".into(), "object".into());
    let properties = schema
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if !properties.is_object() {
        *properties = Value::Object(Map::new());
    }
    if let Value::Object(properties) = properties {
        properties.insert(
            "apiVersion".into(),
            json!({"description": API_VERSION_DESCRIPTION, "type": "string"}),
        );
        properties.insert(
            "kind".into(),
            json!({"description": KIND_DESCRIPTION, "type": "string"}),
        );
        properties.insert(
            "metadata".into(),
            json!({
                "$ref": format!("{V3_PREFIX}{OBJECT_META}"),
                "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
            }),
        );
    }
    Value::Object(schema)
}

fn list_schema(resource: &Resource, kind_name: &str) -> Value {
    json!({
        "description": format!("{}List is a list of {}.", resource.kind, resource.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": API_VERSION_DESCRIPTION, "type": "string"},
            "items": {
                "description": format!("List of {}.", resource.plural),
                "type": "array",
                "items": {"$ref": format!("{V3_PREFIX}{kind_name}")},
            },
            "kind": {"description": KIND_DESCRIPTION, "type": "string"},
            "metadata": {
                "$ref": format!("{V3_PREFIX}{LIST_META}"),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
    })
}
