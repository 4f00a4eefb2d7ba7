//! watch-loop: clients that loop over time-limited watches, as many
//! short-lived controllers and `kubectl get --watch` users do. Each watch
//! resumes from the last resourceVersion the client saw; a watch that
//! answers 410 Gone (its version was compacted away) is recovered by
//! listing again, and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use kube::Api;
use kube::api::{DynamicObject, ListParams, WatchEvent, WatchParams};
use measure::{Class, ClassId, Kind, Outcome, Recorder};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::churn::dynamic_api;
use crate::driver::{Driver, Objects, Writer, options_of, required};
use crate::resource::Resource;
use crate::{Context, Error, Output, RUN_LABEL, outcome};

/// Pause after a failed watch before the next, so that a server that is
/// down is not hammered by reconnects.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Options of the watch-loop driver.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WatchLoop {
    /// Concurrent watching clients.
    pub clients: usize,
    /// Server-side time limit of each watch.
    #[serde(with = "crate::serde_duration")]
    pub watch_timeout: Duration,
    /// What writes the objects they watch.
    pub writer: Writer,
}

impl WatchLoop {
    /// Establishing a watch (until the server's response headers), and the
    /// relists that recover from 410 Gone.
    pub fn classes() -> Vec<Class> {
        vec![
            Class::new("watch-establish", Kind::Other),
            Class::new("relist", Kind::ListNamespaced),
        ]
    }

    /// The server-side time limit of each watch, in whole seconds.
    fn timeout_secs(&self) -> Result<u32, Error> {
        u32::try_from(self.watch_timeout.as_secs())
            .ok()
            .filter(|secs| *secs > 0)
            .ok_or_else(|| Error::Invalid("--watch-timeout must be at least 1s".into()))
    }

    /// Starts the clients; they loop until `ctx.stop` is cancelled.
    pub fn start(&self, ctx: &Context, resource: &Resource) -> Result<Watchers, Error> {
        let timeout = self.timeout_secs()?;
        let shared = Arc::new(Shared {
            api: dynamic_api(ctx, resource),
            selector: format!("{RUN_LABEL}={}", ctx.run_id),
            timeout,
            establish: ctx.measurement.class("watch-establish")?,
            relist: ctx.measurement.class("relist")?,
            counters: Counters::default(),
        });
        let mut tasks = JoinSet::new();
        for _ in 0..self.clients {
            let shared = Arc::clone(&shared);
            let recorder = ctx.measurement.recorder();
            let stop = ctx.stop.clone();
            tasks.spawn(async move {
                let mut version = None;
                while !stop.is_cancelled() {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = shared.watch_once(&mut version, &recorder) => {}
                    }
                }
            });
        }
        Ok(Watchers { tasks, shared })
    }
}

#[async_trait]
impl Driver for WatchLoop {
    fn name(&self) -> &str {
        "watch-loop"
    }

    fn classes(&self) -> Vec<Class> {
        let mut classes = Self::classes();
        classes.extend(self.writer.classes());
        classes
    }

    fn validate(&self) -> Result<(), Error> {
        if self.clients == 0 {
            return Err(Error::Invalid("--clients must be positive".into()));
        }
        self.timeout_secs()?;
        self.writer.validate()
    }

    fn options(&self) -> Value {
        options_of(self)
    }

    async fn run(&self, ctx: &Context, objects: Option<&Objects>) -> Result<Output, Error> {
        let objects = required(objects)?;
        let watchers = self.start(ctx, &objects.resource)?;
        let written = self.writer.write(ctx, objects, None).await;
        let seen = watchers.finish().await;
        let mut output = written?;
        output.extra.insert("watch_loop".to_owned(), seen);
        Ok(output)
    }
}

/// Running watch clients.
pub struct Watchers {
    tasks: JoinSet<()>,
    shared: Arc<Shared>,
}

impl Watchers {
    /// Waits for the clients to stop (they end with the run) and reports
    /// what they saw.
    pub async fn finish(mut self) -> serde_json::Value {
        while self.tasks.join_next().await.is_some() {}
        let counters = &self.shared.counters;
        json!({
            "watches": counters.watches.load(Ordering::Relaxed),
            "events": counters.events.load(Ordering::Relaxed),
            "bookmarks": counters.bookmarks.load(Ordering::Relaxed),
            "gone_410": counters.gone.load(Ordering::Relaxed),
            "gone_410_recovered": counters.recovered.load(Ordering::Relaxed),
            "failed_watches": counters.failed.load(Ordering::Relaxed),
        })
    }
}

#[derive(Debug, Default)]
struct Counters {
    watches: AtomicU64,
    events: AtomicU64,
    bookmarks: AtomicU64,
    gone: AtomicU64,
    recovered: AtomicU64,
    failed: AtomicU64,
}

struct Shared {
    api: Api<DynamicObject>,
    selector: String,
    timeout: u32,
    establish: ClassId,
    relist: ClassId,
    counters: Counters,
}

impl Shared {
    /// One watch, from `version` (listing first when there is none), until
    /// the server ends it.
    async fn watch_once(&self, version: &mut Option<String>, recorder: &Recorder) {
        let from = match version.clone() {
            Some(from) => from,
            None => match self.list_version(recorder).await {
                Some(from) => from,
                None => {
                    tokio::time::sleep(RETRY_PAUSE).await;
                    return;
                }
            },
        };
        let params = WatchParams::default()
            .labels(&self.selector)
            .timeout(self.timeout);
        let started = Instant::now();
        let result = self.api.watch(&params, &from).await;
        recorder.record(self.establish, started.elapsed(), outcome::of(&result));
        let stream = match result {
            Ok(stream) => stream,
            Err(err) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                if outcome::status_code(&err) == Some(410) {
                    self.gone(version, recorder).await;
                } else {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                return;
            }
        };
        self.counters.watches.fetch_add(1, Ordering::Relaxed);
        *version = Some(from);
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(WatchEvent::Added(object))
                | Ok(WatchEvent::Modified(object))
                | Ok(WatchEvent::Deleted(object)) => {
                    self.counters.events.fetch_add(1, Ordering::Relaxed);
                    *version = object.metadata.resource_version;
                }
                Ok(WatchEvent::Bookmark(bookmark)) => {
                    self.counters.bookmarks.fetch_add(1, Ordering::Relaxed);
                    *version = Some(bookmark.metadata.resource_version);
                }
                Ok(WatchEvent::Error(status)) if status.code == 410 => {
                    self.gone(version, recorder).await;
                    return;
                }
                Ok(WatchEvent::Error(status)) => {
                    tracing::debug!(?status, "watch ended with an error");
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(err) => {
                    tracing::debug!(error = %err, "watch stream broke");
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    /// Recovers from 410 Gone: the next watch starts from a fresh list.
    async fn gone(&self, version: &mut Option<String>, recorder: &Recorder) {
        self.counters.gone.fetch_add(1, Ordering::Relaxed);
        *version = self.list_version(recorder).await;
        if version.is_some() {
            self.counters.recovered.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn list_version(&self, recorder: &Recorder) -> Option<String> {
        let params = ListParams::default().labels(&self.selector);
        let started = Instant::now();
        let result = self.api.list_metadata(&params).await;
        let counted = match &result {
            Ok(_) => Outcome::Ok,
            Err(err) => outcome::failure(err),
        };
        recorder.record(self.relist, started.elapsed(), counted);
        result.ok()?.metadata.resource_version
    }
}
