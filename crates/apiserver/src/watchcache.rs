//! The per-resource watch cache.
//!
//! As in kube-apiserver, one store watch per resource feeds a cache holding
//! the current objects (decoded once, with their encoded bytes) and a window
//! of recent events. API watches are served from it, so a thousand watchers
//! cost one store watch, every object is encoded once per change however
//! many watchers receive it, and a watch selecting pods by `spec.nodeName`
//! (one per simulated node) is found through an index instead of a scan of
//! every watcher for every event.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::Value;
use store::{EventKind, KeyValue, ListRequest, Revision, Store, StoreError};
use tokio::sync::{mpsc, watch};

use crate::error::ApiError;

/// An object as stored, decoded, with `metadata.resourceVersion` set.
#[derive(Debug)]
pub struct CachedObject {
    pub key: String,
    pub revision: Revision,
    pub value: Value,
    /// `value` encoded as JSON: what GET, LIST and watch events send.
    pub bytes: Bytes,
    /// `value` in its protobuf envelope, encoded the first time a client
    /// asks for protobuf and kept for this revision as `bytes` is.
    protobuf: OnceLock<Bytes>,
}

impl CachedObject {
    /// Decodes a stored value; the revision becomes its resourceVersion.
    pub fn decode(kv: &KeyValue) -> Result<CachedObject, ApiError> {
        let mut value: Value = serde_json::from_slice(&kv.value).map_err(|err| {
            ApiError::internal(format!("object {} is not valid JSON: {err}", kv.key))
        })?;
        Ok(Self::from_value(
            kv.key.clone(),
            kv.mod_revision,
            &mut value,
        ))
    }

    /// Stamps a revision into an object and encodes it.
    pub fn from_value(key: String, revision: Revision, value: &mut Value) -> CachedObject {
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), revision.to_string().into());
        }
        let bytes = Bytes::from(serde_json::to_vec(value).unwrap_or_default());
        CachedObject {
            key,
            revision,
            value: std::mem::take(value),
            bytes,
            protobuf: OnceLock::new(),
        }
    }

    /// The object in its protobuf envelope, encoded once per revision
    /// however many clients read it.
    pub fn protobuf(&self) -> Result<Bytes, ApiError> {
        if let Some(bytes) = self.protobuf.get() {
            return Ok(bytes.clone());
        }
        let bytes = Bytes::from(
            crate::protobuf::encode(&self.value)
                .map_err(|err| ApiError::internal(err.to_string()))?,
        );
        Ok(self.protobuf.get_or_init(|| bytes).clone())
    }
}

/// One change, shared by every watcher it is delivered to.
#[derive(Debug)]
pub struct CachedEvent {
    pub kind: EventKind,
    /// The object after the change; for a delete its last state, with the
    /// delete's revision.
    pub object: Arc<CachedObject>,
    pub prev: Option<Arc<CachedObject>>,
}

impl CachedEvent {
    pub fn revision(&self) -> Revision {
        self.object.revision
    }
}

/// What a cache watcher receives.
#[derive(Debug, Clone)]
pub enum Delivery {
    Event(Arc<CachedEvent>),
    /// Every change up to this revision has been delivered.
    Progress(Revision),
}

/// Where an API watch starts.
#[derive(Debug, Clone, Copy)]
pub enum WatchStart {
    /// Synthetic ADDED events for every current object, then changes.
    Current,
    /// Changes after this revision.
    After(Revision),
}

/// A registered cache watcher; dropping it unregisters.
pub struct CacheWatch {
    /// Objects to send as ADDED first (for [`WatchStart::Current`]).
    pub initial: Vec<Arc<CachedObject>>,
    /// Window events after the start revision, to send before live ones.
    pub replay: Vec<Arc<CachedEvent>>,
    /// The revision the watch starts from (of `initial`, or the requested).
    pub start_revision: Revision,
    pub live: mpsc::Receiver<Delivery>,
    id: u64,
    cache: Arc<WatchCache>,
}

impl Drop for CacheWatch {
    fn drop(&mut self) {
        self.cache.state.lock().unregister(self.id);
    }
}

/// Tuning of a watch cache.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// Events kept for watches resuming from a past revision.
    pub window: usize,
    /// Deliveries buffered per watcher; a watcher that falls this far
    /// behind is closed, as upstream closes slow watchers.
    pub watcher_buffer: usize,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            window: 10_000,
            watcher_buffer: 10_000,
        }
    }
}

struct Watcher {
    tx: mpsc::Sender<Delivery>,
    /// Only keys under this prefix (a namespace) are delivered.
    key_prefix: String,
    index_value: Option<String>,
    /// Deliver nothing at or before this revision.
    after: Revision,
}

#[derive(Default)]
struct State {
    /// Whether the window holds the replayed history, so watches can be
    /// served: set once a batch reaches `ready_at`.
    ready: bool,
    ready_at: Revision,
    revision: Revision,
    objects: BTreeMap<String, Arc<CachedObject>>,
    /// Objects this server just wrote whose events have not arrived yet:
    /// reads and the event itself reuse them instead of decoding again.
    written: HashMap<String, Arc<CachedObject>>,
    window: VecDeque<Arc<CachedEvent>>,
    /// Watches from any revision >= this are served from the window.
    oldest: Revision,
    watchers: HashMap<u64, Watcher>,
    unindexed: HashSet<u64>,
    by_index: HashMap<String, HashSet<u64>>,
    next_id: u64,
}

impl State {
    fn unregister(&mut self, id: u64) {
        if let Some(w) = self.watchers.remove(&id) {
            match w.index_value {
                Some(v) => {
                    if let Some(set) = self.by_index.get_mut(&v) {
                        set.remove(&id);
                        if set.is_empty() {
                            self.by_index.remove(&v);
                        }
                    }
                }
                None => {
                    self.unindexed.remove(&id);
                }
            }
        }
    }

    fn close_all_watchers(&mut self) {
        self.watchers.clear();
        self.unindexed.clear();
        self.by_index.clear();
    }
}

/// The cache of one store prefix.
pub struct WatchCache {
    prefix: String,
    /// JSON pointer of the indexed field (e.g. `/spec/nodeName`).
    index_pointer: Option<String>,
    options: CacheOptions,
    state: Mutex<State>,
    revision_tx: watch::Sender<Revision>,
}

impl WatchCache {
    /// Starts a cache over `prefix`, kept in sync by a background task that
    /// ends when the cache is dropped.
    pub fn start(
        store: Arc<dyn Store>,
        prefix: String,
        index_field: Option<&str>,
        options: CacheOptions,
    ) -> Arc<WatchCache> {
        let (revision_tx, _) = watch::channel(0);
        let cache = Arc::new(WatchCache {
            prefix,
            index_pointer: index_field.map(|f| format!("/{}", f.replace('.', "/"))),
            options,
            state: Mutex::new(State::default()),
            revision_tx,
        });
        tokio::spawn(sync_loop(Arc::downgrade(&cache), store));
        cache
    }

    /// The revision up to which the cache has applied every change.
    pub fn revision(&self) -> Revision {
        *self.revision_tx.borrow()
    }

    /// Waits (bounded) until the cache has applied every change up to
    /// `revision`.
    pub async fn wait_for(&self, revision: Revision, limit: Duration) -> Result<(), ApiError> {
        let mut rx = self.revision_tx.subscribe();
        let wait = rx.wait_for(|r| *r >= revision && self.state.lock().ready);
        if let Ok(Ok(_)) = tokio::time::timeout(limit, wait).await {
            return Ok(());
        }
        // A cache that is not ready is reloading from the store (at the
        // start, or after the store came back from an outage): that is
        // kube-apiserver's "(re)initializing", whatever was asked for.
        if !self.state.lock().ready {
            return Err(ApiError::unavailable(format!(
                "storage is (re)initializing: the watch cache of {} is reloading from the store",
                self.prefix
            )));
        }
        Err(ApiError::timeout(format!(
            "Too large resource version: {revision}, current: {}",
            self.revision()
        )))
    }

    /// The cached object under `key` if it is at `revision` (so its encoded
    /// bytes can be sent as they are).
    pub fn object_at(&self, key: &str, revision: Revision) -> Option<Arc<CachedObject>> {
        let state = self.state.lock();
        state
            .objects
            .get(key)
            .filter(|o| o.revision == revision)
            .or_else(|| state.written.get(key).filter(|o| o.revision == revision))
            .cloned()
    }

    /// Hands over an object this server has just stored, so that the
    /// coming read of it and its watch event need not decode it again.
    pub fn written(&self, object: &Arc<CachedObject>) {
        let mut state = self.state.lock();
        let newer = state
            .objects
            .get(&object.key)
            .is_none_or(|o| o.revision < object.revision);
        if newer && object.revision > state.revision {
            state.written.insert(object.key.clone(), object.clone());
        }
    }

    /// Every cached object under a key prefix, in key order, and the
    /// revision they are current at.
    pub fn list(&self, key_prefix: &str) -> (Vec<Arc<CachedObject>>, Revision) {
        let state = self.state.lock();
        let items = state
            .objects
            .range(key_prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(key_prefix))
            .map(|(_, o)| o.clone())
            .collect();
        (items, state.revision)
    }

    /// Registers a watcher of the keys under `key_prefix`; with an
    /// `index_value`, only objects whose indexed field has that value (now
    /// or before the change) are delivered.
    pub fn watch(
        self: &Arc<Self>,
        key_prefix: &str,
        index_value: Option<String>,
        start: WatchStart,
    ) -> Result<CacheWatch, ApiError> {
        let mut state = self.state.lock();
        let (initial, replay, start_revision) = match start {
            WatchStart::Current => {
                let initial = state
                    .objects
                    .range(key_prefix.to_string()..)
                    .take_while(|(k, _)| k.starts_with(key_prefix))
                    .map(|(_, o)| o.clone())
                    .collect();
                (initial, Vec::new(), state.revision)
            }
            WatchStart::After(after) => {
                if after < state.oldest {
                    return Err(ApiError::expired(format!(
                        "too old resource version: {after} ({})",
                        state.oldest
                    )));
                }
                let replay = state
                    .window
                    .iter()
                    .filter(|e| e.revision() > after && e.object.key.starts_with(key_prefix))
                    .cloned()
                    .collect();
                (Vec::new(), replay, after)
            }
        };
        let (tx, live) = mpsc::channel(self.options.watcher_buffer);
        let id = state.next_id;
        state.next_id += 1;
        match &index_value {
            Some(v) => {
                state.by_index.entry(v.clone()).or_default().insert(id);
            }
            None => {
                state.unindexed.insert(id);
            }
        }
        let after = start_revision.max(state.revision);
        state.watchers.insert(
            id,
            Watcher {
                tx,
                key_prefix: key_prefix.to_string(),
                index_value,
                after,
            },
        );
        drop(state);
        Ok(CacheWatch {
            initial,
            replay,
            start_revision,
            live,
            id,
            cache: self.clone(),
        })
    }

    fn index_of(&self, object: &CachedObject) -> Option<String> {
        let pointer = self.index_pointer.as_deref()?;
        object
            .value
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Replaces the cache's contents with a fresh list; every watcher is
    /// closed, since changes between the old and new state are unknown.
    /// Events up to `revision` that arrive afterwards (history replayed
    /// from `oldest`) only fill the window.
    fn reset(&self, objects: Vec<CachedObject>, revision: Revision, oldest: Revision) {
        let mut state = self.state.lock();
        state.close_all_watchers();
        state.objects = objects
            .into_iter()
            .map(|o| (o.key.clone(), Arc::new(o)))
            .collect();
        state.window.clear();
        state.written.clear();
        state.oldest = oldest;
        state.revision = revision;
        state.ready_at = revision;
        state.ready = oldest >= revision;
        drop(state);
        self.revision_tx.send_replace(revision);
    }

    fn apply(&self, events: Vec<store::Event>, revision: Revision) {
        let mut state = self.state.lock();
        let quiet = events.is_empty();
        for event in events {
            if event.revision() <= state.revision {
                self.remember(&mut state, &event);
                continue;
            }
            let known = state
                .written
                .remove(&event.kv.key)
                .filter(|o| o.revision == event.revision() && event.kind != EventKind::Deleted);
            let object = match known {
                Some(object) => object,
                None => match CachedObject::decode(&event.kv) {
                    Ok(o) => Arc::new(o),
                    Err(err) => {
                        tracing::error!(key = %event.kv.key, %err, "skipping undecodable object");
                        continue;
                    }
                },
            };
            let prev = match event.kind {
                EventKind::Created => None,
                _ => state.objects.get(&event.kv.key).cloned(),
            };
            match event.kind {
                EventKind::Deleted => state.objects.remove(&event.kv.key),
                _ => state.objects.insert(event.kv.key.clone(), object.clone()),
            };
            let cached = Arc::new(CachedEvent {
                kind: event.kind,
                object,
                prev,
            });
            self.push_window(&mut state, cached.clone());
            self.dispatch(&mut state, &cached);
        }
        state.revision = state.revision.max(revision);
        if state.revision >= state.ready_at {
            state.ready = true;
        }
        if quiet {
            let progress = state.revision;
            let mut closed = Vec::new();
            for (id, w) in &state.watchers {
                if w.tx.try_send(Delivery::Progress(progress)).is_err() {
                    closed.push(*id);
                }
            }
            for id in closed {
                state.unregister(id);
            }
        }
        let revision = state.revision;
        drop(state);
        self.revision_tx.send_replace(revision);
    }

    fn push_window(&self, state: &mut State, event: Arc<CachedEvent>) {
        state.window.push_back(event);
        while state.window.len() > self.options.window {
            if let Some(old) = state.window.pop_front() {
                state.oldest = old.revision();
            }
        }
    }

    /// Adds a replayed historical event (already reflected in the objects)
    /// to the window only.
    fn remember(&self, state: &mut State, event: &store::Event) {
        let decoded = CachedObject::decode(&event.kv);
        let prev = event.prev.as_ref().map(CachedObject::decode).transpose();
        match (decoded, prev) {
            (Ok(object), Ok(prev)) => {
                let cached = Arc::new(CachedEvent {
                    kind: event.kind,
                    object: Arc::new(object),
                    prev: prev.map(Arc::new),
                });
                self.push_window(state, cached);
            }
            _ => tracing::error!(key = %event.kv.key, "skipping undecodable history"),
        }
    }

    fn dispatch(&self, state: &mut State, event: &Arc<CachedEvent>) {
        let mut targets: Vec<u64> = state.unindexed.iter().copied().collect();
        let new_index = self.index_of(&event.object);
        let old_index = event.prev.as_deref().and_then(|p| self.index_of(p));
        for value in [new_index.as_ref(), old_index.as_ref()]
            .into_iter()
            .flatten()
        {
            if let Some(ids) = state.by_index.get(value) {
                targets.extend(ids.iter().copied());
            }
        }
        if new_index.is_some() && new_index == old_index {
            targets.sort_unstable();
            targets.dedup();
        }
        let mut closed = Vec::new();
        for id in targets {
            let Some(w) = state.watchers.get(&id) else {
                continue;
            };
            if event.revision() <= w.after || !event.object.key.starts_with(&w.key_prefix) {
                continue;
            }
            if w.tx.try_send(Delivery::Event(event.clone())).is_err() {
                closed.push(id);
            }
        }
        for id in closed {
            tracing::debug!(prefix = %self.prefix, "closing a watcher that fell behind");
            state.unregister(id);
        }
    }
}

/// Keeps a cache in sync with the store until the cache is dropped:
/// list, then watch from the list's revision; on any watch failure, list
/// again.
async fn sync_loop(cache: std::sync::Weak<WatchCache>, store: Arc<dyn Store>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(strong) = cache.upgrade() else {
            return;
        };
        let prefix = strong.prefix.clone();
        drop(strong);
        let result = sync_once(&cache, store.as_ref(), &prefix).await;
        match result {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(%prefix, %err, "watch cache resynchronising");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// One list-and-watch cycle; `Ok` only when the cache was dropped.
///
/// The store watch starts as far back as the store's history (bounded by
/// the window) reaches, so that a client resuming from a revision written
/// before this cache started is still served from the window.
async fn sync_once(
    cache: &std::sync::Weak<WatchCache>,
    store: &dyn Store,
    prefix: &str,
) -> Result<(), StoreError> {
    let listed = store
        .list(ListRequest {
            prefix: prefix.to_string(),
            ..Default::default()
        })
        .await?;
    let objects = listed
        .kvs
        .iter()
        .filter_map(|kv| CachedObject::decode(kv).ok())
        .collect();
    // Revision 0 asks a store watch for "from now on", so history starts at
    // revision 1 at the earliest.
    let history_from = (store.compacted_revision().await? - 1).max(1);
    let (mut stream, oldest) = if history_from >= listed.revision {
        (store.watch(prefix, listed.revision).await?, listed.revision)
    } else {
        match store.watch(prefix, history_from).await {
            Ok(stream) => (stream, history_from),
            Err(StoreError::Compacted { .. }) => {
                (store.watch(prefix, listed.revision).await?, listed.revision)
            }
            Err(err) => return Err(err),
        }
    };
    match cache.upgrade() {
        Some(c) => c.reset(objects, listed.revision, oldest),
        None => return Ok(()),
    }
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        match cache.upgrade() {
            Some(c) => c.apply(batch.events, batch.revision),
            None => return Ok(()),
        }
    }
    Err(StoreError::Unavailable("watch stream ended".into()))
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use bytes::Bytes;
    use store::{KeyValue, ListRequest, ListResponse, Revision, Store, StoreError, WatchStream};

    use super::*;

    /// A store that is down: every call fails as an unreachable etcd's do.
    struct Down;

    fn down<T>() -> Result<T, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }

    #[async_trait]
    impl Store for Down {
        async fn get(&self, _: &str) -> Result<Option<KeyValue>, StoreError> {
            down()
        }
        async fn list(&self, _: ListRequest) -> Result<ListResponse, StoreError> {
            down()
        }
        async fn create(&self, _: &str, _: Bytes) -> Result<KeyValue, StoreError> {
            down()
        }
        async fn update(&self, _: &str, _: Bytes, _: Revision) -> Result<KeyValue, StoreError> {
            down()
        }
        async fn delete(&self, _: &str, _: Option<Revision>) -> Result<KeyValue, StoreError> {
            down()
        }
        async fn watch(&self, _: &str, _: Revision) -> Result<WatchStream, StoreError> {
            down()
        }
        async fn current_revision(&self) -> Result<Revision, StoreError> {
            down()
        }
        async fn compacted_revision(&self) -> Result<Revision, StoreError> {
            down()
        }
        async fn compact(&self, _: Revision) -> Result<(), StoreError> {
            down()
        }
        fn progress_interval(&self) -> Duration {
            Duration::from_secs(1)
        }
    }

    /// A read waiting for a cache that cannot load says that the storage
    /// is (re)initializing, as kube-apiserver does, rather than naming a
    /// resource version nobody asked for.
    #[tokio::test]
    async fn a_cache_that_cannot_load_is_reinitializing() {
        let cache = WatchCache::start(
            Arc::new(Down),
            "/registry/pods/".into(),
            None,
            CacheOptions::default(),
        );
        let err = cache
            .wait_for(0, Duration::from_millis(200))
            .await
            .expect_err("a cache over a store that is down is never ready");
        assert_eq!((err.code, err.reason), (503, "ServiceUnavailable"));
        assert!(
            err.message.starts_with("storage is (re)initializing"),
            "{}",
            err.message
        );
    }
}
