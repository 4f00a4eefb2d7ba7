//! Namespace lifecycle: once a namespace is marked for deletion, every
//! namespaced object in it is deleted, and when none is left the namespace
//! itself is removed (upstream's namespace controller, run in the server).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use store::ListRequest;

use crate::api::Api;
use crate::error::ApiError;
use crate::query::DeleteOptions;
use crate::registry::ResourceDef;
use crate::watchcache::{Delivery, WatchStart};

/// How often namespaces still waiting for their content are revisited.
const RETRY: Duration = Duration::from_millis(500);

/// Runs until the API is dropped.
pub async fn run(api: std::sync::Weak<Api>) {
    let Some(strong) = api.upgrade() else {
        return;
    };
    let Some(def) = strong.registry.snapshot().get("", "v1", "namespaces") else {
        return;
    };
    let cache = strong.cache(&def);
    drop(strong);
    loop {
        if cache.wait_for(0, Duration::from_secs(5)).await.is_err() {
            continue;
        }
        let Ok(mut watch) = cache.watch(&def.storage_prefix, None, WatchStart::Current) else {
            continue;
        };
        let mut terminating: HashSet<String> = watch
            .initial
            .iter()
            .filter(|o| o.value.pointer("/metadata/deletionTimestamp").is_some())
            .filter_map(|o| name(&o.value))
            .collect();
        loop {
            let Some(api) = api.upgrade() else {
                return;
            };
            let mut done = Vec::new();
            for ns in &terminating {
                match finalize(&api, &def, ns).await {
                    Ok(true) => done.push(ns.clone()),
                    Ok(false) => {}
                    Err(err) => tracing::warn!(namespace = %ns, %err, "namespace cleanup failed"),
                }
            }
            for ns in done {
                terminating.remove(&ns);
            }
            drop(api);
            let next = if terminating.is_empty() {
                watch.live.recv().await
            } else {
                match tokio::time::timeout(RETRY, watch.live.recv()).await {
                    Ok(d) => d,
                    Err(_) => continue,
                }
            };
            match next {
                Some(Delivery::Event(event)) => {
                    if event
                        .object
                        .value
                        .pointer("/metadata/deletionTimestamp")
                        .is_some()
                        && event.kind != store::EventKind::Deleted
                        && let Some(n) = name(&event.object.value)
                    {
                        terminating.insert(n);
                    }
                }
                Some(Delivery::Progress(_)) => {}
                None => break,
            }
        }
    }
}

fn name(obj: &Value) -> Option<String> {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Deletes what is left in a terminating namespace; removes the namespace
/// when it is empty. Returns whether the namespace is gone.
async fn finalize(api: &Api, ns_def: &ResourceDef, ns: &str) -> Result<bool, ApiError> {
    let snapshot = api.registry.snapshot();
    let mut seen = HashSet::new();
    let mut remaining = false;
    let defs: Vec<Arc<ResourceDef>> = snapshot
        .all()
        .filter(|d| d.namespaced && !d.rules.is_view())
        .filter(|d| seen.insert(d.storage_prefix.clone()))
        .cloned()
        .collect();
    for def in defs {
        let listed = api
            .store
            .list(ListRequest {
                prefix: def.list_prefix(Some(ns)),
                ..Default::default()
            })
            .await?;
        for kv in &listed.kvs {
            remaining = true;
            let object = api.decode_at(&def, kv)?;
            if object
                .value
                .pointer("/metadata/deletionTimestamp")
                .is_some()
            {
                continue;
            }
            let Some(name) = name(&object.value) else {
                continue;
            };
            match api
                .delete(&def, Some(ns), &name, &DeleteOptions::default())
                .await
            {
                Ok(_) => {}
                Err(err) if err.code == 404 || err.code == 409 => {}
                Err(err) => return Err(err),
            }
        }
    }
    if remaining {
        return Ok(false);
    }
    let key = ns_def.key(None, ns);
    let Some(kv) = api.store.get(&key).await? else {
        return Ok(true);
    };
    let object = api.decode_at(ns_def, &kv)?;
    let has_finalizers = object
        .value
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if has_finalizers {
        return Ok(false);
    }
    match api.store.delete(&key, Some(kv.mod_revision)).await {
        Ok(_) | Err(store::StoreError::NotFound { .. }) => Ok(true),
        Err(store::StoreError::Conflict { .. }) => Ok(false),
        Err(err) => Err(err.into()),
    }
}
