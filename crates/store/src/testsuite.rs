//! The backend conformance suite: the rules every [`Store`] backend must
//! follow, written once and run against each backend.
//!
//! A backend's test file instantiates every case with
//! [`store_conformance_tests!`](crate::store_conformance_tests), passing an
//! async closure that returns a fresh, empty store.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::{EventKind, ListRequest, Revision, Store, StoreError, WatchBatch, WatchStream};

/// Instantiates one `#[tokio::test]` per conformance case.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            create_get_and_already_exists,
            update_is_compare_and_swap,
            delete_with_and_without_expected_revision,
            missing_keys_are_not_found,
            one_global_revision_and_failed_writes_consume_none,
            list_is_ordered_and_prefix_isolated,
            list_pages_with_remaining_counts_at_a_stable_revision,
            list_at_past_revision_sees_old_state,
            list_at_compacted_or_future_revision_fails,
            watch_from_now_sees_only_later_writes,
            watch_replays_after_a_revision,
            watch_is_prefix_isolated,
            watch_after_compaction_boundary,
            idle_watch_gets_progress_notifications,
            concurrent_compare_and_swap_writers,
            compaction_bounds,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let make = $make;
                let store = make().await;
                $crate::testsuite::$case(std::sync::Arc::new(store)).await;
            }
        )*
    };
}

const WAIT: Duration = Duration::from_secs(10);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn next_batch(stream: &mut WatchStream) -> WatchBatch {
    match tokio::time::timeout(WAIT, stream.next()).await {
        Ok(Some(Ok(batch))) => batch,
        Ok(Some(Err(err))) => panic!("watch failed: {err}"),
        Ok(None) => panic!("watch ended unexpectedly"),
        Err(_) => panic!("no watch batch within {WAIT:?}"),
    }
}

/// The next `n` events of a watch, skipping progress notifications.
async fn next_events(stream: &mut WatchStream, n: usize) -> Vec<crate::Event> {
    let mut events = Vec::new();
    while events.len() < n {
        events.extend(next_batch(stream).await.events);
    }
    assert_eq!(events.len(), n, "more events than expected: {events:?}");
    events
}

pub async fn create_get_and_already_exists<S: Store>(s: Arc<S>) {
    let kv = s.create("/a/x", b("1")).await.unwrap();
    assert_eq!(kv.create_revision, kv.mod_revision);
    let got = s.get("/a/x").await.unwrap().expect("created key is readable");
    assert_eq!(got, kv);
    assert_eq!(got.value, b("1"));
    let err = s.create("/a/x", b("2")).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(s.get("/a/x").await.unwrap().unwrap().value, b("1"));
}

pub async fn update_is_compare_and_swap<S: Store>(s: Arc<S>) {
    let created = s.create("/a/x", b("1")).await.unwrap();
    let updated = s.update("/a/x", b("2"), created.mod_revision).await.unwrap();
    assert!(updated.mod_revision > created.mod_revision);
    assert_eq!(updated.create_revision, created.create_revision);
    match s.update("/a/x", b("3"), created.mod_revision).await {
        Err(StoreError::Conflict { current: Some(current), expected, .. }) => {
            assert_eq!(expected, created.mod_revision);
            assert_eq!(*current, updated);
        }
        other => panic!("stale update must conflict, got {other:?}"),
    }
    assert_eq!(s.get("/a/x").await.unwrap().unwrap().value, b("2"));
}

pub async fn delete_with_and_without_expected_revision<S: Store>(s: Arc<S>) {
    let x = s.create("/a/x", b("1")).await.unwrap();
    s.create("/a/y", b("2")).await.unwrap();
    let err = s.delete("/a/x", Some(x.mod_revision + 100)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let deleted = s.delete("/a/x", Some(x.mod_revision)).await.unwrap();
    assert_eq!(deleted.value, b("1"));
    assert!(deleted.mod_revision > x.mod_revision);
    assert_eq!(s.current_revision().await.unwrap(), deleted.mod_revision);
    assert!(s.get("/a/x").await.unwrap().is_none());
    s.delete("/a/y", None).await.unwrap();
    assert!(s.get("/a/y").await.unwrap().is_none());
    let again = s.create("/a/x", b("3")).await.unwrap();
    assert_eq!(again.create_revision, again.mod_revision, "a re-created key starts a new life");
}

pub async fn missing_keys_are_not_found<S: Store>(s: Arc<S>) {
    assert!(s.get("/nope").await.unwrap().is_none());
    assert!(matches!(s.update("/nope", b("1"), 1).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(s.delete("/nope", None).await, Err(StoreError::NotFound { .. })));
}

pub async fn one_global_revision_and_failed_writes_consume_none<S: Store>(s: Arc<S>) {
    let start = s.current_revision().await.unwrap();
    let a = s.create("/a/1", b("1")).await.unwrap();
    let c = s.create("/c/1", b("1")).await.unwrap();
    assert_eq!(a.mod_revision, start + 1);
    assert_eq!(c.mod_revision, start + 2);
    let _ = s.create("/a/1", b("x")).await.unwrap_err();
    let _ = s.update("/a/1", b("x"), 0).await.unwrap_err();
    let _ = s.delete("/zz", None).await.unwrap_err();
    assert_eq!(s.current_revision().await.unwrap(), start + 2);
    let u = s.update("/a/1", b("2"), a.mod_revision).await.unwrap();
    assert_eq!(u.mod_revision, start + 3);
}

pub async fn list_is_ordered_and_prefix_isolated<S: Store>(s: Arc<S>) {
    for key in ["/a/b", "/a/a", "/ab/x", "/a/c", "/b/a"] {
        s.create(key, b(key)).await.unwrap();
    }
    let listed = s
        .list(ListRequest { prefix: "/a/".into(), ..Default::default() })
        .await
        .unwrap();
    let keys: Vec<&str> = listed.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/a/a", "/a/b", "/a/c"]);
    assert_eq!(listed.remaining, 0);
    assert_eq!(listed.revision, s.current_revision().await.unwrap());
}

pub async fn list_pages_with_remaining_counts_at_a_stable_revision<S: Store>(s: Arc<S>) {
    for i in 0..10 {
        s.create(&format!("/p/{i:02}"), b("v")).await.unwrap();
    }
    let first = s
        .list(ListRequest { prefix: "/p/".into(), limit: 4, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(first.kvs.len(), 4);
    assert_eq!(first.remaining, 6);
    assert!(first.more());
    // Writes between pages must not leak into a list at the first revision.
    s.create("/p/05a", b("new")).await.unwrap();
    s.delete("/p/07", None).await.unwrap();
    let mut seen: Vec<String> = first.kvs.iter().map(|kv| kv.key.clone()).collect();
    let mut after = first.kvs.last().map(|kv| kv.key.clone());
    loop {
        let page = s
            .list(ListRequest {
                prefix: "/p/".into(),
                start_after: after.clone(),
                revision: first.revision,
                limit: 4,
            })
            .await
            .unwrap();
        assert_eq!(page.revision, first.revision);
        seen.extend(page.kvs.iter().map(|kv| kv.key.clone()));
        if !page.more() {
            break;
        }
        after = page.kvs.last().map(|kv| kv.key.clone());
    }
    let expected: Vec<String> = (0..10).map(|i| format!("/p/{i:02}")).collect();
    assert_eq!(seen, expected);
}

pub async fn list_at_past_revision_sees_old_state<S: Store>(s: Arc<S>) {
    let x = s.create("/h/x", b("1")).await.unwrap();
    s.create("/h/y", b("1")).await.unwrap();
    let before = s.current_revision().await.unwrap();
    s.update("/h/x", b("2"), x.mod_revision).await.unwrap();
    s.delete("/h/y", None).await.unwrap();
    s.create("/h/z", b("1")).await.unwrap();
    let old = s
        .list(ListRequest { prefix: "/h/".into(), revision: before, ..Default::default() })
        .await
        .unwrap();
    let state: Vec<(&str, Bytes)> = old.kvs.iter().map(|kv| (kv.key.as_str(), kv.value.clone())).collect();
    assert_eq!(state, [("/h/x", b("1")), ("/h/y", b("1"))]);
    let now = s.list(ListRequest { prefix: "/h/".into(), ..Default::default() }).await.unwrap();
    let state: Vec<(&str, Bytes)> = now.kvs.iter().map(|kv| (kv.key.as_str(), kv.value.clone())).collect();
    assert_eq!(state, [("/h/x", b("2")), ("/h/z", b("1"))]);
}

pub async fn list_at_compacted_or_future_revision_fails<S: Store>(s: Arc<S>) {
    let x = s.create("/c/x", b("1")).await.unwrap();
    let u = s.update("/c/x", b("2"), x.mod_revision).await.unwrap();
    s.compact(u.mod_revision).await.unwrap();
    let err = s
        .list(ListRequest { prefix: "/c/".into(), revision: x.mod_revision, ..Default::default() })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err:?}");
    let at = s
        .list(ListRequest { prefix: "/c/".into(), revision: u.mod_revision, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(at.kvs.len(), 1);
    let err = s
        .list(ListRequest { prefix: "/c/".into(), revision: u.mod_revision + 10, ..Default::default() })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::FutureRevision { .. }), "{err:?}");
    assert_eq!(s.compacted_revision().await.unwrap(), u.mod_revision);
}

pub async fn watch_from_now_sees_only_later_writes<S: Store>(s: Arc<S>) {
    s.create("/w/old", b("1")).await.unwrap();
    let mut watch = s.watch("/w/", 0).await.unwrap();
    let new = s.create("/w/new", b("2")).await.unwrap();
    let events = next_events(&mut watch, 1).await;
    assert_eq!(events[0].kind, EventKind::Created);
    assert_eq!(events[0].kv, new);
    assert!(events[0].prev.is_none());
}

pub async fn watch_replays_after_a_revision<S: Store>(s: Arc<S>) {
    let x = s.create("/r/x", b("1")).await.unwrap();
    let u = s.update("/r/x", b("2"), x.mod_revision).await.unwrap();
    let d = s.delete("/r/x", None).await.unwrap();
    let mut watch = s.watch("/r/", x.mod_revision).await.unwrap();
    let events = next_events(&mut watch, 2).await;
    assert_eq!(events[0].kind, EventKind::Updated);
    assert_eq!(events[0].kv, u);
    assert_eq!(events[0].prev.as_ref(), Some(&x));
    assert_eq!(events[1].kind, EventKind::Deleted);
    assert_eq!(events[1].kv.mod_revision, d.mod_revision);
    assert_eq!(events[1].kv.value, b("2"), "a delete carries the last value");
    assert_eq!(events[1].prev.as_ref(), Some(&u));
}

pub async fn watch_is_prefix_isolated<S: Store>(s: Arc<S>) {
    let mut watch = s.watch("/a/", 0).await.unwrap();
    s.create("/ab/x", b("no")).await.unwrap();
    s.create("/b/x", b("no")).await.unwrap();
    let mine = s.create("/a/x", b("yes")).await.unwrap();
    let events = next_events(&mut watch, 1).await;
    assert_eq!(events[0].kv, mine);
}

pub async fn watch_after_compaction_boundary<S: Store>(s: Arc<S>) {
    let mut revs: Vec<Revision> = Vec::new();
    for i in 0..5 {
        revs.push(s.create(&format!("/k/{i}"), b("v")).await.unwrap().mod_revision);
    }
    let c = revs[3];
    s.compact(c).await.unwrap();
    match s.watch("/k/", c - 2).await {
        Err(StoreError::Compacted { .. }) => {}
        Err(other) => panic!("expected Compacted, got {other}"),
        Ok(_) => panic!("watching from before the compaction point must fail"),
    }
    let mut watch = s.watch("/k/", c - 1).await.unwrap();
    let events = next_events(&mut watch, 2).await;
    assert_eq!(events[0].revision(), revs[3]);
    assert_eq!(events[1].revision(), revs[4]);
}

pub async fn idle_watch_gets_progress_notifications<S: Store>(s: Arc<S>) {
    let mut watch = s.watch("/quiet/", 0).await.unwrap();
    let last = s.create("/elsewhere/x", b("1")).await.unwrap();
    let limit = s.progress_interval() * 5 + Duration::from_secs(5);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let batch = tokio::time::timeout_at(deadline, watch.next())
            .await
            .unwrap_or_else(|_| panic!("no progress notification within {limit:?}"))
            .expect("watch ended")
            .expect("watch failed");
        assert!(batch.events.is_empty(), "no event under /quiet/ was written");
        if batch.revision >= last.mod_revision {
            break;
        }
    }
}

pub async fn concurrent_compare_and_swap_writers<S: Store>(s: Arc<S>) {
    const TASKS: usize = 8;
    const INCREMENTS: usize = 200;
    let keys = ["/n/a", "/n/b"];
    for key in keys {
        s.create(key, b("0")).await.unwrap();
    }
    let start = s.current_revision().await.unwrap();
    let mut watch = s.watch("/n/", start).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let key = keys[t % keys.len()];
            for _ in 0..INCREMENTS {
                loop {
                    let kv = s.get(key).await.unwrap().unwrap();
                    let n: usize = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                    match s.update(key, Bytes::from((n + 1).to_string()), kv.mod_revision).await {
                        Ok(_) => break,
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(err) => panic!("{err}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for key in keys {
        let value = s.get(key).await.unwrap().unwrap().value;
        assert_eq!(value, Bytes::from((TASKS / keys.len() * INCREMENTS).to_string()));
    }
    let total = TASKS * INCREMENTS;
    let events = next_events(&mut watch, total).await;
    let revisions: Vec<Revision> = events.iter().map(|e| e.revision()).collect();
    let expected: Vec<Revision> = (start + 1..=start + total as Revision).collect();
    assert_eq!(revisions, expected, "every write observed once, in revision order");
}

pub async fn compaction_bounds<S: Store>(s: Arc<S>) {
    let x = s.create("/z/x", b("1")).await.unwrap();
    s.update("/z/x", b("2"), x.mod_revision).await.unwrap();
    let current = s.current_revision().await.unwrap();
    s.compact(current).await.unwrap();
    s.compact(current - 1).await.unwrap();
    assert_eq!(s.compacted_revision().await.unwrap(), current);
    let err = s.compact(current + 5).await.unwrap_err();
    assert!(matches!(err, StoreError::FutureRevision { .. }), "{err:?}");
    assert_eq!(s.get("/z/x").await.unwrap().unwrap().value, b("2"));
}
