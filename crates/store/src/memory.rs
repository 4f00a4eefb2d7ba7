//! The in-memory backend: an ordered map of per-key version histories, an
//! event log for watch replay, and live watchers fed inside each write.
//!
//! History is kept until compaction, like etcd's. Because memory is not
//! disk, the backend also compacts by itself once the log holds more than
//! `history_limit` events, so a write-heavy run cannot grow without bound;
//! reads and watches older than that get `Compacted` (410 Gone upstream),
//! exactly as after an etcd compaction.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::RwLock;
use tokio::sync::mpsc;

use crate::{
    Event, EventKind, KeyValue, ListRequest, ListResponse, Result, Revision, Store, StoreError,
    WatchBatch, WatchStream,
};

/// Tuning of a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryStoreOptions {
    /// How often idle watchers get a progress notification.
    pub progress_interval: Duration,
    /// Batches buffered per watcher before it is closed as too slow.
    pub watch_buffer: usize,
    /// Events of history kept before the store compacts by itself.
    pub history_limit: usize,
}

impl Default for MemoryStoreOptions {
    fn default() -> Self {
        MemoryStoreOptions {
            progress_interval: Duration::from_secs(1),
            watch_buffer: 10_000,
            history_limit: 50_000,
        }
    }
}

/// The in-memory [`Store`]. Cloning shares the same store.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    state: RwLock<State>,
    options: MemoryStoreOptions,
    progress_started: AtomicBool,
}

#[derive(Debug, Clone)]
struct Version {
    revision: Revision,
    create_revision: Revision,
    /// `None` marks a delete.
    value: Option<Bytes>,
}

struct Watcher {
    prefix: String,
    tx: mpsc::Sender<Result<WatchBatch>>,
    overflowed: Arc<AtomicBool>,
}

#[derive(Default)]
struct State {
    revision: Revision,
    compacted: Revision,
    keys: BTreeMap<String, Vec<Version>>,
    log: VecDeque<Event>,
    watchers: Vec<Watcher>,
}

impl State {
    fn current(&self, key: &str) -> Option<KeyValue> {
        let version = self.keys.get(key)?.last()?;
        live_kv(key, version)
    }

    fn at(&self, key: &str, versions: &[Version], revision: Revision) -> Option<KeyValue> {
        let idx = versions.partition_point(|v| v.revision <= revision);
        let version = versions.get(idx.checked_sub(1)?)?;
        live_kv(key, version)
    }

    /// Records a write, feeds the watchers and returns the event.
    fn commit(&mut self, key: &str, value: Option<Bytes>, history_limit: usize) -> Event {
        self.revision += 1;
        let revision = self.revision;
        let prev = self.current(key);
        let create_revision = match (&prev, &value) {
            (Some(p), Some(_)) => p.create_revision,
            (Some(p), None) => p.create_revision,
            (None, _) => revision,
        };
        self.keys.entry(key.to_string()).or_default().push(Version {
            revision,
            create_revision,
            value: value.clone(),
        });
        let (kind, kv) = match value {
            Some(value) => (
                if prev.is_some() { EventKind::Updated } else { EventKind::Created },
                KeyValue {
                    key: key.to_string(),
                    value,
                    create_revision,
                    mod_revision: revision,
                },
            ),
            None => (
                EventKind::Deleted,
                KeyValue {
                    key: key.to_string(),
                    value: prev.as_ref().map(|p| p.value.clone()).unwrap_or_default(),
                    create_revision,
                    mod_revision: revision,
                },
            ),
        };
        let event = Event { kind, kv, prev };
        self.log.push_back(event.clone());
        self.notify(&event);
        if self.log.len() > history_limit + history_limit / 4 {
            let keep_from = self.log[self.log.len() - history_limit].revision();
            self.compact_to(keep_from);
        }
        event
    }

    fn notify(&mut self, event: &Event) {
        let revision = event.revision();
        self.watchers.retain(|w| {
            if !event.kv.key.starts_with(&w.prefix) {
                return !w.tx.is_closed();
            }
            let batch = WatchBatch {
                events: vec![event.clone()],
                revision,
            };
            match w.tx.try_send(Ok(batch)) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    w.overflowed.store(true, Ordering::Release);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    fn progress(&mut self) {
        let revision = self.revision;
        self.watchers.retain(|w| {
            match w.tx.try_send(Ok(WatchBatch {
                events: Vec::new(),
                revision,
            })) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    w.overflowed.store(true, Ordering::Release);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// Drops history before `revision`; only keys written by dropped events
    /// can hold superseded versions, so only those are pruned.
    fn compact_to(&mut self, revision: Revision) {
        if revision <= self.compacted {
            return;
        }
        self.compacted = revision;
        while self.log.front().is_some_and(|e| e.revision() < revision) {
            let Some(event) = self.log.pop_front() else {
                break;
            };
            let key = event.kv.key;
            let Some(versions) = self.keys.get_mut(&key) else {
                continue;
            };
            // Keep the newest version at or before the compaction point
            // (it is the state at that revision) and everything after it.
            let newer = versions.partition_point(|v| v.revision <= revision);
            if newer > 1 {
                versions.drain(..newer - 1);
            }
            if versions.len() == 1 && versions[0].value.is_none() && versions[0].revision <= revision {
                self.keys.remove(&key);
            }
        }
    }
}

fn live_kv(key: &str, version: &Version) -> Option<KeyValue> {
    version.value.as_ref().map(|value| KeyValue {
        key: key.to_string(),
        value: value.clone(),
        create_revision: version.create_revision,
        mod_revision: version.revision,
    })
}

impl MemoryStore {
    pub fn new(options: MemoryStoreOptions) -> MemoryStore {
        MemoryStore {
            inner: Arc::new(Inner {
                state: RwLock::new(State::default()),
                options,
                progress_started: AtomicBool::new(false),
            }),
        }
    }

    /// Starts the progress notifier once, on the first watch.
    fn ensure_progress(&self) {
        if self.inner.progress_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let interval = self.inner.options.progress_interval;
        tokio::spawn(progress_loop(weak, interval));
    }
}

async fn progress_loop(inner: Weak<Inner>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.state.write().progress();
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.inner.state.read().current(key))
    }

    async fn list(&self, request: ListRequest) -> Result<ListResponse> {
        let state = self.inner.state.read();
        let revision = match request.revision {
            0 => state.revision,
            r if r > state.revision => {
                return Err(StoreError::FutureRevision {
                    requested: r,
                    current: state.revision,
                });
            }
            r if r < state.compacted => {
                return Err(StoreError::Compacted {
                    requested: r,
                    compacted: state.compacted,
                });
            }
            r => r,
        };
        let start = match &request.start_after {
            Some(after) if after.as_str() >= request.prefix.as_str() => {
                std::ops::Bound::Excluded(after.clone())
            }
            _ => std::ops::Bound::Included(request.prefix.clone()),
        };
        let mut kvs = Vec::new();
        let mut remaining = 0u64;
        let range = state
            .keys
            .range((start, std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&request.prefix));
        for (key, versions) in range {
            let Some(kv) = state.at(key, versions, revision) else {
                continue;
            };
            if request.limit == 0 || kvs.len() < request.limit {
                kvs.push(kv);
            } else {
                remaining += 1;
            }
        }
        Ok(ListResponse {
            kvs,
            revision,
            remaining,
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        let mut state = self.inner.state.write();
        if state.current(key).is_some() {
            return Err(StoreError::AlreadyExists {
                key: key.to_string(),
            });
        }
        Ok(state.commit(key, Some(value), self.inner.options.history_limit).kv)
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        let mut state = self.inner.state.write();
        match state.current(key) {
            None => Err(StoreError::NotFound {
                key: key.to_string(),
            }),
            Some(current) if current.mod_revision != expected => Err(StoreError::Conflict {
                key: key.to_string(),
                expected,
                current: Some(Box::new(current)),
            }),
            Some(_) => Ok(state.commit(key, Some(value), self.inner.options.history_limit).kv),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        let mut state = self.inner.state.write();
        match state.current(key) {
            None => Err(StoreError::NotFound {
                key: key.to_string(),
            }),
            Some(current) if expected.is_some_and(|e| e != current.mod_revision) => {
                Err(StoreError::Conflict {
                    key: key.to_string(),
                    expected: expected.unwrap_or_default(),
                    current: Some(Box::new(current)),
                })
            }
            Some(_) => Ok(state.commit(key, None, self.inner.options.history_limit).kv),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        self.ensure_progress();
        let (tx, rx) = mpsc::channel(self.inner.options.watch_buffer.max(1));
        let overflowed = Arc::new(AtomicBool::new(false));
        {
            let mut state = self.inner.state.write();
            let after = if after == 0 { state.revision } else { after };
            if after < state.compacted - 1 {
                return Err(StoreError::Compacted {
                    requested: after,
                    compacted: state.compacted,
                });
            }
            let replay: Vec<Event> = state
                .log
                .iter()
                .filter(|e| e.revision() > after && e.kv.key.starts_with(prefix))
                .cloned()
                .collect();
            if !replay.is_empty() {
                let revision = state.revision;
                // The channel is new and empty, so this cannot fail.
                let _ = tx.try_send(Ok(WatchBatch {
                    events: replay,
                    revision,
                }));
            }
            state.watchers.push(Watcher {
                prefix: prefix.to_string(),
                tx,
                overflowed: overflowed.clone(),
            });
        }
        let stream = futures::stream::unfold((rx, overflowed, false), |(mut rx, overflowed, done)| async move {
            if done {
                return None;
            }
            match rx.recv().await {
                Some(item) => Some((item, (rx, overflowed, false))),
                None if overflowed.load(Ordering::Acquire) => {
                    Some((Err(StoreError::WatcherOverflow), (rx, overflowed, true)))
                }
                None => None,
            }
        });
        Ok(Box::pin(stream))
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.inner.state.read().revision)
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.inner.state.read().compacted)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut state = self.inner.state.write();
        if revision > state.revision {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current: state.revision,
            });
        }
        state.compact_to(revision);
        Ok(())
    }

    fn progress_interval(&self) -> Duration {
        self.inner.options.progress_interval
    }
}
