//! Reading a scenario: render the file over the environment and `--set`
//! values, decode it, load and trial-render every template it names, and
//! check everything that can be checked without a cluster. Every problem
//! is collected, so `kstress scenario check` reports them all at once.

use std::collections::BTreeMap;
use std::fmt;

use ::load::lifecycle::PodLatencyOptions;
use gotemplate::{MissingKey, Template};
use measure::{Metric, Threshold};
use serde_json::{Value, json};

use crate::config::{ChurnMode, Config, JobType, go_duration};
use crate::source::Source;

/// The patch content types kube-burner's patch jobs take.
pub const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// A scenario, read and checked.
#[derive(Debug)]
pub struct Scenario {
    pub source: Source,
    pub name: String,
    pub config: Config,
    /// Object templates by the path the file names them with.
    pub templates: BTreeMap<String, ObjectTemplate>,
    /// Keys accepted for compatibility that kstress does not act on.
    pub warnings: Vec<String>,
    /// The `podLatency` measurement, when the file asks for it.
    pub pod_latency: Option<PodLatencyOptions>,
}

/// One object template.
#[derive(Clone, Debug)]
pub struct ObjectTemplate {
    /// How messages name the file.
    pub shown: String,
    pub template: Template,
    /// apiVersion and kind of each document, from a trial rendering
    /// (create jobs only).
    pub kinds: Vec<(String, String)>,
}

/// Everything wrong with a scenario, one line each.
#[derive(Debug)]
pub struct Problems(pub Vec<String>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.join("\n"))
    }
}

impl std::error::Error for Problems {}

impl Scenario {
    /// Reads the scenario in `source`; `sets` are `--set KEY=VALUE`
    /// values, which take precedence over the environment in the file's
    /// own template.
    pub fn load(source: Source, sets: &[(String, String)]) -> Result<Self, Problems> {
        let shown = source.display();
        let text = source.config().map_err(|err| Problems(vec![err]))?;
        let mut data: serde_json::Map<String, Value> = std::env::vars()
            .map(|(key, value)| (key, Value::String(value)))
            .collect();
        for (key, value) in sets {
            data.insert(key.clone(), Value::String(value.clone()));
        }
        let rendered = gotemplate::render(&shown, &text, &Value::Object(data), MissingKey::Error)
            .map_err(|err| {
            let hint = if err.message.contains("no entry for key") {
                " (give it with --set KEY=VALUE or in the environment)"
            } else {
                ""
            };
            Problems(vec![format!(
                "{}:{}: {}{hint}",
                shown, err.line, err.message
            )])
        })?;
        let config: Config = serde_saphyr::from_str(&rendered)
            .map_err(|err| Problems(vec![format!("{shown}: {}", yaml_error(&err.to_string()))]))?;
        let mut scenario = Scenario {
            name: source.name(),
            source,
            config,
            templates: BTreeMap::new(),
            warnings: Vec::new(),
            pod_latency: None,
        };
        let mut problems = Vec::new();
        scenario.check(&rendered, &mut problems);
        if problems.is_empty() {
            Ok(scenario)
        } else {
            Err(Problems(problems))
        }
    }

    fn check(&mut self, text: &str, problems: &mut Vec<String>) {
        let shown = self.source.display();
        let at = |key: &str, value: &str| match line_of(text, key, value) {
            Some(line) => format!("{shown}:{line}"),
            None => shown.clone(),
        };
        let global = &self.config.global;
        if self.config.metrics_endpoints.is_some() {
            self.warnings.push(
                "metricsEndpoints: kstress measures from its own clients and ignores it".into(),
            );
        }
        if global.indexer_config.is_some() {
            self.warnings.push(
                "global.indexerConfig: results go to --output; other indexers are not supported"
                    .into(),
            );
        }
        for measurement in &global.measurements {
            let name = measurement
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            if name == "podLatency" {
                let thresholds = pod_latency_thresholds(measurement, |problem, (key, value)| {
                    problems.push(format!("{}: {problem}", at(key, value)));
                });
                self.pod_latency = Some(PodLatencyOptions {
                    thresholds,
                    records: false,
                });
                continue;
            }
            self.warnings.push(format!(
                "global.measurements: {name} is not measured yet; every request is timed and reported per job and class"
            ));
        }
        if global
            .deletion_strategy
            .as_deref()
            .is_some_and(|s| s != "default")
        {
            self.warnings.push(
                "global.deletionStrategy: kstress deletes whole namespaces (the default strategy)"
                    .into(),
            );
        }
        if global.wait_when_finished && (global.gc || self.config.jobs.iter().any(|j| j.gc)) {
            problems.push(format!(
                "{}: global.waitWhenFinished and gc cannot both be enabled",
                at("waitWhenFinished", "true")
            ));
        }
        if self.config.jobs.is_empty() {
            problems.push(format!("{shown}: jobs: the scenario has no jobs"));
        }
        let mut functions = Vec::new();
        for file in &global.function_templates {
            match self.source.read(file) {
                Ok((file_shown, text)) => match Template::parse(&file_shown, &text) {
                    Ok(template) => functions.push(template),
                    Err(err) => problems.push(template_error(&err)),
                },
                Err(err) => {
                    problems.push(format!("{}: global.functionTemplates: {err}", at("", file)))
                }
            }
        }
        let mut names = std::collections::HashSet::new();
        let jobs = self.config.jobs.clone();
        for (i, job) in jobs.iter().enumerate() {
            let here = format!("jobs[{i}] ({})", job.name);
            let job_at = at("name", &job.name);
            if job.name.is_empty() {
                problems.push(format!("{shown}: jobs[{i}]: name is required"));
            } else if !names.insert(job.name.clone()) {
                problems.push(format!("{job_at}: {here}: another job has the same name"));
            }
            for key in job.ignored_keys() {
                self.warnings.push(format!(
                    "{here}.{key}: accepted for kube-burner files, not acted on by kstress"
                ));
            }
            if job.job_iterations == 0 {
                problems.push(format!(
                    "{job_at}: {here}: jobIterations must be at least 1"
                ));
            }
            if job.iterations_per_namespace == 0 {
                problems.push(format!(
                    "{job_at}: {here}: iterationsPerNamespace must be at least 1"
                ));
            }
            if !(job.qps.is_finite() && job.qps >= 0.0) {
                problems.push(format!(
                    "{job_at}: {here}: qps must be a non-negative number"
                ));
            }
            match (job.arrivals, job.rate) {
                (Some(_), None) => {
                    problems.push(format!("{job_at}: {here}: arrivals needs a rate"))
                }
                (_, Some(rate)) if !(rate.is_finite() && rate > 0.0) => {
                    problems.push(format!("{job_at}: {here}: rate must be a positive number"));
                }
                (_, Some(_)) if job.job_type != JobType::Create => {
                    problems.push(format!(
                        "{job_at}: {here}: rate and arrivals apply to create jobs"
                    ));
                }
                _ => {}
            }
            if let Some(churn) = job.churn() {
                if job.job_type != JobType::Create {
                    problems.push(format!("{job_at}: {here}: churn applies to create jobs"));
                }
                if churn.mode == ChurnMode::Objects {
                    problems.push(format!(
                        "{job_at}: {here}: churnConfig.mode objects is not supported yet; use namespaces"
                    ));
                }
                if churn.percent == 0 || churn.percent > 100 {
                    problems.push(format!(
                        "{job_at}: {here}: churn percent must be between 1 and 100"
                    ));
                }
            }
            if job.objects.is_empty() {
                problems.push(format!("{job_at}: {here}: objects: the job has no objects"));
            }
            let missing = if job.default_missing_keys_with_zero {
                MissingKey::Zero
            } else {
                MissingKey::Error
            };
            for (j, object) in job.objects.iter().enumerate() {
                let here = format!("{here}.objects[{j}]");
                if !object.wait_options.custom_status_paths.is_empty() {
                    self.warnings.push(format!("{here}.waitOptions.customStatusPaths: not supported; the kind's own readiness is waited for"));
                }
                match job.job_type {
                    JobType::Create => {
                        if object.object_template.is_empty() {
                            problems.push(format!("{job_at}: {here}: objectTemplate is required"));
                            continue;
                        }
                        if object.replicas == 0 {
                            problems.push(format!(
                                "{}: {here}: replicas must be at least 1",
                                at("replicas", "0")
                            ));
                        }
                    }
                    JobType::Patch => {
                        if object.kind.is_empty() {
                            problems
                                .push(format!("{job_at}: {here}: kind is required in patch jobs"));
                        }
                        if !PATCH_TYPES.contains(&object.patch_type.as_str()) {
                            problems.push(format!(
                                "{}: {here}: patchType {:?} is not one of {}",
                                at("patchType", &object.patch_type),
                                object.patch_type,
                                PATCH_TYPES.join(", ")
                            ));
                        }
                        if object.object_template.is_empty() {
                            problems.push(format!(
                                "{job_at}: {here}: objectTemplate is required in patch jobs"
                            ));
                            continue;
                        }
                    }
                    JobType::Delete | JobType::Read => {
                        if object.kind.is_empty() {
                            problems.push(format!("{job_at}: {here}: kind is required"));
                        }
                        continue;
                    }
                }
                let (template_shown, template_text) =
                    match self.source.read(&object.object_template) {
                        Ok(found) => found,
                        Err(err) => {
                            problems.push(format!(
                                "{}: {here}.objectTemplate: {err}",
                                at("objectTemplate", &object.object_template)
                            ));
                            continue;
                        }
                    };
                let mut template = match Template::parse(&template_shown, &template_text) {
                    Ok(template) => template,
                    Err(err) => {
                        problems.push(template_error(&err));
                        continue;
                    }
                };
                for functions in &functions {
                    template.include(functions);
                }
                let data = template_data(
                    &job.name,
                    0,
                    1,
                    "trial-uuid",
                    "trial-runid",
                    &object.input_vars,
                );
                let rendered = match template.render(&data, missing) {
                    Ok(rendered) => rendered,
                    Err(err) => {
                        problems.push(template_error(&err));
                        continue;
                    }
                };
                let mut kinds = Vec::new();
                if job.job_type == JobType::Patch {
                    if object.patch_type == "application/json-patch+json"
                        && !serde_json::from_str::<Value>(&rendered).is_ok_and(|v| v.is_array())
                    {
                        problems.push(format!("{template_shown}: a JSON patch must render to a JSON array of operations"));
                    } else if object.patch_type != "application/json-patch+json"
                        && let Err(err) = documents(&rendered)
                    {
                        problems.push(format!("{template_shown}: {err}"));
                    }
                } else {
                    match documents(&rendered) {
                        Ok(docs) if docs.is_empty() => problems
                            .push(format!("{template_shown}: the template renders no object")),
                        Ok(docs) => {
                            for doc in docs {
                                let field = |key: &str| {
                                    doc.get(key)
                                        .and_then(Value::as_str)
                                        .unwrap_or_default()
                                        .to_owned()
                                };
                                let (api_version, kind) = (field("apiVersion"), field("kind"));
                                if api_version.is_empty() || kind.is_empty() {
                                    problems.push(format!(
                                        "{template_shown}: every object needs apiVersion and kind"
                                    ));
                                }
                                kinds.push((api_version, kind));
                            }
                        }
                        Err(err) => problems.push(format!("{template_shown}: {err}")),
                    }
                }
                self.templates.insert(
                    object.object_template.clone(),
                    ObjectTemplate {
                        shown: template_shown,
                        template,
                        kinds,
                    },
                );
            }
        }
    }
}

impl Scenario {
    /// apiVersion and kind of each object `object`'s template creates
    /// (none for objects of patch, read and delete jobs).
    pub fn kinds_of(&self, object: &crate::config::Object) -> &[(String, String)] {
        self.templates
            .get(&object.object_template)
            .map(|template| template.kinds.as_slice())
            .unwrap_or_default()
    }
}

/// The data kube-burner renders object templates over.
pub fn template_data(
    job: &str,
    iteration: u64,
    replica: u64,
    uuid: &str,
    run_id: &str,
    input_vars: &BTreeMap<String, Value>,
) -> Value {
    let mut data = json!({
        "JobName": job,
        "Iteration": iteration,
        "Replica": replica,
        "UUID": uuid,
        "RunID": run_id,
    });
    if let Value::Object(map) = &mut data {
        for (key, value) in input_vars {
            map.insert(key.clone(), value.clone());
        }
    }
    data
}

/// The objects of a rendered template: one per YAML document, empty
/// documents skipped.
pub fn documents(rendered: &str) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(rendered).map_err(|err| yaml_error(&err.to_string()))?;
    let mut objects = Vec::new();
    for doc in docs {
        match doc {
            Value::Null => {}
            Value::Object(_) => objects.push(doc),
            other => return Err(format!("a document is not an object: {other}")),
        }
    }
    Ok(objects)
}

/// The first line of a YAML error: its position and message (the rest is
/// a snippet of the input, which the message already locates).
fn yaml_error(message: &str) -> String {
    message
        .lines()
        .next()
        .unwrap_or(message)
        .trim_start_matches("error: ")
        .to_owned()
}

fn template_error(err: &gotemplate::Error) -> String {
    format!("{}:{}: {}", err.name, err.line, err.message)
}

/// The first line holding `key: value` (or just `value` when `key` is
/// empty), for messages about checks that serde does not locate.
/// The gates of a `podLatency` measurement, in kube-burner's form
/// (`thresholds: [{conditionType: Ready, metric: P99, threshold: 5s}]`);
/// each bad one is handed to `problem` with the key and value that find
/// its line.
fn pod_latency_thresholds(
    measurement: &Value,
    mut problem: impl FnMut(String, (&str, &str)),
) -> Vec<Threshold> {
    let Some(list) = measurement.get("thresholds") else {
        return Vec::new();
    };
    let Some(list) = list.as_array() else {
        problem(
            "podLatency thresholds must be a list".into(),
            ("thresholds", ""),
        );
        return Vec::new();
    };
    let mut thresholds = Vec::new();
    for entry in list {
        let text = |key: &str| entry.get(key).and_then(Value::as_str).unwrap_or_default();
        let (condition, metric, limit) = (text("conditionType"), text("metric"), text("threshold"));
        let parsed = metric
            .parse::<Metric>()
            .map_err(|err| (err, ("metric", metric)))
            .and_then(|metric| {
                let limit = go_duration::parse(limit).map_err(|err| (err, ("threshold", limit)))?;
                Threshold::new(condition, metric, limit)
                    .map_err(|err| (err, ("conditionType", condition)))
            });
        match parsed {
            Ok(threshold) => thresholds.push(threshold),
            Err((err, at)) => problem(
                format!("podLatency threshold {condition}/{metric}/{limit}: {err}"),
                at,
            ),
        }
    }
    thresholds
}

fn line_of(text: &str, key: &str, value: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let line = line.trim_start().trim_start_matches("- ");
            if key.is_empty() {
                return line.contains(value);
            }
            line.strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(':'))
                .is_some_and(|rest| {
                    let rest = rest.trim().trim_matches(['"', '\'']);
                    value.is_empty() || rest == value
                })
        })
        .map(|index| index + 1)
}
