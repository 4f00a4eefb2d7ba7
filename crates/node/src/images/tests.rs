//! Behaviour of the image manager against a fake runtime and a fake clock.
//!
//! The `puller_case` tests reproduce, step by step, every case of upstream's
//! image manager table (pkg/kubelet/images/image_manager_test.go), each with
//! the serialized and the parallel puller; the other tests reproduce the
//! remaining upstream tests and pin events, messages, limits and concurrency.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod, PodSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use parking_lot::Mutex;
use tokio::sync::{Semaphore, watch};

use super::*;

/// Upper bound for any wait on another task; reaching it fails the test.
const TIMEOUT: Duration = Duration::from_secs(10);

const GET_IMAGE_REF: &str = "GetImageRef";
const PULL_IMAGE: &str = "PullImage";

// ---------------------------------------------------------------- fakes

/// What the fake runtime has seen and holds.
#[derive(Debug, Clone, Default)]
struct RuntimeState {
    /// Calls in order, named as upstream's fake runtime names them.
    calls: Vec<&'static str>,
    /// Every spec passed to `image_status`.
    inspected: Vec<ImageSpec>,
    /// Images on the node and the spec they were pulled with.
    images: Vec<(ImageRef, ImageSpec)>,
    pulls_started: usize,
    in_flight: usize,
    peak_in_flight: usize,
}

/// A container runtime whose images, errors and pull timing tests control.
struct FakeRuntime {
    state: watch::Sender<RuntimeState>,
    inspect_error: Option<RuntimeError>,
    pull_error: Option<RuntimeError>,
    /// When set, each pull waits for a permit: tests release pulls one by one.
    pull_gate: Option<Semaphore>,
    /// When set, each pull advances the fake clock by this much.
    pull_time: Option<(Arc<FakeClock>, Duration)>,
}

impl FakeRuntime {
    fn with_images(images: &[&str]) -> Self {
        let images = images
            .iter()
            .map(|image| {
                let spec = ImageSpec {
                    image: (*image).to_owned(),
                    ..ImageSpec::default()
                };
                (ImageRef::new(*image), spec)
            })
            .collect();
        Self {
            state: watch::Sender::new(RuntimeState {
                images,
                ..RuntimeState::default()
            }),
            inspect_error: None,
            pull_error: None,
            pull_gate: None,
            pull_time: None,
        }
    }

    fn blocking_pulls(mut self) -> Self {
        self.pull_gate = Some(Semaphore::new(0));
        self
    }

    fn snapshot(&self) -> RuntimeState {
        self.state.borrow().clone()
    }

    fn take_calls(&self) -> Vec<&'static str> {
        let mut calls = Vec::new();
        self.state
            .send_modify(|state| calls = std::mem::take(&mut state.calls));
        calls
    }

    /// Lets `count` blocked pulls finish (upstream's `UnblockImagePulls`).
    fn unblock_pulls(&self, count: usize) {
        self.pull_gate
            .as_ref()
            .expect("runtime built with blocking_pulls")
            .add_permits(count);
    }

    async fn wait_until(&self, what: &str, condition: impl Fn(&RuntimeState) -> bool) {
        let mut updates = self.state.subscribe();
        let reached = tokio::time::timeout(TIMEOUT, updates.wait_for(|state| condition(state)))
            .await
            .is_ok_and(|seen| seen.is_ok());
        assert!(
            reached,
            "timed out waiting for {what}; runtime: {:?}",
            self.snapshot()
        );
    }
}

#[async_trait]
impl ImageService for FakeRuntime {
    async fn image_status(&self, spec: &ImageSpec) -> Result<Option<ImageRef>, RuntimeError> {
        let mut found = None;
        self.state.send_modify(|state| {
            state.calls.push(GET_IMAGE_REF);
            state.inspected.push(spec.clone());
            found = state
                .images
                .iter()
                .find(|(image_ref, _)| image_ref.as_str() == spec.image)
                .map(|(image_ref, _)| image_ref.clone());
        });
        match &self.inspect_error {
            Some(err) => Err(err.clone()),
            None => Ok(found),
        }
    }

    async fn pull_image(
        &self,
        spec: &ImageSpec,
        _pull_secrets: &[Secret],
    ) -> Result<ImageRef, RuntimeError> {
        self.state.send_modify(|state| {
            state.calls.push(PULL_IMAGE);
            state.pulls_started += 1;
            state.in_flight += 1;
            state.peak_in_flight = state.peak_in_flight.max(state.in_flight);
        });
        if let Some(gate) = &self.pull_gate {
            gate.acquire()
                .await
                .expect("pull gate is never closed")
                .forget();
        }
        if let Some((clock, pull_time)) = &self.pull_time {
            clock.step(*pull_time);
        }
        let image_ref = ImageRef::new(spec.image.clone());
        self.state.send_modify(|state| {
            state.in_flight -= 1;
            if self.pull_error.is_none() {
                state.images.push((image_ref.clone(), spec.clone()));
            }
        });
        match &self.pull_error {
            Some(err) => Err(err.clone()),
            None => Ok(image_ref),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct RecordedEvent {
    object: ObjectReference,
    event_type: EventType,
    reason: String,
    message: String,
}

struct FakeRecorder {
    events: watch::Sender<Vec<RecordedEvent>>,
}

impl FakeRecorder {
    fn new() -> Self {
        Self {
            events: watch::Sender::new(Vec::new()),
        }
    }

    fn take(&self) -> Vec<RecordedEvent> {
        self.events.send_replace(Vec::new())
    }

    fn take_reasons(&self) -> Vec<String> {
        self.take().into_iter().map(|event| event.reason).collect()
    }

    async fn wait_for_reason_count(&self, reason: &str, count: usize) {
        let mut updates = self.events.subscribe();
        let matching =
            |events: &Vec<RecordedEvent>| events.iter().filter(|e| e.reason == reason).count();
        let reached = tokio::time::timeout(
            TIMEOUT,
            updates.wait_for(|events| matching(events) >= count),
        )
        .await
        .is_ok_and(|seen| seen.is_ok());
        assert!(
            reached,
            "timed out waiting for {count} {reason} events; events: {:?}",
            self.events.borrow()
        );
    }
}

impl EventRecorder for FakeRecorder {
    fn event(&self, object: &ObjectReference, event_type: EventType, reason: &str, message: &str) {
        self.events.send_modify(|events| {
            events.push(RecordedEvent {
                object: object.clone(),
                event_type,
                reason: reason.to_owned(),
                message: message.to_owned(),
            });
        });
    }
}

/// Upstream's mockPodPullingTimeRecorder, keeping the pod UIDs it was given.
#[derive(Default)]
struct FakePullTimes {
    started: Mutex<Vec<String>>,
    finished: Mutex<Vec<String>>,
}

impl FakePullTimes {
    /// Whether a start and a finish were recorded since the last call.
    fn take(&self) -> (bool, bool) {
        let started = !std::mem::take(&mut *self.started.lock()).is_empty();
        let finished = !std::mem::take(&mut *self.finished.lock()).is_empty();
        (started, finished)
    }
}

impl PodPullingTimeRecorder for FakePullTimes {
    fn record_image_started_pulling(&self, pod_uid: &str) {
        self.started.lock().push(pod_uid.to_owned());
    }

    fn record_image_finished_pulling(&self, pod_uid: &str) {
        self.finished.lock().push(pod_uid.to_owned());
    }
}

// ---------------------------------------------------------------- harness

struct Env {
    manager: Arc<ImageManager>,
    clock: Arc<FakeClock>,
    runtime: Arc<FakeRuntime>,
    events: Arc<FakeRecorder>,
    pull_times: Arc<FakePullTimes>,
}

impl Env {
    fn new(config: ImageManagerConfig, runtime: FakeRuntime, clock: Arc<FakeClock>) -> Self {
        let runtime = Arc::new(runtime);
        let events = Arc::new(FakeRecorder::new());
        let pull_times = Arc::new(FakePullTimes::default());
        let manager = ImageManager::new(
            config,
            runtime.clone(),
            events.clone(),
            pull_times.clone(),
            clock.clone(),
        )
        .expect("valid config");
        Self {
            manager: Arc::new(manager),
            clock,
            runtime,
            events,
            pull_times,
        }
    }

    /// The environment of upstream's `pullerTestEnv`: `present_image:latest`
    /// on the node, back-off from 1 s to 1 min.
    fn upstream(mode: PullMode, qps: f64, burst: u32, runtime: FakeRuntime) -> Self {
        Self::new(
            config(mode, qps, burst),
            runtime,
            Arc::new(FakeClock::new()),
        )
    }

    async fn ensure(
        &self,
        pod: &Pod,
        container: &Container,
    ) -> Result<EnsuredImage, ImagePullError> {
        self.manager
            .ensure_image_exists(pod, container, &[], None)
            .await
    }

    /// Runs `ensure_image_exists` on its own task, as a pod worker would.
    fn spawn_ensure(
        &self,
        pod: &Pod,
        container: &Container,
    ) -> tokio::task::JoinHandle<Result<EnsuredImage, ImagePullError>> {
        let (manager, pod, container) = (self.manager.clone(), pod.clone(), container.clone());
        tokio::spawn(async move {
            manager
                .ensure_image_exists(&pod, &container, &[], None)
                .await
        })
    }
}

fn config(pull_mode: PullMode, registry_pull_qps: f64, registry_burst: u32) -> ImageManagerConfig {
    ImageManagerConfig {
        pull_backoff_initial: Duration::from_secs(1),
        pull_backoff_max: Duration::from_secs(60),
        pull_mode,
        registry_pull_qps,
        registry_burst,
    }
}

const PARALLEL: PullMode = PullMode::Parallel {
    max_parallel_pulls: None,
};

fn test_container(image: &str, policy: &str) -> Container {
    Container {
        name: "container_name".to_owned(),
        image: Some(image.to_owned()),
        image_pull_policy: Some(policy.to_owned()),
        ..Container::default()
    }
}

fn test_pod_with_uid(uid: &str, container: &Container) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("test_pod".to_owned()),
            namespace: Some("test-ns".to_owned()),
            uid: Some(uid.to_owned()),
            resource_version: Some("42".to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![container.clone()],
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

fn test_pod(container: &Container) -> Pod {
    test_pod_with_uid("bar", container)
}

async fn join_all<T: Debug>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        let joined = tokio::time::timeout(TIMEOUT, handle).await;
        results.push(
            joined
                .expect("pull task finished in time")
                .expect("pull task did not panic"),
        );
    }
    results
}

fn expect_ok<T: Debug, E: Debug>(results: &[Result<T, E>]) {
    assert!(
        results.iter().all(Result::is_ok),
        "all pulls succeed: {results:?}"
    );
}

// ---------------------------------------------------------------- upstream's table

/// One call of `ensure_image_exists` after the fake clock moved 1 s.
struct Step {
    calls: &'static [&'static str],
    error: Option<&'static str>,
    started_pulling: bool,
    finished_pulling: bool,
    events: &'static [&'static str],
}

struct PullerCase {
    image: &'static str,
    policy: &'static str,
    inspect_error: Option<RuntimeError>,
    pull_error: Option<RuntimeError>,
    qps: f64,
    burst: u32,
    steps: Vec<Step>,
}

const PULLED: Step = Step {
    calls: &[GET_IMAGE_REF, PULL_IMAGE],
    error: None,
    started_pulling: true,
    finished_pulling: true,
    events: &[PULLING_IMAGE, PULLED_IMAGE],
};

const PRESENT: Step = Step {
    calls: &[GET_IMAGE_REF],
    error: None,
    started_pulling: false,
    finished_pulling: false,
    events: &[PULLED_IMAGE],
};

const NEVER_PULL: Step = Step {
    calls: &[GET_IMAGE_REF],
    error: Some(ERR_IMAGE_NEVER_PULL),
    started_pulling: false,
    finished_pulling: false,
    events: &[ERR_IMAGE_NEVER_PULL_POLICY],
};

const INSPECT_FAILED: Step = Step {
    calls: &[GET_IMAGE_REF],
    error: Some(ERR_IMAGE_INSPECT),
    started_pulling: false,
    finished_pulling: false,
    events: &[FAILED_TO_INSPECT_IMAGE],
};

const PULL_FAILED: Step = Step {
    calls: &[GET_IMAGE_REF, PULL_IMAGE],
    error: Some(ERR_IMAGE_PULL),
    started_pulling: true,
    finished_pulling: false,
    events: &[PULLING_IMAGE, FAILED_TO_PULL_IMAGE],
};

const THROTTLED: Step = Step {
    calls: &[GET_IMAGE_REF],
    error: Some(ERR_IMAGE_PULL),
    started_pulling: true,
    finished_pulling: false,
    events: &[PULLING_IMAGE, FAILED_TO_PULL_IMAGE],
};

const BACKING_OFF: Step = Step {
    calls: &[GET_IMAGE_REF],
    error: Some(ERR_IMAGE_PULL_BACK_OFF),
    started_pulling: false,
    finished_pulling: false,
    events: &[BACK_OFF_PULL_IMAGE],
};

fn case(image: &'static str, policy: &'static str, steps: Vec<Step>) -> PullerCase {
    PullerCase {
        image,
        policy,
        inspect_error: None,
        pull_error: None,
        qps: 0.0,
        burst: 0,
        steps,
    }
}

fn image_missing_pull() -> PullerCase {
    case("missing_image", "IfNotPresent", vec![PULLED])
}

fn image_present_dont_pull() -> PullerCase {
    case(
        "present_image",
        "IfNotPresent",
        vec![PRESENT, PRESENT, PRESENT],
    )
}

fn image_present_pull() -> PullerCase {
    case("present_image", "Always", vec![PULLED, PULLED, PULLED])
}

fn image_missing_never_pull() -> PullerCase {
    case(
        "missing_image",
        "Never",
        vec![NEVER_PULL, NEVER_PULL, NEVER_PULL],
    )
}

fn image_missing_pull_if_not_present_inspect_error() -> PullerCase {
    PullerCase {
        inspect_error: Some(RuntimeError::Failed("unknown inspectError".to_owned())),
        ..case(
            "missing_image",
            "IfNotPresent",
            vec![INSPECT_FAILED, INSPECT_FAILED, INSPECT_FAILED],
        )
    }
}

fn image_missing_unable_to_fetch() -> PullerCase {
    // With the clock moving 1 s per step: failures at t=1 (window 1 s) and
    // t=2 (window 2 s), back-off at t=3, failure at t=4 (window 4 s),
    // back-off at t=5 and t=6.
    PullerCase {
        pull_error: Some(RuntimeError::Failed("404".to_owned())),
        ..case(
            "typo_image",
            "IfNotPresent",
            vec![
                PULL_FAILED,
                PULL_FAILED,
                BACKING_OFF,
                PULL_FAILED,
                BACKING_OFF,
                BACKING_OFF,
            ],
        )
    }
}

fn image_present_and_qps_pull() -> PullerCase {
    PullerCase {
        qps: 400.0,
        burst: 600,
        ..case("present_image", "Always", vec![PULLED, PULLED, PULLED])
    }
}

fn image_present_and_excessive_qps_rate_pull() -> PullerCase {
    PullerCase {
        qps: 2000.0,
        burst: 0,
        ..case(
            "present_image",
            "Always",
            vec![THROTTLED, THROTTLED, BACKING_OFF],
        )
    }
}

async fn run_puller_case(case: PullerCase, mode: PullMode) {
    let runtime = FakeRuntime {
        inspect_error: case.inspect_error,
        pull_error: case.pull_error,
        ..FakeRuntime::with_images(&["present_image:latest"])
    };
    let env = Env::upstream(mode, case.qps, case.burst, runtime);
    let container = test_container(case.image, case.policy);
    let pod = test_pod(&container);
    for (index, step) in case.steps.iter().enumerate() {
        env.clock.step(Duration::from_secs(1));
        let result = env.ensure(&pod, &container).await;
        assert_eq!(
            env.runtime.take_calls(),
            step.calls,
            "step {index}: runtime calls"
        );
        assert_eq!(
            result.as_ref().err().map(ImagePullError::reason),
            step.error,
            "step {index}: result {result:?}"
        );
        let (started, finished) = env.pull_times.take();
        assert_eq!(
            started, step.started_pulling,
            "step {index}: started pulling recorded"
        );
        assert_eq!(
            finished, step.finished_pulling,
            "step {index}: finished pulling recorded"
        );
        assert_eq!(
            env.events.take_reasons(),
            step.events,
            "step {index}: events"
        );
    }
}

/// Each case runs with the parallel puller (upstream's TestParallelPuller)
/// and the serialized one (TestSerializedPuller).
macro_rules! puller_cases {
    ($($name:ident,)*) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn parallel() {
                run_puller_case(super::$name(), PARALLEL).await;
            }

            #[tokio::test]
            async fn serialized() {
                run_puller_case(super::$name(), PullMode::Serialized).await;
            }
        }
    )*};
}

mod puller_case {
    use super::*;

    puller_cases! {
        image_missing_pull,
        image_present_dont_pull,
        image_present_pull,
        image_missing_never_pull,
        image_missing_pull_if_not_present_inspect_error,
        image_missing_unable_to_fetch,
        image_present_and_qps_pull,
        image_present_and_excessive_qps_rate_pull,
    }
}

// ---------------------------------------------------------------- upstream's other tests

#[tokio::test]
async fn pull_and_list_image_with_pod_annotations() {
    let env = Env::upstream(PullMode::Serialized, 0.0, 0, FakeRuntime::with_images(&[]));
    let container = test_container("missing_image", "IfNotPresent");
    let mut pod = test_pod(&container);
    let annotations = BTreeMap::from([(
        "kubernetes.io/runtimehandler".to_owned(),
        "handler_name".to_owned(),
    )]);
    pod.metadata.annotations = Some(annotations.clone());

    env.clock.step(Duration::from_secs(1));
    let result = env.ensure(&pod, &container).await;

    assert!(result.is_ok(), "{result:?}");
    assert_eq!(env.runtime.take_calls(), [GET_IMAGE_REF, PULL_IMAGE]);
    assert_eq!(env.pull_times.take(), (true, true));
    let images = env.runtime.snapshot().images;
    assert_eq!(images.len(), 1, "images: {images:?}");
    let (image_ref, spec) = &images[0];
    assert_eq!(image_ref.as_str(), "missing_image:latest");
    assert_eq!(spec.annotations, annotations);
}

#[tokio::test]
async fn max_parallel_image_pulls_limit() {
    const MAX_PARALLEL_PULLS: usize = 5;
    let mode = PullMode::Parallel {
        max_parallel_pulls: NonZeroUsize::new(MAX_PARALLEL_PULLS),
    };
    let runtime = FakeRuntime::with_images(&["present_image:latest"]).blocking_pulls();
    let env = Env::upstream(mode, 0.0, 0, runtime);
    let container = test_container("present_image", "Always");
    let pod = test_pod(&container);
    env.clock.step(Duration::from_secs(1));

    // The first five reach the runtime.
    let mut handles: Vec<_> = (0..MAX_PARALLEL_PULLS)
        .map(|_| env.spawn_ensure(&pod, &container))
        .collect();
    env.runtime
        .wait_until("5 pulls in the runtime", |s| s.pulls_started == 5)
        .await;

    // Two more get as far as the puller and wait there for a slot.
    handles.extend((0..2).map(|_| env.spawn_ensure(&pod, &container)));
    env.events.wait_for_reason_count(PULLING_IMAGE, 7).await;
    let state = env.runtime.snapshot();
    assert_eq!(
        (state.pulls_started, state.in_flight),
        (5, 5),
        "limit holds: {state:?}"
    );

    // Two finished pulls free two slots for the waiting callers.
    env.runtime.unblock_pulls(2);
    env.runtime
        .wait_until("7 pulls in the runtime", |s| s.pulls_started == 7)
        .await;
    assert_eq!(env.runtime.snapshot().in_flight, 5);

    // The remaining five finish, and nothing else reaches the runtime.
    env.runtime.unblock_pulls(5);
    expect_ok(&join_all(handles).await);
    let state = env.runtime.snapshot();
    assert_eq!(state.pulls_started, 7);
    assert_eq!(state.in_flight, 0);
    assert_eq!(state.peak_in_flight, MAX_PARALLEL_PULLS);
}

// ---------------------------------------------------------------- pullers

/// Starts `callers` pulls that block in the runtime, and returns the runtime
/// state once every caller has reached the puller, with the peak number of
/// pulls in flight after all of them finished.
async fn pulls_in_flight_at_once(mode: PullMode, callers: usize) -> RuntimeState {
    let runtime = FakeRuntime::with_images(&[]).blocking_pulls();
    let env = Env::upstream(mode, 0.0, 0, runtime);
    let container = test_container("missing_image", "Always");
    let handles: Vec<_> = (0..callers)
        .map(|index| {
            let pod = test_pod_with_uid(&format!("pod-{index}"), &container);
            env.spawn_ensure(&pod, &container)
        })
        .collect();
    env.events
        .wait_for_reason_count(PULLING_IMAGE, callers)
        .await;
    let saturated = env.runtime.snapshot();
    env.runtime.unblock_pulls(callers);
    expect_ok(&join_all(handles).await);
    let finished = env.runtime.snapshot();
    assert_eq!(finished.pulls_started, callers);
    RuntimeState {
        peak_in_flight: finished.peak_in_flight,
        ..saturated
    }
}

#[tokio::test]
async fn serialized_puller_runs_one_pull_at_a_time() {
    let state = pulls_in_flight_at_once(PullMode::Serialized, 3).await;
    assert_eq!(state.in_flight, 1, "{state:?}");
    assert_eq!(state.peak_in_flight, 1, "{state:?}");
}

#[tokio::test]
async fn parallel_puller_without_limit_runs_every_pull_at_once() {
    let state = pulls_in_flight_at_once(PARALLEL, 4).await;
    assert_eq!(state.in_flight, 4, "{state:?}");
    assert_eq!(state.peak_in_flight, 4, "{state:?}");
}

#[tokio::test]
async fn parallel_puller_with_limit_of_two_runs_two_pulls_at_once() {
    let mode = PullMode::Parallel {
        max_parallel_pulls: NonZeroUsize::new(2),
    };
    let state = pulls_in_flight_at_once(mode, 4).await;
    assert_eq!(state.in_flight, 2, "{state:?}");
    assert_eq!(state.peak_in_flight, 2, "{state:?}");
}

// ---------------------------------------------------------------- events and messages

fn event(event_type: EventType, reason: &str, message: &str) -> (EventType, String, String) {
    (event_type, reason.to_owned(), message.to_owned())
}

fn events_of(recorder: &FakeRecorder) -> Vec<(EventType, String, String)> {
    recorder
        .take()
        .into_iter()
        .map(|e| (e.event_type, e.reason, e.message))
        .collect()
}

#[tokio::test]
async fn pull_then_present_events_carry_upstream_messages() {
    let clock = Arc::new(FakeClock::new());
    let runtime = FakeRuntime {
        pull_time: Some((clock.clone(), Duration::from_millis(1500))),
        ..FakeRuntime::with_images(&[])
    };
    let env = Env::new(config(PullMode::Serialized, 0.0, 0), runtime, clock);
    let container = test_container("missing_image", "IfNotPresent");
    let pod = test_pod(&container);

    let pulled = env.ensure(&pod, &container).await.expect("pulled");
    assert_eq!(pulled.image_ref.as_str(), "missing_image:latest");
    assert_eq!(pulled.message, "");
    assert_eq!(
        events_of(&env.events),
        [
            event(
                EventType::Normal,
                PULLING_IMAGE,
                r#"Pulling image "missing_image""#
            ),
            event(
                EventType::Normal,
                PULLED_IMAGE,
                r#"Successfully pulled image "missing_image" in 1.5s (1.5s including waiting)"#
            ),
        ]
    );

    let present = env.ensure(&pod, &container).await.expect("present");
    let message = r#"Container image "missing_image" already present on machine"#;
    assert_eq!(present.image_ref.as_str(), "missing_image:latest");
    assert_eq!(present.message, message);
    assert_eq!(
        events_of(&env.events),
        [event(EventType::Normal, PULLED_IMAGE, message)]
    );
}

#[tokio::test]
async fn events_reference_the_container_in_the_pod() {
    let env = Env::upstream(
        PullMode::Serialized,
        0.0,
        0,
        FakeRuntime::with_images(&["present_image:latest"]),
    );
    let container = test_container("present_image", "IfNotPresent");
    let init = Container {
        name: "init".to_owned(),
        ..container.clone()
    };
    let mut pod = test_pod(&container);
    if let Some(spec) = pod.spec.as_mut() {
        spec.init_containers = Some(vec![init.clone()]);
    }

    for (container, field_path) in [
        (&container, "spec.containers{container_name}"),
        (&init, "spec.initContainers{init}"),
    ] {
        env.ensure(&pod, container).await.expect("present");
        let events = env.events.take();
        assert_eq!(events.len(), 1, "{events:?}");
        let expected = ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Pod".to_owned()),
            name: Some("test_pod".to_owned()),
            namespace: Some("test-ns".to_owned()),
            uid: Some("bar".to_owned()),
            resource_version: Some("42".to_owned()),
            field_path: Some(field_path.to_owned()),
        };
        assert_eq!(events[0].object, expected);
    }
}

#[tokio::test]
async fn container_outside_the_pod_spec_gets_no_event() {
    // Upstream's table runs with a pod without spec: the container reference
    // cannot be built, so outcomes are only logged.
    let env = Env::upstream(
        PullMode::Serialized,
        0.0,
        0,
        FakeRuntime::with_images(&["present_image:latest"]),
    );
    let container = test_container("present_image", "IfNotPresent");
    let pod = Pod {
        spec: None,
        ..test_pod(&container)
    };
    let result = env.ensure(&pod, &container).await;
    assert!(result.is_ok(), "{result:?}");
    assert!(env.events.take().is_empty());
}

#[tokio::test]
async fn pull_failure_then_backoff_message_quotes_the_last_error() {
    let runtime = FakeRuntime {
        pull_error: Some(RuntimeError::Failed("404".to_owned())),
        ..FakeRuntime::with_images(&[])
    };
    let env = Env::upstream(PullMode::Serialized, 0.0, 0, runtime);
    let container = test_container("typo_image", "IfNotPresent");
    let pod = test_pod(&container);

    let failed = env.ensure(&pod, &container).await.expect_err("pull fails");
    assert_eq!(
        failed,
        ImagePullError::ImagePull {
            message: "404".to_owned()
        }
    );
    assert_eq!(
        events_of(&env.events),
        [
            event(
                EventType::Normal,
                PULLING_IMAGE,
                r#"Pulling image "typo_image""#
            ),
            event(
                EventType::Warning,
                FAILED_TO_PULL_IMAGE,
                r#"Failed to pull image "typo_image": 404"#
            ),
        ]
    );

    let backing_off = env.ensure(&pod, &container).await.expect_err("backing off");
    assert_eq!(backing_off.reason(), ERR_IMAGE_PULL_BACK_OFF);
    assert_eq!(
        backing_off.message(),
        r#"Back-off pulling image "typo_image": ErrImagePull: 404"#
    );
    assert_eq!(
        events_of(&env.events),
        [event(
            EventType::Normal,
            BACK_OFF_PULL_IMAGE,
            r#"Back-off pulling image "typo_image""#
        )]
    );
    assert_eq!(
        env.runtime.take_calls(),
        [GET_IMAGE_REF, PULL_IMAGE, GET_IMAGE_REF]
    );
}

#[tokio::test]
async fn never_pull_and_inspect_failure_messages() {
    let env = Env::upstream(PullMode::Serialized, 0.0, 0, FakeRuntime::with_images(&[]));
    let container = test_container("missing_image", "Never");
    let pod = test_pod(&container);
    let message = r#"Container image "missing_image" is not present with pull policy of Never"#;
    assert_eq!(
        env.ensure(&pod, &container).await,
        Err(ImagePullError::ImageNeverPull {
            message: message.to_owned()
        })
    );
    assert_eq!(
        events_of(&env.events),
        [event(
            EventType::Warning,
            ERR_IMAGE_NEVER_PULL_POLICY,
            message
        )]
    );

    let runtime = FakeRuntime {
        inspect_error: Some(RuntimeError::Failed("unknown inspectError".to_owned())),
        ..FakeRuntime::with_images(&[])
    };
    let env = Env::upstream(PullMode::Serialized, 0.0, 0, runtime);
    let message = r#"Failed to inspect image "missing_image": unknown inspectError"#;
    assert_eq!(
        env.ensure(&pod, &container).await,
        Err(ImagePullError::ImageInspect {
            message: message.to_owned()
        })
    );
    assert_eq!(
        events_of(&env.events),
        [event(EventType::Warning, FAILED_TO_INSPECT_IMAGE, message)]
    );
}

#[tokio::test]
async fn invalid_image_name_fails_before_the_runtime_is_asked() {
    let env = Env::upstream(PullMode::Serialized, 0.0, 0, FakeRuntime::with_images(&[]));
    let container = test_container("Foo", "IfNotPresent");
    let pod = test_pod(&container);
    let message = r#"Failed to apply default image tag "Foo": couldn't parse image name "Foo": invalid reference format: repository name (library/Foo) must be lowercase"#;
    let err = env
        .ensure(&pod, &container)
        .await
        .expect_err("invalid name");
    assert_eq!(err.reason(), ERR_INVALID_IMAGE_NAME);
    assert_eq!(err.message(), message);
    assert_eq!(
        events_of(&env.events),
        [event(EventType::Warning, FAILED_TO_INSPECT_IMAGE, message)]
    );
    assert_eq!(env.runtime.take_calls(), Vec::<&str>::new());
}

#[tokio::test]
async fn registry_and_signature_failures_get_their_own_reasons() {
    let cases = [
        (
            RuntimeError::RegistryUnavailable("connection refused".to_owned()),
            ERR_REGISTRY_UNAVAILABLE,
            "image pull failed for typo_image because the registry is unavailable: connection refused",
            r#"Failed to pull image "typo_image": RegistryUnavailable: connection refused"#,
        ),
        (
            RuntimeError::SignatureValidationFailed("untrusted key".to_owned()),
            ERR_SIGNATURE_VALIDATION_FAILED,
            "image pull failed for typo_image because the signature validation failed: untrusted key",
            r#"Failed to pull image "typo_image": SignatureValidationFailed: untrusted key"#,
        ),
    ];
    for (runtime_error, reason, message, event_message) in cases {
        let runtime = FakeRuntime {
            pull_error: Some(runtime_error),
            ..FakeRuntime::with_images(&[])
        };
        let env = Env::upstream(PullMode::Serialized, 0.0, 0, runtime);
        let container = test_container("typo_image", "IfNotPresent");
        let err = env
            .ensure(&test_pod(&container), &container)
            .await
            .expect_err("pull fails");
        assert_eq!((err.reason(), err.message()), (reason, message));
        let events = events_of(&env.events);
        assert_eq!(
            events.last(),
            Some(&event(
                EventType::Warning,
                FAILED_TO_PULL_IMAGE,
                event_message
            ))
        );
    }
}

// ---------------------------------------------------------------- back-off, limits, timings

#[tokio::test]
async fn backoff_is_per_pod_and_image() {
    let runtime = FakeRuntime {
        pull_error: Some(RuntimeError::Failed("404".to_owned())),
        ..FakeRuntime::with_images(&[])
    };
    let env = Env::upstream(PARALLEL, 0.0, 0, runtime);
    let container = test_container("typo_image", "IfNotPresent");
    let other_image = test_container("other_image", "IfNotPresent");
    let pod = test_pod(&container);
    let other_pod = test_pod_with_uid("other", &container);

    let reason = |result: Result<EnsuredImage, ImagePullError>| result.expect_err("fails").reason();
    assert_eq!(reason(env.ensure(&pod, &container).await), ERR_IMAGE_PULL);
    assert_eq!(
        reason(env.ensure(&pod, &container).await),
        ERR_IMAGE_PULL_BACK_OFF
    );
    assert_eq!(
        reason(env.ensure(&other_pod, &container).await),
        ERR_IMAGE_PULL
    );
    assert_eq!(reason(env.ensure(&pod, &other_image).await), ERR_IMAGE_PULL);
    env.clock.step(Duration::from_secs(1));
    assert_eq!(
        reason(env.ensure(&pod, &container).await),
        ERR_IMAGE_PULL,
        "1 s window passed"
    );
    env.clock.step(Duration::from_millis(1999));
    assert_eq!(
        reason(env.ensure(&pod, &container).await),
        ERR_IMAGE_PULL_BACK_OFF,
        "2 s window"
    );
}

#[tokio::test]
async fn pull_qps_and_burst_limit_pulls() {
    let env = Env::upstream(
        PARALLEL,
        1.0,
        2,
        FakeRuntime::with_images(&["present_image:latest"]),
    );
    let container = test_container("present_image", "Always");
    let pod = test_pod(&container);

    for burst in 0..2 {
        let result = env.ensure(&pod, &container).await;
        assert!(result.is_ok(), "burst pull {burst}: {result:?}");
    }
    env.runtime.take_calls();
    env.events.take();

    let throttled = env
        .ensure(&pod, &container)
        .await
        .expect_err("over the burst");
    assert_eq!(
        throttled,
        ImagePullError::ImagePull {
            message: PULL_QPS_EXCEEDED.to_owned()
        }
    );
    assert_eq!(
        env.runtime.take_calls(),
        [GET_IMAGE_REF],
        "a throttled pull never reaches the runtime"
    );
    assert_eq!(
        events_of(&env.events).last(),
        Some(&event(
            EventType::Warning,
            FAILED_TO_PULL_IMAGE,
            r#"Failed to pull image "present_image": pull QPS exceeded"#
        ))
    );

    // One second refills one token and ends the 1 s back-off window.
    env.clock.step(Duration::from_secs(1));
    let result = env.ensure(&pod, &container).await;
    assert!(result.is_ok(), "{result:?}");
    let throttled = env
        .ensure(&test_pod_with_uid("other", &container), &container)
        .await;
    assert_eq!(
        throttled.expect_err("bucket empty again").message(),
        PULL_QPS_EXCEEDED
    );
}

#[tokio::test]
async fn pull_times_are_recorded_for_the_pod_uid() {
    let env = Env::upstream(PullMode::Serialized, 0.0, 0, FakeRuntime::with_images(&[]));
    let container = test_container("missing_image", "IfNotPresent");
    env.ensure(&test_pod_with_uid("uid-1", &container), &container)
        .await
        .expect("pulled");
    assert_eq!(*env.pull_times.started.lock(), ["uid-1"]);
    assert_eq!(*env.pull_times.finished.lock(), ["uid-1"]);
}

#[tokio::test]
async fn runtime_handler_and_default_tag_reach_the_image_spec() {
    let env = Env::upstream(PullMode::Serialized, 0.0, 0, FakeRuntime::with_images(&[]));
    let container = test_container("localhost:5000/team/app", "IfNotPresent");
    let pod = test_pod(&container);
    env.manager
        .ensure_image_exists(&pod, &container, &[], Some("kata"))
        .await
        .expect("pulled");

    let state = env.runtime.snapshot();
    let expected = ImageSpec {
        image: "localhost:5000/team/app:latest".to_owned(),
        runtime_handler: Some("kata".to_owned()),
        annotations: BTreeMap::new(),
    };
    assert_eq!(state.inspected, std::slice::from_ref(&expected));
    assert_eq!(
        state
            .images
            .iter()
            .map(|(_, spec)| spec)
            .collect::<Vec<_>>(),
        [&expected]
    );
    assert_eq!(
        events_of(&env.events)[0],
        event(
            EventType::Normal,
            PULLING_IMAGE,
            r#"Pulling image "localhost:5000/team/app""#
        ),
        "events name the image as the user wrote it"
    );
}

#[test]
fn config_rejects_negative_or_nan_qps() {
    for qps in [-1.0, f64::NAN, f64::INFINITY] {
        let result = ImageManager::new(
            config(PullMode::Serialized, qps, 1),
            Arc::new(FakeRuntime::with_images(&[])),
            Arc::new(FakeRecorder::new()),
            Arc::new(FakePullTimes::default()),
            Arc::new(FakeClock::new()),
        );
        assert!(
            matches!(result, Err(ConfigError::InvalidPullQps(_))),
            "qps {qps}"
        );
    }
}
