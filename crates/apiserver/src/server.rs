//! The HTTPS front end: TLS, HTTP/1.1 and HTTP/2, authentication,
//! metrics, and dispatch of each request to discovery, OpenAPI or the
//! resource requests of `crate::rest`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::api::Api;
use crate::authn::{Authenticated, Authenticator, UserInfo};
use crate::error::ApiError;
use crate::metrics::{DurationLabels, Metrics, RequestLabels};
use crate::path::{Route, route};
use crate::rbac::{Authorizer, Target};
use crate::registry::Snapshot;
use crate::response::{error_response_in, full, json_response, text_response};
use crate::rest::{header_str, resource_request};
use crate::watch::WatchSettings;
use crate::{discovery, health};

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
    pub(crate) readonly: Semaphore,
    pub(crate) mutating: Semaphore,
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

/// Labels of one request for the metrics, filled in as it is understood.
pub(crate) struct Accounting {
    pub verb: &'static str,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    /// kube-apiserver's `scope` label: `resource`, `namespace` or
    /// `cluster`.
    pub scope: &'static str,
    /// The request's `dryRun` value (`All`), empty without one.
    pub dry_run: &'static str,
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
        scope: "",
        dry_run: "",
    };
    let protobuf_only = crate::protobuf::accepts_only_protobuf(
        req.headers()
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
    );
    let response = match dispatch(&shared, req, certificate_user, &mut accounting).await {
        Ok(response) => response,
        Err(err) => error_response_in(&err, protobuf_only),
    };
    if !accounting.verb.is_empty() && accounting.verb != "WATCH" {
        let labels = DurationLabels {
            verb: accounting.verb.to_string(),
            dry_run: accounting.dry_run.to_owned(),
            group: accounting.group.clone(),
            version: accounting.version.clone(),
            resource: accounting.resource.clone(),
            subresource: accounting.subresource.clone(),
            scope: accounting.scope.to_owned(),
            component: "apiserver".to_owned(),
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
        Route::Health => {
            health::respond(&*shared.api.store, req.uri().path(), req.uri().query()).await
        }
        Route::Version => json_value(version_info()),
        Route::Metrics => Ok(text_response(
            shared.metrics.encode(),
            "text/plain; version=0.0.4; charset=utf-8",
        )),
        Route::CoreVersions | Route::Groups => {
            let core = route == Route::CoreVersions;
            match discovery::aggregated_version(header_str(&req, header::ACCEPT)) {
                Some(media) => Ok(discovery_response(
                    discovery::aggregated(&snapshot, core, media),
                    media,
                )),
                None if core => json_value(discovery::core_versions(&shared.server_address)),
                None => json_value(discovery::groups(&snapshot)),
            }
        }
        Route::Group(group) => discovery::group(&snapshot, &group)
            .map(|v| json_response(200, v.to_string()))
            .ok_or_else(ApiError::no_route),
        Route::GroupVersion { group, version } => {
            discovery::resource_list(&snapshot, &group, &version)
                .map(|v| json_response(200, v.to_string()))
                .ok_or_else(ApiError::no_route)
        }
        Route::OpenApiV2 => {
            let docs = openapi_documents(shared, &snapshot);
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
            openapi_documents(shared, &snapshot).v3_root(),
        )),
        Route::OpenApiV3(path) => {
            let docs = openapi_documents(shared, &snapshot);
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

/// An aggregated discovery document, in the media type asked for; `Vary`
/// tells caches that the same path answers differently per Accept header.
fn discovery_response(document: Value, media: &'static str) -> Response<Body> {
    let mut response = json_response(200, document.to_string());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    response
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

pub(crate) fn openapi_documents(
    shared: &Shared,
    snapshot: &Arc<Snapshot>,
) -> Arc<openapi::Documents> {
    let mut cached = shared.openapi.lock();
    if let Some((built_from, docs)) = cached.as_ref()
        && Arc::ptr_eq(built_from, snapshot)
    {
        return docs.clone();
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
            schema: d.schema.clone(),
        })
        .collect();
    let docs = Arc::new(openapi::Documents::build(&resources));
    *cached = Some((snapshot.clone(), docs.clone()));
    docs
}
