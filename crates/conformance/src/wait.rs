//! Watching pods and their events through the API, with bounded waits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::watcher;
use tokio::time::Instant;

use crate::scenarios::Failure;
use crate::timeline::Timeline;

/// How often a condition that cannot be watched is polled.
pub(crate) const POLL: Duration = Duration::from_millis(250);

/// Creates a pod, retrying while the namespace's default service account
/// does not exist yet (a fresh namespace on a real cluster).
pub(crate) async fn create_pod(
    api: &Api<Pod>,
    pod: &Pod,
    timeout: Duration,
) -> Result<Pod, Failure> {
    let deadline = Instant::now() + timeout;
    loop {
        match api.create(&PostParams::default(), pod).await {
            Err(kube::Error::Api(status))
                if status.code == 403
                    && status.message.contains("serviceaccount")
                    && Instant::now() < deadline =>
            {
                tokio::time::sleep(POLL).await;
            }
            result => return result.map_err(|e| Failure::api("create pod", e)),
        }
    }
}

/// Watches pod `name` until `done` accepts it, and returns it.
///
/// `done` answers `Ok(false)` to keep waiting and `Err` when the pod took a
/// path it must not take. A failure carries the timeline of the last state
/// seen, which usually shows what went wrong.
pub(crate) async fn wait_for_pod(
    api: &Api<Pod>,
    name: &str,
    what: &str,
    timeout: Duration,
    mut done: impl FnMut(&Pod) -> Result<bool, String>,
) -> Result<Pod, Failure> {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher(api.clone(), config).boxed();
    let mut last: Option<Pod> = None;
    let deadline = Instant::now() + timeout;
    let failure = |message: String, last: Option<&Pod>| Failure {
        message,
        timeline: last.and_then(|pod| Timeline::from_pod(pod).ok()),
    };
    loop {
        let event = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) | Ok(None) => {
                let state = last.as_ref().map(describe).unwrap_or_default();
                let message =
                    format!("timed out after {timeout:?} waiting for pod {name} to {what}{state}");
                return Err(failure(message, last.as_ref()));
            }
            Ok(Some(event)) => event,
        };
        match event {
            Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => match done(&pod) {
                Ok(true) => return Ok(pod),
                Ok(false) => last = Some(pod),
                Err(message) => return Err(failure(message, Some(&pod))),
            },
            Ok(watcher::Event::Delete(_)) => {
                let message = format!("pod {name} was deleted while waiting for it to {what}");
                return Err(failure(message, last.as_ref()));
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
            Err(err) => tracing::debug!(pod = name, %err, "pod watch failed, retrying"),
        }
    }
}

/// ` (phase X, waiting: reasons)`: the pod's state for a timeout message.
fn describe(pod: &Pod) -> String {
    let phase = phase(pod).unwrap_or("unknown");
    let waiting: Vec<&str> = statuses(pod).filter_map(waiting_reason).collect();
    if waiting.is_empty() {
        format!(" (phase {phase})")
    } else {
        format!(" (phase {phase}, waiting: {})", waiting.join(", "))
    }
}

/// The pod's phase.
pub(crate) fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

/// Init container statuses first, then regular ones.
pub(crate) fn statuses(pod: &Pod) -> impl Iterator<Item = &ContainerStatus> {
    let status = pod.status.as_ref();
    let init = status.and_then(|s| s.init_container_statuses.as_deref());
    let regular = status.and_then(|s| s.container_statuses.as_deref());
    init.unwrap_or_default()
        .iter()
        .chain(regular.unwrap_or_default())
}

/// The status of the container called `name`.
pub(crate) fn container_status<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    statuses(pod).find(|s| s.name == name)
}

/// Why a container is waiting, if it is.
pub(crate) fn waiting_reason(status: &ContainerStatus) -> Option<&str> {
    status.state.as_ref()?.waiting.as_ref()?.reason.as_deref()
}

/// How many times an event happened: aggregated events carry a count.
fn occurrences(event: &Event) -> u64 {
    let count = event
        .count
        .or_else(|| event.series.as_ref().and_then(|s| s.count))
        .unwrap_or(1);
    u64::try_from(count).unwrap_or(0).max(1)
}

/// Occurrences of events with `reason` about pod `name`.
pub(crate) async fn count_events(
    api: &Api<Event>,
    pod: &str,
    reason: &str,
) -> Result<u64, Failure> {
    let params = ListParams::default().fields(&format!("involvedObject.name={pod}"));
    let events = api
        .list(&params)
        .await
        .map_err(|e| Failure::api("list events", e))?;
    Ok(events
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .map(occurrences)
        .sum())
}

/// Polls the events about pod `name` until `reason` happened `at_least`
/// times, and returns how often it did.
pub(crate) async fn wait_for_events(
    api: &Api<Event>,
    pod: &str,
    reason: &str,
    at_least: u64,
    timeout: Duration,
) -> Result<u64, Failure> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = count_events(api, pod, reason).await?;
        if seen >= at_least {
            return Ok(seen);
        }
        if Instant::now() >= deadline {
            return Err(Failure::new(format!(
                "after {timeout:?} pod {pod} has {seen} {reason:?} events, expected at least {at_least}"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// When each occurrence of each event reason about one pod was first seen.
///
/// Event timestamps have whole seconds, too coarse for short back-offs, so
/// the log watches the events and notes when each count went up.
pub(crate) struct EventLog {
    seen: Arc<parking_lot::Mutex<Vec<(Instant, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl EventLog {
    /// Starts watching the events about pod `name`; start it before the pod
    /// exists so that no occurrence is missed.
    pub(crate) fn start(api: Api<Event>, pod: &str) -> Self {
        let seen: Arc<parking_lot::Mutex<Vec<(Instant, String)>>> = Arc::default();
        let config = watcher::Config::default().fields(&format!("involvedObject.name={pod}"));
        let log = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            let mut counts: HashMap<String, u64> = HashMap::new();
            let mut stream = watcher(api, config).boxed();
            while let Some(event) = stream.next().await {
                let (Ok(watcher::Event::Apply(event)) | Ok(watcher::Event::InitApply(event))) =
                    event
                else {
                    continue;
                };
                let key = event.metadata.uid.clone().unwrap_or_default();
                let count = occurrences(&event);
                let before = counts.insert(key, count).unwrap_or(0);
                let reason = event.reason.unwrap_or_default();
                let now = Instant::now();
                let mut log = log.lock();
                for _ in before..count {
                    log.push((now, reason.clone()));
                }
            }
        });
        Self { seen, task }
    }

    /// When each occurrence of `reason` was seen, in order.
    pub(crate) fn times(&self, reason: &str) -> Vec<Instant> {
        self.seen
            .lock()
            .iter()
            .filter(|(_, r)| r == reason)
            .map(|(t, _)| *t)
            .collect()
    }

    /// Waits until `reason` was seen `at_least` times and returns the times.
    pub(crate) async fn wait_for(
        &self,
        reason: &str,
        at_least: usize,
        timeout: Duration,
    ) -> Result<Vec<Instant>, Failure> {
        let deadline = Instant::now() + timeout;
        loop {
            let times = self.times(reason);
            if times.len() >= at_least {
                return Ok(times);
            }
            if Instant::now() >= deadline {
                return Err(Failure::new(format!(
                    "after {timeout:?} saw {} {reason:?} events, expected at least {at_least}",
                    times.len()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}
