//! Pod startup latency, kube-burner's `podLatency` measurement, taken
//! exactly.
//!
//! A pod watch is opened before the load starts. Each pod created after
//! that is stamped when its first event arrives, and again when each
//! transition (PodScheduled, Initialized, ContainersReady, Ready, phase
//! Running) first shows in an event, on the client's monotonic clock. The
//! stamps do not depend on Events, which are dropped at scale, nor on the
//! server's timestamps, which have one-second resolution; those are kept
//! beside for comparison. Watch delivery delay is in every stamp alike, so
//! it cancels out of the differences.
//!
//! ```no_run
//! # async fn example(client: kube::Client) -> Result<(), podlatency::Error> {
//! let latency = podlatency::PodLatency::start(
//!     client,
//!     podlatency::Selection::labelled("kube-burner.io/uuid=1234"),
//! )
//! .await?;
//! // ... create pods ...
//! let summary = latency.finish().await;
//! print!("{}", summary.table());
//! # Ok(())
//! # }
//! ```

mod tracker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use measure::PodLatencySummary;
use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use crate::tracker::Tracker;

/// How long the watch may take to list the pods that already exist.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long [`PodLatency::finish`] waits for the last transitions of
/// pods that are not Ready yet to arrive (the load's own wait may have
/// seen them on another watch a moment earlier).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the measurement could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pod watch failed before its first list was complete.
    #[error("the pod latency watch failed: {0}")]
    Watch(String),
    /// The first list did not complete in time.
    #[error("the pod latency watch did not list the pods within {} s", START_TIMEOUT.as_secs())]
    Timeout,
}

/// Which pods are measured, and how they are grouped.
#[derive(Clone, Debug)]
pub struct Selection {
    /// Only this namespace's pods; all namespaces when `None`.
    pub namespace: Option<String>,
    /// A label selector (`key=value,...`) every measured pod matches.
    pub label_selector: String,
    /// A label whose value names a pod's group (a scenario's job).
    pub group_label: Option<String>,
    /// The group of pods without that label.
    pub group: String,
    /// Keep one record per pod in the summary.
    pub records: bool,
}

impl Selection {
    /// The pods of every namespace that match `label_selector`, in one
    /// group named `pods`.
    pub fn labelled(label_selector: &str) -> Self {
        Selection {
            namespace: None,
            label_selector: label_selector.to_owned(),
            group_label: None,
            group: "pods".to_owned(),
            records: false,
        }
    }
}

/// A running pod latency measurement.
pub struct PodLatency {
    tracker: Arc<Mutex<Tracker>>,
    changed: Arc<Notify>,
    task: JoinHandle<()>,
}

impl PodLatency {
    /// Opens the pod watch and returns once it has listed the pods that
    /// exist already (which are not measured): every pod created from then
    /// on is seen from its first event.
    pub async fn start(client: Client, selection: Selection) -> Result<PodLatency, Error> {
        let api: Api<Pod> = match &selection.namespace {
            Some(namespace) => Api::namespaced(client, namespace),
            None => Api::all(client),
        };
        let config = watcher::Config::default().labels(&selection.label_selector);
        let tracker = Arc::new(Mutex::new(Tracker::new(
            selection.group,
            selection.group_label,
            selection.records,
        )));
        let changed = Arc::new(Notify::new());
        let (listed_tx, listed_rx) = oneshot::channel();
        let task = tokio::spawn(watch(
            api,
            config,
            Arc::clone(&tracker),
            Arc::clone(&changed),
            listed_tx,
        ));
        match tokio::time::timeout(START_TIMEOUT, listed_rx).await {
            Ok(Ok(Ok(()))) => Ok(PodLatency {
                tracker,
                changed,
                task,
            }),
            Ok(Ok(Err(err))) => {
                task.abort();
                Err(Error::Watch(err))
            }
            Ok(Err(_)) => {
                task.abort();
                Err(Error::Watch(
                    "the watch ended before listing the pods".into(),
                ))
            }
            Err(_) => {
                task.abort();
                Err(Error::Timeout)
            }
        }
    }

    /// Names the group of the pods created from now on that carry no
    /// group label (the phase of a run).
    pub fn set_group(&self, group: &str) {
        self.tracker.lock().set_group(group.to_owned());
    }

    /// Stops the watch, after giving pods that are not Ready yet a moment
    /// for their last events, and summarizes.
    pub async fn finish(self) -> PodLatencySummary {
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            let changed = self.changed.notified();
            if self.tracker.lock().settled() {
                break;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                break;
            }
        }
        self.task.abort();
        self.tracker.lock().summary()
    }
}

impl Drop for PodLatency {
    /// A measurement given up on (the run failed to start) stops watching.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Feeds the tracker from the pod watch until aborted; reports the end of
/// the first list (or the error that prevented it) on `listed`.
async fn watch(
    api: Api<Pod>,
    config: watcher::Config,
    tracker: Arc<Mutex<Tracker>>,
    changed: Arc<Notify>,
    listed: oneshot::Sender<Result<(), String>>,
) {
    let mut listed = Some(listed);
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        let now = Instant::now();
        match event {
            Ok(Event::Apply(pod) | Event::InitApply(pod)) => {
                tracker.lock().observe(&pod, now, Timestamp::now());
            }
            Ok(Event::Delete(pod)) => tracker.lock().deleted(&pod),
            Ok(Event::Init) => {}
            Ok(Event::InitDone) => {
                if let Some(listed) = listed.take() {
                    tracker.lock().listed();
                    let _ = listed.send(Ok(()));
                }
            }
            Err(err) => {
                if let Some(listed) = listed.take() {
                    let _ = listed.send(Err(err.to_string()));
                    return;
                }
                // The watcher lists again by itself; pods first seen in
                // that list are measured from then.
                tracing::warn!(%err, "pod latency watch interrupted; resuming");
            }
        }
        changed.notify_waiters();
    }
}
