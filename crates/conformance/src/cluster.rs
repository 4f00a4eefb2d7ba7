//! Connecting to a cluster named by a kubeconfig.

use std::path::Path;

use kube::Client;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};

use crate::Error;

/// A client for a cluster, and the server it talks to.
#[derive(Clone)]
pub struct Target {
    /// The client the scenarios use.
    pub client: Client,
    /// The API server URL, to show before anything runs there.
    pub url: String,
}

/// Connects with `kubeconfig` (or the default kubeconfig: `$KUBECONFIG`,
/// then `~/.kube/config`) and `context` (or its current context).
pub async fn connect(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Target, Error> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)?;
            Config::from_custom_kubeconfig(kubeconfig, &options).await?
        }
        None => Config::from_kubeconfig(&options).await?,
    };
    let url = config.cluster_url.to_string();
    Ok(Target {
        client: Client::try_from(config)?,
        url,
    })
}
