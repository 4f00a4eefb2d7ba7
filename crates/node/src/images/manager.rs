//! The image manager: makes sure a container's image is on the node before
//! the container is created, with the kubelet's pull policies, back-off,
//! registry rate limits, pull concurrency, events and startup-latency hooks.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod, Secret};
use parking_lot::Mutex;

use super::backoff::Backoff;
use super::clock::Clock;
use super::error::ImagePullError;
use super::limiter::TokenBucket;
use super::puller::{PullMode, Puller};
use super::recorder::{
    BACK_OFF_PULL_IMAGE, ERR_IMAGE_NEVER_PULL_POLICY, EventRecorder, EventType,
    FAILED_TO_INSPECT_IMAGE, FAILED_TO_PULL_IMAGE, PULLED_IMAGE, PULLING_IMAGE,
    PodPullingTimeRecorder,
};
use super::reference::{DEFAULT_IMAGE_TAG, apply_default_image_tag, parse_image_name};
use super::service::{ImageRef, ImageService, ImageSpec, RuntimeError};

/// The error a pull refused by the registry rate limit fails with, as upstream words it.
pub const PULL_QPS_EXCEEDED: &str = "pull QPS exceeded";

/// Tunables of the image manager, named after the kubelet configuration
/// fields they stand for.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageManagerConfig {
    /// First back-off window after a failed pull. kstress defaults to 1 s
    /// (the upstream unit tests' value) so simulated pods recover quickly;
    /// a production kubelet uses 10 s.
    pub pull_backoff_initial: Duration,
    /// Largest back-off window. kstress defaults to 1 min; a production
    /// kubelet uses 5 min.
    pub pull_backoff_max: Duration,
    /// `serializeImagePulls` / `maxParallelImagePulls`.
    pub pull_mode: PullMode,
    /// `registryPullQPS`: pulls per second admitted; 0 disables the limit.
    pub registry_pull_qps: f64,
    /// `registryBurst`: pulls admitted at once when the bucket is full.
    pub registry_burst: u32,
}

impl Default for ImageManagerConfig {
    /// Upstream's kubelet defaults, except for the shorter back-off.
    fn default() -> Self {
        Self {
            pull_backoff_initial: Duration::from_secs(1),
            pull_backoff_max: Duration::from_secs(60),
            pull_mode: PullMode::Serialized,
            registry_pull_qps: 5.0,
            registry_burst: 10,
        }
    }
}

/// An [`ImageManagerConfig`] that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The pull QPS is negative or not a number.
    #[error("registry pull QPS must be a finite number >= 0, got {0}")]
    InvalidPullQps(f64),
}

/// A container's pull policy, as the image manager applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull before every container start.
    Always,
    /// Pull only when the image is absent.
    IfNotPresent,
    /// Never pull; fail when the image is absent.
    Never,
}

impl PullPolicy {
    /// The container's effective policy.
    ///
    /// An unset policy is defaulted as the API server would (`Always` for
    /// `:latest` or untagged images, `IfNotPresent` otherwise), so pods
    /// written straight to a store still behave. An unrecognised value,
    /// which API validation rejects, never pulls, as in upstream's kubelet.
    pub fn of(container: &Container) -> Self {
        match container.image_pull_policy.as_deref() {
            Some("Always") => Self::Always,
            Some("IfNotPresent") => Self::IfNotPresent,
            Some(_) => Self::Never,
            None => {
                let image = container.image.as_deref().unwrap_or_default();
                let tag = parse_image_name(image).ok().and_then(|name| name.tag);
                if tag.as_deref() == Some(DEFAULT_IMAGE_TAG) {
                    Self::Always
                } else {
                    Self::IfNotPresent
                }
            }
        }
    }

    fn should_pull(self, image_present: bool) -> bool {
        match self {
            Self::Always => true,
            Self::IfNotPresent => !image_present,
            Self::Never => false,
        }
    }
}

/// A container image that is ready on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsuredImage {
    /// The runtime's reference for the image, for `containerStatuses[].imageID`.
    pub image_ref: ImageRef,
    /// "already present on machine" when no pull was needed, empty after a pull.
    pub message: String,
}

/// Pulls container images for pod workers; one per node, shared by all its pods.
pub struct ImageManager {
    service: Arc<dyn ImageService>,
    recorder: Arc<dyn EventRecorder>,
    pull_times: Arc<dyn PodPullingTimeRecorder>,
    clock: Arc<dyn Clock>,
    backoff: Backoff,
    /// The last pull error per back-off key, quoted while backing off so the
    /// container status says why the image is not being pulled.
    last_pull_errors: Mutex<HashMap<String, String>>,
    limiter: Option<Mutex<TokenBucket>>,
    puller: Puller,
}

impl fmt::Debug for ImageManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageManager")
            .field("backoff", &self.backoff)
            .field("limiter", &self.limiter)
            .field("puller", &self.puller)
            .finish_non_exhaustive()
    }
}

impl ImageManager {
    /// An image manager pulling through `service` and reporting to
    /// `recorder` and `pull_times`, with back-off and rate limits read from
    /// `clock`.
    pub fn new(
        config: ImageManagerConfig,
        service: Arc<dyn ImageService>,
        recorder: Arc<dyn EventRecorder>,
        pull_times: Arc<dyn PodPullingTimeRecorder>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        let qps = config.registry_pull_qps;
        if !qps.is_finite() || qps < 0.0 {
            return Err(ConfigError::InvalidPullQps(qps));
        }
        Ok(Self {
            service,
            recorder,
            pull_times,
            backoff: Backoff::new(
                config.pull_backoff_initial,
                config.pull_backoff_max,
                clock.clone(),
            ),
            clock,
            last_pull_errors: Mutex::new(HashMap::new()),
            limiter: (qps > 0.0).then(|| Mutex::new(TokenBucket::new(qps, config.registry_burst))),
            puller: Puller::new(config.pull_mode),
        })
    }

    /// Makes sure `container`'s image is on the node, pulling it if its pull
    /// policy asks for it.
    ///
    /// `runtime_handler` is the handler of the pod's RuntimeClass (resolved
    /// by the caller from `spec.runtimeClassName`); it is passed to the
    /// runtime with the pod's annotations. Events are recorded against the
    /// container (`spec.containers{name}` and friends) when the container
    /// is part of the pod's spec, and only logged otherwise.
    pub async fn ensure_image_exists(
        &self,
        pod: &Pod,
        container: &Container,
        pull_secrets: &[Secret],
        runtime_handler: Option<&str>,
    ) -> Result<EnsuredImage, ImagePullError> {
        let requested = container.image.as_deref().unwrap_or_default();
        let meta = &pod.metadata;
        let report = Reporter {
            recorder: self.recorder.as_ref(),
            object: container_reference(pod, container),
            log_prefix: format!(
                "{}/{}/{requested}",
                meta.namespace.as_deref().unwrap_or_default(),
                meta.name.as_deref().unwrap_or_default(),
            ),
        };

        let image = match apply_default_image_tag(requested) {
            Ok(image) => image,
            Err(err) => {
                let message = format!("Failed to apply default image tag {requested:?}: {err}");
                report.event(EventType::Warning, FAILED_TO_INSPECT_IMAGE, &message);
                return Err(ImagePullError::InvalidImageName { message });
            }
        };
        let spec = ImageSpec {
            image,
            runtime_handler: runtime_handler.map(str::to_owned),
            annotations: meta.annotations.clone().unwrap_or_default(),
        };

        let present = match self.service.image_status(&spec).await {
            Ok(present) => present,
            Err(err) => {
                let message = format!("Failed to inspect image {requested:?}: {err}");
                report.event(EventType::Warning, FAILED_TO_INSPECT_IMAGE, &message);
                return Err(ImagePullError::ImageInspect { message });
            }
        };

        if !PullPolicy::of(container).should_pull(present.is_some()) {
            return match present {
                Some(image_ref) => {
                    let message =
                        format!("Container image {requested:?} already present on machine");
                    report.event(EventType::Normal, PULLED_IMAGE, &message);
                    Ok(EnsuredImage { image_ref, message })
                }
                None => {
                    let message = format!(
                        "Container image {requested:?} is not present with pull policy of Never"
                    );
                    report.event(EventType::Warning, ERR_IMAGE_NEVER_PULL_POLICY, &message);
                    Err(ImagePullError::ImageNeverPull { message })
                }
            };
        }

        let pod_uid = meta.uid.as_deref().unwrap_or_default();
        let pull = Pull {
            report: &report,
            pod_uid,
            requested,
            backoff_key: format!("{pod_uid}_{requested}"),
            spec: &spec,
            pull_secrets,
        };
        self.pull(pull).await
    }

    async fn pull(&self, pull: Pull<'_>) -> Result<EnsuredImage, ImagePullError> {
        let Pull {
            report,
            pod_uid,
            requested,
            backoff_key,
            spec,
            pull_secrets,
        } = pull;

        if self
            .backoff
            .is_in_backoff_since_update(&backoff_key, self.clock.now())
        {
            let mut message = format!("Back-off pulling image {requested:?}");
            report.event(EventType::Normal, BACK_OFF_PULL_IMAGE, &message);
            if let Some(last_error) = self.last_pull_errors.lock().get(&backoff_key) {
                message = format!("{message}: {last_error}");
            }
            return Err(ImagePullError::ImagePullBackOff { message });
        }
        self.last_pull_errors.lock().remove(&backoff_key);

        self.pull_times.record_image_started_pulling(pod_uid);
        report.event(
            EventType::Normal,
            PULLING_IMAGE,
            &format!("Pulling image {requested:?}"),
        );
        let waiting_since = self.clock.now();
        let (result, pull_duration) = self
            .puller
            .run(async {
                let started = self.clock.now();
                let result = if self.limiter_accepts() {
                    self.service.pull_image(spec, pull_secrets).await
                } else {
                    Err(RuntimeError::Failed(PULL_QPS_EXCEEDED.to_owned()))
                };
                (result, self.clock.now().saturating_duration_since(started))
            })
            .await;

        match result {
            Ok(image_ref) => {
                self.pull_times.record_image_finished_pulling(pod_uid);
                let total = self.clock.now().saturating_duration_since(waiting_since);
                report.event(
                    EventType::Normal,
                    PULLED_IMAGE,
                    &format!(
                        "Successfully pulled image {requested:?} in {} ({} including waiting)",
                        go_duration(pull_duration),
                        go_duration(total),
                    ),
                );
                self.backoff.gc();
                self.last_pull_errors
                    .lock()
                    .retain(|key, _| self.backoff.is_tracked(key));
                Ok(EnsuredImage {
                    image_ref,
                    message: String::new(),
                })
            }
            Err(err) => {
                report.event(
                    EventType::Warning,
                    FAILED_TO_PULL_IMAGE,
                    &format!("Failed to pull image {requested:?}: {err}"),
                );
                self.backoff.next(&backoff_key, self.clock.now());
                let error = pull_failure(requested, err);
                self.last_pull_errors
                    .lock()
                    .insert(backoff_key, error.to_string());
                Err(error)
            }
        }
    }

    fn limiter_accepts(&self) -> bool {
        self.limiter
            .as_ref()
            .is_none_or(|limiter| limiter.lock().try_accept(self.clock.now()))
    }
}

/// One pull attempt's inputs, bundled to keep `ImageManager::pull` readable.
struct Pull<'a> {
    report: &'a Reporter<'a>,
    pod_uid: &'a str,
    requested: &'a str,
    backoff_key: String,
    spec: &'a ImageSpec,
    pull_secrets: &'a [Secret],
}

/// Sends events about one container, or logs them when the container has
/// no object reference (as upstream's `logIt` does).
struct Reporter<'a> {
    recorder: &'a dyn EventRecorder,
    object: Option<ObjectReference>,
    log_prefix: String,
}

impl Reporter<'_> {
    fn event(&self, event_type: EventType, reason: &str, message: &str) {
        match &self.object {
            Some(object) => self.recorder.event(object, event_type, reason, message),
            None => match event_type {
                EventType::Normal => tracing::info!("{} {message}", self.log_prefix),
                EventType::Warning => tracing::warn!("{} {message}", self.log_prefix),
            },
        }
    }
}

/// The reference events about a container point at, like upstream's
/// `GenerateContainerRef`: the pod, with the container's field path.
fn container_reference(pod: &Pod, container: &Container) -> Option<ObjectReference> {
    let name = container.name.as_str();
    let spec = pod.spec.as_ref()?;
    let field_path = if spec.containers.iter().any(|c| c.name == name) {
        format!("spec.containers{{{name}}}")
    } else if spec
        .init_containers
        .iter()
        .flatten()
        .any(|c| c.name == name)
    {
        format!("spec.initContainers{{{name}}}")
    } else if spec
        .ephemeral_containers
        .iter()
        .flatten()
        .any(|c| c.name == name)
    {
        format!("spec.ephemeralContainers{{{name}}}")
    } else {
        return None;
    };
    let meta = &pod.metadata;
    Some(ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some("Pod".to_owned()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: Some(field_path),
    })
}

/// Maps a runtime's pull error to the container status reason and message
/// upstream derives from the CRI error.
fn pull_failure(requested: &str, err: RuntimeError) -> ImagePullError {
    match err {
        RuntimeError::RegistryUnavailable(detail) => ImagePullError::RegistryUnavailable {
            message: format!(
                "image pull failed for {requested} because the registry is unavailable: {detail}"
            ),
        },
        RuntimeError::SignatureValidationFailed(detail) => {
            ImagePullError::SignatureValidationFailed {
                message: format!(
                    "image pull failed for {requested} because the signature validation failed: {detail}"
                ),
            }
        }
        RuntimeError::Failed(message) => ImagePullError::ImagePull { message },
    }
}

/// Formats a duration truncated to milliseconds the way Go prints a
/// `time.Duration`, so event messages read like a real kubelet's
/// (`850ms`, `1.5s`, `2m3.25s`, `1h0m0s`).
fn go_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return "0s".to_owned();
    }
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let (hours, minutes) = (millis / 3_600_000, millis / 60_000 % 60);
    let (seconds, fraction) = (millis / 1000 % 60, millis % 1000);
    let seconds = if fraction == 0 {
        seconds.to_string()
    } else {
        let fraction = format!("{fraction:03}");
        format!("{seconds}.{}", fraction.trim_end_matches('0'))
    };
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m{seconds}s"),
        _ => format!("{hours}h{minutes}m{seconds}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_matches_go_formatting() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_micros(999), "0s"),
            (Duration::from_millis(850), "850ms"),
            (Duration::from_millis(1000), "1s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_micros(1_234_567), "1.234s"),
            (Duration::from_millis(123_250), "2m3.25s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_millis(3_723_050), "1h2m3.05s"),
        ];
        for (duration, expected) in cases {
            assert_eq!(go_duration(duration), expected, "{duration:?}");
        }
    }

    fn container(image: &str, policy: Option<&str>) -> Container {
        Container {
            name: "c".into(),
            image: Some(image.into()),
            image_pull_policy: policy.map(str::to_owned),
            ..Container::default()
        }
    }

    #[test]
    fn pull_policy_defaults_like_the_api_server() {
        assert_eq!(
            PullPolicy::of(&container("busybox", None)),
            PullPolicy::Always
        );
        assert_eq!(
            PullPolicy::of(&container("busybox:latest", None)),
            PullPolicy::Always
        );
        assert_eq!(
            PullPolicy::of(&container("busybox:1.36", None)),
            PullPolicy::IfNotPresent
        );
        let digest =
            "busybox@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            PullPolicy::of(&container(digest, None)),
            PullPolicy::IfNotPresent
        );
        assert_eq!(
            PullPolicy::of(&container("busybox", Some("Never"))),
            PullPolicy::Never
        );
        assert_eq!(
            PullPolicy::of(&container("busybox", Some("Sometimes"))),
            PullPolicy::Never
        );
        assert_eq!(
            PullPolicy::of(&container("busybox", Some("IfNotPresent"))),
            PullPolicy::IfNotPresent
        );
    }
}
