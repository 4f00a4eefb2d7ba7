//! The disk backend: a durable, crash-safe store in one file of a data
//! directory, built on redb.
//!
//! # Why redb
//!
//! Both pure-Rust candidates were weighed against what this store needs: one
//! small transaction per API write that must survive `kill -9` once it
//! returns, atomic updates of several tables (key versions, the event log,
//! the revision counter), ordered prefix scans for lists, and consistent
//! snapshots for reads at a revision and for watch replay.
//!
//! - redb is a copy-on-write B-tree in a single file. Every write
//!   transaction spans any number of tables, commits with an fsync
//!   (`Durability::Immediate`, its default) and is all-or-nothing after a
//!   crash; readers get MVCC snapshots that never block the writer. It runs
//!   no background threads.
//! - fjall is an LSM tree: faster for sustained bulk ingest, but durability
//!   is a journal flush mode to choose per write, its transactions are a
//!   separate keyspace flavour, it keeps many files and background
//!   flush/compaction threads, and its on-disk format changed between major
//!   versions.
//!
//! The API server's writes are small and each one is fsynced anyway, so an
//! LSM's write throughput buys nothing here, while redb's single-file,
//! single-writer transactional model maps one-to-one onto "one write, one
//! revision". redb it is.
//!
//! # Layout
//!
//! - `versions`: `(key, revision) -> [live flag][create revision][value]`,
//!   every version of every key since the compaction point (a delete is a
//!   tombstone version), so reads at a past revision and watch replay come
//!   from the same table;
//! - `log`: `revision -> key`, one entry per write since the compaction
//!   point, the order in which watches replay;
//! - `meta`: the format marker, the revision counter and the compaction
//!   revision.
//!
//! Like the memory backend it compacts by itself once the log holds more
//! than `history_limit` writes, so the file does not grow without bound.
//! Live watches are fed from memory right after each commit; history is
//! replayed from the file, so a watch from a revision still in the window
//! works across a restart.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::hub::{Hub, SharedHub};
use crate::{
    Event, EventKind, KeyValue, ListRequest, ListResponse, Result, Revision, Store, StoreError,
    WatchStream,
};

/// The store's file inside the data directory.
const DB_FILE: &str = "kstress.redb";
/// Where a new store is initialised before it is renamed to [`DB_FILE`], so
/// that a crash during initialisation never leaves a half-made store.
const INIT_FILE: &str = "kstress.redb.init";

/// The on-disk format this build reads and writes.
const FORMAT: i64 = 1;
const FORMAT_KEY: &str = "kstress-store-format";
const REVISION_KEY: &str = "revision";
const COMPACTED_KEY: &str = "compacted";

const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const VERSIONS: TableDefinition<(&str, i64), &[u8]> = TableDefinition::new("versions");
const LOG: TableDefinition<i64, &str> = TableDefinition::new("log");

/// Tuning of a [`DiskStore`].
#[derive(Debug, Clone)]
pub struct DiskStoreOptions {
    /// How often every watcher gets a progress notification.
    pub progress_interval: Duration,
    /// Batches buffered per watcher before it is closed as too slow.
    pub watch_buffer: usize,
    /// Writes of history kept before the store compacts by itself (at least
    /// one). Each kept write keeps its value on disk.
    pub history_limit: usize,
}

impl Default for DiskStoreOptions {
    fn default() -> Self {
        DiskStoreOptions {
            progress_interval: Duration::from_secs(1),
            watch_buffer: 10_000,
            history_limit: 20_000,
        }
    }
}

/// Why a data directory could not be opened. Nothing is ever initialised
/// over files kstress did not write.
#[derive(Debug, thiserror::Error)]
pub enum DiskOpenError {
    #[error("cannot use data directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "data directory {path} is not a kstress store: it holds {found:?} but no {DB_FILE}; \
         refusing to initialise a store over other files (use an empty or new directory)"
    )]
    Foreign { path: PathBuf, found: String },
    #[error(
        "{path} is not a usable kstress store ({reason}); it was left untouched: \
         restore it from a backup or move it away to start an empty store"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path} is in use by another process")]
    InUse { path: PathBuf },
}

/// The disk [`Store`]. Cloning shares the same store; the last clone dropped
/// closes the file and ends every watch.
#[derive(Clone)]
pub struct DiskStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    hub: SharedHub,
    /// Held from the start of a write transaction until its event is handed
    /// to the watchers, so that watchers see writes in revision order.
    writer: Mutex<()>,
    compacted: AtomicI64,
    history_limit: i64,
}

/// One stored version of a key.
struct Version {
    revision: Revision,
    create_revision: Revision,
    /// `None` marks a delete.
    value: Option<Bytes>,
}

impl Version {
    fn encode(create_revision: Revision, value: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + value.map_or(0, <[u8]>::len));
        out.push(u8::from(value.is_some()));
        out.extend_from_slice(&create_revision.to_le_bytes());
        out.extend_from_slice(value.unwrap_or_default());
        out
    }

    fn decode(revision: Revision, bytes: &[u8]) -> Result<Version> {
        let (flag, rest) = bytes
            .split_first()
            .filter(|(_, rest)| rest.len() >= 8)
            .ok_or_else(|| {
                StoreError::Internal(format!("corrupt version at revision {revision}"))
            })?;
        let (create, value) = rest.split_at(8);
        let create_revision = i64::from_le_bytes(create.try_into().expect("8 bytes"));
        Ok(Version {
            revision,
            create_revision,
            value: (*flag == 1).then(|| Bytes::copy_from_slice(value)),
        })
    }

    fn to_kv(&self, key: &str) -> Option<KeyValue> {
        self.value.as_ref().map(|value| KeyValue {
            key: key.to_owned(),
            value: value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.revision,
        })
    }
}

fn internal(err: impl Into<redb::Error>) -> StoreError {
    StoreError::Internal(format!("disk store: {}", err.into()))
}

/// The versions of `key` with revisions in `range`, oldest first.
fn versions_of<T: ReadableTable<(&'static str, i64), &'static [u8]>>(
    table: &T,
    key: &str,
    below: Bound<Revision>,
) -> Result<Vec<Version>> {
    table
        .range::<(&str, i64)>((Bound::Included((key, i64::MIN)), below.map(|r| (key, r))))
        .map_err(internal)?
        .map(|entry| {
            let (k, v) = entry.map_err(internal)?;
            Version::decode(k.value().1, v.value())
        })
        .collect()
}

/// The newest version of `key` at or before `revision` (`Unbounded`: any).
fn latest<T: ReadableTable<(&'static str, i64), &'static [u8]>>(
    table: &T,
    key: &str,
    at: Bound<Revision>,
) -> Result<Option<Version>> {
    let upper = match at {
        Bound::Unbounded => Bound::Included((key, i64::MAX)),
        other => other.map(|r| (key, r)),
    };
    let mut range = table
        .range::<(&str, i64)>((Bound::Included((key, i64::MIN)), upper))
        .map_err(internal)?;
    match range.next_back() {
        Some(entry) => {
            let (k, v) = entry.map_err(internal)?;
            Version::decode(k.value().1, v.value()).map(Some)
        }
        None => Ok(None),
    }
}

fn meta_value<T: ReadableTable<&'static str, i64>>(table: &T, key: &str) -> Result<i64> {
    Ok(table.get(key).map_err(internal)?.map_or(0, |v| v.value()))
}

/// The event of the write of `key` at `revision`, rebuilt from its version
/// and the one before it.
fn event_at<T: ReadableTable<(&'static str, i64), &'static [u8]>>(
    table: &T,
    key: &str,
    revision: Revision,
) -> Result<Event> {
    let mut versions = versions_of(table, key, Bound::Included(revision))?;
    let this = versions
        .pop()
        .filter(|v| v.revision == revision)
        .ok_or_else(|| {
            StoreError::Internal(format!("log names {key:?} at {revision} but no version"))
        })?;
    let prev = versions.pop().and_then(|v| v.to_kv(key));
    Ok(match (this.value.is_some(), prev) {
        (true, prev) => Event {
            kind: if prev.is_some() {
                EventKind::Updated
            } else {
                EventKind::Created
            },
            kv: this.to_kv(key).expect("a live version"),
            prev,
        },
        (false, Some(prev)) => Event {
            kind: EventKind::Deleted,
            kv: KeyValue {
                mod_revision: revision,
                ..prev.clone()
            },
            prev: Some(prev),
        },
        (false, None) => {
            return Err(StoreError::Internal(format!(
                "delete of {key:?} at {revision} has no earlier version"
            )));
        }
    })
}

/// A checked write: what to store for the key.
enum Write {
    Create(Bytes),
    Update(Bytes, Revision),
    Delete(Option<Revision>),
}

impl DiskStore {
    /// Opens the store in `dir`, creating the directory and an empty store
    /// when it does not exist or is empty. A directory holding anything else
    /// than a kstress store, or a store file that does not open cleanly, is
    /// refused: it is never reinitialised.
    pub fn open(dir: &Path, options: DiskStoreOptions) -> Result<DiskStore, DiskOpenError> {
        let io = |source| DiskOpenError::Io {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join(DB_FILE);
        if !path.exists() {
            refuse_foreign(dir)?;
            initialise(dir).map_err(io)?;
        }
        let db = Database::open(&path).map_err(|err| match err {
            redb::DatabaseError::DatabaseAlreadyOpen => DiskOpenError::InUse { path: path.clone() },
            other => DiskOpenError::Corrupt {
                path: path.clone(),
                reason: other.to_string(),
            },
        })?;
        let corrupt = |reason: String| DiskOpenError::Corrupt {
            path: path.clone(),
            reason,
        };
        let (revision, compacted) = read_meta(&db).map_err(|err| corrupt(err.to_string()))?;
        let hub = Hub::new(revision, options.watch_buffer);
        Ok(DiskStore {
            inner: Arc::new(Inner {
                db,
                hub: SharedHub::new(hub, options.progress_interval),
                writer: Mutex::new(()),
                compacted: AtomicI64::new(compacted),
                history_limit: options.history_limit.max(1) as i64,
            }),
        })
    }

    /// The number of open watches.
    pub fn watch_count(&self) -> usize {
        self.inner.hub.lock().len()
    }

    /// Runs blocking file work off the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|err| StoreError::Internal(format!("disk store task failed: {err}")))?
    }
}

/// Fails unless `dir` holds nothing but maybe the leftover of an
/// initialisation that crashed.
fn refuse_foreign(dir: &Path) -> Result<(), DiskOpenError> {
    let io = |source| DiskOpenError::Io {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let name = entry.map_err(io)?.file_name();
        if name != INIT_FILE {
            return Err(DiskOpenError::Foreign {
                path: dir.to_owned(),
                found: name.to_string_lossy().into_owned(),
            });
        }
    }
    Ok(())
}

/// Creates an empty store in `dir`, atomically: it appears under its name
/// only once complete.
fn initialise(dir: &Path) -> std::io::Result<()> {
    let init = dir.join(INIT_FILE);
    let _ = std::fs::remove_file(&init);
    let db = Database::create(&init).map_err(std::io::Error::other)?;
    let write = || -> Result<(), redb::Error> {
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(FORMAT_KEY, FORMAT)?;
            meta.insert(REVISION_KEY, 0)?;
            meta.insert(COMPACTED_KEY, 0)?;
            txn.open_table(VERSIONS)?;
            txn.open_table(LOG)?;
        }
        txn.commit()?;
        Ok(())
    };
    write().map_err(std::io::Error::other)?;
    drop(db);
    std::fs::rename(&init, dir.join(DB_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

/// The revision counter and compaction point, after checking the format
/// marker.
fn read_meta(db: &Database) -> Result<(Revision, Revision), String> {
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let meta = txn
        .open_table(META)
        .map_err(|e| format!("no kstress metadata: {e}"))?;
    match meta.get(FORMAT_KEY).map_err(|e| e.to_string())? {
        Some(format) if format.value() == FORMAT => {}
        Some(format) => {
            return Err(format!(
                "format version {} is not the supported version {FORMAT}",
                format.value()
            ));
        }
        None => return Err("no kstress format marker".into()),
    }
    txn.open_table(VERSIONS)
        .map_err(|e| format!("no versions table: {e}"))?;
    txn.open_table(LOG)
        .map_err(|e| format!("no log table: {e}"))?;
    let revision = meta_value(&meta, REVISION_KEY).map_err(|e| e.to_string())?;
    let compacted = meta_value(&meta, COMPACTED_KEY).map_err(|e| e.to_string())?;
    Ok((revision, compacted))
}

impl Inner {
    fn read_revision(&self, requested: Revision, current: Revision) -> Result<Revision> {
        let compacted = self.compacted.load(Ordering::Acquire);
        match requested {
            0 => Ok(current),
            r if r > current => Err(StoreError::FutureRevision {
                requested: r,
                current,
            }),
            r if r < compacted => Err(StoreError::Compacted {
                requested: r,
                compacted,
            }),
            r => Ok(r),
        }
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let txn = self.db.begin_read().map_err(internal)?;
        let versions = txn.open_table(VERSIONS).map_err(internal)?;
        Ok(latest(&versions, key, Bound::Unbounded)?.and_then(|v| v.to_kv(key)))
    }

    fn list(&self, request: &ListRequest) -> Result<ListResponse> {
        let txn = self.db.begin_read().map_err(internal)?;
        let meta = txn.open_table(META).map_err(internal)?;
        let current = meta_value(&meta, REVISION_KEY)?;
        let revision = self.read_revision(request.revision, current)?;
        let versions = txn.open_table(VERSIONS).map_err(internal)?;
        let prefix = request.prefix.as_str();
        let lower = match request.start_after.as_deref() {
            Some(after) if after >= prefix => Bound::Excluded((after, i64::MAX)),
            _ => Bound::Included((prefix, i64::MIN)),
        };
        let limit = match request.limit {
            0 => usize::MAX,
            limit => limit,
        };
        let mut kvs = Vec::new();
        let mut remaining = 0;
        // Versions come key by key, oldest first: the last one at or before
        // the read revision of each key is what the read sees.
        let mut visible: Option<KeyValue> = None;
        let mut current_key = String::new();
        let mut flush = |kv: Option<KeyValue>, kvs: &mut Vec<KeyValue>| {
            if let Some(kv) = kv {
                if kvs.len() < limit {
                    kvs.push(kv);
                } else {
                    remaining += 1;
                }
            }
        };
        for entry in versions
            .range::<(&str, i64)>((lower, Bound::Unbounded))
            .map_err(internal)?
        {
            let (k, v) = entry.map_err(internal)?;
            let (key, version_revision) = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            if key != current_key {
                flush(visible.take(), &mut kvs);
                current_key = key.to_owned();
            }
            if version_revision <= revision {
                visible = Version::decode(version_revision, v.value())?.to_kv(key);
            }
        }
        flush(visible.take(), &mut kvs);
        Ok(ListResponse {
            kvs,
            revision,
            remaining,
        })
    }

    /// Checks and commits one write, then hands its event to the watchers.
    fn write(&self, key: &str, write: Write) -> Result<KeyValue> {
        let writer = self.writer.lock();
        let txn = self.db.begin_write().map_err(internal)?;
        let (event, revision) = {
            let mut versions = txn.open_table(VERSIONS).map_err(internal)?;
            let current = latest(&versions, key, Bound::Unbounded)?.and_then(|v| v.to_kv(key));
            let not_found = || StoreError::NotFound {
                key: key.to_owned(),
            };
            let conflict = |expected, current: KeyValue| StoreError::Conflict {
                key: key.to_owned(),
                expected,
                current: Some(Box::new(current)),
            };
            let mut meta = txn.open_table(META).map_err(internal)?;
            let revision = meta_value(&meta, REVISION_KEY)? + 1;
            let event = match (write, current) {
                (Write::Create(value), None) => Event {
                    kind: EventKind::Created,
                    kv: KeyValue {
                        key: key.to_owned(),
                        value,
                        create_revision: revision,
                        mod_revision: revision,
                    },
                    prev: None,
                },
                (Write::Create(_), Some(_)) => {
                    return Err(StoreError::AlreadyExists {
                        key: key.to_owned(),
                    });
                }
                (Write::Update(..) | Write::Delete(_), None) => return Err(not_found()),
                (Write::Update(_, expected), Some(current))
                | (Write::Delete(Some(expected)), Some(current))
                    if current.mod_revision != expected =>
                {
                    return Err(conflict(expected, current));
                }
                (Write::Update(value, _), Some(current)) => Event {
                    kind: EventKind::Updated,
                    kv: KeyValue {
                        key: key.to_owned(),
                        value,
                        create_revision: current.create_revision,
                        mod_revision: revision,
                    },
                    prev: Some(current),
                },
                (Write::Delete(_), Some(current)) => Event {
                    kind: EventKind::Deleted,
                    kv: KeyValue {
                        mod_revision: revision,
                        ..current.clone()
                    },
                    prev: Some(current),
                },
            };
            let stored = (event.kind != EventKind::Deleted).then_some(event.kv.value.as_ref());
            versions
                .insert(
                    (key, revision),
                    Version::encode(event.kv.create_revision, stored).as_slice(),
                )
                .map_err(internal)?;
            txn.open_table(LOG)
                .map_err(internal)?
                .insert(revision, key)
                .map_err(internal)?;
            meta.insert(REVISION_KEY, revision).map_err(internal)?;
            (event, revision)
        };
        txn.commit().map_err(internal)?;
        self.hub.lock().notify(&event);
        drop(writer);
        let kept = revision - self.compacted.load(Ordering::Acquire).max(1) + 1;
        if kept > self.history_limit + self.history_limit / 4 {
            self.compact(revision - self.history_limit + 1)?;
        }
        Ok(event.kv)
    }

    /// Forgets what reads at or after `revision` cannot see, keeping for
    /// each key the version before `revision` too, so that the events from
    /// `revision` on still carry their previous value.
    fn compact(&self, revision: Revision) -> Result<()> {
        let _writer = self.writer.lock();
        let txn = self.db.begin_write().map_err(internal)?;
        {
            let mut meta = txn.open_table(META).map_err(internal)?;
            let current = meta_value(&meta, REVISION_KEY)?;
            if revision > current {
                return Err(StoreError::FutureRevision {
                    requested: revision,
                    current,
                });
            }
            if revision <= meta_value(&meta, COMPACTED_KEY)? {
                return Ok(());
            }
            let mut log = txn.open_table(LOG).map_err(internal)?;
            let mut touched = BTreeSet::new();
            for entry in log.range(..revision).map_err(internal)? {
                touched.insert(entry.map_err(internal)?.1.value().to_owned());
            }
            log.retain_in(..revision, |_, _| false).map_err(internal)?;
            let mut versions = txn.open_table(VERSIONS).map_err(internal)?;
            for key in &touched {
                let older = versions_of(&versions, key, Bound::Excluded(revision))?;
                let Some(last) = older.last() else { continue };
                let drop_below = if last.value.is_some() {
                    last.revision
                } else {
                    last.revision + 1
                };
                for version in older.iter().take_while(|v| v.revision < drop_below) {
                    versions
                        .remove((key.as_str(), version.revision))
                        .map_err(internal)?;
                }
            }
            meta.insert(COMPACTED_KEY, revision).map_err(internal)?;
        }
        txn.commit().map_err(internal)?;
        self.compacted.store(revision, Ordering::Release);
        Ok(())
    }

    /// Registers a watch after replaying, from one snapshot, the logged
    /// writes after `after`; the hub's lock is held throughout, so no write
    /// is notified between the snapshot and the registration.
    fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let mut hub = self.hub.lock();
        let txn = self.db.begin_read().map_err(internal)?;
        let meta = txn.open_table(META).map_err(internal)?;
        let current = meta_value(&meta, REVISION_KEY)?;
        let compacted = meta_value(&meta, COMPACTED_KEY)?;
        let after = if after == 0 { current } else { after };
        if after < compacted - 1 {
            return Err(StoreError::Compacted {
                requested: after,
                compacted,
            });
        }
        let log = txn.open_table(LOG).map_err(internal)?;
        let versions = txn.open_table(VERSIONS).map_err(internal)?;
        let mut replay = Vec::new();
        for entry in log.range(after + 1..=current).map_err(internal)? {
            let (revision, key) = entry.map_err(internal)?;
            let key = key.value();
            if key.starts_with(prefix) {
                replay.push(event_at(&versions, key, revision.value())?);
            }
        }
        Ok(self.hub.register(&mut hub, prefix, after, replay))
    }
}

#[async_trait]
impl Store for DiskStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        self.blocking(move |inner| inner.get(&key)).await
    }

    async fn list(&self, request: ListRequest) -> Result<ListResponse> {
        self.blocking(move |inner| inner.list(&request)).await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        let key = key.to_owned();
        self.blocking(move |inner| inner.write(&key, Write::Create(value)))
            .await
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        let key = key.to_owned();
        self.blocking(move |inner| inner.write(&key, Write::Update(value, expected)))
            .await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        let key = key.to_owned();
        self.blocking(move |inner| inner.write(&key, Write::Delete(expected)))
            .await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        self.inner.hub.ensure_progress()?;
        let prefix = prefix.to_owned();
        self.blocking(move |inner| inner.watch(&prefix, after))
            .await
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.inner.hub.lock().revision())
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.inner.compacted.load(Ordering::Acquire))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.blocking(move |inner| inner.compact(revision)).await
    }

    fn progress_interval(&self) -> Duration {
        self.inner.hub.progress_interval()
    }
}
