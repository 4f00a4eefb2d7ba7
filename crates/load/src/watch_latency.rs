//! watch-latency: how long the watch path takes to tell controllers about
//! changes. Each of N informers (a kube-rs watcher feeding a reflector
//! cache) hands every event to its own work queue, as a controller does;
//! a writer driver (churn or thrash) runs alongside.
//!
//! Two latencies per event:
//! - notification: from the writer's send time to the informer's receipt.
//!   Creates and updates carry the send time in [`SENT_AT_ANNOTATION`]; a
//!   delete cannot change the object, so writers note its send time in the
//!   shared [`DeleteLog`] instead.
//! - queue: from enqueue to dequeue by the queue's worker.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use kube::api::DynamicObject;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector};
use measure::{Class, ClassId, Kind, Outcome, Recorder};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::churn::dynamic_api;
use crate::driver::{Driver, Objects, Writer, options_of, required};
use crate::objects::now_ns;
use crate::resource::Resource;
use crate::{Context, Error, Output, RUN_LABEL, SENT_AT_ANNOTATION};

/// How long informers may take to list and start watching.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// After the writers stop, informers keep running until no event has
/// arrived for this long (or [`SETTLE_MAX`] passed), so the last writes
/// are still measured.
const SETTLE_QUIET: Duration = Duration::from_millis(500);
const SETTLE_MAX: Duration = Duration::from_secs(10);

/// Options of the watch-latency measurement.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WatchLatency {
    /// Informers watching the run's objects.
    pub watchers: usize,
    /// What writes the objects they watch.
    pub writer: Writer,
}

#[async_trait]
impl Driver for WatchLatency {
    fn name(&self) -> &str {
        "watch-latency"
    }

    fn classes(&self) -> Vec<Class> {
        let mut classes = Self::classes();
        classes.extend(self.writer.classes());
        classes
    }

    fn validate(&self) -> Result<(), Error> {
        if self.watchers == 0 {
            return Err(Error::Invalid("--watchers must be positive".into()));
        }
        if matches!(self.writer, Writer::None) {
            return Err(Error::Invalid(
                "watch-latency needs a writer: --driver churn or --driver thrash".into(),
            ));
        }
        self.writer.validate()
    }

    fn options(&self) -> Value {
        options_of(self)
    }

    async fn run(&self, ctx: &Context, objects: Option<&Objects>) -> Result<Output, Error> {
        let objects = required(objects)?;
        let informers = self.start(ctx, &objects.resource).await?;
        let written = self
            .writer
            .write(ctx, objects, Some(informers.delete_log()))
            .await;
        let seen = informers.finish().await;
        let mut output = written?;
        output.extra.insert("watch_latency".to_owned(), seen);
        Ok(output)
    }
}

/// Send times of deletes, by object name, until every informer has seen
/// the deletion.
#[derive(Clone, Debug)]
pub struct DeleteLog {
    entries: Arc<Mutex<HashMap<String, (i64, usize)>>>,
    watchers: usize,
}

impl DeleteLog {
    fn new(watchers: usize) -> Self {
        Self {
            entries: Arc::default(),
            watchers,
        }
    }

    /// Notes that a delete of `name` is being sent now.
    pub fn sent(&self, name: &str) {
        self.entries
            .lock()
            .insert(name.to_owned(), (now_ns(), self.watchers));
    }

    fn received(&self, name: &str) -> Option<i64> {
        let mut entries = self.entries.lock();
        let (sent, pending) = entries.get_mut(name)?;
        let sent = *sent;
        *pending -= 1;
        if *pending == 0 {
            entries.remove(name);
        }
        Some(sent)
    }
}

impl WatchLatency {
    /// Notification latency per event type, and work queue latency.
    pub fn classes() -> Vec<Class> {
        vec![
            Class::new("notify-added", Kind::Other),
            Class::new("notify-modified", Kind::Other),
            Class::new("notify-deleted", Kind::Other),
            Class::new("queue", Kind::Other),
        ]
    }

    /// Starts the informers on the run's objects of `resource` and returns
    /// once every one of them has synced, so the writers' first objects are
    /// already watched.
    pub async fn start(&self, ctx: &Context, resource: &Resource) -> Result<Informers, Error> {
        let classes = EventClasses {
            added: ctx.measurement.class("notify-added")?,
            modified: ctx.measurement.class("notify-modified")?,
            deleted: ctx.measurement.class("notify-deleted")?,
            queue: ctx.measurement.class("queue")?,
        };
        let deletes = DeleteLog::new(self.watchers);
        let counters = Arc::new(Counters::default());
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut synced = Vec::new();
        for _ in 0..self.watchers {
            let (ready, ready_rx) = oneshot::channel();
            synced.push(ready_rx);
            let informer = Informer {
                resource: resource.clone(),
                api: dynamic_api(ctx, resource),
                selector: format!("{RUN_LABEL}={}", ctx.run_id),
                recorder: ctx.measurement.recorder(),
                classes,
                deletes: deletes.clone(),
                counters: Arc::clone(&counters),
                stop: stop.clone(),
            };
            tasks.spawn(informer.run(ready));
        }
        let all_synced = futures::future::join_all(synced);
        match tokio::time::timeout(SYNC_TIMEOUT, all_synced).await {
            Ok(results) if results.iter().all(Result::is_ok) => {}
            _ => {
                stop.cancel();
                return Err(Error::Invalid(format!(
                    "the informers did not sync within {} s",
                    SYNC_TIMEOUT.as_secs()
                )));
            }
        }
        Ok(Informers {
            tasks,
            stop,
            deletes,
            counters,
        })
    }
}

/// Running informers.
#[derive(Debug)]
pub struct Informers {
    tasks: JoinSet<()>,
    stop: CancellationToken,
    deletes: DeleteLog,
    counters: Arc<Counters>,
}

impl Informers {
    /// The log the writers note their deletes in.
    pub fn delete_log(&self) -> DeleteLog {
        self.deletes.clone()
    }

    /// Lets the last events arrive, stops the informers, and reports what
    /// they saw.
    pub async fn finish(mut self) -> serde_json::Value {
        let settle_start = Instant::now();
        let mut last = self.counters.events();
        loop {
            tokio::time::sleep(SETTLE_QUIET).await;
            let now = self.counters.events();
            if now == last || settle_start.elapsed() > SETTLE_MAX {
                break;
            }
            last = now;
        }
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        let counters = &self.counters;
        json!({
            "events": {
                "added": counters.added.load(Ordering::Relaxed),
                "modified": counters.modified.load(Ordering::Relaxed),
                "deleted": counters.deleted.load(Ordering::Relaxed),
            },
            "unstamped_events": counters.unstamped.load(Ordering::Relaxed),
            "watch_restarts": counters.restarts.load(Ordering::Relaxed),
        })
    }
}

#[derive(Debug, Default)]
struct Counters {
    added: AtomicU64,
    modified: AtomicU64,
    deleted: AtomicU64,
    unstamped: AtomicU64,
    restarts: AtomicU64,
}

impl Counters {
    fn events(&self) -> u64 {
        self.added.load(Ordering::Relaxed)
            + self.modified.load(Ordering::Relaxed)
            + self.deleted.load(Ordering::Relaxed)
    }
}

#[derive(Clone, Copy, Debug)]
struct EventClasses {
    added: ClassId,
    modified: ClassId,
    deleted: ClassId,
    queue: ClassId,
}

struct Informer {
    resource: Resource,
    api: kube::Api<DynamicObject>,
    selector: String,
    recorder: Recorder,
    classes: EventClasses,
    deletes: DeleteLog,
    counters: Arc<Counters>,
    stop: CancellationToken,
}

impl Informer {
    async fn run(self, ready: oneshot::Sender<()>) {
        let writer = reflector::store::Writer::<DynamicObject>::new(self.resource.api.clone());
        let config = watcher::Config::default().labels(&self.selector);
        let events =
            reflector(writer, watcher::watcher(self.api.clone(), config)).default_backoff();
        futures::pin_mut!(events);
        let queue = Arc::new(WorkQueue::default());
        let worker = tokio::spawn(drain_queue(
            Arc::clone(&queue),
            self.recorder.clone(),
            self.classes.queue,
            self.stop.clone(),
        ));
        let mut ready = Some(ready);
        let mut known: HashSet<String> = HashSet::new();
        let mut initial: HashSet<String> = HashSet::new();
        loop {
            let event = tokio::select! {
                () = self.stop.cancelled() => break,
                event = events.next() => event,
            };
            let Some(event) = event else { break };
            let received = now_ns();
            match event {
                Ok(Event::Init) => {
                    if ready.is_none() {
                        self.counters.restarts.fetch_add(1, Ordering::Relaxed);
                    }
                    initial.clear();
                }
                Ok(Event::InitApply(object)) => {
                    initial.insert(object.metadata.name.unwrap_or_default());
                }
                Ok(Event::InitDone) => {
                    // Objects gone while the watch was down were deleted
                    // unseen; they are not measured.
                    known = std::mem::take(&mut initial);
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                }
                Ok(Event::Apply(object)) => {
                    let name = object.metadata.name.clone().unwrap_or_default();
                    let (class, counter) = if known.insert(name.clone()) {
                        (self.classes.added, &self.counters.added)
                    } else {
                        (self.classes.modified, &self.counters.modified)
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    match sent_at(&object) {
                        Some(sent) => self.record(class, sent, received),
                        None => {
                            self.counters.unstamped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    queue.add(name);
                }
                Ok(Event::Delete(object)) => {
                    let name = object.metadata.name.unwrap_or_default();
                    known.remove(&name);
                    self.counters.deleted.fetch_add(1, Ordering::Relaxed);
                    match self.deletes.received(&name) {
                        Some(sent) => self.record(self.classes.deleted, sent, received),
                        None => {
                            self.counters.unstamped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    queue.add(name);
                }
                Err(err) => {
                    tracing::debug!(error = %err, "informer watch failed; it restarts with backoff");
                }
            }
        }
        worker.abort();
    }

    fn record(&self, class: ClassId, sent_ns: i64, received_ns: i64) {
        let latency = Duration::from_nanos(u64::try_from(received_ns - sent_ns).unwrap_or(0));
        self.recorder.record(class, latency, Outcome::Ok);
    }
}

fn sent_at(object: &DynamicObject) -> Option<i64> {
    object
        .metadata
        .annotations
        .as_ref()?
        .get(SENT_AT_ANNOTATION)?
        .parse()
        .ok()
}

/// A controller's work queue: a key queued again before its worker took
/// it is queued once, and its latency counts from the first enqueue.
#[derive(Debug, Default)]
struct WorkQueue {
    state: Mutex<QueueState>,
    ready: Notify,
}

#[derive(Debug, Default)]
struct QueueState {
    order: VecDeque<(String, Instant)>,
    queued: HashSet<String>,
}

impl WorkQueue {
    fn add(&self, key: String) {
        let mut state = self.state.lock();
        if state.queued.insert(key.clone()) {
            state.order.push_back((key, Instant::now()));
            drop(state);
            self.ready.notify_one();
        }
    }

    fn take(&self) -> Option<(String, Instant)> {
        let mut state = self.state.lock();
        let (key, enqueued) = state.order.pop_front()?;
        state.queued.remove(&key);
        Some((key, enqueued))
    }
}

async fn drain_queue(
    queue: Arc<WorkQueue>,
    recorder: Recorder,
    class: ClassId,
    stop: CancellationToken,
) {
    loop {
        while let Some((_key, enqueued)) = queue.take() {
            recorder.record(class, enqueued.elapsed(), Outcome::Ok);
        }
        tokio::select! {
            () = queue.ready.notified() => {}
            () = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_queue_deduplicates_queued_keys() {
        let queue = WorkQueue::default();
        queue.add("a".into());
        queue.add("b".into());
        queue.add("a".into());
        assert_eq!(queue.take().map(|(key, _)| key).as_deref(), Some("a"));
        queue.add("a".into());
        assert_eq!(queue.take().map(|(key, _)| key).as_deref(), Some("b"));
        assert_eq!(queue.take().map(|(key, _)| key).as_deref(), Some("a"));
        assert!(queue.take().is_none());
    }

    #[test]
    fn a_delete_is_forgotten_once_every_watcher_saw_it() {
        let log = DeleteLog::new(2);
        log.sent("x");
        assert!(log.received("x").is_some());
        assert!(log.received("x").is_some());
        assert!(log.received("x").is_none());
    }
}
