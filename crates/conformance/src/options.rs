//! What to run and how long to wait for it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use serde_json::{Value, json};

use crate::report::ScenarioResult;

/// Image of every container that is meant to run.
pub const DEFAULT_IMAGE: &str = "busybox";
/// An image no node can pull: the `invalid.` registry host does not exist.
pub const DEFAULT_BAD_IMAGE: &str = "invalid.registry.k8s.io/invalid/busybox:1.0";
/// Scenarios that run at the same time by default.
pub const DEFAULT_PARALLEL: usize = 4;

/// Called with each scenario's result as soon as it is known, so a caller
/// can print progress while the others still run.
#[derive(Clone)]
pub struct OnResult(pub Arc<dyn Fn(&ScenarioResult) + Send + Sync>);

impl fmt::Debug for OnResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnResult(..)")
    }
}

/// How a conformance run is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// Image of the containers that must run; it needs `sh` and coreutils.
    pub image: String,
    /// Image of the bad-image cases; pulling it must fail.
    pub bad_image: String,
    /// Only scenarios whose name matches run.
    pub focus: Option<Regex>,
    /// Scenarios whose name matches are skipped.
    pub skip: Option<Regex>,
    /// Scenarios that run at the same time (at least 1).
    pub parallel: usize,
    /// Bounds on every wait.
    pub timeouts: Timeouts,
    /// The cluster, as results.json records it (`embedded` or a URL).
    pub target: String,
    /// Progress callback.
    pub on_result: Option<OnResult>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            image: DEFAULT_IMAGE.into(),
            bad_image: DEFAULT_BAD_IMAGE.into(),
            focus: None,
            skip: None,
            parallel: DEFAULT_PARALLEL,
            timeouts: Timeouts::default(),
            target: "cluster".into(),
            on_result: None,
        }
    }
}

impl Options {
    /// The settings worth recording next to the results.
    pub(crate) fn to_json(&self) -> Value {
        let t = &self.timeouts;
        json!({
            "image": self.image,
            "bad_image": self.bad_image,
            "focus": self.focus.as_ref().map(Regex::as_str),
            "skip": self.skip.as_ref().map(Regex::as_str),
            "parallel": self.parallel,
            "timeouts_s": {
                "pod_finish": t.pod_finish.as_secs_f64(),
                "restarts": t.restarts.as_secs_f64(),
                "image_pull": t.image_pull.as_secs_f64(),
                "events": t.events.as_secs_f64(),
                "cleanup": t.cleanup.as_secs_f64(),
            },
        })
    }
}

/// Bounds on the waits of a scenario. The defaults suit a real cluster
/// with a kubelet's default back-offs; a cluster with short back-offs can
/// use much shorter ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// For a pod to run to completion or fail.
    pub pod_finish: Duration,
    /// For a crash-looping container to be restarted three times.
    pub restarts: Duration,
    /// For image pull failures to reach back-off and be retried twice.
    pub image_pull: Duration,
    /// For an event to appear once the pod shows what caused it.
    pub events: Duration,
    /// For a scenario's namespace to be gone.
    pub cleanup: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            pod_finish: Duration::from_secs(60),
            restarts: Duration::from_secs(120),
            image_pull: Duration::from_secs(300),
            events: Duration::from_secs(30),
            cleanup: Duration::from_secs(120),
        }
    }
}

impl Timeouts {
    /// The same bound for every wait.
    pub fn uniform(timeout: Duration) -> Self {
        Self {
            pod_finish: timeout,
            restarts: timeout,
            image_pull: timeout,
            events: timeout,
            cleanup: timeout,
        }
    }
}
