//! Results: a line per scenario, the timelines of failures, results.json.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use measure::{Class, Kind, Measurement, Outcome, RunInfo};
use serde_json::{Value, json};

use crate::Error;
use crate::options::Options;
use crate::timeline::Timeline;

/// Name of the results.json section with the per-scenario outcomes.
pub const RESULTS_SECTION: &str = "conformance";
/// The operation class that times whole scenarios in results.json.
const SCENARIO_CLASS: &str = "scenario";

/// How a scenario ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Everything the scenario checks held.
    Passed,
    /// Something did not hold, or the cluster did not answer.
    Failed,
    /// Not selected by `--focus` / `--skip`.
    Skipped,
}

impl Status {
    /// `PASS`, `FAIL` or `SKIP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "PASS",
            Status::Failed => "FAIL",
            Status::Skipped => "SKIP",
        }
    }
}

/// The outcome of one scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioResult {
    /// The scenario's name.
    pub name: String,
    /// How it ended.
    pub status: Status,
    /// From the creation of its namespace until the namespace was gone.
    pub duration: Duration,
    /// Why it failed.
    pub message: Option<String>,
    /// The containers' timeline, when it helps explain a failure.
    pub timeline: Option<Timeline>,
}

impl fmt::Display for ScenarioResult {
    /// `PASS lifecycle/init-serial (7.2s)`, with the reason of a failure.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.duration.as_secs_f64();
        write!(f, "{} {} ({secs:.1}s)", self.status.as_str(), self.name)?;
        match &self.message {
            Some(message) => write!(f, ": {message}"),
            None => Ok(()),
        }
    }
}

/// Everything a conformance run found.
#[derive(Clone, Debug)]
pub struct Report {
    results: Vec<ScenarioResult>,
    measured: measure::Report,
}

impl Report {
    /// Builds the report of results in registry order.
    pub(crate) fn new(
        options: &Options,
        results: Vec<ScenarioResult>,
        measurement: &Measurement,
    ) -> Result<Self, Error> {
        let info = RunInfo {
            scenario: "conformance-node".into(),
            target: options.target.clone(),
            config: options.to_json(),
            target_rate_per_s: None,
            achieved_rate_per_s: None,
            extra: [(RESULTS_SECTION.to_owned(), section(&results))].into(),
            ..RunInfo::default()
        };
        Ok(Self {
            measured: measure::Report::new(info, measurement.snapshot()),
            results,
        })
    }

    /// Every scenario's result, in registry order.
    pub fn results(&self) -> &[ScenarioResult] {
        &self.results
    }

    /// Scenarios that passed.
    pub fn passed(&self) -> usize {
        self.count(Status::Passed)
    }

    /// Scenarios that failed; a run with any is not conformant.
    pub fn failed(&self) -> usize {
        self.count(Status::Failed)
    }

    fn count(&self, status: Status) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }

    /// The timeline of each failed scenario, then `N passed, N failed`.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for failed in self.results.iter().filter(|r| r.status == Status::Failed) {
            out += &format!("\n--- {}\n", failed);
            if let Some(timeline) = &failed.timeline {
                out += &timeline.to_string();
            }
        }
        out += &format!("\n{} passed, {} failed\n", self.passed(), self.failed());
        out
    }

    /// Writes results.json into `dir` (created if missing).
    pub fn write_json(&self, dir: &Path) -> Result<PathBuf, Error> {
        Ok(self.measured.write_json(dir)?)
    }
}

/// Records a finished scenario's duration in the run's measurement.
pub(crate) fn measurement() -> Result<Measurement, Error> {
    Ok(Measurement::new([Class::new(SCENARIO_CLASS, Kind::Other)])?)
}

pub(crate) fn record(measurement: &Measurement, result: &ScenarioResult) -> Result<(), Error> {
    let class = measurement.class(SCENARIO_CLASS)?;
    let outcome = match result.status {
        Status::Passed => Outcome::Ok,
        Status::Failed => Outcome::error("failed"),
        Status::Skipped => return Ok(()),
    };
    measurement
        .recorder()
        .record(class, result.duration, outcome);
    Ok(())
}

fn section(results: &[ScenarioResult]) -> Value {
    let scenarios: Vec<Value> = results
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "status": r.status.as_str(),
                "duration_s": r.duration.as_secs_f64(),
                "message": r.message,
                "timeline": r.timeline.as_ref().map(|t| t.to_string().lines().map(str::to_owned).collect::<Vec<_>>()),
            })
        })
        .collect();
    json!({ "scenarios": scenarios })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, status: Status, millis: u64) -> ScenarioResult {
        ScenarioResult {
            name: name.into(),
            status,
            duration: Duration::from_millis(millis),
            message: None,
            timeline: None,
        }
    }

    fn report() -> Report {
        let failed = ScenarioResult {
            message: Some("init-2 did not start after init-1 exited".into()),
            timeline: Some(Timeline::parse("1 2.00 init-1 Exiting\n").unwrap()),
            ..result("lifecycle/init-serial", Status::Failed, 7_250)
        };
        let results = vec![
            failed,
            result("lifecycle/init-failure", Status::Passed, 3_000),
            result("image-pull/always", Status::Skipped, 0),
        ];
        let measurement = measurement().unwrap();
        for r in &results {
            record(&measurement, r).unwrap();
        }
        Report::new(&Options::default(), results, &measurement).unwrap()
    }

    #[test]
    fn lines_and_summary() {
        let report = report();
        let lines: Vec<String> = report.results().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "FAIL lifecycle/init-serial (7.2s): init-2 did not start after init-1 exited",
                "PASS lifecycle/init-failure (3.0s)",
                "SKIP image-pull/always (0.0s)",
            ]
        );
        assert_eq!((report.passed(), report.failed()), (1, 1));
        assert_eq!(
            report.summary(),
            "\n--- FAIL lifecycle/init-serial (7.2s): init-2 did not start after init-1 exited\n\
             1 2.00 init-1 Exiting\n\
             \n1 passed, 1 failed\n"
        );
    }

    #[test]
    fn results_json_has_a_conformance_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = report().write_json(dir.path()).unwrap();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(doc["schema"], measure::SCHEMA);
        assert_eq!(doc["scenario"], "conformance-node");
        assert_eq!(doc["config"]["image"], "busybox");
        assert_eq!(doc["operations"][SCENARIO_CLASS]["count"], 2);
        assert_eq!(doc["operations"][SCENARIO_CLASS]["errors"], 1);
        let scenarios = doc["extra"][RESULTS_SECTION]["scenarios"]
            .as_array()
            .unwrap();
        assert_eq!(scenarios.len(), 3);
        assert_eq!(scenarios[0]["status"], "FAIL");
        assert_eq!(scenarios[0]["duration_s"], 7.25);
        assert_eq!(scenarios[0]["timeline"][0], "1 2.00 init-1 Exiting");
        assert_eq!(scenarios[1]["status"], "PASS");
        assert!(scenarios[1]["message"].is_null());
        assert_eq!(scenarios[2]["status"], "SKIP");
    }
}
