//! Kubernetes events about pods, written in the background so a slow API
//! server never stalls a pod worker.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, PostParams};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::images::{EventRecorder, EventType};

/// Events waiting to be written; beyond this, new events are dropped (as
/// client-go's broadcaster drops them when its queue is full).
const QUEUE: usize = 1024;

/// Queues events and writes them as core/v1 Events from the node's kubelet.
#[derive(Clone)]
pub struct Recorder {
    node: String,
    queue: mpsc::Sender<Event>,
}

impl Recorder {
    /// A recorder writing through `client`, and the task doing the writing
    /// (it ends when every recorder clone is dropped).
    pub fn start(client: kube::Client, node: &str) -> (Recorder, JoinHandle<()>) {
        let (queue, mut pending) = mpsc::channel::<Event>(QUEUE);
        let task = tokio::spawn(async move {
            while let Some(event) = pending.recv().await {
                let namespace = event.metadata.namespace.clone().unwrap_or_default();
                let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
                if let Err(err) = api.create(&PostParams::default(), &event).await {
                    tracing::debug!(%err, "cannot write event");
                }
            }
        });
        (
            Recorder {
                node: node.to_owned(),
                queue,
            },
            task,
        )
    }
}

/// The time in nanoseconds, made strictly increasing within the process so
/// that two events of the same nanosecond still get distinct, ordered names.
fn unique_nanos(timestamp: Timestamp) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = u64::try_from(timestamp.as_nanosecond()).unwrap_or_default();
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

impl EventRecorder for Recorder {
    fn event(&self, object: &ObjectReference, event_type: EventType, reason: &str, message: &str) {
        let timestamp = Timestamp::now();
        let now = Time(timestamp);
        // Named after the object and the time in nanoseconds, as the
        // kubelet names them: a namespace's events then list in the order
        // they happened (`kubectl describe` keeps that order for events of
        // the same second, so Pulling comes before Pulled).
        let name = format!(
            "{}.{:x}",
            object.name.as_deref().unwrap_or("unknown"),
            unique_nanos(timestamp)
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: object.namespace.clone().or_else(|| Some("default".into())),
                ..ObjectMeta::default()
            },
            involved_object: object.clone(),
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            type_: Some(event_type.as_str().to_owned()),
            source: Some(EventSource {
                component: Some("kubelet".into()),
                host: Some(self.node.clone()),
            }),
            reporting_component: Some("kubelet".into()),
            reporting_instance: Some(self.node.clone()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Event::default()
        };
        if self.queue.try_send(event).is_err() {
            tracing::debug!(reason, "event queue full, event dropped");
        }
    }
}
