//! Measurement and reporting for every kstress load driver.
//!
//! A driver declares its operation classes, gives each worker a
//! [`Recorder`], and at the end turns a [`Snapshot`] into a [`Report`]: the
//! terminal table, `results.json` and `report.html`. While it runs,
//! [`MetricsServer`] serves live Prometheus metrics and [`Progress`] draws a
//! progress line.
//!
//! Latencies go into HDR histograms (microseconds, three significant
//! digits) that merge exactly, across workers within a run and across
//! distributed workers through [`Snapshot::merge`] or the base64 histograms
//! in results.json. Nothing is sampled: every completed request is counted
//! once, including those of recorders dropped by a cancelled task.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use measure::{Class, Kind, Measurement, Outcome, Report, RunInfo};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), measure::Error> {
//! let measurement = Measurement::new([
//!     Class::new("write", Kind::Mutating),
//!     Class::new("get", Kind::Read),
//! ])?;
//! let get = measurement.class("get")?;
//!
//! // One recorder per worker; dropping it (or aborting its task) loses nothing.
//! let mut workers = tokio::task::JoinSet::new();
//! for _ in 0..4 {
//!     let recorder = measurement.recorder();
//!     workers.spawn(async move {
//!         for _ in 0..100 {
//!             let start = Instant::now();
//!             let outcome = Outcome::Ok; // or Outcome::status(409), Outcome::error("timeout")
//!             recorder.record(get, start.elapsed(), outcome);
//!         }
//!     });
//! }
//! while workers.join_next().await.is_some() {}
//!
//! let report = Report::new(
//!     RunInfo { scenario: "example".into(), target: "embedded".into(), ..RunInfo::default() },
//!     measurement.snapshot(),
//! );
//! assert_eq!(report.results().operations["get"].count, 400);
//! print!("{}", report.table());
//! let dir = tempfile::tempdir().unwrap();
//! report.write_json(dir.path())?;
//! report.write_html(dir.path())?;
//! # Ok(())
//! # }
//! ```
//!
//! Open-loop drivers time each request from its intended start with
//! [`Recorder::record_scheduled`], which also records how late it started.

mod api_responsiveness;
mod histogram;
mod html;
mod metrics;
mod pod_latency;
mod progress;
mod record;
mod results;
mod slo;
mod snapshot;
mod table;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use api_responsiveness::{ApiCall, ApiResponsiveness, ApiWindow};
pub use histogram::{Bucket, LatencyHistogram, MAX_LATENCY, REFERENCE_BUCKETS_MS};
pub use metrics::MetricsServer;
pub use pod_latency::{
    GateVerdict, GroupLatency, Metric, NOT_READY_LISTED, PodLatencySummary, PodRecord, PodState,
    Quantiles, TRANSITIONS, Threshold,
};
pub use progress::Progress;
pub use prometheus_client::registry::Registry;
pub use record::{Class, ClassId, ErrorCode, Kind, LiveTotals, Measurement, Outcome, Recorder};
pub use results::{
    LagSummary, OpenLoop, Point, RESULTS_FILE, Results, RunInfo, SCHEMA, Summary, Timeseries,
};
pub use slo::SloCheck;
pub use snapshot::{ClassSnapshot, SeriesCell, Snapshot};

/// File name of the HTML report inside `--output`.
pub const REPORT_FILE: &str = "report.html";

/// Creates `dir` if missing and checks that reports can be written into
/// it the way [`Report::write_json`] writes them. Runs check their output
/// directory with this before they start, so that a wrong path costs a
/// second instead of the results of the whole run.
pub fn prepare_output_dir(dir: &Path) -> Result<(), Error> {
    results::probe_dir(dir)
}

/// Errors from measurement and reporting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two classes of one measurement share a name.
    #[error("operation class {0:?} is declared twice")]
    DuplicateClass(String),
    /// A class name that the measurement does not declare.
    #[error("unknown operation class {0:?}")]
    UnknownClass(String),
    /// Snapshots disagree on what kind of call a class is.
    #[error("operation class {0:?} has different kinds in the snapshots being merged")]
    ClassMismatch(String),
    /// A serialized histogram could not be written or read.
    #[error("latency histogram: {0}")]
    Histogram(String),
    /// Writing a report file failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying failure.
        source: std::io::Error,
    },
    /// Encoding results as JSON failed.
    #[error("cannot encode results: {0}")]
    Json(#[from] serde_json::Error),
    /// Drawing a chart failed.
    #[error("cannot draw chart: {0}")]
    Chart(String),
    /// Formatting the report failed.
    #[error("cannot format report: {0}")]
    Format(#[from] std::fmt::Error),
    /// The metrics address cannot be served.
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// The underlying failure.
        source: std::io::Error,
    },
}

/// A finished run, ready to print and write.
#[derive(Clone, Debug)]
pub struct Report {
    results: Results,
    snapshot: Snapshot,
}

impl Report {
    /// Summarizes `snapshot` with the driver's description of the run.
    pub fn new(info: RunInfo, snapshot: Snapshot) -> Self {
        Self {
            results: Results::new(info, &snapshot),
            snapshot,
        }
    }

    /// The results.json document.
    pub fn results(&self) -> &Results {
        &self.results
    }

    /// The raw measurements behind the results.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The summary table for the terminal.
    pub fn table(&self) -> String {
        table::render_table(&self.results)
    }

    /// The self-contained HTML report.
    pub fn html(&self) -> Result<String, Error> {
        html::render_html(&self.results, &self.snapshot)
    }

    /// Writes `results.json` into `dir` (created if missing) atomically.
    pub fn write_json(&self, dir: &Path) -> Result<PathBuf, Error> {
        self.results.write(dir)
    }

    /// Writes `report.html` into `dir` (created if missing) atomically.
    pub fn write_html(&self, dir: &Path) -> Result<PathBuf, Error> {
        results::write_atomically(dir, REPORT_FILE, self.html()?.as_bytes())
    }
}
