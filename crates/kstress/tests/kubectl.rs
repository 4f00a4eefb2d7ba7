//! The real kubectl against `kstress serve`, with nothing but the
//! kubeconfig the server writes.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use testkit::WAIT;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// This suite checks compatibility with the kubectl users have; it fails,
/// never skips, when kubectl is missing.
const KUBECTL_MISSING: &str =
    "kubectl (v1.32, /usr/bin/kubectl on the CI image) must be on PATH for the kubectl suite";

/// A `kstress serve` child process, killed on drop, and a directory for
/// its kubeconfig, kubectl's cache and the manifests of a test.
struct Serve {
    server: testkit::Serve,
    dir: tempfile::TempDir,
}

impl Serve {
    async fn start() -> Serve {
        let dir = tempfile::tempdir().expect("temporary directory");
        let server = testkit::Serve::start_in(env!("CARGO_BIN_EXE_kstress"), dir.path(), &[]).await;
        Serve { server, dir }
    }

    fn kubeconfig(&self) -> &Path {
        self.server.kubeconfig()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .kill_on_drop(true);
        cmd
    }

    /// Runs kubectl to completion; returns (success, stdout, stderr).
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let output = tokio::time::timeout(WAIT, self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish within {WAIT:?}"))
            .unwrap_or_else(|err| panic!("{KUBECTL_MISSING}: {err}"));
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Runs kubectl and insists that it succeeds.
    async fn ok(&self, args: &[&str]) -> String {
        let (success, stdout, stderr) = self.run(args).await;
        assert!(success, "kubectl {args:?} failed:\n{stderr}\n{stdout}");
        stdout
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut full = args.to_vec();
        full.extend(["-o", "json"]);
        let out = self.ok(&full).await;
        serde_json::from_str(&out)
            .unwrap_or_else(|err| panic!("kubectl {args:?}: not JSON ({err}): {out}"))
    }
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write manifest");
    path
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
spec:
  containers:
  - name: main
    image: busybox
    command: [sleep, '3600']
";

#[tokio::test]
async fn imperative_and_declarative_object_lifecycle() {
    let serve = Serve::start().await;
    serve.ok(&["create", "namespace", "demo"]).await;
    serve
        .ok(&[
            "-n",
            "demo",
            "create",
            "configmap",
            "hello",
            "--from-literal=greeting=hi",
        ])
        .await;
    let cm = serve
        .json(&["-n", "demo", "get", "configmap", "hello"])
        .await;
    assert_eq!(cm["data"]["greeting"], "hi");

    let manifest = write(serve.dir.path(), "pod.yaml", POD);
    let applied = serve
        .ok(&[
            "-n",
            "demo",
            "apply",
            "-f",
            manifest.to_str().expect("utf-8 path"),
        ])
        .await;
    assert!(applied.contains("pod/web created"), "{applied}");
    let pods = serve.json(&["-n", "demo", "get", "pods"]).await;
    assert_eq!(pods["items"][0]["metadata"]["name"], "web");
    assert_eq!(
        pods["items"][0]["spec"]["containers"][0]["image"],
        "busybox"
    );

    let table = serve.ok(&["-n", "demo", "get", "pods"]).await;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{table}"
    );
    assert!(
        table
            .lines()
            .nth(1)
            // The embedded nodes may already run it: 0/1 or 1/1 ready.
            .is_some_and(|row| row.starts_with("web ") && row.contains("/1 ")),
        "{table}"
    );

    serve
        .ok(&["-n", "demo", "label", "pod", "web", "tier=front"])
        .await;
    serve
        .ok(&["-n", "demo", "annotate", "pod", "web", "note=hello"])
        .await;
    serve
        .ok(&[
            "-n",
            "demo",
            "patch",
            "pod",
            "web",
            "--type",
            "merge",
            "-p",
            r#"{"metadata":{"labels":{"patched":"yes"}}}"#,
        ])
        .await;
    let pod = serve.json(&["-n", "demo", "get", "pod", "web"]).await;
    assert_eq!(pod["metadata"]["labels"]["tier"], "front");
    assert_eq!(pod["metadata"]["labels"]["patched"], "yes");
    assert_eq!(pod["metadata"]["labels"]["app"], "web");
    assert_eq!(pod["metadata"]["annotations"]["note"], "hello");

    let reapplied = serve
        .ok(&[
            "-n",
            "demo",
            "apply",
            "-f",
            manifest.to_str().expect("utf-8 path"),
        ])
        .await;
    assert!(
        reapplied.contains("pod/web unchanged") || reapplied.contains("pod/web configured"),
        "{reapplied}"
    );

    serve.ok(&["-n", "demo", "delete", "pod", "web"]).await;
    let (found, _, stderr) = serve.run(&["-n", "demo", "get", "pod", "web"]).await;
    assert!(!found);
    assert!(
        stderr.contains("NotFound") || stderr.contains("not found"),
        "{stderr}"
    );
}

#[tokio::test]
async fn watch_prints_the_first_event() {
    let serve = Serve::start().await;
    serve.ok(&["create", "namespace", "watched"]).await;
    let mut watch = serve
        .command(&[
            "-n",
            "watched",
            "get",
            "configmaps",
            "--watch",
            "--output-watch-events",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("{KUBECTL_MISSING}: {err}"));
    let mut lines = BufReader::new(watch.stdout.take().expect("piped stdout")).lines();
    // The watch starts from the list kubectl prints first; a create after it
    // must arrive as an event.
    serve
        .ok(&[
            "-n",
            "watched",
            "create",
            "configmap",
            "first",
            "--from-literal=a=b",
        ])
        .await;
    let line = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.expect("read watch output") {
            if line.contains("first") {
                return line;
            }
        }
        String::new()
    })
    .await
    .expect("the watch event arrives within the timeout");
    assert!(line.starts_with("ADDED"), "{line}");
    watch.kill().await.expect("stop the watch");

    // The everyday form: table rows streamed as they change.
    let mut table_watch = serve
        .command(&["-n", "watched", "get", "configmaps", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("{KUBECTL_MISSING}: {err}"));
    let mut lines = BufReader::new(table_watch.stdout.take().expect("piped stdout")).lines();
    serve
        .ok(&[
            "-n",
            "watched",
            "create",
            "configmap",
            "second",
            "--from-literal=a=b",
        ])
        .await;
    let seen = tokio::time::timeout(WAIT, async {
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line().await.expect("read watch output") {
            let done = line.starts_with("second ");
            seen.push(line);
            if done {
                break;
            }
        }
        seen
    })
    .await
    .expect("the watch row arrives within the timeout");
    let header: Vec<&str> = seen[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "DATA", "AGE"], "{seen:?}");
    assert!(
        seen.iter().any(|l| l.starts_with("first ")),
        "the listed state comes first: {seen:?}"
    );
    let row: Vec<&str> = seen.last().expect("a row").split_whitespace().collect();
    assert_eq!(&row[..2], ["second", "1"], "{seen:?}");
    table_watch.kill().await.expect("stop the watch");
}

#[tokio::test]
async fn discovery_version_and_explain() {
    let serve = Serve::start().await;
    let resources = serve.ok(&["api-resources"]).await;
    for expected in [
        "pods",
        "deployments",
        "customresourcedefinitions",
        "leases",
        "jobs",
    ] {
        assert!(
            resources
                .lines()
                .any(|l| l.split_whitespace().next() == Some(expected)),
            "api-resources lacks {expected}:\n{resources}"
        );
    }
    let version = serve.ok(&["version"]).await;
    assert!(version.contains("Server Version: v1.33"), "{version}");
    let pods = serve.ok(&["explain", "pods"]).await;
    for expected in [
        "KIND:",
        "Pod",
        "VERSION:",
        "v1",
        "DESCRIPTION:",
        "FIELDS:",
        "spec",
        "status",
    ] {
        assert!(
            pods.contains(expected),
            "explain pods lacks {expected}:\n{pods}"
        );
    }
    let explained = serve.ok(&["explain", "pods.spec.containers"]).await;
    assert!(
        explained.contains("KIND:") && explained.contains("Pod"),
        "{explained}"
    );
    assert!(explained.contains("containers"), "{explained}");
}

#[tokio::test]
async fn deleting_a_namespace_removes_its_content() {
    let serve = Serve::start().await;
    serve.ok(&["create", "namespace", "doomed"]).await;
    serve
        .ok(&[
            "-n",
            "doomed",
            "create",
            "configmap",
            "c1",
            "--from-literal=a=b",
        ])
        .await;
    serve
        .ok(&[
            "-n",
            "doomed",
            "create",
            "secret",
            "generic",
            "s1",
            "--from-literal=a=b",
        ])
        .await;
    // kubectl waits until the namespace is gone.
    serve
        .ok(&["delete", "namespace", "doomed", "--timeout=50s"])
        .await;
    let (found, _, stderr) = serve.run(&["get", "namespace", "doomed"]).await;
    assert!(!found, "the namespace is gone");
    assert!(stderr.contains("not found"), "{stderr}");
    let configmaps = serve.json(&["get", "configmaps", "--all-namespaces"]).await;
    let left: Vec<&Value> = configmaps["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|i| i["metadata"]["namespace"] == "doomed")
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "content of the deleted namespace remains: {left:?}"
    );
}

/// A pod manifest with a misspelt field, as users write them.
const POD_WITH_TYPO: &str = "apiVersion: v1
kind: Pod
metadata:
  name: typo
spec:
  containers:
  - name: main
    image: busybox
    imagePullPolice: Always
";

#[tokio::test]
async fn unknown_fields_are_refused_by_strict_validation_and_warned_about_otherwise() {
    let serve = Serve::start().await;
    let manifest = write(serve.dir.path(), "typo.yaml", POD_WITH_TYPO);
    let manifest = manifest.to_str().expect("utf-8 path");
    // kubectl validates strictly by default and leaves it to the server.
    let (created, _, stderr) = serve.run(&["create", "-f", manifest]).await;
    assert!(!created, "a strict create with an unknown field fails");
    assert!(
        stderr.contains(
            "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.containers[0].imagePullPolice\""
        ),
        "{stderr}"
    );
    let (found, _, _) = serve.run(&["get", "pod", "typo"]).await;
    assert!(!found, "nothing was stored");

    let (created, _, stderr) = serve
        .run(&["create", "--validate=warn", "-f", manifest])
        .await;
    assert!(created, "{stderr}");
    assert!(
        stderr.contains("Warning: unknown field \"spec.containers[0].imagePullPolice\""),
        "{stderr}"
    );
    let pod = serve.json(&["get", "pod", "typo"]).await;
    let container = &pod["spec"]["containers"][0];
    assert!(
        container.get("imagePullPolice").is_none(),
        "dropped: {container}"
    );
    assert_eq!(container["imagePullPolicy"], "Always", "defaulted as usual");
}

#[tokio::test]
async fn describe_pod_lists_scheduled_then_pulling_then_pulled() {
    let serve = Serve::start().await;
    let manifest = write(serve.dir.path(), "pod.yaml", POD);
    serve
        .ok(&["apply", "-f", manifest.to_str().expect("utf-8 path")])
        .await;
    serve
        .ok(&["wait", "--for=condition=Ready", "pod/web", "--timeout=120s"])
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let events = loop {
        let described = serve.ok(&["describe", "pod", "web"]).await;
        let events: Vec<String> = described
            .lines()
            .skip_while(|line| !line.starts_with("Events:"))
            .filter_map(|line| {
                ["Scheduled", "Pulling", "Pulled", "Created", "Started"]
                    .into_iter()
                    .find(|reason| line.split_whitespace().nth(1) == Some(reason))
                    .map(str::to_owned)
            })
            .collect();
        if events.len() >= 5 || tokio::time::Instant::now() >= deadline {
            break events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        events,
        ["Scheduled", "Pulling", "Pulled", "Created", "Started"],
        "the pod's events, in the order describe lists them"
    );
}

/// Custom resources get kube-apiserver's columns: NAME and AGE when the
/// definition declares none, its own columns (a `date` one shown as an
/// age) when it does; definitions themselves list NAME and CREATED AT.
#[tokio::test]
async fn custom_resources_list_with_upstream_columns() {
    let serve = Serve::start().await;
    let crd = write(
        serve.dir.path(),
        "crd.yaml",
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
  - name: v2
    served: true
    storage: false
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Made, type: date, jsonPath: .metadata.creationTimestamp}
"#,
    );
    serve
        .ok(&["apply", "-f", crd.to_str().expect("UTF-8 path")])
        .await;
    serve
        .ok(&[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=60s",
        ])
        .await;
    let widget = write(
        serve.dir.path(),
        "widget.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n",
    );
    serve
        .ok(&["apply", "-f", widget.to_str().expect("UTF-8 path")])
        .await;

    let rows = |out: String| -> Vec<Vec<String>> {
        out.lines()
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .collect()
    };
    let v1 = rows(serve.ok(&["get", "widgets.v1.example.com"]).await);
    assert_eq!(v1[0], ["NAME", "AGE"], "{v1:?}");
    assert_eq!(v1[1][0], "w1", "{v1:?}");
    assert!(v1[1][1].ends_with('s'), "an age such as 0s: {v1:?}");

    let v2 = rows(serve.ok(&["get", "widgets.v2.example.com"]).await);
    assert_eq!(v2[0], ["NAME", "SIZE", "MADE"], "{v2:?}");
    assert_eq!(&v2[1][..2], ["w1", "3"], "{v2:?}");
    assert!(v2[1][2].ends_with('s'), "the date column as an age: {v2:?}");

    let crds = rows(serve.ok(&["get", "crds"]).await);
    assert_eq!(crds[0], ["NAME", "CREATED", "AT"], "{crds:?}");
    assert_eq!(crds[1][0], "widgets.example.com", "{crds:?}");
}
