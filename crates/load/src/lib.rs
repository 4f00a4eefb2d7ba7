//! kstress load drivers: programs that put a chosen load on the Kubernetes
//! API machinery through kube-rs, exactly as any other client would, and
//! time every call into a [`measure::Measurement`].
//!
//! Closed-loop drivers ([`pod_stress`], [`thrash`], [`list`], [`get`]) keep a fixed
//! number of workers busy; the open-loop [`churn`] driver starts requests on
//! an arrival schedule that does not wait for the server, and times each one
//! from its intended start so that a stalled server shows up as latency
//! rather than as a quietly lower rate. [`watch_latency`] and
//! [`watch_loop`] measure the watch path while one of those drivers writes.
//!
//! Every driver runs until its [`Context::stop`] token is cancelled (the
//! caller ties it to the run's duration, Ctrl-C and the error watchdog of
//! [`control`]) and then lets its in-flight requests finish, so each request
//! that was sent is also counted.

pub mod arrivals;
pub mod churn;
pub mod control;
pub mod driver;
pub mod get;
pub mod lifecycle;
pub mod list;
pub mod namespace;
pub mod objects;
pub mod outcome;
mod paging;
pub mod pod_stress;
pub mod resource;
pub mod thrash;
pub mod watch_latency;
pub mod watch_loop;

use std::collections::BTreeMap;
use std::time::Duration;

use kube::Client;
use measure::Measurement;
use tokio_util::sync::CancellationToken;

/// Annotation carrying the wall-clock time (nanoseconds since the Unix
/// epoch) at which a writer sent the request that produced this version of
/// the object; watchers subtract it from their receive time.
pub const SENT_AT_ANNOTATION: &str = "kstress.io/sent-at-ns";

/// Label on every object a run creates, so that watchers and lists see only
/// the run's own objects and cleanup finds them all.
pub const RUN_LABEL: &str = "kstress.io/run";

/// Everything a driver needs to run.
#[derive(Clone)]
pub struct Context {
    /// Client of the cluster under test.
    pub client: Client,
    /// Namespace of the run's objects (namespaced resources); empty for a
    /// driver that creates the namespaces it needs.
    pub namespace: String,
    /// Identifies the run in [`RUN_LABEL`] and object names.
    pub run_id: String,
    /// Where every call is recorded.
    pub measurement: Measurement,
    /// Cancelled when the run ends, for whatever reason.
    pub stop: CancellationToken,
}

/// What a driver reports besides its measurements.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// Requested arrival rate of an open-loop driver.
    pub target_rate_per_s: Option<f64>,
    /// Arrivals an open-loop driver actually sent per second, over the
    /// window its schedule ran.
    pub achieved_rate_per_s: Option<f64>,
    /// Driver-specific figures for results.json's `extra` section.
    pub extra: BTreeMap<String, serde_json::Value>,
    /// Set when the driver finished its work before the run's end (for
    /// example pod-stress with a fixed number of objects).
    pub finished_early: bool,
}

/// Failures that end a driver before it could run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call needed to set the run up failed.
    #[error("{context}: {reason}")]
    Api {
        /// What the driver was doing.
        context: String,
        /// What went wrong, in one line.
        reason: String,
    },
    /// The resource named on the command line is not served.
    #[error("{0}")]
    UnknownResource(String),
    /// No object of this resource can be built without a template.
    #[error(
        "no built-in object template for {resource}; pass --template FILE with a YAML or JSON object of that kind"
    )]
    NoTemplate {
        /// The resource, as resolved.
        resource: String,
    },
    /// The template file holds an object of another kind than the resource.
    #[error(
        "template {path} is a {template} object, but --resource {resource} writes {kind} objects"
    )]
    TemplateKind {
        /// The file.
        path: String,
        /// The template's kind and apiVersion.
        template: String,
        /// The resource, as resolved.
        resource: String,
        /// The resource's kind and apiVersion.
        kind: String,
    },
    /// The template file is unreadable or not an object.
    #[error("template {path}: {message}")]
    Template {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A driver option is out of range.
    #[error("{0}")]
    Invalid(String),
    /// The run measured nothing useful: it ended early because every
    /// request failed, or some class had only failed requests.
    #[error("{0}")]
    Failed(String),
    /// The run completed but did not hold one of its gates (measurement
    /// thresholds): the cluster, not the run, fell short. `kstress` exits
    /// with its own code for it.
    #[error("gates failed: {0}")]
    GatesFailed(String),
    /// The run's objects or namespace could not be removed.
    #[error("cannot clean up {what}: {source}")]
    Cleanup {
        /// What was being removed.
        what: String,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },
    /// The measurement rejected a class.
    #[error(transparent)]
    Measure(#[from] measure::Error),
    /// An operating-system resource (a thread) could not be created.
    #[error("{context}: {source}")]
    Io {
        /// What the driver was doing.
        context: &'static str,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn api(context: impl Into<String>, source: kube::Error) -> Self {
        Error::Api {
            context: context.into(),
            reason: outcome::describe(&source),
        }
    }
}

/// How long requests already in flight may take to finish once the run has
/// ended, before the driver gives up on them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Durations in recorded driver options, as seconds.
pub(crate) mod serde_duration {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(duration.as_secs_f64())
    }
}
