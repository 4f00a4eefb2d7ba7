//! The runtime side of image management: what the image manager asks a
//! container runtime (the `sim` or `process` runtime, or a fake in tests),
//! mirroring the CRI `ImageStatus` / `PullImage` calls the kubelet makes.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;

/// The runtime's identifier of a pulled image (an image ID or digest),
/// which ends up in `containerStatuses[].imageID`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef(String);

impl ImageRef {
    /// Wraps a runtime's image identifier.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The identifier as the runtime reported it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The image a runtime is asked about, as the CRI's `ImageSpec` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageSpec {
    /// The image with the default tag applied (`busybox` -> `busybox:latest`).
    pub image: String,
    /// The RuntimeClass handler the pod runs with, so runtimes that keep
    /// images per handler look in the right place.
    pub runtime_handler: Option<String>,
    /// All annotations of the pod, as upstream forwards them to the runtime
    /// (including `kubernetes.io/runtimehandler`).
    pub annotations: BTreeMap<String, String>,
}

/// A runtime's failure to inspect or pull an image.
///
/// The variants mirror the CRI error strings the kubelet recognises: a
/// registry outage or failed signature check gets its own container status
/// reason, everything else is a plain pull failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The registry could not be reached.
    #[error("RegistryUnavailable: {0}")]
    RegistryUnavailable(String),
    /// The image's signature did not verify.
    #[error("SignatureValidationFailed: {0}")]
    SignatureValidationFailed(String),
    /// Any other failure, with the runtime's message.
    #[error("{0}")]
    Failed(String),
}

/// Image operations of a container runtime.
#[async_trait]
pub trait ImageService: Send + Sync {
    /// The reference of `spec`'s image if it is present on the node, `None`
    /// if it is not.
    async fn image_status(&self, spec: &ImageSpec) -> Result<Option<ImageRef>, RuntimeError>;

    /// Pulls `spec`'s image with the pod's pull secrets and returns its reference.
    async fn pull_image(
        &self,
        spec: &ImageSpec,
        pull_secrets: &[Secret],
    ) -> Result<ImageRef, RuntimeError>;
}
