//! The verb of a resource request, as kube-apiserver derives it from the
//! method, the path and the `watch` parameter.

use http::Method;

/// What a resource request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

/// How flow control treats a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    ReadOnly,
    Mutating,
    /// Watches: no in-flight slot and no request timeout.
    LongRunning,
}

impl Verb {
    /// The verb of `method` on an object (`named`) or a collection; `None`
    /// for a method the resource does not serve.
    pub fn of(method: &Method, named: bool, watch: bool) -> Option<Verb> {
        Some(match (method, named) {
            (&Method::GET, true) => Verb::Get,
            (&Method::GET, false) if watch => Verb::Watch,
            (&Method::GET, false) => Verb::List,
            (&Method::POST, _) => Verb::Create,
            (&Method::PUT, true) => Verb::Update,
            (&Method::PATCH, true) => Verb::Patch,
            (&Method::DELETE, true) => Verb::Delete,
            (&Method::DELETE, false) => Verb::DeleteCollection,
            _ => return None,
        })
    }

    /// The verb as authorization and discovery name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }

    /// The `verb` label of `apiserver_request_total` and
    /// `apiserver_request_duration_seconds`.
    pub fn metric_label(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::List => "LIST",
            Verb::Watch => "WATCH",
            Verb::Create => "POST",
            Verb::Update => "PUT",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
            Verb::DeleteCollection => "DELETECOLLECTION",
        }
    }

    pub fn class(self) -> Class {
        match self {
            Verb::Watch => Class::LongRunning,
            Verb::Get | Verb::List => Class::ReadOnly,
            _ => Class::Mutating,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_follow_method_name_and_watch() {
        assert_eq!(Verb::of(&Method::GET, true, false), Some(Verb::Get));
        assert_eq!(Verb::of(&Method::GET, true, true), Some(Verb::Get));
        assert_eq!(Verb::of(&Method::GET, false, true), Some(Verb::Watch));
        assert_eq!(Verb::of(&Method::GET, false, false), Some(Verb::List));
        assert_eq!(Verb::of(&Method::POST, false, false), Some(Verb::Create));
        assert_eq!(Verb::of(&Method::PUT, false, false), None);
        assert_eq!(
            Verb::of(&Method::DELETE, false, false),
            Some(Verb::DeleteCollection)
        );
        assert_eq!(Verb::of(&Method::HEAD, true, false), None);
        assert_eq!(Verb::Create.metric_label(), "POST");
        assert_eq!(Verb::DeleteCollection.as_str(), "deletecollection");
        assert_eq!(Verb::Watch.class(), Class::LongRunning);
    }
}
