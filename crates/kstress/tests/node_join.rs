//! `kstress node` joined to a separately started `kstress serve` runs a pod
//! bound to it to completion.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// Kills the child when the test ends, whatever happens.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs")
}

#[test]
fn node_joins_a_separate_server_and_runs_a_pod_to_completion() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let port = free_port();
    let mut server = Running(
        Command::new(env!("CARGO_BIN_EXE_kstress"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kstress serve starts"),
    );
    let stdout = server.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let listening = lines
        .next()
        .expect("kstress serve prints its address")
        .unwrap();
    assert!(
        listening.starts_with("kstress API server listening on https://"),
        "{listening}"
    );
    let node = Running(
        Command::new(env!("CARGO_BIN_EXE_kstress"))
            .args(["node", "--name", "n1", "--runtime", "process"])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--data-dir")
            .arg(dir.path().join("node"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("kstress node starts"),
    );
    let deadline = Instant::now() + WAIT;
    while !kubectl(&kubeconfig, &["get", "node", "n1"])
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "node n1 never registered");
        std::thread::sleep(Duration::from_millis(200));
    }
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
    let created = kubectl(&kubeconfig, &["create", "-f", manifest.to_str().unwrap()]);
    assert!(created.status.success(), "{created:?}");
    let phase = loop {
        let out = kubectl(
            &kubeconfig,
            &["get", "pod", "job", "-o", "jsonpath={.status.phase}"],
        );
        let phase = String::from_utf8_lossy(&out.stdout).into_owned();
        if phase == "Succeeded" || phase == "Failed" || Instant::now() >= deadline {
            break phase;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(phase, "Succeeded");
    let logs = kubectl(&kubeconfig, &["logs", "job"]);
    assert_eq!(
        String::from_utf8_lossy(&logs.stdout),
        "joined\n",
        "{logs:?}"
    );
    drop(node);
    drop(server);
}
