//! kube-burner's job configuration, as kstress reads it.
//!
//! Field names, defaults and meanings follow kube-burner's reference
//! (docs/reference/configuration.md). Keys kube-burner knows but kstress
//! does not act on (indexers, hooks, image pre-loading, ...) are accepted
//! and reported as warnings; keys neither knows are errors, as kube-burner
//! reads its files with known fields only.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A whole scenario file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    #[serde(default)]
    pub global: Global,
    pub jobs: Vec<Job>,
    /// kube-burner's Prometheus scraping: not used by kstress, which
    /// measures from its own clients.
    #[serde(default, skip_serializing)]
    pub metrics_endpoints: Option<IgnoredAny>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Global {
    /// Measurements by name (`podLatency`, ...), with their options.
    #[serde(default)]
    pub measurements: Vec<Value>,
    #[serde(default, with = "go_duration::option")]
    pub request_timeout: Option<Duration>,
    /// Delete every namespace the run created when it ends.
    #[serde(default)]
    pub gc: bool,
    #[serde(default)]
    pub gc_metrics: bool,
    /// Wait for every job's objects once all jobs have run.
    #[serde(default)]
    pub wait_when_finished: bool,
    #[serde(default)]
    pub cluster_health: bool,
    /// The whole run's time limit.
    #[serde(default = "four_hours", with = "go_duration")]
    pub timeout: Duration,
    /// Files with `{{define}}`d templates every object template may call.
    #[serde(default)]
    pub function_templates: Vec<String>,
    #[serde(default)]
    pub deletion_strategy: Option<String>,
    /// Older kube-burner releases name their indexer here.
    #[serde(default, skip_serializing)]
    pub indexer_config: Option<IgnoredAny>,
}

impl Default for Global {
    fn default() -> Self {
        Self {
            measurements: Vec::new(),
            request_timeout: None,
            gc: false,
            gc_metrics: false,
            wait_when_finished: false,
            cluster_health: false,
            timeout: four_hours(),
            function_templates: Vec::new(),
            deletion_strategy: None,
            indexer_config: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JobType {
    #[default]
    Create,
    Delete,
    Patch,
    Read,
}

/// How a create job's operations are spaced: kube-burner's client-side
/// token bucket (`qps`, `burst`), or kstress's open-loop arrivals.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Arrivals {
    Constant,
    Poisson,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Job {
    pub name: String,
    #[serde(default)]
    pub job_type: JobType,
    #[serde(default = "one")]
    pub job_iterations: u64,
    #[serde(default)]
    pub namespace: String,
    #[serde(default = "yes")]
    pub namespaced_iterations: bool,
    #[serde(default = "one")]
    pub iterations_per_namespace: u64,
    #[serde(default)]
    pub pre_create_namespaces: bool,
    #[serde(default)]
    pub namespace_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub namespace_annotations: BTreeMap<String, String>,
    /// Delete namespaces of an earlier run of this job before starting.
    #[serde(default = "yes")]
    pub cleanup: bool,
    /// Wait for each namespace's objects after its iteration.
    #[serde(default)]
    pub pod_wait: bool,
    /// Wait for all the job's objects once every iteration is created.
    #[serde(default = "yes")]
    pub wait_when_finished: bool,
    #[serde(default)]
    pub wait_for_deletion: bool,
    #[serde(default = "four_hours", with = "go_duration")]
    pub max_wait_timeout: Duration,
    #[serde(default, with = "go_duration")]
    pub job_iteration_delay: Duration,
    #[serde(default, with = "go_duration")]
    pub job_pause: Duration,
    #[serde(default, with = "go_duration")]
    pub object_delay: Duration,
    /// Delete the job's namespaces once it is done.
    #[serde(default)]
    pub gc: bool,
    /// Client-side requests per second (0: unlimited), as client-go's
    /// token bucket.
    #[serde(default)]
    pub qps: f64,
    #[serde(default)]
    pub burst: u64,
    #[serde(default)]
    pub objects: Vec<Object>,
    #[serde(default = "yes")]
    pub verify_objects: bool,
    #[serde(default = "yes")]
    pub error_on_verify: bool,
    #[serde(default)]
    pub default_missing_keys_with_zero: bool,
    #[serde(default)]
    pub churn_config: Option<ChurnConfig>,
    /// Older kube-burner releases configure churn on the job itself.
    #[serde(default)]
    pub churn: bool,
    #[serde(default)]
    pub churn_cycles: Option<u64>,
    #[serde(default)]
    pub churn_percent: Option<u64>,
    #[serde(default, with = "go_duration::option")]
    pub churn_duration: Option<Duration>,
    #[serde(default, with = "go_duration::option")]
    pub churn_delay: Option<Duration>,
    // kstress's own: open-loop creates at a rate, timed from each
    // operation's intended start.
    #[serde(default)]
    pub arrivals: Option<Arrivals>,
    #[serde(default)]
    pub rate: Option<f64>,
    // Accepted for kube-burner files; kstress does not act on these.
    #[serde(default, skip_serializing)]
    pub execution_mode: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub object_wait: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub skip_indexing: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub pre_load_images: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub pre_load_period: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub pre_load_node_labels: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub metrics_aggregate: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub metrics_closing: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub measurements: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub hooks: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub watchers: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub incremental_load: Option<IgnoredAny>,
}

impl Job {
    /// The churn settings, from `churnConfig` or the older job keys.
    pub fn churn(&self) -> Option<ChurnConfig> {
        if let Some(churn) = &self.churn_config {
            return Some(churn.clone());
        }
        self.churn.then(|| ChurnConfig {
            cycles: self.churn_cycles.unwrap_or(100),
            percent: self.churn_percent.unwrap_or(10),
            duration: self.churn_duration.unwrap_or(Duration::from_secs(3600)),
            delay: self.churn_delay.unwrap_or(Duration::from_secs(300)),
            mode: ChurnMode::Namespaces,
        })
    }

    /// The keys of this job kstress accepts but does not act on.
    pub fn ignored_keys(&self) -> Vec<&'static str> {
        [
            ("executionMode", self.execution_mode.is_some()),
            ("objectWait", self.object_wait.is_some()),
            ("skipIndexing", self.skip_indexing.is_some()),
            ("preLoadImages", self.pre_load_images.is_some()),
            ("preLoadPeriod", self.pre_load_period.is_some()),
            ("preLoadNodeLabels", self.pre_load_node_labels.is_some()),
            ("metricsAggregate", self.metrics_aggregate.is_some()),
            ("metricsClosing", self.metrics_closing.is_some()),
            ("measurements", self.measurements.is_some()),
            ("hooks", self.hooks.is_some()),
            ("watchers", self.watchers.is_some()),
            ("incrementalLoad", self.incremental_load.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChurnConfig {
    /// Churn cycles to run; 0 runs until `duration`.
    #[serde(default = "hundred")]
    pub cycles: u64,
    /// Percentage of the job's namespaces (or objects) churned per cycle.
    #[serde(default = "ten")]
    pub percent: u64,
    #[serde(default = "one_hour", with = "go_duration")]
    pub duration: Duration,
    /// Pause between cycles.
    #[serde(default = "five_minutes", with = "go_duration")]
    pub delay: Duration,
    #[serde(default)]
    pub mode: ChurnMode,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChurnMode {
    #[default]
    Namespaces,
    Objects,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Object {
    /// Template file, relative to the scenario file.
    #[serde(default)]
    pub object_template: String,
    #[serde(default = "one")]
    pub replicas: u64,
    #[serde(default)]
    pub input_vars: BTreeMap<String, Value>,
    /// Patch, read and delete jobs: which objects, by kind and labels.
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub label_selector: BTreeMap<String, String>,
    /// Patch jobs: the patch's content type.
    #[serde(default)]
    pub patch_type: String,
    #[serde(default = "yes")]
    pub wait: bool,
    #[serde(default)]
    pub wait_options: WaitOptions,
    #[serde(default)]
    pub run_once: bool,
    #[serde(default)]
    pub repeat_every_n_iterations: Option<u64>,
    #[serde(default, skip_serializing)]
    pub group: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    pub churn: Option<IgnoredAny>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WaitOptions {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub label_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub custom_status_paths: Vec<StatusPath>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StatusPath {
    pub key: String,
    pub value: String,
}

fn one() -> u64 {
    1
}
fn ten() -> u64 {
    10
}
fn hundred() -> u64 {
    100
}
fn yes() -> bool {
    true
}
fn four_hours() -> Duration {
    Duration::from_secs(4 * 3600)
}
fn one_hour() -> Duration {
    Duration::from_secs(3600)
}
fn five_minutes() -> Duration {
    Duration::from_secs(300)
}

/// Go's duration strings (`300ms`, `1m30s`, `4h`), which kube-burner's
/// files use.
pub mod go_duration {
    use super::*;

    /// Parses a Go duration: a sequence of decimal numbers with units
    /// `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`; a bare `0` is zero.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        if text == "0" {
            return Ok(Duration::ZERO);
        }
        if text.is_empty() || text.starts_with('-') {
            return Err(format!("invalid duration {text:?}"));
        }
        let mut total = 0f64;
        let mut rest = text.strip_prefix('+').unwrap_or(text);
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| format!("missing unit in duration {text:?}"))?;
            let number: f64 = rest[..number_len]
                .parse()
                .map_err(|_| format!("invalid duration {text:?}"))?;
            rest = &rest[number_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let scale = match &rest[..unit_len] {
                "ns" => 1e-9,
                "us" | "µs" | "μs" => 1e-6,
                "ms" => 1e-3,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                "" => return Err(format!("missing unit in duration {text:?}")),
                unit => return Err(format!("unknown unit {unit:?} in duration {text:?}")),
            };
            total += number * scale;
            rest = &rest[unit_len..];
        }
        Duration::try_from_secs_f64(total).map_err(|_| format!("invalid duration {text:?}"))
    }

    /// A duration as Go prints it, for results.json.
    pub fn format(duration: &Duration) -> String {
        let secs = duration.as_secs_f64();
        if secs == 0.0 {
            return "0s".into();
        }
        let (h, rem) = (duration.as_secs() / 3600, duration.as_secs() % 3600);
        let (m, s) = (rem / 60, rem % 60);
        let frac = f64::from(duration.subsec_nanos()) / 1e9;
        let mut out = String::new();
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        let seconds = s as f64 + frac;
        out.push_str(&format!("{seconds}s"));
        out
    }

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Nanos(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(text) => parse(&text).map_err(serde::de::Error::custom),
            // A bare number is nanoseconds, as Go's yaml decoding of a
            // time.Duration takes it.
            Raw::Nanos(n) => Ok(Duration::from_nanos(n)),
        }
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: serde::Serializer>(
            d: &Option<Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_and_print_as_go_does() {
        for (text, secs) in [
            ("0", 0.0),
            ("300ms", 0.3),
            ("1m30s", 90.0),
            ("4h", 14400.0),
            ("1.5h", 5400.0),
            ("2h45m", 9900.0),
            ("10us", 0.00001),
            ("10µs", 0.00001),
            ("1h0m0s", 3600.0),
        ] {
            let parsed = go_duration::parse(text).unwrap_or_else(|err| panic!("{text}: {err}"));
            assert!(
                (parsed.as_secs_f64() - secs).abs() < 1e-9,
                "{text}: {parsed:?}"
            );
        }
        for bad in ["", "10", "-1s", "1x", "s", "1..2s"] {
            assert!(go_duration::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(
            go_duration::format(&Duration::from_secs(4 * 3600)),
            "4h0m0s"
        );
        assert_eq!(go_duration::format(&Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration::format(&Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn kube_burner_defaults_apply() {
        let config: Config = serde_saphyr::from_str(
            "jobs:\n  - name: j\n    objects:\n      - objectTemplate: t.yml\n",
        )
        .expect("parses");
        let job = &config.jobs[0];
        assert_eq!(job.job_type, JobType::Create);
        assert_eq!(job.job_iterations, 1);
        assert!(job.namespaced_iterations && job.cleanup && job.wait_when_finished);
        assert!(job.verify_objects && job.error_on_verify && !job.pod_wait);
        assert_eq!(job.iterations_per_namespace, 1);
        assert_eq!(job.max_wait_timeout, Duration::from_secs(4 * 3600));
        assert_eq!(job.objects[0].replicas, 1);
        assert!(job.objects[0].wait);
        assert_eq!(config.global.timeout, Duration::from_secs(4 * 3600));
        assert!(job.churn().is_none());
    }

    #[test]
    fn older_churn_keys_and_churn_config_both_work() {
        let config: Config = serde_saphyr::from_str(
            "jobs:\n  - name: a\n    churn: true\n    churnPercent: 20\n    churnDelay: 1s\n  - name: b\n    churnConfig: {cycles: 3, percent: 50, duration: 1m}\n",
        )
        .expect("parses");
        let a = config.jobs[0].churn().expect("churn");
        assert_eq!(
            (a.percent, a.cycles, a.delay),
            (20, 100, Duration::from_secs(1))
        );
        let b = config.jobs[1].churn().expect("churn");
        assert_eq!(
            (b.cycles, b.percent, b.duration),
            (3, 50, Duration::from_secs(60))
        );
        assert_eq!(b.delay, Duration::from_secs(300));
    }
}
