//! OpenAPI documents describing the resources the kstress API server
//! serves, in the shapes kubectl v1.32 reads.
//!
//! - `kubectl apply` asks the v3 document of the kind's group-version
//!   whether its PATCH operation declares `fieldValidation`; if so it
//!   leaves validation to the server. Otherwise it downloads `/openapi/v2`
//!   as gnostic protobuf, fails if kube-openapi cannot parse it, and
//!   validates against the definition tagged with the kind's
//!   `x-kubernetes-group-version-kind`.
//! - Client-side apply computes its three-way patch from the v3 schema:
//!   lists merge by `x-kubernetes-patch-strategy` and
//!   `x-kubernetes-patch-merge-key`, and are replaced whole without them.
//! - `kubectl explain` walks the v3 component schemas from the kind tagged
//!   with the group-version-kind, following `$ref`s.
//!
//! Schemas of built-in kinds are generated from k8s-openapi's types (its
//! `schemars` feature), named as upstream names them
//! (`io.k8s.api.core.v1.Pod`); custom resources use their CRD's schema.
//! Everything is encoded once per resource set so that serving a document
//! is a reference-count increment.

mod fields;
mod gnostic;
mod patch_meta;
mod paths;
mod schemas;
mod v2;

use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use serde_json::{Map, Value, json};

/// Where a resource's schema comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Schema {
    /// A built-in kind: generated from its k8s-openapi type.
    Builtin(TypeSchema),
    /// A custom resource: its CRD version's `openAPIV3Schema`.
    Custom(Value),
}

/// The schema of a built-in kind's k8s-openapi type, which names it as
/// upstream does (`io.k8s.api.apps.v1.Deployment`) and brings the schemas
/// of the types it references. Made by [`type_schema`].
#[derive(Clone, Copy)]
pub struct TypeSchema {
    name: fn() -> std::borrow::Cow<'static, str>,
    add: fn(&mut schemars::SchemaGenerator),
}

/// The [`TypeSchema`] of `T`, usable in a `static` kind definition.
pub const fn type_schema<T: schemars::JsonSchema>() -> TypeSchema {
    fn add<T: schemars::JsonSchema>(generator: &mut schemars::SchemaGenerator) {
        generator.subschema_for::<T>();
    }
    TypeSchema {
        name: T::schema_name,
        add: add::<T>,
    }
}

impl TypeSchema {
    pub(crate) fn name(&self) -> String {
        (self.name)().into_owned()
    }

    pub(crate) fn add_to(&self, generator: &mut schemars::SchemaGenerator) {
        (self.add)(generator);
    }
}

impl PartialEq for TypeSchema {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl std::fmt::Debug for TypeSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TypeSchema").field(&self.name()).finish()
    }
}

/// One served resource, as the API server's registry knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// API group; empty for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    /// Subresource names (`status`, `scale`, `binding`, `log`); each adds
    /// its own operations.
    pub subresources: Vec<String>,
    /// Discovery verbs (`get`, `list`, `create`, `update`, `patch`,
    /// `delete`, `deletecollection`, `watch`); only these get operations.
    pub verbs: Vec<String>,
    pub schema: Schema,
}

/// The documents of one set of served resources, encoded once. Rebuild
/// when the set changes (a CRD is created, updated or deleted).
#[derive(Debug, Clone)]
pub struct Documents {
    v2_json: Bytes,
    v2_protobuf: Bytes,
    v3_root: Bytes,
    /// `api/v1` or `apis/{group}/{version}` -> its document.
    v3: BTreeMap<String, GroupVersionDocument>,
    /// (group, version, kind) -> the schemas of its group-version and the
    /// name of its own, for field validation.
    kinds: BTreeMap<(String, String, String), KindSchema>,
}

/// The component schemas of a kind's group-version and its own name among
/// them.
#[derive(Debug, Clone)]
struct KindSchema {
    schemas: Arc<Map<String, Value>>,
    name: String,
}

#[derive(Debug, Clone)]
struct GroupVersionDocument {
    json: Bytes,
    hash: String,
}

/// The `info` of both documents; kubectl ignores it.
fn info() -> Value {
    json!({"title": "Kubernetes", "version": "v1.33.0"})
}

impl Documents {
    /// Builds every document for `resources`.
    pub fn build(resources: &[Resource]) -> Documents {
        let mut by_group_version: BTreeMap<String, Vec<&Resource>> = BTreeMap::new();
        for resource in resources {
            by_group_version
                .entry(group_version_path(resource))
                .or_default()
                .push(resource);
        }
        let mut v3 = BTreeMap::new();
        let mut kinds = BTreeMap::new();
        let mut definitions = Map::new();
        let mut v2_paths = Map::new();
        for (group_version, members) in by_group_version {
            let mut components = schemas::Components::new();
            let mut v3_paths = Map::new();
            let mut kind_names = Vec::new();
            for resource in &members {
                components.add(resource);
                kind_names.push((
                    (
                        resource.group.clone(),
                        resource.version.clone(),
                        resource.kind.clone(),
                    ),
                    schemas::kind_name(resource),
                ));
                for item in paths::resource_paths(resource) {
                    v3_paths.insert(item.path.clone(), item.to_v3());
                    v2_paths.insert(item.path.clone(), item.to_v2());
                }
            }
            let schemas = components.finish();
            for (name, schema) in &schemas {
                definitions
                    .entry(name.clone())
                    .or_insert_with(|| v2::schema(schema));
            }
            let document = json!({
                "openapi": "3.0.0",
                "info": info(),
                "paths": v3_paths,
                "components": {"schemas": schemas},
            });
            let json = Bytes::from(document.to_string());
            let hash = content_hash(&json);
            if let Some(Value::Object(schemas)) = document.pointer("/components/schemas") {
                let schemas = Arc::new(schemas.clone());
                for (gvk, name) in kind_names {
                    let schemas = schemas.clone();
                    kinds.insert(gvk, KindSchema { schemas, name });
                }
            }
            v3.insert(group_version, GroupVersionDocument { json, hash });
        }
        let root_paths: Map<String, Value> = v3
            .iter()
            .map(|(group_version, document)| {
                let url = format!("/openapi/v3/{group_version}?hash={}", document.hash);
                (group_version.clone(), json!({"serverRelativeURL": url}))
            })
            .collect();
        let v2 = json!({
            "swagger": "2.0",
            "info": info(),
            "paths": v2_paths,
            "definitions": definitions,
        });
        Documents {
            v2_protobuf: Bytes::from(gnostic::document(&v2).encode_to_vec()),
            v2_json: Bytes::from(v2.to_string()),
            v3_root: Bytes::from(json!({"paths": root_paths}).to_string()),
            v3,
            kinds,
        }
    }

    /// `GET /openapi/v2` with `Accept: application/json`.
    pub fn v2_json(&self) -> Bytes {
        self.v2_json.clone()
    }

    /// `GET /openapi/v2` with `Accept:
    /// application/com.github.proto-openapi.spec.v2@v1.0+protobuf`: the
    /// same document as a gnostic `openapi.v2.Document`.
    pub fn v2_protobuf(&self) -> Bytes {
        self.v2_protobuf.clone()
    }

    /// `GET /openapi/v3`: every group-version and the URL of its document.
    pub fn v3_root(&self) -> Bytes {
        self.v3_root.clone()
    }

    /// `GET /openapi/v3/{path}` (`api/v1`, `apis/apps/v1`): the document
    /// and the hash its URL in the root carries. The hash changes with the
    /// content, so a request that carries the current hash may be answered
    /// as immutable (upstream sends `Cache-Control: public, immutable`).
    pub fn v3_group_version(&self, path: &str) -> Option<(Bytes, String)> {
        self.v3
            .get(path)
            .map(|document| (document.json.clone(), document.hash.clone()))
    }
}

impl Documents {
    /// Removes the fields of `obj`, an object of `group/version` `kind`,
    /// that its schema does not declare, and returns their paths
    /// (`spec.template.spec.containers[0].bogus`), as kube-apiserver's
    /// decoder drops and reports them; `None` for a kind not described
    /// here.
    pub fn prune_unknown_fields(
        &self,
        (group, version, kind): (&str, &str, &str),
        obj: &mut Value,
    ) -> Option<Vec<String>> {
        let kind = self
            .kinds
            .get(&(group.to_owned(), version.to_owned(), kind.to_owned()))?;
        Some(fields::prune_unknown(&kind.schemas, &kind.name, obj))
    }
}

fn group_version_path(resource: &Resource) -> String {
    if resource.group.is_empty() {
        format!("api/{}", resource.version)
    } else {
        format!("apis/{}/{}", resource.group, resource.version)
    }
}

/// A cache key for one document's content; not a security boundary.
fn content_hash(content: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    content.hash(&mut hasher);
    format!("{:016X}", hasher.finish())
}

#[cfg(test)]
mod tests;
