//! Image management for simulated kubelets, with the semantics of
//! upstream's `pkg/kubelet/images`.
//!
//! A pod worker calls [`ImageManager::ensure_image_exists`] before creating
//! each container. The manager applies the default `:latest` tag, asks the
//! runtime ([`ImageService`]) whether the image is present, decides from the
//! pull policy whether to pull, honours per pod+image back-off after
//! failures, the registry QPS/burst limit and the serialized or bounded
//! parallel puller, and reports progress as Kubernetes events and pull
//! timings. Failures carry the container status reasons a real kubelet
//! reports (`ErrImagePull`, `ImagePullBackOff`, ...).

mod backoff;
mod clock;
mod error;
mod limiter;
mod manager;
mod puller;
mod recorder;
mod reference;
mod service;
#[cfg(test)]
mod tests;

pub use backoff::Backoff;
pub use clock::{Clock, FakeClock, TokioClock};
pub use error::{
    ERR_IMAGE_INSPECT, ERR_IMAGE_NEVER_PULL, ERR_IMAGE_PULL, ERR_IMAGE_PULL_BACK_OFF,
    ERR_INVALID_IMAGE_NAME, ERR_REGISTRY_UNAVAILABLE, ERR_SIGNATURE_VALIDATION_FAILED,
    ImagePullError,
};
pub use manager::{
    ConfigError, EnsuredImage, ImageManager, ImageManagerConfig, PULL_QPS_EXCEEDED, PullPolicy,
};
pub use puller::PullMode;
pub use recorder::{
    BACK_OFF_PULL_IMAGE, ERR_IMAGE_NEVER_PULL_POLICY, EventRecorder, EventType,
    FAILED_TO_INSPECT_IMAGE, FAILED_TO_PULL_IMAGE, PULLED_IMAGE, PULLING_IMAGE,
    PodPullingTimeRecorder,
};
pub use reference::{
    DEFAULT_IMAGE_TAG, ImageName, InvalidImageName, ReferenceError, apply_default_image_tag,
    parse_image_name,
};
pub use service::{ImageRef, ImageService, ImageSpec, RuntimeError};
