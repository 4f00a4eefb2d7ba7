//! `application/vnd.kubernetes.protobuf`, the wire form client-go's typed
//! clients (and so kubectl's `create deployment`, `create job`, ...)
//! prefer.
//!
//! The server stores and works on JSON, so protobuf is transcoded at the
//! edge: request bodies decode into JSON, responses encode from it. Both
//! walk one table of messages (`messages.rs`, generated from k8s-pb and
//! k8s-openapi by `crates/apiserver/codegen`) that covers every built-in
//! kind, its list, and what they reference. An object travels as the
//! magic `k8s\0`, then a `runtime.Unknown` envelope naming its apiVersion
//! and kind, whose `raw` holds the message; watch events are
//! length-prefixed `meta.v1.WatchEvent` messages whose object is such an
//! envelope. Custom resources have no messages: they are JSON only, as
//! upstream serves them.

mod decode;
mod encode;
// Generated; regenerating must reproduce it byte for byte.
#[rustfmt::skip]
mod messages;
mod schema;
#[cfg(test)]
mod tests;
mod wellknown;
mod wire;

use serde_json::Value;

use crate::error::ApiError;
use crate::registry::ResourceDef;
use schema::Message;

pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The content type of a protobuf watch.
pub const WATCH_CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

const MAGIC: &[u8] = b"k8s\0";

/// Why a body could not be transcoded.
#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error("malformed protobuf: {0}")]
    Malformed(String),
    #[error("{message} field {field:?}: {reason}")]
    Json {
        message: &'static str,
        field: String,
        reason: String,
    },
    #[error("no protobuf message for {api_version} {kind}")]
    UnknownKind { api_version: String, kind: String },
}

impl From<prost::DecodeError> for TranscodeError {
    fn from(err: prost::DecodeError) -> Self {
        TranscodeError::Malformed(err.to_string())
    }
}

/// The message of an object of `api_version` and `kind`: a built-in kind,
/// its list (`PodList`), a Status or a pod's Binding.
fn message_for(api_version: &str, kind: &str) -> Option<&'static Message> {
    match (api_version, kind) {
        ("v1", "Status") => return Some(&messages::META_V1_STATUS),
        ("v1", "Binding") => return Some(&messages::CORE_V1_BINDING),
        _ => {}
    }
    let found = |k: &str| {
        messages::KINDS
            .iter()
            .find(|entry| entry.api_version == api_version && entry.kind == k)
    };
    match found(kind) {
        Some(entry) => Some(entry.object),
        None => kind
            .strip_suffix("List")
            .and_then(found)
            .map(|entry| entry.list),
    }
}

/// Whether `def`'s objects can be sent as protobuf.
pub fn offered(def: &ResourceDef) -> bool {
    message_for(&def.api_version(), &def.kind).is_some()
}

/// The JSON form of a protobuf request body for `def`.
pub fn decode(def: &ResourceDef, body: &[u8]) -> Result<Value, ApiError> {
    decode_kind(&def.api_version(), &def.kind, body)
}

/// The JSON form of a protobuf request body holding an `api_version`
/// `kind` (a subresource's body: a pod's Binding); 415 for kinds without
/// a message.
pub fn decode_kind(api_version: &str, kind: &str, body: &[u8]) -> Result<Value, ApiError> {
    let message = message_for(api_version, kind).ok_or_else(|| {
        ApiError::unsupported_media_type(&format!(
            "{CONTENT_TYPE} (for {kind}; send application/json)"
        ))
    })?;
    let mut object = decode_envelope(message, body).map_err(bad)?;
    object["apiVersion"] = api_version.into();
    object["kind"] = kind.into();
    Ok(object)
}

/// The JSON form of a protobuf `DeleteOptions` body.
pub fn decode_delete_options(body: &[u8]) -> Result<Value, ApiError> {
    decode_envelope(&messages::META_V1_DELETE_OPTIONS, body).map_err(bad)
}

fn decode_envelope(message: &'static Message, body: &[u8]) -> Result<Value, TranscodeError> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| {
        TranscodeError::Malformed("the body does not start with the Kubernetes magic number".into())
    })?;
    let raw = wire::Fields::new(envelope)
        .filter_map(|field| match field {
            Ok((2, wire::Value::Len(raw))) => Some(Ok(raw)),
            Ok(_) => None,
            Err(err) => Some(Err(err)),
        })
        .last()
        .transpose()?
        .unwrap_or_default();
    decode::message(message, raw)
}

fn bad(err: TranscodeError) -> ApiError {
    ApiError::bad_request(format!(
        "the body of the request could not be decoded as protobuf: {err}"
    ))
}

/// An object, list or Status in its protobuf envelope, from its JSON form.
pub fn encode(value: &Value) -> Result<Vec<u8>, TranscodeError> {
    let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let message = message_for(api_version, kind).ok_or_else(|| TranscodeError::UnknownKind {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    })?;
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(MAGIC);
    // runtime.Unknown: typeMeta (1), raw (2), contentEncoding (3) and
    // contentType (4), the last two empty as upstream writes them.
    wire::put_nested(&mut out, 1, |out| {
        wire::put_bytes(out, 1, api_version.as_bytes());
        wire::put_bytes(out, 2, kind.as_bytes());
        Ok::<_, TranscodeError>(())
    })?;
    wire::put_nested(&mut out, 2, |out| encode::message(message, value, out))?;
    wire::put_bytes(&mut out, 3, b"");
    wire::put_bytes(&mut out, 4, b"");
    Ok(out)
}

/// One frame of a protobuf watch: a 4-byte big-endian length, then a
/// `meta.v1.WatchEvent` (without envelope) whose object is `object`, an
/// object already in its envelope.
pub fn watch_frame(event_type: &str, object: &[u8]) -> Vec<u8> {
    let mut event = Vec::with_capacity(object.len() + 32);
    wire::put_bytes(&mut event, 1, event_type.as_bytes());
    // The object is a RawExtension, whose raw (1) holds the envelope.
    let _ = wire::put_nested(&mut event, 2, |out| {
        wire::put_bytes(out, 1, object);
        Ok::<_, TranscodeError>(())
    });
    let mut frame = Vec::with_capacity(event.len() + 4);
    frame.extend_from_slice(&(event.len() as u32).to_be_bytes());
    frame.extend(event);
    frame
}

/// How a response is encoded, from the request's Accept header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Protobuf,
}

/// The media types of an Accept header with a nonzero `q`, most preferred
/// first (ties in the order given).
fn media_ranges(accept: &str) -> Vec<&str> {
    let mut ranges: Vec<(f32, &str)> = accept
        .split(',')
        .map(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let q = parts
                .find_map(|p| p.strip_prefix("q="))
                .and_then(|q| q.parse().ok())
                .unwrap_or(1.0);
            (q, media)
        })
        .filter(|(q, media)| !media.is_empty() && *q > 0.0)
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranges.into_iter().map(|(_, media)| media).collect()
}

/// Whether a client accepts protobuf and nothing else, so that even its
/// errors must be protobuf Status messages.
pub fn accepts_only_protobuf(accept: &str) -> bool {
    let ranges = media_ranges(accept);
    !ranges.is_empty() && ranges.iter().all(|media| *media == CONTENT_TYPE)
}

/// The encoding the client prefers among those `def` offers, as
/// client-go's `application/vnd.kubernetes.protobuf, */*` expects
/// protobuf and everything else JSON. A client that accepts protobuf only,
/// for a kind without messages, gets 406.
pub fn negotiate(accept: &str, def: &ResourceDef) -> Result<Encoding, ApiError> {
    let ranges = media_ranges(accept);
    if ranges.is_empty() {
        return Ok(Encoding::Json);
    }
    for media in ranges {
        match media {
            CONTENT_TYPE if offered(def) => return Ok(Encoding::Protobuf),
            CONTENT_TYPE => {}
            _ => return Ok(Encoding::Json),
        }
    }
    Err(ApiError::not_acceptable(format!(
        "only the following media types are accepted: application/json, application/yaml (for {} no {CONTENT_TYPE})",
        def.kind
    )))
}
