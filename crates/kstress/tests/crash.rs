//! Crash safety of the durable stores, through the real binary: a writer
//! applies numbered creates and updates through `kstress serve` and records
//! every write the server acknowledged; the server (or its etcd) is killed
//! with SIGKILL at a random moment; after the restart every acknowledged
//! write must be there with its latest acknowledged value. Only the one
//! write in flight at the kill may have gone either way. Store flags that
//! cannot work are refused at start with a message naming the flag, and a
//! server that cannot write its kubeconfig stops with a one-line error.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, ObjectMeta, PostParams};
use store::etcd_server::TestEtcd;
use testkit::{Serve, WAIT};
use tokio::process::Command;

const KSTRESS: &str = env!("CARGO_BIN_EXE_kstress");
const ROUNDS: usize = 20;
const ETCD_ROUNDS: usize = 5;

/// A random duration in `[min, max)`.
fn random_between(min: Duration, max: Duration) -> Duration {
    let span = (max - min).as_micros() as u64;
    min + Duration::from_micros(RandomState::new().hash_one(0u8) % span)
}

/// Every acknowledged write, and the one in flight when the writer stopped.
#[derive(Default)]
struct Ledger {
    /// Name -> (value, resourceVersion) as last acknowledged.
    acked: BTreeMap<String, (String, String)>,
    /// The write whose answer never came: (name, value).
    in_flight: Option<(String, String)>,
    next: u64,
    acknowledged: usize,
}

fn config_map(name: &str, value: &str, resource_version: Option<&str>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            resource_version: resource_version.map(str::to_owned),
            ..Default::default()
        },
        data: Some([("n".to_owned(), value.to_owned())].into()),
        ..Default::default()
    }
}

fn value_of(cm: &ConfigMap) -> String {
    cm.data
        .as_ref()
        .and_then(|d| d.get("n"))
        .cloned()
        .unwrap_or_default()
}

impl Ledger {
    /// Writes until a write fails, and returns that failure: every fourth
    /// write creates an object, the others update one of those created.
    async fn write_until_failure(&mut self, api: &Api<ConfigMap>) -> kube::Error {
        loop {
            self.next += 1;
            let n = self.next;
            let value = n.to_string();
            let result = if n % 4 == 1 || self.acked.is_empty() {
                let name = format!("cm-{n}");
                self.in_flight = Some((name.clone(), value.clone()));
                api.create(&PostParams::default(), &config_map(&name, &value, None))
                    .await
            } else {
                let index = (n as usize * 7919) % self.acked.len();
                let (name, (_, rv)) = self.acked.iter().nth(index).expect("in range");
                let name = name.clone();
                let object = config_map(&name, &value, Some(rv));
                self.in_flight = Some((name.clone(), value.clone()));
                api.replace(&name, &PostParams::default(), &object).await
            };
            match result {
                Ok(stored) => {
                    let (name, value) = self.in_flight.take().expect("recorded");
                    let rv = stored.metadata.resource_version.expect("resourceVersion");
                    self.acked.insert(name, (value, rv));
                    self.acknowledged += 1;
                }
                Err(err) => return err,
            }
        }
    }

    /// Checks the server against the ledger, then adopts what the server
    /// holds (the in-flight write may have landed) as the new baseline.
    async fn verify(&mut self, api: &Api<ConfigMap>) {
        let listed = api.list(&ListParams::default()).await.expect("list");
        let stored: BTreeMap<String, ConfigMap> = listed
            .items
            .into_iter()
            .filter_map(|cm| Some((cm.metadata.name.clone()?, cm)))
            .collect();
        for (name, (value, _)) in &self.acked {
            let found = stored
                .get(name)
                .map(value_of)
                .unwrap_or_else(|| panic!("acknowledged {name} is missing"));
            let in_flight = self
                .in_flight
                .as_ref()
                .is_some_and(|(n, v)| n == name && *v == found);
            assert!(
                found == *value || in_flight,
                "{name} holds {found}, but {value} was the last acknowledged write"
            );
        }
        for (name, cm) in &stored {
            if !self.acked.contains_key(name) {
                let in_flight = self
                    .in_flight
                    .as_ref()
                    .is_some_and(|(n, v)| n == name && *v == value_of(cm));
                assert!(in_flight, "{name} exists but was never written");
            }
            let rv = cm
                .metadata
                .resource_version
                .clone()
                .expect("resourceVersion");
            self.acked.insert(name.clone(), (value_of(cm), rv));
        }
        self.in_flight = None;
    }
}

/// Kills the server at a random moment of a stream of writes, `rounds`
/// times, restarting it on the same store flags after each kill.
async fn kill_the_server_repeatedly(dir: &Path, store_args: &[String], rounds: usize) -> Ledger {
    let mut ledger = Ledger::default();
    for round in 0..rounds {
        let serve = Serve::start_in(KSTRESS, dir, store_args).await;
        let api: Api<ConfigMap> = Api::namespaced(serve.client().await, "default");
        ledger.verify(&api).await;
        let before = ledger.acknowledged;
        let delay = random_between(Duration::from_millis(100), Duration::from_millis(600));
        let killer = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            serve.kill().await;
        });
        let err = ledger.write_until_failure(&api).await;
        assert!(
            killer.is_finished() || tokio::time::timeout(WAIT, killer).await.is_ok(),
            "round {round}: a write failed before the kill: {err}"
        );
        assert!(
            ledger.acknowledged >= before,
            "round {round}: the ledger never shrinks"
        );
    }
    let serve = Serve::start_in(KSTRESS, dir, store_args).await;
    ledger
        .verify(&Api::namespaced(serve.client().await, "default"))
        .await;
    serve.kill().await;
    ledger
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_of_the_disk_backed_server() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let args = vec!["--data-dir".to_owned(), data.display().to_string()];
    let ledger = kill_the_server_repeatedly(dir.path(), &args, ROUNDS).await;
    assert!(
        ledger.acknowledged > ROUNDS,
        "the writer made progress: {} acknowledged writes",
        ledger.acknowledged
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_of_the_etcd_backed_server_and_of_etcd() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut etcd = TestEtcd::start().await;
    let args = vec!["--etcd-servers".to_owned(), etcd.endpoint()];
    let mut ledger = kill_the_server_repeatedly(dir.path(), &args, ROUNDS / 2).await;

    // Now the server stays up and etcd dies under it: writes fail with a
    // 503 or 504 Status, and succeed again once etcd is back.
    let serve = Serve::start_in(KSTRESS, dir.path(), &args).await;
    let api: Api<ConfigMap> = Api::namespaced(serve.client().await, "default");
    for round in 0..ETCD_ROUNDS {
        ledger.verify(&api).await;
        let delay = random_between(Duration::from_millis(100), Duration::from_millis(600));
        let killer = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            etcd.kill();
            etcd
        });
        let err = ledger.write_until_failure(&api).await;
        etcd = tokio::time::timeout(WAIT, killer)
            .await
            .expect("etcd is killed")
            .expect("the killer ran");
        match &err {
            kube::Error::Api(status) if [503, 504].contains(&status.code) => {}
            other => panic!("round {round}: expected a 503 or 504 Status, got {other}"),
        }
        etcd.restart().await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while api.list(&ListParams::default()).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: the server did not recover once etcd was back"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    ledger.verify(&api).await;
    serve.kill().await;
}

/// Runs `kstress serve` with flags that must be refused, writing its
/// kubeconfig to `kubeconfig`; checks that it fails without a panic, and
/// returns what it printed on stderr.
async fn refused_serve_writing(kubeconfig: &Path, store_args: &[String]) -> String {
    let output = tokio::time::timeout(
        WAIT,
        Command::new(KSTRESS)
            .args(["serve", "--listen", "127.0.0.1:0", "--kubeconfig-out"])
            .arg(kubeconfig)
            .args(store_args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("kstress serve gives up in time")
    .expect("kstress serve runs");
    assert!(
        !output.status.success(),
        "kstress serve must refuse to start"
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// [`refused_serve_writing`] with the kubeconfig in `dir`.
async fn refused_serve(dir: &Path, store_args: &[String]) -> String {
    refused_serve_writing(&dir.join("kubeconfig"), store_args).await
}

#[tokio::test]
async fn an_unwritable_kubeconfig_stops_the_started_server_cleanly() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let stderr = refused_serve_writing(&dir.path().join("missing").join("kubeconfig"), &[]).await;
    assert!(
        stderr.contains("cannot write the kubeconfig") && stderr.contains("missing"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_foreign_data_directory_is_refused_at_start_and_left_alone() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("precious.txt"), "mine").unwrap();
    let stderr = refused_serve(
        dir.path(),
        &["--data-dir".into(), data.display().to_string()],
    )
    .await;
    assert!(
        stderr.contains("--data-dir") && stderr.contains("not a kstress store"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(&data).unwrap().count(),
        1,
        "nothing was written into the directory"
    );
}

#[tokio::test]
async fn an_unreachable_etcd_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let endpoint = format!("http://127.0.0.1:{}", testkit::free_port());
    let stderr = refused_serve(dir.path(), &["--etcd-servers".into(), endpoint.clone()]).await;
    assert!(
        stderr.contains("--etcd-servers") && stderr.contains(&endpoint),
        "{stderr}"
    );
}

#[tokio::test]
async fn data_dir_and_etcd_servers_are_exclusive() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let stderr = refused_serve(
        dir.path(),
        &[
            "--data-dir".into(),
            dir.path().join("data").display().to_string(),
            "--etcd-servers".into(),
            "http://127.0.0.1:2379".into(),
        ],
    )
    .await;
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    assert!(!dir.path().join("data").exists());
}
