//! `kstress scenario`: kube-burner job configurations run against a real
//! `kstress serve` process and the embedded cluster, checked object by
//! object through the API and through results.json.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;
use testkit::Serve;

fn kstress() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kstress"))
}

/// Runs `kstress scenario <args>`, bounded by the scenario's own timeout;
/// returns whether it succeeded, its stdout and its stderr.
fn scenario(args: &[&str]) -> (bool, String, String) {
    let output = kstress()
        .arg("scenario")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("kstress starts");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
}

fn results(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json");
    serde_json::from_str(&text).expect("results.json is JSON")
}

const CREATE_PATCH_READ: &str = r#"
global:
  gc: false
jobs:
  - name: kb-create
    jobIterations: {{ .ITERATIONS }}
    iterationsPerNamespace: 2
    namespace: kb-test
    namespaceLabels: {team: scale}
    qps: 50
    burst: 10
    waitWhenFinished: true
    maxWaitTimeout: 2m
    churnConfig:
      cycles: 1
      percent: 50
      delay: 0s
    objects:
      - objectTemplate: templates/configmap.yml
        replicas: 2
        inputVars:
          color: blue
      - objectTemplate: templates/deployment.yml
        replicas: 1
  - name: kb-patch-merge
    jobType: patch
    objects:
      - kind: ConfigMap
        labelSelector: {kube-burner.io/job: kb-create}
        objectTemplate: templates/merge.yml
        patchType: application/merge-patch+json
  - name: kb-patch-json
    jobType: patch
    objects:
      - kind: Deployment
        apiVersion: apps/v1
        labelSelector: {kube-burner-job: kb-create}
        objectTemplate: templates/json-patch.json
        patchType: application/json-patch+json
  - name: kb-patch-strategic
    jobType: patch
    objects:
      - kind: Deployment
        apiVersion: apps/v1
        labelSelector: {kube-burner.io/job: kb-create}
        objectTemplate: templates/strategic.yml
        patchType: application/strategic-merge-patch+json
  - name: kb-read
    jobType: read
    jobIterations: 2
    objects:
      - kind: ConfigMap
        labelSelector: {kube-burner.io/job: kb-create}
"#;

const TEMPLATES: &[(&str, &str)] = &[
    (
        "templates/configmap.yml",
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: cm-{{ .Iteration }}-{{ .Replica }}
data:
  color: {{ .color }}
  job: {{ .JobName }}
  iteration: "{{ printf "%03d" .Iteration }}"
"#,
    ),
    (
        "templates/deployment.yml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-{{ .Iteration }}
spec:
  replicas: 1
  selector:
    matchLabels: {app: web-{{ .Iteration }}}
  template:
    metadata:
      labels: {app: web-{{ .Iteration }}}
    spec:
      containers:
        - name: web
          image: registry.k8s.io/pause:3.10
"#,
    ),
    (
        "templates/merge.yml",
        "metadata:\n  labels:\n    patched: merge\n",
    ),
    (
        "templates/json-patch.json",
        r#"[{"op": "add", "path": "/metadata/annotations", "value": {"patched": "json-{{ .Iteration }}"}}]"#,
    ),
    (
        "templates/strategic.yml",
        "spec:\n  template:\n    spec:\n      containers:\n        - name: sidecar\n          image: registry.k8s.io/pause:3.10\n",
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn a_kube_burner_file_creates_patches_reads_and_deletes_object_by_object() {
    let serve = Serve::start(env!("CARGO_BIN_EXE_kstress"), &[]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), TEMPLATES);
    write(dir.path(), &[("kb.yml", CREATE_PATCH_READ)]);
    let out = dir.path().join("out");
    let file = dir.path().join("kb.yml");
    let kubeconfig = serve.kubeconfig().to_str().expect("utf-8 path").to_owned();
    let (ok, _, stderr) = scenario(&[
        "run",
        file.to_str().expect("utf-8 path"),
        "--set",
        "ITERATIONS=3",
        "--kubeconfig",
        &kubeconfig,
        "--yes",
        "--output",
        out.to_str().expect("utf-8 path"),
    ]);
    assert!(ok, "the scenario failed:\n{stderr}");

    let client = serve.client().await;
    // Three iterations, two per namespace: kb-test-0 and kb-test-1.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ours = namespaces
        .list(&ListParams::default().labels("kube-burner.io/job=kb-create"))
        .await
        .expect("list namespaces");
    let mut names: Vec<String> = ours
        .items
        .iter()
        .filter_map(|ns| ns.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["kb-test-0", "kb-test-1"]);
    assert!(ours.items.iter().all(|ns| {
        ns.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("team"))
            .map(String::as_str)
            == Some("scale")
    }));

    let config_maps: Api<ConfigMap> = Api::all(client.clone());
    let config_maps = config_maps
        .list(&ListParams::default().labels("kube-burner.io/job=kb-create"))
        .await
        .expect("list configmaps")
        .items;
    let mut found: BTreeMap<String, (String, ConfigMap)> = BTreeMap::new();
    for cm in config_maps {
        found.insert(
            cm.metadata.name.clone().expect("named"),
            (cm.metadata.namespace.clone().expect("namespaced"), cm),
        );
    }
    assert_eq!(
        found.len(),
        6,
        "3 iterations x 2 replicas: {:?}",
        found.keys()
    );
    for iteration in 0..3 {
        for replica in 1..=2 {
            let (namespace, cm) = &found[&format!("cm-{iteration}-{replica}")];
            assert_eq!(*namespace, format!("kb-test-{}", iteration / 2));
            let data = cm.data.as_ref().expect("data");
            assert_eq!(data["color"], "blue");
            assert_eq!(data["job"], "kb-create");
            assert_eq!(data["iteration"], format!("{iteration:03}"));
            let labels = cm.metadata.labels.as_ref().expect("labels");
            assert_eq!(
                labels["kube-burner.io/job-iteration"],
                iteration.to_string()
            );
            assert_eq!(labels["kube-burner.io/replica"], replica.to_string());
            assert_eq!(labels["kube-burner.io/index"], "0");
            assert_eq!(labels["kube-burner-job"], "kb-create");
            assert_eq!(
                labels["patched"], "merge",
                "the merge patch job labelled it"
            );
        }
    }

    let deployments: Api<Deployment> = Api::all(client.clone());
    let deployments = deployments
        .list(&ListParams::default().labels("kube-burner.io/job=kb-create"))
        .await
        .expect("list deployments")
        .items;
    assert_eq!(deployments.len(), 3);
    for deployment in &deployments {
        let annotations = deployment
            .metadata
            .annotations
            .as_ref()
            .expect("annotations");
        assert_eq!(
            annotations["patched"], "json-0",
            "the JSON patch job annotated it"
        );
        let spec = deployment.spec.as_ref().expect("spec");
        let pod_labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref())
            .expect("pod labels");
        assert_eq!(
            pod_labels["kube-burner.io/job"], "kb-create",
            "pods carry the job's labels"
        );
        let containers: Vec<&str> = spec
            .template
            .spec
            .as_ref()
            .expect("pod spec")
            .containers
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        // Without $setElementOrder, a strategic merge puts the patch's
        // elements first, as kube-apiserver does.
        assert_eq!(
            containers,
            ["sidecar", "web"],
            "the strategic merge patch added a container"
        );
        let ready = deployment.status.as_ref().and_then(|s| s.ready_replicas);
        assert!(
            ready.is_some(),
            "waitWhenFinished waited for {:?}",
            deployment.metadata.name
        );
    }

    let results = results(&out);
    assert_eq!(results["scenario"], "kb");
    assert_eq!(
        results["config"]["config"]["jobs"][0]["jobIterations"], 3,
        "the rendered file is recorded"
    );
    let operations = &results["operations"];
    // Churning 50% of two namespaces recreates kb-test-0: iterations 0 and
    // 1, two configmaps each.
    assert_eq!(
        operations["kb-create: create ConfigMap"]["count"], 10,
        "6 creates, then 4 again after churn"
    );
    assert_eq!(operations["kb-create: delete Namespace"]["count"], 1);
    assert_eq!(operations["kb-patch-merge: patch ConfigMap"]["count"], 6);
    assert_eq!(operations["kb-patch-merge: patch ConfigMap"]["errors"], 0);
    assert_eq!(operations["kb-patch-json: patch Deployment"]["errors"], 0);
    assert_eq!(operations["kb-read: get ConfigMap"]["count"], 12);
    let jobs = results["extra"]["scenario"]["jobs"]
        .as_array()
        .expect("jobs");
    assert_eq!(
        jobs[0]["verified"]["templates/configmap.yml/ConfigMap"]["found"],
        6
    );

    // A delete job finds the objects by label and waits until they are gone.
    write(
        dir.path(),
        &[(
            "delete.yml",
            r#"jobs:
  - name: kb-delete
    jobType: delete
    waitForDeletion: true
    objects:
      - kind: ConfigMap
        labelSelector: {kube-burner.io/job: kb-create}
"#,
        )],
    );
    let delete = dir.path().join("delete.yml");
    let (ok, _, stderr) = scenario(&[
        "run",
        delete.to_str().expect("utf-8"),
        "--kubeconfig",
        &kubeconfig,
        "--yes",
    ]);
    assert!(ok, "the delete scenario failed:\n{stderr}");
    let left: Api<ConfigMap> = Api::all(client);
    let left = left
        .list(&ListParams::default().labels("kube-burner.io/job=kb-create"))
        .await
        .expect("list configmaps");
    assert!(
        left.items.is_empty(),
        "configmaps left: {}",
        left.items.len()
    );
}

#[test]
fn every_built_in_scenario_runs_scaled_down_on_the_embedded_cluster() {
    let (ok, stdout, _) = scenario(&["list"]);
    assert!(ok);
    for (name, sets) in [
        ("node-density", vec!["PODS=6"]),
        (
            "cluster-density",
            vec!["JOB_ITERATIONS=2", "POD_REPLICAS=1"],
        ),
        ("api-intensive", vec!["JOB_ITERATIONS=2"]),
        ("density", vec!["PODS_PER_NODE=2", "POD_REPLICAS=2"]),
    ] {
        assert!(stdout.contains(name), "{name} is listed");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut args = vec![
            "run",
            name,
            "--nodes",
            "2",
            "--output",
            dir.path().to_str().expect("utf-8"),
        ];
        for set in &sets {
            args.extend(["--set", set]);
        }
        let (ok, _, stderr) = scenario(&args);
        assert!(ok, "{name} failed:\n{stderr}");
        let results = results(dir.path());
        let operations = results["operations"].as_object().expect("operations");
        assert!(!operations.is_empty(), "{name} measured nothing");
        for (class, summary) in operations {
            assert_eq!(summary["errors"], 0, "{name}: {class} failed: {summary}");
        }
        let (ok, shown, _) = scenario(&["show", name]);
        assert!(ok && shown.contains("jobs:"), "{name} shows its file");
    }
    let node_density = tempfile::tempdir().expect("temp dir");
    let (ok, _, stderr) = scenario(&[
        "run",
        "node-density",
        "--nodes",
        "2",
        "--output",
        node_density.path().to_str().expect("utf-8"),
    ]);
    assert!(ok, "node-density at full capacity failed:\n{stderr}");
    let results = results(node_density.path());
    // Two simulated nodes of 110 pods each, filled.
    assert_eq!(
        results["operations"]["node-density: create Pod"]["count"],
        220
    );
    // Its podLatency measurement saw every pod it created, none lost.
    let pods = &results["pod_latency"];
    assert_eq!(
        (&pods["pods"], &pods["ready"]),
        (&220.into(), &220.into()),
        "{pods}"
    );
    assert_eq!(pods["transitions"]["Ready"]["count"], 220, "{pods}");
}

const POD_LATENCY: &str = r#"
global:
  gc: true
  measurements:
    - name: podLatency
      thresholds:
        - conditionType: Ready
          metric: Max
          threshold: 2m
jobs:
  - name: quick
    jobIterations: 8
    namespace: pl-quick
    namespacedIterations: false
    waitWhenFinished: true
    maxWaitTimeout: 2m
    objects:
      - objectTemplate: templates/pod.yml
        replicas: 1
        inputVars: {delay: 0s}
  - name: slow
    jobIterations: 1
    namespace: pl-slow
    namespacedIterations: false
    waitWhenFinished: true
    maxWaitTimeout: 2m
    objects:
      - objectTemplate: templates/deployment.yml
        replicas: 1
"#;

const POD_LATENCY_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: quick-{{ .Iteration }}
spec:
  containers:
    - {name: c, image: registry.k8s.io/pause:3.10}
"#;

const POD_LATENCY_DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: slow
spec:
  replicas: 6
  selector: {matchLabels: {app: slow}}
  template:
    metadata:
      labels: {app: slow}
      annotations: {sim.kstress.io/start-delay: 1500ms}
    spec:
      containers:
        - {name: c, image: registry.k8s.io/pause:3.10}
"#;

/// podLatency stamps what the simulated kubelet was scripted to do: pods
/// whose containers take 1.5 s to start are Ready no sooner, and not much
/// later; pods of a Deployment are measured and grouped by the job that
/// created the Deployment; a gate that cannot hold fails the run with
/// exit status 3, distinct from a run that failed to execute.
#[test]
fn pod_latency_matches_the_scripted_start_and_gates_fail_with_their_own_status() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        &[
            ("pl.yml", POD_LATENCY),
            ("templates/pod.yml", POD_LATENCY_POD),
            ("templates/deployment.yml", POD_LATENCY_DEPLOYMENT),
        ],
    );
    let file = dir.path().join("pl.yml");
    let file = file.to_str().expect("utf-8");
    let out = dir.path().join("out");
    let (ok, _, stderr) = scenario(&[
        "run",
        file,
        "--nodes",
        "2",
        "--output",
        out.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{stderr}");
    let results = results(&out);
    let pods = &results["pod_latency"];
    assert_eq!(
        (&pods["pods"], &pods["ready"]),
        (&14.into(), &14.into()),
        "{pods}"
    );
    let ready = |group: &str, figure: &str| {
        pods["groups"][group]["transitions"]["Ready"][figure]
            .as_f64()
            .unwrap_or_else(|| panic!("{group} Ready {figure}: {pods}"))
    };
    assert_eq!(pods["groups"]["slow"]["pods"], 6, "{pods}");
    assert_eq!(pods["groups"]["quick"]["pods"], 8, "{pods}");
    // The scripted delay is a floor; the bound above allows for a busy
    // 2-core machine.
    assert!(ready("slow", "p50_ms") >= 1500.0, "{pods}");
    assert!(ready("slow", "max_ms") < 1500.0 + 10_000.0, "{pods}");
    assert!(ready("quick", "p50_ms") < ready("slow", "p50_ms"), "{pods}");
    let gates = results["gates"].as_array().expect("gates");
    assert_eq!(gates.len(), 1, "{gates:?}");
    assert_eq!(gates[0]["passed"], true, "{gates:?}");

    let output = kstress()
        .args(["scenario", "run", file, "--nodes", "2"])
        .args(["--pod-latency-threshold", "Ready:Max:1s"])
        .stdin(Stdio::null())
        .output()
        .expect("kstress starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stdout.contains("gate: podLatency Ready Max:") && stdout.contains("(limit 1000 ms) FAILED"),
        "{stdout}"
    );
    assert!(
        stderr.contains("error: gates failed: podLatency Ready Max:"),
        "{stderr}"
    );
}

#[test]
fn bad_scenarios_are_reported_all_at_once_with_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        &[
            (
                "templates/ok.yml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c-{{ .Iteration }}\n",
            ),
            (
                "templates/broken.yml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Nope }}\n",
            ),
            (
                "unknown-key.yml",
                "jobs:\n  - name: a\n    jobIteration: 2\n    objects:\n      - objectTemplate: templates/ok.yml\n",
            ),
            (
                "many.yml",
                r#"jobs:
  - name: a
    namespace: a
    objects:
      - objectTemplate: templates/missing.yml
      - objectTemplate: templates/broken.yml
  - name: b
    jobType: patch
    objects:
      - kind: ConfigMap
        objectTemplate: templates/ok.yml
        patchType: application/yaml
"#,
            ),
            (
                "needs-var.yml",
                "jobs:\n  - name: a\n    jobIterations: {{ .COUNT }}\n",
            ),
            (
                "gates.yml",
                r#"global:
  measurements:
    - name: podLatency
      thresholds:
        - conditionType: Readyy
          metric: P99
          threshold: 5s
        - conditionType: Ready
          metric: P99
          threshold: soon
jobs:
  - name: a
    objects:
      - objectTemplate: templates/ok.yml
"#,
            ),
        ],
    );
    let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_owned();

    let (ok, _, stderr) = scenario(&["check", &path("unknown-key.yml")]);
    assert!(!ok);
    assert!(
        stderr.contains("unknown-key.yml: line 3 column 5: unknown field `jobIteration`"),
        "{stderr}"
    );

    let (ok, _, stderr) = scenario(&["check", &path("many.yml")]);
    assert!(!ok);
    assert!(stderr.contains("the scenario has 3 problems"), "{stderr}");
    assert!(
        stderr.contains("templates/missing.yml: cannot read"),
        "{stderr}"
    );
    assert!(
        stderr.contains("broken.yml:4: map has no entry for key \"Nope\""),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "many.yml:12: jobs[1] (b).objects[0]: patchType \"application/yaml\" is not one of"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );

    let (ok, _, stderr) = scenario(&["check", &path("needs-var.yml")]);
    assert!(!ok);
    assert!(
        stderr.contains(
            "needs-var.yml:3: map has no entry for key \"COUNT\" (give it with --set KEY=VALUE"
        ),
        "{stderr}"
    );
    let (ok, stdout, stderr) = scenario(&["check", &path("needs-var.yml"), "--set", "COUNT=2"]);
    // Renders now; the job without objects is the one problem left.
    assert!(!ok && stdout.is_empty());
    assert!(
        stderr.contains("jobs[0] (a): objects: the job has no objects"),
        "{stderr}"
    );

    let (ok, _, stderr) = scenario(&["check", &path("gates.yml")]);
    assert!(!ok);
    assert!(
        stderr.contains("gates.yml:5: podLatency threshold Readyy/P99/5s: unknown conditionType"),
        "{stderr}"
    );
    assert!(
        stderr.contains("gates.yml:10: podLatency threshold Ready/P99/soon: invalid duration"),
        "{stderr}"
    );

    let (ok, _, stderr) = scenario(&["check", &path("many.yml"), "--set", "oops"]);
    assert!(!ok);
    assert!(stderr.contains("expected KEY=VALUE"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kind_the_server_does_not_serve_fails_before_anything_is_created() {
    let serve = Serve::start(env!("CARGO_BIN_EXE_kstress"), &[]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        &[
            (
                "templates/ok.yml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c-{{ .Iteration }}\n",
            ),
            (
                "templates/flunder.yml",
                "apiVersion: wardle.example.com/v1\nkind: Flunder\nmetadata:\n  name: f-{{ .Iteration }}\n",
            ),
            (
                "unserved.yml",
                "jobs:\n  - name: unserved\n    namespace: unserved\n    objects:\n      - objectTemplate: templates/ok.yml\n      - objectTemplate: templates/flunder.yml\n",
            ),
        ],
    );
    let file = dir.path().join("unserved.yml");
    let (ok, _, stderr) = scenario(&[
        "run",
        file.to_str().expect("utf-8"),
        "--kubeconfig",
        serve.kubeconfig().to_str().expect("utf-8"),
        "--yes",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("the server does not serve Flunder (wardle.example.com/v1)"),
        "{stderr}"
    );
    let namespaces: Api<Namespace> = Api::all(serve.client().await);
    let created = namespaces
        .list(&ListParams::default().labels("kube-burner.io/job=unserved"))
        .await
        .expect("list namespaces");
    assert!(created.items.is_empty(), "nothing is created");
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_creating_cleans_up_and_still_writes_results() {
    let serve = Serve::start(env!("CARGO_BIN_EXE_kstress"), &[]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        &[
            (
                "templates/cm.yml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c-{{ .Iteration }}\n",
            ),
            (
                "slow.yml",
                "global:\n  gc: true\njobs:\n  - name: slow\n    jobIterations: 10000\n    qps: 5\n    burst: 1\n    namespace: slow\n    namespacedIterations: false\n    objects:\n      - objectTemplate: templates/cm.yml\n",
            ),
        ],
    );
    let out = dir.path().join("out");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kstress"))
        .arg("scenario")
        .arg("run")
        .arg(dir.path().join("slow.yml"))
        .arg("--kubeconfig")
        .arg(serve.kubeconfig())
        .arg("--yes")
        .arg("--output")
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kstress starts");
    let client = serve.client().await;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "slow");
    testkit::wait_until("the scenario to create objects", || async {
        config_maps
            .list_metadata(&ListParams::default().labels("kube-burner.io/job=slow"))
            .await
            .is_ok_and(|list| list.items.len() >= 2)
            .then_some(())
    })
    .await;
    let pid =
        rustix::process::Pid::from_raw(i32::try_from(child.id().expect("running")).expect("pid"))
            .expect("a valid pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("signal sent");
    let result = tokio::time::timeout(testkit::WAIT, child.wait_with_output())
        .await
        .expect("the scenario ends after Ctrl-C")
        .expect("kstress ends");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(
        result.status.code(),
        Some(0),
        "an interrupted scenario exits 0:\n{stderr}"
    );
    let results = results(&out);
    assert_eq!(results["extra"]["stop_reason"], "interrupted");
    let created = results["operations"]["slow: create ConfigMap"]["count"]
        .as_u64()
        .expect("count");
    assert!((2..10000).contains(&created), "creating stopped: {created}");
    let namespaces: Api<Namespace> = Api::all(client);
    assert!(
        namespaces.get_opt("slow").await.expect("lookup").is_none(),
        "gc removed the scenario's namespace"
    );
}
