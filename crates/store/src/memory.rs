//! The in-memory backend: an ordered map of per-key version histories, an
//! event log for watch replay, and live watchers fed inside each write.
//!
//! One `parking_lot` read-write lock guards the whole state. Reads take it
//! shared and copy out only the key and a reference-counted value, so `get` is
//! cheap enough for the API server's hot path; writes take it exclusively for
//! an `O(log n)` map update plus one non-blocking send per interested watcher
//! of the [`Hub`]. Feeding watchers inside the write's critical section is
//! what makes a watch exact: a watch replays and registers while it holds
//! the lock shared, so it can neither miss nor repeat a change.
//!
//! History is kept until compaction, like etcd's: the API server compacts
//! every five minutes, as kube-apiserver does, so continue tokens and watch
//! resourceVersions stay valid as long as upstream's. Because memory is not
//! disk, the backend also compacts by itself once the history weighs more
//! than `history_bytes`, so a write-heavy run cannot grow without bound;
//! reads and watches older than that get `Compacted` (410 Gone upstream),
//! exactly as after an etcd compaction. The bound is by memory, not by a
//! count of writes, so small objects keep a long history and a burst of
//! large ones a shorter one.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::RwLock;

use crate::hub::{Hub, SharedHub};
use crate::{
    Event, EventKind, KeyValue, ListRequest, ListResponse, Result, Revision, Store, StoreError,
    WatchStream,
};

/// Tuning of a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryStoreOptions {
    /// How often every watcher gets a progress notification (clamped to at
    /// least 1 ms).
    pub progress_interval: Duration,
    /// Batches buffered per watcher before it is closed as too slow. Writers
    /// never wait for a watcher, so this bounds the memory a stalled client
    /// can pin.
    pub watch_buffer: usize,
    /// Bytes of history kept before the store compacts by itself: each
    /// logged write weighs its key and value plus
    /// [`MemoryStore::EVENT_OVERHEAD_BYTES`]. The newest write is always
    /// kept.
    pub history_bytes: usize,
}

impl Default for MemoryStoreOptions {
    fn default() -> Self {
        MemoryStoreOptions {
            progress_interval: Duration::from_secs(1),
            watch_buffer: 10_000,
            history_bytes: 512 * 1024 * 1024,
        }
    }
}

/// The in-memory [`Store`]. Cloning shares the same store; the last clone
/// dropped ends every watch and stops the progress notifier.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    state: RwLock<State>,
    /// The live watchers. Its lock is taken inside the state's lock, never
    /// the other way round.
    hub: SharedHub,
}

/// One write of one key, as kept in its history.
struct Version {
    revision: Revision,
    create_revision: Revision,
    /// `None` marks a delete.
    value: Option<Bytes>,
}

impl Version {
    fn to_kv(&self, key: &str) -> Option<KeyValue> {
        self.value.as_ref().map(|value| KeyValue {
            key: key.to_owned(),
            value: value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.revision,
        })
    }
}

/// The version of a key that a read at `revision` sees, if the key existed
/// then.
fn visible_at(versions: &[Version], revision: Revision) -> Option<&Version> {
    let newer = versions.partition_point(|v| v.revision <= revision);
    versions
        .get(newer.checked_sub(1)?)
        .filter(|v| v.value.is_some())
}

struct State {
    revision: Revision,
    compacted: Revision,
    keys: BTreeMap<String, Vec<Version>>,
    /// One event per revision from the compaction point on, oldest first
    /// (and compacted events not yet forgotten before them).
    log: VecDeque<Event>,
    /// The weight of the log's events from the compaction point on.
    history_weight: usize,
    history_bytes: usize,
}

/// What one logged write is counted as against the history bound.
fn weight(event: &Event) -> usize {
    MemoryStore::EVENT_OVERHEAD_BYTES + event.kv.key.len() + event.kv.value.len()
}

impl State {
    fn new(history_bytes: usize) -> State {
        State {
            revision: 0,
            compacted: 0,
            keys: BTreeMap::new(),
            log: VecDeque::new(),
            history_weight: 0,
            history_bytes,
        }
    }

    fn live(&self, key: &str) -> Option<&Version> {
        self.keys.get(key)?.last().filter(|v| v.value.is_some())
    }

    fn current(&self, key: &str) -> Option<KeyValue> {
        self.live(key)?.to_kv(key)
    }

    /// The revision a read asking for `requested` is served at.
    fn read_revision(&self, requested: Revision) -> Result<Revision> {
        match requested {
            0 => Ok(self.revision),
            r if r > self.revision => Err(StoreError::FutureRevision {
                requested: r,
                current: self.revision,
            }),
            r if r < self.compacted => Err(StoreError::Compacted {
                requested: r,
                compacted: self.compacted,
            }),
            r => Ok(r),
        }
    }

    fn list(&self, request: &ListRequest) -> Result<ListResponse> {
        let revision = self.read_revision(request.revision)?;
        let prefix = request.prefix.as_str();
        let lower = match request.start_after.as_deref() {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let limit = match request.limit {
            0 => usize::MAX,
            limit => limit,
        };
        let mut kvs = Vec::new();
        let mut remaining = 0;
        let range = self
            .keys
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix));
        for (key, versions) in range {
            let Some(version) = visible_at(versions, revision) else {
                continue;
            };
            if kvs.len() < limit {
                kvs.extend(version.to_kv(key));
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

    fn create(&mut self, key: &str, value: Bytes) -> Result<KeyValue> {
        if self.live(key).is_some() {
            return Err(StoreError::AlreadyExists {
                key: key.to_owned(),
            });
        }
        Ok(self.commit(EventKind::Created, key, value, None))
    }

    fn update(&mut self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        let current = self.current(key).ok_or_else(|| StoreError::NotFound {
            key: key.to_owned(),
        })?;
        if current.mod_revision != expected {
            return Err(StoreError::Conflict {
                key: key.to_owned(),
                expected,
                current: Some(Box::new(current)),
            });
        }
        Ok(self.commit(EventKind::Updated, key, value, Some(current)))
    }

    fn delete(&mut self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        let current = self.current(key).ok_or_else(|| StoreError::NotFound {
            key: key.to_owned(),
        })?;
        if let Some(expected) = expected
            && expected != current.mod_revision
        {
            return Err(StoreError::Conflict {
                key: key.to_owned(),
                expected,
                current: Some(Box::new(current)),
            });
        }
        let last = current.value.clone();
        Ok(self.commit(EventKind::Deleted, key, last, Some(current)))
    }

    /// Records a checked write: bumps the revision, appends the key's new
    /// version and the event. For a delete, `value` is the key's last value,
    /// which the event and the result carry.
    fn commit(
        &mut self,
        kind: EventKind,
        key: &str,
        value: Bytes,
        prev: Option<KeyValue>,
    ) -> KeyValue {
        self.revision += 1;
        let revision = self.revision;
        let create_revision = prev.as_ref().map_or(revision, |p| p.create_revision);
        let version = Version {
            revision,
            create_revision,
            value: (kind != EventKind::Deleted).then(|| value.clone()),
        };
        match self.keys.get_mut(key) {
            Some(versions) => versions.push(version),
            None => {
                self.keys.insert(key.to_owned(), vec![version]);
            }
        }
        let kv = KeyValue {
            key: key.to_owned(),
            value,
            create_revision,
            mod_revision: revision,
        };
        let event = Event {
            kind,
            kv: kv.clone(),
            prev,
        };
        self.history_weight += weight(&event);
        self.log.push_back(event);
        self.trim_history();
        kv
    }

    /// The logged changes under `prefix` after `after`, for a watch that
    /// starts there; `Compacted` when compaction dropped some of them.
    fn replay(&self, prefix: &str, after: Revision) -> Result<Vec<Event>> {
        if after < self.compacted - 1 {
            return Err(StoreError::Compacted {
                requested: after,
                compacted: self.compacted,
            });
        }
        let from = self.log.partition_point(|e| e.revision() <= after);
        Ok(self
            .log
            .range(from..)
            .filter(|e| e.kv.key.starts_with(prefix))
            .cloned()
            .collect())
    }

    /// Keeps the history within `history_bytes`: each write over the bound
    /// moves the compaction point past the oldest events it needs to and
    /// forgets a few compacted events, so the cost is a small constant per
    /// write rather than a pause every so often under the write lock.
    fn trim_history(&mut self) {
        if self.history_weight > self.history_bytes {
            let mut oldest = self.log.partition_point(|e| e.revision() < self.compacted);
            let mut kept = self.history_weight;
            while kept > self.history_bytes && oldest + 1 < self.log.len() {
                kept -= weight(&self.log[oldest]);
                oldest += 1;
            }
            let oldest_kept = self.log[oldest].revision();
            self.mark_compacted(oldest_kept);
        }
        self.forget_compacted(TRIM_STEP);
    }

    /// Makes reads and watches before `revision` answer `Compacted` from
    /// now on; what they would have seen is forgotten in steps by
    /// [`State::forget_compacted`].
    fn mark_compacted(&mut self, revision: Revision) {
        if revision <= self.compacted {
            return;
        }
        let from = self.log.partition_point(|e| e.revision() < self.compacted);
        let to = self.log.partition_point(|e| e.revision() < revision);
        let dropped: usize = self.log.range(from..to).map(weight).sum();
        self.history_weight -= dropped;
        self.compacted = revision;
    }

    /// Forgets up to `max` log entries before the compaction point, with
    /// what only they kept: each key's versions superseded by then, and
    /// keys deleted by then. Returns whether such entries remain.
    fn forget_compacted(&mut self, max: usize) -> bool {
        let revision = self.compacted;
        let before = self.log.partition_point(|e| e.revision() < revision);
        let dropped = before.min(max);
        for event in self.log.drain(..dropped) {
            let Some(versions) = self.keys.get_mut(&event.kv.key) else {
                continue;
            };
            let superseded = versions
                .partition_point(|v| v.revision <= revision)
                .saturating_sub(1);
            versions.drain(..superseded);
            if matches!(versions.as_slice(), [only] if only.value.is_none() && only.revision <= revision)
            {
                self.keys.remove(&event.kv.key);
            }
        }
        before > dropped
    }
}

/// Compacted log entries forgotten per write, beyond the one each write
/// over the history limit adds; enough to drain a compaction's leftovers
/// over the following writes.
const TRIM_STEP: usize = 16;

/// Log entries forgotten per step of an explicit compaction: each step
/// holds the write lock, so a large compaction is spread over many short
/// ones, with other calls served in between.
const COMPACTION_STEP: usize = 1_000;

impl MemoryStore {
    /// The bookkeeping counted for each logged write beyond its key and
    /// value: the event, its previous value's handle and the version entry.
    pub const EVENT_OVERHEAD_BYTES: usize = 128;

    /// An empty store. It needs no runtime; its first watch starts the
    /// progress notifier on the caller's tokio runtime.
    pub fn new(options: MemoryStoreOptions) -> MemoryStore {
        MemoryStore {
            inner: Arc::new(Inner {
                state: RwLock::new(State::new(options.history_bytes)),
                hub: SharedHub::new(Hub::new(0, options.watch_buffer), options.progress_interval),
            }),
        }
    }

    /// The number of open watches: for metrics, and to check that abandoned
    /// watch streams are released.
    pub fn watch_count(&self) -> usize {
        self.inner.hub.lock().len()
    }

    /// Applies a checked write and feeds its event to the watchers while
    /// the state is still locked, so that they see writes in revision order.
    fn write(&self, apply: impl FnOnce(&mut State) -> Result<KeyValue>) -> Result<KeyValue> {
        let mut state = self.inner.state.write();
        let kv = apply(&mut state)?;
        let event = state.log.back().expect("the history keeps the last write");
        self.inner.hub.lock().notify(event);
        Ok(kv)
    }
}

/// Every call first spends a unit of the task's cooperative budget, as
/// tokio's own resources do: the store answers without ever waiting, so a
/// loop of calls (a namespace's content deleted object by object) would
/// otherwise hold its worker until it ends, and starve the tasks it wakes,
/// such as the watch caches consuming the events it writes.
#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        tokio::task::consume_budget().await;
        Ok(self.inner.state.read().current(key))
    }

    async fn list(&self, request: ListRequest) -> Result<ListResponse> {
        tokio::task::consume_budget().await;
        self.inner.state.read().list(&request)
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        tokio::task::consume_budget().await;
        self.write(|state| state.create(key, value))
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        tokio::task::consume_budget().await;
        self.write(|state| state.update(key, value, expected))
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        tokio::task::consume_budget().await;
        self.write(|state| state.delete(key, expected))
    }

    /// Replays and registers under the state's lock, which every write
    /// holds while it notifies the hub.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        self.inner.hub.ensure_progress()?;
        let state = self.inner.state.read();
        let after = if after == 0 { state.revision } else { after };
        let replay = state.replay(prefix, after)?;
        let mut hub = self.inner.hub.lock();
        Ok(self.inner.hub.register(&mut hub, prefix, after, replay))
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.inner.state.read().revision)
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.inner.state.read().compacted)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        {
            let mut state = self.inner.state.write();
            if revision > state.revision {
                return Err(StoreError::FutureRevision {
                    requested: revision,
                    current: state.revision,
                });
            }
            state.mark_compacted(revision);
        }
        loop {
            let more = self.inner.state.write().forget_compacted(COMPACTION_STEP);
            if !more {
                break;
            }
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    fn progress_interval(&self) -> Duration {
        self.inner.hub.progress_interval()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn compaction_keeps_only_the_versions_reads_can_still_see() {
        let mut state = State::new(usize::MAX);
        let mut x = state.create("/x", v("0")).unwrap();
        for i in 1..4 {
            x = state
                .update("/x", Bytes::from(i.to_string()), x.mod_revision)
                .unwrap();
        }
        let y = state.create("/y", v("y")).unwrap();
        state.delete("/y", Some(y.mod_revision)).unwrap();
        let z = state.create("/z", v("z")).unwrap();
        let at = state.revision;
        state.update("/z", v("z2"), z.mod_revision).unwrap();

        state.mark_compacted(at);
        assert!(
            !state.forget_compacted(usize::MAX),
            "everything compacted is forgotten"
        );

        assert_eq!(
            state.keys["/x"].len(),
            1,
            "only the version visible at {at} is left"
        );
        assert!(
            !state.keys.contains_key("/y"),
            "a key deleted by {at} is forgotten"
        );
        assert_eq!(
            state.keys["/z"].len(),
            2,
            "the version at {at} and the later one"
        );
        assert_eq!(state.log.front().map(Event::revision), Some(at));
        assert_eq!(state.log.len(), 2);
        let listed = state
            .list(&ListRequest {
                revision: at,
                ..Default::default()
            })
            .unwrap();
        let values: Vec<&[u8]> = listed.kvs.iter().map(|kv| kv.value.as_ref()).collect();
        assert_eq!(values, [b"3".as_slice(), b"z"]);
    }

    #[test]
    fn the_history_bound_is_kept_with_every_write() {
        // Writes of "/x" with two-byte values weigh the same: 8 fit.
        let write = MemoryStore::EVENT_OVERHEAD_BYTES + 2 + 2;
        let mut state = State::new(8 * write);
        let mut kv = state.create("/x", v("00")).unwrap();
        for i in 1..8 {
            kv = state
                .update("/x", Bytes::from(format!("{i:02}")), kv.mod_revision)
                .unwrap();
        }
        assert_eq!(state.compacted, 0, "8 writes fit in the bound");
        for i in 8..20 {
            kv = state
                .update("/x", Bytes::from(format!("{i:02}")), kv.mod_revision)
                .unwrap();
            assert_eq!(state.log.len(), 8, "the log stays within the bound");
            assert_eq!(state.compacted, kv.mod_revision - 7);
            assert_eq!(state.keys["/x"].len(), 8, "one version per kept event");
        }
        // One large write pushes out as many small ones as its weight.
        let large = Bytes::from(vec![b'x'; 3 * write]);
        kv = state.update("/x", large, kv.mod_revision).unwrap();
        assert_eq!(state.compacted, kv.mod_revision - 4, "4 small writes left");
        // A write larger than the whole bound is still kept, alone.
        let huge = Bytes::from(vec![b'y'; 10 * write]);
        kv = state.update("/x", huge, kv.mod_revision).unwrap();
        assert_eq!(state.compacted, kv.mod_revision);
        assert!(state.history_weight > state.history_bytes);
    }

    #[test]
    fn a_compaction_is_forgotten_in_steps() {
        let mut state = State::new(usize::MAX);
        for i in 0..100 {
            state.create(&format!("/k{i}"), v("1")).unwrap();
        }
        state.mark_compacted(91);
        assert!(state.forget_compacted(40), "40 of 90 forgotten");
        assert_eq!(state.log.len(), 60);
        let old = state.list(&ListRequest {
            revision: 50,
            ..Default::default()
        });
        assert!(
            matches!(old, Err(StoreError::Compacted { .. })),
            "a read before the compaction point is refused at once: {old:?}"
        );
        assert!(!state.forget_compacted(100), "the rest forgotten");
        assert_eq!(state.log.front().map(Event::revision), Some(91));
        assert_eq!(state.keys.len(), 100, "live keys are kept");
    }
}
