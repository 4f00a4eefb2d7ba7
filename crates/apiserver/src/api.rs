//! The generic REST operations over the store: get, list, create, update,
//! patch, delete and deletecollection for any resource in the registry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use apimachinery::patch::PatchType;
use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use serde_json::{Value, json};
use store::{KeyValue, ListRequest, Revision, Store, StoreError};

use crate::error::{ApiError, Subject};
use crate::kinds::Lifecycle;
use crate::query::{DeleteOptions, ListOptions, ReadAt};
use crate::registry::{Registry, ResourceDef};
use crate::strategy::{self, WriteScope};
use crate::watchcache::{CacheOptions, CachedObject, WatchCache};
use crate::{convert, crd};

/// Objects larger than this are refused, as etcd's default request limit
/// refuses them upstream.
pub const MAX_OBJECT_BYTES: usize = 1536 * 1024;

/// How long a read waits for the watch cache to reach a requested revision.
const CACHE_WAIT: Duration = Duration::from_secs(3);

/// Attempts of the read-modify-write loop of patches and internal updates.
const UPDATE_ATTEMPTS: usize = 16;

/// The result of a write: the stored object and whether it was created.
pub struct Written {
    pub object: Arc<CachedObject>,
    pub created: bool,
}

/// The REST layer shared by all requests.
pub struct Api {
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    caches: Mutex<HashMap<String, Arc<WatchCache>>>,
    cache_options: CacheOptions,
}

impl Api {
    pub fn new(store: Arc<dyn Store>, registry: Arc<Registry>, cache_options: CacheOptions) -> Api {
        Api {
            store,
            registry,
            caches: Mutex::new(HashMap::new()),
            cache_options,
        }
    }

    /// The watch cache of a resource's storage, started on first use.
    pub fn cache(&self, def: &ResourceDef) -> Arc<WatchCache> {
        let mut caches = self.caches.lock();
        caches
            .entry(def.storage_prefix.clone())
            .or_insert_with(|| {
                WatchCache::start(
                    self.store.clone(),
                    def.storage_prefix.clone(),
                    strategy::indexed_field(def),
                    self.cache_options.clone(),
                )
            })
            .clone()
    }

    /// Stops the cache of a storage prefix no longer served (a deleted CRD).
    pub fn drop_cache(&self, storage_prefix: &str) {
        self.caches.lock().remove(storage_prefix);
    }

    /// The bytes of an object as the requested resource version sees it.
    pub fn render(&self, def: &ResourceDef, object: &CachedObject) -> Bytes {
        convert::render(def, object)
    }

    pub fn decode_at(
        &self,
        def: &ResourceDef,
        kv: &KeyValue,
    ) -> Result<Arc<CachedObject>, ApiError> {
        match self.cache(def).object_at(&kv.key, kv.mod_revision) {
            Some(o) => Ok(o),
            None => CachedObject::decode(kv).map(Arc::new),
        }
    }

    pub async fn get(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Arc<CachedObject>, ApiError> {
        let key = def.key(namespace, name);
        match self.store.get(&key).await? {
            Some(kv) => self.decode_at(def, &kv),
            None => Err(ApiError::not_found(Subject::new(
                &def.group,
                &def.plural,
                name,
            ))),
        }
    }

    pub async fn list(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<Bytes, ApiError> {
        let filter = Filter::new(def, opts)?;
        let prefix = def.list_prefix(namespace);
        let page = match (opts.read_at()?, &opts.continue_token) {
            (_, Some(token)) => {
                let token = apimachinery::continue_token::decode(token).map_err(|err| {
                    ApiError::bad_request(format!("invalid continue token: {err}"))
                })?;
                let start_after = format!("{prefix}{}", token.start);
                self.list_from_store(&prefix, Some(start_after), token.read_revision().unwrap_or(0), opts.limit, &filter)
                    .await
                    .map_err(|err| match err.code {
                        410 => ApiError::expired(format!(
                            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list. ({})",
                            err.message
                        )),
                        _ => err,
                    })?
            }
            (ReadAt::Any, None) => {
                let cache = self.cache(def);
                cache.wait_for(0, CACHE_WAIT).await?;
                let (items, revision) = cache.list(&prefix);
                let items = items
                    .into_iter()
                    .filter(|o| filter.matches(&o.value))
                    .collect();
                Page {
                    items,
                    revision,
                    continue_key: None,
                    remaining: None,
                }
            }
            (ReadAt::NotOlderThan(rv), None) => {
                let current = self.store.current_revision().await?;
                if rv > current {
                    return Err(ApiError::timeout(format!(
                        "Too large resource version: {rv}, current: {current}"
                    )));
                }
                self.list_from_store(&prefix, None, 0, opts.limit, &filter)
                    .await?
            }
            (ReadAt::Exact(rv), None) => {
                self.list_from_store(&prefix, None, rv, opts.limit, &filter)
                    .await?
            }
            (ReadAt::Latest, None) => {
                self.list_from_store(&prefix, None, 0, opts.limit, &filter)
                    .await?
            }
        };
        Ok(self.encode_list(def, &prefix, page, filter.is_empty()))
    }

    /// Reads matching objects from the store, page by page, until `limit`
    /// matches are found or the keys run out.
    async fn list_from_store(
        &self,
        prefix: &str,
        mut start_after: Option<String>,
        mut revision: Revision,
        limit: usize,
        filter: &Filter<'_>,
    ) -> Result<Page, ApiError> {
        let mut items = Vec::new();
        loop {
            let want = if limit == 0 { 0 } else { limit - items.len() };
            let response = self
                .store
                .list(ListRequest {
                    prefix: prefix.to_string(),
                    start_after: start_after.clone(),
                    revision,
                    limit: want,
                })
                .await?;
            revision = response.revision;
            let last_key = response.kvs.last().map(|kv| kv.key.clone());
            for kv in &response.kvs {
                let object = self.decode_any(kv)?;
                if filter.matches(&object.value) {
                    items.push(object);
                }
            }
            let full = limit > 0 && items.len() >= limit;
            if !response.more() || full {
                let continue_key = if response.more() { last_key } else { None };
                let remaining = continue_key.as_ref().map(|_| response.remaining);
                return Ok(Page {
                    items,
                    revision,
                    continue_key,
                    remaining,
                });
            }
            start_after = last_key;
        }
    }

    fn decode_any(&self, kv: &KeyValue) -> Result<Arc<CachedObject>, ApiError> {
        let cached = self
            .caches
            .lock()
            .iter()
            .find(|(prefix, _)| kv.key.starts_with(prefix.as_str()))
            .and_then(|(_, c)| c.object_at(&kv.key, kv.mod_revision));
        match cached {
            Some(o) => Ok(o),
            None => CachedObject::decode(kv).map(Arc::new),
        }
    }

    fn encode_list(&self, def: &ResourceDef, prefix: &str, page: Page, unfiltered: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": page.revision.to_string()});
        if let Some(key) = &page.continue_key {
            let start = format!("{}\u{0}", key.strip_prefix(prefix).unwrap_or(key));
            meta["continue"] = apimachinery::continue_token::encode(page.revision, &start).into();
            if unfiltered && let Some(remaining) = page.remaining {
                meta["remainingItemCount"] = remaining.into();
            }
        }
        let size: usize = page.items.iter().map(|o| o.bytes.len() + 1).sum();
        let mut out = BytesMut::with_capacity(size + 256);
        out.put_slice(b"{\"kind\":");
        out.put_slice(json_string(&def.list_kind).as_bytes());
        out.put_slice(b",\"apiVersion\":");
        out.put_slice(json_string(&def.api_version()).as_bytes());
        out.put_slice(b",\"metadata\":");
        out.put_slice(meta.to_string().as_bytes());
        out.put_slice(b",\"items\":[");
        for (i, item) in page.items.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            out.put_slice(&self.render(def, item));
        }
        out.put_slice(b"]}");
        out.freeze()
    }

    /// Checks that a namespaced object may be written into `namespace`.
    async fn check_namespace(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), ApiError> {
        let Some(ns) = namespace.filter(|_| def.namespaced) else {
            return Ok(());
        };
        let key = format!("/registry/namespaces/{ns}");
        match self.store.get(&key).await? {
            None => Err(ApiError::not_found(Subject::new("", "namespaces", ns))),
            Some(kv) => {
                let value: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
                if value.pointer("/metadata/deletionTimestamp").is_some() {
                    Err(ApiError::forbidden(
                        Subject::new(&def.group, &def.plural, name),
                        format!(
                            "unable to create new content in namespace {ns} because it is being terminated"
                        ),
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    pub async fn create(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Arc<CachedObject>, ApiError> {
        strategy::check_kind(def, &obj)?;
        if let (Some(ns), Some(body_ns)) = (
            namespace,
            obj.pointer("/metadata/namespace").and_then(Value::as_str),
        ) && def.namespaced
            && !body_ns.is_empty()
            && body_ns != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        if def.namespaced && namespace.is_none() {
            return Err(ApiError::method_not_supported(&def.plural, "create"));
        }
        if obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|rv| !rv.is_empty())
        {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let generated = strategy::name_of(&obj).is_empty();
        let template = obj.clone();
        for _ in 0..3 {
            strategy::prepare_create(def, &mut obj, namespace);
            convert::to_storage(def, &mut obj);
            def.rules.derive(&mut obj);
            strategy::validate(def, &obj)?;
            let name = strategy::name_of(&obj).to_string();
            self.check_namespace(def, namespace, &name).await?;
            let key = def.key(namespace, &name);
            let bytes = encode_for_storage(&obj)?;
            if dry_run {
                return Ok(Arc::new(CachedObject::from_value(key, 0, &mut obj)));
            }
            match self.store.create(&key, bytes).await {
                Ok(kv) => {
                    let object = Arc::new(CachedObject::from_value(key, kv.mod_revision, &mut obj));
                    self.cache(def).written(&object);
                    if def.rules.lifecycle() == Lifecycle::ResourceDefinition {
                        crd::register(&self.registry, &object.value);
                    }
                    return Ok(object);
                }
                Err(StoreError::AlreadyExists { .. }) if generated => {
                    obj = template.clone();
                }
                Err(StoreError::AlreadyExists { .. }) => {
                    return Err(ApiError::already_exists(Subject::new(
                        &def.group,
                        &def.plural,
                        &name,
                    )));
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(ApiError::already_exists(Subject::new(
            &def.group,
            &def.plural,
            strategy::name_of(&obj),
        )))
    }

    /// PUT: replaces an object, guarded by the resourceVersion in the body
    /// if it carries one.
    pub async fn update(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        name: &str,
        mut obj: Value,
        scope: WriteScope,
        dry_run: bool,
    ) -> Result<Written, ApiError> {
        strategy::check_kind(def, &obj)?;
        let body_name = strategy::name_of(&obj);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if body_name.is_empty() {
            strategy::metadata_mut(&mut obj).insert("name".into(), name.into());
        }
        let expected = match obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            Some(rv) => Some(crate::query::parse_resource_version(rv).map_err(|_| {
                ApiError::bad_request(format!("metadata.resourceVersion: Invalid value: {rv:?}"))
            })?),
            None => None,
        };
        let key = def.key(namespace, name);
        let subject = Subject::new(&def.group, &def.plural, name);
        let current = self
            .store
            .get(&key)
            .await?
            .ok_or_else(|| ApiError::not_found(subject.clone()))?;
        if expected.is_some_and(|rv| rv != current.mod_revision) {
            return Err(ApiError::conflict(subject));
        }
        let old = self.decode_at(def, &current)?;
        convert::to_storage(def, &mut obj);
        self.write_update(def, &key, obj, &old, scope, dry_run)
            .await
    }

    /// PATCH: applies a patch to the current object, retrying on conflicts
    /// unless the patch itself pins a resourceVersion.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        name: &str,
        patch_type: PatchType,
        patch: &[u8],
        scope: WriteScope,
        dry_run: bool,
    ) -> Result<Written, ApiError> {
        let meta = match patch_type {
            PatchType::StrategicMergePatch if !def.rules.strategic_merge() => {
                return Err(ApiError::unsupported_media_type(
                    "application/strategic-merge-patch+json",
                ));
            }
            PatchType::StrategicMergePatch => {
                apimachinery::patch::PatchMeta::for_kind(&def.group, &def.version, &def.kind)
            }
            _ => None,
        };
        let key = def.key(namespace, name);
        let subject = Subject::new(&def.group, &def.plural, name);
        let mut last_err = ApiError::conflict(subject.clone());
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self
                .store
                .get(&key)
                .await?
                .ok_or_else(|| ApiError::not_found(subject.clone()))?;
            let old = self.decode_at(def, &current)?;
            let view: Value = serde_json::from_slice(&self.render(def, &old))
                .map_err(|err| ApiError::internal(err.to_string()))?;
            let mut patched = apimachinery::patch::apply(patch_type, &view, patch, meta.as_ref())
                .map_err(|err| patch_error(def, name, err))?;
            let pinned = patched
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            let pinned_rv = pinned.as_deref()
                != view
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str);
            if pinned_rv {
                return Err(ApiError::conflict(subject));
            }
            if let Some(body_name) = patched.pointer("/metadata/name").and_then(Value::as_str)
                && body_name != name
            {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
            strategy::check_kind(def, &patched)?;
            convert::to_storage(def, &mut patched);
            match self
                .write_update(def, &key, patched, &old, scope, dry_run)
                .await
            {
                Err(err) if err.reason == "Conflict" => last_err = err,
                other => return other,
            }
        }
        Err(last_err)
    }

    /// The shared tail of update and patch: strategy, validation, no-op
    /// detection, finalizer-driven deletion, and the guarded write.
    async fn write_update(
        &self,
        def: &ResourceDef,
        key: &str,
        mut obj: Value,
        old: &CachedObject,
        scope: WriteScope,
        dry_run: bool,
    ) -> Result<Written, ApiError> {
        let subject = Subject::new(&def.group, &def.plural, strategy::name_of(&old.value));
        strategy::prepare_update(def, &mut obj, &old.value, scope);
        def.rules.derive(&mut obj);
        strategy::validate(def, &obj)?;
        if scope == WriteScope::Main {
            strategy::validate_update(def, &obj, &old.value)?;
        }
        if dry_run || unchanged(&mut obj, old) {
            let mut value = if dry_run { obj } else { old.value.clone() };
            return Ok(Written {
                object: Arc::new(CachedObject::from_value(
                    key.to_string(),
                    old.revision,
                    &mut value,
                )),
                created: false,
            });
        }
        let deleting = obj.pointer("/metadata/deletionTimestamp").is_some();
        let no_finalizers = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        // Graceful pod deletion leaves the object for its kubelet until the
        // grace period is cut to 0; otherwise the last finalizer going away
        // completes a pending deletion.
        let grace_over = obj
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .is_none_or(|g| g == 0);
        if deleting && no_finalizers && grace_over && def.rules.lifecycle() != Lifecycle::Namespace
        {
            return match self.store.delete(key, Some(old.revision)).await {
                Ok(kv) => Ok(Written {
                    object: Arc::new(CachedObject::from_value(
                        key.to_string(),
                        kv.mod_revision,
                        &mut obj,
                    )),
                    created: false,
                }),
                Err(StoreError::Conflict { .. }) => Err(ApiError::conflict(subject)),
                Err(StoreError::NotFound { .. }) => Err(ApiError::not_found(subject)),
                Err(err) => Err(err.into()),
            };
        }
        let bytes = encode_for_storage(&obj)?;
        match self.store.update(key, bytes, old.revision).await {
            Ok(kv) => {
                let object = Arc::new(CachedObject::from_value(
                    key.to_string(),
                    kv.mod_revision,
                    &mut obj,
                ));
                self.cache(def).written(&object);
                if def.rules.lifecycle() == Lifecycle::ResourceDefinition {
                    crd::register(&self.registry, &object.value);
                }
                Ok(Written {
                    object,
                    created: false,
                })
            }
            Err(StoreError::Conflict { .. }) => Err(ApiError::conflict(subject)),
            Err(StoreError::NotFound { .. }) => Err(ApiError::not_found(subject)),
            Err(err) => Err(err.into()),
        }
    }

    /// Applies `change` to the stored object until the write succeeds: the
    /// server's own updates (deletion marks, namespace finalization).
    pub async fn update_with(
        &self,
        def: &ResourceDef,
        key: &str,
        mut change: impl FnMut(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Written, ApiError> {
        let mut last_err = ApiError::internal("update did not converge");
        for _ in 0..UPDATE_ATTEMPTS {
            let Some(current) = self.store.get(key).await? else {
                let name = key.rsplit('/').next().unwrap_or(key);
                return Err(ApiError::not_found(Subject::new(
                    &def.group,
                    &def.plural,
                    name,
                )));
            };
            let old = self.decode_at(def, &current)?;
            let mut obj = old.value.clone();
            change(&mut obj)?;
            match self
                .write_update(def, key, obj, &old, WriteScope::Internal, false)
                .await
            {
                Err(err) if err.reason == "Conflict" => last_err = err,
                other => return other,
            }
        }
        Err(last_err)
    }

    /// DELETE: immediate, graceful (scheduled pods), or pending finalizers.
    pub async fn delete(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Arc<CachedObject>, ApiError> {
        let key = def.key(namespace, name);
        let subject = Subject::new(&def.group, &def.plural, name);
        let current = self
            .store
            .get(&key)
            .await?
            .ok_or_else(|| ApiError::not_found(subject.clone()))?;
        let old = self.decode_at(def, &current)?;
        if let Some(uid) = &opts.precondition_uid {
            let actual = old
                .value
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or("");
            if uid != actual {
                return Err(ApiError::conflict_with(
                    subject,
                    format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                    ),
                ));
            }
        }
        if let Some(rv) = &opts.precondition_resource_version
            && *rv != current.mod_revision.to_string()
        {
            return Err(ApiError::conflict_with(
                subject,
                format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    current.mod_revision
                ),
            ));
        }
        if opts.dry_run {
            return Ok(old);
        }
        if def.rules.lifecycle() == Lifecycle::ResourceDefinition {
            return crd::delete(self, def, &key, &old).await;
        }
        let grace = def
            .rules
            .grace_period(&old.value, opts.grace_period_seconds);
        let mut finalizers: Vec<String> = old
            .value
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let policy_finalizer = match opts.propagation_policy.as_deref() {
            Some("Foreground") => Some("foregroundDeletion"),
            Some("Orphan") => Some("orphan"),
            _ => None,
        };
        if let Some(f) = policy_finalizer
            && !finalizers.iter().any(|x| x == f)
        {
            finalizers.push(f.to_string());
        }
        let pending =
            grace > 0 || !finalizers.is_empty() || def.rules.lifecycle() == Lifecycle::Namespace;
        if !pending {
            return match self.store.delete(&key, Some(current.mod_revision)).await {
                Ok(kv) => {
                    let mut value = old.value.clone();
                    Ok(Arc::new(CachedObject::from_value(
                        key,
                        kv.mod_revision,
                        &mut value,
                    )))
                }
                Err(StoreError::Conflict { .. }) => Err(ApiError::conflict(subject)),
                Err(StoreError::NotFound { .. }) => Err(ApiError::not_found(subject)),
                Err(err) => Err(err.into()),
            };
        }
        let written = self
            .update_with(def, &key, |obj| {
                mark_deleting(def, obj, grace, &finalizers);
                Ok(())
            })
            .await?;
        Ok(written.object)
    }

    /// DELETE on a collection: deletes every matching object.
    pub async fn delete_collection(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        list_opts: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<Vec<Arc<CachedObject>>, ApiError> {
        let filter = Filter::new(def, list_opts)?;
        let prefix = def.list_prefix(namespace);
        let page = self.list_from_store(&prefix, None, 0, 0, &filter).await?;
        let mut deleted = Vec::new();
        for item in page.items {
            let ns = item
                .value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str);
            let name = strategy::name_of(&item.value);
            match self.delete(def, ns.or(namespace), name, opts).await {
                Ok(obj) => deleted.push(obj),
                Err(err) if err.code == 404 || err.code == 409 => {}
                Err(err) => return Err(err),
            }
        }
        Ok(deleted)
    }

    /// Encodes a list of objects (deletecollection's answer).
    pub fn encode_items(
        &self,
        def: &ResourceDef,
        items: Vec<Arc<CachedObject>>,
        revision: Revision,
    ) -> Bytes {
        self.encode_list(
            def,
            "",
            Page {
                items,
                revision,
                continue_key: None,
                remaining: None,
            },
            false,
        )
    }
}

/// Whether an update changes nothing but the resourceVersion (then it is
/// not written, as upstream skips no-op updates). Compares in place rather
/// than cloning the old object.
fn unchanged(obj: &mut Value, old: &CachedObject) -> bool {
    let old_rv = old.value.pointer("/metadata/resourceVersion").cloned();
    let meta = strategy::metadata_mut(obj);
    if let Some(rv) = &old_rv {
        meta.insert("resourceVersion".into(), rv.clone());
    }
    let same = *obj == old.value;
    strategy::metadata_mut(obj).remove("resourceVersion");
    same
}

/// Sets the deletion marks on an object whose removal must wait.
fn mark_deleting(def: &ResourceDef, obj: &mut Value, grace: i64, finalizers: &[String]) {
    let now = jiff::Timestamp::now();
    let already = obj.pointer("/metadata/deletionTimestamp").is_some();
    let meta = strategy::metadata_mut(obj);
    if !already || grace > 0 {
        let at = now
            .checked_add(jiff::SignedDuration::from_secs(grace))
            .unwrap_or(now);
        let shorten = meta
            .get("deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .is_none_or(|existing| grace < existing);
        if !already || shorten {
            meta.insert(
                "deletionTimestamp".into(),
                at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string().into(),
            );
            meta.insert("deletionGracePeriodSeconds".into(), grace.into());
        }
    }
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), json!(finalizers));
    }
    if def.rules.lifecycle() == Lifecycle::Namespace {
        obj["status"] = json!({"phase": "Terminating"});
    }
}

/// One page of a list.
struct Page {
    items: Vec<Arc<CachedObject>>,
    revision: Revision,
    /// The last key examined when more remain.
    continue_key: Option<String>,
    remaining: Option<u64>,
}

/// Label and field selectors of a request, checked against the kind.
pub struct Filter<'a> {
    def: &'a ResourceDef,
    labels: Option<&'a apimachinery::labels::LabelSelector>,
    fields: Option<&'a apimachinery::fields::FieldSelector>,
}

impl<'a> Filter<'a> {
    pub fn new(def: &'a ResourceDef, opts: &'a ListOptions) -> Result<Filter<'a>, ApiError> {
        if let Some(fields) = &opts.field_selector {
            let probe = json!({"metadata": {}});
            for req in fields.requirements() {
                let field = req.field();
                if strategy::field_value(def, &probe, field).is_none() {
                    return Err(ApiError::bad_request(format!(
                        "field label not supported: {field}"
                    )));
                }
            }
        }
        Ok(Filter {
            def,
            labels: opts.label_selector.as_ref().filter(|s| !s.is_empty()),
            fields: opts.field_selector.as_ref(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(labels) = self.labels
            && !labels.matches(obj.pointer("/metadata/labels").and_then(Value::as_object))
        {
            return false;
        }
        if let Some(fields) = self.fields {
            return fields
                .matches(|f| strategy::field_value(self.def, obj, f).map(std::borrow::Cow::Owned));
        }
        true
    }

    /// The value an exact `spec.nodeName=` style selector pins the indexed
    /// field to, for the watch cache's index.
    pub fn index_value(&self) -> Option<String> {
        let field = strategy::indexed_field(self.def)?;
        self.fields
            .and_then(|f| f.exact_value(field))
            .map(str::to_string)
    }
}

fn encode_for_storage(obj: &Value) -> Result<Bytes, ApiError> {
    let bytes = serde_json::to_vec(obj).map_err(|err| ApiError::internal(err.to_string()))?;
    if bytes.len() > MAX_OBJECT_BYTES {
        return Err(ApiError::too_large(format!(
            "etcdserver: request is too large: the object is {} bytes, the limit is {MAX_OBJECT_BYTES}",
            bytes.len()
        )));
    }
    Ok(Bytes::from(bytes))
}

/// Maps a patch failure to the status upstream answers with.
fn patch_error(def: &ResourceDef, name: &str, err: apimachinery::patch::PatchError) -> ApiError {
    let message = err.to_string();
    match err.status_code() {
        400 => ApiError::bad_request(message),
        413 => ApiError::too_large(message),
        415 => ApiError::unsupported_media_type(&message),
        422 => {
            let mut e = ApiError::invalid(
                &def.kind,
                Subject::new(&def.group, &def.plural, name),
                Vec::new(),
            );
            e.message = message;
            e
        }
        _ => ApiError::internal(message),
    }
}

fn json_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}
