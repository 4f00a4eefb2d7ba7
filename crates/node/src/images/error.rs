//! Why a container's image is not available, with the reasons the kubelet
//! puts in `containerStatuses[].state.waiting.reason`.

/// Pull failed; the next attempt waits for the back-off.
pub const ERR_IMAGE_PULL: &str = "ErrImagePull";
/// A previous pull failed and the back-off window has not passed.
pub const ERR_IMAGE_PULL_BACK_OFF: &str = "ImagePullBackOff";
/// The image is absent and the pull policy is `Never`.
pub const ERR_IMAGE_NEVER_PULL: &str = "ErrImageNeverPull";
/// The runtime could not tell whether the image is present.
pub const ERR_IMAGE_INSPECT: &str = "ImageInspectError";
/// The image string is not a valid reference.
pub const ERR_INVALID_IMAGE_NAME: &str = "InvalidImageName";
/// The registry could not be reached.
pub const ERR_REGISTRY_UNAVAILABLE: &str = "RegistryUnavailable";
/// The image's signature did not verify.
pub const ERR_SIGNATURE_VALIDATION_FAILED: &str = "SignatureValidationFailed";

/// The outcome of a failed `ensure_image_exists`: a reason for the container
/// status and a message for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImagePullError {
    /// See [`ERR_INVALID_IMAGE_NAME`].
    #[error("InvalidImageName: {message}")]
    InvalidImageName {
        /// Human-readable detail.
        message: String,
    },
    /// See [`ERR_IMAGE_INSPECT`].
    #[error("ImageInspectError: {message}")]
    ImageInspect {
        /// Human-readable detail.
        message: String,
    },
    /// See [`ERR_IMAGE_NEVER_PULL`].
    #[error("ErrImageNeverPull: {message}")]
    ImageNeverPull {
        /// Human-readable detail.
        message: String,
    },
    /// See [`ERR_IMAGE_PULL_BACK_OFF`].
    #[error("ImagePullBackOff: {message}")]
    ImagePullBackOff {
        /// Human-readable detail, including the last pull error.
        message: String,
    },
    /// See [`ERR_IMAGE_PULL`].
    #[error("ErrImagePull: {message}")]
    ImagePull {
        /// Human-readable detail.
        message: String,
    },
    /// See [`ERR_REGISTRY_UNAVAILABLE`].
    #[error("RegistryUnavailable: {message}")]
    RegistryUnavailable {
        /// Human-readable detail.
        message: String,
    },
    /// See [`ERR_SIGNATURE_VALIDATION_FAILED`].
    #[error("SignatureValidationFailed: {message}")]
    SignatureValidationFailed {
        /// Human-readable detail.
        message: String,
    },
}

impl ImagePullError {
    /// The container status reason, e.g. `ImagePullBackOff`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidImageName { .. } => ERR_INVALID_IMAGE_NAME,
            Self::ImageInspect { .. } => ERR_IMAGE_INSPECT,
            Self::ImageNeverPull { .. } => ERR_IMAGE_NEVER_PULL,
            Self::ImagePullBackOff { .. } => ERR_IMAGE_PULL_BACK_OFF,
            Self::ImagePull { .. } => ERR_IMAGE_PULL,
            Self::RegistryUnavailable { .. } => ERR_REGISTRY_UNAVAILABLE,
            Self::SignatureValidationFailed { .. } => ERR_SIGNATURE_VALIDATION_FAILED,
        }
    }

    /// The container status message.
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidImageName { message }
            | Self::ImageInspect { message }
            | Self::ImageNeverPull { message }
            | Self::ImagePullBackOff { message }
            | Self::ImagePull { message }
            | Self::RegistryUnavailable { message }
            | Self::SignatureValidationFailed { message } => message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_reason_then_message() {
        let err = ImagePullError::ImagePullBackOff {
            message: "Back-off pulling image \"x\"".into(),
        };
        assert_eq!(
            err.to_string(),
            format!("{}: {}", err.reason(), err.message())
        );
        let err = ImagePullError::ImageInspect {
            message: "m".into(),
        };
        assert_eq!(err.to_string(), format!("{ERR_IMAGE_INSPECT}: m"));
    }
}
