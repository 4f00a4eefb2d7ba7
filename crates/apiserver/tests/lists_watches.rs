//! Lists and watches through kube-rs: selectors, pagination over a
//! consistent snapshot, resourceVersion semantics, watch resume, bookmarks,
//! 410 Gone, kube-runtime watchers, and the HTTP surface.

mod common;

use std::time::Duration;

use common::{TestServer, WAIT, status_of};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, PostParams, VersionMatch, WatchEvent, WatchParams};
use kube::runtime::watcher;
use serde_json::json;

fn configmap(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
}

async fn names(api: &Api<ConfigMap>, lp: &ListParams) -> Vec<String> {
    api.list(lp)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect()
}

#[tokio::test]
async fn label_and_field_selectors() {
    let ts = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "default");
    for (name, labels) in [
        ("a", json!({"env": "prod", "tier": "web"})),
        ("b", json!({"env": "dev", "tier": "web"})),
        ("c", json!({"env": "test"})),
    ] {
        api.create(&PostParams::default(), &configmap(name, labels))
            .await
            .unwrap();
    }
    let cases = [
        ("env=prod", vec!["a"]),
        ("env==dev", vec!["b"]),
        ("env!=prod", vec!["b", "c"]),
        ("env in (prod,test)", vec!["a", "c"]),
        ("env notin (prod,test)", vec!["b"]),
        ("tier", vec!["a", "b"]),
        ("!tier", vec!["c"]),
        ("tier=web,env!=dev", vec!["a"]),
    ];
    for (selector, expected) in cases {
        assert_eq!(
            names(&api, &ListParams::default().labels(selector)).await,
            expected,
            "{selector}"
        );
    }
    assert_eq!(
        names(&api, &ListParams::default().fields("metadata.name=b")).await,
        ["b"]
    );
    assert_eq!(
        names(&api, &ListParams::default().fields("metadata.name!=b")).await,
        ["a", "c"]
    );
    let all: Api<ConfigMap> = Api::all(ts.client.clone());
    assert_eq!(
        names(
            &all,
            &ListParams::default().fields("metadata.namespace=default")
        )
        .await
        .len(),
        3
    );
    let unsupported = status_of(api.list(&ListParams::default().fields("data.k=v")).await);
    assert_eq!(
        (unsupported.code, unsupported.message.as_str()),
        (400, "field label not supported: data.k")
    );
    let invalid = status_of(api.list(&ListParams::default().labels("a in (")).await);
    assert_eq!((invalid.code, invalid.reason.as_str()), (400, "BadRequest"));

    let pods: Api<Pod> = Api::namespaced(ts.client.clone(), "default");
    for (name, node) in [("p1", "n1"), ("p2", "n2")] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let on_n1: Vec<String> = pods
        .list(&ListParams::default().fields("spec.nodeName=n1,status.phase=Pending"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(on_n1, ["p1"]);
    let pod_names = |lp: ListParams| {
        let pods = Api::<Pod>::all(ts.client.clone());
        async move {
            pods.list(&lp)
                .await
                .unwrap()
                .items
                .into_iter()
                .filter_map(|p| p.metadata.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        pod_names(ListParams::default().fields("spec.nodeName!=n1")).await,
        ["p2"]
    );
    assert_eq!(
        pod_names(ListParams::default().fields("status.phase=Pending")).await,
        ["p1", "p2"]
    );
    assert!(
        pod_names(ListParams::default().fields("status.phase=Running"))
            .await
            .is_empty()
    );
    assert_eq!(
        pod_names(ListParams::default().fields("metadata.namespace=default,metadata.name=p2"))
            .await,
        ["p2"]
    );
    assert!(
        pod_names(ListParams::default().fields("metadata.namespace=other"))
            .await
            .is_empty()
    );
    let unsupported = status_of(
        pods.list(&ListParams::default().fields("spec.hostname=x"))
            .await,
    );
    assert_eq!(
        (unsupported.code, unsupported.reason.as_str()),
        (400, "BadRequest")
    );
    ts.stop().await;
}

#[tokio::test]
async fn pagination_over_a_consistent_snapshot() {
    let ts = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "default");
    futures::stream::iter(0..2500)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(
                    &PostParams::default(),
                    &configmap(&format!("cm-{i:04}"), json!({})),
                )
                .await
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut first_rv = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(500);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.unwrap();
        pages += 1;
        let rv = page.metadata.resource_version.clone();
        assert_eq!(
            *first_rv.get_or_insert(rv.clone()),
            rv,
            "every page is read at the first page's revision"
        );
        seen.extend(page.items.into_iter().filter_map(|c| c.metadata.name));
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => {
                assert_eq!(
                    page.metadata.remaining_item_count,
                    Some(2500 - seen.len() as i64)
                );
                token = Some(t);
            }
            _ => break,
        }
        // Writes between pages must not show up in this list.
        api.create(
            &PostParams::default(),
            &configmap(&format!("late-{pages}"), json!({})),
        )
        .await
        .unwrap();
        api.delete(&format!("cm-{:04}", 2499 - pages), &Default::default())
            .await
            .unwrap();
    }
    assert_eq!(pages, 5);
    let expected: Vec<String> = (0..2500).map(|i| format!("cm-{i:04}")).collect();
    assert_eq!(seen, expected, "every object exactly once, in order");

    let first = api.list(&ListParams::default().limit(10)).await.unwrap();
    let token = first.metadata.continue_.unwrap();
    api.create(&PostParams::default(), &configmap("after-token", json!({})))
        .await
        .unwrap();
    let current = ts.server.store().current_revision().await.unwrap();
    ts.server.store().compact(current).await.unwrap();
    let expired = status_of(
        api.list(&ListParams::default().limit(10).continue_token(&token))
            .await,
    );
    assert_eq!((expired.code, expired.reason.as_str()), (410, "Expired"));
    let garbage = status_of(
        api.list(
            &ListParams::default()
                .limit(10)
                .continue_token("bm90LWEtdG9rZW4="),
        )
        .await,
    );
    assert_eq!(garbage.code, 400);
    ts.stop().await;
}

#[tokio::test]
async fn list_resource_version_semantics() {
    let ts = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "default");
    api.create(&PostParams::default(), &configmap("old", json!({})))
        .await
        .unwrap();
    let before = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    api.create(&PostParams::default(), &configmap("new", json!({})))
        .await
        .unwrap();

    let exact = api
        .list(
            &ListParams::default()
                .at(&before)
                .matching(VersionMatch::Exact),
        )
        .await
        .unwrap();
    assert_eq!(
        exact.metadata.resource_version.as_deref(),
        Some(before.as_str())
    );
    assert_eq!(
        exact.items.len(),
        1,
        "the old state is visible at an exact revision"
    );
    let not_older = api
        .list(
            &ListParams::default()
                .at(&before)
                .matching(VersionMatch::NotOlderThan),
        )
        .await
        .unwrap();
    assert_eq!(not_older.items.len(), 2);
    let any = api.list(&ListParams::default().match_any()).await.unwrap();
    assert!(any.items.len() <= 2 && !any.items.is_empty());
    let future = status_of(
        api.list(
            &ListParams::default()
                .at("999999")
                .matching(VersionMatch::NotOlderThan),
        )
        .await,
    );
    assert_eq!(future.code, 504);
    let invalid = status_of(api.list(&ListParams::default().at("abc")).await);
    assert_eq!(invalid.code, 400);
    ts.stop().await;
}

async fn next_event(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
) -> WatchEvent<ConfigMap> {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("a watch event within the timeout")
        .expect("the watch is still open")
        .expect("a decodable event")
}

fn name_of(event: &WatchEvent<ConfigMap>) -> (&'static str, String) {
    match event {
        WatchEvent::Added(c) => ("ADDED", c.metadata.name.clone().unwrap_or_default()),
        WatchEvent::Modified(c) => ("MODIFIED", c.metadata.name.clone().unwrap_or_default()),
        WatchEvent::Deleted(c) => ("DELETED", c.metadata.name.clone().unwrap_or_default()),
        WatchEvent::Bookmark(_) => ("BOOKMARK", String::new()),
        WatchEvent::Error(s) => ("ERROR", s.message.clone()),
    }
}

#[tokio::test]
async fn watch_resumes_from_a_resource_version_and_from_now() {
    let ts = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "default");
    let first = api
        .create(&PostParams::default(), &configmap("w1", json!({})))
        .await
        .unwrap();
    let rv = first.metadata.resource_version.unwrap();
    api.create(&PostParams::default(), &configmap("w2", json!({"x": "1"})))
        .await
        .unwrap();
    api.delete("w1", &Default::default()).await.unwrap();

    let mut resumed = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    assert_eq!(
        name_of(&next_event(&mut resumed).await),
        ("ADDED", "w2".into())
    );
    assert_eq!(
        name_of(&next_event(&mut resumed).await),
        ("DELETED", "w1".into())
    );

    let mut from_zero = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    assert_eq!(
        name_of(&next_event(&mut from_zero).await),
        ("ADDED", "w2".into()),
        "current state first"
    );
    let mut selected = api
        .watch(&WatchParams::default().labels("x=1"), "0")
        .await
        .unwrap()
        .boxed();
    assert_eq!(
        name_of(&next_event(&mut selected).await),
        ("ADDED", "w2".into())
    );

    api.create(&PostParams::default(), &configmap("w3", json!({})))
        .await
        .unwrap();
    assert_eq!(
        name_of(&next_event(&mut resumed).await),
        ("ADDED", "w3".into())
    );
    assert_eq!(
        name_of(&next_event(&mut from_zero).await),
        ("ADDED", "w3".into())
    );
    // Leaving the selector is a DELETED for a selecting watch.
    api.patch(
        "w2",
        &Default::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"labels": {"x": "2"}}})),
    )
    .await
    .unwrap();
    assert_eq!(
        name_of(&next_event(&mut selected).await),
        ("DELETED", "w2".into())
    );
    ts.stop().await;
}

#[tokio::test]
async fn bookmarks_and_timeouts() {
    let ts = TestServer::with_small_watch_cache().await;
    let api: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "default");
    let created = api
        .create(&PostParams::default(), &configmap("b", json!({})))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.unwrap();

    let mut bookmarks = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut bookmarks).await {
        WatchEvent::Bookmark(b) => assert!(
            b.metadata.resource_version.parse::<i64>().unwrap() >= rv.parse::<i64>().unwrap()
        ),
        other => panic!("expected a bookmark, got {other:?}"),
    }

    let started = std::time::Instant::now();
    let mut short = api
        .watch(&WatchParams::default().timeout(1).disable_bookmarks(), &rv)
        .await
        .unwrap()
        .boxed();
    let ended = tokio::time::timeout(WAIT, short.next())
        .await
        .expect("the watch ends by itself");
    assert!(ended.is_none(), "no events, then the end of the stream");
    assert!(started.elapsed() >= Duration::from_millis(900));
    ts.stop().await;
}

#[tokio::test]
async fn watch_from_before_the_cache_window_is_expired() {
    let ts = TestServer::with_small_watch_cache().await;
    let api: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "default");
    let created = api
        .create(&PostParams::default(), &configmap("b", json!({})))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.unwrap();
    for i in 0..60 {
        api.create(
            &PostParams::default(),
            &configmap(&format!("fill-{i}"), json!({})),
        )
        .await
        .unwrap();
    }
    let mut too_old = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut too_old).await {
        WatchEvent::Error(status) => {
            // Upstream's watch cache and etcd watcher both answer
            // NewResourceExpired.
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
            assert!(
                status.message.starts_with("too old resource version: "),
                "{}",
                status.message
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(WAIT, too_old.next())
            .await
            .expect("the watch ends after its error")
            .is_none(),
        "the ERROR event is the last one"
    );
    ts.stop().await;
}

#[tokio::test]
async fn compaction_expires_old_revisions_for_lists_and_watches() {
    let ts = TestServer::with_small_watch_cache().await;
    let api: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "default");
    let created = api
        .create(&PostParams::default(), &configmap("b", json!({})))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.unwrap();
    for i in 0..30 {
        api.create(
            &PostParams::default(),
            &configmap(&format!("fill-{i}"), json!({})),
        )
        .await
        .unwrap();
    }
    let current = ts.server.store().current_revision().await.unwrap();
    ts.server.store().compact(current).await.unwrap();
    let list = status_of(
        api.list(&ListParams::default().at(&rv).matching(VersionMatch::Exact))
            .await,
    );
    assert_eq!((list.code, list.reason.as_str()), (410, "Expired"));
    let mut compacted = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut compacted).await {
        WatchEvent::Error(status) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected a 410 ERROR event after compaction, got {other:?}"),
    }
    ts.stop().await;
}

#[tokio::test]
async fn node_name_watches_only_see_their_pods() {
    let ts = TestServer::start().await;
    let pods: Api<Pod> = Api::all(ts.client.clone());
    let namespaced: Api<Pod> = Api::namespaced(ts.client.clone(), "default");
    let create = |name: &'static str, node: &'static str| {
        let api = namespaced.clone();
        async move {
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
            }))
            .unwrap();
            api.create(&PostParams::default(), &pod).await.unwrap();
        }
    };
    create("before-n1", "n1").await;
    create("before-n2", "n2").await;
    // A kubelet's watch: every namespace, its own node only.
    let mut n1 = pods
        .watch(&WatchParams::default().fields("spec.nodeName=n1"), "0")
        .await
        .unwrap()
        .boxed();
    let mut seen = Vec::new();
    create("x", "n2").await;
    create("y", "n1").await;
    namespaced
        .patch(
            "before-n2",
            &Default::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    namespaced.delete("x", &Default::default()).await.unwrap();
    create("z", "n1").await;
    while seen.last().map(String::as_str) != Some("ADDED z") {
        let event = tokio::time::timeout(WAIT, n1.next())
            .await
            .expect("an event for n1 within the timeout")
            .unwrap()
            .unwrap();
        seen.push(match event {
            WatchEvent::Added(p) => format!("ADDED {}", p.metadata.name.unwrap()),
            WatchEvent::Modified(p) => format!("MODIFIED {}", p.metadata.name.unwrap()),
            WatchEvent::Deleted(p) => format!("DELETED {}", p.metadata.name.unwrap()),
            other => panic!("unexpected {other:?}"),
        });
        assert!(seen.len() <= 3, "events of other nodes leaked: {seen:?}");
    }
    assert_eq!(seen, ["ADDED before-n1", "ADDED y", "ADDED z"]);
    ts.stop().await;
}

#[tokio::test]
async fn runtime_watchers_reach_init_done_with_both_list_strategies() {
    let ts = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(ts.client.clone(), "default");
    for i in 0..3 {
        api.create(
            &PostParams::default(),
            &configmap(&format!("r{i}"), json!({})),
        )
        .await
        .unwrap();
    }
    for config in [
        watcher::Config::default().page_size(2),
        watcher::Config::default().streaming_lists(),
    ] {
        let mut stream = watcher(api.clone(), config).boxed();
        let mut initial = 0;
        loop {
            match tokio::time::timeout(WAIT, stream.next())
                .await
                .expect("watcher progress")
                .unwrap()
                .unwrap()
            {
                watcher::Event::InitApply(_) => initial += 1,
                watcher::Event::InitDone => break,
                _ => {}
            }
        }
        assert_eq!(initial, 3);
        api.create(
            &PostParams::default(),
            &configmap(&format!("after-{initial}-{}", rand_suffix()), json!({})),
        )
        .await
        .unwrap();
        match tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("watcher event")
            .unwrap()
            .unwrap()
        {
            watcher::Event::Apply(c) => assert!(c.metadata.name.unwrap().starts_with("after-")),
            other => panic!("unexpected {other:?}"),
        }
        for c in api.list(&ListParams::default()).await.unwrap().items {
            let name = c.metadata.name.unwrap();
            if name.starts_with("after-") {
                api.delete(&name, &Default::default()).await.unwrap();
            }
        }
    }
    ts.stop().await;
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[tokio::test]
async fn deleting_a_full_namespace_keeps_watches_open() {
    // A store watch buffer far smaller than the namespace's content: the
    // server's watch cache must keep up with the cleanup's burst of
    // deletions rather than overflow and close its watchers.
    let store = std::sync::Arc::new(store::MemoryStore::new(store::MemoryStoreOptions {
        watch_buffer: 300,
        ..store::MemoryStoreOptions::default()
    }));
    let (server, client) = testkit::start_server(store, apiserver::ServerConfig::default()).await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "burst"}})).unwrap(),
        )
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "burst");
    let count = 600;
    futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(
                    &PostParams::default(),
                    &configmap(&format!("cm-{i}"), json!({})),
                )
                .await
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await
        .expect("the configmaps are created");
    let version = api
        .list(&ListParams::default().limit(1))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(290), &version)
        .await
        .unwrap()
        .boxed();

    namespaces
        .delete("burst", &Default::default())
        .await
        .unwrap();
    let mut deleted = std::collections::HashSet::new();
    while deleted.len() < count {
        match name_of(&next_event(&mut stream).await) {
            ("DELETED", name) => {
                deleted.insert(name);
            }
            ("BOOKMARK", _) => {}
            other => panic!("unexpected event during the cleanup: {other:?}"),
        }
    }
    server.shutdown().await;
}
