//! Simulated kubelet: registration, leases, pod workers, image manager, container lifecycle.

pub mod images;
