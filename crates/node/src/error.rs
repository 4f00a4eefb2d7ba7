//! Why a node agent could not start.

/// A failure to bring a node up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request the agent needs to start.
    #[error("{action}: {source}")]
    Api {
        /// What the agent was doing.
        action: String,
        /// The client's error.
        source: kube::Error,
    },
    /// The container runtime cannot run on this machine.
    #[error("container runtime unavailable: {0}")]
    Runtime(String),
    /// The node's log endpoint could not be bound, or its data directory created.
    #[error("{action}: {source}")]
    Io {
        /// What the agent was doing.
        action: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The configuration cannot be used.
    #[error("invalid node configuration: {0}")]
    Config(String),
}

impl Error {
    pub(crate) fn api(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let action = action.into();
        move |source| Error::Api { action, source }
    }

    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let action = action.into();
        move |source| Error::Io { action, source }
    }
}
