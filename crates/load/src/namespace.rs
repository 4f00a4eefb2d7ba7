//! The run's namespace: created before the load, deleted after it, and
//! waited for until it is really gone so that the next run starts clean.
//! In a namespace the run did not create, its objects are deleted instead,
//! found by their run label.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, DynamicObject, ListParams, ObjectMeta, PostParams};
use kube::{Api, Client};

use crate::Error;

/// A fresh namespace name: `<prefix>-<10 random lowercase letters and
/// digits>-<Unix seconds>`, unique across runs and valid as a DNS label.
pub fn generated_name(prefix: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let random: String = (0..10)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or_default();
    format!("{prefix}-{random}-{now}")
}

/// Creates the namespace; one that exists already is an error, because a
/// run must not mix its objects with someone else's.
pub async fn create(client: &Client, name: &str) -> Result<(), Error> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_owned(),
                    "kstress".to_owned(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .map_err(|err| Error::api(format!("cannot create namespace {name}"), err))?;
    Ok(())
}

/// Checks that an existing namespace can be used.
pub async fn check_exists(client: &Client, name: &str) -> Result<(), Error> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .get(name)
        .await
        .map_err(|err| Error::api(format!("cannot use namespace {name}"), err))?;
    Ok(())
}

/// Deletes the namespace and waits until the server has removed it (and
/// with it every object of the run), for at most `timeout`.
pub async fn delete_and_wait(client: &Client, name: &str, timeout: Duration) -> Result<(), Error> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let uid = match namespaces.delete(name, &DeleteParams::background()).await {
        Ok(either) => either.left().and_then(|namespace| namespace.metadata.uid),
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
        Err(err) => return Err(Error::api(format!("cannot delete namespace {name}"), err)),
    };
    let gone = kube::runtime::wait::await_condition(
        namespaces,
        name,
        kube::runtime::wait::conditions::is_deleted(uid.as_deref().unwrap_or_default()),
    );
    match tokio::time::timeout(timeout, gone).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(Error::Invalid(format!(
            "cannot watch namespace {name} while it is deleted: {err}"
        ))),
        Err(_) => Err(Error::Invalid(format!(
            "namespace {name} still exists {} s after its deletion",
            timeout.as_secs()
        ))),
    }
}

/// How often [`delete_labelled_and_wait`] looks whether objects are left.
const GONE_POLL: Duration = Duration::from_millis(200);

/// Deletes the objects of `api` that `selector` matches and waits until
/// none is left (pods, for one, stay until their kubelet has stopped them):
/// the clean-up of a run in a namespace it did not create, where deleting
/// the namespace would take other objects with it.
pub async fn delete_labelled_and_wait(
    api: &Api<DynamicObject>,
    selector: &str,
    timeout: Duration,
) -> Result<(), Error> {
    let params = ListParams::default().labels(selector);
    api.delete_collection(&DeleteParams::background(), &params)
        .await
        .map_err(|err| {
            Error::api(
                format!("cannot delete the objects labelled {selector}"),
                err,
            )
        })?;
    let gone = async {
        loop {
            let left = api.list_metadata(&params).await.map_err(|err| {
                Error::api(format!("cannot list the objects labelled {selector}"), err)
            })?;
            if left.items.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(GONE_POLL).await;
        }
    };
    tokio::time::timeout(timeout, gone)
        .await
        .unwrap_or_else(|_| {
            Err(Error::Invalid(format!(
                "objects labelled {selector} still exist {} s after their deletion",
                timeout.as_secs()
            )))
        })
}
