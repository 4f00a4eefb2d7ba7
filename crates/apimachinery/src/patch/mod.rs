//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and
//! strategic merge patch, the form kubectl sends for built-in kinds.
//!
//! A strategic merge patch differs from a merge patch in how lists merge:
//! lists declared `patchStrategy: merge` in the Kubernetes types merge their
//! items by a key (containers by name, ports by containerPort, ...), and
//! the patch may carry directives (`$patch`, `$retainKeys`,
//! `$setElementOrder/<field>`, `$deleteFromPrimitiveList/<field>`).
//! [`PatchMeta`] holds that per-kind list metadata.

mod meta;
mod strategic;

use serde_json::{Map, Value};

pub use meta::PatchMeta;

/// Upstream's cap on the operations of one JSON patch.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The patch formats, by their content types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    JsonPatch,
    MergePatch,
    StrategicMergePatch,
    /// Server-side apply; recognised so a server can refuse it with 415.
    ApplyPatch,
}

impl PatchType {
    /// The patch type of a `Content-Type` header value; parameters
    /// (`; charset=utf-8`) and case are ignored.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/json-patch+json" => Some(PatchType::JsonPatch),
            "application/merge-patch+json" => Some(PatchType::MergePatch),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMergePatch),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchType::ApplyPatch)
            }
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::JsonPatch => "application/json-patch+json",
            PatchType::MergePatch => "application/merge-patch+json",
            PatchType::StrategicMergePatch => "application/strategic-merge-patch+json",
            PatchType::ApplyPatch => "application/apply-patch+yaml",
        }
    }
}

/// Why a patch failed, classified the way upstream's patch handler
/// (k8s.io/apiserver `pkg/endpoints/handlers/patch.go`) answers; see
/// [`PatchError::status_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The body is not a patch of its type (bad JSON, a JSON patch that is
    /// not a list of operations, a malformed SMP directive): 400 Bad Request
    /// with this message.
    #[error("{0}")]
    BadRequest(String),
    /// A well-formed patch that cannot apply to this object (a failed JSON
    /// patch `test`, a missing path, a result that is not an object, lists
    /// of lists): 422 with reason `Invalid`. Upstream's message for JSON
    /// patch failures is the generic "the server rejected our request due
    /// to an error in our request"; this text is the detail.
    #[error("{0}")]
    Unprocessable(String),
    /// More than [`MAX_JSON_PATCH_OPERATIONS`] operations: 413 Request Entity
    /// Too Large.
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}", max = MAX_JSON_PATCH_OPERATIONS)]
    TooManyOperations { got: usize },
    /// Strategic merge patch on a kind without [`PatchMeta`] (custom
    /// resources), or server-side apply: 415 Unsupported Media Type.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json"
    )]
    UnsupportedPatchType(PatchType),
    /// The strategic-merge errors upstream passes through unclassified (a
    /// list item without its merge key, `$patch: merge` on a map, mixed
    /// list element types, a `$setElementOrder` list out of order): they
    /// reach kube-apiserver's error writer as plain errors, which answers
    /// 500 with an empty reason and this message.
    #[error("{0}")]
    Internal(String),
}

impl PatchError {
    /// The HTTP status kube-apiserver answers this error with.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::Unprocessable(_) => 422,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::UnsupportedPatchType(_) => 415,
            PatchError::Internal(_) => 500,
        }
    }

    /// Whether the body itself is at fault (400), as opposed to applying
    /// it; [`PatchError::status_code`] gives the full classification.
    pub fn is_malformed(&self) -> bool {
        self.status_code() == 400
    }
}

/// Applies a patch of the given type to `original`. `meta` is required for
/// strategic merge patch and ignored otherwise.
pub fn apply(
    patch_type: PatchType,
    original: &Value,
    patch: &[u8],
    meta: Option<&PatchMeta>,
) -> Result<Value, PatchError> {
    match patch_type {
        PatchType::JsonPatch => json_patch(original, patch),
        PatchType::MergePatch => merge_patch(original, patch),
        PatchType::StrategicMergePatch => {
            let meta = meta.ok_or(PatchError::UnsupportedPatchType(patch_type))?;
            strategic_merge_patch(original, patch, meta)
        }
        PatchType::ApplyPatch => Err(PatchError::UnsupportedPatchType(patch_type)),
    }
}

fn json_patch(original: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let operations: json_patch::Patch =
        serde_json::from_slice(patch).map_err(|err| PatchError::BadRequest(err.to_string()))?;
    if operations.0.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            got: operations.0.len(),
        });
    }
    let mut doc = original.clone();
    json_patch::patch(&mut doc, &operations)
        .map_err(|err| PatchError::Unprocessable(err.to_string()))?;
    require_object(doc)
}

/// RFC 7386 with upstream's edges: an empty body changes nothing, and
/// `null`, a scalar or invalid JSON is "Invalid JSON Patch".
fn merge_patch(original: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    if patch.is_empty() {
        return Ok(original.clone());
    }
    let patch: Value = serde_json::from_slice(patch).map_err(|_| invalid_merge_patch())?;
    if !(patch.is_object() || patch.is_array()) {
        return Err(invalid_merge_patch());
    }
    let mut doc = original.clone();
    json_patch::merge(&mut doc, &patch);
    require_object(doc)
}

fn invalid_merge_patch() -> PatchError {
    PatchError::BadRequest("Invalid JSON Patch".into())
}

/// A patch result must still be an object to decode as one.
fn require_object(doc: Value) -> Result<Value, PatchError> {
    if doc.is_object() {
        Ok(doc)
    } else {
        Err(PatchError::Unprocessable(format!(
            "patch: Invalid value: {doc}: the patched document is not a JSON object"
        )))
    }
}

fn strategic_merge_patch(
    original: &Value,
    patch: &[u8],
    meta: &PatchMeta,
) -> Result<Value, PatchError> {
    let patch = match serde_json::from_slice(patch)
        .map_err(|err| PatchError::BadRequest(err.to_string()))?
    {
        Value::Object(map) => map,
        // Go decodes `null` into an empty map: a no-op patch.
        Value::Null => Map::new(),
        other => {
            let kind = match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "bool",
            };
            return Err(PatchError::BadRequest(format!(
                "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
            )));
        }
    };
    let original = original.as_object().cloned().unwrap_or_default();
    strategic::apply(original, patch, meta.schema()).map(Value::Object)
}

#[cfg(test)]
mod tests;
