//! Choosing the embedded API server's store: memory (default), a data
//! directory on disk, or a real etcd cluster.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use store::{
    DiskStore, DiskStoreOptions, EtcdStore, EtcdStoreOptions, MemoryStore, MemoryStoreOptions,
    Store,
};

/// Where the embedded API server keeps its objects. With neither flag the
/// objects live in memory and are gone when kstress exits.
#[derive(Args, Clone, Debug, Default)]
pub struct StoreArgs {
    /// Keep objects in this directory, durably: every acknowledged write
    /// survives a crash, and the next start with the same directory goes on
    /// from there. Created when missing; a directory holding anything else
    /// is refused.
    #[arg(long, value_name = "DIR", conflicts_with = "etcd_servers")]
    pub data_dir: Option<PathBuf>,

    /// Keep objects in this etcd cluster (client URLs, comma-separated),
    /// under /registry/<resource>/<namespace>/<name> as kube-apiserver does.
    #[arg(long, value_name = "URL[,URL]", value_delimiter = ',')]
    pub etcd_servers: Vec<String>,

    /// Prefix for every key in etcd, to share one etcd between servers.
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "",
        requires = "etcd_servers"
    )]
    pub etcd_prefix: String,
}

/// Opens the store the flags name.
pub async fn open(args: &StoreArgs) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(dir) = &args.data_dir {
        let dir = dir.clone();
        let store =
            tokio::task::spawn_blocking(move || DiskStore::open(&dir, DiskStoreOptions::default()))
                .await
                .context("the data directory could not be opened")?
                .context("cannot open the store given by --data-dir")?;
        return Ok(Arc::new(store));
    }
    if !args.etcd_servers.is_empty() {
        let store = EtcdStore::connect(EtcdStoreOptions {
            endpoints: args.etcd_servers.clone(),
            prefix: args.etcd_prefix.clone(),
            ..EtcdStoreOptions::default()
        })
        .await
        .context("cannot use the store given by --etcd-servers")?;
        return Ok(Arc::new(store));
    }
    Ok(Arc::new(MemoryStore::new(MemoryStoreOptions::default())))
}
