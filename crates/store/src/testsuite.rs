//! The backend conformance suite: the rules every [`Store`] backend must
//! follow, written once and run against each backend.
//!
//! A backend's test file instantiates every case with
//! [`store_conformance_tests!`](crate::store_conformance_tests), passing a
//! closure that returns a future of a fresh, empty store:
//!
//! ```text
//! store::store_conformance_tests!(async || MemoryStore::new(Default::default()));
//! ```
//!
//! A backend whose store needs something kept alive beside it (a data
//! directory, an etcd server) passes `guarded` and a closure returning the
//! store and that guard; the guard is dropped when the case ends:
//!
//! ```text
//! store::store_conformance_tests!(guarded async || (open(dir.path()), dir));
//! ```
//!
//! Each case is also a public function taking the store, so a failure names
//! the rule that broke. Cases only assume an empty store: revisions are
//! compared relative to the ones the writes return, never to fixed numbers.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::{
    Event, EventKind, KeyValue, ListRequest, ListResponse, Revision, Store, StoreError, WatchBatch,
    WatchStream,
};

/// Instantiates one `#[tokio::test]` per conformance case.
#[macro_export]
macro_rules! store_conformance_tests {
    (@cases bare $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let make = $make;
                let store = make().await;
                $crate::testsuite::$case(::std::sync::Arc::new(store)).await;
            }
        )*
    };
    (@cases guarded $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let make = $make;
                let (store, guard) = make().await;
                $crate::testsuite::$case(::std::sync::Arc::new(store)).await;
                drop(guard);
            }
        )*
    };
    (@all $mode:ident $make:expr) => {
        $crate::store_conformance_tests!(@cases $mode $make;
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
            watch_replays_after_a_revision_then_goes_live,
            watch_started_during_writes_misses_and_repeats_nothing,
            watch_from_a_future_revision_skips_earlier_writes,
            watch_is_prefix_isolated,
            watch_after_compaction_boundary,
            live_watch_survives_compaction,
            idle_watch_gets_progress_notifications,
            concurrent_compare_and_swap_writers,
            compaction_bounds,
        );
    };
    (guarded $make:expr) => {
        $crate::store_conformance_tests!(@all guarded $make);
    };
    ($make:expr) => {
        $crate::store_conformance_tests!(@all bare $make);
    };
}

/// How long a case waits for a watch to deliver what it must.
const WAIT: Duration = Duration::from_secs(10);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn keys(list: &ListResponse) -> Vec<&str> {
    list.kvs.iter().map(|kv| kv.key.as_str()).collect()
}

fn prefix(prefix: &str) -> ListRequest {
    ListRequest {
        prefix: prefix.to_owned(),
        ..Default::default()
    }
}

/// The longest a backend may leave a watch without a progress notification,
/// with a margin for a loaded machine.
fn progress_deadline<S: Store + ?Sized>(s: &S) -> Duration {
    s.progress_interval() * 5 + Duration::from_secs(5)
}

/// The next batch of a watch, checked against the batch invariants: events
/// in strictly increasing revision order, none beyond the progress mark.
async fn next_batch(stream: &mut WatchStream, wait: Duration) -> WatchBatch {
    let batch = match tokio::time::timeout(wait, stream.next()).await {
        Ok(Some(Ok(batch))) => batch,
        Ok(Some(Err(err))) => panic!("watch failed: {err}"),
        Ok(None) => panic!("watch ended unexpectedly"),
        Err(_) => panic!("no watch batch within {wait:?}"),
    };
    for pair in batch.events.windows(2) {
        assert!(
            pair[0].revision() < pair[1].revision(),
            "events out of revision order: {:?}",
            batch.events
        );
    }
    if let Some(last) = batch.events.last() {
        assert!(
            batch.revision >= last.revision(),
            "progress mark {} behind the batch's last event {}",
            batch.revision,
            last.revision()
        );
    }
    batch
}

/// The next `n` events of a watch, skipping progress notifications; more
/// events in the batch that completes them is a failure.
async fn next_events(stream: &mut WatchStream, n: usize) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut events = Vec::new();
    while events.len() < n {
        let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
        if wait.is_zero() {
            panic!(
                "only {} of {n} events within {WAIT:?}: {events:?}",
                events.len()
            );
        }
        events.extend(next_batch(stream, wait).await.events);
    }
    assert_eq!(events.len(), n, "more events than expected: {events:?}");
    events
}

/// Asserts that a watch delivers nothing up to `revision`: it reads batches
/// until a progress mark reaches `revision`, and every one must be empty.
/// The progress guarantee is what turns "nothing arrived" into a fact
/// rather than a guess about timing.
async fn expect_no_events_through<S: Store + ?Sized>(
    s: &S,
    stream: &mut WatchStream,
    revision: Revision,
) {
    let limit = progress_deadline(s);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
        if wait.is_zero() {
            panic!("no progress mark reached revision {revision} within {limit:?}");
        }
        let batch = next_batch(stream, wait).await;
        assert!(
            batch.events.is_empty(),
            "unexpected events up to revision {revision}: {:?}",
            batch.events
        );
        if batch.revision >= revision {
            return;
        }
    }
}

pub async fn create_get_and_already_exists<S: Store + ?Sized>(s: Arc<S>) {
    let kv = s.create("/a/x", b("1")).await.unwrap();
    assert_eq!(kv.key, "/a/x");
    assert_eq!(kv.value, b("1"));
    assert_eq!(kv.create_revision, kv.mod_revision);
    assert_eq!(s.get("/a/x").await.unwrap(), Some(kv.clone()));
    match s.create("/a/x", b("2")).await {
        Err(StoreError::AlreadyExists { key }) => assert_eq!(key, "/a/x"),
        other => panic!("creating an existing key must fail, got {other:?}"),
    }
    assert_eq!(s.get("/a/x").await.unwrap(), Some(kv));
}

pub async fn update_is_compare_and_swap<S: Store + ?Sized>(s: Arc<S>) {
    let created = s.create("/a/x", b("1")).await.unwrap();
    let updated = s
        .update("/a/x", b("2"), created.mod_revision)
        .await
        .unwrap();
    assert!(updated.mod_revision > created.mod_revision);
    assert_eq!(updated.create_revision, created.create_revision);
    assert_eq!(updated.value, b("2"));
    match s.update("/a/x", b("3"), created.mod_revision).await {
        Err(StoreError::Conflict {
            key,
            expected,
            current: Some(current),
        }) => {
            assert_eq!(key, "/a/x");
            assert_eq!(expected, created.mod_revision);
            assert_eq!(*current, updated, "a conflict carries the key as it is now");
        }
        other => panic!("a stale update must conflict, got {other:?}"),
    }
    assert_eq!(s.get("/a/x").await.unwrap(), Some(updated));
}

pub async fn delete_with_and_without_expected_revision<S: Store + ?Sized>(s: Arc<S>) {
    let x = s.create("/a/x", b("1")).await.unwrap();
    let y = s.create("/a/y", b("2")).await.unwrap();
    match s.delete("/a/x", Some(x.mod_revision + 100)).await {
        Err(StoreError::Conflict {
            current: Some(current),
            expected,
            ..
        }) => {
            assert_eq!(*current, x);
            assert_eq!(expected, x.mod_revision + 100);
        }
        other => panic!("a stale delete must conflict, got {other:?}"),
    }
    assert_eq!(s.get("/a/x").await.unwrap(), Some(x.clone()));

    let deleted = s.delete("/a/x", Some(x.mod_revision)).await.unwrap();
    assert_eq!(s.current_revision().await.unwrap(), deleted.mod_revision);
    assert_eq!(
        deleted,
        KeyValue {
            mod_revision: y.mod_revision + 1,
            ..x.clone()
        },
        "a delete returns the last value at the delete's revision"
    );
    assert_eq!(s.get("/a/x").await.unwrap(), None);

    let deleted = s.delete("/a/y", None).await.unwrap();
    assert_eq!(deleted.value, b("2"));
    assert_eq!(deleted.create_revision, y.create_revision);
    assert_eq!(s.get("/a/y").await.unwrap(), None);

    let again = s.create("/a/x", b("3")).await.unwrap();
    assert_eq!(
        again.create_revision, again.mod_revision,
        "a re-created key starts a new life"
    );
}

pub async fn missing_keys_are_not_found<S: Store + ?Sized>(s: Arc<S>) {
    assert_eq!(s.get("/nope").await.unwrap(), None);
    let err = s.update("/nope", b("1"), 1).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { ref key } if key == "/nope"),
        "{err:?}"
    );
    let err = s.delete("/nope", None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let err = s.delete("/nope", Some(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");

    let gone = s.create("/gone", b("1")).await.unwrap();
    s.delete("/gone", None).await.unwrap();
    let err = s
        .update("/gone", b("2"), gone.mod_revision)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let err = s.delete("/gone", None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

pub async fn one_global_revision_and_failed_writes_consume_none<S: Store + ?Sized>(s: Arc<S>) {
    let start = s.current_revision().await.unwrap();
    let a = s.create("/a/1", b("1")).await.unwrap();
    let c = s.create("/c/1", b("1")).await.unwrap();
    assert_eq!(a.mod_revision, start + 1);
    assert_eq!(c.mod_revision, start + 2);
    s.create("/a/1", b("x")).await.unwrap_err();
    s.update("/a/1", b("x"), a.mod_revision + 1)
        .await
        .unwrap_err();
    s.update("/zz", b("x"), 1).await.unwrap_err();
    s.delete("/a/1", Some(c.mod_revision)).await.unwrap_err();
    s.delete("/zz", None).await.unwrap_err();
    assert_eq!(s.current_revision().await.unwrap(), start + 2);
    let u = s.update("/a/1", b("2"), a.mod_revision).await.unwrap();
    assert_eq!(u.mod_revision, start + 3);
    let d = s.delete("/c/1", None).await.unwrap();
    assert_eq!(d.mod_revision, start + 4);
    assert_eq!(s.current_revision().await.unwrap(), start + 4);
}

pub async fn list_is_ordered_and_prefix_isolated<S: Store + ?Sized>(s: Arc<S>) {
    for key in ["/a/b", "/a/a", "/ab/x", "/a/c", "/b/a", "/a"] {
        s.create(key, b(key)).await.unwrap();
    }
    let listed = s.list(prefix("/a/")).await.unwrap();
    assert_eq!(keys(&listed), ["/a/a", "/a/b", "/a/c"]);
    assert!(listed.kvs.iter().all(|kv| kv.value == b(&kv.key)));
    assert_eq!(listed.remaining, 0);
    assert!(!listed.more());
    assert_eq!(listed.revision, s.current_revision().await.unwrap());

    let all = s.list(prefix("")).await.unwrap();
    assert_eq!(keys(&all), ["/a", "/a/a", "/a/b", "/a/c", "/ab/x", "/b/a"]);
    assert!(s.list(prefix("/none/")).await.unwrap().kvs.is_empty());
}

pub async fn list_pages_with_remaining_counts_at_a_stable_revision<S: Store + ?Sized>(s: Arc<S>) {
    for i in 0..10 {
        s.create(&format!("/p/{i:02}"), b("v")).await.unwrap();
    }
    s.create("/q/00", b("v")).await.unwrap();
    let page = |start_after: Option<&str>, revision: Revision| ListRequest {
        prefix: "/p/".into(),
        start_after: start_after.map(str::to_owned),
        revision,
        limit: 4,
    };
    let first = s.list(page(None, 0)).await.unwrap();
    assert_eq!(keys(&first), ["/p/00", "/p/01", "/p/02", "/p/03"]);
    assert_eq!(first.remaining, 6);
    assert!(first.more());

    // Writes between pages must not leak into a list at the first revision.
    s.create("/p/05a", b("new")).await.unwrap();
    s.delete("/p/07", None).await.unwrap();
    let second = s.list(page(Some("/p/03"), first.revision)).await.unwrap();
    assert_eq!(second.revision, first.revision);
    assert_eq!(keys(&second), ["/p/04", "/p/05", "/p/06", "/p/07"]);
    assert_eq!(second.remaining, 2);
    let third = s.list(page(Some("/p/07"), first.revision)).await.unwrap();
    assert_eq!(third.revision, first.revision);
    assert_eq!(keys(&third), ["/p/08", "/p/09"]);
    assert_eq!(third.remaining, 0);
    assert!(!third.more());

    // The same page read now shows the writes.
    let now = s.list(page(Some("/p/03"), 0)).await.unwrap();
    assert_eq!(keys(&now), ["/p/04", "/p/05", "/p/05a", "/p/06"]);
    assert_eq!(now.remaining, 2, "/p/07 is deleted, /p/08 and /p/09 remain");
    assert_eq!(now.revision, s.current_revision().await.unwrap());

    // A resume point outside the prefix: before it lists all, past it none.
    let before = s
        .list(ListRequest {
            start_after: Some("/o".into()),
            ..prefix("/p/")
        })
        .await
        .unwrap();
    assert_eq!(before.kvs.len(), 10);
    let past = s
        .list(ListRequest {
            start_after: Some("/p0".into()),
            ..prefix("/p/")
        })
        .await
        .unwrap();
    assert!(past.kvs.is_empty() && !past.more(), "{past:?}");
    let unlimited = s
        .list(ListRequest {
            limit: 100,
            ..prefix("/p/")
        })
        .await
        .unwrap();
    assert_eq!((unlimited.kvs.len(), unlimited.remaining), (10, 0));
}

pub async fn list_at_past_revision_sees_old_state<S: Store + ?Sized>(s: Arc<S>) {
    let x = s.create("/h/x", b("1")).await.unwrap();
    let y = s.create("/h/y", b("1")).await.unwrap();
    let before = s.current_revision().await.unwrap();
    let x2 = s.update("/h/x", b("2"), x.mod_revision).await.unwrap();
    s.delete("/h/y", None).await.unwrap();
    let z = s.create("/h/z", b("1")).await.unwrap();
    let y2 = s.create("/h/y", b("again")).await.unwrap();

    let old = s
        .list(ListRequest {
            revision: before,
            ..prefix("/h/")
        })
        .await
        .unwrap();
    assert_eq!(old.revision, before);
    assert_eq!(old.kvs, [x.clone(), y]);

    let at_create = s
        .list(ListRequest {
            revision: x.mod_revision,
            ..prefix("/h/")
        })
        .await
        .unwrap();
    assert_eq!(at_create.kvs, [x]);

    let at_z = s
        .list(ListRequest {
            revision: z.mod_revision,
            ..prefix("/h/")
        })
        .await
        .unwrap();
    assert_eq!(at_z.kvs, [x2.clone(), z.clone()], "/h/y was deleted then");

    let now = s.list(prefix("/h/")).await.unwrap();
    assert_eq!(now.kvs, [x2, y2, z]);
}

pub async fn list_at_compacted_or_future_revision_fails<S: Store + ?Sized>(s: Arc<S>) {
    let x = s.create("/c/x", b("1")).await.unwrap();
    let u = s.update("/c/x", b("2"), x.mod_revision).await.unwrap();
    s.compact(u.mod_revision).await.unwrap();
    assert_eq!(s.compacted_revision().await.unwrap(), u.mod_revision);
    match s
        .list(ListRequest {
            revision: x.mod_revision,
            ..prefix("/c/")
        })
        .await
    {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, x.mod_revision);
            assert_eq!(compacted, u.mod_revision);
        }
        other => panic!("a list before the compaction point must fail, got {other:?}"),
    }
    let at = s
        .list(ListRequest {
            revision: u.mod_revision,
            ..prefix("/c/")
        })
        .await
        .unwrap();
    assert_eq!(
        at.kvs,
        std::slice::from_ref(&u),
        "the compaction point itself stays readable"
    );
    match s
        .list(ListRequest {
            revision: u.mod_revision + 10,
            ..prefix("/c/")
        })
        .await
    {
        Err(StoreError::FutureRevision { requested, current }) => {
            assert_eq!(requested, u.mod_revision + 10);
            assert_eq!(current, u.mod_revision);
        }
        other => panic!("a list at an unwritten revision must fail, got {other:?}"),
    }
}

pub async fn watch_from_now_sees_only_later_writes<S: Store + ?Sized>(s: Arc<S>) {
    let old = s.create("/w/old", b("1")).await.unwrap();
    let mut watch = s.watch("/w/", 0).await.unwrap();
    let new = s.create("/w/new", b("2")).await.unwrap();
    let updated = s.update("/w/old", b("3"), old.mod_revision).await.unwrap();
    let deleted = s.delete("/w/new", None).await.unwrap();
    let events = next_events(&mut watch, 3).await;
    assert_eq!(
        events,
        [
            Event {
                kind: EventKind::Created,
                kv: new.clone(),
                prev: None,
            },
            Event {
                kind: EventKind::Updated,
                kv: updated,
                prev: Some(old),
            },
            Event {
                kind: EventKind::Deleted,
                kv: deleted,
                prev: Some(new),
            },
        ]
    );
}

pub async fn watch_replays_after_a_revision_then_goes_live<S: Store + ?Sized>(s: Arc<S>) {
    let base = s.create("/other", b("0")).await.unwrap().mod_revision;
    let x = s.create("/r/x", b("1")).await.unwrap();
    let u = s.update("/r/x", b("2"), x.mod_revision).await.unwrap();
    let d = s.delete("/r/x", None).await.unwrap();
    let x2 = s.create("/r/x", b("3")).await.unwrap();

    let mut watch = s.watch("/r/", base).await.unwrap();
    let replayed = next_events(&mut watch, 4).await;
    let kinds: Vec<EventKind> = replayed.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Created,
            EventKind::Updated,
            EventKind::Deleted,
            EventKind::Created
        ]
    );
    assert_eq!((&replayed[0].kv, &replayed[0].prev), (&x, &None));
    assert_eq!((&replayed[1].kv, replayed[1].prev.as_ref()), (&u, Some(&x)));
    assert_eq!(
        replayed[2].kv, d,
        "a delete event carries what delete returned"
    );
    assert_eq!(
        replayed[2].kv.value,
        b("2"),
        "a delete carries the last value"
    );
    assert_eq!(replayed[2].prev.as_ref(), Some(&u));
    assert_eq!((&replayed[3].kv, &replayed[3].prev), (&x2, &None));
    assert_eq!(replayed[3].kv.create_revision, x2.mod_revision);

    let live = s.update("/r/x", b("4"), x2.mod_revision).await.unwrap();
    let events = next_events(&mut watch, 1).await;
    assert_eq!(events[0].kind, EventKind::Updated);
    assert_eq!((&events[0].kv, events[0].prev.as_ref()), (&live, Some(&x2)));

    let mut partial = s.watch("/r/", u.mod_revision).await.unwrap();
    let revisions: Vec<Revision> = next_events(&mut partial, 3)
        .await
        .iter()
        .map(Event::revision)
        .collect();
    assert_eq!(
        revisions,
        [d.mod_revision, x2.mod_revision, live.mod_revision]
    );
}

pub async fn watch_started_during_writes_misses_and_repeats_nothing<S: Store + ?Sized>(s: Arc<S>) {
    const WRITES: usize = 400;
    // A real revision to watch from: 0 would mean "from now on".
    let base = s.create("/before", b("0")).await.unwrap().mod_revision;
    let (started, wait_started) = tokio::sync::oneshot::channel();
    let writer = tokio::spawn({
        let s = s.clone();
        async move {
            let mut started = Some(started);
            for i in 0..WRITES {
                s.create(&format!("/seam/{i:04}"), b("v")).await.unwrap();
                if i == WRITES / 4
                    && let Some(started) = started.take()
                {
                    let _ = started.send(());
                }
                tokio::task::yield_now().await;
            }
        }
    });
    tokio::time::timeout(WAIT, wait_started)
        .await
        .expect("the writer makes progress")
        .expect("the writer is alive");
    let mut watch = s.watch("/seam/", base).await.unwrap();
    tokio::time::timeout(WAIT * 3, writer)
        .await
        .expect("the writer finishes")
        .unwrap();
    let events = next_events(&mut watch, WRITES).await;
    let revisions: Vec<Revision> = events.iter().map(Event::revision).collect();
    let expected: Vec<Revision> = (base + 1..=base + WRITES as Revision).collect();
    assert_eq!(revisions, expected, "replay and live events meet exactly");
    let last = s.current_revision().await.unwrap();
    expect_no_events_through(&*s, &mut watch, last).await;
}

pub async fn watch_from_a_future_revision_skips_earlier_writes<S: Store + ?Sized>(s: Arc<S>) {
    let current = s.create("/f/0", b("0")).await.unwrap().mod_revision;
    let mut watch = s.watch("/f/", current + 2).await.unwrap();
    s.create("/f/1", b("1")).await.unwrap();
    s.create("/f/2", b("2")).await.unwrap();
    let third = s.create("/f/3", b("3")).await.unwrap();
    let events = next_events(&mut watch, 1).await;
    assert_eq!(events[0].kv, third);
    expect_no_events_through(&*s, &mut watch, third.mod_revision).await;
}

pub async fn watch_is_prefix_isolated<S: Store + ?Sized>(s: Arc<S>) {
    let mut watch = s.watch("/a/", 0).await.unwrap();
    s.create("/ab/x", b("no")).await.unwrap();
    s.create("/b/x", b("no")).await.unwrap();
    s.create("/a", b("no")).await.unwrap();
    let mine = s.create("/a/x", b("yes")).await.unwrap();
    let last = s.create("/ab/y", b("no")).await.unwrap();
    let events = next_events(&mut watch, 1).await;
    assert_eq!(events[0].kv, mine);
    expect_no_events_through(&*s, &mut watch, last.mod_revision).await;
}

pub async fn watch_after_compaction_boundary<S: Store + ?Sized>(s: Arc<S>) {
    let mut revs: Vec<Revision> = Vec::new();
    for i in 0..5 {
        revs.push(
            s.create(&format!("/k/{i}"), b("v"))
                .await
                .unwrap()
                .mod_revision,
        );
    }
    let c = revs[3];
    s.compact(c).await.unwrap();
    match s.watch("/k/", c - 2).await {
        Err(StoreError::Compacted { compacted, .. }) => assert_eq!(compacted, c),
        Err(other) => panic!("expected Compacted, got {other}"),
        Ok(_) => panic!("watching from before the compaction point must fail"),
    }
    let mut watch = s.watch("/k/", c - 1).await.unwrap();
    let events = next_events(&mut watch, 2).await;
    assert_eq!(events[0].revision(), revs[3]);
    assert_eq!(events[1].revision(), revs[4]);
}

pub async fn live_watch_survives_compaction<S: Store + ?Sized>(s: Arc<S>) {
    let mut watch = s.watch("/l/", 0).await.unwrap();
    let mut kv = s.create("/l/x", b("0")).await.unwrap();
    for i in 1..3 {
        kv = s
            .update("/l/x", b(&i.to_string()), kv.mod_revision)
            .await
            .unwrap();
    }
    s.compact(kv.mod_revision).await.unwrap();
    let after = s.update("/l/x", b("3"), kv.mod_revision).await.unwrap();
    let values: Vec<Bytes> = next_events(&mut watch, 4)
        .await
        .into_iter()
        .map(|e| e.kv.value)
        .collect();
    assert_eq!(values, [b("0"), b("1"), b("2"), b("3")]);
    assert_eq!(s.get("/l/x").await.unwrap(), Some(after));
}

pub async fn idle_watch_gets_progress_notifications<S: Store + ?Sized>(s: Arc<S>) {
    let mut watch = s.watch("/quiet/", 0).await.unwrap();
    let last = s.create("/elsewhere/x", b("1")).await.unwrap();
    let limit = progress_deadline(&*s);
    let deadline = tokio::time::Instant::now() + limit;
    let mut mark = 0;
    while mark < last.mod_revision {
        let batch = tokio::time::timeout_at(deadline, watch.next())
            .await
            .unwrap_or_else(|_| panic!("no progress past {} within {limit:?}", last.mod_revision))
            .expect("the watch ended")
            .expect("the watch failed");
        assert!(batch.events.is_empty(), "nothing was written under /quiet/");
        assert!(batch.revision >= mark, "progress marks never go back");
        mark = batch.revision;
    }
}

pub async fn concurrent_compare_and_swap_writers<S: Store + ?Sized>(s: Arc<S>) {
    const TASKS: usize = 8;
    const INCREMENTS: usize = 200;
    const ATTEMPTS: usize = 100_000;
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
            let mut attempts = 0;
            for _ in 0..INCREMENTS {
                loop {
                    attempts += 1;
                    assert!(
                        attempts < ATTEMPTS,
                        "compare-and-swap never settles on {key}"
                    );
                    let kv = s.get(key).await.unwrap().unwrap();
                    let n: usize = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                    match s
                        .update(key, b(&(n + 1).to_string()), kv.mod_revision)
                        .await
                    {
                        Ok(_) => break,
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(err) => panic!("{err}"),
                    }
                }
            }
        }));
    }
    for task in tasks {
        tokio::time::timeout(WAIT * 6, task)
            .await
            .expect("writers finish")
            .unwrap();
    }
    for key in keys {
        let value = s.get(key).await.unwrap().unwrap().value;
        assert_eq!(value, b(&(TASKS / keys.len() * INCREMENTS).to_string()));
    }
    let total = TASKS * INCREMENTS;
    let end = start + total as Revision;
    assert_eq!(
        s.current_revision().await.unwrap(),
        end,
        "one revision per write"
    );
    let events = next_events(&mut watch, total).await;
    let revisions: Vec<Revision> = events.iter().map(Event::revision).collect();
    let expected: Vec<Revision> = (start + 1..=end).collect();
    assert_eq!(
        revisions, expected,
        "every write observed once, in revision order"
    );
    expect_no_events_through(&*s, &mut watch, end).await;
}

pub async fn compaction_bounds<S: Store + ?Sized>(s: Arc<S>) {
    let x = s.create("/z/x", b("1")).await.unwrap();
    let x2 = s.update("/z/x", b("2"), x.mod_revision).await.unwrap();
    let current = s.current_revision().await.unwrap();
    assert_eq!(s.compacted_revision().await.unwrap(), 0);
    s.compact(current).await.unwrap();
    s.compact(current).await.unwrap();
    s.compact(current - 1).await.unwrap();
    assert_eq!(s.compacted_revision().await.unwrap(), current);
    match s.compact(current + 5).await {
        Err(StoreError::FutureRevision {
            requested,
            current: now,
        }) => {
            assert_eq!((requested, now), (current + 5, current));
        }
        other => panic!("compacting an unwritten revision must fail, got {other:?}"),
    }
    assert_eq!(s.compacted_revision().await.unwrap(), current);
    assert_eq!(s.get("/z/x").await.unwrap(), Some(x2.clone()));
    let listed = s
        .list(ListRequest {
            revision: current,
            ..prefix("/z/")
        })
        .await
        .unwrap();
    assert_eq!(listed.kvs, [x2]);
}

/// Writes `writes` versions of the key `/h/x` into an empty store that
/// compacts by itself, and checks that it did: the compaction point lies in
/// `compacted`, a watch from the first revision fails with `Compacted`, and
/// the last value is still read. Returns the compaction point.
///
/// Not a conformance case: only the memory and disk backends compact by
/// themselves, each after its own history limit.
pub async fn self_compaction<S: Store + ?Sized>(
    s: &S,
    writes: usize,
    compacted: RangeInclusive<Revision>,
) -> Revision {
    let mut kv = s.create("/h/x", b("0")).await.unwrap();
    for i in 1..writes {
        kv = s
            .update("/h/x", b(&i.to_string()), kv.mod_revision)
            .await
            .unwrap();
    }
    let at = s.compacted_revision().await.unwrap();
    assert!(
        compacted.contains(&at),
        "{writes} writes compacted the store at {at}, expected within {compacted:?}"
    );
    let err = s.watch("/h/", 1).await.err().expect("old history is gone");
    assert!(matches!(err, StoreError::Compacted { .. }), "{err:?}");
    assert_eq!(s.get("/h/x").await.unwrap().unwrap().value, kv.value);
    at
}
