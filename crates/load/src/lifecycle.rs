//! The lifecycle of one load run, the same for every [`Driver`]: resolve
//! the objects, create the run's namespace, drive the load with its
//! measurement, progress, metrics and stop conditions, report, clean up.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::Client;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams};
use measure::{
    ApiCall, ApiResponsiveness, GateVerdict, Measurement, MetricsServer, PodLatencySummary,
    Progress, Registry, Report, RunInfo, Threshold,
};
use podlatency::PodLatency;
use serde_json::{Value, json};

use crate::control::{Control, StopReason};
use crate::driver::{Driver, ObjectSpec, Objects};
use crate::resource::Resource;
use crate::{Context, Error, Output, RUN_LABEL, namespace};

/// How long clean-up waits for the run's namespace to disappear.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(120);

/// What every run takes besides its driver.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// How long the load runs.
    pub duration: Duration,
    /// Directory for results.json (and report.html).
    pub output: Option<PathBuf>,
    /// Whether to write report.html into `output`.
    pub html_report: bool,
    /// Where to serve live Prometheus metrics.
    pub metrics_addr: Option<SocketAddr>,
    /// Namespace of the run's objects; generated from the driver's name
    /// when `None`.
    pub namespace: Option<String>,
    /// Use `namespace` as it is instead of creating (and deleting) it.
    pub skip_namespace_creation: bool,
    /// Keep the run's namespace and objects afterwards.
    pub keep: bool,
    /// End the run when every request has failed for this long.
    pub max_error_seconds: u64,
    /// Measure pod startup latency (kube-burner's `podLatency`).
    pub pod_latency: Option<PodLatencyOptions>,
    /// Measure the server's own latency of the run's calls and judge the
    /// upstream SLOs on it.
    pub api_responsiveness: bool,
}

/// How often API responsiveness is sampled for its time series.
const API_SAMPLE_INTERVAL: Duration = Duration::from_secs(10);

/// A pod startup latency measurement and its gates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodLatencyOptions {
    /// Bounds the run must hold; one that fails fails the run with
    /// [`Error::GatesFailed`].
    pub thresholds: Vec<Threshold>,
    /// Keep one record per pod in results.json.
    pub records: bool,
}

impl PodLatencyOptions {
    /// Both measurements' gates in one, each pod's records if either asks.
    fn merge(self, other: PodLatencyOptions) -> PodLatencyOptions {
        let mut thresholds = self.thresholds;
        thresholds.extend(other.thresholds);
        PodLatencyOptions {
            thresholds,
            records: self.records || other.records,
        }
    }
}

/// The cluster a run loads.
pub struct Cluster<'a> {
    /// Its client.
    pub client: &'a Client,
    /// How results.json names it ("embedded", or the server's address).
    pub description: &'a str,
    /// The node count of a cluster kstress started itself; `None` for a
    /// cluster it did not start.
    pub embedded_nodes: Option<usize>,
}

/// A validated run: a driver, the objects it works on, and the run's
/// options.
pub struct Plan {
    driver: Box<dyn Driver>,
    objects: Option<ObjectSpec>,
    options: RunOptions,
}

impl Plan {
    /// Checks everything that can be checked before a cluster is touched.
    pub fn new(
        driver: Box<dyn Driver>,
        objects: Option<ObjectSpec>,
        options: RunOptions,
    ) -> Result<Self, Error> {
        driver.validate()?;
        match (&objects, driver.uses_objects()) {
            (Some(objects), true) => objects.validate()?,
            (None, false) => {}
            (None, true) => {
                return Err(Error::Invalid(format!(
                    "{} needs a resource to work on",
                    driver.name()
                )));
            }
            (Some(_), false) => {
                return Err(Error::Invalid(format!(
                    "{} writes objects of its own and takes no resource",
                    driver.name()
                )));
            }
        }
        if options.duration.is_zero() {
            return Err(Error::Invalid("--duration must be positive".into()));
        }
        if options.max_error_seconds == 0 {
            return Err(Error::Invalid(
                "--max-error-seconds must be at least 1".into(),
            ));
        }
        Ok(Self {
            driver,
            objects,
            options,
        })
    }

    /// The driver's name.
    pub fn name(&self) -> &str {
        self.driver.name()
    }

    /// The run's options.
    pub fn options(&self) -> &RunOptions {
        &self.options
    }

    /// The options exactly as they run, as results.json records them.
    pub fn config(&self, embedded_nodes: Option<usize>) -> Value {
        let mut config = self.driver.options();
        if !config.is_object() {
            config = json!({});
        }
        if let (Some(objects), Value::Object(map)) = (&self.objects, &mut config)
            && let Value::Object(spec) = json!(objects)
        {
            map.extend(spec);
        }
        config["duration_s"] = json!(self.options.duration.as_secs_f64());
        config["max_error_seconds"] = json!(self.options.max_error_seconds);
        if let Some(nodes) = embedded_nodes.filter(|nodes| *nodes > 0) {
            config["nodes"] = json!(nodes);
        }
        config
    }

    /// Runs the plan on `cluster`; `control` may already hold an interrupt.
    /// The run fails when it ended early because every request failed, or
    /// when some class had requests and every one of them failed.
    pub async fn run(&self, cluster: &Cluster<'_>, control: &Control) -> Result<(), Error> {
        let client = cluster.client;
        self.driver
            .check_cluster(client, cluster.embedded_nodes.is_some())
            .await?;
        let objects = match &self.objects {
            Some(spec) => Some(spec.resolve(client).await?),
            None => None,
        };
        let options = &self.options;
        let own_namespace = self.driver.uses_namespace();
        // A driver that makes the namespaces it needs gets none.
        let namespace = match (&options.namespace, own_namespace) {
            (_, false) => String::new(),
            (Some(namespace), true) => namespace.clone(),
            (None, true) => namespace::generated_name(self.name()),
        };
        if control.reason() == Some(StopReason::Interrupted) {
            return Err(Error::Invalid("interrupted before the run started".into()));
        }
        if own_namespace {
            if options.skip_namespace_creation {
                namespace::check_exists(client, &namespace).await?;
            } else {
                namespace::create(client, &namespace).await?;
            }
        }
        let run_id = format!("ks{}", &namespace::generated_name("x")[2..8]);
        let ctx = Context {
            client: client.clone(),
            namespace: namespace.clone(),
            run_id: run_id.clone(),
            measurement: Measurement::new(self.driver.classes())?,
            stop: control.token(),
        };
        let outcome = self.drive(&ctx, control, objects.as_ref(), cluster).await;

        let resource = objects.as_ref().map(|objects| &objects.resource);
        let cleanup = if !own_namespace {
            Ok(())
        } else if options.keep {
            if options.skip_namespace_creation {
                eprintln!("kept the run's objects ({RUN_LABEL}={run_id}) in namespace {namespace}");
            } else {
                eprintln!("kept namespace {namespace}");
            }
            Ok(())
        } else if options.skip_namespace_creation {
            delete_run_objects(client, &namespace, &run_id, resource).await
        } else {
            cleanup(client, &namespace, &run_id, resource).await
        };
        let ended = outcome?;
        let failure = match &ended.reason {
            Some(reason @ StopReason::Failing(_)) => Some(format!("the run ended early: {reason}")),
            _ if !ended.all_failed.is_empty() => Some(
                ended
                    .all_failed
                    .iter()
                    .map(AllFailed::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            _ => None,
        };
        let failure = match failure {
            Some(failure) => Error::Failed(failure),
            None if !ended.failed_gates.is_empty() => {
                Error::GatesFailed(ended.failed_gates.join("; "))
            }
            None => return cleanup,
        };
        if let Err(err) = cleanup {
            eprintln!("warning: {err}");
        }
        Err(failure)
    }

    /// Runs the driver with its measurement, progress, metrics and stop
    /// conditions, then reports.
    async fn drive(
        &self,
        ctx: &Context,
        control: &Control,
        objects: Option<&Objects>,
        cluster: &Cluster<'_>,
    ) -> Result<Ended, Error> {
        let options = &self.options;
        // The pod watch is open before the first pod is created.
        let pod_latency = match self.pod_latency() {
            Some(pod_latency) => {
                let mut selection = self.driver.pod_selection(ctx);
                selection.records = pod_latency.records;
                let measuring = PodLatency::start(ctx.client.clone(), selection)
                    .await
                    .map_err(|err| Error::Invalid(err.to_string()))?;
                Some((measuring, pod_latency.thresholds))
            }
            None => None,
        };
        let api = match options.api_responsiveness {
            true => Some(
                apiresponsiveness::Measurement::start(ctx.client.clone(), API_SAMPLE_INTERVAL)
                    .await
                    .map_err(|err| Error::Invalid(err.to_string()))?,
            ),
            false => None,
        };
        let metrics = match options.metrics_addr {
            Some(addr) => {
                let mut registry = Registry::default();
                ctx.measurement.register_metrics(&mut registry);
                let server = MetricsServer::start(addr, registry).await?;
                eprintln!("metrics on http://{}/metrics", server.local_addr());
                Some(server)
            }
            None => None,
        };
        let timers = [
            control.stop_after(options.duration),
            control.stop_when_failing(
                ctx.measurement.clone(),
                Duration::from_secs(options.max_error_seconds),
            ),
        ];
        let progress = Progress::start(
            &ctx.measurement,
            self.driver.runs_for_duration().then_some(options.duration),
        );
        let driven = self.driver.run(ctx, objects).await;
        if matches!(&driven, Ok(output) if output.finished_early) {
            control.stop(StopReason::Finished);
        } else {
            control.stop(StopReason::Duration);
        }
        progress.finish();
        for timer in timers {
            timer.abort();
        }
        let reason = control.reason();
        let pod_latency = match pod_latency {
            Some((measuring, thresholds)) => Some((measuring.finish().await, thresholds)),
            None => None,
        };
        let api = match api {
            Some(api) => match api.finish().await {
                Ok(api) => Some(api),
                Err(err) => {
                    eprintln!("warning: no API responsiveness figures: {err}");
                    None
                }
            },
            None => None,
        };
        let measured = Measured { pod_latency, api };
        let reported =
            driven.and_then(|output| self.report(ctx, output, reason.as_ref(), cluster, measured));
        if let Some(metrics) = metrics {
            metrics.shutdown().await;
        }
        let reported = reported?;
        let results = reported.results();
        Ok(Ended {
            reason,
            all_failed: AllFailed::find(results),
            failed_gates: results.failed_gates().map(ToString::to_string).collect(),
        })
    }

    /// The pod latency measurement of the run: the driver's own and the
    /// command line's.
    fn pod_latency(&self) -> Option<PodLatencyOptions> {
        match (self.driver.pod_latency(), self.options.pod_latency.clone()) {
            (Some(own), Some(asked)) => Some(own.merge(asked)),
            (own, asked) => own.or(asked),
        }
    }

    /// Prints the results table and writes results.json (and the HTML
    /// report) into the output directory.
    fn report(
        &self,
        ctx: &Context,
        output: Output,
        reason: Option<&StopReason>,
        cluster: &Cluster<'_>,
        measured: Measured,
    ) -> Result<Report, Error> {
        let mut extra = output.extra;
        if let Some(reason) = reason {
            extra.insert("stop_reason".to_owned(), json!(reason.to_string()));
        }
        if self.driver.uses_namespace() {
            extra.insert("namespace".to_owned(), json!(ctx.namespace));
        }
        let report = Report::new(
            RunInfo {
                scenario: self.name().to_owned(),
                target: cluster.description.to_owned(),
                config: self.config(cluster.embedded_nodes),
                target_rate_per_s: output.target_rate_per_s,
                achieved_rate_per_s: output.achieved_rate_per_s,
                extra,
                gates: measured.gates(),
                pod_latency: measured.pod_latency.map(|(summary, _)| summary),
                api_responsiveness: measured.api,
            },
            ctx.measurement.snapshot(),
        );
        print!("{}", report.table());
        if let Some(dir) = &self.options.output {
            let path = report.write_json(dir)?;
            eprintln!("results written to {}", path.display());
            if self.options.html_report {
                let path = report.write_html(dir)?;
                eprintln!("report written to {}", path.display());
            }
        }
        Ok(report)
    }
}

/// What the run's measurements found besides its own calls.
struct Measured {
    /// Pod startup latency and its gates.
    pod_latency: Option<(PodLatencySummary, Vec<Threshold>)>,
    /// The server's latency of the run's calls.
    api: Option<ApiResponsiveness>,
}

impl Measured {
    /// The verdicts: pod latency's thresholds, then each server-side SLO.
    fn gates(&self) -> Vec<GateVerdict> {
        let pod_latency = self
            .pod_latency
            .iter()
            .flat_map(|(summary, thresholds)| summary.judge(thresholds));
        let api = self
            .api
            .iter()
            .flat_map(|api| api.calls.iter().filter_map(ApiCall::verdict));
        pod_latency.chain(api).collect()
    }
}

/// How a driven run ended.
struct Ended {
    /// Why the run stopped.
    reason: Option<StopReason>,
    /// Classes whose every request failed: such a run measured nothing of
    /// them, whatever its stop reason.
    all_failed: Vec<AllFailed>,
    /// The gates that did not hold, as the report words them.
    failed_gates: Vec<String>,
}

/// A class with requests, every one of them failed.
struct AllFailed {
    class: String,
    count: u64,
    errors_by_code: BTreeMap<String, u64>,
}

impl AllFailed {
    /// The classes of `results` whose every request failed.
    fn find(results: &measure::Results) -> Vec<AllFailed> {
        results
            .operations
            .iter()
            .filter(|(_, summary)| summary.count > 0 && summary.errors == summary.count)
            .map(|(class, summary)| AllFailed {
                class: class.clone(),
                count: summary.count,
                errors_by_code: summary.errors_by_code.clone(),
            })
            .collect()
    }
}

impl fmt::Display for AllFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let codes: Vec<String> = self
            .errors_by_code
            .iter()
            .map(|(code, n)| format!("{code}: {n}"))
            .collect();
        write!(
            f,
            "every {} request failed: {} of {} ({})",
            self.class,
            self.count,
            self.count,
            codes.join(", ")
        )
    }
}

/// Deletes the run's objects, found by their run label, from a namespace
/// the run did not create, and waits until they are gone: the run's
/// resource, or the pods of pod-stress.
async fn delete_run_objects(
    client: &Client,
    namespace: &str,
    run_id: &str,
    resource: Option<&Resource>,
) -> Result<(), Error> {
    let (api, what): (Api<DynamicObject>, String) = match resource {
        Some(resource) if resource.namespaced => (
            Api::namespaced_with(client.clone(), namespace, &resource.api),
            resource.to_string(),
        ),
        Some(resource) => (
            Api::all_with(client.clone(), &resource.api),
            resource.to_string(),
        ),
        None => (
            Api::namespaced_with(client.clone(), namespace, &ApiResource::erase::<Pod>(&())),
            "pods".to_owned(),
        ),
    };
    namespace::delete_labelled_and_wait(&api, &format!("{RUN_LABEL}={run_id}"), CLEANUP_TIMEOUT)
        .await
        .map_err(|err| Error::Cleanup {
            what: format!("the run's {what} in namespace {namespace}"),
            source: Box::new(err),
        })
}

/// Deletes the run's namespace and waits until it is gone; cluster-scoped
/// objects of the run are deleted by label first.
async fn cleanup(
    client: &Client,
    namespace: &str,
    run_id: &str,
    resource: Option<&Resource>,
) -> Result<(), Error> {
    if let Some(resource) = resource.filter(|resource| !resource.namespaced) {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource.api);
        api.delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels(&format!("{RUN_LABEL}={run_id}")),
        )
        .await
        .map_err(|err| Error::api(format!("cannot delete the run's {resource}"), err))?;
    }
    namespace::delete_and_wait(client, namespace, CLEANUP_TIMEOUT)
        .await
        .map_err(|err| Error::Cleanup {
            what: format!("namespace {namespace}"),
            source: Box::new(err),
        })
}
