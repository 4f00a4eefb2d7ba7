//! The node conformance suite against an embedded cluster: the API server,
//! the scheduler and a process-runtime node with short back-offs, all on
//! loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use apiserver::Server;
use conformance::{OnResult, Options, Regex, SCENARIO_LABEL, ScenarioResult, Status, Timeouts};
use controllers::{ControllerOptions, Controllers};
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, ListParams};
use node::{NodeAgent, NodeConfig, RuntimeKind};

/// Bound on every wait of a scenario; with the node's short back-offs the
/// slowest scenario needs a few seconds.
const WAIT: Duration = Duration::from_secs(60);

struct Cluster {
    server: Server,
    controllers: Controllers,
    node: NodeAgent,
    client: Client,
    _data: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let (server, client) = testkit::start_memory_server().await;
        let controllers = Controllers::start(client.clone(), ControllerOptions::default())
            .await
            .expect("the controllers start");
        let data = tempfile::tempdir().unwrap();
        let mut config = NodeConfig::new("conformance-node", RuntimeKind::Process);
        config.crash_loop_backoff_initial = Duration::from_millis(200);
        config.crash_loop_backoff_max = Duration::from_secs(2);
        config.image_retry_interval = Duration::from_millis(100);
        config.images.pull_backoff_initial = Duration::from_secs(1);
        config.images.pull_backoff_max = Duration::from_secs(10);
        config.serve_logs = false;
        config.data_dir = Some(data.path().to_owned());
        let node = NodeAgent::start(client.clone(), config)
            .await
            .expect("the node starts");
        Cluster {
            server,
            controllers,
            node,
            client,
            _data: data,
        }
    }

    async fn stop(self) {
        self.node.shutdown().await;
        self.controllers.shutdown().await;
        self.server.shutdown().await;
    }
}

fn options(timeout: Duration) -> Options {
    Options {
        parallel: 10,
        timeouts: Timeouts::uniform(timeout),
        target: "embedded".into(),
        ..Options::default()
    }
}

async fn leftover_namespaces(client: &Client) -> Vec<String> {
    let params = ListParams::default().labels(SCENARIO_LABEL);
    Api::<Namespace>::all(client.clone())
        .list(&params)
        .await
        .expect("namespaces list")
        .items
        .into_iter()
        .filter_map(|ns| ns.metadata.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_suite_passes_and_cleans_up() {
    let cluster = Cluster::start().await;
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let progress = Arc::clone(&seen);
    let options = Options {
        on_result: Some(OnResult(Arc::new(move |r: &ScenarioResult| {
            progress.lock().unwrap().push(r.name.clone());
        }))),
        ..options(WAIT)
    };

    let report = conformance::run(cluster.client.clone(), options)
        .await
        .expect("the suite runs");

    let lines: Vec<String> = report.results().iter().map(ToString::to_string).collect();
    assert_eq!(
        report.failed(),
        0,
        "{}\n{}",
        lines.join("\n"),
        report.summary()
    );
    assert_eq!(report.passed(), conformance::scenarios().len());
    assert_eq!(seen.lock().unwrap().len(), report.results().len());
    assert_eq!(
        leftover_namespaces(&cluster.client).await,
        Vec::<String>::new()
    );

    let dir = tempfile::tempdir().unwrap();
    let path = report.write_json(dir.path()).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let scenarios = doc["extra"][conformance::RESULTS_SECTION]["scenarios"]
        .as_array()
        .unwrap();
    assert!(scenarios.iter().all(|s| s["status"] == "PASS"), "{doc}");
    cluster.stop().await;
}

/// An "unpullable" image that pulls fine must fail the bad-image scenario
/// (its init container runs instead of backing off), and the namespace
/// with the still running container goes away.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pullable_bad_image_fails_the_bad_image_scenario() {
    let cluster = Cluster::start().await;
    let options = Options {
        focus: Some(Regex::new("^lifecycle/bad-image-init$").unwrap()),
        bad_image: conformance::DEFAULT_IMAGE.into(),
        timeouts: Timeouts {
            image_pull: Duration::from_secs(5),
            ..Timeouts::uniform(WAIT)
        },
        ..options(WAIT)
    };

    let report = conformance::run(cluster.client.clone(), options)
        .await
        .expect("the scenario runs");

    assert_eq!((report.passed(), report.failed()), (0, 1));
    let failed = report
        .results()
        .iter()
        .find(|r| r.status == Status::Failed)
        .unwrap();
    let message = failed.message.as_deref().unwrap();
    assert!(message.contains("timed out"), "{message}");
    assert!(message.contains("ImagePullBackOff"), "{message}");
    assert!(report.summary().ends_with("0 passed, 1 failed\n"));
    assert!(
        report
            .results()
            .iter()
            .filter(|r| r.status == Status::Skipped)
            .count()
            > 0
    );
    assert_eq!(
        leftover_namespaces(&cluster.client).await,
        Vec::<String>::new()
    );
    cluster.stop().await;
}
