//! The etcd backend: the store a real kube-apiserver uses, through etcd's v3
//! gRPC API.
//!
//! The API server's keys are already kube-apiserver's layout,
//! `/registry/<resource>/<namespace>/<name>`, so by default they are stored
//! as they are; [`EtcdStoreOptions::prefix`] puts them under a further
//! prefix, to share one etcd between several kstress servers.
//!
//! etcd's revisions are the store's revisions, so nothing is translated:
//! creates, updates and deletes are transactions that compare the key's
//! `create_revision` or `mod_revision` and read the key back in the same
//! transaction when the comparison fails, so a conflict carries the key as
//! it is. Watches ask for previous values (etcd's deletes carry no value)
//! and for progress notifications: etcd's own, sent only to watchers that
//! have caught up, and, once a watcher is known to have caught up,
//! explicit progress requests every [`Store::progress_interval`], because
//! etcd's own interval defaults to ten minutes.
//!
//! etcd does not report its compaction point, so
//! [`Store::compacted_revision`] finds it as the oldest revision a range
//! read still succeeds at, searching up from the last point it found.
//!
//! Failures to reach etcd become [`StoreError::Unavailable`] (503 upstream)
//! and deadlines [`StoreError::Timeout`] (504); the client reconnects by
//! itself, so requests succeed again as soon as etcd is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType,
    GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse, WatchOptions, WatchResponse,
};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    Event, EventKind, KeyValue, ListRequest, ListResponse, Result, Revision, Store, StoreError,
    WatchBatch, WatchStream,
};

/// Where and how to reach etcd.
#[derive(Debug, Clone)]
pub struct EtcdStoreOptions {
    /// Client URLs, e.g. `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// Prepended to every key the API server uses.
    pub prefix: String,
    /// How often a watch that has caught up asks etcd for a progress mark.
    pub progress_interval: Duration,
    /// Deadline of each request; past it the request fails with `Timeout`.
    pub request_timeout: Duration,
    /// Deadline of establishing a connection.
    pub connect_timeout: Duration,
    /// Batches buffered per watch before the watch waits for its reader.
    pub watch_buffer: usize,
}

impl Default for EtcdStoreOptions {
    fn default() -> Self {
        EtcdStoreOptions {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            prefix: String::new(),
            progress_interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            watch_buffer: 1_000,
        }
    }
}

/// The etcd [`Store`]. Cloning shares the connection.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    options: Arc<EtcdStoreOptions>,
    /// The compaction point last found: compaction only moves forward, so
    /// the next search starts here.
    compacted: Arc<AtomicI64>,
}

fn unavailable_or_timeout(message: String) -> StoreError {
    if message.contains("timed out") || message.contains("deadline") {
        StoreError::Timeout(message)
    } else {
        StoreError::Unavailable(message)
    }
}

/// Maps a client error to the store's: anything about the connection is
/// `Unavailable`, deadlines are `Timeout`.
fn store_error(err: etcd_client::Error) -> StoreError {
    use etcd_client::Error as E;
    use tonic::Code;
    match err {
        E::GRpcStatus(status) => match status.code() {
            Code::DeadlineExceeded => StoreError::Timeout(format!("etcd: {}", status.message())),
            Code::Unavailable | Code::Cancelled | Code::Unknown | Code::Aborted => {
                unavailable_or_timeout(format!("etcd: {}", status.message()))
            }
            _ => StoreError::Internal(format!("etcd: {}", status.message())),
        },
        E::TransportError(_) | E::IoError(_) | E::WatchError(_) | E::EndpointError(_) => {
            unavailable_or_timeout(format!("etcd: {err}"))
        }
        other => StoreError::Internal(format!("etcd: {other}")),
    }
}

fn is_compacted(err: &etcd_client::Error) -> bool {
    err.to_string()
        .contains("required revision has been compacted")
}

fn is_future(err: &etcd_client::Error) -> bool {
    err.to_string()
        .contains("required revision is a future revision")
}

/// The first key after every key starting with `prefix` (etcd's range end
/// of a prefix); "\0" ranges over all keys when the prefix is empty.
fn range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// etcd refuses an empty key; "\0" starts a range at the first key.
fn non_empty(key: Vec<u8>) -> Vec<u8> {
    if key.is_empty() { vec![0] } else { key }
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision> {
    header
        .map(|h| h.revision())
        .ok_or_else(|| StoreError::Internal("etcd: response without a header".into()))
}

impl EtcdStore {
    /// Connects to etcd and checks that it answers, so that a wrong or dead
    /// endpoint is an error at start rather than at the first request.
    pub async fn connect(options: EtcdStoreOptions) -> Result<EtcdStore> {
        let endpoints = options.endpoints.join(",");
        let connect = ConnectOptions::new()
            .with_connect_timeout(options.connect_timeout)
            .with_timeout(options.request_timeout)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client = Client::connect(&options.endpoints, Some(connect))
            .await
            .map_err(|err| {
                StoreError::Unavailable(format!("cannot connect to etcd at {endpoints}: {err}"))
            })?;
        let store = EtcdStore {
            client,
            options: Arc::new(options),
            compacted: Arc::new(AtomicI64::new(0)),
        };
        store.current_revision().await.map_err(|err| {
            let reason = match err {
                StoreError::Unavailable(reason) | StoreError::Timeout(reason) => reason,
                other => other.to_string(),
            };
            StoreError::Unavailable(format!("etcd at {endpoints} does not answer ({reason})"))
        })?;
        Ok(store)
    }

    fn full_key(&self, key: &str) -> Vec<u8> {
        format!("{}{key}", self.options.prefix).into_bytes()
    }

    /// A single key to read when only the response's revision matters (etcd
    /// refuses an empty key).
    fn probe_key(&self) -> Vec<u8> {
        self.full_key("/")
    }

    fn to_kv(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue> {
        let key = kv
            .key_str()
            .ok()
            .and_then(|k| k.strip_prefix(self.options.prefix.as_str()))
            .ok_or_else(|| StoreError::Internal(format!("etcd: foreign key {:?}", kv.key())))?;
        Ok(KeyValue {
            key: key.to_owned(),
            value: Bytes::copy_from_slice(kv.value()),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
        })
    }

    /// Whether a read at `revision` is still possible; a revision not
    /// written yet is not compacted either.
    async fn readable_at(&self, revision: Revision) -> Result<bool> {
        let options = GetOptions::new().with_revision(revision).with_count_only();
        match self
            .client
            .kv_client()
            .get(self.probe_key(), Some(options))
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if is_future(&err) => Ok(true),
            Err(err) if is_compacted(&err) => Ok(false),
            Err(err) => Err(store_error(err)),
        }
    }

    /// The read-back of a transaction whose comparison failed: the key as
    /// it is now, if it exists.
    fn read_back(&self, response: &etcd_client::TxnResponse) -> Result<Option<KeyValue>> {
        match response.op_responses().first() {
            Some(TxnOpResponse::Get(get)) => get.kvs().first().map(|kv| self.to_kv(kv)).transpose(),
            _ => Err(StoreError::Internal(
                "etcd: failed transaction without its read-back".into(),
            )),
        }
    }

    /// Runs a guarded write: `then` when `compare` holds, otherwise a read of
    /// the key.
    async fn guarded(
        &self,
        key: &[u8],
        compare: Compare,
        then: TxnOp,
    ) -> Result<etcd_client::TxnResponse> {
        let txn = Txn::new()
            .when([compare])
            .and_then([then])
            .or_else([TxnOp::get(key.to_vec(), None)]);
        self.client.kv_client().txn(txn).await.map_err(store_error)
    }

    fn conflict_or_missing(
        &self,
        key: &str,
        expected: Option<Revision>,
        current: Option<KeyValue>,
    ) -> StoreError {
        match (current, expected) {
            (Some(current), Some(expected)) => StoreError::Conflict {
                key: key.to_owned(),
                expected,
                current: Some(Box::new(current)),
            },
            _ => StoreError::NotFound {
                key: key.to_owned(),
            },
        }
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let response = self
            .client
            .kv_client()
            .get(self.full_key(key), None)
            .await
            .map_err(store_error)?;
        response.kvs().first().map(|kv| self.to_kv(kv)).transpose()
    }

    async fn list(&self, request: ListRequest) -> Result<ListResponse> {
        let prefix = self.full_key(&request.prefix);
        let start = match request.start_after.as_deref() {
            Some(after) if after >= request.prefix.as_str() => {
                let mut start = self.full_key(after);
                start.push(0);
                start
            }
            _ => non_empty(prefix.clone()),
        };
        let mut options = GetOptions::new().with_range(range_end(&prefix));
        if request.revision > 0 {
            options = options.with_revision(request.revision);
        }
        if request.limit > 0 {
            options = options.with_limit(request.limit as i64);
        }
        let response = match self.client.kv_client().get(start, Some(options)).await {
            Ok(response) => response,
            Err(err) if is_compacted(&err) => {
                return Err(StoreError::Compacted {
                    requested: request.revision,
                    compacted: self.compacted_revision().await?,
                });
            }
            Err(err) if is_future(&err) => {
                return Err(StoreError::FutureRevision {
                    requested: request.revision,
                    current: self.current_revision().await?,
                });
            }
            Err(err) => return Err(store_error(err)),
        };
        let kvs = response
            .kvs()
            .iter()
            .map(|kv| self.to_kv(kv))
            .collect::<Result<Vec<_>>>()?;
        let revision = match request.revision {
            0 => header_revision(response.header())?,
            r => r,
        };
        let remaining = (response.count().max(0) as u64).saturating_sub(kvs.len() as u64);
        Ok(ListResponse {
            kvs,
            revision,
            remaining,
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        let full = self.full_key(key);
        let response = self
            .guarded(
                &full,
                Compare::create_revision(full.clone(), CompareOp::Equal, 0),
                TxnOp::put(full.clone(), value.to_vec(), None),
            )
            .await?;
        if !response.succeeded() {
            return Err(StoreError::AlreadyExists {
                key: key.to_owned(),
            });
        }
        let revision = header_revision(response.header())?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        let full = self.full_key(key);
        let response = self
            .guarded(
                &full,
                Compare::mod_revision(full.clone(), CompareOp::Equal, expected),
                TxnOp::put(
                    full.clone(),
                    value.to_vec(),
                    Some(PutOptions::new().with_prev_key()),
                ),
            )
            .await?;
        if !response.succeeded() {
            let current = self.read_back(&response)?;
            return Err(self.conflict_or_missing(key, Some(expected), current));
        }
        let prev = match response.op_responses().first() {
            Some(TxnOpResponse::Put(put)) => put.prev_key().map(|kv| self.to_kv(kv)).transpose()?,
            _ => None,
        };
        let prev = prev.ok_or_else(|| {
            StoreError::Internal(format!(
                "etcd: update of {key:?} without its previous value"
            ))
        })?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: prev.create_revision,
            mod_revision: header_revision(response.header())?,
        })
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        let full = self.full_key(key);
        let compare = match expected {
            Some(expected) => Compare::mod_revision(full.clone(), CompareOp::Equal, expected),
            None => Compare::create_revision(full.clone(), CompareOp::Greater, 0),
        };
        let delete = TxnOp::delete(full.clone(), Some(DeleteOptions::new().with_prev_key()));
        let response = self.guarded(&full, compare, delete).await?;
        if !response.succeeded() {
            let current = self.read_back(&response)?;
            return Err(self.conflict_or_missing(key, expected, current));
        }
        let prev = match response.op_responses().first() {
            Some(TxnOpResponse::Delete(deleted)) => deleted
                .prev_kvs()
                .first()
                .map(|kv| self.to_kv(kv))
                .transpose()?,
            _ => None,
        };
        let prev = prev.ok_or_else(|| StoreError::NotFound {
            key: key.to_owned(),
        })?;
        Ok(KeyValue {
            mod_revision: header_revision(response.header())?,
            ..prev
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        // etcd reports a compacted start only after the watch is created, so
        // the start is checked first, for the caller to get the error at
        // once; a compaction racing with the check ends the stream with it.
        if after > 0 && !self.readable_at(after + 1).await? {
            return Err(StoreError::Compacted {
                requested: after,
                compacted: self.compacted_revision().await?,
            });
        }
        let full = self.full_key(prefix);
        let mut options = WatchOptions::new()
            .with_range(range_end(&full))
            .with_prev_key()
            .with_progress_notify();
        if after > 0 {
            options = options.with_start_revision(after + 1);
        }
        let stream = self
            .client
            .watch_client()
            .watch(non_empty(full), Some(options))
            .await
            .map_err(store_error)?;
        let (tx, rx) = mpsc::channel(self.options.watch_buffer.max(1));
        tokio::spawn(forward_watch(self.clone(), stream, after, tx));
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    async fn current_revision(&self) -> Result<Revision> {
        let response = self
            .client
            .kv_client()
            .get(self.probe_key(), Some(GetOptions::new().with_count_only()))
            .await
            .map_err(store_error)?;
        header_revision(response.header())
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        let known = self.compacted.load(Ordering::Acquire).max(1);
        if self.readable_at(known).await? {
            return Ok(if known == 1 { 0 } else { known });
        }
        // The oldest readable revision lies in (known, current].
        let (mut low, mut high) = (known, self.current_revision().await?);
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            if self.readable_at(middle).await? {
                high = middle;
            } else {
                low = middle;
            }
        }
        self.compacted.fetch_max(high, Ordering::AcqRel);
        Ok(high)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let options = CompactionOptions::new().with_physical();
        match self
            .client
            .kv_client()
            .compact(revision, Some(options))
            .await
        {
            Ok(_) => {
                self.compacted.fetch_max(revision, Ordering::AcqRel);
                Ok(())
            }
            Err(err) if is_compacted(&err) => Ok(()),
            Err(err) if is_future(&err) => Err(StoreError::FutureRevision {
                requested: revision,
                current: self.current_revision().await?,
            }),
            Err(err) => Err(store_error(err)),
        }
    }

    fn progress_interval(&self) -> Duration {
        self.options.progress_interval
    }
}

/// Turns one etcd watch response into a batch; `None` for a response that
/// carries nothing for the watcher (the creation acknowledgement).
fn to_batch(store: &EtcdStore, response: &WatchResponse) -> Result<Option<WatchBatch>> {
    if response.canceled() {
        return Err(match response.compact_revision() {
            0 => StoreError::Unavailable(format!(
                "etcd cancelled the watch: {}",
                response.cancel_reason()
            )),
            compacted => StoreError::Compacted {
                requested: compacted - 1,
                compacted,
            },
        });
    }
    let mut events = Vec::with_capacity(response.events().len());
    for event in response.events() {
        let kv = event
            .kv()
            .ok_or_else(|| StoreError::Internal("etcd: watch event without a key".into()))?;
        let prev = event.prev_kv().map(|p| store.to_kv(p)).transpose()?;
        events.push(match event.event_type() {
            EventType::Put => {
                let kv = store.to_kv(kv)?;
                let created = kv.create_revision == kv.mod_revision;
                Event {
                    kind: if created {
                        EventKind::Created
                    } else {
                        EventKind::Updated
                    },
                    kv,
                    prev: if created { None } else { prev },
                }
            }
            EventType::Delete => {
                let deleted = store.to_kv(kv)?;
                Event {
                    kind: EventKind::Deleted,
                    kv: match &prev {
                        Some(prev) => KeyValue {
                            mod_revision: deleted.mod_revision,
                            ..prev.clone()
                        },
                        None => deleted,
                    },
                    prev,
                }
            }
        });
    }
    let revision = match events.last() {
        Some(last) => last.revision(),
        None if response.created() => return Ok(None),
        None => header_revision(response.header())?,
    };
    Ok(Some(WatchBatch { events, revision }))
}

/// Feeds one etcd watch into the store's watch stream until either side
/// ends, asking for progress marks once the watch has caught up with the
/// revision etcd was at when it was created: before that, etcd 3.4 would
/// answer a progress request with a mark ahead of the replay.
async fn forward_watch(
    store: EtcdStore,
    mut stream: etcd_client::WatchStream,
    after: Revision,
    tx: mpsc::Sender<Result<WatchBatch>>,
) {
    let mut ticker = tokio::time::interval(store.options.progress_interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The revision the watch must reach before progress may be requested.
    let mut catch_up: Option<Revision> = None;
    let mut caught_up = false;
    loop {
        tokio::select! {
            message = stream.message() => {
                let response = match message {
                    Ok(Some(response)) => response,
                    Ok(None) => {
                        let _ = tx.send(Err(StoreError::Unavailable("etcd ended the watch".into()))).await;
                        return;
                    }
                    Err(err) => {
                        let _ = tx.send(Err(store_error(err))).await;
                        return;
                    }
                };
                if response.created() {
                    let created_at = response.header().map_or(0, |h| h.revision());
                    caught_up = after == 0 || after >= created_at;
                    catch_up = Some(created_at);
                }
                match to_batch(&store, &response) {
                    Ok(Some(batch)) => {
                        // An empty batch is etcd's own progress notification,
                        // sent only to watchers that have caught up.
                        if batch.events.is_empty() || catch_up.is_some_and(|r| batch.revision >= r) {
                            caught_up = true;
                        }
                        if tx.send(Ok(batch)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(err) => {
                        let _ = tx.send(Err(err)).await;
                        return;
                    }
                }
            }
            _ = ticker.tick(), if caught_up => {
                if let Err(err) = stream.request_progress().await {
                    let _ = tx.send(Err(store_error(err))).await;
                    return;
                }
            }
            _ = tx.closed() => return,
        }
    }
}
