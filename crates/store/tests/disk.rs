//! The disk backend against the conformance suite, plus what only a durable
//! store promises: state, revisions, compaction and watch history survive a
//! reopen, and a data directory that is not a kstress store is refused.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use store::{
    DiskOpenError, DiskStore, DiskStoreOptions, EventKind, ListRequest, Store, StoreError,
};

fn options() -> DiskStoreOptions {
    DiskStoreOptions {
        progress_interval: Duration::from_millis(100),
        ..Default::default()
    }
}

// Each case gets a fresh directory, removed when the case ends.
store::store_conformance_tests!(guarded async || {
    let dir = tempfile::tempdir().unwrap();
    (DiskStore::open(dir.path(), options()).unwrap(), dir)
});

const WAIT: Duration = Duration::from_secs(10);

fn v(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test]
async fn state_revisions_and_compaction_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y, compacted, last) = {
        let store = DiskStore::open(dir.path(), options()).unwrap();
        let x = store.create("/s/x", v("1")).await.unwrap();
        let x = store.update("/s/x", v("2"), x.mod_revision).await.unwrap();
        let y = store.create("/s/y", v("y")).await.unwrap();
        store.compact(y.mod_revision).await.unwrap();
        let gone = store.create("/s/z", v("z")).await.unwrap();
        let last = store.delete("/s/z", Some(gone.mod_revision)).await.unwrap();
        (x, y.clone(), y.mod_revision, last)
    };
    let store = DiskStore::open(dir.path(), options()).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), last.mod_revision);
    assert_eq!(store.compacted_revision().await.unwrap(), compacted);
    assert_eq!(store.get("/s/x").await.unwrap(), Some(x.clone()));
    assert_eq!(store.get("/s/z").await.unwrap(), None);
    let listed = store
        .list(ListRequest {
            prefix: "/s/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.kvs, [x.clone(), y.clone()]);
    let err = store
        .list(ListRequest {
            prefix: "/s/".into(),
            revision: compacted - 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err:?}");

    // A watch from inside the history window replays the writes after it.
    let mut watch = store.watch("/s/", compacted).await.unwrap();
    let batch = tokio::time::timeout(WAIT, watch.next())
        .await
        .expect("the replay arrives")
        .expect("still open")
        .expect("no error");
    let kinds: Vec<EventKind> = batch.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::Created, EventKind::Deleted]);
    assert_eq!(batch.events[1].kv, last);

    // The revision counter goes on where it stopped.
    let next = store.update("/s/x", v("3"), x.mod_revision).await.unwrap();
    assert_eq!(next.mod_revision, last.mod_revision + 1);
}

#[tokio::test]
async fn history_is_bounded_by_self_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskStore::open(
        dir.path(),
        DiskStoreOptions {
            history_limit: 40,
            ..options()
        },
    )
    .unwrap();
    store::testsuite::self_compaction(&store, 200, 150..=161).await;
}

#[test]
fn a_foreign_directory_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    match DiskStore::open(dir.path(), options()) {
        Err(err @ DiskOpenError::Foreign { .. }) => {
            assert!(err.to_string().contains("not a kstress store"), "{err}");
        }
        other => panic!("expected Foreign, got {:?}", other.err()),
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["notes.txt"], "nothing was written");
}

#[test]
fn a_corrupt_store_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    drop(DiskStore::open(dir.path(), options()).unwrap());
    let file = dir.path().join("kstress.redb");
    let garbage = vec![0x5a_u8; 8192];
    std::fs::write(&file, &garbage).unwrap();
    match DiskStore::open(dir.path(), options()) {
        Err(err @ DiskOpenError::Corrupt { .. }) => {
            assert!(err.to_string().contains("left untouched"), "{err}");
        }
        other => panic!("expected Corrupt, got {:?}", other.err()),
    }
    assert_eq!(std::fs::read(&file).unwrap(), garbage);
}

#[test]
fn a_foreign_redb_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kstress.redb");
    let db = redb::Database::create(&file).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(redb::TableDefinition::<&str, u64>::new("other"))
        .unwrap()
        .insert("x", 1)
        .unwrap();
    txn.commit().unwrap();
    drop(db);
    match DiskStore::open(dir.path(), options()) {
        Err(err @ DiskOpenError::Corrupt { .. }) => {
            assert!(err.to_string().contains("kstress"), "{err}");
        }
        other => panic!("expected Corrupt, got {:?}", other.err()),
    }
}

#[test]
fn a_store_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _open = DiskStore::open(dir.path(), options()).unwrap();
    match DiskStore::open(dir.path(), options()) {
        Err(err @ DiskOpenError::InUse { .. }) => {
            assert!(err.to_string().contains("in use"), "{err}");
        }
        other => panic!("expected InUse, got {:?}", other.err()),
    }
}
