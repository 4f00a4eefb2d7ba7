//! pod-stress: the API server's write and read paths under a steady mix of
//! pod gets, creates and updates, with paged lists alongside.
//!
//! Each step takes the next index `i` and works on the pod
//! `<prefix><i mod 10>`: get it; create it when it is missing (a concurrent
//! create winning the race, AlreadyExists, is not a failure); otherwise
//! update it, toggling an annotation, and on a conflict retry the step
//! (get + update) with a short backoff. `update_concurrency` workers take
//! steps until the run ends or `objects` steps are done. A separate loop
//! pages through the namespace's pods with the batch limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, Resource as _, ResourceExt as _};
use measure::{Class, ClassId, Kind, Outcome, Recorder};
use rand::Rng;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::driver::{Driver, Objects, check_object_size, options_of};
use crate::objects::{payload, stress_pod};
use crate::paging::Pager;
use crate::{Context, Error, Output, RUN_LABEL, outcome};

/// Annotation the update step toggles.
const TOGGLE_ANNOTATION: &str = "kstress.io/toggle";

/// Attempts of one step when updates conflict, and the pause between them:
/// the standard client retry-on-conflict policy (5 steps, 10 ms, 10 %
/// jitter).
const CONFLICT_ATTEMPTS: u32 = 5;
const CONFLICT_BACKOFF: Duration = Duration::from_millis(10);

/// Options of the pod-stress driver.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PodStress {
    /// Steps to take in all; `None` runs until the run ends.
    pub objects: Option<u64>,
    /// Bytes of payload in each pod.
    pub object_size: usize,
    /// Workers taking steps concurrently.
    pub update_concurrency: usize,
    /// Page size of the list loop; `None` disables lists.
    pub list_batch_limit: Option<u32>,
    /// Prefix of the pod names.
    pub key_prefix: String,
    /// Container image of the pods.
    pub image: String,
    /// Nodes a cluster kstress did not start must have.
    pub min_nodes: usize,
}

impl PodStress {
    /// The reference's operation classes: creates and updates are writes,
    /// gets are single-object reads, list pages are namespaced lists.
    pub fn classes() -> Vec<Class> {
        vec![
            Class::new("write", Kind::Mutating),
            Class::new("get", Kind::Read),
            Class::new("list", Kind::ListNamespaced),
        ]
    }

    /// Runs until `ctx.stop` is cancelled or every step is done.
    async fn stress(&self, ctx: &Context) -> Result<Output, Error> {
        let classes = Classes {
            write: ctx.measurement.class("write")?,
            get: ctx.measurement.class("get")?,
            list: ctx.measurement.class("list")?,
        };
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
        let shared = Arc::new(Shared {
            pods,
            namespace: ctx.namespace.clone(),
            run_id: ctx.run_id.clone(),
            payload: payload(self.object_size),
            next: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
            creates: AtomicU64::new(0),
            updates: AtomicU64::new(0),
            options: self.clone(),
            classes,
        });

        // Lists stop with the writers: a run with a fixed number of steps
        // ends when they are done.
        let lists_stop = ctx.stop.child_token();
        let mut lists = JoinSet::new();
        let listed = Arc::new(AtomicU64::new(0));
        if let Some(limit) = self.list_batch_limit {
            let pager = Pager {
                client: ctx.client.clone(),
                recorder: ctx.measurement.recorder(),
                limit,
                pages: Arc::clone(&listed),
                items: Arc::default(),
            };
            let url = Pod::url_path(&(), Some(&ctx.namespace));
            let stop = lists_stop.clone();
            let list = shared.classes.list;
            lists.spawn(async move {
                while !stop.is_cancelled() {
                    pager.page_through(&url, list).await;
                }
            });
        }

        let mut writers = JoinSet::new();
        for _ in 0..self.update_concurrency {
            let shared = Arc::clone(&shared);
            let recorder = ctx.measurement.recorder();
            let stop = ctx.stop.clone();
            writers.spawn(async move {
                while !stop.is_cancelled() {
                    let index = shared.next.fetch_add(1, Ordering::Relaxed);
                    if shared
                        .options
                        .objects
                        .is_some_and(|objects| index >= objects)
                    {
                        return;
                    }
                    shared.step(index, &recorder).await;
                }
            });
        }
        while writers.join_next().await.is_some() {}
        let finished_early = !ctx.stop.is_cancelled();
        lists_stop.cancel();
        while lists.join_next().await.is_some() {}

        let steps = shared
            .next
            .load(Ordering::Relaxed)
            .min(self.objects.unwrap_or(u64::MAX));
        Ok(Output {
            extra: [(
                "pod_stress".to_owned(),
                json!({
                    "steps": steps,
                    "creates": shared.creates.load(Ordering::Relaxed),
                    "updates": shared.updates.load(Ordering::Relaxed),
                    "conflicts_retried": shared.conflicts.load(Ordering::Relaxed),
                    "list_pages": listed.load(Ordering::Relaxed),
                }),
            )]
            .into(),
            finished_early,
            ..Output::default()
        })
    }
}

#[async_trait]
impl Driver for PodStress {
    fn name(&self) -> &str {
        "pod-stress"
    }

    fn classes(&self) -> Vec<Class> {
        Self::classes()
    }

    fn validate(&self) -> Result<(), Error> {
        if self.object_size == 0 {
            return Err(Error::Invalid("--object-size must be positive".into()));
        }
        check_object_size(self.object_size as u64)?;
        if self.update_concurrency == 0 {
            return Err(Error::Invalid(
                "--update-concurrency must be positive".into(),
            ));
        }
        Ok(())
    }

    fn options(&self) -> Value {
        options_of(self)
    }

    fn uses_objects(&self) -> bool {
        false
    }

    async fn check_cluster(&self, client: &Client, embedded: bool) -> Result<(), Error> {
        if embedded || self.min_nodes == 0 {
            return Ok(());
        }
        let nodes: Api<Node> = Api::all(client.clone());
        let count = nodes
            .list_metadata(&ListParams::default())
            .await
            .map_err(|err| Error::api("cannot list the cluster's nodes", err))?
            .items
            .len();
        if count < self.min_nodes {
            return Err(Error::Invalid(format!(
                "the cluster has {count} node(s); --min-nodes requires {}",
                self.min_nodes
            )));
        }
        Ok(())
    }

    async fn run(&self, ctx: &Context, _objects: Option<&Objects>) -> Result<Output, Error> {
        self.stress(ctx).await
    }
}

#[derive(Clone, Copy, Debug)]
struct Classes {
    write: ClassId,
    get: ClassId,
    list: ClassId,
}

struct Shared {
    pods: Api<Pod>,
    namespace: String,
    /// Labels every pod, so that clean-up finds them in a namespace the
    /// run did not create.
    run_id: String,
    payload: String,
    next: AtomicU64,
    conflicts: AtomicU64,
    creates: AtomicU64,
    updates: AtomicU64,
    options: PodStress,
    classes: Classes,
}

/// How one attempt of a step ended.
enum Attempt {
    Done,
    Conflict,
}

impl Shared {
    async fn step(&self, index: u64, recorder: &Recorder) {
        let name = format!("{}{}", self.options.key_prefix, index % 10);
        for attempt in 1..=CONFLICT_ATTEMPTS {
            match self.attempt(&name, recorder).await {
                Attempt::Done => return,
                Attempt::Conflict => {
                    self.conflicts.fetch_add(1, Ordering::Relaxed);
                    if attempt < CONFLICT_ATTEMPTS {
                        let jitter = rand::rng().random_range(0.0..0.1);
                        tokio::time::sleep(CONFLICT_BACKOFF.mul_f64(1.0 + jitter)).await;
                    }
                }
            }
        }
    }

    async fn attempt(&self, name: &str, recorder: &Recorder) -> Attempt {
        let started = Instant::now();
        let got = self.pods.get(name).await;
        match got {
            Ok(mut pod) => {
                recorder.record(self.classes.get, started.elapsed(), Outcome::Ok);
                let annotations = pod
                    .metadata
                    .annotations
                    .get_or_insert_with(Default::default);
                if annotations.remove(TOGGLE_ANNOTATION).is_none() {
                    annotations.insert(TOGGLE_ANNOTATION.to_owned(), "on".to_owned());
                }
                let started = Instant::now();
                let result = self.pods.replace(name, &PostParams::default(), &pod).await;
                recorder.record(self.classes.write, started.elapsed(), outcome::of(&result));
                match result {
                    Ok(_) => {
                        self.updates.fetch_add(1, Ordering::Relaxed);
                        Attempt::Done
                    }
                    Err(err) if outcome::status_code(&err) == Some(409) => Attempt::Conflict,
                    Err(err) => {
                        tracing::debug!(pod = name, error = %err, "update failed");
                        Attempt::Done
                    }
                }
            }
            Err(err) if outcome::status_code(&err) == Some(404) => {
                // NotFound is the expected answer before the first create.
                recorder.record(self.classes.get, started.elapsed(), Outcome::Ok);
                let mut pod = stress_pod(name, &self.namespace, &self.options.image, &self.payload);
                pod.labels_mut()
                    .insert(RUN_LABEL.to_owned(), self.run_id.clone());
                let started = Instant::now();
                let result = self.pods.create(&PostParams::default(), &pod).await;
                let counted = match &result {
                    // Another worker created it first: not a failure.
                    Err(err) if outcome::status_code(err) == Some(409) => Outcome::Ok,
                    other => outcome::of(other),
                };
                recorder.record(self.classes.write, started.elapsed(), counted);
                if result.is_ok() {
                    self.creates.fetch_add(1, Ordering::Relaxed);
                }
                Attempt::Done
            }
            Err(err) => {
                recorder.record(self.classes.get, started.elapsed(), outcome::failure(&err));
                tracing::debug!(pod = name, error = %err, "get failed");
                Attempt::Done
            }
        }
    }
}
