//! Request routing: turning a URL path into what it names.
//!
//! Kubernetes paths are regular enough to parse directly instead of through
//! a route table: `/api/v1` or `/apis/{group}/{version}`, then an optional
//! `namespaces/{ns}`, then `{resource}[/{name}[/{subresource}]]`.

use percent_encoding::percent_decode_str;

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/api`: the core group's versions.
    CoreVersions,
    /// `/apis`: every group.
    Groups,
    /// `/apis/{group}`.
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`: a group version's resources.
    GroupVersion {
        group: String,
        version: String,
    },
    Resource(ResourcePath),
    Version,
    /// `/healthz`, `/livez`, `/readyz` and their sub-checks.
    Health,
    Metrics,
    OpenApiV2,
    OpenApiV3Root,
    /// `/openapi/v3/{api/v1 | apis/{group}/{version}}`.
    OpenApiV3(String),
}

/// A path naming a resource, a collection, or a subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The deprecated `/watch/` path prefix was used.
    pub watch_prefix: bool,
}

/// Subresources of namespaces that share the `namespaces/{x}/{y}` shape with
/// namespaced collections.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Parses a request path; `None` means nothing is served there (404).
pub fn route(path: &str) -> Option<Route> {
    let trimmed = path.trim_end_matches('/');
    match trimmed {
        "" => return None,
        "/api" => return Some(Route::CoreVersions),
        "/apis" => return Some(Route::Groups),
        "/version" => return Some(Route::Version),
        "/metrics" => return Some(Route::Metrics),
        "/openapi/v2" => return Some(Route::OpenApiV2),
        "/openapi/v3" => return Some(Route::OpenApiV3Root),
        _ => {}
    }
    for health in ["/healthz", "/livez", "/readyz"] {
        if trimmed == health || trimmed.starts_with(&format!("{health}/")) {
            return Some(Route::Health);
        }
    }
    if let Some(rest) = trimmed.strip_prefix("/openapi/v3/") {
        return Some(Route::OpenApiV3(rest.to_string()));
    }
    let segments = decode_segments(trimmed)?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group] => return Some(Route::Group(group.to_string())),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    if rest.is_empty() {
        return Some(Route::GroupVersion {
            group: group.to_string(),
            version: version.to_string(),
        });
    }
    let (watch_prefix, rest) = match rest {
        ["watch", rest @ ..] if !rest.is_empty() => (true, rest),
        _ => (false, rest),
    };
    let (namespace, rest): (Option<&str>, &[&str]) = match rest {
        ["namespaces", ns, resource, tail @ ..] if !NAMESPACE_SUBRESOURCES.contains(resource) => {
            let mut tail_with_resource = vec![*resource];
            tail_with_resource.extend_from_slice(tail);
            return resource_route(group, version, Some(ns), &tail_with_resource, watch_prefix);
        }
        other => (None, other),
    };
    resource_route(group, version, namespace, rest, watch_prefix)
}

fn resource_route(
    group: &str,
    version: &str,
    namespace: Option<&str>,
    rest: &[&str],
    watch_prefix: bool,
) -> Option<Route> {
    let (resource, name, subresource) = match rest {
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(*name), None),
        [resource, name, sub] => (*resource, Some(*name), Some(*sub)),
        _ => return None,
    };
    if [resource, name.unwrap_or("x"), subresource.unwrap_or("x")]
        .iter()
        .chain(namespace.iter())
        .any(|s| s.is_empty())
    {
        return None;
    }
    Some(Route::Resource(ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        namespace: namespace.map(str::to_string),
        resource: resource.to_string(),
        name: name.map(str::to_string),
        subresource: subresource.map(str::to_string),
        watch_prefix,
    }))
}

/// Splits `/a/b/c` into segments of the percent-decoded path. As upstream
/// routes the decoded path, an encoded slash (`%2F`) separates segments like
/// a plain one, so no name can carry a `/` into a storage key. An empty
/// segment (`//`) or invalid UTF-8 names nothing.
fn decode_segments(path: &str) -> Option<Vec<String>> {
    let decoded = percent_decode_str(path).decode_utf8().ok()?;
    let path = decoded.strip_prefix('/')?;
    path.split('/')
        .map(|s| (!s.is_empty()).then(|| s.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match route(path) {
            Some(Route::Resource(r)) => r,
            other => panic!("{path}: expected a resource route, got {other:?}"),
        }
    }

    #[test]
    fn core_and_group_paths() {
        let r = res("/api/v1/namespaces/default/pods/web-1/status");
        assert_eq!(r.group, "");
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.resource, "pods");
        assert_eq!(r.name.as_deref(), Some("web-1"));
        assert_eq!(r.subresource.as_deref(), Some("status"));

        let r = res("/apis/apps/v1/namespaces/ns/deployments");
        assert_eq!((r.group.as_str(), r.version.as_str()), ("apps", "v1"));
        assert_eq!(r.name, None);

        let r = res("/apis/apps/v1/deployments");
        assert_eq!(r.namespace, None);
    }

    #[test]
    fn namespace_subresources_are_not_collections() {
        let r = res("/api/v1/namespaces/team-a/status");
        assert_eq!(r.resource, "namespaces");
        assert_eq!(r.name.as_deref(), Some("team-a"));
        assert_eq!(r.subresource.as_deref(), Some("status"));
        let r = res("/api/v1/namespaces/team-a");
        assert_eq!(r.resource, "namespaces");
        assert_eq!(r.name.as_deref(), Some("team-a"));
    }

    #[test]
    fn discovery_and_fixed_paths() {
        assert_eq!(route("/api"), Some(Route::CoreVersions));
        assert_eq!(route("/apis/"), Some(Route::Groups));
        assert_eq!(route("/apis/apps"), Some(Route::Group("apps".into())));
        assert_eq!(
            route("/api/v1"),
            Some(Route::GroupVersion {
                group: String::new(),
                version: "v1".into()
            })
        );
        assert_eq!(route("/livez/ping"), Some(Route::Health));
        assert_eq!(
            route("/openapi/v3/apis/apps/v1"),
            Some(Route::OpenApiV3("apis/apps/v1".into()))
        );
    }

    #[test]
    fn watch_prefix_and_decoding() {
        let r = res("/api/v1/watch/namespaces/x/configmaps");
        assert!(r.watch_prefix);
        assert_eq!(r.resource, "configmaps");
        let r = res("/api/v1/namespaces/x/configmaps/a%2Eb");
        assert_eq!(r.name.as_deref(), Some("a.b"));
        let r = res("/api/v1/namespaces/x/configmaps/a%2Fstatus");
        assert_eq!(r.name.as_deref(), Some("a"));
        assert_eq!(r.subresource.as_deref(), Some("status"));
    }

    #[test]
    fn nonsense_is_not_routed() {
        for path in [
            "/",
            "/foo",
            "/api//v1",
            "/api/v1/namespaces/x/pods/a/b/c",
            "/apis/apps/v1/a/b/c/d",
            "/api/v1/pods/%FF",
            "/api/v1/pods/a%2F",
        ] {
            assert_eq!(route(path), None, "{path}");
        }
    }
}
