//! Why a node agent could not start.

/// A failure to bring a node up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request the agent needs to start.
    ///
    /// The message carries the server's own words for a Status (as kubectl
    /// prints them) and the innermost cause otherwise; kube-rs's rendering
    /// of a Status dumps the whole object, so the client's error is kept
    /// for callers but not offered as the displayed cause.
    #[error("{action}: {}", describe(.error))]
    Api {
        /// What the agent was doing.
        action: String,
        /// The client's error.
        error: kube::Error,
    },
    /// A live kubelet holds the node's name: its Node is Ready and its
    /// Lease was renewed within the lease duration.
    #[error(
        "node {name} is in use: it is Ready and its Lease was renewed {renewed_secs_ago} s ago \
         by {holder}"
    )]
    InUse {
        /// The node.
        name: String,
        /// The Lease's holder identity.
        holder: String,
        /// Seconds since the Lease's last renewal.
        renewed_secs_ago: u64,
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
        move |error| Error::Api { action, error }
    }

    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let action = action.into();
        move |source| Error::Io { action, source }
    }
}

/// One line for a client error: the Status message with its code and
/// reason, else the error and its innermost cause (e.g. "Connection
/// refused").
fn describe(err: &kube::Error) -> String {
    if let kube::Error::Api(status) = err {
        return format!("{} ({} {})", status.message, status.code, status.reason);
    }
    let mut innermost: &(dyn std::error::Error + 'static) = err;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    let (top, cause) = (err.to_string(), innermost.to_string());
    if top.contains(&cause) {
        top
    } else {
        format!("{top}: {cause}")
    }
}
