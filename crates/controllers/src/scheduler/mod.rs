//! The scheduler: binds pending pods to nodes.
//!
//! One task keeps an in-memory view of every node and pod from two watches
//! and decides pod by pod, without any request of its own per decision. A
//! pod is counted on its node as soon as the scheduler chooses the node
//! (assumed), so the decisions that follow see its requests before the
//! binding comes back through the watch. Bindings and condition updates
//! run concurrently, up to [`MAX_IN_FLIGHT`] at a time.

mod fit;
mod quantity;

pub(crate) use fit::tolerates;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use rand::Rng;
use serde_json::json;
use tokio::sync::watch as signal;
use tokio::time::Instant;

use crate::util::{is_conflict, is_not_found, pod_is_terminal};
use fit::{NodeFacts, NodeInfo, Requirements, Usage};

/// Bindings and status updates the scheduler keeps in flight at once.
const MAX_IN_FLIGHT: usize = 256;
/// Delay before a pod whose binding failed is tried again.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Below this many nodes every node is checked for every pod; above it,
/// the search stops once enough feasible nodes are found.
const MIN_FEASIBLE_NODES: usize = 100;
const MIN_FEASIBLE_PERCENT: usize = 5;

/// Runs the scheduler for pods whose `spec.schedulerName` is
/// `scheduler_name` until `shutdown` turns true.
pub(crate) async fn run(
    client: Client,
    scheduler_name: String,
    mut shutdown: signal::Receiver<bool>,
) {
    let mut pods = watcher(Api::<Pod>::all(client.clone()));
    let mut nodes = watcher(Api::<Node>::all(client.clone()));
    let mut state = Scheduler::new(scheduler_name);
    let mut in_flight: FuturesUnordered<BoxFuture<'static, Outcome>> = FuturesUnordered::new();
    loop {
        state.release_retries(Instant::now());
        if state.synced() {
            state.flush_unschedulable();
            while in_flight.len() < MAX_IN_FLIGHT {
                let Some(key) = state.queue.pop_front() else {
                    break;
                };
                if let Some(op) = state.schedule(&key, &client) {
                    in_flight.push(op);
                }
            }
        }
        let next_retry = state.retries.front().map(|(at, _)| *at);
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(event) = pods.next() => match event {
                Ok(event) => state.pod_event(event),
                Err(err) => tracing::warn!(error = %err, "scheduler: pod watch failed"),
            },
            Some(event) = nodes.next() => match event {
                Ok(event) => state.node_event(event),
                Err(err) => tracing::warn!(error = %err, "scheduler: node watch failed"),
            },
            Some(outcome) = in_flight.next(), if !in_flight.is_empty() => state.finish(outcome),
            () = sleep_until(next_retry), if next_retry.is_some() => {}
        }
    }
    // Let started bindings finish so that none is cut off half-way.
    while in_flight.next().await.is_some() {}
}

fn watcher<K>(api: Api<K>) -> impl futures::Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed()
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// The result of a request the scheduler sent.
enum Outcome {
    Bound {
        key: String,
        result: kube::Result<()>,
    },
    Marked {
        key: String,
        message: String,
        result: kube::Result<()>,
    },
}

/// What the scheduler knows of one pod.
struct PodEntry {
    uid: String,
    namespace: String,
    name: String,
    usage: Usage,
    /// The node the pod is counted on: its `spec.nodeName`, or the node it
    /// is being bound to.
    node: Option<String>,
    /// Present while the pod waits for this scheduler.
    pending: Option<Pending>,
    /// The message of the pod's current `PodScheduled=False` condition.
    unschedulable_message: Option<String>,
}

struct Pending {
    requirements: Arc<Requirements>,
    state: PendingState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PendingState {
    Queued,
    Binding,
    Unschedulable,
}

/// Nodes in a stable order, so that the search for a node can start where
/// the previous one ended.
#[derive(Default)]
struct NodeTable {
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
}

impl NodeTable {
    fn get_mut(&mut self, name: &str) -> Option<&mut NodeInfo> {
        self.index.get(name).map(|&i| &mut self.nodes[i])
    }

    fn remove(&mut self, name: &str) {
        if let Some(i) = self.index.remove(name) {
            self.nodes.swap_remove(i);
            if let Some(moved) = self.nodes.get(i) {
                self.index.insert(moved.name.clone(), i);
            }
        }
    }

    fn add_usage(&mut self, node: &str, usage: &Usage) {
        if let Some(info) = self.get_mut(node) {
            info.add_pod(usage);
        }
    }

    fn remove_usage(&mut self, node: &str, usage: &Usage) {
        if let Some(info) = self.get_mut(node) {
            info.remove_pod(usage);
        }
    }
}

struct Scheduler {
    name: String,
    nodes: NodeTable,
    pods: HashMap<String, PodEntry>,
    queue: VecDeque<String>,
    unschedulable: HashSet<String>,
    /// Set when capacity may have appeared: unschedulable pods get
    /// another try.
    flush: bool,
    retries: VecDeque<(Instant, String)>,
    next_start: usize,
    pods_relist: Option<Vec<Pod>>,
    nodes_relist: Option<Vec<Node>>,
    pods_synced: bool,
    nodes_synced: bool,
}

impl Scheduler {
    fn new(name: String) -> Scheduler {
        Scheduler {
            name,
            nodes: NodeTable::default(),
            pods: HashMap::new(),
            queue: VecDeque::new(),
            unschedulable: HashSet::new(),
            flush: false,
            retries: VecDeque::new(),
            next_start: 0,
            pods_relist: None,
            nodes_relist: None,
            pods_synced: false,
            nodes_synced: false,
        }
    }

    /// Decisions wait for the first complete view of pods and nodes, so that
    /// no node is filled past capacity by pods the scheduler has not yet
    /// seen.
    fn synced(&self) -> bool {
        self.pods_synced && self.nodes_synced
    }

    fn pod_event(&mut self, event: Event<Pod>) {
        match event {
            Event::Apply(pod) => self.apply_pod(&pod),
            Event::Delete(pod) => self.remove_pod(&pod_key(&pod)),
            Event::Init => self.pods_relist = Some(Vec::new()),
            Event::InitApply(pod) => self.pods_relist.get_or_insert_with(Vec::new).push(pod),
            Event::InitDone => {
                let pods = self.pods_relist.take().unwrap_or_default();
                let seen: HashSet<String> = pods.iter().map(pod_key).collect();
                let gone: Vec<String> = self
                    .pods
                    .keys()
                    .filter(|k| !seen.contains(*k))
                    .cloned()
                    .collect();
                for key in gone {
                    self.remove_pod(&key);
                }
                for pod in &pods {
                    self.apply_pod(pod);
                }
                self.pods_synced = true;
            }
        }
    }

    fn node_event(&mut self, event: Event<Node>) {
        match event {
            Event::Apply(node) => self.apply_node(&node),
            Event::Delete(node) => self.nodes.remove(&node.metadata.name.unwrap_or_default()),
            Event::Init => self.nodes_relist = Some(Vec::new()),
            Event::InitApply(node) => self.nodes_relist.get_or_insert_with(Vec::new).push(node),
            Event::InitDone => {
                let nodes = self.nodes_relist.take().unwrap_or_default();
                let seen: HashSet<&str> = nodes
                    .iter()
                    .filter_map(|n| n.metadata.name.as_deref())
                    .collect();
                let gone: Vec<String> = self
                    .nodes
                    .index
                    .keys()
                    .filter(|k| !seen.contains(k.as_str()))
                    .cloned()
                    .collect();
                for name in gone {
                    self.nodes.remove(&name);
                }
                for node in &nodes {
                    self.apply_node(node);
                }
                self.nodes_synced = true;
            }
        }
    }

    fn apply_node(&mut self, node: &Node) {
        let Some(name) = node.metadata.name.clone() else {
            return;
        };
        let facts = NodeFacts::of(node);
        if let Some(info) = self.nodes.get_mut(&name) {
            if info.facts != facts {
                info.facts = facts;
                self.flush = true;
            }
            return;
        }
        let mut info = NodeInfo::new(name.clone(), facts);
        for entry in self.pods.values() {
            if entry.node.as_deref() == Some(name.as_str()) {
                info.add_pod(&entry.usage);
            }
        }
        self.nodes.index.insert(name, self.nodes.nodes.len());
        self.nodes.nodes.push(info);
        self.flush = true;
    }

    fn apply_pod(&mut self, pod: &Pod) {
        let key = pod_key(pod);
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if self.pods.get(&key).is_some_and(|e| e.uid != uid) {
            self.remove_pod(&key);
        }
        let spec = pod.spec.as_ref();
        let node_name = spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        let terminal = pod_is_terminal(pod);
        let wants_scheduling = node_name.is_none()
            && !terminal
            && pod.metadata.deletion_timestamp.is_none()
            && spec
                .and_then(|s| s.scheduling_gates.as_ref())
                .is_none_or(Vec::is_empty)
            && spec
                .and_then(|s| s.scheduler_name.as_deref())
                .unwrap_or(crate::DEFAULT_SCHEDULER_NAME)
                == self.name;
        let entry = self.pods.entry(key.clone()).or_insert_with(|| PodEntry {
            uid,
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            usage: Usage::default(),
            node: None,
            pending: None,
            unschedulable_message: None,
        });
        let binding = entry
            .pending
            .as_ref()
            .is_some_and(|p| p.state == PendingState::Binding);
        let target = if terminal {
            None
        } else if node_name.is_some() {
            node_name
        } else if binding {
            entry.node.clone()
        } else {
            None
        };
        let usage = Usage::of(pod);
        if entry.node != target || entry.usage != usage {
            if let Some(old) = &entry.node {
                self.nodes.remove_usage(old, &entry.usage);
                self.flush |= target.is_none();
            }
            if let Some(new) = &target {
                self.nodes.add_usage(new, &usage);
            }
            entry.node = target;
            entry.usage = usage;
        }
        entry.unschedulable_message = unschedulable_message(pod);
        if !wants_scheduling {
            entry.pending = None;
            return;
        }
        let requirements = Requirements::of(pod);
        match &mut entry.pending {
            None => {
                entry.pending = Some(Pending {
                    requirements: Arc::new(requirements),
                    state: PendingState::Queued,
                });
                self.queue.push_back(key);
            }
            Some(pending) if *pending.requirements != requirements => {
                pending.requirements = Arc::new(requirements);
                if pending.state == PendingState::Unschedulable {
                    pending.state = PendingState::Queued;
                    self.queue.push_back(key);
                }
            }
            Some(_) => {}
        }
    }

    fn remove_pod(&mut self, key: &str) {
        if let Some(entry) = self.pods.remove(key)
            && let Some(node) = &entry.node
        {
            self.nodes.remove_usage(node, &entry.usage);
            self.flush = true;
        }
    }

    /// Gives every unschedulable pod another try after a change that may
    /// have made room.
    fn flush_unschedulable(&mut self) {
        if !std::mem::take(&mut self.flush) {
            return;
        }
        for key in self.unschedulable.drain() {
            if let Some(pending) = self.pods.get_mut(&key).and_then(|e| e.pending.as_mut())
                && pending.state == PendingState::Unschedulable
            {
                pending.state = PendingState::Queued;
                self.queue.push_back(key);
            }
        }
    }

    fn release_retries(&mut self, now: Instant) {
        while self.retries.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, key)) = self.retries.pop_front() {
                self.queue.push_back(key);
            }
        }
    }

    /// Decides where the queued pod `key` goes and returns the request that
    /// carries the decision out, if one is needed.
    fn schedule(&mut self, key: &str, client: &Client) -> Option<BoxFuture<'static, Outcome>> {
        let entry = self.pods.get_mut(key)?;
        let pending = entry.pending.as_mut()?;
        if pending.state != PendingState::Queued {
            return None;
        }
        match select_node(
            &pending.requirements,
            &self.nodes.nodes,
            &mut self.next_start,
        ) {
            Ok(index) => {
                let node = &mut self.nodes.nodes[index];
                node.add_pod(&entry.usage);
                entry.node = Some(node.name.clone());
                pending.state = PendingState::Binding;
                Some(Box::pin(bind(
                    client.clone(),
                    key.to_string(),
                    entry.namespace.clone(),
                    entry.name.clone(),
                    entry.uid.clone(),
                    node.name.clone(),
                )))
            }
            Err(message) => {
                pending.state = PendingState::Unschedulable;
                self.unschedulable.insert(key.to_string());
                if entry.unschedulable_message.as_deref() == Some(message.as_str()) {
                    return None;
                }
                Some(Box::pin(mark_unschedulable(
                    client.clone(),
                    key.to_string(),
                    entry.namespace.clone(),
                    entry.name.clone(),
                    message,
                )))
            }
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Bound { result: Ok(()), .. } => {}
            Outcome::Bound {
                key,
                result: Err(err),
            } => {
                let Some(entry) = self.pods.get_mut(&key) else {
                    return;
                };
                let Some(pending) = entry.pending.as_mut() else {
                    return;
                };
                if pending.state != PendingState::Binding {
                    return;
                }
                if let Some(node) = entry.node.take() {
                    self.nodes.remove_usage(&node, &entry.usage);
                }
                if is_not_found(&err) || is_conflict(&err) {
                    // Deleted or bound elsewhere: the watch brings the news.
                    entry.pending = None;
                } else {
                    tracing::warn!(pod = %key, error = %err, "scheduler: binding failed");
                    pending.state = PendingState::Queued;
                    self.retries.push_back((Instant::now() + RETRY_DELAY, key));
                }
            }
            Outcome::Marked {
                key,
                message,
                result,
            } => match result {
                Ok(()) => {
                    if let Some(entry) = self.pods.get_mut(&key) {
                        entry.unschedulable_message = Some(message);
                    }
                }
                Err(err) if is_not_found(&err) => {}
                Err(err) => {
                    tracing::warn!(pod = %key, error = %err, "scheduler: cannot update PodScheduled");
                }
            },
        }
    }
}

/// The index of the best node for a pod, or the message that says why no
/// node fits. Large clusters are searched only until enough feasible nodes
/// are found, starting where the previous search stopped.
fn select_node(
    pod: &Requirements,
    nodes: &[NodeInfo],
    next_start: &mut usize,
) -> Result<usize, String> {
    let total = nodes.len();
    let wanted = feasible_nodes_to_find(total);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut best: Option<(i64, usize)> = None;
    let mut ties = 0u32;
    let mut feasible = 0;
    let mut rng = rand::rng();
    let start = if total == 0 { 0 } else { *next_start % total };
    let mut checked = 0;
    for offset in 0..total {
        let index = (start + offset) % total;
        checked += 1;
        match fit::filter(pod, &nodes[index]) {
            Ok(()) => {
                feasible += 1;
                let score = fit::score(pod, &nodes[index]);
                match best {
                    Some((top, _)) if score < top => {}
                    Some((top, _)) if score == top => {
                        // Reservoir sampling: each tied node is equally likely.
                        ties += 1;
                        if rng.random_range(0..ties) == 0 {
                            best = Some((score, index));
                        }
                    }
                    _ => {
                        best = Some((score, index));
                        ties = 1;
                    }
                }
                if feasible >= wanted {
                    break;
                }
            }
            Err(node_reasons) => {
                for reason in node_reasons {
                    *reasons.entry(reason).or_default() += 1;
                }
            }
        }
    }
    if total > 0 {
        *next_start = (start + checked) % total;
    }
    best.map(|(_, index)| index)
        .ok_or_else(|| fit::unschedulable_message(total, &reasons))
}

fn feasible_nodes_to_find(nodes: usize) -> usize {
    if nodes < MIN_FEASIBLE_NODES {
        return nodes;
    }
    let percent = 50usize
        .saturating_sub(nodes / 125)
        .max(MIN_FEASIBLE_PERCENT);
    (nodes * percent / 100).max(MIN_FEASIBLE_NODES)
}

async fn bind(
    client: Client,
    key: String,
    namespace: String,
    name: String,
    uid: String,
    node: String,
) -> Outcome {
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            uid: Some(uid),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            api_version: Some("v1".to_string()),
            kind: Some("Node".to_string()),
            name: Some(node),
            ..ObjectReference::default()
        },
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let result = api
        .create_subresource::<_, serde_json::Value>(
            "binding",
            &name,
            &PostParams::default(),
            &binding,
        )
        .await
        .map(drop);
    if result.is_ok() {
        // kube-scheduler's event, which `kubectl describe pod` shows first;
        // written in the background so that binding never waits for it.
        let node = binding.target.name.clone().unwrap_or_default();
        tokio::spawn(scheduled_event(
            client,
            namespace,
            name,
            binding.metadata.uid,
            node,
        ));
    }
    Outcome::Bound { key, result }
}

/// Writes the `Scheduled` event of a bound pod, as kube-scheduler does.
async fn scheduled_event(
    client: Client,
    namespace: String,
    name: String,
    uid: Option<String>,
    node: String,
) {
    let now = jiff::Timestamp::now();
    let event = k8s_openapi::api::core::v1::Event {
        metadata: ObjectMeta {
            // Upstream names events after the object and the time in
            // nanoseconds, so a namespace's events list in time order.
            name: Some(format!("{name}.{:x}", now.as_nanosecond())),
            namespace: Some(namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            uid,
            ..ObjectReference::default()
        },
        reason: Some("Scheduled".into()),
        message: Some(format!(
            "Successfully assigned {namespace}/{name} to {node}"
        )),
        type_: Some("Normal".into()),
        action: Some("Binding".into()),
        event_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            now,
        )),
        reporting_component: Some("default-scheduler".into()),
        reporting_instance: Some("default-scheduler".into()),
        source: Some(k8s_openapi::api::core::v1::EventSource {
            component: Some("default-scheduler".into()),
            host: None,
        }),
        ..Default::default()
    };
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client, &namespace);
    if let Err(err) = events.create(&PostParams::default(), &event).await {
        tracing::debug!(pod = %name, error = %err, "scheduler: cannot write the Scheduled event");
    }
}

async fn mark_unschedulable(
    client: Client,
    key: String,
    namespace: String,
    name: String,
    message: String,
) -> Outcome {
    let patch = json!({
        "status": {
            "conditions": [{
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            }]
        }
    });
    let api: Api<Pod> = Api::namespaced(client, &namespace);
    let result = api
        .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .map(drop);
    Outcome::Marked {
        key,
        message,
        result,
    }
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

fn unschedulable_message(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .and_then(|c| c.message.clone())
}
