//! The ServiceAccount controller against the embedded API server.

mod common;

use common::{Cluster, wait_until};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn every_namespace_keeps_a_default_service_account() {
    let cluster = Cluster::start().await;
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap(),
        )
        .await
        .unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), "team");
    let first = wait_until("the default ServiceAccount of a new namespace", || async {
        accounts.get_opt("default").await.unwrap()
    })
    .await;
    let system: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), "kube-system");
    wait_until("the default ServiceAccount of kube-system", || async {
        system.get_opt("default").await.unwrap()
    })
    .await;

    accounts
        .delete("default", &DeleteParams::default())
        .await
        .unwrap();
    let again = wait_until(
        "the deleted default ServiceAccount to come back",
        || async {
            accounts
                .get_opt("default")
                .await
                .unwrap()
                .filter(|sa| sa.metadata.uid != first.metadata.uid)
        },
    )
    .await;
    assert!(again.metadata.uid.is_some());
    cluster.stop().await;
}
