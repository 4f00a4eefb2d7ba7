//! `kstress conformance node`: node lifecycle and image-pull conformance,
//! against the embedded cluster or any real one.
//!
//! Each scenario runs in a namespace of its own and looks at the node only
//! through the API. Lifecycle scenarios run containers that log their
//! progress to their termination logs; the merged [`Timeline`] of a pod is
//! then checked with ordering relations (starts before, exits before, run
//! together, doesn't start, has restarted). Image-pull scenarios read
//! container waiting reasons and the pod's events.
//!
//! ```no_run
//! # async fn example(client: kube::Client) -> Result<(), conformance::Error> {
//! let report = conformance::run(client, conformance::Options::default()).await?;
//! for result in report.results() {
//!     println!("{result}");
//! }
//! print!("{}", report.summary());
//! report.write_json(std::path::Path::new("out"))?;
//! assert_eq!(report.failed(), 0);
//! # Ok(())
//! # }
//! ```

mod options;
mod pods;
mod relations;
mod report;
mod runner;
mod scenarios;
mod timeline;
mod wait;

pub use options::{
    DEFAULT_BAD_IMAGE, DEFAULT_IMAGE, DEFAULT_PARALLEL, OnResult, Options, Timeouts,
};
/// Re-exported so that callers can fill [`Options::focus`] and
/// [`Options::skip`] without depending on `regex` themselves.
pub use regex::Regex;
pub use relations::Violation;
pub use report::{RESULTS_SECTION, Report, ScenarioResult, Status};
pub use runner::{SCENARIO_LABEL, run};
pub use scenarios::{Failure, Scenario, all as scenarios, selected};
pub use timeline::{DELAYING, EXITING, Entry, ParseError, STARTED, STARTING, Timeline};

/// Why a conformance run could not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--focus` and `--skip` left nothing to run.
    #[error("no scenario matches the --focus and --skip expressions")]
    NothingSelected,
    /// Recording or writing the results failed.
    #[error(transparent)]
    Results(#[from] measure::Error),
}
