//! The HTTPS front end: TLS, HTTP/1.1 and HTTP/2, authentication, flow
//! control, metrics, and dispatch of each request to discovery, OpenAPI or
//! the REST layer.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apimachinery::patch::PatchType;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::api::Api;
use crate::authn::{Authenticated, Authenticator, UserInfo};
use crate::error::ApiError;
use crate::metrics::{DurationLabels, KindLabels, Metrics, RequestLabels, WatchLabels};
use crate::path::{ResourcePath, Route, route};
use crate::query::{self, DeleteOptions, ListOptions};
use crate::rbac::{Authorizer, Target};
use crate::registry::{ResourceDef, Snapshot};
use crate::strategy::WriteScope;
use crate::watch::WatchSettings;
use crate::{discovery, table};

pub type Body = BoxBody<Bytes, Infallible>;

/// The Kubernetes version the server reports; within one minor of the
/// kubectl the project tests with (v1.32) and matching the k8s-openapi
/// feature the clients are built with.
pub const KUBERNETES_VERSION: (&str, &str) = ("1", "33");

/// Limits of the front end.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Concurrent non-mutating requests (upstream --max-requests-inflight).
    pub max_readonly_inflight: usize,
    /// Concurrent mutating requests (upstream
    /// --max-mutating-requests-inflight).
    pub max_mutating_inflight: usize,
    /// Largest request body accepted (upstream: 3 MiB).
    pub max_body_bytes: usize,
    /// The longest a non-watch request may take, reading its body included
    /// (upstream --request-timeout: 1 minute); it is then answered 504.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_readonly_inflight: 400,
            max_mutating_inflight: 200,
            max_body_bytes: 3 * 1024 * 1024,
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// Everything a request handler needs.
pub struct Shared {
    pub api: Arc<Api>,
    pub metrics: Metrics,
    pub authenticator: Authenticator,
    pub authorizer: Arc<Authorizer>,
    pub limits: Limits,
    pub watch: WatchSettings,
    pub server_address: String,
    readonly: Semaphore,
    mutating: Semaphore,
    openapi: Mutex<Option<(Arc<Snapshot>, Arc<openapi::Documents>)>>,
}

impl Shared {
    pub fn new(
        api: Arc<Api>,
        authenticator: Authenticator,
        authorizer: Arc<Authorizer>,
        limits: Limits,
        watch: WatchSettings,
        server_address: String,
    ) -> Shared {
        Shared {
            readonly: Semaphore::new(limits.max_readonly_inflight),
            mutating: Semaphore::new(limits.max_mutating_inflight),
            api,
            metrics: Metrics::new(),
            authenticator,
            authorizer,
            limits,
            watch,
            server_address,
            openapi: Mutex::new(None),
        }
    }
}

/// Accepts connections until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        let mut conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let Ok(Ok(stream)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let certificate_user = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(crate::authn::certificate_user)
                .map(Arc::new);
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                let certificate_user = certificate_user.clone();
                async move { Ok::<_, Infallible>(handle(shared, req, certificate_user).await) }
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http2()
                .max_concurrent_streams(1000)
                .initial_stream_window_size(1 << 20)
                .initial_connection_window_size(4 << 20);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = conn_shutdown.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn json_response(code: u16, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn error_response(err: &ApiError) -> Response<Body> {
    let mut response = json_response(err.code, err.to_status().to_string());
    if let Some(seconds) = err.retry_after
        && let Ok(v) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

fn text_response(body: String, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(full(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Labels of one request for the metrics, filled in as it is understood.
struct Accounting {
    verb: &'static str,
    group: String,
    version: String,
    resource: String,
    subresource: String,
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    certificate_user: Option<Arc<UserInfo>>,
) -> Response<Body> {
    let started = Instant::now();
    let mut accounting = Accounting {
        verb: "",
        group: String::new(),
        version: String::new(),
        resource: String::new(),
        subresource: String::new(),
    };
    let response = match dispatch(&shared, req, certificate_user, &mut accounting).await {
        Ok(response) => response,
        Err(err) => error_response(&err),
    };
    if !accounting.verb.is_empty() && accounting.verb != "WATCH" {
        let labels = DurationLabels {
            verb: accounting.verb.to_string(),
            group: accounting.group.clone(),
            version: accounting.version.clone(),
            resource: accounting.resource.clone(),
            subresource: accounting.subresource.clone(),
        };
        shared
            .metrics
            .durations
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
    }
    if !accounting.verb.is_empty() {
        shared
            .metrics
            .requests
            .get_or_create(&RequestLabels {
                verb: accounting.verb.to_string(),
                group: accounting.group,
                version: accounting.version,
                resource: accounting.resource,
                subresource: accounting.subresource,
                code: response.status().as_u16().to_string(),
            })
            .inc();
    }
    response
}

/// The user of a request; anonymous requests are refused except for
/// health checks, which answer anonymous probes.
fn authenticate(
    shared: &Shared,
    req: &Request<Incoming>,
    route: Option<&Route>,
    certificate_user: Option<Arc<UserInfo>>,
) -> Result<Arc<UserInfo>, ApiError> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match shared
        .authenticator
        .authenticate(authorization, certificate_user.as_ref())
    {
        Authenticated::User(user) => Ok(user),
        Authenticated::Anonymous if route == Some(&Route::Health) => {
            Ok(Arc::new(UserInfo::anonymous()))
        }
        Authenticated::Anonymous | Authenticated::InvalidToken => Err(ApiError::unauthorized()),
    }
}

async fn dispatch(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    certificate_user: Option<Arc<UserInfo>>,
    accounting: &mut Accounting,
) -> Result<Response<Body>, ApiError> {
    let route = route(req.uri().path());
    let user = authenticate(shared, &req, route.as_ref(), certificate_user)?;
    let Some(route) = route else {
        return Err(ApiError::no_route());
    };
    if !matches!(route, Route::Resource(_) | Route::Health) {
        let verb = req.method().as_str().to_ascii_lowercase();
        let path = req.uri().path();
        shared.authorizer.authorize(
            &user,
            &crate::rbac::Request {
                verb: &verb,
                target: Target::NonResource { path },
            },
        )?;
    }
    let snapshot = shared.api.registry.snapshot();
    let json_value = |v: Value| Ok(json_response(200, v.to_string()));
    match route {
        Route::Health => Ok(text_response("ok".into(), "text/plain; charset=utf-8")),
        Route::Version => json_value(version_info()),
        Route::Metrics => Ok(text_response(
            shared.metrics.encode(),
            "text/plain; version=0.0.4; charset=utf-8",
        )),
        Route::CoreVersions => json_value(discovery::core_versions(&shared.server_address)),
        Route::Groups => json_value(discovery::groups(&snapshot)),
        Route::Group(group) => discovery::group(&snapshot, &group)
            .map(|v| json_response(200, v.to_string()))
            .ok_or_else(ApiError::no_route),
        Route::GroupVersion { group, version } => {
            discovery::resource_list(&snapshot, &group, &version)
                .map(|v| json_response(200, v.to_string()))
                .ok_or_else(ApiError::no_route)
        }
        Route::OpenApiV2 => {
            let docs = openapi_documents(shared, &snapshot)?;
            let accept = header_str(&req, header::ACCEPT);
            if accept.contains("protobuf") {
                let mut response = Response::new(full(docs.v2_protobuf()));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                    ),
                );
                Ok(response)
            } else {
                Ok(json_response(200, docs.v2_json()))
            }
        }
        Route::OpenApiV3Root => Ok(json_response(
            200,
            openapi_documents(shared, &snapshot)?.v3_root(),
        )),
        Route::OpenApiV3(path) => {
            let docs = openapi_documents(shared, &snapshot)?;
            let (bytes, _hash) = docs
                .v3_group_version(&path)
                .ok_or_else(ApiError::no_route)?;
            Ok(json_response(200, bytes))
        }
        Route::Resource(path) => {
            resource_request(shared, &snapshot, req, path, &user, accounting).await
        }
    }
}

fn version_info() -> Value {
    let (major, minor) = KUBERNETES_VERSION;
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": format!("v{major}.{minor}.0-kstress.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn openapi_documents(
    shared: &Shared,
    snapshot: &Arc<Snapshot>,
) -> Result<Arc<openapi::Documents>, ApiError> {
    let mut cached = shared.openapi.lock();
    if let Some((built_from, docs)) = cached.as_ref()
        && Arc::ptr_eq(built_from, snapshot)
    {
        return Ok(docs.clone());
    }
    let resources: Vec<openapi::Resource> = snapshot
        .all()
        .map(|d| openapi::Resource {
            group: d.group.clone(),
            version: d.version.clone(),
            kind: d.kind.clone(),
            plural: d.plural.clone(),
            namespaced: d.namespaced,
            subresources: d.subresources().iter().map(|s| s.to_string()).collect(),
            verbs: d.verbs().iter().map(|s| s.to_string()).collect(),
            schema: match &d.schema {
                Some(schema) => openapi::Schema::Custom(schema.clone()),
                None if d.behavior == crate::registry::Behavior::CustomResource => {
                    openapi::Schema::Custom(
                        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
                    )
                }
                None => openapi::Schema::Builtin,
            },
        })
        .collect();
    let docs = Arc::new(
        openapi::Documents::build(&resources)
            .map_err(|err| ApiError::internal(format!("building OpenAPI documents: {err}")))?,
    );
    *cached = Some((snapshot.clone(), docs.clone()));
    Ok(docs)
}

fn header_str(req: &Request<Incoming>, name: header::HeaderName) -> &str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn read_body(shared: &Shared, body: Incoming) -> Result<Bytes, ApiError> {
    match Limited::new(body, shared.limits.max_body_bytes)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::too_large(format!(
                "Request entity too large: limit is {}",
                shared.limits.max_body_bytes
            )))
        }
        Err(err) => Err(ApiError::bad_request(format!(
            "cannot read the request body: {err}"
        ))),
    }
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
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

/// The kind of a request for flow control.
enum Class {
    ReadOnly,
    Mutating,
    LongRunning,
}

async fn resource_request(
    shared: &Arc<Shared>,
    snapshot: &Snapshot,
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
    let verb: &'static str = match (req.method().clone(), path.name.is_some()) {
        (Method::GET, true) => "GET",
        (Method::GET, false) if is_watch => "WATCH",
        (Method::GET, false) => "LIST",
        (Method::POST, _) => "POST",
        (Method::PUT, true) => "PUT",
        (Method::PATCH, true) => "PATCH",
        (Method::DELETE, true) => "DELETE",
        (Method::DELETE, false) => "DELETECOLLECTION",
        (method, _) => {
            return Err(ApiError::method_not_supported(&def.plural, method.as_str()));
        }
    };
    authorize_resource(shared, user, &path, verb)?;
    accounting.verb = verb;
    accounting.group = def.group.clone();
    accounting.version = def.version.clone();
    accounting.resource = def.plural.clone();
    accounting.subresource = path.subresource.clone().unwrap_or_default();
    let class = match verb {
        "WATCH" => Class::LongRunning,
        "GET" | "LIST" => Class::ReadOnly,
        _ => Class::Mutating,
    };
    let (semaphore, kind) = match class {
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
    let request = execute(shared, def, req, path, q, verb);
    let result = if verb == "WATCH" {
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
    verb: &str,
) -> Result<(), ApiError> {
    let name = path.name.as_deref().unwrap_or_default();
    let namespace = match path.namespace.as_deref() {
        Some(ns) => ns,
        None if path.group.is_empty() && path.resource == "namespaces" => name,
        None => "",
    };
    let verb = match verb {
        "GET" => "get",
        "LIST" => "list",
        "WATCH" => "watch",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "deletecollection",
    };
    shared.authorizer.authorize(
        user,
        &crate::rbac::Request {
            verb,
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
    def: Arc<ResourceDef>,
    req: Request<Incoming>,
    path: ResourcePath,
    q: std::collections::HashMap<String, String>,
    verb: &'static str,
) -> Result<Response<Body>, ApiError> {
    let api = &shared.api;
    let ns = path.namespace.as_deref();
    let as_table = table::wants_table(header_str(&req, header::ACCEPT));
    let content_type = header_str(&req, header::CONTENT_TYPE).to_string();
    let dry_run = q.contains_key("dryRun");
    let sub = path.subresource.as_deref();
    if verb == "GET" && sub == Some("log") && def.group.is_empty() && def.plural == "pods" {
        return crate::logs::pod_log(api, ns, path.name.as_deref().unwrap_or_default(), &q).await;
    }
    check_subresource(&def, sub, verb)?;
    let name = path.name.clone().unwrap_or_default();
    let render_one = |object: &crate::watchcache::CachedObject, code: u16| -> Response<Body> {
        if as_table {
            let view = crate::convert::view(&def, object);
            json_response(code, table::build(&def, &[view], None, true).to_string())
        } else {
            json_response(code, api.render(&def, object))
        }
    };
    match verb {
        "GET" => {
            let object = api.get(&def, ns, &name).await?;
            match sub {
                Some("scale") => Ok(json_response(
                    200,
                    scale_view(&def, &object.value).to_string(),
                )),
                _ => Ok(render_one(&object, 200)),
            }
        }
        "LIST" => {
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
            } else {
                Ok(json_response(200, bytes))
            }
        }
        "WATCH" => {
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
                as_table,
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
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json;stream=watch"),
            );
            Ok(response)
        }
        "POST" => {
            let body = read_body(shared, req.into_body()).await?;
            match (path.name.as_deref(), sub) {
                (Some(name), Some("binding")) => {
                    let binding = parse_json(&body)?;
                    bind_pod(api, &def, ns, name, &binding).await?;
                    Ok(json_response(201, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}).to_string()))
                }
                (Some(_), _) => Err(ApiError::method_not_supported(&def.plural, "create")),
                (None, _) => {
                    let obj = if content_type.starts_with(crate::protobuf::CONTENT_TYPE) {
                        crate::protobuf::decode(&def, &body)?
                    } else {
                        parse_json(&body)?
                    };
                    let object = api.create(&def, ns, obj, dry_run).await?;
                    Ok(render_one(&object, 201))
                }
            }
        }
        "PUT" => {
            let body = read_body(shared, req.into_body()).await?;
            let obj = parse_json(&body)?;
            let written = match sub {
                Some("scale") => {
                    update_scale(api, &def, ns, &name, |scale| {
                        *scale = obj.clone();
                        Ok(())
                    })
                    .await?
                }
                Some("status") => {
                    api.update(&def, ns, &name, obj, WriteScope::Status, dry_run)
                        .await?
                }
                _ => {
                    api.update(&def, ns, &name, obj, WriteScope::Main, dry_run)
                        .await?
                }
            };
            if sub == Some("scale") {
                return Ok(json_response(
                    200,
                    scale_view(&def, &written.object.value).to_string(),
                ));
            }
            Ok(render_one(
                &written.object,
                if written.created { 201 } else { 200 },
            ))
        }
        "PATCH" => {
            let body = read_body(shared, req.into_body()).await?;
            let media = content_type.split(';').next().unwrap_or("").trim();
            let patch_type = PatchType::from_content_type(media)
                .ok_or_else(|| ApiError::unsupported_media_type(media))?;
            if patch_type == PatchType::ApplyPatch {
                return Err(ApiError::unsupported_media_type(media));
            }
            let written = match sub {
                Some("scale") => {
                    update_scale(api, &def, ns, &name, |scale| {
                        let meta =
                            apimachinery::patch::PatchMeta::for_kind("autoscaling", "v1", "Scale");
                        *scale =
                            apimachinery::patch::apply(patch_type, scale, &body, meta.as_ref())
                                .map_err(|err| ApiError::bad_request(err.to_string()))?;
                        Ok(())
                    })
                    .await?
                }
                Some("status") => {
                    api.patch(
                        &def,
                        ns,
                        &name,
                        patch_type,
                        &body,
                        WriteScope::Status,
                        dry_run,
                    )
                    .await?
                }
                _ => {
                    api.patch(
                        &def,
                        ns,
                        &name,
                        patch_type,
                        &body,
                        WriteScope::Main,
                        dry_run,
                    )
                    .await?
                }
            };
            if sub == Some("scale") {
                return Ok(json_response(
                    200,
                    scale_view(&def, &written.object.value).to_string(),
                ));
            }
            Ok(render_one(&written.object, 200))
        }
        "DELETE" => {
            let body = read_body(shared, req.into_body()).await?;
            let opts = DeleteOptions::from_request(&q, &body)?;
            let object = api.delete(&def, ns, &name, &opts).await?;
            Ok(render_one(&object, 200))
        }
        "DELETECOLLECTION" => {
            let body = read_body(shared, req.into_body()).await?;
            let opts = DeleteOptions::from_request(&q, &body)?;
            let list_opts = ListOptions::from_query(&q)?;
            let deleted = api.delete_collection(&def, ns, &list_opts, &opts).await?;
            let revision = api.store.current_revision().await?;
            Ok(json_response(
                200,
                api.encode_items(&def, deleted, revision),
            ))
        }
        _ => Err(ApiError::method_not_supported(&def.plural, verb)),
    }
}

/// Rejects subresources the resource does not have, or verbs they do not
/// support.
fn check_subresource(def: &ResourceDef, sub: Option<&str>, verb: &str) -> Result<(), ApiError> {
    let Some(sub) = sub else {
        return Ok(());
    };
    let allowed: &[&str] = match sub {
        "status" if def.status_subresource => &["GET", "PUT", "PATCH"],
        "scale" if def.scale.is_some() => &["GET", "PUT", "PATCH"],
        "binding" if def.binding => &["POST"],
        _ => return Err(ApiError::no_route()),
    };
    if allowed.contains(&verb) {
        Ok(())
    } else {
        Err(ApiError::method_not_supported(
            &format!("{}/{sub}", def.plural),
            verb,
        ))
    }
}

fn pointer_of(path: &str) -> String {
    format!("/{}", path.trim_start_matches('.').replace('.', "/"))
}

/// The autoscaling/v1 Scale of a scalable object.
fn scale_view(def: &ResourceDef, obj: &Value) -> Value {
    let Some(scale) = &def.scale else {
        return Value::Null;
    };
    let spec = obj
        .pointer(&pointer_of(&scale.spec_replicas_path))
        .cloned()
        .unwrap_or(0.into());
    let status = obj
        .pointer(&pointer_of(&scale.status_replicas_path))
        .cloned()
        .unwrap_or(0.into());
    let selector = match scale.label_selector_path.as_deref() {
        Some(".status.selector") | None
            if def.behavior != crate::registry::Behavior::CustomResource =>
        {
            obj.pointer("/spec/selector")
                .and_then(|s| apimachinery::labels::LabelSelector::from_label_selector_json(s).ok())
                .map(|s| s.to_string())
        }
        Some(path) => obj
            .pointer(&pointer_of(path))
            .and_then(Value::as_str)
            .map(str::to_string),
        None => None,
    };
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut status_obj = json!({"replicas": status});
    if let Some(selector) = selector {
        status_obj["selector"] = selector.into();
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": spec},
        "status": status_obj,
    })
}

/// Applies a change to an object's Scale and writes its replicas back.
async fn update_scale(
    api: &Api,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    change: impl Fn(&mut Value) -> Result<(), ApiError>,
) -> Result<crate::api::Written, ApiError> {
    let Some(spec) = &def.scale else {
        return Err(ApiError::no_route());
    };
    let key = def.key(ns, name);
    let spec_pointer = pointer_of(&spec.spec_replicas_path);
    api.update_with(def, &key, |obj| {
        let mut scale = scale_view(def, obj);
        let current_rv = scale.pointer("/metadata/resourceVersion").cloned();
        change(&mut scale)?;
        let requested_rv = scale.pointer("/metadata/resourceVersion").cloned();
        if requested_rv
            .as_ref()
            .is_some_and(|rv| !rv.is_null() && rv.as_str() != Some(""))
            && requested_rv != current_rv
        {
            return Err(ApiError::conflict(crate::error::Subject::new(
                &def.group,
                &def.plural,
                name,
            )));
        }
        let replicas = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .ok_or_else(|| ApiError::bad_request("spec.replicas must be an integer"))?;
        if replicas < 0 {
            return Err(ApiError::invalid(
                "Scale",
                crate::error::Subject::new("autoscaling", "Scale", name),
                vec![crate::error::FieldError::invalid(
                    "spec.replicas",
                    &replicas.to_string(),
                    "must be greater than or equal to 0",
                )],
            ));
        }
        set_pointer(obj, &spec_pointer, replicas.into());
        Ok(())
    })
    .await
}

fn set_pointer(obj: &mut Value, pointer: &str, value: Value) {
    let mut current = obj;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            if let Some(map) = current.as_object_mut() {
                map.insert(part.to_string(), value);
            }
            return;
        }
        if !current.get(*part).is_some_and(Value::is_object) {
            current[*part] = json!({});
        }
        current = &mut current[*part];
    }
}

/// pods/binding: assigns a pending pod to a node, once.
async fn bind_pod(
    api: &Api,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
    binding: &Value,
) -> Result<(), ApiError> {
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                "Binding",
                crate::error::Subject::new("", "Binding", name),
                vec![crate::error::FieldError::required("target.name")],
            )
        })?
        .to_string();
    let key = def.key(ns, name);
    let subject = crate::error::Subject::new(&def.group, "pods/binding", name);
    let now = crate::strategy::now_rfc3339();
    api.update_with(def, &key, |pod| {
        if pod.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::conflict_with(subject.clone(), format!("pod {name} is being deleted, cannot be assigned to a host")));
        }
        if let Some(existing) = pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            return Err(ApiError::conflict_with(
                subject.clone(),
                format!("pod {name} is already assigned to node {existing:?}"),
            ));
        }
        pod["spec"]["nodeName"] = node.clone().into();
        let conditions = pod["status"]
            .as_object_mut()
            .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
        if let Some(Value::Array(conditions)) = conditions {
            conditions.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
            conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
        }
        Ok(())
    })
    .await?;
    Ok(())
}
