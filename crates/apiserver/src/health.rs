//! `/healthz`, `/livez` and `/readyz`, answered as kube-apiserver answers
//! them.
//!
//! Each endpoint runs its checks: `ping`, which passes whenever the server
//! answers at all, and `etcd`, which asks the store for its current revision
//! within [`STORE_CHECK_TIMEOUT`]; the name is upstream's whatever the
//! backend, so that probes and dashboards written for kube-apiserver read
//! it. All checks passing is `ok`, or with `?verbose` one `[+]<check> ok`
//! line per check and `<endpoint> check passed`. Any check failing is a 500
//! listing every check, the failed ones as `[-]<check> failed: reason
//! withheld` (the reason goes to the server's info log, not to anonymous
//! probes), and `<endpoint> check failed`. `?exclude=<check>` skips a check;
//! `/<endpoint>/<check>` runs one check alone.

use std::fmt::Write as _;
use std::time::Duration;

use http::{HeaderValue, Response, StatusCode, header};
use store::Store;

use crate::error::ApiError;
use crate::response::full;
use crate::server::Body;

/// How long the store may take to answer the `etcd` check: kube-apiserver's
/// `--etcd-healthcheck-timeout` default.
pub(crate) const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The checks of every endpoint, in the order they are listed.
const CHECKS: [&str; 2] = ["ping", "etcd"];

/// Answers a health request for `path` (e.g. `/readyz`, `/livez/etcd`),
/// with the request's `query`. An unknown check is a 404.
pub(crate) async fn respond(
    store: &dyn Store,
    path: &str,
    query: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let trimmed = path.trim_end_matches('/');
    let (endpoint, check) = match trimmed.trim_start_matches('/').split_once('/') {
        Some((endpoint, check)) => (endpoint, Some(check)),
        None => (trimmed.trim_start_matches('/'), None),
    };
    if let Some(check) = check {
        if !CHECKS.contains(&check) {
            return Err(ApiError::no_route());
        }
        return Ok(match run(store, check).await {
            Ok(()) => text(StatusCode::OK, "ok".to_owned()),
            Err(reason) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal server error: {reason}\n"),
            ),
        });
    }
    let params: Vec<(&str, &str)> = query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .collect();
    let verbose = params.iter().any(|(key, _)| *key == "verbose");
    let excluded = |check: &str| params.contains(&("exclude", check));
    let mut listing = String::new();
    let mut failed = false;
    for check in CHECKS {
        if excluded(check) {
            let _ = writeln!(listing, "[+]{check} excluded: ok");
            continue;
        }
        match run(store, check).await {
            Ok(()) => {
                let _ = writeln!(listing, "[+]{check} ok");
            }
            Err(reason) => {
                // Upstream logs the reason at its verbose level (-v 2).
                tracing::info!(check, %reason, "{endpoint} check failed");
                let _ = writeln!(listing, "[-]{check} failed: reason withheld");
                failed = true;
            }
        }
    }
    Ok(if failed {
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{listing}{endpoint} check failed\n"),
        )
    } else if verbose {
        text(
            StatusCode::OK,
            format!("{listing}{endpoint} check passed\n"),
        )
    } else {
        text(StatusCode::OK, "ok".to_owned())
    })
}

/// Runs one check; the error is why it failed.
async fn run(store: &dyn Store, check: &str) -> Result<(), String> {
    match check {
        "etcd" => match tokio::time::timeout(STORE_CHECK_TIMEOUT, store.current_revision()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!(
                "the store did not answer within {} s",
                STORE_CHECK_TIMEOUT.as_secs()
            )),
        },
        _ => Ok(()),
    }
}

/// A plain-text answer with upstream's headers.
fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use store::{MemoryStore, MemoryStoreOptions};

    use super::*;

    async fn body(path: &str, query: Option<&str>) -> (u16, String) {
        use http_body_util::BodyExt as _;
        let store = MemoryStore::new(MemoryStoreOptions::default());
        let response = respond(&store, path, query).await.expect("a known check");
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn a_healthy_store_reads_as_kube_apiserver_writes_it() {
        assert_eq!(body("/readyz", None).await, (200, "ok".to_owned()));
        assert_eq!(
            body("/livez", Some("verbose")).await,
            (
                200,
                "[+]ping ok\n[+]etcd ok\nlivez check passed\n".to_owned()
            )
        );
        assert_eq!(
            body("/readyz/", Some("verbose&exclude=etcd")).await,
            (
                200,
                "[+]ping ok\n[+]etcd excluded: ok\nreadyz check passed\n".to_owned()
            )
        );
        assert_eq!(body("/healthz/etcd", None).await, (200, "ok".to_owned()));
        let store = MemoryStore::new(MemoryStoreOptions::default());
        let unknown = respond(&store, "/readyz/informer", None).await;
        assert_eq!(unknown.err().map(|err| err.code), Some(404));
    }
}
