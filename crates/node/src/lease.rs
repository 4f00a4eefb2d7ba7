//! The node heartbeat: a Lease in `kube-node-lease` named after the node,
//! renewed every few seconds, as node lifecycle controllers expect.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

use crate::Error;

/// The namespace holding node leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Creates the node's Lease (owned by its Node) or takes over an existing one.
pub async fn acquire(
    api: &Api<Lease>,
    node: &str,
    node_uid: &str,
    duration: Duration,
) -> Result<(), Error> {
    let now = MicroTime(Timestamp::now());
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(node.to_owned()),
            namespace: Some(NODE_LEASE_NAMESPACE.to_owned()),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Node".into(),
                name: node.to_owned(),
                uid: node_uid.to_owned(),
                ..OwnerReference::default()
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(node.to_owned()),
            lease_duration_seconds: Some(i32::try_from(duration.as_secs()).unwrap_or(40)),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            ..LeaseSpec::default()
        }),
    };
    match api.create(&PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => renew(api, node).await,
        Err(err) => Err(Error::api(format!(
            "cannot create the lease of node {node}"
        ))(err)),
    }
}

/// Moves the Lease's `renewTime` to now.
pub async fn renew(api: &Api<Lease>, node: &str) -> Result<(), Error> {
    let patch = serde_json::json!({
        "spec": {
            "holderIdentity": node,
            "renewTime": MicroTime(Timestamp::now()),
        }
    });
    api.patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(drop)
        .map_err(Error::api(format!("cannot renew the lease of node {node}")))
}

/// Deletes the Lease when the agent leaves the cluster.
pub async fn release(api: &Api<Lease>, node: &str) {
    match api.delete(node, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(err) => tracing::warn!(%err, node, "cannot delete lease"),
    }
}
