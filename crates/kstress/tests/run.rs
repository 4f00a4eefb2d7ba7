//! `kstress run`: every driver against a real `kstress serve` process (the
//! path a real cluster takes) and the default embedded cluster, checked
//! through results.json and the API.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;
use testkit::Serve;

fn kstress() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kstress"))
}

/// Starts `kstress serve` on a free loopback port.
async fn serve() -> Serve {
    Serve::start(env!("CARGO_BIN_EXE_kstress"), &[]).await
}

/// Runs `kstress run <args>` against `serve` (or the embedded cluster),
/// bounded in time; returns whether it succeeded, its stderr, and the
/// results it wrote.
fn run(serve: Option<&Serve>, args: &[&str], output: &Path) -> (bool, String, Value) {
    let mut command = kstress();
    command.arg("run").args(args).arg("--output").arg(output);
    if let Some(serve) = serve {
        command
            .arg("--kubeconfig")
            .arg(serve.kubeconfig())
            .arg("--yes");
    }
    let result = command
        .stdin(Stdio::null())
        .output()
        .expect("kstress run starts");
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    let path = output.join("results.json");
    let results = std::fs::read_to_string(&path)
        .map(|text| serde_json::from_str(&text).expect("results.json is JSON"))
        .unwrap_or_else(|err| panic!("no {} ({err}); stderr:\n{stderr}", path.display()));
    (result.status.success(), stderr, results)
}

/// Checks a class: requests were made, none failed, percentiles ordered.
fn assert_clean_class(results: &Value, class: &str) {
    let summary = &results["operations"][class];
    let count = summary["count"].as_u64().expect("count");
    assert!(count > 0, "no {class} requests: {summary}");
    assert_eq!(summary["errors"], 0, "{class} failed: {summary}");
    let percentiles: Vec<f64> = [
        "p50_ms", "p90_ms", "p99_ms", "p999_ms", "p9999_ms", "max_ms",
    ]
    .iter()
    .map(|key| summary[*key].as_f64().expect("a percentile"))
    .collect();
    assert!(
        percentiles.windows(2).all(|pair| pair[0] <= pair[1]),
        "{class} percentiles out of order: {percentiles:?}"
    );
    assert!(percentiles[0] > 0.0, "{class} p50 is zero");
}

async fn assert_namespace_gone(serve: &Serve, results: &Value) {
    let name = results["extra"]["namespace"]
        .as_str()
        .expect("results name the namespace");
    let namespaces: Api<Namespace> = Api::all(serve.client().await);
    let found = namespaces.get_opt(name).await.expect("namespace lookup");
    assert!(found.is_none(), "namespace {name} is still there");
}

#[tokio::test(flavor = "multi_thread")]
async fn pod_stress_counts_every_class_and_removes_its_namespace() {
    let serve = serve().await;
    let out = tempfile::tempdir().expect("temp dir");
    let (ok, stderr, results) = run(
        Some(&serve),
        &["pod-stress", "--duration", "3s", "--min-nodes", "0"],
        out.path(),
    );
    assert!(ok, "pod-stress failed:\n{stderr}");
    assert_eq!(results["schema"], "kstress.results/v1");
    assert_eq!(results["scenario"], "pod-stress");
    assert_clean_class(&results, "get");
    assert_clean_class(&results, "list");
    // Concurrent updates of one pod conflict by design; those are retried
    // and are the only write failures allowed.
    let write = &results["operations"]["write"];
    assert!(write["count"].as_u64().expect("count") > 0);
    let codes = write["errors_by_code"].as_object().expect("codes");
    assert!(
        codes.keys().all(|code| code == "409"),
        "write errors: {codes:?}"
    );
    assert_eq!(
        write["buckets"]
            .as_array()
            .expect("reference buckets")
            .len(),
        14
    );
    assert!(
        results["timeseries"]["operations"]["write"]
            .as_array()
            .is_some_and(|points| !points.is_empty())
    );
    assert_namespace_gone(&serve, &results).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pod_stress_with_a_fixed_number_of_steps_stops_when_done() {
    let serve = serve().await;
    let out = tempfile::tempdir().expect("temp dir");
    let (ok, stderr, results) = run(
        Some(&serve),
        &[
            "pod-stress",
            "--duration",
            "60s",
            "--objects",
            "50",
            "--list-batch-limit",
            "-1",
            "--min-nodes",
            "0",
        ],
        out.path(),
    );
    assert!(ok, "pod-stress failed:\n{stderr}");
    assert_eq!(results["extra"]["pod_stress"]["steps"], 50);
    assert_eq!(results["extra"]["stop_reason"], "all work done");
    assert_eq!(results["operations"]["list"]["count"], 0, "lists disabled");
    assert!(results["duration_s"].as_f64().expect("duration") < 60.0);
    assert_namespace_gone(&serve, &results).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn results_record_the_options_that_ran_defaults_included() {
    let serve = serve().await;
    let out = tempfile::tempdir().expect("temp dir");
    let (ok, stderr, results) = run(
        Some(&serve),
        &[
            "pod-stress",
            "--duration",
            "30s",
            "--objects",
            "20",
            "--min-nodes",
            "0",
            "--keep",
        ],
        out.path(),
    );
    assert!(ok, "pod-stress failed:\n{stderr}");
    let config = &results["config"];
    let prefix = config["key_prefix"].as_str().expect("the generated prefix");
    let namespace = results["extra"]["namespace"].as_str().expect("namespace");
    let pods: Api<Pod> = Api::namespaced(serve.client().await, namespace);
    let names: Vec<String> = pods
        .list_metadata(&ListParams::default())
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter_map(|pod| pod.metadata.name)
        .collect();
    assert!(!names.is_empty(), "pod-stress created no pods");
    assert!(
        names.iter().all(|name| name.starts_with(prefix)),
        "results.json records prefix {prefix}, the run created {names:?}"
    );
    assert_eq!(config["objects"], 20);
    assert_eq!(config["min_nodes"], 0);

    let churn_out = tempfile::tempdir().expect("temp dir");
    let (ok, stderr, results) = run(
        Some(&serve),
        &[
            "churn",
            "--duration",
            "1s",
            "--rate",
            "20",
            "--arrivals",
            "poisson",
        ],
        churn_out.path(),
    );
    assert!(ok, "churn failed:\n{stderr}");
    let config = &results["config"];
    assert!(config["seed"].is_u64(), "no random seed recorded: {config}");
    assert_eq!(config["resource"], "configmaps");
    assert_eq!(config["object_size"], 1024);
    assert_eq!(config["arrivals"], "poisson");
}

#[tokio::test(flavor = "multi_thread")]
async fn churn_keeps_its_rate_and_reports_start_lag() {
    let serve = serve().await;
    let out = tempfile::tempdir().expect("temp dir");
    let (ok, stderr, results) = run(
        Some(&serve),
        &[
            "churn",
            "--duration",
            "4s",
            "--rate",
            "100",
            "--lifetime",
            "1s",
            "--arrivals",
            "constant",
        ],
        out.path(),
    );
    assert!(ok, "churn failed:\n{stderr}");
    assert_clean_class(&results, "create");
    assert_clean_class(&results, "delete");
    let open_loop = &results["open_loop"];
    assert_eq!(open_loop["target_rate_per_s"], 100.0);
    let achieved = open_loop["achieved_rate_per_s"]
        .as_f64()
        .expect("achieved rate");
    assert!(
        (80.0..120.0).contains(&achieved),
        "achieved {achieved}/s of 100/s"
    );
    assert!(
        open_loop["start_lag"]["create"]["count"]
            .as_u64()
            .expect("lag count")
            > 0
    );
    let churn = &results["extra"]["churn"];
    assert!(churn["deleted"].as_u64().expect("deleted") > 0, "{churn}");
    assert_namespace_gone(&serve, &results).await;
}

/// `--pod-latency` on a driver: every pod churn creates on the embedded
/// cluster is measured, none lost, with per-pod records; pods churn
/// deletes before they are Ready are counted apart, not as lost.
#[test]
fn churned_pods_are_measured_from_creation_to_ready() {
    let out = tempfile::tempdir().expect("temp dir");
    let (ok, stderr, results) = run(
        None,
        &[
            "churn",
            "--resource",
            "pods",
            "--duration",
            "3s",
            "--rate",
            "20",
            "--lifetime",
            "1m",
            "--pod-latency-records",
        ],
        out.path(),
    );
    assert!(
        ok,
        "churn failed:
{stderr}"
    );
    let created = results["operations"]["create"]["count"]
        .as_u64()
        .expect("creates");
    let pods = &results["pod_latency"];
    assert!(created > 0);
    assert_eq!(
        pods["pods"], created,
        "every created pod is measured: {pods}"
    );
    assert_eq!(pods["ready"], created, "{pods}");
    assert_eq!(pods["groups"]["churn"]["pods"], created, "{pods}");
    assert_eq!(
        pods["records"].as_array().map(Vec::len),
        Some(created as usize),
        "{pods}"
    );
    for transition in ["PodScheduled", "Ready", "Running"] {
        let q = &pods["transitions"][transition];
        assert_eq!(q["count"], created, "{transition}: {pods}");
        assert!(q["p50_ms"].as_f64() <= q["p99_ms"].as_f64(), "{q}");
    }
}

/// The server-side latency read from /metrics agrees with the client's
/// own histogram of the same calls within the server's bucket resolution,
/// and counts at least the calls the client made.
#[test]
fn api_responsiveness_agrees_with_the_client_within_bucket_resolution() {
    let out = tempfile::tempdir().expect("temp dir");
    let (ok, stderr, results) = run(
        None,
        &[
            "get",
            "--workers",
            "4",
            "--resource",
            "pods",
            "--duration",
            "3s",
            "--api-responsiveness",
        ],
        out.path(),
    );
    assert!(ok, "get failed:\n{stderr}");
    let client = &results["operations"]["get"];
    let calls = results["api_responsiveness"]["calls"]
        .as_array()
        .expect("calls");
    let server = calls
        .iter()
        .find(|c| c["verb"] == "GET" && c["resource"] == "pods" && c["scope"] == "resource")
        .unwrap_or_else(|| panic!("GET pods is measured: {calls:?}"));
    assert!(
        server["count"].as_u64() >= client["count"].as_u64(),
        "server {server} client {client}"
    );
    // kube-apiserver's bucket bounds, in milliseconds.
    const BOUNDS: [f64; 9] = [5.0, 25.0, 50.0, 100.0, 200.0, 400.0, 600.0, 800.0, 1000.0];
    let client_p99 = client["p99_ms"].as_f64().expect("client p99");
    let server_p99 = server["p99_ms"].as_f64().expect("server p99");
    let upper = BOUNDS
        .iter()
        .copied()
        .find(|b| *b >= client_p99)
        .unwrap_or(f64::INFINITY);
    assert!(
        server_p99 <= upper,
        "server p99 {server_p99} ms beyond the bucket of the client's {client_p99} ms"
    );
    assert_eq!(server["slo_ms"], 1000.0, "{server}");
    assert!(
        results["gates"]
            .as_array()
            .expect("gates")
            .iter()
            .all(|g| g["passed"] == true),
        "{}",
        results["gates"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn thrash_cycles_create_update_delete() {
    let serve = serve().await;
    let out = tempfile::tempdir().expect("temp dir");
    let (ok, stderr, results) = run(
        Some(&serve),
        &[
            "thrash",
            "--duration",
            "3s",
            "--workers",
            "4",
            "--resource",
            "secrets",
        ],
        out.path(),
    );
    assert!(ok, "thrash failed:\n{stderr}");
    for class in ["create", "update", "delete"] {
        assert_clean_class(&results, class);
    }
    assert!(
        results["extra"]["thrash"]["cycles"]
            .as_u64()
            .expect("cycles")
            > 0
    );
    assert_namespace_gone(&serve, &results).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_whose_every_write_fails_fails_its_slo_and_exits_non_zero() {
    let serve = serve().await;
    let out = tempfile::tempdir().expect("temp dir");
    // The server refuses every object of this template with a 422.
    let template = out.path().join("invalid.yaml");
    std::fs::write(
        &template,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    \"not a label!\": x\n",
    )
    .expect("template written");
    let template = template.to_str().expect("UTF-8 path");
    let (ok, stderr, results) = run(
        Some(&serve),
        &[
            "thrash",
            "--duration",
            "2s",
            "--workers",
            "2",
            "--template",
            template,
        ],
        out.path(),
    );
    assert!(!ok, "a run whose every create failed must fail:\n{stderr}");
    assert!(
        stderr.contains("every create request failed") && stderr.contains("422"),
        "stderr names the class and the code:\n{stderr}"
    );
    let create = &results["operations"]["create"];
    assert_eq!(create["count"], create["errors"], "{create}");
    let check = results["slo"]
        .as_array()
        .expect("SLO checks")
        .iter()
        .find(|check| check["class"] == "create")
        .expect("create has an SLO check");
    assert_eq!(check["met"], false, "{check}");
    assert_eq!(check["error_ratio"], 1.0, "{check}");
    assert_namespace_gone(&serve, &results).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_namespace_the_run_did_not_create_keeps_only_what_was_there() {
    let serve = serve().await;
    let client = serve.client().await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let run_configmaps = ListParams::default().labels("kstress.io/run");
    let in_default = ["--namespace", "default", "--skip-namespace-creation"];
    // Objects that live longer than the run are the clean-up's to delete.
    let churn = [
        "churn",
        "--duration",
        "2s",
        "--rate",
        "20",
        "--lifetime",
        "1h",
    ];

    let out = tempfile::tempdir().expect("temp dir");
    let (ok, stderr, results) = run(
        Some(&serve),
        &[&churn[..], &in_default].concat(),
        out.path(),
    );
    assert!(ok, "churn failed:\n{stderr}");
    assert!(results["operations"]["create"]["count"].as_u64() > Some(0));
    let left = configmaps
        .list_metadata(&run_configmaps)
        .await
        .expect("list");
    assert!(
        left.items.is_empty(),
        "churn left {} configmaps",
        left.items.len()
    );

    let out = tempfile::tempdir().expect("temp dir");
    let pod_stress = ["pod-stress", "--duration", "2s", "--min-nodes", "0"];
    let (ok, stderr, _) = run(
        Some(&serve),
        &[&pod_stress[..], &in_default].concat(),
        out.path(),
    );
    assert!(ok, "pod-stress failed:\n{stderr}");
    let left = pods
        .list_metadata(&ListParams::default())
        .await
        .expect("list");
    assert!(
        left.items.is_empty(),
        "pod-stress left {} pods",
        left.items.len()
    );

    let out = tempfile::tempdir().expect("temp dir");
    let (ok, stderr, _) = run(
        Some(&serve),
        &[&churn[..], &in_default, &["--keep"]].concat(),
        out.path(),
    );
    assert!(ok, "churn --keep failed:\n{stderr}");
    assert!(
        stderr.contains("kept the run's objects (kstress.io/run="),
        "{stderr}"
    );
    let kept = configmaps
        .list_metadata(&run_configmaps)
        .await
        .expect("list");
    assert!(!kept.items.is_empty(), "--keep kept nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_must_be_of_the_resource_s_kind_and_is_padded_to_the_object_size() {
    let serve = serve().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let pod = dir.path().join("pod.yaml");
    std::fs::write(
        &pod,
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: c\n    image: busybox\n",
    )
    .expect("template written");
    let result = kstress()
        .args(["run", "churn", "--duration", "2s", "--template"])
        .arg(&pod)
        .arg("--kubeconfig")
        .arg(serve.kubeconfig())
        .arg("--yes")
        .stdin(Stdio::null())
        .output()
        .expect("kstress runs");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        !result.status.success(),
        "a Pod template wrote configmaps:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "template {} is a Pod (v1) object, but --resource configmaps writes ConfigMap (v1) \
             objects",
            pod.display()
        )),
        "{stderr}"
    );

    let configmap = dir.path().join("configmap.yaml");
    std::fs::write(&configmap, "kind: ConfigMap\ndata:\n  greeting: hello\n")
        .expect("template written");
    let out = tempfile::tempdir().expect("temp dir");
    let (ok, stderr, results) = run(
        Some(&serve),
        &[
            "churn",
            "--duration",
            "2s",
            "--rate",
            "20",
            "--lifetime",
            "1h",
            "--keep",
            "--object-size",
            "10KiB",
            "--template",
            configmap.to_str().expect("UTF-8 path"),
        ],
        out.path(),
    );
    assert!(ok, "churn failed:\n{stderr}");
    let namespace = results["extra"]["namespace"].as_str().expect("namespace");
    let configmaps: Api<ConfigMap> = Api::namespaced(serve.client().await, namespace);
    let written = configmaps.list(&ListParams::default()).await.expect("list");
    assert!(!written.items.is_empty(), "churn wrote nothing");
    for object in written.items {
        let payload = object
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get("kstress.io/payload"))
            .map(String::len);
        assert_eq!(payload, Some(10 * 1024), "{:?}", object.metadata);
        let data = object.data.expect("the template's data");
        assert_eq!(data["greeting"], "hello");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_latency_measures_every_event_type() {
    let serve = serve().await;
    let out = tempfile::tempdir().expect("temp dir");
    let (ok, stderr, results) = run(
        Some(&serve),
        &[
            "watch-latency",
            "--duration",
            "4s",
            "--watchers",
            "2",
            "--driver",
            "thrash",
            "--workers",
            "2",
        ],
        out.path(),
    );
    assert!(ok, "watch-latency failed:\n{stderr}");
    for class in ["notify-added", "notify-modified", "notify-deleted", "queue"] {
        assert_clean_class(&results, class);
    }
    let events = &results["extra"]["watch_latency"]["events"];
    let created = results["operations"]["create"]["count"]
        .as_u64()
        .expect("creates");
    // Each of the two informers sees each create.
    assert!(
        events["added"].as_u64().expect("added") >= created,
        "{events} for {created} creates"
    );
    assert_namespace_gone(&serve, &results).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_loop_reestablishes_time_limited_watches() {
    let serve = serve().await;
    let out = tempfile::tempdir().expect("temp dir");
    let (ok, stderr, results) = run(
        Some(&serve),
        &[
            "watch-loop",
            "--duration",
            "4s",
            "--clients",
            "3",
            "--watch-timeout",
            "1s",
            "--rate",
            "50",
        ],
        out.path(),
    );
    assert!(ok, "watch-loop failed:\n{stderr}");
    assert_clean_class(&results, "watch-establish");
    let seen = &results["extra"]["watch_loop"];
    // 1 s watches over 4 s: every client re-established its watch.
    assert!(seen["watches"].as_u64().expect("watches") > 3, "{seen}");
    assert!(seen["events"].as_u64().expect("events") > 0, "{seen}");
    assert_namespace_gone(&serve, &results).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_pages_namespaced_and_cluster_wide() {
    let serve = serve().await;
    let out = tempfile::tempdir().expect("temp dir");
    let (ok, stderr, results) = run(
        Some(&serve),
        &[
            "list",
            "--duration",
            "3s",
            "--clients",
            "2",
            "--objects",
            "120",
            "--limit",
            "50",
        ],
        out.path(),
    );
    assert!(ok, "list failed:\n{stderr}");
    assert_clean_class(&results, "seed-create");
    assert_clean_class(&results, "list-namespaced");
    assert_clean_class(&results, "list-cluster");
    let list = &results["extra"]["list"];
    assert_eq!(list["seeded"], 120);
    // Seeding takes a fraction of the run: its rate is over its own time
    // (at least a second), not over the run's three seconds.
    let seed = &results["operations"]["seed-create"];
    assert!(
        seed["rate_per_s"].as_f64().expect("rate")
            > 120.0 / results["duration_s"].as_f64().expect("duration") * 1.2,
        "seed rate over the whole run: {seed}"
    );
    // 120 objects in pages of 50: three pages per namespaced pass.
    assert!(list["pages"].as_u64().expect("pages") >= 3, "{list}");
    let slo = results["slo"].as_array().expect("SLO checks");
    assert!(slo.iter().any(|check| check["class"] == "list-cluster"));
    assert_namespace_gone(&serve, &results).await;
}

#[test]
fn the_embedded_default_runs_pod_stress_and_writes_a_report() {
    let out = tempfile::tempdir().expect("temp dir");
    let (ok, stderr, results) = run(
        None,
        &["pod-stress", "--duration", "2s", "--report", "html"],
        out.path(),
    );
    assert!(ok, "pod-stress failed:\n{stderr}");
    assert_eq!(results["target"], "embedded");
    assert_clean_class(&results, "get");
    let html = std::fs::read_to_string(out.path().join("report.html")).expect("report.html");
    assert!(html.contains("<svg"), "the report has charts");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_dies_mid_run_is_counted_and_results_are_still_written() {
    let serve = serve().await;
    let client = serve.client().await;
    let out = tempfile::tempdir().expect("temp dir");
    let mut command = kstress();
    command
        .args([
            "run",
            "churn",
            "--duration",
            "60s",
            "--rate",
            "50",
            "--max-error-seconds",
            "2",
            "--yes",
        ])
        .arg("--kubeconfig")
        .arg(serve.kubeconfig())
        .arg("--output")
        .arg(out.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = command.spawn().expect("kstress run starts");
    // Once the run has written objects, take the server away for good.
    let configmaps: Api<ConfigMap> = Api::all(client);
    let written = async {
        loop {
            let params = ListParams::default().labels("kstress.io/run");
            if configmaps
                .list_metadata(&params)
                .await
                .is_ok_and(|list| !list.items.is_empty())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(testkit::WAIT, written)
        .await
        .expect("the run writes objects");
    serve.kill().await;
    let result = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("kstress run ends");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        !result.status.success(),
        "a run whose server died must fail"
    );
    assert!(
        stderr.contains("every request failed"),
        "stderr names the reason:\n{stderr}"
    );
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("results.json")).expect("results.json written"),
    )
    .expect("JSON");
    let create = &results["operations"]["create"];
    assert!(create["count"].as_u64().expect("count") > create["errors"].as_u64().expect("errors"));
    assert!(create["errors"].as_u64().expect("errors") > 0, "{create}");
    assert!(results["duration_s"].as_f64().expect("duration") < 60.0);
}

#[test]
fn bad_input_ends_with_one_clear_line() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["pod-stress", "--object-size", "0"],
            "--object-size must be positive",
        ),
        (&["pod-stress", "--duration", "soon"], "invalid duration"),
        (
            &["pod-stress", "--object-size", "2MiB"],
            "--object-size 2097152 bytes does not fit the API server's object limit",
        ),
        (
            &["churn", "--object-size", "1536KiB"],
            "--object-size 1572864 bytes does not fit",
        ),
        (
            &["churn", "--object-size", "300KiB", "--template", "t.yaml"],
            "--object-size 307200 bytes cannot pad a --template",
        ),
        (
            &["pod-stress", "--object-size", "10parsecs"],
            "unknown unit",
        ),
        (
            &["churn", "--resource", "flunders", "--duration", "1s"],
            "does not serve a resource called \"flunders\"",
        ),
        (
            &["churn", "--rate", "0"],
            "--rate must be a positive number",
        ),
        (
            &["watch-latency", "--driver", "thrash", "--rate", "300"],
            "--rate does not apply to --driver thrash",
        ),
        (
            &[
                "watch-loop",
                "--driver",
                "none",
                "--workers",
                "3",
                "--seed",
                "1",
            ],
            "--seed, --workers do not apply to --driver none",
        ),
        (
            &["watch-loop", "--driver", "churn", "--workers", "3"],
            "--workers does not apply to --driver churn",
        ),
        (
            &["churn", "--max-error-seconds", "0"],
            "invalid value '0' for '--max-error-seconds <MAX_ERROR_SECONDS>'",
        ),
        (
            &["churn", "--max-requests-inflight", "0"],
            "invalid value '0' for '--max-requests-inflight <MAX_REQUESTS_INFLIGHT>'",
        ),
        (
            &["pod-stress", "--namespace", "Bad_Name", "--duration", "1s"],
            "cannot create namespace Bad_Name: Namespace \"Bad_Name\" is invalid",
        ),
        (
            &[
                "pod-stress",
                "--namespace",
                "absent",
                "--skip-namespace-creation",
            ],
            "cannot use namespace absent: namespaces \"absent\" not found (404 NotFound)",
        ),
    ];
    for (args, expected) in cases {
        let result = kstress()
            .arg("run")
            .args(*args)
            .stdin(Stdio::null())
            .output()
            .expect("kstress runs");
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
        let lines = stderr
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with("For more information"))
            .count();
        assert_eq!(lines, 1, "{args:?}: one line: {stderr}");
    }
}

/// Writes a kubeconfig naming a loopback port nobody listens on.
fn unreachable_kubeconfig(dir: &Path) -> std::path::PathBuf {
    let kubeconfig = dir.join("kubeconfig");
    let port = testkit::free_port();
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n"
        ),
    )
    .expect("kubeconfig written");
    kubeconfig
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = unreachable_kubeconfig(dir.path());
    let result = kstress()
        .args(["run", "pod-stress", "--yes", "--kubeconfig"])
        .arg(&kubeconfig)
        .stdin(Stdio::null())
        .output()
        .expect("kstress runs");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(stderr.contains("cannot reach the API server"), "{stderr}");
}

/// The stderr of `kstress run pod-stress` against a server that is not
/// there, with debug logs on so that it logs; with `terminal`, stderr is the
/// terminal of `script(1)`.
fn logs(terminal: bool, no_color: Option<&str>) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = unreachable_kubeconfig(dir.path());
    let kstress = env!("CARGO_BIN_EXE_kstress");
    let args = format!("run pod-stress --yes --kubeconfig {}", kubeconfig.display());
    let mut command = if terminal {
        let mut script = Command::new("script");
        script.args(["-qec", &format!("{kstress} {args}"), "/dev/null"]);
        script
    } else {
        let mut direct = Command::new(kstress);
        direct.args(args.split(' '));
        direct
    };
    command.env("RUST_LOG", "debug").env_remove("NO_COLOR");
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    let result = command.stdin(Stdio::null()).output().expect("kstress runs");
    assert!(
        !result.status.success(),
        "there is no server to run against"
    );
    // script(1) passes the terminal's output on through its stdout.
    let output = if terminal {
        result.stdout
    } else {
        result.stderr
    };
    let text = String::from_utf8_lossy(&output).into_owned();
    assert!(text.contains("DEBUG"), "kstress logged:\n{text}");
    text
}

#[test]
fn logs_are_coloured_only_on_a_terminal_and_never_with_no_color() {
    assert!(!logs(false, None).contains('\x1b'), "colour in a pipe");
    assert!(
        logs(true, None).contains("\x1b["),
        "no colour on a terminal"
    );
    assert!(
        !logs(true, Some("1")).contains('\x1b'),
        "colour despite NO_COLOR"
    );
    assert!(
        logs(true, Some("")).contains("\x1b["),
        "an empty NO_COLOR is unset"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn get_reads_one_object_from_many_workers() {
    let serve = serve().await;
    let out = tempfile::tempdir().expect("temp dir");
    let (ok, stderr, results) = run(
        Some(&serve),
        &["get", "--duration", "2s", "--workers", "8"],
        out.path(),
    );
    assert!(ok, "get failed:\n{stderr}");
    assert_clean_class(&results, "get");
    assert_namespace_gone(&serve, &results).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_output_path_that_is_a_file_fails_before_the_run_starts() {
    let serve = serve().await;
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_kstress"))
            .args([
                "run",
                "churn",
                "--duration",
                "1m",
                "--namespace",
                "output-check",
                "--yes",
            ])
            .arg("--kubeconfig")
            .arg(serve.kubeconfig())
            .arg("--output")
            .arg(file.path())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("kstress run fails within seconds, before its load starts")
    .expect("kstress run starts");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        !result.status.success(),
        "a run with no output directory ran"
    );
    assert!(
        stderr.contains(&file.path().display().to_string()),
        "the error names the path:\n{stderr}"
    );
    let namespaces: Api<Namespace> = Api::all(serve.client().await);
    let found = namespaces
        .get_opt("output-check")
        .await
        .expect("namespace lookup");
    assert!(found.is_none(), "the run created its namespace");
}

/// Starts a churn run against `serve`, sends it `signal` once it has
/// written objects, and checks that it ends as an interrupted run does: exit status
/// 0, results.json written with the reason, and the namespace removed.
async fn assert_signal_ends_the_run_gracefully(signal: rustix::process::Signal, namespace: &str) {
    let serve = serve().await;
    let out = tempfile::tempdir().expect("temp dir");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kstress"))
        .args([
            "run",
            "churn",
            "--duration",
            "10m",
            "--rate",
            "50",
            "--lifetime",
            "1s",
            "--namespace",
            namespace,
            "--yes",
        ])
        .arg("--kubeconfig")
        .arg(serve.kubeconfig())
        .arg("--output")
        .arg(out.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kstress run starts");
    let configmaps: Api<ConfigMap> = Api::namespaced(serve.client().await, namespace);
    testkit::wait_until(
        &format!("the run to write objects in {namespace}"),
        || async {
            configmaps
                .list_metadata(&ListParams::default())
                .await
                .is_ok_and(|list| !list.items.is_empty())
                .then_some(())
        },
    )
    .await;
    let pid = rustix::process::Pid::from_raw(
        i32::try_from(child.id().expect("the run is running")).expect("pid"),
    )
    .expect("a valid pid");
    rustix::process::kill_process(pid, signal).expect("signal sent");
    let result = tokio::time::timeout(testkit::WAIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the run did not end within {:?} of {signal:?}",
                testkit::WAIT
            )
        })
        .expect("kstress run ends");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(
        result.status.code(),
        Some(0),
        "an interrupted run exits 0:\n{stderr}"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("results.json")).expect("results.json written"),
    )
    .expect("JSON");
    assert_eq!(results["extra"]["stop_reason"], "interrupted");
    assert!(
        results["operations"]["create"]["count"]
            .as_u64()
            .expect("count")
            > 0
    );
    assert_namespace_gone(&serve, &results).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_a_run_like_ctrl_c() {
    assert_signal_ends_the_run_gracefully(rustix::process::Signal::TERM, "sigterm-run").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_ends_a_run_gracefully() {
    assert_signal_ends_the_run_gracefully(rustix::process::Signal::INT, "sigint-run").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_without_a_terminal_prints_a_progress_line_every_ten_seconds() {
    let serve = serve().await;
    let out = tempfile::tempdir().expect("temp dir");
    let (ok, stderr, _) = run(
        Some(&serve),
        &["get", "--duration", "11s", "--workers", "2"],
        out.path(),
    );
    assert!(ok, "get failed:\n{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("progress "))
        .collect();
    assert_eq!(lines.len(), 1, "one line after 10 s:\n{stderr}");
    assert!(
        lines[0].starts_with("progress 10s: ") && lines[0].contains(" requests  "),
        "{}",
        lines[0]
    );
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "no terminal control characters"
    );
}
