//! The container lifecycle scenarios of the upstream node conformance test,
//! run by a node agent with the process runtime and checked through the API.

mod common;

use common::timeline::{self, command};
use common::{Cluster, NODE, phase, statuses};
use node::RuntimeKind;
use serde_json::{Value, json};

const IMAGE: &str = "busybox:1.36";

/// A pod bound to the test node with a shared `/persistent` emptyDir.
fn pod(name: &str, restart_policy: &str, init: Vec<Value>, containers: Vec<Value>) -> Value {
    let mount = json!([{"name": "persistent", "mountPath": "/persistent"}]);
    let with_mount = |mut c: Value| {
        c["volumeMounts"] = mount.clone();
        c
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": NODE,
            "restartPolicy": restart_policy,
            "initContainers": init.into_iter().map(with_mount).collect::<Vec<_>>(),
            "containers": containers.into_iter().map(with_mount).collect::<Vec<_>>(),
            "volumes": [{"name": "persistent", "emptyDir": {}}],
        }
    })
}

fn container(name: &str, start_delay: u32, delay: u32, exit_code: i32) -> Value {
    json!({"name": name, "image": IMAGE, "command": command(name, start_delay, delay, exit_code)})
}

fn finished(pod: &k8s_openapi::api::core::v1::Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

#[tokio::test]
async fn init_containers_run_serially_before_regular_containers() {
    let cluster = Cluster::start(RuntimeKind::Process).await;
    let mut regular = container("regular-1", 1, 1, 0);
    regular["startupProbe"] =
        json!({"exec": {"command": ["test", "-f", "started"]}, "periodSeconds": 1});
    cluster
        .create(pod(
            "init-serial",
            "Never",
            vec![
                container("init-1", 0, 1, 0),
                container("init-2", 0, 1, 0),
                container("init-3", 0, 1, 0),
            ],
            vec![regular],
        ))
        .await;
    let done = cluster
        .wait_pod("init-serial", "the pod to finish", finished)
        .await;
    assert_eq!(phase(&done), "Succeeded", "{:#?}", done.status);
    let timeline = timeline::parse(&done);
    for (first, second) in [
        ("init-1", "init-2"),
        ("init-2", "init-3"),
        ("init-3", "regular-1"),
    ] {
        assert!(
            timeline.starts_before(first, second),
            "{first} before {second}: {timeline:#?}"
        );
        assert!(
            timeline.exits_before(first, second),
            "{first} exits before {second}: {timeline:#?}"
        );
    }
    let status = done.status.clone().unwrap();
    let init = status.init_container_statuses.unwrap();
    assert!(init.iter().all(|s| s.ready), "{init:#?}");
    let terminated = init[0].state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(terminated.reason.as_deref(), Some("Completed"));
    let conditions = status.conditions.unwrap();
    let initialized = conditions
        .iter()
        .find(|c| c.type_ == "Initialized")
        .unwrap();
    assert_eq!(initialized.status, "True");
    assert!(status.start_time.is_some());
    assert_eq!(status.host_ip.as_deref(), Some("127.0.0.1"));
    cluster.stop().await;
}

#[tokio::test]
async fn failed_init_container_fails_the_pod_and_nothing_else_starts() {
    let cluster = Cluster::start(RuntimeKind::Process).await;
    cluster
        .create(pod(
            "init-failure",
            "Never",
            vec![container("init-1", 0, 1, 1)],
            vec![container("regular-1", 0, 1, 0)],
        ))
        .await;
    let done = cluster
        .wait_pod("init-failure", "the pod to fail", finished)
        .await;
    assert_eq!(phase(&done), "Failed", "{:#?}", done.status);
    let timeline = timeline::parse(&done);
    assert!(
        timeline.starts("init-1") && timeline.exits("init-1"),
        "{timeline:#?}"
    );
    assert!(!timeline.starts("regular-1"), "{timeline:#?}");
    let all = statuses(&done);
    let init = all[0].state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((init.exit_code, init.reason.as_deref()), (1, Some("Error")));
    let regular = all[1].state.as_ref().unwrap().waiting.as_ref().unwrap();
    assert_eq!(regular.reason.as_deref(), Some("PodInitializing"));
    cluster.stop().await;
}

#[tokio::test]
async fn init_container_completes_before_post_start_of_regular_container() {
    let cluster = Cluster::start(RuntimeKind::Process).await;
    let mut regular = container("regular-1", 0, 2, 0);
    regular["lifecycle"] =
        json!({"postStart": {"exec": {"command": command("PostStart-regular-1", 0, 1, 0)}}});
    cluster
        .create(pod(
            "init-post-start",
            "Never",
            vec![container("init-1", 0, 1, 0)],
            vec![regular],
        ))
        .await;
    let done = cluster
        .wait_pod("init-post-start", "the pod to finish", finished)
        .await;
    assert_eq!(phase(&done), "Succeeded", "{:#?}", done.status);
    let timeline = timeline::parse(&done);
    assert!(
        timeline.starts_before("init-1", "PostStart-regular-1"),
        "{timeline:#?}"
    );
    assert!(
        timeline.exits_before("init-1", "PostStart-regular-1"),
        "{timeline:#?}"
    );
    assert!(
        timeline.run_together("regular-1", "PostStart-regular-1"),
        "{timeline:#?}"
    );
    cluster.stop().await;
}

#[tokio::test]
async fn always_restarts_a_failing_container() {
    let cluster = Cluster::start(RuntimeKind::Process).await;
    cluster
        .create(pod(
            "must-restart",
            "Always",
            vec![],
            vec![container("regular-1", 0, 0, 1)],
        ))
        .await;
    let pod = cluster
        .wait_pod("must-restart", "restartCount 3", |pod| {
            statuses(pod).first().is_some_and(|s| s.restart_count >= 3)
        })
        .await;
    assert_eq!(phase(&pod), "Running");
    let timeline = timeline::parse(&pod);
    assert!(timeline.starts("regular-1"), "{timeline:#?}");
    assert!(
        timeline.starts_before("regular-1", "regular-1"),
        "{timeline:#?}"
    );
    assert!(
        timeline.exits_before("regular-1", "regular-1"),
        "{timeline:#?}"
    );
    let status = &statuses(&pod)[0];
    let last = status
        .last_state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
    let backing_off = cluster
        .wait_pod("must-restart", "CrashLoopBackOff", |pod| {
            statuses(pod)[0]
                .state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .is_some_and(|w| w.reason.as_deref() == Some("CrashLoopBackOff"))
        })
        .await;
    let waiting = statuses(&backing_off)[0]
        .state
        .clone()
        .unwrap()
        .waiting
        .unwrap();
    assert!(
        waiting
            .message
            .unwrap()
            .contains("restarting failed container=regular-1")
    );
    cluster.stop().await;
}

#[tokio::test]
async fn post_start_completes_before_the_next_container_starts() {
    let cluster = Cluster::start(RuntimeKind::Process).await;
    let mut first = container("regular-1", 0, 2, 0);
    first["lifecycle"] =
        json!({"postStart": {"exec": {"command": command("PostStart-regular-1", 0, 1, 0)}}});
    cluster
        .create(pod(
            "post-start-blocks",
            "Never",
            vec![],
            vec![first, container("regular-2", 0, 1, 0)],
        ))
        .await;
    let done = cluster
        .wait_pod("post-start-blocks", "the pod to finish", finished)
        .await;
    assert_eq!(phase(&done), "Succeeded", "{:#?}", done.status);
    let timeline = timeline::parse(&done);
    assert!(
        timeline.starts_before("PostStart-regular-1", "regular-2"),
        "{timeline:#?}"
    );
    assert!(
        timeline.exits_before("PostStart-regular-1", "regular-2"),
        "{timeline:#?}"
    );
    cluster.stop().await;
}

#[tokio::test]
async fn bad_image_init_container_backs_off_and_nothing_starts() {
    let cluster = Cluster::start(RuntimeKind::Process).await;
    let mut init = container("init1-1", 0, 600, 0);
    init["image"] = json!("invalid.registry.k8s.io/invalid/alpine:3.1");
    cluster
        .create(pod(
            "bad-image",
            "Never",
            vec![init],
            vec![container("regular-1", 0, 1, 0)],
        ))
        .await;
    let pod = cluster
        .wait_pod("bad-image", "ImagePullBackOff", |pod| {
            assert_eq!(phase(pod), "Pending", "{:#?}", pod.status);
            statuses(pod).first().is_some_and(|s| {
                s.state
                    .as_ref()
                    .and_then(|s| s.waiting.as_ref())
                    .is_some_and(|w| w.reason.as_deref() == Some("ImagePullBackOff"))
            })
        })
        .await;
    let timeline = timeline::parse(&pod);
    assert!(!timeline.starts("init1-1"), "{timeline:#?}");
    assert!(!timeline.starts("regular-1"), "{timeline:#?}");
    assert!(
        statuses(&pod)
            .iter()
            .all(|s| s.restart_count == 0 && s.container_id.is_none()),
        "{:#?}",
        pod.status
    );
    cluster.stop().await;
}
