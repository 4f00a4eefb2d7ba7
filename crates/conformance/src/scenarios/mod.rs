//! The scenario registry.
//!
//! A scenario gets a fresh namespace and a client, does its work through
//! the API and either passes or returns a [`Failure`] saying what it saw.

mod images;
mod lifecycle;

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::{Api, Client};
use regex::Regex;

use crate::options::Options;
use crate::relations::Violation;
use crate::timeline::Timeline;

/// One conformance check.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// `group/name`, what `--focus` and `--skip` match.
    pub name: &'static str,
    /// What the scenario shows about the node.
    pub description: &'static str,
    pub(crate) run: fn(Ctx) -> BoxFuture<'static, Result<(), Failure>>,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// Every scenario, in the order results are reported.
pub fn all() -> Vec<Scenario> {
    let mut scenarios = lifecycle::scenarios();
    scenarios.extend(images::scenarios());
    scenarios
}

/// Whether a scenario called `name` runs: it matches `focus` (when given)
/// and does not match `skip` (when given).
pub fn selected(name: &str, focus: Option<&Regex>, skip: Option<&Regex>) -> bool {
    focus.is_none_or(|re| re.is_match(name)) && !skip.is_some_and(|re| re.is_match(name))
}

/// What a scenario works with.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub client: Client,
    pub namespace: String,
    pub options: Arc<Options>,
}

impl Ctx {
    pub(crate) fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub(crate) fn events(&self) -> Api<Event> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
}

/// Why a scenario failed, with the timeline that shows it when there is one.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// What went wrong.
    pub message: String,
    /// The containers' timeline at the time.
    pub timeline: Option<Timeline>,
}

impl Failure {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            timeline: None,
        }
    }

    pub(crate) fn api(action: &str, err: kube::Error) -> Self {
        Self::new(format!("cannot {action}: {err}"))
    }
}

/// Checks relations on a timeline; a violation fails with the timeline.
pub(crate) fn verify(
    timeline: Timeline,
    checks: impl FnOnce(&Timeline) -> Result<(), Violation>,
) -> Result<(), Failure> {
    match checks(&timeline) {
        Ok(()) => Ok(()),
        Err(Violation(message)) => Err(Failure {
            message,
            timeline: Some(timeline),
        }),
    }
}

/// The timeline of a pod, or a failure saying why it cannot be read.
pub(crate) fn timeline_of(pod: &Pod) -> Result<Timeline, Failure> {
    Timeline::from_pod(pod).map_err(|e| Failure::new(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_group_slash_name() {
        let scenarios = all();
        assert_eq!(scenarios.len(), 10);
        let mut names: Vec<_> = scenarios.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), scenarios.len(), "duplicate scenario names");
        for name in names {
            let (group, rest) = name.split_once('/').expect("group/name");
            assert!(["lifecycle", "image-pull"].contains(&group), "{name}");
            assert!(
                rest.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
        }
    }

    fn names(focus: Option<&str>, skip: Option<&str>) -> Vec<&'static str> {
        let focus = focus.map(|re| Regex::new(re).unwrap());
        let skip = skip.map(|re| Regex::new(re).unwrap());
        all()
            .into_iter()
            .map(|s| s.name)
            .filter(|name| selected(name, focus.as_ref(), skip.as_ref()))
            .collect()
    }

    #[test]
    fn focus_and_skip_select_by_regex() {
        assert_eq!(names(None, None).len(), 10);
        let images = names(Some("^image-pull/"), None);
        assert_eq!(images.len(), 4);
        assert!(images.iter().all(|n| n.starts_with("image-pull/")));
        assert_eq!(
            names(Some("^image-pull/"), Some("backoff|always")),
            ["image-pull/never-missing", "image-pull/if-not-present"]
        );
        assert_eq!(names(None, Some("^lifecycle/")).len(), 4);
        assert_eq!(names(Some("init"), Some("bad-image")).len(), 3);
        assert!(names(Some("no-such-scenario"), None).is_empty());
    }
}
