//! Query parameters of list, watch, write and delete requests.

use std::collections::HashMap;
use std::time::Duration;

use apimachinery::fields::FieldSelector;
use apimachinery::labels::LabelSelector;
use serde_json::Value;

use crate::error::ApiError;

/// Parses `a=b&c=d` into a map (last value wins, as upstream takes the first;
/// Kubernetes clients never repeat these keys).
pub fn parse(query: Option<&str>) -> HashMap<String, String> {
    query
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// How a list chooses the state it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAt {
    /// `resourceVersion` unset: the latest state, from the store.
    Latest,
    /// `resourceVersion=0`: any state, from the watch cache.
    Any,
    /// At least this revision.
    NotOlderThan(i64),
    /// Exactly this revision.
    Exact(i64),
}

/// Options shared by list and watch.
#[derive(Debug, Default)]
pub struct ListOptions {
    pub label_selector: Option<LabelSelector>,
    pub field_selector: Option<FieldSelector>,
    pub limit: usize,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub allow_bookmarks: bool,
    pub send_initial_events: Option<bool>,
    pub timeout: Option<Duration>,
}

impl ListOptions {
    pub fn from_query(q: &HashMap<String, String>) -> Result<ListOptions, ApiError> {
        let label_selector = match q.get("labelSelector").filter(|s| !s.is_empty()) {
            Some(s) => Some(
                LabelSelector::parse(s).map_err(|err| ApiError::bad_request(err.to_string()))?,
            ),
            None => None,
        };
        let field_selector = match q.get("fieldSelector").filter(|s| !s.is_empty()) {
            Some(s) => Some(
                FieldSelector::parse(s).map_err(|err| ApiError::bad_request(err.to_string()))?,
            ),
            None => None,
        };
        let limit = match q.get("limit").filter(|s| !s.is_empty()) {
            Some(s) => {
                let n: i64 = s.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid value for limit: {s:?}"))
                })?;
                usize::try_from(n).unwrap_or(0)
            }
            None => 0,
        };
        let timeout = match q.get("timeoutSeconds").filter(|s| !s.is_empty()) {
            Some(s) => {
                let n: u64 = s.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid value for timeoutSeconds: {s:?}"))
                })?;
                Some(Duration::from_secs(n))
            }
            None => None,
        };
        let flag = |name: &str| -> Result<Option<bool>, ApiError> {
            match q.get(name).map(String::as_str) {
                None | Some("") => Ok(None),
                Some("true") | Some("1") => Ok(Some(true)),
                Some("false") | Some("0") => Ok(Some(false)),
                Some(other) => Err(ApiError::bad_request(format!(
                    "invalid value for {name}: {other:?}"
                ))),
            }
        };
        Ok(ListOptions {
            label_selector,
            field_selector,
            limit,
            continue_token: q.get("continue").filter(|s| !s.is_empty()).cloned(),
            resource_version: q.get("resourceVersion").filter(|s| !s.is_empty()).cloned(),
            resource_version_match: q
                .get("resourceVersionMatch")
                .filter(|s| !s.is_empty())
                .cloned(),
            allow_bookmarks: flag("allowWatchBookmarks")?.unwrap_or(false),
            send_initial_events: flag("sendInitialEvents")?,
            timeout,
        })
    }

    /// The revision a list reads at, validating the combination as upstream.
    pub fn read_at(&self) -> Result<ReadAt, ApiError> {
        let rv = match self.resource_version.as_deref() {
            None => None,
            Some(s) => Some(parse_resource_version(s)?),
        };
        match (self.resource_version_match.as_deref(), rv) {
            (Some(m), None) => Err(ApiError::bad_request(format!(
                "resourceVersionMatch {m:?} is forbidden unless resourceVersion is provided"
            ))),
            (Some(_), Some(_)) if self.continue_token.is_some() => Err(ApiError::bad_request(
                "resourceVersionMatch is forbidden when continue is provided",
            )),
            (Some("Exact"), Some(0)) => Err(ApiError::bad_request(
                "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"",
            )),
            (Some("Exact"), Some(n)) => Ok(ReadAt::Exact(n)),
            (Some("NotOlderThan"), Some(0)) => Ok(ReadAt::Any),
            (Some("NotOlderThan"), Some(n)) => Ok(ReadAt::NotOlderThan(n)),
            (Some(other), Some(_)) => Err(ApiError::bad_request(format!(
                "unsupported resourceVersionMatch value {other:?}: supported values: \"Exact\", \"NotOlderThan\""
            ))),
            (None, None) => Ok(ReadAt::Latest),
            (None, Some(0)) => Ok(ReadAt::Any),
            // A limit with an exact version pages at exactly that version.
            (None, Some(n)) if self.limit > 0 => Ok(ReadAt::Exact(n)),
            (None, Some(n)) => Ok(ReadAt::NotOlderThan(n)),
        }
    }
}

/// Parses a resourceVersion; anything but a non-negative integer is a 400.
pub fn parse_resource_version(s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {s:?}")))
}

/// `DeleteOptions`, from the body or the query.
#[derive(Debug, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub propagation_policy: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    pub fn from_request(
        q: &HashMap<String, String>,
        body: &[u8],
    ) -> Result<DeleteOptions, ApiError> {
        let mut opts = DeleteOptions::default();
        if !body.iter().all(u8::is_ascii_whitespace) {
            let v: Value = serde_json::from_slice(body)
                .map_err(|err| ApiError::bad_request(format!("invalid DeleteOptions: {err}")))?;
            opts.grace_period_seconds = v.get("gracePeriodSeconds").and_then(Value::as_i64);
            opts.precondition_uid = v
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_string);
            opts.precondition_resource_version = v
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            opts.propagation_policy = v
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_string);
            if v.get("orphanDependents") == Some(&Value::Bool(true)) {
                opts.propagation_policy = Some("Orphan".into());
            }
            opts.dry_run = v
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
        }
        if let Some(s) = q.get("gracePeriodSeconds") {
            opts.grace_period_seconds = Some(s.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid value for gracePeriodSeconds: {s:?}"))
            })?);
        }
        if let Some(p) = q.get("propagationPolicy") {
            opts.propagation_policy = Some(p.clone());
        }
        if q.contains_key("dryRun") {
            opts.dry_run = true;
        }
        if let Some(p) = opts.propagation_policy.as_deref()
            && !matches!(p, "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::invalid(
                "DeleteOptions",
                crate::error::Subject::new("meta.k8s.io", "", ""),
                vec![crate::error::FieldError {
                    kind: "FieldValueNotSupported",
                    field: "propagationPolicy".into(),
                    message: format!(
                        "Unsupported value: {p:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
                    ),
                }],
            ));
        }
        if opts.grace_period_seconds.is_some_and(|g| g < 0) {
            opts.grace_period_seconds = Some(0);
        }
        Ok(opts)
    }
}
