//! Pod workers: the node watches the pods bound to it (field selector
//! `spec.nodeName=<node>`) and runs one worker per pod.

mod probe;
mod spec;
mod state;
mod worker;

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::NodeConfig;
use crate::events::Recorder;
use crate::images::ImageManager;
use crate::logs::LogRegistry;
use crate::runtime::Runtime;

/// How long shutdown waits for a pod worker to stop its containers.
const WORKER_STOP_WAIT: Duration = Duration::from_secs(15);

/// What every pod worker of a node shares.
pub struct Context {
    pub client: kube::Client,
    pub config: NodeConfig,
    pub runtime: Arc<dyn Runtime>,
    pub images: ImageManager,
    pub recorder: Recorder,
    pub logs: LogRegistry,
    /// The node's address, reported as the pods' `hostIP`.
    pub host_ip: String,
    /// Whether pods share the node's network (the `process` runtime) and so
    /// get its address as `podIP`.
    pub host_network: bool,
}

struct WorkerHandle {
    updates: watch::Sender<Option<Arc<Pod>>>,
    task: JoinHandle<()>,
}

/// Hands out pod IPs: the node's own address when pods share its network,
/// otherwise addresses from a /24 chosen by the node's name.
struct PodIps {
    subnet: (u8, u8),
    next: AtomicU32,
}

impl PodIps {
    fn new(node: &str) -> Self {
        let mut hasher = DefaultHasher::new();
        node.hash(&mut hasher);
        let [a, b, ..] = hasher.finish().to_le_bytes();
        PodIps {
            subnet: (a, b),
            next: AtomicU32::new(0),
        }
    }

    fn allocate(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed) % 254 + 1;
        format!("10.{}.{}.{n}", self.subnet.0, self.subnet.1)
    }
}

/// Watches the node's pods and runs their workers until `shutdown` turns
/// true; then stops every container.
pub async fn run(ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let selector = format!("spec.nodeName={}", ctx.config.name);
    let stream = watcher(api, watcher::Config::default().fields(&selector));
    let mut stream = std::pin::pin!(stream);
    let ips = PodIps::new(&ctx.config.name);
    let mut workers: HashMap<String, WorkerHandle> = HashMap::new();
    let mut listed: Option<HashSet<String>> = None;
    loop {
        let event = tokio::select! {
            event = stream.next() => event,
            () = crate::stopped(&mut shutdown) => break,
        };
        match event {
            Some(Ok(watcher::Event::Init)) => listed = Some(HashSet::new()),
            Some(Ok(watcher::Event::InitApply(pod))) => {
                if let (Some(seen), Some(uid)) = (listed.as_mut(), pod.metadata.uid.clone()) {
                    seen.insert(uid);
                }
                dispatch(&ctx, &ips, &mut workers, pod);
            }
            Some(Ok(watcher::Event::InitDone)) => {
                if let Some(seen) = listed.take() {
                    workers.retain(|uid, worker| {
                        let keep = seen.contains(uid);
                        if !keep {
                            let _ = worker.updates.send(None);
                        }
                        keep
                    });
                }
            }
            Some(Ok(watcher::Event::Apply(pod))) => dispatch(&ctx, &ips, &mut workers, pod),
            Some(Ok(watcher::Event::Delete(pod))) => {
                if let Some(worker) = pod.metadata.uid.as_ref().and_then(|u| workers.remove(u)) {
                    let _ = worker.updates.send(None);
                }
            }
            Some(Err(err)) => {
                tracing::warn!(%err, node = ctx.config.name, "pod watch failed, retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            None => break,
        }
        workers.retain(|_, worker| !worker.task.is_finished());
    }
    for worker in workers.values() {
        let _ = worker.updates.send(None);
    }
    for (_, worker) in workers {
        let _ = tokio::time::timeout(WORKER_STOP_WAIT, worker.task).await;
    }
}

/// Passes a pod to its worker, starting one for a pod new to the node.
fn dispatch(
    ctx: &Arc<Context>,
    ips: &PodIps,
    workers: &mut HashMap<String, WorkerHandle>,
    pod: Pod,
) {
    let Some(uid) = pod.metadata.uid.clone() else {
        return;
    };
    let pod = Arc::new(pod);
    if let Some(worker) = workers.get(&uid) {
        let _ = worker.updates.send(Some(pod));
        return;
    }
    let finished = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    if finished && pod.metadata.deletion_timestamp.is_none() {
        return;
    }
    let pod_ip = if ctx.host_network {
        ctx.host_ip.clone()
    } else {
        ips.allocate()
    };
    let (updates, receiver) = watch::channel(Some(pod.clone()));
    let worker = worker::Worker::new(ctx.clone(), pod, receiver, pod_ip);
    let task = tokio::spawn(worker.run());
    workers.insert(uid, WorkerHandle { updates, task });
}
