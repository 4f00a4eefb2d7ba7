//! Startup, liveness and readiness probes of one running container.
//!
//! A prober task runs per container run and reports only what changes the
//! container's status: the startup probe passing, readiness flipping, or a
//! startup/liveness probe failing `failureThreshold` times in a row.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::sync::mpsc;

use crate::runtime::{ContainerRun, NetworkProbe, Runtime};

/// What a prober tells its pod worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The startup probe passed (or there is none): liveness and readiness begin.
    Started,
    /// Readiness changed.
    Ready(bool),
    /// The startup or liveness probe failed too often: restart the container.
    Failed {
        probe: &'static str,
        message: String,
    },
}

/// Everything a prober needs, cloned into its task.
pub struct Prober {
    pub runtime: Arc<dyn Runtime>,
    pub run: ContainerRun,
    pub container: Container,
    pub pod_ip: String,
}

/// Whether a container needs a prober at all.
pub fn has_probes(container: &Container) -> bool {
    container.startup_probe.is_some()
        || container.liveness_probe.is_some()
        || container.readiness_probe.is_some()
}

fn secs(value: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(u64::try_from(value.unwrap_or(default).max(0)).unwrap_or(0))
}

fn threshold(value: Option<i32>, default: i32) -> u32 {
    u32::try_from(value.unwrap_or(default).max(1)).unwrap_or(1)
}

impl Prober {
    /// Probes until the container's run ends (the task is aborted) or a
    /// startup/liveness failure is reported.
    pub async fn run(self, report: mpsc::UnboundedSender<ProbeOutcome>) {
        if let Some(startup) = &self.container.startup_probe {
            match self.until_threshold(startup).await {
                Ok(()) => {}
                Err(message) => {
                    let _ = report.send(ProbeOutcome::Failed {
                        probe: "Startup",
                        message,
                    });
                    return;
                }
            }
        }
        let _ = report.send(ProbeOutcome::Started);
        let liveness = async {
            let Some(probe) = &self.container.liveness_probe else {
                return std::future::pending().await;
            };
            let message = self.until_threshold_fails(probe).await;
            let _ = report.send(ProbeOutcome::Failed {
                probe: "Liveness",
                message,
            });
        };
        let readiness = async {
            let Some(probe) = &self.container.readiness_probe else {
                return std::future::pending().await;
            };
            tokio::time::sleep(secs(probe.initial_delay_seconds, 0)).await;
            let (mut successes, mut failures, mut ready) = (0u32, 0u32, None);
            loop {
                if self.check(probe).await.is_ok() {
                    successes += 1;
                    failures = 0;
                    if successes >= threshold(probe.success_threshold, 1) && ready != Some(true) {
                        ready = Some(true);
                        let _ = report.send(ProbeOutcome::Ready(true));
                    }
                } else {
                    failures += 1;
                    successes = 0;
                    if failures >= threshold(probe.failure_threshold, 3) && ready != Some(false) {
                        ready = Some(false);
                        let _ = report.send(ProbeOutcome::Ready(false));
                    }
                }
                tokio::time::sleep(secs(probe.period_seconds, 10)).await;
            }
        };
        // Only a liveness failure ends the prober; readiness runs until the
        // task is aborted.
        tokio::select! {
            () = liveness => {}
            () = readiness => {}
        }
    }

    /// Probes until `successThreshold` successes in a row, or fails after
    /// `failureThreshold` failures in a row.
    async fn until_threshold(&self, probe: &Probe) -> Result<(), String> {
        tokio::time::sleep(secs(probe.initial_delay_seconds, 0)).await;
        let mut failures = 0;
        loop {
            match self.check(probe).await {
                Ok(()) => return Ok(()),
                Err(message) => {
                    failures += 1;
                    if failures >= threshold(probe.failure_threshold, 3) {
                        return Err(message);
                    }
                }
            }
            tokio::time::sleep(secs(probe.period_seconds, 10)).await;
        }
    }

    /// Probes until `failureThreshold` failures in a row; returns the last
    /// failure's message.
    async fn until_threshold_fails(&self, probe: &Probe) -> String {
        tokio::time::sleep(secs(probe.initial_delay_seconds, 0)).await;
        let mut failures = 0;
        loop {
            match self.check(probe).await {
                Ok(()) => failures = 0,
                Err(message) => {
                    failures += 1;
                    if failures >= threshold(probe.failure_threshold, 3) {
                        return message;
                    }
                }
            }
            tokio::time::sleep(secs(probe.period_seconds, 10)).await;
        }
    }

    /// One probe attempt.
    async fn check(&self, probe: &Probe) -> Result<(), String> {
        let timeout = secs(probe.timeout_seconds, 1).max(Duration::from_secs(1));
        if let Some(exec) = &probe.exec {
            let command = exec.command.clone().unwrap_or_default();
            return match self.runtime.exec(&self.run, &command, timeout).await {
                Ok(out) if out.code == 0 => Ok(()),
                Ok(out) => Err(format!(
                    "command {command:?} exited with {}: {}",
                    out.code, out.output
                )),
                Err(err) => Err(err.to_string()),
            };
        }
        let target = if let Some(http) = &probe.http_get {
            NetworkProbe::Http {
                host: http.host.clone().unwrap_or_else(|| self.pod_ip.clone()),
                port: self.port(&http.port)?,
                path: http.path.clone().unwrap_or_else(|| "/".into()),
                headers: http
                    .http_headers
                    .iter()
                    .flatten()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect(),
            }
        } else if let Some(tcp) = &probe.tcp_socket {
            NetworkProbe::Tcp {
                host: tcp.host.clone().unwrap_or_else(|| self.pod_ip.clone()),
                port: self.port(&tcp.port)?,
            }
        } else {
            return Err("the probe has no exec, httpGet or tcpSocket handler".into());
        };
        self.runtime.probe_network(&target, timeout).await
    }

    /// A probe's port, by number or by the name of a container port.
    fn port(&self, port: &IntOrString) -> Result<u16, String> {
        match port {
            IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
            IntOrString::String(name) => self
                .container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| format!("port {name:?} is not a named port of the container")),
        }
    }
}
