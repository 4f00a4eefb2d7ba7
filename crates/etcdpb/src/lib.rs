//! The etcd v3 gRPC API that kstress's etcd store backend speaks: the KV
//! service's Range, Txn and Compact calls and the Watch stream.
//!
//! The code is generated from `proto/etcd_v3.proto` by `codegen/` and
//! committed, so building kstress needs no protoc (or any other code
//! generator); CI regenerates it and fails on a difference.

/// Messages and clients of etcd's `etcdserverpb` package.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod etcdserverpb {
    include!("generated/etcdserverpb.rs");
}

pub use etcdserverpb::kv_client::KvClient;
pub use etcdserverpb::watch_client::WatchClient;
