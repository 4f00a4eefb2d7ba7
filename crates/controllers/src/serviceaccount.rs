//! The ServiceAccount controller: every active namespace has a `default`
//! ServiceAccount, as kube-controller-manager's keeps one there, so pods
//! that name no service account (and clients that expect one) find it.
//! Deleting it brings it back.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch as signal;

use crate::workload::drain;

/// The ServiceAccount every namespace gets.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
const ERROR_REQUEUE: Duration = Duration::from_secs(2);

/// Runs the controller until `shutdown` turns true.
pub async fn run(client: Client, mut shutdown: signal::Receiver<bool>) {
    // A deleted `default` account wakes its namespace up again.
    let accounts =
        watcher::Config::default().fields(&format!("metadata.name={DEFAULT_SERVICE_ACCOUNT}"));
    let results = Controller::new(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    )
    .watches(
        Api::<ServiceAccount>::all(client.clone()),
        accounts,
        |account| {
            account
                .namespace()
                .map(|ns| kube::runtime::reflector::ObjectRef::<Namespace>::new(&ns))
        },
    )
    .graceful_shutdown_on(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    })
    .run(
        reconcile,
        |_, _, _| Action::requeue(ERROR_REQUEUE),
        Arc::new(client),
    );
    drain(results).await;
}

async fn reconcile(namespace: Arc<Namespace>, client: Arc<Client>) -> Result<Action, kube::Error> {
    let terminating = namespace.metadata.deletion_timestamp.is_some()
        || namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    if terminating {
        return Ok(Action::await_change());
    }
    let name = namespace.name_any();
    let api: Api<ServiceAccount> = Api::namespaced(Client::clone(&client), &name);
    if api.get_opt(DEFAULT_SERVICE_ACCOUNT).await?.is_some() {
        return Ok(Action::await_change());
    }
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT_SERVICE_ACCOUNT.into()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    match api.create(&PostParams::default(), &account).await {
        Ok(_) => Ok(Action::await_change()),
        // Created meanwhile, or the namespace started terminating: both
        // end here.
        Err(kube::Error::Api(status)) if status.code == 409 || status.code == 403 => {
            Ok(Action::await_change())
        }
        Err(err) => Err(err),
    }
}
