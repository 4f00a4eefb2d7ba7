//! The memory backend against the conformance suite, plus its own limits.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use store::{MemoryStore, MemoryStoreOptions, Store, StoreError, WatchStream};

store::store_conformance_tests!(async || MemoryStore::new(MemoryStoreOptions {
    progress_interval: Duration::from_millis(100),
    ..Default::default()
}));

const WAIT: Duration = Duration::from_secs(10);

fn v(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// Reads a watch to its end: the events delivered and the error it ended
/// with, if any.
async fn drain(watch: &mut WatchStream) -> (usize, Option<StoreError>) {
    let mut delivered = 0;
    let read = async {
        while let Some(item) = watch.next().await {
            match item {
                Ok(batch) => delivered += batch.events.len(),
                Err(err) => return Some(err),
            }
        }
        None
    };
    let end = tokio::time::timeout(WAIT, read)
        .await
        .expect("the watch must end");
    (delivered, end)
}

#[tokio::test]
async fn a_watcher_that_falls_behind_is_closed_and_writers_never_block() {
    // No progress notification may take a buffer slot during the test.
    let store = MemoryStore::new(MemoryStoreOptions {
        watch_buffer: 4,
        progress_interval: Duration::from_secs(3600),
        ..Default::default()
    });
    let mut slow = store.watch("/o/", 0).await.unwrap();
    let mut other = store.watch("/other/", 0).await.unwrap();
    tokio::time::timeout(WAIT, async {
        for i in 0..100 {
            store.create(&format!("/o/{i}"), v("v")).await.unwrap();
        }
    })
    .await
    .expect("writes must not wait for a stalled watcher");
    assert_eq!(
        store.watch_count(),
        1,
        "only the stalled watcher was closed"
    );

    let (delivered, end) = drain(&mut slow).await;
    assert_eq!(end, Some(StoreError::WatcherOverflow));
    assert_eq!(delivered, 4, "exactly the buffered batches come first");
    assert!(
        slow.next().await.is_none(),
        "nothing follows the overflow error"
    );

    let kv = store.create("/other/x", v("x")).await.unwrap();
    let batch = tokio::time::timeout(WAIT, other.next())
        .await
        .expect("the other watcher is still served")
        .expect("still open")
        .expect("no error");
    assert_eq!(batch.events[0].kv, kv);
}

#[tokio::test]
async fn a_replay_larger_than_the_buffer_is_one_batch() {
    let store = MemoryStore::new(MemoryStoreOptions {
        watch_buffer: 2,
        ..Default::default()
    });
    for i in 0..50 {
        store.create(&format!("/r/{i:02}"), v("v")).await.unwrap();
    }
    let mut watch = store.watch("/r/", 1).await.unwrap();
    let batch = tokio::time::timeout(WAIT, watch.next())
        .await
        .expect("the replay arrives")
        .expect("still open")
        .expect("no error");
    assert_eq!(batch.events.len(), 49);
    assert_eq!(batch.revision, 50);
}

#[tokio::test]
async fn dropping_a_watch_stream_unregisters_it() {
    let store = MemoryStore::new(MemoryStoreOptions::default());
    let first = store.watch("/d/", 0).await.unwrap();
    let mut second = store.watch("/d/", 0).await.unwrap();
    assert_eq!(store.watch_count(), 2);
    drop(first);
    assert_eq!(
        store.watch_count(),
        1,
        "released without waiting for a write"
    );
    let kv = store.create("/d/x", v("x")).await.unwrap();
    let batch = tokio::time::timeout(WAIT, second.next())
        .await
        .expect("the remaining watch is served")
        .expect("still open")
        .expect("no error");
    assert_eq!(batch.events[0].kv, kv);
    drop(second);
    assert_eq!(store.watch_count(), 0);
}

#[tokio::test]
async fn dropping_the_store_ends_its_watches() {
    let store = MemoryStore::new(MemoryStoreOptions {
        progress_interval: Duration::from_millis(10),
        ..Default::default()
    });
    let mut watch = store.watch("/s/", 0).await.unwrap();
    store.create("/s/x", v("x")).await.unwrap();
    drop(store);
    // Neither the stream nor the progress notifier keeps the store alive, so
    // the stream ends once the buffered batches are read.
    let (delivered, end) = drain(&mut watch).await;
    assert_eq!(delivered, 1);
    assert_eq!(end, None);
}

#[tokio::test]
async fn progress_outlives_the_runtime_of_the_first_watch() {
    let store = MemoryStore::new(MemoryStoreOptions {
        progress_interval: Duration::from_millis(50),
        ..Default::default()
    });
    let first = store.clone();
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let watch = runtime.block_on(first.watch("/p/", 0)).unwrap();
        drop(watch);
    })
    .await
    .unwrap();

    let mut watch = store.watch("/p/", 0).await.unwrap();
    let kv = store.create("/elsewhere", v("x")).await.unwrap();
    let progressed = async {
        while let Some(batch) = watch.next().await {
            if batch.unwrap().revision >= kv.mod_revision {
                return;
            }
        }
        panic!("the watch ended");
    };
    tokio::time::timeout(WAIT, progressed)
        .await
        .expect("progress notifications resume on the current runtime");
}

#[tokio::test]
async fn history_is_bounded_by_self_compaction() {
    // 100 writes of "/h/x" with values of up to three digits.
    let store = MemoryStore::new(MemoryStoreOptions {
        history_bytes: 100 * (MemoryStore::EVENT_OVERHEAD_BYTES + 4 + 3),
        ..Default::default()
    });
    let compacted = store::testsuite::self_compaction(&store, 1000, 876..=901).await;
    let mut recent = store.watch("/h/", compacted).await.unwrap();
    let batch = tokio::time::timeout(WAIT, recent.next())
        .await
        .expect("the kept history replays")
        .expect("still open")
        .expect("no error");
    assert_eq!(batch.events.len() as i64, 1000 - compacted);
}

#[tokio::test]
async fn a_watch_from_the_past_learns_at_once_that_it_caught_up() {
    let store = MemoryStore::new(MemoryStoreOptions {
        progress_interval: Duration::from_secs(3600),
        ..Default::default()
    });
    let first = store.create("/a/x", v("x")).await.unwrap();
    let last = store.create("/b/x", v("x")).await.unwrap();
    let mut watch = store.watch("/a/", first.mod_revision).await.unwrap();
    let batch = tokio::time::timeout(WAIT, watch.next())
        .await
        .expect("a catch-up mark arrives without waiting for progress")
        .expect("still open")
        .expect("no error");
    assert!(batch.events.is_empty(), "nothing to replay under /a/");
    assert_eq!(batch.revision, last.mod_revision);
}
