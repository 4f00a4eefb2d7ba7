//! `kstress node` joined to a separately started `kstress serve`: it runs a
//! pod bound to it to completion, says in one line why it cannot join, and
//! never takes over or deletes a Node that is not its own.

use std::path::Path;
use std::process::{Output, Stdio};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use testkit::{Serve, WAIT, wait_until};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const KSTRESS: &str = env!("CARGO_BIN_EXE_kstress");

async fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("kubectl runs")
}

#[tokio::test]
async fn node_joins_a_separate_server_and_runs_a_pod_to_completion() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start_in(KSTRESS, dir.path(), &[]).await;
    let kubeconfig = server.kubeconfig();
    let node = Command::new(KSTRESS)
        .args(["node", "--name", "n1", "--runtime", "process"])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--data-dir")
        .arg(dir.path().join("node"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("kstress node starts");
    wait_until("node n1 to register", || async {
        kubectl(kubeconfig, &["get", "node", "n1"])
            .await
            .status
            .success()
            .then_some(())
    })
    .await;
    let manifest = dir.path().join("pod.json");
    std::fs::write(
        &manifest,
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "job", "namespace": "default"},
            "spec": {
                "nodeName": "n1",
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", "echo joined"]}],
            }
        })
        .to_string(),
    )
    .unwrap();
    let created = kubectl(kubeconfig, &["create", "-f", manifest.to_str().unwrap()]).await;
    assert!(created.status.success(), "{created:?}");
    let phase = wait_until("pod job to finish", || async {
        let out = kubectl(
            kubeconfig,
            &["get", "pod", "job", "-o", "jsonpath={.status.phase}"],
        )
        .await;
        let phase = String::from_utf8_lossy(&out.stdout).into_owned();
        (phase == "Succeeded" || phase == "Failed").then_some(phase)
    })
    .await;
    assert_eq!(phase, "Succeeded");
    let logs = kubectl(kubeconfig, &["logs", "job"]).await;
    assert_eq!(
        String::from_utf8_lossy(&logs.stdout),
        "joined\n",
        "{logs:?}"
    );
    drop(node);
    drop(server);
}

#[tokio::test]
async fn a_name_the_server_refuses_is_one_line_in_the_server_s_words() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start_in(KSTRESS, dir.path(), &[]).await;
    let output = tokio::time::timeout(
        WAIT,
        Command::new(KSTRESS)
            .args(["node", "--name", "Bad_Name", "--kubeconfig"])
            .arg(server.kubeconfig())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("kstress node gives up at start")
    .expect("kstress node runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "node Bad_Name started:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line:\n{stderr}");
    assert!(
        lines[0].starts_with("error: cannot start node Bad_Name: ")
            && lines[0].contains(
                r#"Node "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name""#
            ),
        "{stderr}"
    );
    assert_eq!(
        lines[0].matches("is invalid").count(),
        1,
        "the message once, no Status dump:\n{stderr}"
    );
    assert!(!lines[0].contains("Status {"), "{stderr}");
    drop(server);
}

#[tokio::test]
async fn a_live_node_is_not_taken_over_unless_forced_nor_ever_deleted() {
    let dir = tempfile::tempdir().unwrap();
    // The embedded nodes kstress-node-0..2 are Ready, with fresh Leases.
    let server = Serve::start_in(KSTRESS, dir.path(), &[]).await;
    let client = server.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");

    let output = tokio::time::timeout(
        WAIT,
        Command::new(KSTRESS)
            .args(["node", "--name", "kstress-node-0", "--kubeconfig"])
            .arg(server.kubeconfig())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("kstress node refuses a live node at start")
    .expect("kstress node runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "took over a live node:\n{stderr}");
    assert!(
        stderr.starts_with(
            "error: node kstress-node-0 is in use: it is Ready and its Lease was renewed "
        ) && stderr.contains("by kstress-node-0; stop that kubelet, or pass --force"),
        "{stderr}"
    );
    assert!(nodes.get_opt("kstress-node-0").await.unwrap().is_some());

    // Forced, it runs as the node, and leaves the Node and Lease it did not
    // create behind when it stops.
    let mut forced = Command::new(KSTRESS)
        .args([
            "node",
            "--name",
            "kstress-node-1",
            "--force",
            "--kubeconfig",
        ])
        .arg(server.kubeconfig())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kstress node starts");
    let mut lines = BufReader::new(forced.stdout.take().expect("piped stdout")).lines();
    let first = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("kstress node --force starts in time")
        .expect("stdout");
    assert_eq!(
        first.as_deref(),
        Some("kstress node kstress-node-1 is running (sim)")
    );
    let pid = rustix::process::Pid::from_raw(
        i32::try_from(forced.id().expect("still running")).expect("pid"),
    )
    .expect("a valid pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM sent");
    let stopped = tokio::time::timeout(WAIT, forced.wait_with_output())
        .await
        .expect("kstress node stops after SIGTERM")
        .expect("exit status");
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    assert!(
        nodes.get_opt("kstress-node-1").await.unwrap().is_some(),
        "the Node it did not create was deleted"
    );
    assert!(
        leases.get_opt("kstress-node-1").await.unwrap().is_some(),
        "the Lease it did not create was deleted"
    );
    drop(server);
}
