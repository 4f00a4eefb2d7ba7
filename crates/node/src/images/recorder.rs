//! What the image manager reports besides its result: Kubernetes events
//! about the container, and pull start/finish times for the pod startup
//! latency SLI (which excludes image pulling).

use k8s_openapi::api::core::v1::ObjectReference;

/// Event reason for a pull that is starting.
pub const PULLING_IMAGE: &str = "Pulling";
/// Event reason for an image that was pulled or already present.
pub const PULLED_IMAGE: &str = "Pulled";
/// Event reason for a failed pull.
pub const FAILED_TO_PULL_IMAGE: &str = "Failed";
/// Event reason for an image that could not be inspected or parsed.
pub const FAILED_TO_INSPECT_IMAGE: &str = "InspectFailed";
/// Event reason for an absent image whose pull policy is `Never`.
pub const ERR_IMAGE_NEVER_PULL_POLICY: &str = "ErrImageNeverPull";
/// Event reason for a pull skipped because of back-off.
pub const BACK_OFF_PULL_IMAGE: &str = "BackOff";

/// The `type` of a Kubernetes event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Routine progress.
    Normal,
    /// Something the user may need to act on.
    Warning,
}

impl EventType {
    /// The value of the event's `type` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// Records events about an object, like client-go's `record.EventRecorder`.
///
/// Calls must not block: an implementation queues the event and writes it
/// to the API server in the background, so that a slow API server never
/// stalls a pod worker.
pub trait EventRecorder: Send + Sync {
    /// Records one event about `object`.
    fn event(&self, object: &ObjectReference, event_type: EventType, reason: &str, message: &str);
}

/// Receives the moments a pod's image pulls start and finish, so pod startup
/// latency can be reported without pull time.
pub trait PodPullingTimeRecorder: Send + Sync {
    /// A pull for the pod is about to start.
    fn record_image_started_pulling(&self, pod_uid: &str);
    /// A pull for the pod finished successfully.
    fn record_image_finished_pulling(&self, pod_uid: &str);
}
