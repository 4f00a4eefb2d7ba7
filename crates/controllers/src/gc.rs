//! The garbage collector: deletes objects whose owners are gone
//! (background), holds an owner deleted in the foreground until its
//! blocking dependents are gone, and strips the owner references of the
//! dependents of an owner deleted with the orphan policy.
//!
//! One task watches every deletable resource the server lists in discovery
//! and keeps a graph of owners and dependents; workers act on it through
//! the API, checking owners the graph does not know with a live read.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, PartialObjectMeta, PostParams, Preconditions,
    PropagationPolicy,
};
use kube::discovery::{Discovery, Scope, verbs};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use parking_lot::Mutex;
use tokio::sync::{Notify, watch as signal};

use crate::util::{is_conflict, is_not_found};

const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";
const WORKERS: usize = 4;
const RETRY_DELAY: Duration = Duration::from_secs(1);
const UPDATE_ATTEMPTS: usize = 5;

/// The resources the collector watches.
pub struct Resources {
    list: Vec<(ApiResource, bool)>,
    by_kind: HashMap<(String, String), usize>,
}

impl Resources {
    /// Every resource that can be listed, watched and deleted, except
    /// events.
    pub async fn discover(client: &Client) -> Result<Resources, kube::Error> {
        let discovery = Discovery::new(client.clone()).run().await?;
        let mut list = Vec::new();
        let mut by_kind = HashMap::new();
        for group in discovery.groups() {
            for (resource, caps) in group.recommended_resources() {
                let usable = [verbs::LIST, verbs::WATCH, verbs::DELETE]
                    .iter()
                    .all(|v| caps.supports_operation(v));
                if !usable || resource.plural == "events" {
                    continue;
                }
                by_kind.insert(
                    (resource.api_version.clone(), resource.kind.clone()),
                    list.len(),
                );
                list.push((resource, caps.scope == Scope::Namespaced));
            }
        }
        Ok(Resources { list, by_kind })
    }

    fn api<K>(&self, client: &Client, index: usize, namespace: Option<&str>) -> Api<K>
    where
        K: kube::Resource<DynamicType = ApiResource, Scope = kube::core::DynamicResourceScope>,
    {
        let (resource, namespaced) = &self.list[index];
        match namespace {
            Some(ns) if *namespaced => Api::namespaced_with(client.clone(), ns, resource),
            _ => Api::all_with(client.clone(), resource),
        }
    }
}

#[derive(Debug, Clone)]
struct GraphNode {
    resource: usize,
    namespace: Option<String>,
    name: String,
    owners: Vec<OwnerReference>,
    deleting: bool,
    foreground: bool,
    orphan: bool,
}

impl GraphNode {
    fn waits_for_dependents(&self) -> bool {
        self.deleting && self.foreground
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Work {
    /// Delete the object if its owners are gone or deleting in the
    /// foreground.
    AttemptToDelete(String),
    /// Finish the foreground deletion of an owner whose blocking
    /// dependents are gone.
    Dependents(String),
    /// Strip the owner's references from its dependents, then finish its
    /// deletion.
    Orphan(String),
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, GraphNode>,
    dependents: HashMap<String, HashSet<String>>,
}

struct Shared {
    client: Client,
    resources: Resources,
    graph: Mutex<Graph>,
    queue: Mutex<(VecDeque<Work>, HashSet<Work>)>,
    ready: Notify,
}

impl Shared {
    fn enqueue(&self, work: Work) {
        let mut queue = self.queue.lock();
        if queue.1.insert(work.clone()) {
            queue.0.push_back(work);
            self.ready.notify_one();
        }
    }

    fn pop(&self) -> Option<Work> {
        let mut queue = self.queue.lock();
        let work = queue.0.pop_front()?;
        queue.1.remove(&work);
        Some(work)
    }
}

/// The watch events of one resource, tagged with its index.
/// Only metadata matters to the collector (owners, finalizers, deletion),
/// so watches decode nothing else: a cluster under pod churn would
/// otherwise have every 10 KiB pod built as a full JSON tree here.
type Meta = PartialObjectMeta<DynamicObject>;

type ResourceEvents = BoxStream<'static, (usize, Result<Event<Meta>, watcher::Error>)>;

/// Runs the collector over `resources` until `shutdown` turns true.
pub async fn run(client: Client, resources: Resources, mut shutdown: signal::Receiver<bool>) {
    let streams: Vec<ResourceEvents> = (0..resources.list.len())
        .map(|i| {
            watcher::watcher(
                resources.api::<Meta>(&client, i, None),
                watcher::Config::default(),
            )
            .default_backoff()
            .map(move |event| (i, event))
            .boxed()
        })
        .collect();
    let shared = Arc::new(Shared {
        client,
        resources,
        graph: Mutex::default(),
        queue: Mutex::default(),
        ready: Notify::new(),
    });
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| tokio::spawn(worker(shared.clone(), shutdown.clone())))
        .collect();
    let mut events = futures::stream::select_all(streams);
    let mut relists: Vec<Option<HashSet<String>>> = vec![None; shared.resources.list.len()];
    let mut synced = vec![false; shared.resources.list.len()];
    let mut all_synced = synced.is_empty();
    loop {
        let (index, event) = tokio::select! {
            _ = shutdown.changed() => break,
            Some(next) = events.next() => next,
        };
        match event {
            Ok(Event::Apply(obj)) => apply(&shared, index, &obj, all_synced),
            Ok(Event::Delete(obj)) => remove(&shared, &obj.uid().unwrap_or_default()),
            Ok(Event::Init) => relists[index] = Some(HashSet::new()),
            Ok(Event::InitApply(obj)) => {
                relists[index]
                    .get_or_insert_with(HashSet::new)
                    .insert(obj.uid().unwrap_or_default());
                apply(&shared, index, &obj, all_synced);
            }
            Ok(Event::InitDone) => {
                let seen = relists[index].take().unwrap_or_default();
                let gone: Vec<String> = shared
                    .graph
                    .lock()
                    .nodes
                    .iter()
                    .filter(|(uid, node)| node.resource == index && !seen.contains(*uid))
                    .map(|(uid, _)| uid.clone())
                    .collect();
                for uid in gone {
                    remove(&shared, &uid);
                }
                synced[index] = true;
                if !all_synced && synced.iter().all(|s| *s) {
                    all_synced = true;
                    enqueue_initial_work(&shared);
                }
            }
            Err(err) => tracing::debug!(error = %err, "garbage collector: watch failed"),
        }
    }
    shared.ready.notify_waiters();
    for worker in workers {
        let _ = worker.await;
    }
}

fn node_of(index: usize, obj: &impl kube::Resource) -> GraphNode {
    let finalizers = obj.finalizers();
    GraphNode {
        resource: index,
        namespace: obj.namespace(),
        name: obj.name_any(),
        owners: obj.owner_references().to_vec(),
        deleting: obj.meta().deletion_timestamp.is_some(),
        foreground: finalizers.iter().any(|f| f == FOREGROUND),
        orphan: finalizers.iter().any(|f| f == ORPHAN),
    }
}

fn apply(shared: &Shared, index: usize, obj: &Meta, synced: bool) {
    let Some(uid) = obj.uid() else {
        return;
    };
    let node = node_of(index, obj);
    let mut graph = shared.graph.lock();
    let old = graph.nodes.insert(uid.clone(), node.clone());
    let old_owners: Vec<OwnerReference> =
        old.as_ref().map(|o| o.owners.clone()).unwrap_or_default();
    for owner in &old_owners {
        if !node.owners.iter().any(|o| o.uid == owner.uid) {
            if let Some(deps) = graph.dependents.get_mut(&owner.uid) {
                deps.remove(&uid);
            }
            if graph
                .nodes
                .get(&owner.uid)
                .is_some_and(GraphNode::waits_for_dependents)
            {
                shared.enqueue(Work::Dependents(owner.uid.clone()));
            }
        }
    }
    for owner in &node.owners {
        graph
            .dependents
            .entry(owner.uid.clone())
            .or_default()
            .insert(uid.clone());
    }
    if synced
        && node
            .owners
            .iter()
            .any(|o| !graph.nodes.contains_key(&o.uid))
    {
        shared.enqueue(Work::AttemptToDelete(uid.clone()));
    }
    if node.waits_for_dependents() {
        shared.enqueue(Work::Dependents(uid.clone()));
        if !old.as_ref().is_some_and(GraphNode::waits_for_dependents) {
            for dep in graph.dependents.get(&uid).into_iter().flatten() {
                shared.enqueue(Work::AttemptToDelete(dep.clone()));
            }
        }
    }
    if node.deleting && node.orphan {
        shared.enqueue(Work::Orphan(uid));
    }
}

fn remove(shared: &Shared, uid: &str) {
    let mut graph = shared.graph.lock();
    let Some(node) = graph.nodes.remove(uid) else {
        return;
    };
    for dep in graph.dependents.get(uid).into_iter().flatten() {
        shared.enqueue(Work::AttemptToDelete(dep.clone()));
    }
    for owner in &node.owners {
        if let Some(deps) = graph.dependents.get_mut(&owner.uid) {
            deps.remove(uid);
            if deps.is_empty() {
                graph.dependents.remove(&owner.uid);
            }
        }
        if graph
            .nodes
            .get(&owner.uid)
            .is_some_and(GraphNode::waits_for_dependents)
        {
            shared.enqueue(Work::Dependents(owner.uid.clone()));
        }
    }
}

/// After the first complete view: every object with a missing owner, and
/// every deletion waiting for the collector.
fn enqueue_initial_work(shared: &Shared) {
    let graph = shared.graph.lock();
    for (uid, node) in &graph.nodes {
        if node
            .owners
            .iter()
            .any(|o| !graph.nodes.contains_key(&o.uid))
        {
            shared.enqueue(Work::AttemptToDelete(uid.clone()));
        }
        if node.waits_for_dependents() {
            shared.enqueue(Work::Dependents(uid.clone()));
        }
        if node.deleting && node.orphan {
            shared.enqueue(Work::Orphan(uid.clone()));
        }
    }
}

async fn worker(shared: Arc<Shared>, mut shutdown: signal::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let Some(work) = shared.pop() else {
            tokio::select! {
                _ = shutdown.changed() => return,
                () = shared.ready.notified() => continue,
            }
        };
        let result = match &work {
            Work::AttemptToDelete(uid) => attempt_to_delete(&shared, uid).await,
            Work::Dependents(uid) => finish_foreground(&shared, uid).await,
            Work::Orphan(uid) => orphan_dependents(&shared, uid).await,
        };
        match result {
            Ok(()) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => {
                tracing::debug!(?work, error = %err, "garbage collector: retrying");
                let shared = shared.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(RETRY_DELAY).await;
                    shared.enqueue(work);
                });
            }
        }
    }
}

enum OwnerState {
    Solid,
    Dangling,
    WaitingForDependents,
}

async fn owner_state(
    shared: &Shared,
    dependent: &GraphNode,
    owner: &OwnerReference,
) -> Result<OwnerState, kube::Error> {
    if let Some(node) = shared.graph.lock().nodes.get(&owner.uid) {
        return Ok(if node.waits_for_dependents() {
            OwnerState::WaitingForDependents
        } else {
            OwnerState::Solid
        });
    }
    let key = (owner.api_version.clone(), owner.kind.clone());
    let Some(&index) = shared.resources.by_kind.get(&key) else {
        // An owner of a kind the server does not serve is never collected
        // against.
        return Ok(OwnerState::Solid);
    };
    let api: Api<Meta> =
        shared
            .resources
            .api(&shared.client, index, dependent.namespace.as_deref());
    Ok(match api.get_opt(&owner.name).await? {
        Some(live) if live.uid().as_deref() == Some(owner.uid.as_str()) => {
            let node = node_of(index, &live);
            if node.waits_for_dependents() {
                OwnerState::WaitingForDependents
            } else {
                OwnerState::Solid
            }
        }
        _ => OwnerState::Dangling,
    })
}

async fn attempt_to_delete(shared: &Shared, uid: &str) -> Result<(), kube::Error> {
    let Some(node) = shared.graph.lock().nodes.get(uid).cloned() else {
        return Ok(());
    };
    if node.deleting {
        return Ok(());
    }
    let mut solid = false;
    let mut stale: HashSet<String> = HashSet::new();
    let mut waiting = false;
    for owner in &node.owners {
        match owner_state(shared, &node, owner).await? {
            OwnerState::Solid => solid = true,
            OwnerState::Dangling => {
                stale.insert(owner.uid.clone());
            }
            OwnerState::WaitingForDependents => {
                waiting = true;
                stale.insert(owner.uid.clone());
            }
        }
    }
    let api = shared
        .resources
        .api(&shared.client, node.resource, node.namespace.as_deref());
    if solid {
        if stale.is_empty() {
            return Ok(());
        }
        return update_live(&api, &node.name, uid, |obj| {
            if let Some(refs) = obj.metadata.owner_references.as_mut() {
                refs.retain(|r| !stale.contains(&r.uid));
            }
        })
        .await;
    }
    let has_dependents = shared
        .graph
        .lock()
        .dependents
        .get(uid)
        .is_some_and(|d| !d.is_empty());
    let policy = if waiting && has_dependents || node.foreground {
        PropagationPolicy::Foreground
    } else if node.orphan {
        PropagationPolicy::Orphan
    } else {
        PropagationPolicy::Background
    };
    let params = DeleteParams {
        propagation_policy: Some(policy),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&node.name, &params).await {
        Ok(_) => Ok(()),
        // The object was replaced by another of the same name.
        Err(err) if is_conflict(&err) => Ok(()),
        Err(err) => Err(err),
    }
}

async fn finish_foreground(shared: &Shared, uid: &str) -> Result<(), kube::Error> {
    let (node, blocking) = {
        let graph = shared.graph.lock();
        let Some(node) = graph.nodes.get(uid).cloned() else {
            return Ok(());
        };
        let blocking: Vec<String> = graph
            .dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter(|dep| {
                graph.nodes.get(*dep).is_some_and(|d| {
                    d.owners
                        .iter()
                        .any(|o| o.uid == uid && o.block_owner_deletion == Some(true))
                })
            })
            .cloned()
            .collect();
        (node, blocking)
    };
    if !node.waits_for_dependents() {
        return Ok(());
    }
    if blocking.is_empty() {
        let api = shared
            .resources
            .api(&shared.client, node.resource, node.namespace.as_deref());
        return remove_finalizer(&api, &node.name, uid, FOREGROUND).await;
    }
    for dep in blocking {
        shared.enqueue(Work::AttemptToDelete(dep));
    }
    Ok(())
}

async fn orphan_dependents(shared: &Shared, uid: &str) -> Result<(), kube::Error> {
    let (node, dependents) = {
        let graph = shared.graph.lock();
        let Some(node) = graph.nodes.get(uid).cloned() else {
            return Ok(());
        };
        let dependents: Vec<(GraphNode, String)> = graph
            .dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| graph.nodes.get(d).map(|n| (n.clone(), d.clone())))
            .collect();
        (node, dependents)
    };
    if !(node.deleting && node.orphan) {
        return Ok(());
    }
    for (dep, dep_uid) in dependents {
        let api = shared
            .resources
            .api(&shared.client, dep.resource, dep.namespace.as_deref());
        let result = update_live(&api, &dep.name, &dep_uid, |obj| {
            if let Some(refs) = obj.metadata.owner_references.as_mut() {
                refs.retain(|r| r.uid != uid);
            }
        })
        .await;
        match result {
            Ok(()) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(err),
        }
    }
    let api = shared
        .resources
        .api(&shared.client, node.resource, node.namespace.as_deref());
    remove_finalizer(&api, &node.name, uid, ORPHAN).await
}

async fn remove_finalizer(
    api: &Api<DynamicObject>,
    name: &str,
    uid: &str,
    finalizer: &str,
) -> Result<(), kube::Error> {
    update_live(api, name, uid, |obj| {
        if let Some(finalizers) = obj.metadata.finalizers.as_mut() {
            finalizers.retain(|f| f != finalizer);
        }
    })
    .await
}

/// Reads the object, changes it and writes it back, again on conflicts;
/// nothing is written if it is gone, was replaced or did not change.
async fn update_live(
    api: &Api<DynamicObject>,
    name: &str,
    uid: &str,
    mut change: impl FnMut(&mut DynamicObject),
) -> Result<(), kube::Error> {
    let mut last = None;
    for _ in 0..UPDATE_ATTEMPTS {
        let Some(mut obj) = api.get_opt(name).await? else {
            return Ok(());
        };
        if obj.uid().as_deref() != Some(uid) {
            return Ok(());
        }
        let before = obj.metadata.clone();
        change(&mut obj);
        if obj.metadata == before {
            return Ok(());
        }
        match api.replace(name, &PostParams::default(), &obj).await {
            Ok(_) => return Ok(()),
            Err(err) if is_not_found(&err) => return Ok(()),
            Err(err) if is_conflict(&err) => last = Some(err),
            Err(err) => return Err(err),
        }
    }
    last.map_or(Ok(()), Err)
}
