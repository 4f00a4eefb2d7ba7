//! The `sim` runtime: containers are timers, no processes are started.
//!
//! A container runs until it is stopped unless pod annotations script it.
//! Keys are `sim.kstress.io/<container>.<behaviour>`, or
//! `sim.kstress.io/<behaviour>` for every container of the pod:
//!
//! - `start-delay`: how long starting takes (`500ms`, `2s`, `1m`);
//! - `run-duration`: the container exits on its own after this long;
//! - `exit-code`: its exit code then (default 0);
//! - `message`: its termination message.
//!
//! Pulls are scripted pod-wide (a pull is per image, not per container):
//! `sim.kstress.io/pull-duration` and `sim.kstress.io/pull-failure: "true"`.
//! Hooks and exec probes succeed; `httpGet` and `tcpSocket` probes succeed.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::{
    ContainerControl, ContainerRun, ExecOutput, Exit, NetworkProbe, PodSandbox, Runtime,
    RuntimeError, Started, StopSignal, container_id,
};
use crate::config::SIM_ANNOTATION_PREFIX;

/// Behaviour names used in `sim.kstress.io/` annotation keys.
pub mod annotation {
    pub const START_DELAY: &str = "start-delay";
    pub const RUN_DURATION: &str = "run-duration";
    pub const EXIT_CODE: &str = "exit-code";
    pub const MESSAGE: &str = "message";
    pub const PULL_DURATION: &str = "pull-duration";
    pub const PULL_FAILURE: &str = "pull-failure";
}

/// Reads `sim.kstress.io/` annotations, container-specific keys first.
pub struct SimScript<'a> {
    annotations: &'a BTreeMap<String, String>,
    container: Option<&'a str>,
}

impl<'a> SimScript<'a> {
    /// Pod-wide script.
    pub fn new(annotations: &'a BTreeMap<String, String>) -> Self {
        SimScript {
            annotations,
            container: None,
        }
    }

    /// Script of one container, falling back to pod-wide keys.
    pub fn for_container(annotations: &'a BTreeMap<String, String>, container: &'a str) -> Self {
        SimScript {
            annotations,
            container: Some(container),
        }
    }

    fn get(&self, behaviour: &str) -> Option<&'a str> {
        let specific = self.container.and_then(|c| {
            self.annotations
                .get(&format!("{SIM_ANNOTATION_PREFIX}{c}.{behaviour}"))
        });
        specific
            .or_else(|| {
                self.annotations
                    .get(&format!("{SIM_ANNOTATION_PREFIX}{behaviour}"))
            })
            .map(String::as_str)
    }

    /// A duration-valued behaviour; unparsable values are ignored.
    pub fn duration(&self, behaviour: &str) -> Option<Duration> {
        self.get(behaviour).and_then(parse_duration)
    }

    /// A boolean behaviour (`"true"`).
    pub fn flag(&self, behaviour: &str) -> bool {
        self.get(behaviour).is_some_and(|v| v == "true")
    }

    fn exit_code(&self) -> i32 {
        self.get(annotation::EXIT_CODE)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    fn message(&self) -> String {
        self.get(annotation::MESSAGE).unwrap_or_default().to_owned()
    }
}

/// Parses `250ms`, `3s`, `2m`, `1h` or a bare number of seconds.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

/// The `sim` runtime; stateless, each container is one task.
#[derive(Debug, Default)]
pub struct SimRuntime;

struct SimControl(mpsc::UnboundedSender<StopSignal>);

impl ContainerControl for SimControl {
    fn signal(&self, signal: StopSignal) {
        let _ = self.0.send(signal);
    }
}

#[async_trait]
impl Runtime for SimRuntime {
    fn version(&self) -> String {
        format!("kstress-sim://{}", env!("CARGO_PKG_VERSION"))
    }

    async fn create_pod(&self, _pod: &PodSandbox) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn start(&self, run: &ContainerRun) -> Result<Started, RuntimeError> {
        let script = SimScript::for_container(&run.annotations, &run.container);
        if let Some(delay) = script.duration(annotation::START_DELAY) {
            tokio::time::sleep(delay).await;
        }
        let run_for = script.duration(annotation::RUN_DURATION);
        let natural = Exit {
            code: script.exit_code(),
            message: script.message(),
        };
        let (signals, mut signalled) = mpsc::unbounded_channel();
        let (exit_tx, exit) = oneshot::channel();
        tokio::spawn(async move {
            let ran_out = async {
                match run_for {
                    Some(duration) => tokio::time::sleep(duration).await,
                    None => std::future::pending().await,
                }
            };
            let exit = tokio::select! {
                () = ran_out => natural,
                signal = signalled.recv() => Exit {
                    // A well-behaved program exits 0 on SIGTERM; SIGKILL is 128 + 9.
                    code: if signal == Some(StopSignal::Kill) { 137 } else { 0 },
                    message: natural.message,
                },
            };
            let _ = exit_tx.send(exit);
        });
        Ok(Started {
            id: container_id("kstress-sim"),
            exit,
            control: Box::new(SimControl(signals)),
            log: None,
        })
    }

    async fn exec(
        &self,
        _run: &ContainerRun,
        _command: &[String],
        _timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        Ok(ExecOutput {
            code: 0,
            output: String::new(),
        })
    }

    async fn probe_network(&self, _probe: &NetworkProbe, _timeout: Duration) -> Result<(), String> {
        Ok(())
    }

    async fn remove_pod(&self, _pod_uid: &str) {}

    async fn shutdown(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("3s"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5m"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("3 days"), None);
    }

    #[test]
    fn container_keys_override_pod_keys() {
        let annotations: BTreeMap<String, String> = [
            ("sim.kstress.io/exit-code", "2"),
            ("sim.kstress.io/web.exit-code", "3"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(SimScript::for_container(&annotations, "web").exit_code(), 3);
        assert_eq!(SimScript::for_container(&annotations, "db").exit_code(), 2);
    }

    #[tokio::test]
    async fn scripted_containers_exit_and_others_wait_for_a_signal() {
        let annotations: BTreeMap<String, String> = [
            ("sim.kstress.io/job.run-duration", "10ms"),
            ("sim.kstress.io/job.exit-code", "4"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let run = |container: &str| ContainerRun {
            pod_uid: "u".into(),
            pod_name: "p".into(),
            container: container.into(),
            attempt: 0,
            argv: vec![],
            env: vec![],
            working_dir: None,
            mounts: vec![],
            termination_message_path: "/dev/termination-log".into(),
            annotations: annotations.clone(),
        };
        let job = SimRuntime.start(&run("job")).await.unwrap();
        assert_eq!(job.exit.await.unwrap().code, 4);
        let server = SimRuntime.start(&run("server")).await.unwrap();
        server.control.signal(StopSignal::Kill);
        assert_eq!(server.exit.await.unwrap().code, 137);
    }
}
