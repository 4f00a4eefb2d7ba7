//! Resource requests: the verb, authorization, flow control and timeout,
//! then the REST operation the verb names.

use std::convert::Infallible;
use std::sync::Arc;

use apimachinery::patch::PatchType;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::{HeaderValue, Request, Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use tokio_stream::wrappers::ReceiverStream;

use crate::authn::UserInfo;
use crate::error::ApiError;
use crate::fieldvalidation::{FieldValidation, warning_header};
use crate::metrics::{KindLabels, WatchLabels};
use crate::path::ResourcePath;
use crate::protobuf::Encoding;
use crate::query::{self, DeleteOptions, ListOptions};
use crate::rbac::Target;
use crate::registry::{ResourceDef, Snapshot};
use crate::response::{error_response, json_response, protobuf_response};
use crate::server::{Accounting, Body, Shared, openapi_documents};
use crate::strategy::WriteScope;
use crate::subresources::{bind_pod, check_subresource, scale_view, update_scale};
use crate::table;
use crate::verb::{Class, Verb};

pub(crate) fn header_str(req: &Request<Incoming>, name: header::HeaderName) -> &str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// How much of an oversized body is read and discarded before its 413 is
/// sent: an HTTP/2 client still sending when the server answers and
/// resets the stream may report the reset instead of the answer, so the
/// rest of a body of a sane size is taken first.
const OVERSIZED_DRAIN_BYTES: usize = 64 << 20;

pub(crate) async fn read_body(shared: &Shared, mut body: Incoming) -> Result<Bytes, ApiError> {
    let limit = shared.limits.max_body_bytes;
    let mut collected = BytesMut::new();
    let mut oversized = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|err| ApiError::bad_request(format!("cannot read the request body: {err}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if oversized == 0 && collected.len() + data.len() <= limit {
            collected.extend_from_slice(&data);
            continue;
        }
        oversized = oversized.max(collected.len()) + data.len();
        collected.clear();
        if oversized > OVERSIZED_DRAIN_BYTES {
            break;
        }
    }
    if oversized > 0 {
        return Err(ApiError::too_large(format!(
            "Request entity too large: limit is {limit}"
        )));
    }
    Ok(collected.freeze())
}

pub(crate) fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde::Deserialize::deserialize(&mut deserializer).map_err(|err| {
        ApiError::bad_request(format!(
            "the body of the request could not be decoded as JSON: {err}"
        ))
    })?;
    deserializer.end().map_err(|err| {
        ApiError::bad_request(format!(
            "the body of the request could not be decoded as JSON: {err}"
        ))
    })?;
    Ok(value)
}

pub(crate) async fn resource_request(
    shared: &Arc<Shared>,
    snapshot: &Arc<Snapshot>,
    req: Request<Incoming>,
    path: ResourcePath,
    user: &UserInfo,
    accounting: &mut Accounting,
) -> Result<Response<Body>, ApiError> {
    let def = snapshot
        .get(&path.group, &path.version, &path.resource)
        .ok_or_else(ApiError::no_route)?;
    if path.namespace.is_some() && !def.namespaced {
        return Err(ApiError::no_route());
    }
    if def.namespaced && path.namespace.is_none() && path.name.is_some() {
        return Err(ApiError::no_route());
    }
    let q = query::parse(req.uri().query());
    let is_watch = path.watch_prefix || q.get("watch").is_some_and(|w| w == "true" || w == "1");
    let verb = Verb::of(req.method(), path.name.is_some(), is_watch)
        .ok_or_else(|| ApiError::method_not_supported(&def.plural, req.method().as_str()))?;
    authorize_resource(shared, user, &path, verb)?;
    accounting.verb = verb.metric_label();
    accounting.group = def.group.clone();
    accounting.version = def.version.clone();
    accounting.resource = def.plural.clone();
    accounting.subresource = path.subresource.clone().unwrap_or_default();
    accounting.scope = match (&path.name, &path.namespace) {
        (Some(_), _) => "resource",
        _ if verb == Verb::Create => "resource",
        (None, Some(_)) => "namespace",
        (None, None) => "cluster",
    };
    if req.uri().query().is_some_and(|q| q.contains("dryRun=")) {
        accounting.dry_run = "All";
    }
    let (semaphore, kind) = match verb.class() {
        Class::ReadOnly => (Some(&shared.readonly), "readOnly"),
        Class::Mutating => (Some(&shared.mutating), "mutating"),
        Class::LongRunning => (None, ""),
    };
    let _permit = match semaphore {
        Some(s) => Some(s.try_acquire().map_err(|_| ApiError::too_many_requests())?),
        None => None,
    };
    let gauge = semaphore.map(|_| {
        let g = shared.metrics.inflight.get_or_create(&KindLabels {
            request_kind: kind.to_string(),
        });
        g.inc();
        g.clone()
    });
    let request = execute(shared, snapshot, def, req, path, q, verb);
    let result = if verb == Verb::Watch {
        request.await
    } else {
        tokio::time::timeout(shared.limits.request_timeout, request)
            .await
            .unwrap_or_else(|_| {
                Err(ApiError::timeout(
                    "Timeout: request did not complete within requested timeout - context deadline exceeded",
                ))
            })
    };
    if let Some(g) = gauge {
        g.dec();
    }
    result
}

/// Checks a resource request against the authorizer, with the request
/// attributes upstream derives from the path: a namespace's own path is in
/// that namespace, so namespaced Roles can grant access to it.
fn authorize_resource(
    shared: &Shared,
    user: &UserInfo,
    path: &ResourcePath,
    verb: Verb,
) -> Result<(), ApiError> {
    let name = path.name.as_deref().unwrap_or_default();
    let namespace = match path.namespace.as_deref() {
        Some(ns) => ns,
        None if path.group.is_empty() && path.resource == "namespaces" => name,
        None => "",
    };
    shared.authorizer.authorize(
        user,
        &crate::rbac::Request {
            verb: verb.as_str(),
            target: Target::Resource {
                group: &path.group,
                resource: &path.resource,
                subresource: path.subresource.as_deref().unwrap_or_default(),
                namespace,
                name,
            },
        },
    )
}

async fn execute(
    shared: &Arc<Shared>,
    snapshot: &Arc<Snapshot>,
    def: Arc<ResourceDef>,
    req: Request<Incoming>,
    path: ResourcePath,
    q: std::collections::HashMap<String, String>,
    verb: Verb,
) -> Result<Response<Body>, ApiError> {
    let api = &shared.api;
    let ns = path.namespace.as_deref();
    let accept = header_str(&req, header::ACCEPT);
    let as_table = table::wants_table(accept);
    let encoding = match as_table {
        true => Encoding::Json,
        false => crate::protobuf::negotiate(accept, &def)?,
    };
    let content_type = header_str(&req, header::CONTENT_TYPE).to_string();
    let dry_run = q.contains_key("dryRun");
    let sub = path.subresource.as_deref();
    if verb == Verb::Get && sub == Some("log") && def.group.is_empty() && def.plural == "pods" {
        return crate::logs::pod_log(api, ns, path.name.as_deref().unwrap_or_default(), &q).await;
    }
    check_subresource(&def, sub, verb)?;
    let name = path.name.clone().unwrap_or_default();
    let render_one = |object: &crate::watchcache::CachedObject, code: u16| -> Response<Body> {
        if as_table {
            let view = crate::convert::view(&def, object);
            json_response(code, table::build(&def, &[view], None, true).to_string())
        } else if encoding == Encoding::Protobuf {
            match crate::convert::render_protobuf(&def, object) {
                Ok(bytes) => protobuf_response(code, bytes),
                Err(err) => error_response(&err),
            }
        } else {
            json_response(code, api.render(&def, object))
        }
    };
    match verb {
        Verb::Get => {
            let object = api.get(&def, ns, &name).await?;
            match sub {
                Some("scale") => Ok(json_response(
                    200,
                    scale_view(&def, &object.value).to_string(),
                )),
                _ => Ok(render_one(&object, 200)),
            }
        }
        Verb::List => {
            let opts = ListOptions::from_query(&q)?;
            let bytes = api.list(&def, ns, &opts).await?;
            if as_table {
                let list: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                let items = list
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let table = table::build(&def, &items, list.get("metadata").cloned(), true);
                Ok(json_response(200, table.to_string()))
            } else if encoding == Encoding::Protobuf {
                Ok(protobuf_response(200, list_protobuf(&bytes)?))
            } else {
                Ok(json_response(200, bytes))
            }
        }
        Verb::Watch => {
            let opts = ListOptions::from_query(&q)?;
            let labels = WatchLabels {
                group: def.group.clone(),
                version: def.version.clone(),
                kind: def.kind.clone(),
            };
            let gauge = shared.metrics.watchers.get_or_create(&labels).clone();
            gauge.inc();
            let on_end = move || {
                gauge.dec();
            };
            let stream = crate::watch::start(
                api.clone(),
                def.clone(),
                path.namespace.clone(),
                opts,
                match (as_table, encoding) {
                    (true, _) => crate::watch::Format::Table,
                    (false, Encoding::Protobuf) => crate::watch::Format::Protobuf,
                    (false, Encoding::Json) => crate::watch::Format::Json,
                },
                &shared.watch,
                on_end,
            )
            .await?;
            let events = shared.metrics.watch_events.get_or_create(&labels).clone();
            let body = StreamBody::new(ReceiverStream::new(stream.frames).map(move |b| {
                events.inc();
                Ok::<_, Infallible>(Frame::data(b))
            }));
            let mut response = Response::new(BodyExt::boxed(body));
            let content_type = match encoding {
                Encoding::Protobuf if !as_table => crate::protobuf::WATCH_CONTENT_TYPE,
                _ => "application/json;stream=watch",
            };
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            Ok(response)
        }
        Verb::Create => {
            let body = read_body(shared, req.into_body()).await?;
            match (path.name.as_deref(), sub) {
                (Some(name), Some("binding")) => {
                    let binding = if is_protobuf(&content_type) {
                        crate::protobuf::decode_kind("v1", "Binding", &body)?
                    } else {
                        parse_json(&body)?
                    };
                    bind_pod(api, &def, ns, name, &binding).await?;
                    Ok(json_response(201, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}).to_string()))
                }
                (Some(_), _) => Err(ApiError::method_not_supported(&def.plural, "create")),
                (None, _) => {
                    let mut obj = parse_body(&def, &content_type, &body)?;
                    let warnings = validate_fields(shared, snapshot, &def, &q, &mut obj)?;
                    let object = api.create(&def, ns, obj, dry_run).await?;
                    Ok(with_warnings(render_one(&object, 201), &warnings))
                }
            }
        }
        Verb::Update => {
            let body = read_body(shared, req.into_body()).await?;
            if sub == Some("scale") {
                // A Scale has no message in the table: JSON only.
                if is_protobuf(&content_type) {
                    return Err(ApiError::unsupported_media_type(&content_type));
                }
                let obj = parse_json(&body)?;
                let written = update_scale(api, &def, ns, &name, |scale| {
                    *scale = obj.clone();
                    Ok(())
                })
                .await?;
                return Ok(json_response(
                    200,
                    scale_view(&def, &written.object.value).to_string(),
                ));
            }
            let mut obj = parse_body(&def, &content_type, &body)?;
            let scope = write_scope(sub);
            let warnings = validate_fields(shared, snapshot, &def, &q, &mut obj)?;
            let written = api.update(&def, ns, &name, obj, scope, dry_run).await?;
            let code = if written.created { 201 } else { 200 };
            Ok(with_warnings(render_one(&written.object, code), &warnings))
        }
        Verb::Patch => {
            let body = read_body(shared, req.into_body()).await?;
            let media = content_type.split(';').next().unwrap_or("").trim();
            let patch_type = PatchType::from_content_type(media)
                .ok_or_else(|| ApiError::unsupported_media_type(media))?;
            if patch_type == PatchType::ApplyPatch {
                return Err(ApiError::unsupported_media_type(media));
            }
            if sub == Some("scale") {
                let written = update_scale(api, &def, ns, &name, |scale| {
                    let meta =
                        apimachinery::patch::PatchMeta::for_kind("autoscaling", "v1", "Scale");
                    *scale = apimachinery::patch::apply(patch_type, scale, &body, meta.as_ref())
                        .map_err(|err| ApiError::bad_request(err.to_string()))?;
                    Ok(())
                })
                .await?;
                return Ok(json_response(
                    200,
                    scale_view(&def, &written.object.value).to_string(),
                ));
            }
            // A merge patch has the object's shape, so its undeclared
            // fields are found (and dropped) like an object's; a JSON patch
            // names paths, which the patched object's own checks cover. A
            // body that is no JSON gets the patch's own error below.
            let merge = matches!(
                patch_type,
                PatchType::MergePatch | PatchType::StrategicMergePatch
            );
            let (body, warnings) = match parse_json(&body) {
                Ok(mut patch) if merge => {
                    let warnings = validate_fields(shared, snapshot, &def, &q, &mut patch)?;
                    (Bytes::from(patch.to_string()), warnings)
                }
                _ => (body, Vec::new()),
            };
            let scope = write_scope(sub);
            let written = api
                .patch(&def, ns, &name, patch_type, &body, scope, dry_run)
                .await?;
            Ok(with_warnings(render_one(&written.object, 200), &warnings))
        }
        Verb::Delete => {
            let body = read_body(shared, req.into_body()).await?;
            let opts = DeleteOptions::from_request(&q, &delete_options(&content_type, &body)?)?;
            let object = api.delete(&def, ns, &name, &opts).await?;
            Ok(render_one(&object, 200))
        }
        Verb::DeleteCollection => {
            let body = read_body(shared, req.into_body()).await?;
            let opts = DeleteOptions::from_request(&q, &delete_options(&content_type, &body)?)?;
            let list_opts = ListOptions::from_query(&q)?;
            let deleted = api.delete_collection(&def, ns, &list_opts, &opts).await?;
            let revision = api.store.current_revision().await?;
            Ok(json_response(
                200,
                api.encode_items(&def, deleted, revision),
            ))
        }
    }
}

fn is_protobuf(content_type: &str) -> bool {
    content_type.starts_with(crate::protobuf::CONTENT_TYPE)
}

/// A create or update body, JSON or protobuf.
fn parse_body(def: &ResourceDef, content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    if is_protobuf(content_type) {
        crate::protobuf::decode(def, body)
    } else {
        parse_json(body)
    }
}

/// A DeleteOptions body, JSON or protobuf, as JSON bytes; empty when the
/// request has none.
fn delete_options(content_type: &str, body: &Bytes) -> Result<Bytes, ApiError> {
    if is_protobuf(content_type) && !body.is_empty() {
        let options = crate::protobuf::decode_delete_options(body)?;
        Ok(Bytes::from(options.to_string()))
    } else {
        Ok(body.clone())
    }
}

/// A JSON list response re-encoded as protobuf.
fn list_protobuf(json: &[u8]) -> Result<Bytes, ApiError> {
    let list: Value =
        serde_json::from_slice(json).map_err(|e| ApiError::internal(e.to_string()))?;
    crate::protobuf::encode(&list)
        .map(Bytes::from)
        .map_err(|err| ApiError::internal(err.to_string()))
}

/// The part of an object a write through `sub` may change.
fn write_scope(sub: Option<&str>) -> WriteScope {
    match sub {
        Some("status") => WriteScope::Status,
        _ => WriteScope::Main,
    }
}

/// Applies the request's `fieldValidation` to a body of `def`'s kind: its
/// undeclared fields are dropped, and reported as warnings or refused.
fn validate_fields(
    shared: &Shared,
    snapshot: &Arc<Snapshot>,
    def: &ResourceDef,
    q: &std::collections::HashMap<String, String>,
    obj: &mut Value,
) -> Result<Vec<String>, ApiError> {
    let validation = FieldValidation::from_query(q)?;
    let docs = openapi_documents(shared, snapshot);
    validation.apply(&docs, def, obj)
}

/// Adds one `Warning` header per warning.
fn with_warnings(mut response: Response<Body>, warnings: &[String]) -> Response<Body> {
    for warning in warnings {
        if let Some(value) = warning_header(warning) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}
