//! Pods of the lifecycle scenarios.
//!
//! Every container runs a shell script that logs its progress as
//! [`crate::timeline`] lines, both to its own file on a shared emptyDir
//! volume and to its termination log. A restarted container first copies
//! the log of its earlier runs into the termination log, so the latest
//! termination message tells the container's whole history. The scripts use
//! only POSIX sh, `date`, `cat`, `cut`, `tee`, `touch` and `sleep`, so they
//! run the same on a busybox image and on a Debian host's /bin/sh.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, ExecAction, Lifecycle, LifecycleHandler, Pod, PodSpec, Probe,
    ResourceRequirements, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Name of the shared emptyDir volume.
const VOLUME: &str = "persistent";
/// Where every container mounts the shared volume.
pub(crate) const LOG_DIR: &str = "/persistent";
/// The kubelet's default `terminationMessagePath`.
pub(crate) const TERMINATION_LOG: &str = "/dev/termination-log";
/// Prefix of the name a PostStart hook logs under.
pub const POST_START_PREFIX: &str = "PostStart";

/// Prints `<epoch seconds> <seconds since boot>`.
const TIME: &str = "`date +%s` `cut -d ' ' -f 1 /proc/uptime`";

/// What a logging container does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Script {
    /// Seconds between `Starting` and `Started`.
    pub start_delay: u32,
    /// Seconds between `Started` and `Exiting`.
    pub delay: u32,
    /// Exit code of the container.
    pub exit_code: i32,
}

/// The name a container's PostStart hook logs under.
pub fn post_start_name(container: &str) -> String {
    format!("{POST_START_PREFIX}-{container}")
}

/// The command of a container (or hook) that logs its lifecycle as `name`.
pub fn logging_command(name: &str, script: Script) -> Vec<String> {
    let log = format!("{LOG_DIR}/{name}.log");
    let append = format!("| tee -a {log} >> {TERMINATION_LOG}; ");
    let mut cmd = format!("touch {log}; cat {log} >> {TERMINATION_LOG}; ");
    let Script {
        start_delay,
        delay,
        exit_code,
    } = script;
    cmd += &format!("echo {TIME} '{name} Starting {start_delay}' {append}");
    if start_delay != 0 {
        cmd += &format!("sleep {start_delay}; ");
    }
    cmd += "touch started; ";
    cmd += &format!("echo {TIME} '{name} Started' {append}");
    cmd += &format!("echo {TIME} '{name} Delaying {delay}' {append}");
    if delay != 0 {
        cmd += &format!("sleep {delay}; ");
    }
    cmd += &format!("echo {TIME} '{name} Exiting' {append}");
    cmd += &format!("exit {exit_code}");
    vec!["sh".into(), "-c".into(), cmd]
}

/// A container that logs its lifecycle under its own name.
pub fn logging_container(name: &str, image: &str, script: Script) -> Container {
    Container {
        name: name.into(),
        image: Some(image.into()),
        command: Some(logging_command(name, script)),
        ..Container::default()
    }
}

/// Adds a PostStart hook that logs as `PostStart-<container>`.
pub fn with_post_start(mut container: Container, script: Script) -> Container {
    let command = logging_command(&post_start_name(&container.name), script);
    container.lifecycle = Some(Lifecycle {
        post_start: Some(LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(command),
            }),
            ..LifecycleHandler::default()
        }),
        ..Lifecycle::default()
    });
    container
}

/// Adds a startup probe that passes once the container logged `Started`.
pub fn with_started_probe(mut container: Container) -> Container {
    container.startup_probe = Some(Probe {
        exec: Some(ExecAction {
            command: Some(vec!["test".into(), "-f".into(), "started".into()]),
        }),
        ..Probe::default()
    });
    container
}

/// A pod whose containers share the log volume and a small memory budget.
pub fn lifecycle_pod(
    name: &str,
    restart_policy: &str,
    init_containers: Vec<Container>,
    containers: Vec<Container>,
) -> Pod {
    let prepare = |mut c: Container| {
        let memory = BTreeMap::from([("memory".to_owned(), Quantity("15Mi".into()))]);
        c.resources = Some(ResourceRequirements {
            requests: Some(memory.clone()),
            limits: Some(memory),
            ..ResourceRequirements::default()
        });
        c.volume_mounts = Some(vec![VolumeMount {
            name: VOLUME.into(),
            mount_path: LOG_DIR.into(),
            ..VolumeMount::default()
        }]);
        c
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some(restart_policy.into()),
            init_containers: Some(init_containers.into_iter().map(prepare).collect()),
            containers: containers.into_iter().map(prepare).collect(),
            volumes: Some(vec![Volume {
                name: VOLUME.into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            }]),
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

/// A pod with one container that exits 0 at once, for the image scenarios.
pub fn short_lived_pod(name: &str, image: &str, pull_policy: &str, restart_policy: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some(restart_policy.into()),
            containers: vec![Container {
                name: "main".into(),
                image: Some(image.into()),
                image_pull_policy: Some(pull_policy.into()),
                command: Some(vec!["sh".into(), "-c".into(), "exit 0".into()]),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::timeline::Timeline;

    /// Runs a logging command with the host's sh, its volume and
    /// termination log moved into `dir`, and returns the termination log.
    fn run_on_host(dir: &std::path::Path, command: &[String]) -> (i32, String) {
        let termination_log = dir.join("termination-log");
        let script = command[2]
            .replace(LOG_DIR, dir.to_str().unwrap())
            .replace(TERMINATION_LOG, termination_log.to_str().unwrap());
        let status = Command::new(&command[0])
            .args([&command[1], &script])
            .current_dir(dir)
            .status()
            .expect("sh runs");
        let log = std::fs::read_to_string(&termination_log).unwrap_or_default();
        (status.code().expect("exit code"), log)
    }

    #[test]
    fn logging_command_runs_on_a_posix_host_and_logs_a_timeline() {
        let dir = tempfile::tempdir().unwrap();
        let command = logging_command(
            "init-1",
            Script {
                start_delay: 0,
                delay: 0,
                exit_code: 3,
            },
        );
        assert_eq!(command[..2], ["sh", "-c"]);

        let (code, log) = run_on_host(dir.path(), &command);
        assert_eq!(code, 3);
        let timeline = Timeline::parse(&log).unwrap();
        let events: Vec<_> = timeline.entries().iter().map(|e| &e.event).collect();
        assert_eq!(events, ["Starting", "Started", "Delaying", "Exiting"]);
        assert!(timeline.entries().iter().all(|e| e.container == "init-1"));
        assert!(dir.path().join("started").exists());

        // A second run replays the first from the shared log, so its
        // termination message shows both runs.
        std::fs::remove_file(dir.path().join("termination-log")).unwrap();
        let (_, log) = run_on_host(dir.path(), &command);
        let timeline = Timeline::parse(&log).unwrap();
        assert_eq!(timeline.entries().len(), 8);
        assert!(timeline.has_restarted("init-1").is_ok());
    }

    #[test]
    fn delays_become_sleeps() {
        let script = Script {
            start_delay: 5,
            delay: 1,
            exit_code: 0,
        };
        let command = &logging_command("regular-1", script)[2];
        assert!(command.contains("'regular-1 Starting 5'"));
        assert!(command.contains("sleep 5; touch started;"));
        assert!(command.contains("sleep 1; echo"));
        assert!(command.ends_with("exit 0"));
        let no_delay = &logging_command("regular-1", Script::default())[2];
        assert!(!no_delay.contains("sleep"));
    }

    #[test]
    fn lifecycle_pod_mounts_the_log_volume_everywhere() {
        let image = "busybox";
        let init = logging_container("init-1", image, Script::default());
        let main = with_started_probe(with_post_start(
            logging_container("regular-1", image, Script::default()),
            Script::default(),
        ));
        let pod = lifecycle_pod("p", "Never", vec![init], vec![main]);
        let spec = pod.spec.unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.volumes.unwrap()[0].name, VOLUME);
        let all: Vec<_> = spec
            .init_containers
            .unwrap()
            .into_iter()
            .chain(spec.containers)
            .collect();
        assert_eq!(all.len(), 2);
        for c in &all {
            let mounts = c.volume_mounts.as_ref().unwrap();
            assert_eq!(mounts[0].mount_path, LOG_DIR);
            assert_eq!(
                c.resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"],
                Quantity("15Mi".into())
            );
        }
        let hook = all[1].lifecycle.as_ref().unwrap().post_start.as_ref();
        let hook_command = hook.unwrap().exec.as_ref().unwrap().command.as_ref();
        assert!(hook_command.unwrap()[2].contains("'PostStart-regular-1 Started'"));
        assert!(all[1].startup_probe.is_some());
    }
}
