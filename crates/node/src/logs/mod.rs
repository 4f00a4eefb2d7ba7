//! Container logs: how the `process` runtime records output, and the
//! node's `/containerLogs` endpoint the API server proxies `pods/log` to.
//!
//! Logs are kept in the CRI log format, one record per line:
//! `<RFC 3339 timestamp> <stdout|stderr> <F|P> <text>`, where `P` marks a
//! partial line (no newline yet). Timestamps make `timestamps` and
//! `sinceSeconds` possible.

mod format;
mod registry;
mod server;

pub use format::{LogQuery, LogWriter, read_tail};
pub use registry::{ContainerLog, LogRegistry};
pub use server::LogServer;
