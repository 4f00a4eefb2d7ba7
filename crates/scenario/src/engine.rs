//! Runs a scenario's jobs against a cluster, in order, as kube-burner
//! does: create jobs render their templates per iteration and replica into
//! per-iteration namespaces and wait for the objects to be ready; patch,
//! read and delete jobs work on the objects that match a kind and labels.
//! Every API call is timed into the run's measurement, per job and class.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, ObjectMeta, Patch,
    PatchParams, PostParams,
};
use kube::discovery::Scope;
use kube::{Api, Client};
use load::Error;
use load::arrivals::{ArrivalProcess, Pacer, Schedule};
use load::outcome;
use measure::{Class, ClassId, Kind, Measurement, Recorder};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Arrivals, Job, JobType, Object};
use crate::labels;
use crate::load::{Scenario, documents, template_data};
use crate::ready;

/// Requests one job keeps in flight at most when it has no rate limit.
const MAX_IN_FLIGHT: usize = 256;

/// How often waits look at the objects again.
const WAIT_POLL: Duration = Duration::from_millis(500);

/// The operation classes of a scenario: per job, per verb and kind.
pub fn classes(scenario: &Scenario) -> Vec<Class> {
    let mut classes = Vec::new();
    let mut add = |name: String, kind: Kind| {
        if !classes.iter().any(|c: &Class| c.name == name) {
            classes.push(Class::new(name, kind));
        }
    };
    for job in &scenario.config.jobs {
        let name = &job.name;
        match job.job_type {
            JobType::Create => {
                add(class_name(name, "create", "Namespace"), Kind::Mutating);
                for object in &job.objects {
                    for (_, kind) in scenario.kinds_of(object) {
                        add(class_name(name, "create", kind), Kind::Mutating);
                    }
                }
                if job.churn().is_some() {
                    add(class_name(name, "delete", "Namespace"), Kind::Mutating);
                }
            }
            JobType::Patch | JobType::Delete | JobType::Read => {
                for object in &job.objects {
                    let verb = match job.job_type {
                        JobType::Patch => "patch",
                        JobType::Delete => "delete",
                        _ => "get",
                    };
                    add(class_name(name, "list", &object.kind), Kind::ListCluster);
                    let kind = if verb == "get" {
                        Kind::Read
                    } else {
                        Kind::Mutating
                    };
                    add(class_name(name, verb, &object.kind), kind);
                }
            }
        }
    }
    classes
}

fn class_name(job: &str, verb: &str, kind: &str) -> String {
    format!("{job}: {verb} {kind}")
}

/// The objects of one kind, as the cluster serves them.
#[derive(Clone)]
struct Served {
    api: ApiResource,
    namespaced: bool,
}

/// The kinds a scenario names, as the server serves them, looked up in its
/// discovery once each.
#[derive(Clone, Default)]
pub struct Discovery {
    served: HashMap<(String, String), Served>,
}

impl Discovery {
    /// Resolves every kind the scenario names, so that a kind the server
    /// does not serve is an error before anything is created; the error
    /// names every such kind and its job.
    pub async fn resolve(client: &Client, scenario: &Scenario) -> Result<Self, Error> {
        let mut discovery = Discovery::default();
        let mut missing = Vec::new();
        for job in &scenario.config.jobs {
            let mut kinds: Vec<(String, String)> = Vec::new();
            for object in &job.objects {
                match job.job_type {
                    JobType::Create => kinds.extend_from_slice(scenario.kinds_of(object)),
                    _ => kinds.push((api_version_of(object), object.kind.clone())),
                }
            }
            for (api_version, kind) in kinds {
                if let Err(err) = discovery.served(client, &api_version, &kind).await {
                    missing.push(format!("job {}: {err}", job.name));
                }
            }
        }
        if missing.is_empty() {
            Ok(discovery)
        } else {
            Err(Error::Invalid(missing.join("; ")))
        }
    }

    async fn served(
        &mut self,
        client: &Client,
        api_version: &str,
        kind: &str,
    ) -> Result<Served, Error> {
        let key = (api_version.to_owned(), kind.to_owned());
        if let Some(served) = self.served.get(&key) {
            return Ok(served.clone());
        }
        let (group, version) = match api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (api, capabilities) =
            kube::discovery::pinned_kind(client, &gvk)
                .await
                .map_err(|err| {
                    Error::Invalid(format!(
                        "the server does not serve {kind} ({api_version}): {}",
                        outcome::describe(&err)
                    ))
                })?;
        let served = Served {
            api,
            namespaced: capabilities.scope == Scope::Namespaced,
        };
        self.served.insert(key, served.clone());
        Ok(served)
    }
}

/// One run of a scenario.
pub struct Engine {
    client: Client,
    scenario: Arc<Scenario>,
    uuid: String,
    run_id: String,
    measurement: Measurement,
    /// One recorder for every request of the run: short-lived request
    /// tasks share it, since each recorder of its own would cost a fresh
    /// set of histograms.
    recorder: Recorder,
    stop: CancellationToken,
    discovery: Discovery,
    /// What each job did, for results.json.
    report: Vec<Value>,
    /// Namespaces created, by job.
    namespaces: BTreeMap<String, Vec<String>>,
    /// Cluster-scoped resources objects were created of, for clean-up.
    cluster_scoped: Vec<ApiResource>,
    failures: Vec<String>,
}

impl Engine {
    pub fn new(
        client: Client,
        scenario: Arc<Scenario>,
        uuid: String,
        run_id: String,
        measurement: Measurement,
        stop: CancellationToken,
        discovery: Discovery,
    ) -> Self {
        Self {
            client,
            scenario,
            uuid,
            run_id,
            recorder: measurement.recorder(),
            measurement,
            stop,
            discovery,
            report: Vec::new(),
            namespaces: BTreeMap::new(),
            cluster_scoped: Vec::new(),
            failures: Vec::new(),
        }
    }

    async fn served(&mut self, api_version: &str, kind: &str) -> Result<Served, Error> {
        self.discovery.served(&self.client, api_version, kind).await
    }

    /// The client of `resource` in `namespace`, or cluster-wide.
    fn api(&self, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        }
    }

    fn class(&self, job: &str, verb: &str, kind: &str) -> Result<ClassId, Error> {
        Ok(self.measurement.class(&class_name(job, verb, kind))?)
    }

    /// Runs every job, then the global wait and garbage collection.
    /// Returns what each job did; failures of verification or waits end the
    /// run with an error after the clean-up.
    pub async fn run(mut self, keep: bool) -> Result<Value, Error> {
        let scenario = Arc::clone(&self.scenario);
        let started = Instant::now();
        let mut result = Ok(());
        for job in &scenario.config.jobs {
            if self.stop.is_cancelled() {
                break;
            }
            let job_started = Instant::now();
            let ran = match job.job_type {
                JobType::Create => self.create_job(job).await,
                JobType::Patch => self.patch_job(job).await,
                JobType::Delete => self.delete_job(job).await,
                JobType::Read => self.read_job(job).await,
            };
            if let Some(entry) = self.report.last_mut()
                && entry["name"] == job.name.as_str()
            {
                entry["duration_s"] = json!(job_started.elapsed().as_secs_f64());
            }
            if let Err(err) = ran {
                result = Err(err);
                break;
            }
            if !job.job_pause.is_zero() {
                self.sleep(job.job_pause).await;
            }
            if job.gc && !keep {
                let namespaces = self.namespaces.remove(&job.name).unwrap_or_default();
                self.delete_namespaces(&namespaces).await?;
            }
        }
        if result.is_ok() && scenario.config.global.wait_when_finished && !self.stop.is_cancelled()
        {
            for job in &scenario.config.jobs {
                let namespaces = self.namespaces.get(&job.name).cloned().unwrap_or_default();
                self.wait_for_job(job, &namespaces).await;
            }
        }
        if scenario.config.global.gc && !keep {
            let namespaces: Vec<String> = self.namespaces.values().flatten().cloned().collect();
            self.delete_namespaces(&namespaces).await?;
            self.delete_cluster_scoped().await?;
        }
        result?;
        let summary = json!({
            "uuid": self.uuid,
            "run_id": self.run_id,
            "jobs": self.report,
            "duration_s": started.elapsed().as_secs_f64(),
        });
        if !self.failures.is_empty() {
            return Err(Error::Failed(self.failures.join("; ")));
        }
        Ok(summary)
    }

    async fn sleep(&self, duration: Duration) {
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            () = self.stop.cancelled() => {}
        }
    }

    // ---- create jobs ----

    async fn create_job(&mut self, job: &Job) -> Result<(), Error> {
        if job.cleanup {
            self.delete_labelled_namespaces(&format!("{}={}", labels::JOB, job.name))
                .await?;
        }
        let mut namespaces: Vec<String> = Vec::new();
        let mut pacing = Pacing::new(job)?;
        let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut tasks = JoinSet::new();
        let mut created = 0_u64;
        let mut iterations = 0_u64;
        let paced_from = Instant::now();
        for iteration in 0..job.job_iterations {
            if self.stop.is_cancelled() {
                break;
            }
            self.measurement.set_phase(format!(
                "{}: iteration {}/{}",
                job.name,
                iteration + 1,
                job.job_iterations
            ));
            let namespace = self.namespace_for(job, iteration, &mut namespaces).await?;
            for (index, object) in job.objects.iter().enumerate() {
                if !runs_in(object, iteration) {
                    continue;
                }
                for replica in 1..=object.replicas {
                    // Everything but the request is done before the
                    // operation's turn, so that it starts on time.
                    let prepared = self
                        .prepare(job, index, object, iteration, replica, namespace.as_deref())
                        .await?;
                    let intended = tokio::select! {
                        intended = pacing.next() => intended,
                        () = self.stop.cancelled() => break,
                    };
                    for Create { api, body, class } in prepared {
                        let recorder = self.recorder.clone();
                        let permit = Arc::clone(&in_flight)
                            .acquire_owned()
                            .await
                            .map_err(|_| Error::Invalid("the job's request pool closed".into()))?;
                        tasks.spawn(async move {
                            let started = Instant::now();
                            let result = api.create(&PostParams::default(), &body).await;
                            record(&recorder, class, intended, started, outcome::of(&result));
                            drop(permit);
                        });
                        created += 1;
                    }
                    if !job.object_delay.is_zero() {
                        self.sleep(job.object_delay).await;
                    }
                }
            }
            iterations += 1;
            if job.pod_wait && !job.wait_when_finished {
                while tasks.join_next().await.is_some() {}
                if let Some(ns) = &namespace {
                    self.wait_for_job(job, std::slice::from_ref(ns)).await;
                }
            }
            if !job.job_iteration_delay.is_zero() {
                self.sleep(job.job_iteration_delay).await;
            }
            while tasks.try_join_next().is_some() {}
        }
        // An open-loop job's rate is that of its schedule (arrivals sent
        // over the window they were sent in); a closed-loop job's, that of
        // its completed creates.
        let mut paced_for = paced_from.elapsed();
        pacing.stop();
        while tasks.join_next().await.is_some() {}
        if job.rate.is_none() {
            paced_for = paced_from.elapsed();
        }
        if job.wait_when_finished
            && !self.scenario.config.global.wait_when_finished
            && !self.stop.is_cancelled()
        {
            self.wait_for_job(job, &namespaces).await;
        }
        let verified = if job.verify_objects && !self.stop.is_cancelled() {
            self.verify(job, iterations).await?
        } else {
            Value::Null
        };
        self.namespaces.insert(job.name.clone(), namespaces.clone());
        if let Some(churn) = job.churn()
            && !self.stop.is_cancelled()
        {
            self.churn(job, &churn, &namespaces).await?;
        }
        self.report.push(json!({
            "name": job.name,
            "type": "create",
            "iterations": iterations,
            "objects": created,
            "namespaces": namespaces.len(),
            "verified": verified,
            "target_rate_per_s": job.rate,
            "achieved_rate_per_s": created as f64 / paced_for.as_secs_f64().max(f64::EPSILON),
        }));
        Ok(())
    }

    /// The objects `object`'s template renders for one iteration and
    /// replica.
    fn render(
        &self,
        job: &Job,
        object: &Object,
        iteration: u64,
        replica: u64,
    ) -> Result<Vec<Value>, Error> {
        let (shown, rendered) = self.render_text(job, object, iteration, replica)?;
        documents(&rendered).map_err(|err| Error::Invalid(format!("{shown}: {err}")))
    }

    /// `object`'s template rendered over kube-burner's data, and how
    /// messages name the template.
    fn render_text(
        &self,
        job: &Job,
        object: &Object,
        iteration: u64,
        replica: u64,
    ) -> Result<(String, String), Error> {
        let template = self
            .scenario
            .templates
            .get(&object.object_template)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "template {} was not loaded",
                    object.object_template
                ))
            })?;
        let data = template_data(
            &job.name,
            iteration,
            replica,
            &self.uuid,
            &self.run_id,
            &object.input_vars,
        );
        let missing = if job.default_missing_keys_with_zero {
            gotemplate::MissingKey::Zero
        } else {
            gotemplate::MissingKey::Error
        };
        let rendered = template
            .template
            .render(&data, missing)
            .map_err(|err| Error::Invalid(err.to_string()))?;
        Ok((template.shown.clone(), rendered))
    }

    /// The create requests of one iteration and replica of `object` (the
    /// `index`th of the job): rendered, labelled and addressed to their
    /// namespace, ready to send.
    async fn prepare(
        &mut self,
        job: &Job,
        index: usize,
        object: &Object,
        iteration: u64,
        replica: u64,
        namespace: Option<&str>,
    ) -> Result<Vec<Create>, Error> {
        let adjusted = iteration / object.repeat_every_n_iterations.unwrap_or(1).max(1);
        let docs = self.render(job, object, adjusted, replica)?;
        let mut prepared = Vec::with_capacity(docs.len());
        for mut doc in docs {
            let (api_version, kind) = (str_field(&doc, "apiVersion"), str_field(&doc, "kind"));
            let served = self.served(&api_version, &kind).await?;
            let object_labels = labels::object(
                &self.uuid,
                &self.run_id,
                &job.name,
                index,
                iteration,
                replica,
            );
            labels::apply(&mut doc, &object_labels);
            let target_namespace = if served.namespaced {
                doc.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| namespace.map(str::to_owned))
            } else {
                if !self.cluster_scoped.contains(&served.api) {
                    self.cluster_scoped.push(served.api.clone());
                }
                None
            };
            let api = self.api(&served.api, target_namespace.as_deref());
            let body: DynamicObject = serde_json::from_value(doc).map_err(|err| {
                Error::Invalid(format!("{}: not an object: {err}", object.object_template))
            })?;
            let class = self.class(&job.name, "create", &kind)?;
            prepared.push(Create { api, body, class });
        }
        Ok(prepared)
    }

    /// The namespace of `iteration`, created the first time it is needed;
    /// `None` when the job's objects are all cluster-scoped or carry their
    /// own namespace.
    async fn namespace_for(
        &mut self,
        job: &Job,
        iteration: u64,
        created: &mut Vec<String>,
    ) -> Result<Option<String>, Error> {
        let Some(name) = namespace_name(job, iteration) else {
            return Ok(None);
        };
        if created.contains(&name) {
            return Ok(Some(name));
        }
        let mut ns_labels: BTreeMap<String, String> =
            labels::namespace(&self.uuid, &self.run_id, &job.name);
        ns_labels.extend(job.namespace_labels.clone());
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(ns_labels),
                annotations: (!job.namespace_annotations.is_empty())
                    .then(|| job.namespace_annotations.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        let api: Api<Namespace> = Api::all(self.client.clone());
        let class = self.class(&job.name, "create", "Namespace")?;
        let started = Instant::now();
        let result = api.create(&PostParams::default(), &namespace).await;
        self.recorder
            .clone()
            .record(class, started.elapsed(), outcome::of(&result));
        match result {
            Ok(_) => {}
            // A namespace shared with an earlier job (or kept from one) is
            // used as it is, as kube-burner does.
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(err) => {
                return Err(Error::Api {
                    context: format!("cannot create namespace {name}"),
                    reason: outcome::describe(&err),
                });
            }
        }
        created.push(name.clone());
        Ok(Some(name))
    }

    /// Waits until the job's objects in `namespaces` are ready, or the
    /// job's `maxWaitTimeout` passes (a failure of the run).
    async fn wait_for_job(&mut self, job: &Job, namespaces: &[String]) {
        let deadline = Instant::now() + job.max_wait_timeout;
        let mut waits: Vec<(ApiResource, bool, String, String)> = Vec::new();
        for object in &job.objects {
            if !object.wait {
                continue;
            }
            let options = &object.wait_options;
            let kinds: Vec<(String, String)> = if options.kind.is_empty() {
                self.scenario.kinds_of(object).to_vec()
            } else {
                let version = if options.api_version.is_empty() {
                    "v1".to_owned()
                } else {
                    options.api_version.clone()
                };
                vec![(version, options.kind.clone())]
            };
            let selector = if options.label_selector.is_empty() {
                format!(
                    "{}={},{}={}",
                    labels::UUID,
                    self.uuid,
                    labels::JOB,
                    job.name
                )
            } else {
                selector_of(&options.label_selector)
            };
            for (api_version, kind) in kinds {
                if !ready::waits_for(&kind) {
                    continue;
                }
                let Ok(served) = self.served(&api_version, &kind).await else {
                    continue;
                };
                if !waits
                    .iter()
                    .any(|(api, _, k, s)| *api == served.api && *k == kind && *s == selector)
                {
                    waits.push((served.api, served.namespaced, kind, selector.clone()));
                }
            }
        }
        for (api, namespaced, kind, selector) in waits {
            let scopes: Vec<Option<&str>> = if namespaced && !namespaces.is_empty() {
                namespaces.iter().map(|ns| Some(ns.as_str())).collect()
            } else {
                vec![None]
            };
            for scope in scopes {
                let place = scope.map(|ns| format!(" in {ns}")).unwrap_or_default();
                self.measurement
                    .set_phase(format!("{}: waiting for {kind}{place}", job.name));
                let list = self.api(&api, scope);
                let params = ListParams::default().labels(&selector);
                loop {
                    if self.stop.is_cancelled() {
                        return;
                    }
                    let pending = match list.list(&params).await {
                        Ok(items) => items
                            .items
                            .iter()
                            .filter(|item| !ready::is_ready(&kind, item))
                            .count(),
                        Err(err) => {
                            tracing::debug!(error = %outcome::describe(&err), "listing objects to wait for");
                            usize::MAX
                        }
                    };
                    if pending == 0 {
                        break;
                    }
                    if Instant::now() >= deadline {
                        let place = scope
                            .map(|ns| format!(" in namespace {ns}"))
                            .unwrap_or_default();
                        self.failures.push(format!(
                            "job {}: {kind} objects{place} not ready within maxWaitTimeout {}",
                            job.name,
                            crate::config::go_duration::format(&job.max_wait_timeout)
                        ));
                        break;
                    }
                    self.sleep(WAIT_POLL).await;
                }
            }
        }
    }

    /// Counts the job's objects per template and kind against what it
    /// meant to create; a mismatch fails the run when `errorOnVerify`.
    async fn verify(&mut self, job: &Job, iterations: u64) -> Result<Value, Error> {
        let mut verified = serde_json::Map::new();
        for (index, object) in job.objects.iter().enumerate() {
            let expected_per_replica = if object.run_once {
                1
            } else {
                (0..iterations).filter(|i| runs_in(object, *i)).count() as u64
            };
            let expected = expected_per_replica * object.replicas;
            let kinds = self.scenario.kinds_of(object).to_vec();
            for (api_version, kind) in kinds {
                let served = self.served(&api_version, &kind).await?;
                let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &served.api);
                let selector = format!(
                    "{}={},{}={},{}={index}",
                    labels::UUID,
                    self.uuid,
                    labels::JOB,
                    job.name,
                    labels::INDEX
                );
                let found = api
                    .list_metadata(&ListParams::default().labels(&selector))
                    .await
                    .map_err(|err| Error::Api {
                        context: format!("cannot count the {kind} objects of job {}", job.name),
                        reason: outcome::describe(&err),
                    })?
                    .items
                    .len() as u64;
                if found != expected {
                    let message = format!(
                        "job {}: {found} {kind} objects of {} exist, {expected} expected",
                        job.name, object.object_template
                    );
                    if job.error_on_verify {
                        self.failures.push(message);
                    } else {
                        tracing::warn!("{message}");
                    }
                }
                verified.insert(
                    format!("{}/{kind}", object.object_template),
                    json!({"expected": expected, "found": found}),
                );
            }
        }
        Ok(Value::Object(verified))
    }

    /// Churns the job's namespaces: each cycle deletes `percent` of them,
    /// waits until they are gone, creates their iterations again and waits
    /// for them, then pauses `delay`.
    async fn churn(
        &mut self,
        job: &Job,
        churn: &crate::config::ChurnConfig,
        namespaces: &[String],
    ) -> Result<(), Error> {
        let started = Instant::now();
        let count = ((namespaces.len() as u64 * churn.percent).div_ceil(100)).max(1) as usize;
        let mut cycle = 0;
        let mut offset = 0;
        while (churn.cycles == 0 || cycle < churn.cycles)
            && started.elapsed() < churn.duration
            && !self.stop.is_cancelled()
        {
            self.measurement
                .set_phase(format!("{}: churn cycle {}", job.name, cycle + 1));
            let victims: Vec<String> = (0..count.min(namespaces.len()))
                .map(|i| namespaces[(offset + i) % namespaces.len()].clone())
                .collect();
            offset += count;
            let class = self.class(&job.name, "delete", "Namespace")?;
            self.delete_namespaces_timed(&victims, Some(class)).await?;
            let mut recreated = Vec::new();
            for iteration in 0..job.job_iterations {
                let Some(name) = namespace_name(job, iteration) else {
                    continue;
                };
                if !victims.contains(&name) || self.stop.is_cancelled() {
                    continue;
                }
                let namespace = self.namespace_for(job, iteration, &mut recreated).await?;
                for (index, object) in job.objects.iter().enumerate() {
                    if !runs_in(object, iteration) || object.run_once {
                        continue;
                    }
                    for replica in 1..=object.replicas {
                        let prepared = self
                            .prepare(job, index, object, iteration, replica, namespace.as_deref())
                            .await?;
                        for Create { api, body, class } in prepared {
                            let started = Instant::now();
                            let result = api.create(&PostParams::default(), &body).await;
                            self.recorder
                                .record(class, started.elapsed(), outcome::of(&result));
                        }
                    }
                }
            }
            self.wait_for_job(job, &recreated).await;
            cycle += 1;
            self.sleep(churn.delay).await;
        }
        Ok(())
    }

    // ---- patch, read and delete jobs ----

    /// The objects a patch, read or delete job works on.
    async fn matching(
        &mut self,
        job: &Job,
        object: &Object,
    ) -> Result<(Served, Vec<DynamicObject>), Error> {
        let served = self.served(&api_version_of(object), &object.kind).await?;
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &served.api);
        let class = self.class(&job.name, "list", &object.kind)?;
        let started = Instant::now();
        let result = api
            .list(&ListParams::default().labels(&selector_of(&object.label_selector)))
            .await;
        self.recorder
            .clone()
            .record(class, started.elapsed(), outcome::of(&result));
        let items = result
            .map_err(|err| Error::Api {
                context: format!(
                    "cannot list the {} objects of job {}",
                    object.kind, job.name
                ),
                reason: outcome::describe(&err),
            })?
            .items;
        Ok((served, items))
    }

    async fn patch_job(&mut self, job: &Job) -> Result<(), Error> {
        let mut pacing = Pacing::new(job)?;
        let mut patched = 0_u64;
        for iteration in 0..job.job_iterations {
            for object in &job.objects {
                if self.stop.is_cancelled() {
                    break;
                }
                self.measurement.set_phase(format!(
                    "{}: patching {} ({}/{})",
                    job.name,
                    object.kind,
                    iteration + 1,
                    job.job_iterations
                ));
                let (served, items) = self.matching(job, object).await?;
                let class = self.class(&job.name, "patch", &object.kind)?;
                let mut tasks = JoinSet::new();
                for (replica, item) in items.into_iter().enumerate() {
                    let intended = tokio::select! {
                        intended = pacing.next() => intended,
                        () = self.stop.cancelled() => break,
                    };
                    let body = self.patch_body(job, object, iteration, replica as u64 + 1)?;
                    let name = item.metadata.name.clone().unwrap_or_default();
                    let api = self.api(
                        &served.api,
                        item.metadata
                            .namespace
                            .as_deref()
                            .filter(|_| served.namespaced),
                    );
                    let recorder = self.recorder.clone();
                    tasks.spawn(async move {
                        let (params, patch) = match body {
                            PatchBody::Json(patch) => match serde_json::from_value(patch) {
                                Ok(patch) => (PatchParams::default(), Patch::Json::<Value>(patch)),
                                Err(err) => {
                                    recorder.record(
                                        class,
                                        Duration::ZERO,
                                        measure::Outcome::error(format!("not a JSON patch: {err}")),
                                    );
                                    return;
                                }
                            },
                            PatchBody::Merge(value) => {
                                (PatchParams::default(), Patch::Merge(value))
                            }
                            PatchBody::Strategic(value) => {
                                (PatchParams::default(), Patch::Strategic(value))
                            }
                            PatchBody::Apply(value) => (
                                PatchParams::apply("kube-burner").force(),
                                Patch::Apply(value),
                            ),
                        };
                        let started = Instant::now();
                        let result = api.patch(&name, &params, &patch).await;
                        record(&recorder, class, intended, started, outcome::of(&result));
                    });
                    patched += 1;
                }
                while tasks.join_next().await.is_some() {}
            }
            if !job.job_iteration_delay.is_zero() {
                self.sleep(job.job_iteration_delay).await;
            }
        }
        pacing.stop();
        self.report
            .push(json!({"name": job.name, "type": "patch", "patched": patched}));
        Ok(())
    }

    fn patch_body(
        &self,
        job: &Job,
        object: &Object,
        iteration: u64,
        replica: u64,
    ) -> Result<PatchBody, Error> {
        let (shown, rendered) = self.render_text(job, object, iteration, replica)?;
        let invalid = |err: String| Error::Invalid(format!("{shown}: {err}"));
        if object.patch_type == "application/json-patch+json" {
            let patch: Value =
                serde_json::from_str(&rendered).map_err(|err| invalid(err.to_string()))?;
            return Ok(PatchBody::Json(patch));
        }
        let value = documents(&rendered)
            .map_err(invalid)?
            .into_iter()
            .next()
            .unwrap_or_else(|| json!({}));
        Ok(match object.patch_type.as_str() {
            "application/merge-patch+json" => PatchBody::Merge(value),
            "application/strategic-merge-patch+json" => PatchBody::Strategic(value),
            _ => PatchBody::Apply(value),
        })
    }

    async fn read_job(&mut self, job: &Job) -> Result<(), Error> {
        let mut reads = 0_u64;
        for _ in 0..job.job_iterations {
            for object in &job.objects {
                if self.stop.is_cancelled() {
                    break;
                }
                self.measurement
                    .set_phase(format!("{}: reading {}", job.name, object.kind));
                let (served, items) = self.matching(job, object).await?;
                let class = self.class(&job.name, "get", &object.kind)?;
                for item in items {
                    if self.stop.is_cancelled() {
                        break;
                    }
                    let api = self.api(
                        &served.api,
                        item.metadata
                            .namespace
                            .as_deref()
                            .filter(|_| served.namespaced),
                    );
                    let started = Instant::now();
                    let result = api
                        .get(item.metadata.name.as_deref().unwrap_or_default())
                        .await;
                    self.recorder
                        .clone()
                        .record(class, started.elapsed(), outcome::of(&result));
                    reads += 1;
                }
            }
            if !job.job_iteration_delay.is_zero() {
                self.sleep(job.job_iteration_delay).await;
            }
        }
        self.report
            .push(json!({"name": job.name, "type": "read", "reads": reads}));
        Ok(())
    }

    async fn delete_job(&mut self, job: &Job) -> Result<(), Error> {
        let mut deleted = 0_u64;
        for object in &job.objects {
            if self.stop.is_cancelled() {
                break;
            }
            self.measurement
                .set_phase(format!("{}: deleting {}", job.name, object.kind));
            let (served, items) = self.matching(job, object).await?;
            let class = self.class(&job.name, "delete", &object.kind)?;
            let mut tasks = JoinSet::new();
            let mut pacing = Pacing::new(job)?;
            for item in items {
                let intended = tokio::select! {
                    intended = pacing.next() => intended,
                    () = self.stop.cancelled() => break,
                };
                let api = self.api(
                    &served.api,
                    item.metadata
                        .namespace
                        .as_deref()
                        .filter(|_| served.namespaced),
                );
                let name = item.metadata.name.clone().unwrap_or_default();
                let recorder = self.recorder.clone();
                tasks.spawn(async move {
                    let started = Instant::now();
                    let result = api.delete(&name, &DeleteParams::background()).await;
                    record(&recorder, class, intended, started, outcome::of(&result));
                });
                deleted += 1;
            }
            pacing.stop();
            while tasks.join_next().await.is_some() {}
            if job.wait_for_deletion {
                let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &served.api);
                let params = ListParams::default().labels(&selector_of(&object.label_selector));
                let deadline = Instant::now() + job.max_wait_timeout;
                while !self.stop.is_cancelled() {
                    match api.list_metadata(&params).await {
                        Ok(list) if list.items.is_empty() => break,
                        _ if Instant::now() >= deadline => {
                            self.failures.push(format!(
                                "job {}: {} objects not deleted within maxWaitTimeout",
                                job.name, object.kind
                            ));
                            break;
                        }
                        _ => self.sleep(WAIT_POLL).await,
                    }
                }
            }
        }
        self.report
            .push(json!({"name": job.name, "type": "delete", "deleted": deleted}));
        Ok(())
    }

    // ---- clean-up ----

    async fn delete_labelled_namespaces(&self, selector: &str) -> Result<(), Error> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let names: Vec<String> = api
            .list_metadata(&ListParams::default().labels(selector))
            .await
            .map_err(|err| Error::Api {
                context: "cannot list namespaces of an earlier run".into(),
                reason: outcome::describe(&err),
            })?
            .items
            .into_iter()
            .filter_map(|ns| ns.metadata.name)
            .collect();
        self.delete_namespaces(&names).await
    }

    async fn delete_namespaces(&self, names: &[String]) -> Result<(), Error> {
        self.delete_namespaces_timed(names, None).await
    }

    /// Deletes namespaces and waits until they are gone (bounded); with a
    /// class, each delete is timed into it.
    async fn delete_namespaces_timed(
        &self,
        names: &[String],
        class: Option<ClassId>,
    ) -> Result<(), Error> {
        if names.is_empty() {
            return Ok(());
        }
        self.measurement
            .set_phase(format!("deleting {} namespace(s)", names.len()));
        let api: Api<Namespace> = Api::all(self.client.clone());
        for name in names {
            let started = Instant::now();
            let result = api.delete(name, &DeleteParams::background()).await;
            if let Some(class) = class {
                self.recorder
                    .clone()
                    .record(class, started.elapsed(), outcome::of(&result));
            }
            match result {
                Ok(_) | Err(kube::Error::Api(_)) => {}
                Err(err) => {
                    return Err(Error::Api {
                        context: format!("cannot delete namespace {name}"),
                        reason: outcome::describe(&err),
                    });
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(300);
        for name in names {
            while Instant::now() < deadline {
                match api.get_opt(name).await {
                    Ok(None) => break,
                    _ => tokio::time::sleep(WAIT_POLL).await,
                }
            }
        }
        Ok(())
    }

    async fn delete_cluster_scoped(&self) -> Result<(), Error> {
        for resource in &self.cluster_scoped {
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), resource);
            api.delete_collection(
                &DeleteParams::background(),
                &ListParams::default().labels(&format!("{}={}", labels::UUID, self.uuid)),
            )
            .await
            .map_err(|err| Error::Api {
                context: format!("cannot delete the run's {}", resource.plural),
                reason: outcome::describe(&err),
            })?;
        }
        Ok(())
    }
}

/// One create request, ready to send.
struct Create {
    api: Api<DynamicObject>,
    body: DynamicObject,
    class: ClassId,
}

enum PatchBody {
    Json(Value),
    Merge(Value),
    Strategic(Value),
    Apply(Value),
}

/// The namespace of a job's `iteration`: the job's namespace, with the
/// iteration's index when namespaced iterations are on; `None` without one.
fn namespace_name(job: &Job, iteration: u64) -> Option<String> {
    if job.namespace.is_empty() {
        return None;
    }
    Some(if job.namespaced_iterations {
        format!(
            "{}-{}",
            job.namespace,
            iteration / job.iterations_per_namespace.max(1)
        )
    } else {
        job.namespace.clone()
    })
}

/// Whether `object` is created in `iteration` (`runOnce`,
/// `repeatEveryNIterations`).
fn runs_in(object: &Object, iteration: u64) -> bool {
    if object.run_once {
        return iteration == 0;
    }
    iteration.is_multiple_of(object.repeat_every_n_iterations.unwrap_or(1).max(1))
}

fn api_version_of(object: &Object) -> String {
    if object.api_version.is_empty() {
        "v1".into()
    } else {
        object.api_version.clone()
    }
}

fn str_field(doc: &Value, key: &str) -> String {
    doc.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn selector_of(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Records an operation: open-loop ones from their intended start.
fn record(
    recorder: &Recorder,
    class: ClassId,
    intended: Option<Instant>,
    started: Instant,
    outcome: measure::Outcome,
) {
    match intended {
        Some(intended) => {
            recorder.record_scheduled(class, intended, started, Instant::now(), outcome)
        }
        None => recorder.record(class, started.elapsed(), outcome),
    }
}

/// How a job spaces its operations.
enum Pacing {
    /// As fast as the server answers.
    Unlimited,
    /// client-go's token bucket: `qps` tokens a second, `burst` at most.
    Bucket {
        qps: f64,
        burst: f64,
        tokens: f64,
        last: Instant,
    },
    /// kstress's open-loop arrivals; each operation is timed from its
    /// intended start.
    Open {
        pacer: Option<Pacer>,
        arrivals: tokio::sync::mpsc::UnboundedReceiver<Instant>,
    },
}

impl Pacing {
    fn new(job: &Job) -> Result<Self, Error> {
        if let Some(rate) = job.rate {
            let process = match job.arrivals.unwrap_or(Arrivals::Constant) {
                Arrivals::Constant => ArrivalProcess::Constant,
                Arrivals::Poisson => ArrivalProcess::Poisson,
            };
            let seed = rand::random();
            let start = Instant::now();
            let (pacer, arrivals) = Pacer::start(
                Schedule::new(process, rate, seed),
                start,
                start + Duration::from_secs(365 * 24 * 3600),
            )
            .map_err(|source| Error::Io {
                context: "cannot start the arrival pacer thread",
                source,
            })?;
            return Ok(Pacing::Open {
                pacer: Some(pacer),
                arrivals,
            });
        }
        if job.qps > 0.0 {
            let burst = if job.burst == 0 {
                job.qps.max(1.0)
            } else {
                job.burst as f64
            };
            return Ok(Pacing::Bucket {
                qps: job.qps,
                burst,
                tokens: burst,
                last: Instant::now(),
            });
        }
        Ok(Pacing::Unlimited)
    }

    /// Waits for the next operation's turn; returns its intended start
    /// for open-loop pacing.
    async fn next(&mut self) -> Option<Instant> {
        match self {
            Pacing::Unlimited => None,
            Pacing::Bucket {
                qps,
                burst,
                tokens,
                last,
            } => {
                let now = Instant::now();
                *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * *qps).min(*burst);
                *last = now;
                if *tokens < 1.0 {
                    let wait = Duration::from_secs_f64((1.0 - *tokens) / *qps);
                    tokio::time::sleep(wait).await;
                    *tokens = 1.0;
                    *last = Instant::now();
                }
                *tokens -= 1.0;
                None
            }
            Pacing::Open { arrivals, .. } => match arrivals.recv().await {
                Some(intended) => Some(intended),
                None => std::future::pending().await,
            },
        }
    }

    fn stop(&mut self) {
        if let Pacing::Open { pacer, .. } = self
            && let Some(pacer) = pacer.take()
        {
            pacer.stop();
        }
    }
}
