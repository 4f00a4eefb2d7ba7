//! Which resource a driver writes, resolved through the server's discovery
//! documents the way kubectl resolves `kubectl get <resource>`.

use std::fmt;

use kube::Client;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope, verbs};

use crate::Error;

/// A resource the server serves.
#[derive(Clone, Debug)]
pub struct Resource {
    /// Group, version, kind and plural.
    pub api: ApiResource,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Whether a CustomResourceDefinition defines it.
    pub custom: bool,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.api.group.is_empty() {
            write!(f, "{}", self.api.plural)
        } else {
            write!(f, "{}.{}", self.api.plural, self.api.group)
        }
    }
}

/// A resource as written on the command line: `configmaps`, `configmap`,
/// `ConfigMap`, `deployments.apps`, `v1/configmaps` or
/// `apps/v1/deployments`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Spec {
    name: String,
    group: Option<String>,
    version: Option<String>,
}

impl Spec {
    fn parse(text: &str) -> Result<Self, Error> {
        let invalid = || {
            Error::UnknownResource(format!(
                "invalid resource {text:?}: expected NAME, NAME.GROUP, VERSION/NAME or GROUP/VERSION/NAME"
            ))
        };
        let parts: Vec<&str> = text.split('/').collect();
        if parts.iter().any(|part| part.is_empty()) {
            return Err(invalid());
        }
        let spec = match parts.as_slice() {
            [name] => match name.split_once('.') {
                Some((name, group)) => Spec {
                    name: (*name).to_owned(),
                    group: Some(group.to_owned()),
                    version: None,
                },
                None => Spec {
                    name: (*name).to_owned(),
                    group: None,
                    version: None,
                },
            },
            [version, name] => Spec {
                name: (*name).to_owned(),
                group: Some(String::new()),
                version: Some((*version).to_owned()),
            },
            [group, version, name] => Spec {
                name: (*name).to_owned(),
                group: Some((*group).to_owned()),
                version: Some((*version).to_owned()),
            },
            _ => return Err(invalid()),
        };
        Ok(spec)
    }

    fn matches(&self, resource: &ApiResource) -> bool {
        let name = self.name.to_ascii_lowercase();
        resource.plural == name
            || resource.kind.to_ascii_lowercase() == name
            || resource.plural.strip_suffix('s') == Some(name.as_str())
    }
}

/// Resolves `text` against the server's discovery documents. The resource
/// must support create, delete, list and watch, which every driver needs.
pub async fn resolve(client: &Client, text: &str) -> Result<Resource, Error> {
    let spec = Spec::parse(text)?;
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .map_err(|err| Error::api("cannot read the server's API discovery", err))?;
    let mut candidates: Vec<(ApiResource, ApiCapabilities)> = Vec::new();
    for group in discovery.groups() {
        if spec
            .group
            .as_deref()
            .is_some_and(|wanted| wanted != group.name())
        {
            continue;
        }
        let resources = match &spec.version {
            Some(version) => group.versioned_resources(version),
            None => group.recommended_resources(),
        };
        candidates.extend(
            resources
                .into_iter()
                .filter(|(resource, _)| spec.matches(resource)),
        );
    }
    // Like kubectl, the core group wins a name shared with other groups
    // (events, for instance).
    candidates.sort_by_key(|(resource, _)| !resource.group.is_empty());
    let Some((api, capabilities)) = candidates.into_iter().next() else {
        return Err(Error::UnknownResource(format!(
            "the server does not serve a resource called {text:?}"
        )));
    };
    for verb in [verbs::CREATE, verbs::DELETE, verbs::LIST, verbs::WATCH] {
        if !capabilities.supports_operation(verb) {
            return Err(Error::UnknownResource(format!(
                "resource {text:?} does not support {verb}"
            )));
        }
    }
    let custom = is_custom_group(&api.group);
    Ok(Resource {
        namespaced: capabilities.scope == Scope::Namespaced,
        custom,
        api,
    })
}

/// Built-in Kubernetes groups have no dot (`apps`, `batch`) or end in
/// `k8s.io`; every other group comes from a CustomResourceDefinition or an
/// aggregated API server.
fn is_custom_group(group: &str) -> bool {
    group.contains('.') && !group.ends_with("k8s.io")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_specs_parse_like_kubectl() {
        let spec = Spec::parse("configmaps").expect("plain");
        assert_eq!(
            (spec.name.as_str(), spec.group, spec.version),
            ("configmaps", None, None)
        );
        let spec = Spec::parse("deployments.apps").expect("with group");
        assert_eq!(spec.group.as_deref(), Some("apps"));
        let spec = Spec::parse("flunders.wardle.example.com").expect("CRD group");
        assert_eq!(spec.name, "flunders");
        assert_eq!(spec.group.as_deref(), Some("wardle.example.com"));
        let spec = Spec::parse("v1/configmaps").expect("core version");
        assert_eq!(
            (spec.group.as_deref(), spec.version.as_deref()),
            (Some(""), Some("v1"))
        );
        let spec = Spec::parse("apps/v1/deployments").expect("full");
        assert_eq!(
            (spec.group.as_deref(), spec.version.as_deref()),
            (Some("apps"), Some("v1"))
        );
        assert!(Spec::parse("a/b/c/d").is_err());
        assert!(Spec::parse("/configmaps").is_err());
    }

    #[test]
    fn names_match_plural_singular_and_kind() {
        let resource = ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
        };
        for name in ["configmaps", "configmap", "ConfigMap"] {
            assert!(
                Spec::parse(name).expect("parses").matches(&resource),
                "{name}"
            );
        }
        assert!(!Spec::parse("secrets").expect("parses").matches(&resource));
    }

    #[test]
    fn custom_groups_are_told_apart_from_built_in_ones() {
        assert!(!is_custom_group(""));
        assert!(!is_custom_group("apps"));
        assert!(!is_custom_group("coordination.k8s.io"));
        assert!(is_custom_group("wardle.example.com"));
    }
}
