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
use etcdpb::etcdserverpb::{
    self as pb, CompactionRequest, Compare, DeleteRangeRequest, PutRequest, RangeRequest,
    RequestOp, ResponseHeader, TxnRequest, TxnResponse, WatchCreateRequest, WatchProgressRequest,
    WatchRequest, WatchResponse, compare, request_op, response_op, watch_request,
};
use etcdpb::{KvClient, WatchClient};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

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
    kv: KvClient<Channel>,
    watcher: WatchClient<Channel>,
    options: Arc<EtcdStoreOptions>,
    /// The compaction point last found: compaction only moves forward, so
    /// the next search starts here.
    compacted: Arc<AtomicI64>,
}

fn unavailable_or_timeout(message: String) -> StoreError {
    if message.contains("timed out")
        || message.contains("deadline")
        || message.contains("Timeout expired")
    {
        StoreError::Timeout(message)
    } else {
        StoreError::Unavailable(message)
    }
}

/// Maps a gRPC status to the store's errors: anything about the
/// connection is `Unavailable`, deadlines are `Timeout` (the channel's
/// request timeout surfaces as a cancelled call).
fn store_error(status: tonic::Status) -> StoreError {
    use tonic::Code;
    let message = format!("etcd: {}", status.message());
    match status.code() {
        Code::DeadlineExceeded => StoreError::Timeout(message),
        Code::Unavailable | Code::Cancelled | Code::Unknown | Code::Aborted => {
            unavailable_or_timeout(message)
        }
        _ => StoreError::Internal(message),
    }
}

/// etcd answers a read or compaction at a compacted revision with
/// OUT_OF_RANGE "etcdserver: mvcc: required revision has been compacted".
fn is_compacted(status: &tonic::Status) -> bool {
    status
        .message()
        .contains("required revision has been compacted")
}

/// And one at a revision it has not reached with "... is a future revision".
fn is_future(status: &tonic::Status) -> bool {
    status
        .message()
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

fn header_revision(header: Option<&ResponseHeader>) -> Result<Revision> {
    header
        .map(|h| h.revision)
        .ok_or_else(|| StoreError::Internal("etcd: response without a header".into()))
}

/// The endpoint of a client URL; a bare `host:port` means plain HTTP, as
/// etcdctl reads it.
fn endpoint(url: &str, options: &EtcdStoreOptions) -> Result<Endpoint> {
    let url = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(|err| StoreError::Unavailable(format!("invalid etcd URL {url:?}: {err}")))?;
    Ok(endpoint
        .connect_timeout(options.connect_timeout)
        .timeout(options.request_timeout)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true))
}

/// A comparison of one key's `target` revision with `value`.
fn compare(key: &[u8], result: compare::CompareResult, target: compare::TargetUnion) -> Compare {
    let target_kind = match target {
        compare::TargetUnion::Version(_) => compare::CompareTarget::Version,
        compare::TargetUnion::CreateRevision(_) => compare::CompareTarget::Create,
        compare::TargetUnion::ModRevision(_) => compare::CompareTarget::Mod,
        compare::TargetUnion::Value(_) => compare::CompareTarget::Value,
    };
    Compare {
        result: result as i32,
        target: target_kind as i32,
        key: key.to_vec(),
        target_union: Some(target),
    }
}

fn op(request: request_op::Request) -> RequestOp {
    RequestOp {
        request: Some(request),
    }
}

impl EtcdStore {
    /// Connects to etcd and checks that it answers, so that a wrong or dead
    /// endpoint is an error at start rather than at the first request.
    /// Several endpoints share the requests; one that fails is retried by
    /// the channel while the others serve.
    pub async fn connect(options: EtcdStoreOptions) -> Result<EtcdStore> {
        let endpoints = options.endpoints.join(",");
        if options.endpoints.is_empty() {
            return Err(StoreError::Unavailable("no etcd endpoint given".into()));
        }
        let channel = Channel::balance_list(
            options
                .endpoints
                .iter()
                .map(|url| endpoint(url, &options))
                .collect::<Result<Vec<_>>>()?
                .into_iter(),
        );
        let store = EtcdStore {
            kv: KvClient::new(channel.clone()),
            watcher: WatchClient::new(channel),
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

    fn to_kv(&self, kv: pb::KeyValue) -> Result<KeyValue> {
        let key = std::str::from_utf8(&kv.key)
            .ok()
            .and_then(|k| k.strip_prefix(self.options.prefix.as_str()))
            .ok_or_else(|| StoreError::Internal(format!("etcd: foreign key {:?}", kv.key)))?;
        Ok(KeyValue {
            key: key.to_owned(),
            value: Bytes::from(kv.value),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
        })
    }

    async fn range(
        &self,
        request: RangeRequest,
    ) -> std::result::Result<pb::RangeResponse, tonic::Status> {
        self.kv
            .clone()
            .range(request)
            .await
            .map(tonic::Response::into_inner)
    }

    /// A count-only read of the probe key, at `revision` (0: the newest).
    fn probe(&self, revision: Revision) -> RangeRequest {
        RangeRequest {
            key: self.probe_key(),
            revision,
            count_only: true,
            ..RangeRequest::default()
        }
    }

    /// Whether a read at `revision` is still possible; a revision not
    /// written yet is not compacted either.
    async fn readable_at(&self, revision: Revision) -> Result<bool> {
        match self.range(self.probe(revision)).await {
            Ok(_) => Ok(true),
            Err(status) if is_future(&status) => Ok(true),
            Err(status) if is_compacted(&status) => Ok(false),
            Err(status) => Err(store_error(status)),
        }
    }

    /// Runs a guarded write: `then` when `compare` holds, otherwise a read of
    /// the key, whose result [`EtcdStore::read_back`] returns.
    async fn guarded(&self, key: &[u8], compare: Compare, then: RequestOp) -> Result<TxnResponse> {
        let txn = TxnRequest {
            compare: vec![compare],
            success: vec![then],
            failure: vec![op(request_op::Request::RequestRange(RangeRequest {
                key: key.to_vec(),
                ..RangeRequest::default()
            }))],
        };
        self.kv
            .clone()
            .txn(txn)
            .await
            .map(tonic::Response::into_inner)
            .map_err(store_error)
    }

    /// The read-back of a transaction whose comparison failed: the key as
    /// it is now, if it exists.
    fn read_back(&self, response: TxnResponse) -> Result<Option<KeyValue>> {
        match first_response(response) {
            Some(response_op::Response::ResponseRange(range)) => range
                .kvs
                .into_iter()
                .next()
                .map(|kv| self.to_kv(kv))
                .transpose(),
            _ => Err(StoreError::Internal(
                "etcd: failed transaction without its read-back".into(),
            )),
        }
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

fn first_response(response: TxnResponse) -> Option<response_op::Response> {
    response
        .responses
        .into_iter()
        .next()
        .and_then(|op| op.response)
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let response = self
            .range(RangeRequest {
                key: self.full_key(key),
                ..RangeRequest::default()
            })
            .await
            .map_err(store_error)?;
        response
            .kvs
            .into_iter()
            .next()
            .map(|kv| self.to_kv(kv))
            .transpose()
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
        let range = RangeRequest {
            key: start,
            range_end: range_end(&prefix),
            revision: request.revision.max(0),
            limit: i64::try_from(request.limit).unwrap_or(i64::MAX),
            ..RangeRequest::default()
        };
        let response = match self.range(range).await {
            Ok(response) => response,
            Err(status) if is_compacted(&status) => {
                return Err(StoreError::Compacted {
                    requested: request.revision,
                    compacted: self.compacted_revision().await?,
                });
            }
            Err(status) if is_future(&status) => {
                return Err(StoreError::FutureRevision {
                    requested: request.revision,
                    current: self.current_revision().await?,
                });
            }
            Err(status) => return Err(store_error(status)),
        };
        let revision = match request.revision {
            0 => header_revision(response.header.as_ref())?,
            r => r,
        };
        let count = response.count;
        let kvs = response
            .kvs
            .into_iter()
            .map(|kv| self.to_kv(kv))
            .collect::<Result<Vec<_>>>()?;
        let remaining = (count.max(0) as u64).saturating_sub(kvs.len() as u64);
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
                compare(
                    &full,
                    compare::CompareResult::Equal,
                    compare::TargetUnion::CreateRevision(0),
                ),
                op(request_op::Request::RequestPut(PutRequest {
                    key: full.clone(),
                    value: value.to_vec(),
                    ..PutRequest::default()
                })),
            )
            .await?;
        if !response.succeeded {
            return Err(StoreError::AlreadyExists {
                key: key.to_owned(),
            });
        }
        let revision = header_revision(response.header.as_ref())?;
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
                compare(
                    &full,
                    compare::CompareResult::Equal,
                    compare::TargetUnion::ModRevision(expected),
                ),
                op(request_op::Request::RequestPut(PutRequest {
                    key: full.clone(),
                    value: value.to_vec(),
                    prev_kv: true,
                    ..PutRequest::default()
                })),
            )
            .await?;
        if !response.succeeded {
            let current = self.read_back(response)?;
            return Err(self.conflict_or_missing(key, Some(expected), current));
        }
        let revision = header_revision(response.header.as_ref())?;
        let prev = match first_response(response) {
            Some(response_op::Response::ResponsePut(put)) => {
                put.prev_kv.map(|kv| self.to_kv(kv)).transpose()?
            }
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
            mod_revision: revision,
        })
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        let full = self.full_key(key);
        let guard = match expected {
            Some(expected) => compare(
                &full,
                compare::CompareResult::Equal,
                compare::TargetUnion::ModRevision(expected),
            ),
            None => compare(
                &full,
                compare::CompareResult::Greater,
                compare::TargetUnion::CreateRevision(0),
            ),
        };
        let delete = op(request_op::Request::RequestDeleteRange(
            DeleteRangeRequest {
                key: full.clone(),
                prev_kv: true,
                ..DeleteRangeRequest::default()
            },
        ));
        let response = self.guarded(&full, guard, delete).await?;
        if !response.succeeded {
            let current = self.read_back(response)?;
            return Err(self.conflict_or_missing(key, expected, current));
        }
        let revision = header_revision(response.header.as_ref())?;
        let prev = match first_response(response) {
            Some(response_op::Response::ResponseDeleteRange(deleted)) => deleted
                .prev_kvs
                .into_iter()
                .next()
                .map(|kv| self.to_kv(kv))
                .transpose()?,
            _ => None,
        };
        let prev = prev.ok_or_else(|| StoreError::NotFound {
            key: key.to_owned(),
        })?;
        Ok(KeyValue {
            mod_revision: revision,
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
        let create = WatchCreateRequest {
            range_end: range_end(&full),
            key: non_empty(full),
            start_revision: if after > 0 { after + 1 } else { 0 },
            progress_notify: true,
            prev_kv: true,
            ..WatchCreateRequest::default()
        };
        // The request side of the stream: the creation first, then the
        // progress requests of `forward_watch`.
        let (requests, requests_rx) = mpsc::channel(4);
        requests
            .send(WatchRequest {
                request_union: Some(watch_request::RequestUnion::CreateRequest(create)),
            })
            .await
            .map_err(|_| StoreError::Internal("etcd: watch request stream closed".into()))?;
        let responses = self
            .watcher
            .clone()
            .watch(ReceiverStream::new(requests_rx))
            .await
            .map_err(store_error)?
            .into_inner();
        let (tx, rx) = mpsc::channel(self.options.watch_buffer.max(1));
        tokio::spawn(forward_watch(self.clone(), requests, responses, after, tx));
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    async fn current_revision(&self) -> Result<Revision> {
        let response = self.range(self.probe(0)).await.map_err(store_error)?;
        header_revision(response.header.as_ref())
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
        let request = CompactionRequest {
            revision,
            physical: true,
        };
        match self.kv.clone().compact(request).await {
            Ok(_) => {
                self.compacted.fetch_max(revision, Ordering::AcqRel);
                Ok(())
            }
            Err(status) if is_compacted(&status) => Ok(()),
            Err(status) if is_future(&status) => Err(StoreError::FutureRevision {
                requested: revision,
                current: self.current_revision().await?,
            }),
            Err(status) => Err(store_error(status)),
        }
    }

    fn progress_interval(&self) -> Duration {
        self.options.progress_interval
    }
}

/// Turns one etcd watch response into a batch; `None` for a response that
/// carries nothing for the watcher (the creation acknowledgement).
fn to_batch(store: &EtcdStore, response: WatchResponse) -> Result<Option<WatchBatch>> {
    if response.canceled {
        return Err(match response.compact_revision {
            0 => StoreError::Unavailable(format!(
                "etcd cancelled the watch: {}",
                response.cancel_reason
            )),
            compacted => StoreError::Compacted {
                requested: compacted - 1,
                compacted,
            },
        });
    }
    let header = response.header;
    let mut events = Vec::with_capacity(response.events.len());
    for event in response.events {
        let kind = event.r#type();
        let kv = event
            .kv
            .ok_or_else(|| StoreError::Internal("etcd: watch event without a key".into()))?;
        let prev = event.prev_kv.map(|p| store.to_kv(p)).transpose()?;
        events.push(match kind {
            pb::event::EventType::Put => {
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
            pb::event::EventType::Delete => {
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
        None if response.created => return Ok(None),
        None => header_revision(header.as_ref())?,
    };
    Ok(Some(WatchBatch { events, revision }))
}

/// Feeds one etcd watch into the store's watch stream until either side
/// ends, asking for progress marks once the watch has caught up with the
/// revision etcd was at when it was created: before that, etcd 3.4 would
/// answer a progress request with a mark ahead of the replay.
async fn forward_watch(
    store: EtcdStore,
    requests: mpsc::Sender<WatchRequest>,
    mut responses: tonic::Streaming<WatchResponse>,
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
            message = responses.message() => {
                let response = match message {
                    Ok(Some(response)) => response,
                    Ok(None) => {
                        let _ = tx.send(Err(StoreError::Unavailable("etcd ended the watch".into()))).await;
                        return;
                    }
                    Err(status) => {
                        let _ = tx.send(Err(store_error(status))).await;
                        return;
                    }
                };
                if response.created {
                    let created_at = response.header.as_ref().map_or(0, |h| h.revision);
                    caught_up = after == 0 || after >= created_at;
                    catch_up = Some(created_at);
                }
                match to_batch(&store, response) {
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
                let progress = WatchRequest {
                    request_union: Some(watch_request::RequestUnion::ProgressRequest(WatchProgressRequest {})),
                };
                if requests.send(progress).await.is_err() {
                    let _ = tx.send(Err(StoreError::Unavailable("etcd ended the watch".into()))).await;
                    return;
                }
            }
            _ = tx.closed() => return,
        }
    }
}
