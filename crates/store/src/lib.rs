//! The MVCC key-value store the kstress API server keeps its objects in.
//!
//! The model is etcd's, because the API server's semantics are built on it: one
//! global revision counter bumped by every write, each key carrying the
//! revision that created it and the revision of its last modification, reads
//! at a past revision until that revision is compacted, and watches that
//! replay every change after a given revision. The API server maps an object's
//! `metadata.resourceVersion` to the `mod_revision` of its key, exactly as
//! kube-apiserver does on etcd, so all backends must agree on these rules; the
//! shared conformance suite (`testsuite`, behind the feature of that name)
//! pins them.

mod disk;
mod etcd;
#[cfg(feature = "testsuite")]
pub mod etcd_server;
mod hub;
mod memory;
#[cfg(feature = "testsuite")]
pub mod testsuite;

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub use disk::{DiskOpenError, DiskStore, DiskStoreOptions};
pub use etcd::{EtcdStore, EtcdStoreOptions};
pub use memory::{MemoryStore, MemoryStoreOptions};

/// A store revision. Revisions start at 1 for the first write; 0 never names a
/// write and stands for "the current revision" in read requests.
pub type Revision = i64;

/// One key with its value and the revisions of its history that clients see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision of the write that created the key (as it exists now).
    pub create_revision: Revision,
    /// Revision of the last write to the key; for a key returned by
    /// [`Store::delete`] or carried by a delete event, the deletion's revision.
    pub mod_revision: Revision,
}

/// A request for the keys under a prefix, in key order.
#[derive(Clone, Debug, Default)]
pub struct ListRequest {
    /// Only keys starting with this prefix are returned.
    pub prefix: String,
    /// Return only keys strictly greater than this one: how a paged list
    /// resumes after the last key of its previous page.
    pub start_after: Option<String>,
    /// Read the state as of this revision; 0 reads the current state.
    pub revision: Revision,
    /// At most this many keys; 0 means no limit.
    pub limit: usize,
}

/// The answer to a [`ListRequest`].
#[derive(Clone, Debug, Default)]
pub struct ListResponse {
    pub kvs: Vec<KeyValue>,
    /// The revision the list was read at; later pages must read at it too.
    pub revision: Revision,
    /// How many matching keys follow the returned ones (0 when complete).
    pub remaining: u64,
}

impl ListResponse {
    /// Whether keys were left out because of the limit.
    pub fn more(&self) -> bool {
        self.remaining > 0
    }
}

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Updated,
    Deleted,
}

/// One change of one key, as delivered by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// The key after the change. For a delete, the value is the last value the
    /// key had, `create_revision` is unchanged and `mod_revision` is the
    /// revision of the delete.
    pub kv: KeyValue,
    /// The key before the change (none for a create).
    pub prev: Option<KeyValue>,
}

impl Event {
    /// The revision of the write this event reports.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A batch of watch events, in revision order.
///
/// `revision` is a progress mark: every change under the watched prefix up
/// to and including it has been delivered. A batch with no events is a
/// progress notification; backends send one at least every
/// [`Store::progress_interval`] so that a watcher of a quiet prefix still
/// learns how far the store has advanced (the API server turns these into
/// BOOKMARK events).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchBatch {
    pub events: Vec<Event>,
    pub revision: Revision,
}

/// The stream of a watch. It ends with an error when the watch cannot go on
/// (for instance [`StoreError::Compacted`] or a watcher too slow to keep up);
/// the watcher then starts a new watch from the last revision it saw.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchBatch, StoreError>> + Send>>;

/// Failures of store operations. The API server maps each to a Kubernetes
/// Status error.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("key {key:?} not found")]
    NotFound { key: String },
    #[error("key {key:?} already exists")]
    AlreadyExists { key: String },
    /// A compare-and-swap found another revision than expected; `current` is
    /// the key as it is now (none if it was deleted).
    #[error("key {key:?} was modified: expected revision {expected}")]
    Conflict {
        key: String,
        expected: Revision,
        current: Option<Box<KeyValue>>,
    },
    /// The requested revision is older than the oldest one still kept.
    #[error("revision {requested} has been compacted; the oldest available is {compacted}")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// The requested revision has not been written yet.
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    /// The backend cannot be reached or refused to serve; the request may be
    /// retried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The backend did not answer in time; the outcome is unknown.
    #[error("storage timed out: {0}")]
    Timeout(String),
    /// A watcher fell too far behind and its buffer was dropped.
    #[error("watcher fell behind and was closed")]
    WatcherOverflow,
    #[error("storage error: {0}")]
    Internal(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An MVCC key-value store with etcd's semantics.
///
/// Every write bumps the store's single revision counter by one. Writes that
/// fail change nothing and consume no revision.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The current state of one key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// The keys under a prefix, in key order, at the requested revision.
    /// Fails with `Compacted` for a revision older than the compaction point
    /// and `FutureRevision` for one not yet written.
    async fn list(&self, request: ListRequest) -> Result<ListResponse>;

    /// Creates a key that must not exist; fails with `AlreadyExists`.
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue>;

    /// Replaces a key's value if its `mod_revision` is still `expected`;
    /// fails with `NotFound` or `Conflict`.
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue>;

    /// Deletes a key, if `expected` is given only while its `mod_revision`
    /// is still that. Returns the key's last value with the delete's
    /// revision as `mod_revision`.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue>;

    /// Watches the keys under a prefix for changes made after revision
    /// `after` (0: from now on). After a compaction at revision C the
    /// changes from C on are still kept, so this fails with `Compacted` only
    /// when `after < C - 1`, as an etcd watch starting at `after + 1` does.
    /// A watch from a revision not written yet waits for the changes after
    /// it, as etcd's does.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// The revision of the last write.
    async fn current_revision(&self) -> Result<Revision>;

    /// The revision of the last compaction, C: the oldest revision that can
    /// still be read (0 before any compaction).
    async fn compacted_revision(&self) -> Result<Revision>;

    /// Forgets history before `revision` (etcd's compact): reads at older
    /// revisions fail with `Compacted` afterwards. Compacting at or below the
    /// current compaction point is a no-op; beyond the current revision it
    /// fails with `FutureRevision`.
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// How often an idle watch receives a progress notification.
    fn progress_interval(&self) -> std::time::Duration;
}
