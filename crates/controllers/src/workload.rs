//! What the workload controllers share: one pod watch with an index of pods
//! by controller, expectations that cover the lag between a write and its
//! watch event, pods made from templates, and the controller loop of the
//! kinds that own pods directly (ReplicaSet, Job).

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::future::ready;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector::store::Writer};
use kube::{Api, Client, Resource, ResourceExt};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio::sync::watch as signal;
use tokio::time::Instant;

/// How long a create or delete is expected to show up in the watch before
/// the controller stops waiting for it.
const EXPECTATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How soon a failed reconcile of a pod owner is tried again.
const ERROR_REQUEUE: Duration = Duration::from_secs(2);

/// Every pod in the cluster, with an index by the uid of its controller.
#[derive(Clone)]
pub struct PodIndex {
    pub store: Store<Pod>,
    by_owner: Arc<Mutex<HashMap<String, HashSet<ObjectRef<Pod>>>>>,
}

impl PodIndex {
    /// The live pods whose controller has `owner_uid`.
    pub fn owned_by(&self, owner_uid: &str) -> Vec<Arc<Pod>> {
        let mut index = self.by_owner.lock();
        let Some(refs) = index.get_mut(owner_uid) else {
            return Vec::new();
        };
        let mut pods = Vec::with_capacity(refs.len());
        refs.retain(|r| match self.store.get(r) {
            Some(pod) if controller_of(&pod.metadata).is_some_and(|o| o.uid == owner_uid) => {
                pods.push(pod);
                true
            }
            _ => false,
        });
        if refs.is_empty() {
            index.remove(owner_uid);
        }
        pods
    }

    pub async fn wait_until_ready(&self) {
        // The writer lives as long as the controllers, so this only waits.
        let _ = self.store.wait_until_ready().await;
    }
}

/// Triggers for the controllers whose pods changed.
pub struct PodTriggers {
    pub replicasets: mpsc::UnboundedReceiver<ObjectRef<ReplicaSet>>,
    pub jobs: mpsc::UnboundedReceiver<ObjectRef<Job>>,
}

/// Starts the shared pod watch: it fills the index and tells the
/// ReplicaSet and Job controllers about each change of one of their pods.
pub fn watch_pods(
    client: Client,
    mut shutdown: signal::Receiver<bool>,
) -> (PodIndex, PodTriggers, tokio::task::JoinHandle<()>) {
    let writer: Writer<Pod> = Writer::default();
    let index = PodIndex {
        store: writer.as_reader(),
        by_owner: Arc::default(),
    };
    let (rs_tx, rs_rx) = mpsc::unbounded();
    let (job_tx, job_rx) = mpsc::unbounded();
    let by_owner = index.by_owner.clone();
    let events = reflector::reflector(
        writer,
        watcher::watcher(Api::<Pod>::all(client), watcher::Config::default()).default_backoff(),
    );
    let task = tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        loop {
            let event = tokio::select! {
                _ = shutdown.changed() => break,
                event = events.next() => event,
            };
            let (pod, deleted) = match event {
                None => break,
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "controllers: pod watch failed");
                    continue;
                }
                Some(Ok(Event::Apply(pod) | Event::InitApply(pod))) => (pod, false),
                Some(Ok(Event::Delete(pod))) => (pod, true),
                Some(Ok(Event::Init | Event::InitDone)) => continue,
            };
            let Some(owner) = controller_of(&pod.metadata) else {
                continue;
            };
            let pod_ref = ObjectRef::from_obj(&pod);
            {
                let mut index = by_owner.lock();
                if deleted {
                    if let Some(refs) = index.get_mut(&owner.uid) {
                        refs.remove(&pod_ref);
                    }
                } else {
                    index.entry(owner.uid.clone()).or_default().insert(pod_ref);
                }
            }
            let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
            match (owner.api_version.as_str(), owner.kind.as_str()) {
                ("apps/v1", "ReplicaSet") => {
                    let _ = rs_tx.unbounded_send(ObjectRef::new(&owner.name).within(namespace));
                }
                ("batch/v1", "Job") => {
                    let _ = job_tx.unbounded_send(ObjectRef::new(&owner.name).within(namespace));
                }
                _ => {}
            }
        }
    });
    (
        index,
        PodTriggers {
            replicasets: rs_rx,
            jobs: job_rx,
        },
        task,
    )
}

/// The owner reference with `controller: true`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
}

/// A controller reference to `owner`, blocking its foreground deletion.
pub fn owner_reference<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    let meta = owner.meta();
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A pod built from `template`, owned by `owner`.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    owner: OwnerReference,
    generate_name: String,
) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// Whether the pod counts towards its controller's replicas: not finished
/// and not being deleted.
pub fn pod_is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && !crate::util::pod_is_terminal(pod)
}

/// Whether the pod's Ready condition is True, and since when.
pub fn ready_since(pod: &Pod) -> Option<jiff::Timestamp> {
    let condition = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(
        condition
            .last_transition_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
    )
}

/// Pod creations and deletions a controller made that its pod cache has
/// not shown yet, so that a reconcile right after a write neither creates
/// nor deletes the same pods twice.
#[derive(Default)]
pub struct Expectations {
    owners: Mutex<HashMap<String, Pending>>,
}

#[derive(Default)]
struct Pending {
    creating: HashMap<String, Instant>,
    deleting: HashMap<String, Instant>,
}

/// The writes of one owner still in flight.
pub struct InFlight {
    /// Names of the pods created but not yet in the cache.
    pub creating: Vec<String>,
    /// Pods deleted but still live in the cache.
    pub deleting: HashSet<String>,
}

impl Expectations {
    /// Forgets the writes the cache (`live`: a pod's name to whether it is
    /// live in the cache, `None` when absent) now shows, or that took too
    /// long, and returns the rest.
    pub fn in_flight(&self, owner_uid: &str, live: impl Fn(&str) -> Option<bool>) -> InFlight {
        let mut owners = self.owners.lock();
        let Some(pending) = owners.get_mut(owner_uid) else {
            return InFlight {
                creating: Vec::new(),
                deleting: HashSet::new(),
            };
        };
        let now = Instant::now();
        pending.creating.retain(|name, at| {
            live(name).is_none() && now.duration_since(*at) < EXPECTATION_TIMEOUT
        });
        pending.deleting.retain(|name, at| {
            live(name) == Some(true) && now.duration_since(*at) < EXPECTATION_TIMEOUT
        });
        let in_flight = InFlight {
            creating: pending.creating.keys().cloned().collect(),
            deleting: pending.deleting.keys().cloned().collect(),
        };
        if pending.creating.is_empty() && pending.deleting.is_empty() {
            owners.remove(owner_uid);
        }
        in_flight
    }

    pub fn created(&self, owner_uid: &str, name: String) {
        let mut owners = self.owners.lock();
        owners
            .entry(owner_uid.to_string())
            .or_default()
            .creating
            .insert(name, Instant::now());
    }

    pub fn deleted(&self, owner_uid: &str, name: String) {
        let mut owners = self.owners.lock();
        owners
            .entry(owner_uid.to_string())
            .or_default()
            .deleting
            .insert(name, Instant::now());
    }
}

/// Whether `pod` in `namespace` is in the cache and active (`Some(true)`),
/// in the cache but going (`Some(false)`), or absent.
pub fn cache_state(store: &Store<Pod>, namespace: &str, name: &str) -> Option<bool> {
    store
        .get(&ObjectRef::new(name).within(namespace))
        .map(|p| pod_is_active(&p))
}

/// Runs `futures` in batches of 1, 2, 4, ... and stops after the first
/// batch with an error, so that a failing request is not sent hundreds of
/// times at once.
pub async fn slow_start<F, T>(
    count: usize,
    mut make: impl FnMut(usize) -> F,
) -> Result<Vec<T>, kube::Error>
where
    F: Future<Output = Result<T, kube::Error>>,
{
    let mut done = Vec::with_capacity(count);
    let mut batch = 1;
    let mut next = 0;
    while next < count {
        let size = batch.min(count - next);
        let results = futures::future::join_all((next..next + size).map(&mut make)).await;
        next += size;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(value) => done.push(value),
                Err(err) => first_error = first_error.or(Some(err)),
            }
        }
        if let Some(err) = first_error {
            return Err(err);
        }
        batch *= 2;
    }
    Ok(done)
}

/// Drives a controller's result stream, logging failed reconciles.
pub async fn drain<S, T, E>(results: S)
where
    S: futures::Stream<Item = Result<T, E>>,
    E: std::fmt::Display,
{
    results
        .for_each(|result| {
            if let Err(err) = result {
                tracing::debug!(error = %err, "reconcile failed");
            }
            ready(())
        })
        .await;
}

/// What the controller of a kind that owns pods directly reconciles with.
pub struct OwnerContext {
    pub client: Client,
    pub pods: PodIndex,
    pub expectations: Expectations,
}

impl OwnerContext {
    /// Creates `count` pods made by `make` for the owner `owner_uid`, in
    /// [`slow_start`] batches, and expects each in the pod watch.
    pub async fn create_pods(
        &self,
        api: &Api<Pod>,
        owner_uid: &str,
        count: usize,
        make: impl Fn(usize) -> Pod,
    ) -> Result<(), kube::Error> {
        slow_start(count, |i| {
            let pod = make(i);
            async move {
                let created = api.create(&PostParams::default(), &pod).await?;
                self.expectations.created(owner_uid, created.name_any());
                Ok(())
            }
        })
        .await
        .map(drop)
    }

    /// Deletes `pods` of the owner `owner_uid`, in [`slow_start`] batches,
    /// and expects each deletion in the pod watch. The pod's uid is a
    /// precondition, so a namesake created since is left alone; a pod
    /// already gone counts as deleted.
    pub async fn delete_pods(
        &self,
        api: &Api<Pod>,
        owner_uid: &str,
        pods: &[impl AsRef<Pod> + Sync],
    ) -> Result<(), kube::Error> {
        slow_start(pods.len(), |i| {
            let pod = pods[i].as_ref();
            async move {
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: pod.uid(),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match api.delete(&pod.name_any(), &params).await {
                    Ok(_) => {
                        self.expectations.deleted(owner_uid, pod.name_any());
                        Ok(())
                    }
                    Err(err) if crate::util::is_not_found(&err) => Ok(()),
                    Err(err) => Err(err),
                }
            }
        })
        .await
        .map(drop)
    }
}

/// Runs the controller of `K`, a kind that owns pods directly, until
/// `shutdown` turns true: `reconcile` runs on every change of a `K` and on
/// every `trigger` the pod watch sends for the owner of a changed pod.
pub async fn run_owner_controller<K, F, Fut>(
    client: Client,
    pods: PodIndex,
    triggers: mpsc::UnboundedReceiver<ObjectRef<K>>,
    mut shutdown: signal::Receiver<bool>,
    reconcile: F,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: FnMut(Arc<K>, Arc<OwnerContext>) -> Fut,
    Fut: Future<Output = Result<Action, kube::Error>> + Send + 'static,
{
    let context = Arc::new(OwnerContext {
        client: client.clone(),
        pods,
        expectations: Expectations::default(),
    });
    let results = Controller::new(Api::<K>::all(client), watcher::Config::default())
        .reconcile_on(triggers)
        .graceful_shutdown_on(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .run(reconcile, |_, _, _| Action::requeue(ERROR_REQUEUE), context);
    drain(results).await;
}
