//! Serving API watches: the initial state, then changes from the watch
//! cache as newline-delimited JSON watch events (or length-prefixed
//! protobuf ones), with bookmarks and a server-side timeout.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};
use store::EventKind;
use tokio::sync::mpsc;

use crate::api::{Api, Filter};
use crate::error::ApiError;
use crate::query::ListOptions;
use crate::registry::ResourceDef;
use crate::table;
use crate::watchcache::{CacheWatch, CachedObject, Delivery, WatchStart};

/// Settings of the watch endpoint.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// How often a watch that allows bookmarks gets one.
    pub bookmark_interval: Duration,
    /// The longest a watch stays open when the client gives no timeout.
    pub max_timeout: Duration,
    /// How long a watch waits for its client to accept the next event
    /// before it is closed: a client that stops reading must not hold the
    /// watch (and what it buffers) open.
    pub stall_timeout: Duration,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            bookmark_interval: Duration::from_secs(60),
            max_timeout: Duration::from_secs(1800),
            stall_timeout: Duration::from_secs(60),
        }
    }
}

/// How a watch's events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    /// JSON events whose objects are Tables (`kubectl get -w`).
    Table,
    Protobuf,
}

/// Where a watch starts, from its resourceVersion and sendInitialEvents.
enum Plan {
    /// Initial state read from the store (resourceVersion unset).
    ConsistentState,
    /// Initial state from the watch cache (resourceVersion 0).
    CachedState,
    /// Changes after a revision.
    After(i64),
    /// Changes from now on, no initial state.
    Now,
}

/// Frames of one watch, ready to become a response body. Dropping the
/// receiver (the client went away) ends the watch.
pub struct WatchStream {
    pub frames: mpsc::Receiver<Bytes>,
}

/// Starts a watch. Errors before the first byte (bad selectors, a version
/// from the future) are returned as HTTP errors; a version too old for the
/// cache becomes an ERROR event, as upstream sends it.
pub async fn start(
    api: Arc<Api>,
    def: Arc<ResourceDef>,
    namespace: Option<String>,
    opts: ListOptions,
    format: Format,
    settings: &WatchSettings,
    on_end: impl FnOnce() + Send + 'static,
) -> Result<WatchStream, ApiError> {
    let index_value = Filter::new(&def, &opts)?.index_value();
    let cache = api.cache(&def);
    cache.wait_for(0, Duration::from_secs(10)).await?;
    let prefix = def.list_prefix(namespace.as_deref());
    let initial_events_end = opts.send_initial_events == Some(true);
    if initial_events_end && !opts.allow_bookmarks {
        return Err(ApiError::invalid(
            "ListOptions",
            Default::default(),
            vec![crate::error::FieldError::forbidden(
                "allowWatchBookmarks",
                "allowWatchBookmarks must be set to true when sendInitialEvents is set",
            )],
        ));
    }
    let plan = match (opts.send_initial_events, opts.resource_version.as_deref()) {
        (Some(false), None | Some("0")) => Plan::Now,
        (Some(true), Some(rv)) if rv != "0" => {
            cache
                .wait_for(
                    crate::query::parse_resource_version(rv)?,
                    Duration::from_secs(3),
                )
                .await?;
            Plan::CachedState
        }
        (_, None) => Plan::ConsistentState,
        (_, Some("0")) => Plan::CachedState,
        (_, Some(rv)) => Plan::After(crate::query::parse_resource_version(rv)?),
    };
    let (tx, rx) = mpsc::channel(64);
    let registered: Result<(Vec<Arc<CachedObject>>, CacheWatch), ApiError> = match plan {
        Plan::CachedState => cache
            .watch(&prefix, index_value, WatchStart::Current)
            .map(|mut w| (std::mem::take(&mut w.initial), w)),
        Plan::ConsistentState => {
            // Read the store, then follow the cache from exactly that
            // revision: the initial state is as fresh as a quorum read.
            let listed = api
                .store
                .list(store::ListRequest {
                    prefix: prefix.clone(),
                    ..Default::default()
                })
                .await?;
            let initial = listed
                .kvs
                .iter()
                .map(|kv| api.decode_at(&def, kv))
                .collect::<Result<Vec<_>, _>>()?;
            cache
                .watch(&prefix, index_value, WatchStart::After(listed.revision))
                .map(|w| (initial, w))
        }
        Plan::Now => {
            let current = api.store.current_revision().await?;
            cache
                .watch(&prefix, index_value, WatchStart::After(current))
                .map(|w| (Vec::new(), w))
        }
        Plan::After(rv) => {
            if rv > cache.revision() {
                let current = api.store.current_revision().await?;
                if rv > current {
                    return Err(ApiError::timeout(format!(
                        "Too large resource version: {rv}, current: {current}"
                    )));
                }
            }
            cache
                .watch(&prefix, index_value, WatchStart::After(rv))
                .map(|w| (Vec::new(), w))
        }
    };
    let timeout = opts
        .timeout
        .unwrap_or(settings.max_timeout)
        .min(settings.max_timeout);
    let bookmark_interval = settings.bookmark_interval;
    match registered {
        Err(err) if err.code == 410 => {
            let frame = match format {
                Format::Protobuf => protobuf_frame("ERROR", &err.status_value()),
                _ => frame("ERROR", &Bytes::from(err.status_json())),
            };
            tokio::spawn(async move {
                let _ = tx.send(frame).await;
                on_end();
            });
        }
        Err(err) => return Err(err),
        Ok((initial, cache_watch)) => {
            let writer = Writer {
                def,
                opts,
                format,
                tx,
                stall_timeout: settings.stall_timeout,
                sent_headers: false,
                last_revision: cache_watch.start_revision,
            };
            tokio::spawn(async move {
                writer
                    .run(
                        initial,
                        cache_watch,
                        initial_events_end,
                        timeout,
                        bookmark_interval,
                    )
                    .await;
                on_end();
            });
        }
    }
    Ok(WatchStream { frames: rx })
}

struct Writer {
    def: Arc<ResourceDef>,
    opts: ListOptions,
    format: Format,
    tx: mpsc::Sender<Bytes>,
    stall_timeout: Duration,
    sent_headers: bool,
    last_revision: i64,
}

impl Writer {
    async fn run(
        mut self,
        initial: Vec<Arc<CachedObject>>,
        mut watch: CacheWatch,
        initial_events_end: bool,
        timeout: Duration,
        bookmark_interval: Duration,
    ) {
        let def = self.def.clone();
        let opts = std::mem::take(&mut self.opts);
        let allow_bookmarks = opts.allow_bookmarks;
        let Ok(filter) = Filter::new(&def, &opts) else {
            return;
        };
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let start_revision = watch.start_revision;
        for object in initial {
            if filter.matches(&object.value) && !self.send_object("ADDED", &object).await {
                return;
            }
        }
        self.last_revision = self.last_revision.max(start_revision);
        if initial_events_end && !self.send_bookmark(true).await {
            return;
        }
        for event in std::mem::take(&mut watch.replay) {
            if !self.send_event(&filter, &event).await {
                return;
            }
        }
        let mut bookmarks = tokio::time::interval_at(
            tokio::time::Instant::now() + bookmark_interval,
            bookmark_interval,
        );
        loop {
            tokio::select! {
                delivery = watch.live.recv() => match delivery {
                    Some(Delivery::Event(event)) => {
                        if !self.send_event(&filter, &event).await {
                            return;
                        }
                    }
                    Some(Delivery::Progress(revision)) => {
                        self.last_revision = self.last_revision.max(revision);
                    }
                    None => return,
                },
                _ = bookmarks.tick(), if allow_bookmarks => {
                    if !self.send_bookmark(false).await {
                        return;
                    }
                }
                _ = &mut deadline => return,
                _ = self.tx.closed() => return,
            }
        }
    }

    async fn send_event(
        &mut self,
        filter: &Filter<'_>,
        event: &crate::watchcache::CachedEvent,
    ) -> bool {
        self.last_revision = self.last_revision.max(event.revision());
        let now = filter.matches(&event.object.value);
        let before = event
            .prev
            .as_ref()
            .is_some_and(|p| filter.matches(&p.value));
        let kind = match (event.kind, before, now) {
            (EventKind::Created, _, true) => "ADDED",
            (EventKind::Deleted, true, _) => "DELETED",
            (EventKind::Updated, true, true) => "MODIFIED",
            (EventKind::Updated, false, true) => "ADDED",
            (EventKind::Updated, true, false) => "DELETED",
            _ => return true,
        };
        self.send_object(kind, &event.object).await
    }

    async fn send_object(&mut self, kind: &str, object: &CachedObject) -> bool {
        let body = match self.format {
            Format::Table => {
                let view = crate::convert::view(&self.def, object);
                let headers = !self.sent_headers;
                self.sent_headers = true;
                Bytes::from(table::build(&self.def, &[view], None, headers).to_string())
            }
            Format::Json => crate::convert::render(&self.def, object),
            Format::Protobuf => match crate::convert::render_protobuf(&self.def, object) {
                Ok(encoded) => {
                    return self
                        .send(Bytes::from(crate::protobuf::watch_frame(kind, &encoded)))
                        .await;
                }
                Err(err) => {
                    tracing::warn!("watch: {err:?}");
                    return false;
                }
            },
        };
        self.send(frame(kind, &body)).await
    }

    /// Queues a frame for the client; `false` ends the watch: the client
    /// went away, or has not made room for a frame within the stall
    /// timeout.
    async fn send(&self, frame: Bytes) -> bool {
        matches!(
            tokio::time::timeout(self.stall_timeout, self.tx.send(frame)).await,
            Ok(Ok(()))
        )
    }

    async fn send_bookmark(&mut self, initial_events_end: bool) -> bool {
        if self.last_revision <= 0 {
            return true;
        }
        let mut metadata = json!({"resourceVersion": self.last_revision.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object: Value = json!({
            "kind": self.def.kind,
            "apiVersion": self.def.api_version(),
            "metadata": metadata,
        });
        let frame = match self.format {
            Format::Protobuf => protobuf_frame("BOOKMARK", &object),
            _ => frame("BOOKMARK", &Bytes::from(object.to_string())),
        };
        self.send(frame).await
    }
}

/// A protobuf watch frame for an object the watch builds itself (a
/// bookmark, an error Status), which has a message whenever the watched
/// kind has.
fn protobuf_frame(kind: &str, object: &Value) -> Bytes {
    let encoded = crate::protobuf::encode(object).unwrap_or_else(|err| {
        tracing::warn!("watch: a {kind} event has no protobuf form: {err}");
        Vec::new()
    });
    Bytes::from(crate::protobuf::watch_frame(kind, &encoded))
}

fn frame(kind: &str, object: &Bytes) -> Bytes {
    let mut out = BytesMut::with_capacity(object.len() + 32);
    out.put_slice(b"{\"type\":\"");
    out.put_slice(kind.as_bytes());
    out.put_slice(b"\",\"object\":");
    out.put_slice(object);
    out.put_slice(b"}\n");
    out.freeze()
}
