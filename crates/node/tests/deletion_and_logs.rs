//! Graceful pod deletion and container logs through the API server, with
//! the process runtime.

mod common;

use std::time::Duration;

use common::{Cluster, NODE, WAIT, phase, statuses};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, LogParams, WatchEvent, WatchParams};
use node::RuntimeKind;
use serde_json::json;

fn running_and_ready(pod: &Pod) -> bool {
    phase(pod) == "Running" && statuses(pod).iter().all(|s| s.ready)
}

#[tokio::test]
async fn graceful_deletion_runs_pre_stop_then_sigterm_then_sigkill() {
    let cluster = Cluster::start(RuntimeKind::Process).await;
    let polite = "trap 'echo got-TERM >> /dev/termination-log; exit 0' TERM; \
                  while true; do sleep 0.1; done";
    let stubborn = "trap '' TERM; while true; do sleep 0.1; done";
    cluster
        .create(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "graceful"},
            "spec": {
                "nodeName": NODE,
                "terminationGracePeriodSeconds": 3,
                "containers": [
                    {
                        "name": "polite",
                        "image": "busybox:1.36",
                        "command": ["sh", "-c", polite],
                        "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo pre-stop >> /dev/termination-log"]}}},
                    },
                    {"name": "stubborn", "image": "busybox:1.36", "command": ["sh", "-c", stubborn]},
                ],
            }
        }))
        .await;
    let running = cluster
        .wait_pod("graceful", "both containers running", running_and_ready)
        .await;
    let version = running.metadata.resource_version.clone().unwrap();
    let params = WatchParams::default().fields("metadata.name=graceful");
    let mut events = cluster
        .pods()
        .watch(&params, &version)
        .await
        .expect("watch starts")
        .boxed();
    cluster
        .pods()
        .delete("graceful", &DeleteParams::default())
        .await
        .expect("delete accepted");
    let mut last = running;
    let deleted = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.try_next().await.expect("watch event") {
            match event {
                WatchEvent::Modified(pod) => last = pod,
                WatchEvent::Deleted(_) => return true,
                _ => {}
            }
        }
        false
    })
    .await
    .expect("the pod is deleted within the wait");
    assert!(deleted, "the watch ended before the pod was deleted");
    let by_name = |name: &str| {
        statuses(&last)
            .into_iter()
            .find(|s| s.name == name)
            .and_then(|s| s.state)
            .and_then(|s| s.terminated)
            .unwrap_or_else(|| panic!("{name} terminated: {:#?}", last.status))
    };
    let polite = by_name("polite");
    assert_eq!(polite.exit_code, 0);
    let message = polite.message.unwrap_or_default();
    assert_eq!(
        message, "pre-stop\ngot-TERM\n",
        "PreStop ran before SIGTERM"
    );
    let stubborn = by_name("stubborn");
    assert_eq!(stubborn.exit_code, 137, "SIGKILL after the grace period");
    assert_eq!(phase(&last), "Failed");
    assert!(cluster.pods().get_opt("graceful").await.unwrap().is_none());
    cluster.stop().await;
}

#[tokio::test]
async fn logs_through_the_api_server_and_kubectl() {
    let cluster = Cluster::start(RuntimeKind::Process).await;
    cluster
        .create(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "chatty"},
            "spec": {
                "nodeName": NODE,
                "restartPolicy": "Never",
                "containers": [
                    {"name": "talker", "image": "busybox:1.36", "command": ["sh", "-c", "echo hello; echo oops >&2; sleep 0.2; echo done"]},
                    {"name": "quiet", "image": "busybox:1.36", "command": ["true"]},
                ],
            }
        }))
        .await;
    cluster
        .wait_pod("chatty", "the pod to succeed", |pod| {
            phase(pod) == "Succeeded"
        })
        .await;
    let pods = cluster.pods();
    let all = LogParams {
        container: Some("talker".into()),
        ..LogParams::default()
    };
    let text = pods.logs("chatty", &all).await.expect("logs");
    assert_eq!(text, "hello\noops\ndone\n");
    let tail = LogParams {
        tail_lines: Some(1),
        timestamps: true,
        ..all.clone()
    };
    let text = pods.logs("chatty", &tail).await.expect("tail");
    let (stamp, line) = text.trim_end().split_once(' ').expect("timestamped line");
    assert!(stamp.parse::<jiff::Timestamp>().is_ok(), "{text}");
    assert_eq!(line, "done");
    match pods.logs("chatty", &LogParams::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 400);
            assert!(
                status
                    .message
                    .contains("a container name must be specified for pod chatty"),
                "{}",
                status.message
            );
        }
        other => panic!("expected 400, got {other:?}"),
    }
    let wrong = LogParams {
        container: Some("nope".into()),
        ..LogParams::default()
    };
    assert!(matches!(pods.logs("chatty", &wrong).await, Err(kube::Error::Api(s)) if s.code == 400));
    assert!(matches!(pods.logs("missing", &all).await, Err(kube::Error::Api(s)) if s.code == 404));

    let kubeconfig = cluster.data.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.server.kubeconfig()).unwrap();
    let output = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["logs", "chatty", "-c", "talker"])
            .output(),
    )
    .await
    .expect("kubectl finishes")
    .expect("kubectl runs");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "hello\noops\ndone\n"
    );
    cluster.stop().await;
}

#[tokio::test]
async fn follow_streams_until_the_container_exits() {
    let cluster = Cluster::start(RuntimeKind::Process).await;
    cluster
        .create(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "ticker"},
            "spec": {
                "nodeName": NODE,
                "restartPolicy": "Never",
                "containers": [{"name": "t", "image": "busybox:1.36", "command": ["sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.3; done"]}],
            }
        }))
        .await;
    cluster
        .wait_pod("ticker", "the container to run", |pod| {
            phase(pod) == "Running"
        })
        .await;
    let params = LogParams {
        follow: true,
        ..LogParams::default()
    };
    let stream = cluster
        .pods()
        .log_stream("ticker", &params)
        .await
        .expect("log stream");
    let read = async {
        use futures::AsyncReadExt;
        let mut text = String::new();
        let mut stream = stream;
        stream.read_to_string(&mut text).await.map(|_| text)
    };
    let text = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the stream ends when the container exits")
        .expect("stream read");
    assert_eq!(text, "tick 1\ntick 2\ntick 3\n");
    cluster.stop().await;
}
