//! What the watch saw of each pod: the instant each transition arrived,
//! beside the server's own timestamps; and the summary computed from it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use measure::{
    GroupLatency, LatencyHistogram, NOT_READY_LISTED, PodLatencySummary, PodRecord, PodState,
    Quantiles, TRANSITIONS,
};

/// How results.json describes the method.
pub(crate) const METHOD: &str = "Each transition is stamped when the pod watch delivers it, \
on the client's monotonic clock (microsecond resolution), and measured from the pod's first \
watch event; the server's second-resolution timestamps are kept beside. run_to_watch alone \
compares two clocks: the client's wall clock when Running was seen against the kubelet's \
startedAt (one-second resolution).";

/// Position of each transition in [`TRANSITIONS`].
const SCHEDULED: usize = 0;
const RUNNING: usize = 4;
/// The transitions that are pod conditions (all but Running).
const CONDITIONS: usize = 4;

/// One pod as seen so far.
struct Stamps {
    namespace: String,
    name: String,
    group: String,
    created: Instant,
    /// When each of [`TRANSITIONS`] was first seen.
    observed: [Option<Instant>; 5],
    creation_timestamp: Option<Timestamp>,
    /// `lastTransitionTime` of each condition when it was seen true.
    server_times: [Option<Timestamp>; CONDITIONS],
    /// The client's wall clock when Running was seen.
    running_wall: Option<Timestamp>,
    /// The latest `startedAt` of its running containers.
    started_at: Option<Timestamp>,
    phase: String,
    reason: String,
    deleted: bool,
}

impl Stamps {
    fn ready(&self) -> bool {
        self.observed[3].is_some()
    }
}

/// Every pod the measurement watches.
pub(crate) struct Tracker {
    began: Instant,
    group: String,
    group_label: Option<String>,
    records: bool,
    /// While the watch's first list is read: pods listed then existed
    /// before the measurement and are not measured.
    listing: bool,
    preexisting: HashSet<String>,
    pods: HashMap<String, Stamps>,
}

impl Tracker {
    pub(crate) fn new(group: String, group_label: Option<String>, records: bool) -> Self {
        Tracker {
            began: Instant::now(),
            group,
            group_label,
            records,
            listing: true,
            preexisting: HashSet::new(),
            pods: HashMap::new(),
        }
    }

    /// Pods seen from now on are created during the measurement.
    pub(crate) fn listed(&mut self) {
        self.listing = false;
    }

    /// The group of pods whose group label is absent.
    pub(crate) fn set_group(&mut self, group: String) {
        self.group = group;
    }

    /// Records what `pod` shows, seen at `now` (client clocks).
    pub(crate) fn observe(&mut self, pod: &Pod, now: Instant, wall: Timestamp) {
        let Some(uid) = pod.metadata.uid.as_deref() else {
            return;
        };
        if self.listing {
            self.preexisting.insert(uid.to_owned());
            return;
        }
        if self.preexisting.contains(uid) {
            return;
        }
        let stamps = self.pods.entry(uid.to_owned()).or_insert_with(|| {
            let group = self
                .group_label
                .as_ref()
                .and_then(|label| pod.metadata.labels.as_ref()?.get(label).cloned())
                .unwrap_or_else(|| self.group.clone());
            Stamps {
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone().unwrap_or_default(),
                group,
                created: now,
                observed: [None; 5],
                creation_timestamp: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
                server_times: [None; CONDITIONS],
                running_wall: None,
                started_at: None,
                phase: String::new(),
                reason: String::new(),
                deleted: false,
            }
        });
        let Some(status) = &pod.status else {
            return;
        };
        stamps.phase = status.phase.clone().unwrap_or_default();
        stamps.reason = not_ready_reason(pod);
        for condition in status.conditions.iter().flatten() {
            let Some(index) = TRANSITIONS[..CONDITIONS]
                .iter()
                .position(|t| *t == condition.type_)
            else {
                continue;
            };
            if condition.status == "True" && stamps.observed[index].is_none() {
                stamps.observed[index] = Some(now);
                stamps.server_times[index] = condition.last_transition_time.as_ref().map(|t| t.0);
            }
        }
        if stamps.phase == "Running" && stamps.observed[RUNNING].is_none() {
            stamps.observed[RUNNING] = Some(now);
            stamps.running_wall = Some(wall);
            stamps.started_at = status
                .container_statuses
                .iter()
                .flatten()
                .filter_map(|c| c.state.as_ref()?.running.as_ref()?.started_at.as_ref())
                .map(|t| t.0)
                .max();
        }
    }

    /// Marks a pod deleted.
    pub(crate) fn deleted(&mut self, pod: &Pod) {
        if let Some(stamps) = pod
            .metadata
            .uid
            .as_deref()
            .and_then(|uid| self.pods.get_mut(uid))
        {
            stamps.deleted = true;
        }
    }

    /// Whether every measured pod is Ready or gone.
    pub(crate) fn settled(&self) -> bool {
        self.pods.values().all(|p| p.ready() || p.deleted)
    }

    pub(crate) fn summary(&self) -> PodLatencySummary {
        let mut transitions = Histograms::default();
        let mut breakdown = Histograms::default();
        let mut groups: BTreeMap<String, (u64, u64, Histograms)> = BTreeMap::new();
        let mut not_ready = Vec::new();
        let (mut ready, mut deleted_before_ready) = (0, 0);
        let mut pods: Vec<&Stamps> = self.pods.values().collect();
        pods.sort_by_key(|p| p.created);
        for pod in &pods {
            let group = groups.entry(pod.group.clone()).or_default();
            group.0 += 1;
            if pod.ready() {
                ready += 1;
                group.1 += 1;
            } else if pod.deleted {
                deleted_before_ready += 1;
            } else if not_ready.len() < NOT_READY_LISTED {
                not_ready.push(PodState {
                    namespace: pod.namespace.clone(),
                    name: pod.name.clone(),
                    group: pod.group.clone(),
                    phase: pod.phase.clone(),
                    reason: pod.reason.clone(),
                });
            }
            for (name, seen) in TRANSITIONS.iter().zip(pod.observed) {
                if let Some(seen) = seen {
                    transitions.record(name, seen - pod.created);
                    group.2.record(name, seen - pod.created);
                }
            }
            let [scheduled, running] = [pod.observed[SCHEDULED], pod.observed[RUNNING]];
            if let Some(scheduled) = scheduled {
                breakdown.record("create_to_schedule", scheduled - pod.created);
            }
            if let (Some(scheduled), Some(running)) = (scheduled, running) {
                breakdown.record(
                    "schedule_to_run",
                    running.saturating_duration_since(scheduled),
                );
            }
            if let Some(running) = running {
                breakdown.record("pod_startup", running - pod.created);
            }
            if let (Some(wall), Some(started)) = (pod.running_wall, pod.started_at) {
                // The kubelet's second-resolution stamp is truncated, so
                // the lag is never negative unless the clocks disagree.
                let lag = Duration::try_from(wall.duration_since(started)).unwrap_or_default();
                breakdown.record("run_to_watch", lag);
            }
        }
        PodLatencySummary {
            method: METHOD.to_owned(),
            pods: pods.len() as u64,
            ready,
            deleted_before_ready,
            transitions: transitions.quantiles(),
            breakdown: breakdown.quantiles(),
            groups: groups
                .into_iter()
                .map(|(name, (pods, ready, histograms))| {
                    let latency = GroupLatency {
                        pods,
                        ready,
                        transitions: histograms.quantiles(),
                    };
                    (name, latency)
                })
                .collect(),
            not_ready,
            records: if self.records {
                pods.iter().map(|p| self.record(p)).collect()
            } else {
                Vec::new()
            },
        }
    }

    fn record(&self, pod: &Stamps) -> PodRecord {
        let offset = |at: Instant| (at - self.began).as_secs_f64() * 1000.0;
        PodRecord {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            group: pod.group.clone(),
            created_ms: offset(pod.created),
            observed_ms: TRANSITIONS
                .iter()
                .zip(pod.observed)
                .filter_map(|(name, seen)| Some(((*name).to_owned(), offset(seen?))))
                .collect(),
            creation_timestamp: pod.creation_timestamp.map(|t| t.to_string()),
            server_times: TRANSITIONS
                .iter()
                .zip(pod.server_times)
                .filter_map(|(name, at)| Some(((*name).to_owned(), at?.to_string())))
                .collect(),
        }
    }
}

/// Why a pod is not ready, in its own words: a waiting or terminated
/// container's reason, else the reason of its first false condition.
fn not_ready_reason(pod: &Pod) -> String {
    let Some(status) = &pod.status else {
        return String::new();
    };
    let container = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .filter_map(|c| {
            let state = c.state.as_ref()?;
            state
                .waiting
                .as_ref()
                .and_then(|w| w.reason.clone())
                .or_else(|| state.terminated.as_ref().and_then(|t| t.reason.clone()))
        })
        .next();
    container
        .or_else(|| {
            status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.status != "True")
                .and_then(|c| c.reason.clone())
        })
        .unwrap_or_default()
}

/// Histograms by name.
#[derive(Default)]
struct Histograms(BTreeMap<String, LatencyHistogram>);

impl Histograms {
    fn record(&mut self, name: &str, latency: Duration) {
        self.0.entry(name.to_owned()).or_default().record(latency);
    }

    fn quantiles(&self) -> BTreeMap<String, Quantiles> {
        self.0
            .iter()
            .map(|(name, h)| (name.clone(), Quantiles::of(h)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(uid: &str, status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": format!("pod-{uid}"), "namespace": "ns", "uid": uid,
                         "labels": {"job": "create-pods"},
                         "creationTimestamp": "2026-12-03T10:00:00Z"},
            "status": status,
        }))
        .expect("a pod")
    }

    fn condition(type_: &str) -> serde_json::Value {
        json!({"type": type_, "status": "True", "lastTransitionTime": "2026-12-03T10:00:01Z"})
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn transitions_are_measured_from_the_first_event_and_preexisting_pods_are_not() {
        let mut tracker = Tracker::new("run".into(), Some("job".into()), true);
        let t0 = Instant::now();
        let wall = Timestamp::now();
        tracker.observe(&pod("old", json!({"phase": "Running"})), t0, wall);
        tracker.listed();
        tracker.observe(&pod("old", json!({"phase": "Running"})), t0, wall);

        tracker.observe(&pod("a", json!({"phase": "Pending"})), t0, wall);
        let scheduled = json!({"phase": "Pending", "conditions": [condition("PodScheduled")]});
        tracker.observe(&pod("a", scheduled), t0 + ms(20), wall);
        let running = json!({"phase": "Running", "conditions": [
            condition("PodScheduled"), condition("Initialized"),
            condition("ContainersReady"), condition("Ready")],
            "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": true,
                "restartCount": 0, "state": {"running": {"startedAt": "2026-12-03T10:00:01Z"}}}]});
        tracker.observe(&pod("a", running.clone()), t0 + ms(120), wall);
        // A later event does not move a transition already seen.
        tracker.observe(&pod("a", running), t0 + ms(500), wall);

        let summary = tracker.summary();
        assert_eq!((summary.pods, summary.ready), (1, 1));
        let p50 = |name: &str| summary.transitions[name].p50_ms;
        assert!((p50("PodScheduled") - 20.0).abs() < 0.1, "{summary:?}");
        assert!((p50("Ready") - 120.0).abs() < 0.2, "{summary:?}");
        assert!((p50("Running") - 120.0).abs() < 0.2, "{summary:?}");
        assert!((summary.breakdown["schedule_to_run"].p50_ms - 100.0).abs() < 0.2);
        assert_eq!(summary.groups["create-pods"].pods, 1);
        assert_eq!(summary.records.len(), 1);
        assert_eq!(
            summary.records[0].server_times["Ready"],
            "2026-12-03T10:00:01Z"
        );
        assert!(tracker.settled());
    }

    #[test]
    fn pods_that_never_become_ready_are_listed_with_their_reason() {
        let mut tracker = Tracker::new("run".into(), None, false);
        tracker.listed();
        let now = Instant::now();
        let waiting = json!({"phase": "Pending", "containerStatuses": [{"name": "c",
            "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff"}}}]});
        tracker.observe(&pod("a", waiting), now, Timestamp::now());
        let gone = pod("b", json!({"phase": "Pending"}));
        tracker.observe(&gone, now, Timestamp::now());
        assert!(!tracker.settled());
        tracker.deleted(&gone);

        let summary = tracker.summary();
        assert_eq!(
            (summary.pods, summary.ready, summary.deleted_before_ready),
            (2, 0, 1)
        );
        assert_eq!(summary.not_ready.len(), 1);
        assert_eq!(summary.not_ready[0].reason, "ImagePullBackOff");
        assert_eq!(
            summary.not_ready[0].group, "run",
            "no group label: the default group"
        );
        assert!(summary.records.is_empty());
    }
}
