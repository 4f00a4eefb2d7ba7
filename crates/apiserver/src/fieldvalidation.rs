//! `fieldValidation`: what the server does with fields an object's schema
//! does not declare. Like kube-apiserver, it drops them from what it
//! stores and, by default, tells the client with a `Warning` header per
//! field; `Strict` refuses the request instead, `Ignore` drops them
//! silently.

use http::HeaderValue;
use serde_json::Value;

use crate::error::ApiError;
use crate::registry::ResourceDef;

/// The `fieldValidation` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    /// The directive of a request; `Warn` when it names none, as upstream.
    pub fn from_query(query: &std::collections::HashMap<String, String>) -> Result<Self, ApiError> {
        match query.get("fieldValidation").map(String::as_str) {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\" or \"Strict\", got {other:?}"
            ))),
        }
    }

    /// Drops the undeclared fields of `obj` (an object, or a merge or
    /// strategic merge patch, of `def`'s kind) and returns the warnings to
    /// send; under `Strict`, undeclared fields are a 400 in upstream's
    /// words.
    pub fn apply(
        self,
        docs: &openapi::Documents,
        def: &ResourceDef,
        obj: &mut Value,
    ) -> Result<Vec<String>, ApiError> {
        let Some(unknown) = docs.prune_unknown_fields((&def.group, &def.version, &def.kind), obj)
        else {
            return Ok(Vec::new());
        };
        let described: Vec<String> = unknown
            .iter()
            .map(|field| format!("unknown field {field:?}"))
            .collect();
        match self {
            _ if described.is_empty() => Ok(Vec::new()),
            FieldValidation::Strict => Err(ApiError::bad_request(format!(
                "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
                described.join(", "),
                kind = def.kind,
                version = def.version,
            ))),
            FieldValidation::Warn => Ok(described),
            FieldValidation::Ignore => Ok(Vec::new()),
        }
    }
}

/// A `Warning` header as kube-apiserver sends it: code 299, no agent.
pub fn warning_header(text: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("299 - {}", Value::String(text.to_owned()))).ok()
}
