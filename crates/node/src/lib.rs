//! Simulated kubelet: registration, leases, pod workers, image manager,
//! container lifecycle.
//!
//! A [`NodeAgent`] is an ordinary API client: it registers its Node, renews
//! its Lease in `kube-node-lease`, watches the pods bound to it and runs
//! their containers through a [`RuntimeKind::Sim`] or
//! [`RuntimeKind::Process`] runtime, reporting status through `pods/status`
//! as a kubelet does. Because it only speaks the Kubernetes API, the same
//! agent runs inside the embedded cluster and joins a real one.

mod agent;
mod config;
mod error;
mod events;
pub mod images;
mod lease;
mod logs;
mod pods;
mod registration;
mod runtime;

pub use agent::NodeAgent;
pub use config::{ExistingNode, NodeConfig, RuntimeKind, SIM_ANNOTATION_PREFIX};
pub use error::Error;

/// Resolves once a shutdown signal turns true (or its sender is gone).
pub(crate) async fn stopped(signal: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = signal.wait_for(|stop| *stop).await;
}
