//! The memory backend against the conformance suite, plus its own limits.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use store::{MemoryStore, MemoryStoreOptions, Store, StoreError};

store::store_conformance_tests!(|| async {
    MemoryStore::new(MemoryStoreOptions {
        progress_interval: Duration::from_millis(100),
        ..Default::default()
    })
});

#[tokio::test]
async fn a_watcher_that_falls_behind_is_closed_and_writers_never_block() {
    let store = MemoryStore::new(MemoryStoreOptions {
        watch_buffer: 4,
        ..Default::default()
    });
    let mut watch = store.watch("/o/", 0).await.unwrap();
    for i in 0..100 {
        store.create(&format!("/o/{i}"), Bytes::from_static(b"v")).await.unwrap();
    }
    let mut delivered = 0;
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(item) = watch.next().await {
            match item {
                Ok(batch) => delivered += batch.events.len(),
                Err(err) => return Some(err),
            }
        }
        None
    })
    .await
    .expect("the closed watch must end");
    assert_eq!(end, Some(StoreError::WatcherOverflow));
    assert_eq!(delivered, 4, "exactly the buffered batches are delivered first");
}

#[tokio::test]
async fn history_is_bounded_by_self_compaction() {
    let store = MemoryStore::new(MemoryStoreOptions {
        history_limit: 100,
        ..Default::default()
    });
    let mut kv = store.create("/h/x", Bytes::from_static(b"0")).await.unwrap();
    for i in 1..1000 {
        kv = store.update("/h/x", Bytes::from(i.to_string()), kv.mod_revision).await.unwrap();
    }
    let compacted = store.compacted_revision().await.unwrap();
    assert!(compacted > 800, "the store compacted itself (at {compacted})");
    let err = store.watch("/h/", 1).await.err().expect("old history is gone");
    assert!(matches!(err, StoreError::Compacted { .. }));
    assert_eq!(store.get("/h/x").await.unwrap().unwrap().value, Bytes::from("999"));
}
