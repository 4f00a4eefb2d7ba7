//! API errors and their Kubernetes `Status` form.
//!
//! Every failure a client can see is a `metav1.Status` with the code, reason,
//! message and details kube-apiserver would send, because clients branch on
//! them (kube-rs and client-go test `reason`, kubectl prints `message`).

/// One invalid field, reported in `details.causes` of a 422.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Upstream cause type, e.g. `FieldValueInvalid`, `FieldValueRequired`.
    pub kind: &'static str,
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn invalid(field: impl Into<String>, value: &str, detail: impl AsRef<str>) -> Self {
        FieldError {
            kind: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {value:?}: {}", detail.as_ref()),
        }
    }

    pub fn required(field: impl Into<String>) -> Self {
        FieldError {
            kind: "FieldValueRequired",
            field: field.into(),
            message: "Required value".into(),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: "FieldValueForbidden",
            field: field.into(),
            message: format!("Forbidden: {}", detail.into()),
        }
    }

    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        FieldError {
            kind: "FieldValueTooLong",
            field: field.into(),
            message: format!("Too long: may not be more than {max} bytes"),
        }
    }

    fn describe(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// The resource an error is about, for `details`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub group: String,
    /// The plural resource name (`details.kind` upstream carries it).
    pub resource: String,
    pub name: String,
}

impl Subject {
    pub fn new(group: &str, resource: &str, name: &str) -> Self {
        Subject {
            group: group.to_string(),
            resource: resource.to_string(),
            name: name.to_string(),
        }
    }

    /// `pods "x"` or `deployments.apps "x"`, the way upstream names objects in
    /// messages.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            format!("{} {:?}", self.resource, self.name)
        } else {
            format!("{}.{} {:?}", self.resource, self.group, self.name)
        }
    }
}

/// A failed API request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub subject: Option<Box<Subject>>,
    pub causes: Vec<FieldError>,
    /// Seconds a client should wait before retrying (429, 503, 504).
    pub retry_after: Option<u32>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            subject: None,
            causes: Vec::new(),
            retry_after: None,
        }
    }

    fn about(mut self, subject: Subject) -> Self {
        self.subject = Some(Box::new(subject));
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn not_found(subject: Subject) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} not found", subject.qualified()),
        )
        .about(subject)
    }

    /// A path that names no resource at all.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn already_exists(subject: Subject) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} already exists", subject.qualified()),
        )
        .about(subject)
    }

    /// Optimistic-concurrency failure, worded as upstream's
    /// `OptimisticLockErrorMsg`.
    pub fn conflict(subject: Subject) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {}: the object has been modified; please apply your changes to the latest version and try again",
            subject.qualified()
        );
        Self::new(409, "Conflict", message).about(subject)
    }

    /// A conflict with a message of its own (preconditions, bindings).
    pub fn conflict_with(subject: Subject, detail: impl AsRef<str>) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {}: {}",
            subject.qualified(),
            detail.as_ref()
        );
        Self::new(409, "Conflict", message).about(subject)
    }

    pub fn invalid(kind: &str, subject: Subject, causes: Vec<FieldError>) -> Self {
        let detail = causes
            .iter()
            .map(FieldError::describe)
            .collect::<Vec<_>>()
            .join(", ");
        let detail = if causes.len() > 1 {
            format!("[{detail}]")
        } else {
            detail
        };
        let group_kind = if subject.group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{}", subject.group)
        };
        let mut err = Self::new(
            422,
            "Invalid",
            format!("{group_kind} {:?} is invalid: {detail}", subject.name),
        );
        err.subject = Some(Box::new(Subject {
            resource: kind.to_string(),
            ..subject
        }));
        err.causes = causes;
        err
    }

    /// An authorization refusal, worded as upstream's: `pods "x" is
    /// forbidden: <detail>`, without the name for collections, and
    /// `forbidden: <detail>` for paths that name no resource.
    pub fn forbidden_request(subject: Subject, detail: impl AsRef<str>) -> Self {
        let detail = detail.as_ref();
        let message = match (subject.resource.is_empty(), subject.name.is_empty()) {
            (true, _) => format!("forbidden: {detail}"),
            (false, true) if subject.group.is_empty() => {
                format!("{} is forbidden: {detail}", subject.resource)
            }
            (false, true) => format!(
                "{}.{} is forbidden: {detail}",
                subject.resource, subject.group
            ),
            (false, false) => format!("{} is forbidden: {detail}", subject.qualified()),
        };
        Self::new(403, "Forbidden", message).about(subject)
    }

    pub fn forbidden(subject: Subject, detail: impl AsRef<str>) -> Self {
        let message = format!("{} is forbidden: {}", subject.qualified(), detail.as_ref());
        Self::new(403, "Forbidden", message).about(subject)
    }

    /// A resource version or continue token older than what is kept.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn method_not_supported(resource: &str, verb: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("{verb} is not supported on resources of kind {resource:?}"),
        )
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json; got {content_type:?}"
            ),
        )
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, "RequestEntityTooLarge", message)
    }

    pub fn too_many_requests() -> Self {
        let mut err = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        );
        err.retry_after = Some(1);
        err
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut err = Self::new(503, "ServiceUnavailable", message);
        err.retry_after = Some(1);
        err
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        let mut err = Self::new(504, "Timeout", message);
        err.retry_after = Some(1);
        err
    }

    /// The `metav1.Status` object sent as the response body (and inside
    /// watch ERROR events).
    /// The Status object as kube-apiserver's JSON encoder writes it: keys
    /// in the Go struct's order (kind, apiVersion, metadata, status,
    /// message, reason, details, code), empty fields left out.
    pub fn status_json(&self) -> Vec<u8> {
        let subject = self.subject.as_deref();
        let details = StatusDetails {
            name: subject.map(|s| s.name.as_str()).filter(|s| !s.is_empty()),
            group: subject.map(|s| s.group.as_str()).filter(|s| !s.is_empty()),
            kind: subject
                .map(|s| s.resource.as_str())
                .filter(|s| !s.is_empty()),
            causes: self
                .causes
                .iter()
                .map(|c| StatusCause {
                    reason: c.kind,
                    message: &c.message,
                    field: &c.field,
                })
                .collect(),
            retry_after_seconds: self.retry_after,
        };
        let status = Status {
            kind: "Status",
            api_version: "v1",
            metadata: Empty {},
            status: "Failure",
            message: &self.message,
            reason: self.reason,
            details: (!details.is_empty()).then_some(details),
            code: self.code,
        };
        serde_json::to_vec(&status).expect("a Status always serializes")
    }

    /// The Status as a JSON value (for the protobuf encoder).
    pub fn status_value(&self) -> serde_json::Value {
        serde_json::from_slice(&self.status_json()).unwrap_or_default()
    }

    /// The body of an error response: the Status and the newline
    /// kube-apiserver's encoder ends it with.
    pub fn status_body(&self) -> Vec<u8> {
        let mut body = self.status_json();
        body.push(b'\n');
        body
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Status<'a> {
    kind: &'static str,
    api_version: &'static str,
    metadata: Empty,
    status: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<StatusDetails<'a>>,
    code: u16,
}

#[derive(serde::Serialize)]
struct Empty {}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusDetails<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    causes: Vec<StatusCause<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_seconds: Option<u32>,
}

impl StatusDetails<'_> {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.group.is_none()
            && self.kind.is_none()
            && self.causes.is_empty()
            && self.retry_after_seconds.is_none()
    }
}

#[derive(serde::Serialize)]
struct StatusCause<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    field: &'a str,
}

impl From<store::StoreError> for ApiError {
    fn from(err: store::StoreError) -> Self {
        use store::StoreError as E;
        match err {
            E::Compacted {
                requested,
                compacted,
            } => ApiError::expired(format!(
                "The resourceVersion for the provided list is too old. (requested {requested}, oldest available {compacted})"
            )),
            E::FutureRevision { requested, current } => ApiError::timeout(format!(
                "Too large resource version: {requested}, current: {current}"
            )),
            E::Unavailable(msg) => ApiError::unavailable(format!("storage is unavailable: {msg}")),
            E::Timeout(msg) => ApiError::timeout(format!("storage did not answer in time: {msg}")),
            other => ApiError::internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bodies as kube-apiserver v1.33 writes them, byte for byte.
    #[test]
    fn status_bodies_are_byte_compatible_with_kube_apiserver() {
        let not_found = ApiError::not_found(Subject::new("", "pods", "x"));
        assert_eq!(
            String::from_utf8(not_found.status_body()).unwrap(),
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"pods \\\"x\\\" not found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"x\",\"kind\":\"pods\"},\"code\":404}\n"
        );
        let invalid = ApiError::invalid(
            "Deployment",
            Subject::new("apps", "deployments", "web"),
            vec![FieldError::required("spec.template")],
        );
        assert_eq!(
            String::from_utf8(invalid.status_body()).unwrap(),
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Deployment.apps \\\"web\\\" is invalid: spec.template: Required value\",\"reason\":\"Invalid\",\"details\":{\"name\":\"web\",\"group\":\"apps\",\"kind\":\"Deployment\",\"causes\":[{\"reason\":\"FieldValueRequired\",\"message\":\"Required value\",\"field\":\"spec.template\"}]},\"code\":422}\n"
        );
        let throttled = ApiError::too_many_requests();
        let body = String::from_utf8(throttled.status_json()).unwrap();
        assert!(
            body.ends_with(",\"reason\":\"TooManyRequests\",\"details\":{\"retryAfterSeconds\":1},\"code\":429}"),
            "{body}"
        );
    }
}
