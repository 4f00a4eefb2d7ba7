//! One pod's worker: runs its init containers one at a time, then its
//! containers in order (each PostStart hook finishing before the next
//! container starts), restarts them per the restart policy with crash-loop
//! back-off, acts on probes, reports status, and carries out graceful
//! deletion.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerStateTerminated, LifecycleHandler, ObjectReference, Pod,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::Context;
use super::probe::{ProbeOutcome, Prober, has_probes};
use super::spec;
use super::state::{
    COMPLETED, CONTAINER_CREATING, CRASH_LOOP_BACK_OFF, Conditions, ERROR, POD_INITIALIZING, Phase,
    RestartPolicy, Running, START_ERROR, Slot, StatusInput, phase, pod_status,
};
use crate::images::EventType;
use crate::logs::ContainerLog;
use crate::runtime::{ContainerControl, ContainerRun, Exit, NetworkProbe, Runtime, StopSignal};

/// Upstream's limits for a termination message taken from the log.
const FALLBACK_LOG_LINES: usize = 80;
const FALLBACK_LOG_BYTES: usize = 2048;
/// How long a pod's containers get to exit after SIGKILL before the worker
/// gives up on them.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// Upper bound on a PostStart hook (upstream has none; a hung hook would
/// otherwise block the pod forever).
const HOOK_TIMEOUT: Duration = Duration::from_secs(120);

/// What happens to a pod's containers, delivered to its worker.
enum Event {
    Exited {
        index: usize,
        instance: u64,
        exit: Exit,
    },
    Probe {
        index: usize,
        instance: u64,
        outcome: ProbeOutcome,
    },
}

/// The pod worker's state.
pub struct Worker {
    ctx: Arc<Context>,
    pod: Arc<Pod>,
    updates: watch::Receiver<Option<Arc<Pod>>>,
    events: mpsc::UnboundedReceiver<Event>,
    sender: mpsc::UnboundedSender<Event>,
    /// Init containers first, then regular ones.
    slots: Vec<Slot>,
    init_count: usize,
    policy: RestartPolicy,
    pod_ip: String,
    start_time: Timestamp,
    sandbox_ready: bool,
    sandbox_error: Option<String>,
    conditions: Conditions,
    terminated: bool,
    reported: Option<serde_json::Value>,
    next_instance: u64,
}

impl Worker {
    pub fn new(
        ctx: Arc<Context>,
        pod: Arc<Pod>,
        updates: watch::Receiver<Option<Arc<Pod>>>,
        pod_ip: String,
    ) -> Self {
        let spec = pod.spec.clone().unwrap_or_default();
        let init_containers = spec.init_containers.unwrap_or_default();
        let waiting = if init_containers.is_empty() {
            CONTAINER_CREATING
        } else {
            POD_INITIALIZING
        };
        let init_count = init_containers.len();
        let slots = init_containers
            .into_iter()
            .map(|c| Slot::new(c, true, waiting))
            .chain(
                spec.containers
                    .into_iter()
                    .map(|c| Slot::new(c, false, waiting)),
            )
            .collect();
        let (sender, events) = mpsc::unbounded_channel();
        Worker {
            ctx,
            updates,
            events,
            sender,
            slots,
            init_count,
            policy: RestartPolicy::parse(spec.restart_policy.as_deref()),
            pod_ip,
            start_time: Timestamp::now(),
            sandbox_ready: false,
            sandbox_error: None,
            conditions: Conditions::default(),
            terminated: false,
            reported: None,
            next_instance: 0,
            pod,
        }
    }

    fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or_default()
    }

    fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or_default()
    }

    fn uid(&self) -> &str {
        self.pod.metadata.uid.as_deref().unwrap_or_default()
    }

    /// Runs the pod until it is deleted.
    pub async fn run(mut self) {
        match self.ctx.runtime.create_pod(&spec::sandbox(&self.pod)).await {
            Ok(()) => self.sandbox_ready = true,
            Err(err) => self.sandbox_error = Some(err.to_string()),
        }
        for slot in &self.slots {
            self.ctx.logs.set(
                self.namespace(),
                self.name(),
                slot.name(),
                ContainerLog::default(),
            );
        }
        loop {
            if self.pod.metadata.deletion_timestamp.is_some() {
                self.terminate().await;
                return;
            }
            if self.sandbox_ready {
                self.sync().await;
            }
            self.publish().await;
            let wake = self.next_wake();
            tokio::select! {
                Some(event) = self.events.recv() => self.handle(event),
                changed = self.updates.changed() => {
                    let latest = self.updates.borrow_and_update().clone();
                    match (changed, latest) {
                        (Ok(()), Some(pod)) => self.pod = pod,
                        _ => {
                            self.vanish().await;
                            return;
                        }
                    }
                }
                () = sleep_until(wake) => {}
            }
        }
    }

    fn is_terminal(&self) -> bool {
        matches!(self.phase(), "Succeeded" | "Failed")
    }

    fn phase(&self) -> &'static str {
        let (init, regular) = self.slots.split_at(self.init_count);
        phase(init, regular, self.policy, self.terminated)
    }

    fn next_wake(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|slot| match slot.phase {
                Phase::Waiting { retry_at, .. } => retry_at,
                _ => None,
            })
            .min()
    }

    /// Starts whatever may start now: the next init container, or every
    /// regular container that is due, in spec order.
    async fn sync(&mut self) {
        if self.is_terminal() {
            return;
        }
        for index in 0..self.init_count {
            match &self.slots[index].phase {
                Phase::Terminated(t) if t.exit_code == 0 => continue,
                Phase::Terminated(_) | Phase::Running(_) => return,
                Phase::Waiting { retry_at, .. } => {
                    if retry_at.is_none_or(|at| at <= Instant::now()) {
                        self.start(index).await;
                    }
                    return;
                }
            }
        }
        for index in self.init_count..self.slots.len() {
            if let Phase::Waiting { retry_at, .. } = &self.slots[index].phase
                && retry_at.is_none_or(|at| at <= Instant::now())
            {
                self.start(index).await;
            }
        }
    }

    fn reference(&self, index: usize) -> ObjectReference {
        let slot = &self.slots[index];
        let field = if slot.init {
            "initContainers"
        } else {
            "containers"
        };
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: self.pod.metadata.name.clone(),
            namespace: self.pod.metadata.namespace.clone(),
            uid: self.pod.metadata.uid.clone(),
            field_path: Some(format!("spec.{field}{{{}}}", slot.name())),
            ..ObjectReference::default()
        }
    }

    fn event(&self, index: usize, kind: EventType, reason: &str, message: &str) {
        use crate::images::EventRecorder;
        self.ctx
            .recorder
            .event(&self.reference(index), kind, reason, message);
    }

    fn set_log(&self, index: usize, log: ContainerLog) {
        self.ctx
            .logs
            .set(self.namespace(), self.name(), self.slots[index].name(), log);
    }

    fn current_log(&self, index: usize) -> ContainerLog {
        self.ctx
            .logs
            .get(self.namespace(), self.name(), self.slots[index].name())
            .flatten()
            .unwrap_or_default()
    }

    /// Pulls the image and starts one run of container `index`, then runs
    /// its PostStart hook to completion.
    async fn start(&mut self, index: usize) {
        let container = self.slots[index].spec.clone();
        let image = self
            .ctx
            .images
            .ensure_image_exists(&self.pod, &container, &[], None)
            .await;
        let image = match image {
            Ok(image) => image,
            Err(err) => {
                let mut log = self.current_log(index);
                log.waiting_reason = Some(err.reason().to_owned());
                self.set_log(index, log);
                self.slots[index].phase = Phase::Waiting {
                    reason: err.reason().to_owned(),
                    message: Some(err.message().to_owned()),
                    retry_at: Some(Instant::now() + self.ctx.config.image_retry_interval),
                };
                return;
            }
        };
        self.slots[index].image_id = format!("kstress://{}", image.image_ref);
        let attempt = self.slots[index].runs;
        let run = spec::container_run(&self.pod, &container, attempt, &self.pod_ip);
        self.slots[index].runs += 1;
        self.next_instance += 1;
        let instance = self.next_instance;
        self.slots[index].instance = instance;
        let started_at = Timestamp::now();
        let started = match self.ctx.runtime.start(&run).await {
            Ok(started) => started,
            Err(err) => {
                self.event(
                    index,
                    EventType::Warning,
                    "Failed",
                    &format!("Error: {err}"),
                );
                let exit = Exit {
                    code: 128,
                    message: err.to_string(),
                };
                self.exited(index, exit, started_at, String::new(), START_ERROR);
                return;
            }
        };
        let control: Arc<dyn ContainerControl> = Arc::from(started.control);
        let previous = self.current_log(index).current;
        self.set_log(
            index,
            ContainerLog {
                current: started.log,
                previous,
                running: true,
                waiting_reason: None,
            },
        );
        let sender = self.sender.clone();
        let exit = started.exit;
        tokio::spawn(async move {
            let exit = exit.await.unwrap_or(Exit {
                code: 137,
                message: String::new(),
            });
            let _ = sender.send(Event::Exited {
                index,
                instance,
                exit,
            });
        });
        // The kubelet reports creating and starting as two events, in this
        // order, with its own wording for each.
        self.event(
            index,
            EventType::Normal,
            "Created",
            &format!("Created container: {}", container.name),
        );
        self.event(
            index,
            EventType::Normal,
            "Started",
            &format!("Started container {}", container.name),
        );
        let slot = &mut self.slots[index];
        slot.started = !has_probes(&container) || container.startup_probe.is_none();
        slot.ready = container.readiness_probe.is_none() && slot.started;
        let prober = has_probes(&container).then(|| {
            let (report, mut outcomes) = mpsc::unbounded_channel();
            let sender = self.sender.clone();
            let prober = Prober {
                runtime: self.ctx.runtime.clone(),
                run: run.clone(),
                container: container.clone(),
                pod_ip: self.pod_ip.clone(),
            };
            tokio::spawn(async move {
                let forward = async {
                    while let Some(outcome) = outcomes.recv().await {
                        let _ = sender.send(Event::Probe {
                            index,
                            instance,
                            outcome,
                        });
                    }
                };
                tokio::join!(prober.run(report), forward);
            })
        });
        self.slots[index].phase = Phase::Running(Running {
            id: started.id,
            started_at,
            since: Instant::now(),
            run: run.clone(),
            control: control.clone(),
            prober,
        });
        if let Some(hook) = container
            .lifecycle
            .as_ref()
            .and_then(|l| l.post_start.as_ref())
        {
            self.publish().await;
            let outcome = run_hook(
                self.ctx.runtime.as_ref(),
                &self.pod_ip,
                &run,
                hook,
                HOOK_TIMEOUT,
            )
            .await;
            if let Err(message) = outcome {
                self.event(
                    index,
                    EventType::Warning,
                    "FailedPostStartHook",
                    &format!("PostStartHook failed: {message}"),
                );
                control.signal(StopSignal::Kill);
            }
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Exited {
                index,
                instance,
                exit,
            } => {
                if self.slots[index].instance != instance {
                    return;
                }
                let Phase::Running(running) = &self.slots[index].phase else {
                    return;
                };
                let (started_at, id) = (running.started_at, running.id.clone());
                let reason = if exit.code == 0 { COMPLETED } else { ERROR };
                self.exited(index, exit, started_at, id, reason);
            }
            Event::Probe {
                index,
                instance,
                outcome,
            } => {
                if self.slots[index].instance != instance || !self.slots[index].is_running() {
                    return;
                }
                self.probed(index, outcome);
            }
        }
    }

    fn probed(&mut self, index: usize, outcome: ProbeOutcome) {
        let slot = &mut self.slots[index];
        match outcome {
            ProbeOutcome::Started => {
                slot.started = true;
                slot.ready = slot.spec.readiness_probe.is_none();
            }
            ProbeOutcome::Ready(ready) => slot.ready = ready,
            ProbeOutcome::Failed { probe, message } => {
                let name = slot.name().to_owned();
                slot.ready = false;
                self.event(
                    index,
                    EventType::Warning,
                    "Unhealthy",
                    &format!("{probe} probe failed: {message}"),
                );
                self.event(
                    index,
                    EventType::Normal,
                    "Killing",
                    &format!(
                        "Container {name} failed {} probe, will be restarted",
                        probe.to_lowercase()
                    ),
                );
                if let Phase::Running(running) = &self.slots[index].phase {
                    self.stop_in_background(running.control.clone());
                }
            }
        }
    }

    /// SIGTERM now, SIGKILL after the pod's grace period.
    fn stop_in_background(&self, control: Arc<dyn ContainerControl>) {
        let grace = self.grace_period();
        control.signal(StopSignal::Term);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            control.signal(StopSignal::Kill);
        });
    }

    fn grace_period(&self) -> Duration {
        let seconds = self
            .pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30)
            .max(0);
        Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
    }

    /// Records the end of a run and decides whether and when it restarts.
    fn exited(
        &mut self,
        index: usize,
        exit: Exit,
        started_at: Timestamp,
        container_id: String,
        reason: &str,
    ) {
        let mut log = self.current_log(index);
        log.running = false;
        let message = self.termination_message(&self.slots[index].spec, &exit, &log);
        self.set_log(index, log);
        let slot = &mut self.slots[index];
        let ran_for = match &slot.phase {
            Phase::Running(running) => {
                if let Some(prober) = &running.prober {
                    prober.abort();
                }
                running.since.elapsed()
            }
            _ => Duration::ZERO,
        };
        let terminated = ContainerStateTerminated {
            exit_code: exit.code,
            reason: Some(reason.to_owned()),
            message: (!message.is_empty()).then_some(message),
            started_at: Some(Time(started_at)),
            finished_at: Some(Time(Timestamp::now())),
            container_id: (!container_id.is_empty()).then_some(container_id),
            ..ContainerStateTerminated::default()
        };
        slot.ready = false;
        slot.started = false;
        let restart = !self.terminated
            && self.pod.metadata.deletion_timestamp.is_none()
            && match (slot.init, self.policy) {
                (_, RestartPolicy::Never) => false,
                (true, _) | (false, RestartPolicy::OnFailure) => exit.code != 0,
                (false, RestartPolicy::Always) => true,
            };
        if !restart {
            slot.phase = Phase::Terminated(terminated);
            return;
        }
        let max = self.ctx.config.crash_loop_backoff_max;
        if ran_for >= max.saturating_mul(2) {
            slot.next_backoff = None;
        }
        let delay = slot.next_backoff.unwrap_or(Duration::ZERO);
        slot.next_backoff = Some(if delay.is_zero() {
            self.ctx.config.crash_loop_backoff_initial
        } else {
            delay.saturating_mul(2).min(max)
        });
        slot.last = Some(terminated);
        let name = slot.name().to_owned();
        let message = format!(
            "back-off {} restarting failed container={name} pod={}_{}({})",
            go_duration(delay),
            self.name(),
            self.namespace(),
            self.uid()
        );
        self.slots[index].phase = Phase::Waiting {
            reason: CRASH_LOOP_BACK_OFF.to_owned(),
            message: Some(message),
            retry_at: Some(Instant::now() + delay),
        };
        if !delay.is_zero() {
            self.event(
                index,
                EventType::Warning,
                "BackOff",
                &format!(
                    "Back-off restarting failed container {name} in pod {}",
                    self.name()
                ),
            );
        }
    }

    /// The termination message: the file's content, or with
    /// `FallbackToLogsOnError` the tail of the log when the file is empty
    /// and the container failed.
    fn termination_message(
        &self,
        container: &Container,
        exit: &Exit,
        log: &ContainerLog,
    ) -> String {
        let fallback =
            container.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
        if !exit.message.is_empty() || !fallback || exit.code == 0 {
            return exit.message.clone();
        }
        let Some(path) = &log.current else {
            return String::new();
        };
        let content = std::fs::read(path).unwrap_or_default();
        let query = crate::logs::LogQuery {
            tail_lines: Some(FALLBACK_LOG_LINES),
            ..crate::logs::LogQuery::default()
        };
        let (text, _) = crate::logs::read_tail(&content, &query);
        let start = text.len().saturating_sub(FALLBACK_LOG_BYTES);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    /// Writes the pod status if it changed since the last write.
    async fn publish(&mut self) {
        let (init, regular) = self.slots.split_at(self.init_count);
        let status = pod_status(
            StatusInput {
                init,
                regular,
                phase: phase(init, regular, self.policy, self.terminated),
                sandbox_ready: self.sandbox_ready,
                host_ip: &self.ctx.host_ip,
                pod_ip: &self.pod_ip,
                start_time: self.start_time,
                message: self.sandbox_error.clone(),
            },
            &mut self.conditions,
        );
        let body = serde_json::json!({ "status": status });
        if self.reported.as_ref() == Some(&body) {
            return;
        }
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), self.namespace());
        match api
            .patch_status(self.name(), &PatchParams::default(), &Patch::Merge(&body))
            .await
        {
            Ok(_) => self.reported = Some(body),
            Err(err) => tracing::debug!(%err, pod = self.name(), "cannot write pod status"),
        }
    }

    /// Graceful deletion: PreStop hooks, SIGTERM, the grace period, SIGKILL,
    /// a last status, then the final delete with grace period 0.
    async fn terminate(&mut self) {
        let grace = self.grace_period();
        let deadline = Instant::now() + grace;
        for index in 0..self.slots.len() {
            let Phase::Running(running) = &self.slots[index].phase else {
                continue;
            };
            let name = self.slots[index].name().to_owned();
            self.event(
                index,
                EventType::Normal,
                "Killing",
                &format!("Stopping container {name}"),
            );
            let control = running.control.clone();
            let run = running.run.clone();
            let pre_stop = self.slots[index]
                .spec
                .lifecycle
                .as_ref()
                .and_then(|l| l.pre_stop.clone());
            let runtime = self.ctx.runtime.clone();
            let pod_ip = self.pod_ip.clone();
            let recorder = self.ctx.recorder.clone();
            let reference = self.reference(index);
            tokio::spawn(async move {
                if let Some(hook) = pre_stop {
                    let budget = deadline.saturating_duration_since(Instant::now());
                    let outcome = run_hook(runtime.as_ref(), &pod_ip, &run, &hook, budget).await;
                    if let Err(message) = outcome {
                        use crate::images::EventRecorder;
                        recorder.event(
                            &reference,
                            EventType::Warning,
                            "FailedPreStopHook",
                            &format!("PreStopHook failed: {message}"),
                        );
                    }
                }
                control.signal(StopSignal::Term);
            });
        }
        self.wait_for_exits(deadline).await;
        for slot in &self.slots {
            if let Phase::Running(running) = &slot.phase {
                running.control.signal(StopSignal::Kill);
            }
        }
        self.wait_for_exits(Instant::now() + KILL_WAIT).await;
        self.terminated = true;
        self.publish().await;
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), self.namespace());
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: self.pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(self.name(), &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
            Err(err) => tracing::warn!(%err, pod = self.name(), "cannot delete pod"),
        }
        self.cleanup().await;
    }

    /// Handles container events until no container runs or `deadline` passes.
    async fn wait_for_exits(&mut self, deadline: Instant) {
        while self.slots.iter().any(Slot::is_running) {
            tokio::select! {
                Some(event) = self.events.recv() => {
                    if matches!(event, Event::Exited { .. }) {
                        self.handle(event);
                    }
                }
                () = tokio::time::sleep_until(deadline) => return,
            }
        }
    }

    /// The pod disappeared without graceful deletion: stop everything now.
    async fn vanish(&mut self) {
        for slot in &self.slots {
            if let Phase::Running(running) = &slot.phase {
                running.control.signal(StopSignal::Kill);
            }
        }
        self.wait_for_exits(Instant::now() + KILL_WAIT).await;
        self.cleanup().await;
    }

    async fn cleanup(&mut self) {
        self.ctx.logs.remove(self.namespace(), self.name());
        self.ctx.runtime.remove_pod(self.uid()).await;
    }
}

/// Runs an exec, httpGet or sleep lifecycle hook.
async fn run_hook(
    runtime: &dyn Runtime,
    pod_ip: &str,
    run: &ContainerRun,
    hook: &LifecycleHandler,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(exec) = &hook.exec {
        let command = exec.command.clone().unwrap_or_default();
        return match runtime.exec(run, &command, timeout).await {
            Ok(out) if out.code == 0 => Ok(()),
            Ok(out) => Err(format!(
                "command '{}' exited with {}: {}",
                command.join(" "),
                out.code,
                out.output
            )),
            Err(err) => Err(err.to_string()),
        };
    }
    if let Some(http) = &hook.http_get {
        let port = match &http.port {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => {
                u16::try_from(*n).map_err(|_| format!("invalid port {n}"))?
            }
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(name) => {
                return Err(format!("named port {name:?} in a hook is not supported"));
            }
        };
        let probe = NetworkProbe::Http {
            host: http.host.clone().unwrap_or_else(|| pod_ip.to_owned()),
            port,
            path: http.path.clone().unwrap_or_else(|| "/".into()),
            headers: vec![],
        };
        return runtime.probe_network(&probe, timeout).await;
    }
    if let Some(sleep) = &hook.sleep {
        let seconds = u64::try_from(sleep.seconds.max(0)).unwrap_or(0);
        tokio::time::sleep(Duration::from_secs(seconds).min(timeout)).await;
    }
    Ok(())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `10s`, `1m20s`, `5m0s`: durations as Kubernetes messages print them.
fn go_duration(d: Duration) -> String {
    let total = d.as_secs();
    let millis = d.subsec_millis();
    if total >= 60 {
        format!("{}m{}s", total / 60, total % 60)
    } else if millis > 0 {
        format!("{}.{:03}s", total, millis)
            .trim_end_matches('0')
            .to_owned()
    } else {
        format!("{total}s")
    }
}
