//! What a pod worker knows about each container, and the pod status a
//! kubelet derives from it: phase, conditions and container statuses with
//! upstream's reasons.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::runtime::{ContainerControl, ContainerRun};

/// Waiting reason of a container whose pod is still creating it.
pub const CONTAINER_CREATING: &str = "ContainerCreating";
/// Waiting reason while init containers have not all succeeded.
pub const POD_INITIALIZING: &str = "PodInitializing";
/// Waiting reason while a crashed container's restart is delayed.
pub const CRASH_LOOP_BACK_OFF: &str = "CrashLoopBackOff";
/// Terminated reason of a container that exited 0.
pub const COMPLETED: &str = "Completed";
/// Terminated reason of a container that exited non-zero.
pub const ERROR: &str = "Error";
/// Terminated reason of a container the runtime could not start.
pub const START_ERROR: &str = "StartError";

/// A pod's restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("Never") => RestartPolicy::Never,
            Some("OnFailure") => RestartPolicy::OnFailure,
            _ => RestartPolicy::Always,
        }
    }
}

/// A container that is running now.
pub struct Running {
    pub id: String,
    pub started_at: Timestamp,
    pub since: Instant,
    pub run: ContainerRun,
    pub control: Arc<dyn ContainerControl>,
    pub prober: Option<JoinHandle<()>>,
}

/// Where a container stands.
pub enum Phase {
    /// Not running; start it once `retry_at` has passed (or at its turn when `None`).
    Waiting {
        reason: String,
        message: Option<String>,
        retry_at: Option<Instant>,
    },
    Running(Running),
    /// Exited and will not be restarted.
    Terminated(ContainerStateTerminated),
}

/// One init or regular container of the pod.
pub struct Slot {
    pub spec: Container,
    pub init: bool,
    /// How many runs have started; `restartCount` is one less.
    pub runs: u32,
    pub phase: Phase,
    pub last: Option<ContainerStateTerminated>,
    pub image_id: String,
    /// The startup probe passed (or there is none).
    pub started: bool,
    pub ready: bool,
    /// Identifies the current run, so stale exits and probe results are ignored.
    pub instance: u64,
    /// Delay before the next crash-loop restart; `None` restarts at once.
    pub next_backoff: Option<Duration>,
}

impl Slot {
    pub fn new(spec: Container, init: bool, waiting_reason: &str) -> Self {
        Slot {
            spec,
            init,
            runs: 0,
            phase: Phase::Waiting {
                reason: waiting_reason.to_owned(),
                message: None,
                retry_at: None,
            },
            last: None,
            image_id: String::new(),
            started: false,
            ready: false,
            instance: 0,
            next_backoff: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn is_running(&self) -> bool {
        matches!(self.phase, Phase::Running(_))
    }

    pub fn succeeded(&self) -> bool {
        matches!(&self.phase, Phase::Terminated(t) if t.exit_code == 0)
    }

    /// Whether this container exited successfully as far as the pod phase
    /// is concerned: terminated with 0, or waiting to restart after exiting 0.
    fn stopped(&self) -> Option<bool> {
        match &self.phase {
            Phase::Terminated(t) => Some(t.exit_code == 0),
            Phase::Waiting { .. } => self.last.as_ref().map(|t| t.exit_code == 0),
            Phase::Running(_) => None,
        }
    }

    pub fn status(&self) -> ContainerStatus {
        let (state, container_id) = match &self.phase {
            Phase::Waiting {
                reason, message, ..
            } => (
                ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some(reason.clone()),
                        message: message.clone(),
                    }),
                    ..ContainerState::default()
                },
                self.last.as_ref().and_then(|t| t.container_id.clone()),
            ),
            Phase::Running(running) => (
                ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: Some(Time(running.started_at)),
                    }),
                    ..ContainerState::default()
                },
                Some(running.id.clone()),
            ),
            Phase::Terminated(t) => (
                ContainerState {
                    terminated: Some(t.clone()),
                    ..ContainerState::default()
                },
                t.container_id.clone(),
            ),
        };
        let running = self.is_running();
        ContainerStatus {
            name: self.spec.name.clone(),
            image: self.spec.image.clone().unwrap_or_default(),
            image_id: self.image_id.clone(),
            container_id,
            ready: if self.init {
                self.succeeded()
            } else {
                running && self.ready
            },
            started: Some(running && (self.init || self.started)),
            restart_count: i32::try_from(self.runs.saturating_sub(1)).unwrap_or(i32::MAX),
            state: Some(state),
            last_state: Some(ContainerState {
                terminated: self.last.clone(),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }
    }
}

/// The pod phase upstream's kubelet computes from its containers.
pub fn phase(
    init: &[Slot],
    regular: &[Slot],
    policy: RestartPolicy,
    terminated: bool,
) -> &'static str {
    if terminated {
        let all_succeeded = regular.iter().all(|s| s.stopped() == Some(true));
        return if all_succeeded { "Succeeded" } else { "Failed" };
    }
    if init
        .iter()
        .any(|s| matches!(&s.phase, Phase::Terminated(t) if t.exit_code != 0))
    {
        return "Failed";
    }
    if !init.iter().all(Slot::succeeded) {
        return "Pending";
    }
    let (mut waiting, mut running, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for slot in regular {
        match (slot.is_running(), slot.stopped()) {
            (true, _) => running += 1,
            (false, Some(ok)) => {
                stopped += 1;
                succeeded += usize::from(ok);
            }
            (false, None) => waiting += 1,
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 || policy == RestartPolicy::Always {
        "Running"
    } else if stopped == succeeded {
        "Succeeded"
    } else if policy == RestartPolicy::Never {
        "Failed"
    } else {
        "Running"
    }
}

/// Keeps each condition's `lastTransitionTime` stable while its status holds.
#[derive(Default)]
pub struct Conditions {
    since: BTreeMap<&'static str, (String, Timestamp)>,
}

impl Conditions {
    fn condition(
        &mut self,
        type_: &'static str,
        ok: bool,
        reason: Option<&str>,
        message: Option<String>,
    ) -> PodCondition {
        let status = if ok { "True" } else { "False" };
        let entry = self
            .since
            .entry(type_)
            .or_insert_with(|| (status.to_owned(), Timestamp::now()));
        if entry.0 != status {
            *entry = (status.to_owned(), Timestamp::now());
        }
        PodCondition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.map(str::to_owned),
            message,
            last_transition_time: Some(Time(entry.1)),
            ..PodCondition::default()
        }
    }

    /// PodReadyToStartContainers, Initialized, ContainersReady, Ready and
    /// PodScheduled, as upstream words them.
    pub fn build(
        &mut self,
        init: &[Slot],
        regular: &[Slot],
        phase: &str,
        sandbox_ready: bool,
    ) -> Vec<PodCondition> {
        let names = |slots: &[&Slot]| {
            let names: Vec<&str> = slots.iter().map(|s| s.name()).collect();
            format!("[{}]", names.join(" "))
        };
        let incomplete: Vec<&Slot> = init.iter().filter(|s| !s.succeeded()).collect();
        let unready: Vec<&Slot> = regular
            .iter()
            .filter(|s| !(s.is_running() && s.ready))
            .collect();
        let completed = phase == "Succeeded";
        let initialized = incomplete.is_empty() || completed;
        let init_condition = if initialized {
            self.condition(
                "Initialized",
                true,
                completed.then_some("PodCompleted"),
                None,
            )
        } else {
            self.condition(
                "Initialized",
                false,
                Some("ContainersNotInitialized"),
                Some(format!(
                    "containers with incomplete status: {}",
                    names(&incomplete)
                )),
            )
        };
        let ready = unready.is_empty() && !completed && phase == "Running";
        let (reason, message) = if ready {
            (None, None)
        } else if completed {
            (Some("PodCompleted"), None)
        } else {
            (
                Some("ContainersNotReady"),
                Some(format!(
                    "containers with unready status: {}",
                    names(&unready)
                )),
            )
        };
        vec![
            self.condition("PodReadyToStartContainers", sandbox_ready, None, None),
            init_condition,
            self.condition("Ready", ready, reason, message.clone()),
            self.condition("ContainersReady", ready, reason, message),
            self.condition("PodScheduled", true, None, None),
        ]
    }
}

/// The full status a worker reports.
pub struct StatusInput<'a> {
    pub init: &'a [Slot],
    pub regular: &'a [Slot],
    pub phase: &'static str,
    pub sandbox_ready: bool,
    pub host_ip: &'a str,
    pub pod_ip: &'a str,
    pub start_time: Timestamp,
    pub message: Option<String>,
}

pub fn pod_status(input: StatusInput<'_>, conditions: &mut Conditions) -> PodStatus {
    let StatusInput {
        init,
        regular,
        phase,
        sandbox_ready,
        host_ip,
        pod_ip,
        start_time,
        message,
    } = input;
    PodStatus {
        phase: Some(phase.to_owned()),
        conditions: Some(conditions.build(init, regular, phase, sandbox_ready)),
        host_ip: Some(host_ip.to_owned()),
        host_ips: Some(vec![HostIP {
            ip: host_ip.to_owned(),
        }]),
        pod_ip: Some(pod_ip.to_owned()),
        pod_ips: Some(vec![PodIP {
            ip: pod_ip.to_owned(),
        }]),
        start_time: Some(Time(start_time)),
        message,
        init_container_statuses: (!init.is_empty())
            .then(|| init.iter().map(Slot::status).collect()),
        container_statuses: Some(regular.iter().map(Slot::status).collect()),
        ..PodStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(phase: Phase, last_exit: Option<i32>) -> Slot {
        let mut slot = Slot::new(Container::default(), false, CONTAINER_CREATING);
        slot.phase = phase;
        slot.last = last_exit.map(|code| ContainerStateTerminated {
            exit_code: code,
            ..ContainerStateTerminated::default()
        });
        slot
    }

    fn terminated(code: i32) -> Phase {
        Phase::Terminated(ContainerStateTerminated {
            exit_code: code,
            ..ContainerStateTerminated::default()
        })
    }

    fn waiting() -> Phase {
        Phase::Waiting {
            reason: CONTAINER_CREATING.into(),
            message: None,
            retry_at: None,
        }
    }

    #[test]
    fn phases_follow_upstream_rules() {
        use RestartPolicy::*;
        assert_eq!(
            phase(&[], &[slot(waiting(), None)], Never, false),
            "Pending"
        );
        assert_eq!(
            phase(&[], &[slot(terminated(0), None)], Never, false),
            "Succeeded"
        );
        assert_eq!(
            phase(&[], &[slot(terminated(1), None)], Never, false),
            "Failed"
        );
        assert_eq!(
            phase(&[], &[slot(terminated(1), None)], OnFailure, false),
            "Running"
        );
        assert_eq!(
            phase(&[], &[slot(waiting(), Some(1))], Always, false),
            "Running"
        );
        let failed_init = [slot(terminated(1), None)];
        assert_eq!(
            phase(&failed_init, &[slot(waiting(), None)], Never, false),
            "Failed"
        );
        let pending_init = [slot(waiting(), None)];
        assert_eq!(
            phase(&pending_init, &[slot(waiting(), None)], Never, false),
            "Pending"
        );
        assert_eq!(
            phase(&[], &[slot(terminated(143), None)], Always, true),
            "Failed"
        );
        assert_eq!(
            phase(&[], &[slot(terminated(0), None)], Always, true),
            "Succeeded"
        );
    }

    #[test]
    fn transition_times_hold_while_status_holds() {
        let mut conditions = Conditions::default();
        let first = conditions.build(&[], &[slot(waiting(), None)], "Pending", true);
        let again = conditions.build(&[], &[slot(waiting(), None)], "Pending", true);
        assert_eq!(first, again);
        let ready = &first.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: []")
        );
    }
}
