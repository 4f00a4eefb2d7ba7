//! The etcd backend against the conformance suite on a real etcd (one per
//! case, since cases compact), plus its fault behaviour: an unreachable etcd
//! is an error at connect, and requests fail with `Unavailable` or `Timeout`
//! while etcd is down and succeed again once it is back.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use store::etcd_server::TestEtcd;
use store::{EtcdStore, EtcdStoreOptions, ListRequest, Store, StoreError};

store::store_conformance_tests!(guarded async || {
    let etcd = TestEtcd::start().await;
    (etcd.store().await, etcd)
});

const WAIT: Duration = Duration::from_secs(60);

fn v(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test]
async fn an_unreachable_etcd_is_an_error_at_connect() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let err = EtcdStore::connect(EtcdStoreOptions {
        endpoints: vec![endpoint.clone()],
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
        ..Default::default()
    })
    .await
    .err()
    .expect("nothing listens there");
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains(&endpoint)),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_fail_while_etcd_is_down_and_recover_when_it_returns() {
    let mut etcd = TestEtcd::start().await;
    let store = EtcdStore::connect(EtcdStoreOptions {
        request_timeout: Duration::from_secs(2),
        ..etcd.options()
    })
    .await
    .unwrap();
    let x = store.create("/f/x", v("1")).await.unwrap();
    let mut watch = store.watch("/f/", x.mod_revision).await.unwrap();

    etcd.kill();
    let err = store.get("/f/x").await.unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(_) | StoreError::Timeout(_)),
        "{err:?}"
    );
    let err = store
        .update("/f/x", v("2"), x.mod_revision)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(_) | StoreError::Timeout(_)),
        "{err:?}"
    );
    let ended = tokio::time::timeout(WAIT, async {
        while let Some(item) = watch.next().await {
            if let Err(err) = item {
                return Some(err);
            }
        }
        None
    })
    .await
    .expect("the watch notices that etcd is gone");
    assert!(
        matches!(
            ended,
            None | Some(StoreError::Unavailable(_) | StoreError::Timeout(_))
        ),
        "{ended:?}"
    );

    etcd.restart().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let updated = loop {
        match store.update("/f/x", v("2"), x.mod_revision).await {
            Ok(kv) => break kv,
            Err(StoreError::Unavailable(_) | StoreError::Timeout(_))
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("the store did not recover: {err:?}"),
        }
    };
    assert_eq!(store.get("/f/x").await.unwrap(), Some(updated.clone()));
    let mut watch = store.watch("/f/", x.mod_revision).await.unwrap();
    let batch = tokio::time::timeout(WAIT, watch.next())
        .await
        .expect("a new watch replays")
        .expect("open")
        .expect("no error");
    assert_eq!(batch.events[0].kv, updated);
}

#[tokio::test]
async fn keys_are_laid_out_as_kube_apiserver_lays_them_out() {
    let etcd = TestEtcd::start().await;
    let store = etcd.store().await;
    store
        .create("/registry/pods/default/web", v("{}"))
        .await
        .unwrap();
    let shared = EtcdStore::connect(EtcdStoreOptions {
        prefix: "/kstress-a".into(),
        ..etcd.options()
    })
    .await
    .unwrap();
    shared
        .create("/registry/pods/default/web", v("a"))
        .await
        .unwrap();
    let raw = EtcdStore::connect(etcd.options()).await.unwrap();
    let all = raw
        .list(ListRequest::default())
        .await
        .unwrap()
        .kvs
        .into_iter()
        .map(|kv| kv.key)
        .collect::<Vec<_>>();
    assert_eq!(
        all,
        [
            "/kstress-a/registry/pods/default/web",
            "/registry/pods/default/web"
        ]
    );
    let in_a = shared.list(ListRequest::default()).await.unwrap();
    assert_eq!(in_a.kvs.len(), 1);
    assert_eq!(in_a.kvs[0].key, "/registry/pods/default/web");
}
