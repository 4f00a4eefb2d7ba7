//! churn: open-loop object churn. Creates arrive on a Poisson (or
//! constant) schedule at a target rate, and each object is deleted a fixed
//! lifetime after its intended creation, so the number of live objects
//! settles at about rate x lifetime.
//!
//! Latency is timed from each request's intended start: when the server
//! stalls, requests queue up behind it and their latency grows, instead of
//! the driver quietly sending fewer of them (coordinated omission).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, PostParams};
use measure::{Class, ClassId, Kind, Recorder};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::arrivals::{ArrivalProcess, Pacer, Schedule, Timer};
use crate::driver::{Driver, Objects, options_of, required};
use crate::objects::Template;
use crate::resource::Resource;
use crate::watch_latency::DeleteLog;
use crate::{Context, DRAIN_TIMEOUT, Error, Output, outcome};

/// Options of the churn driver.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Churn {
    /// Target creates per second.
    pub rate: f64,
    /// How creates are spaced.
    pub arrivals: ArrivalProcess,
    /// Time from an object's intended creation to its deletion.
    #[serde(with = "crate::serde_duration")]
    pub lifetime: Duration,
    /// Requests in flight at most; arrivals beyond it wait, and the wait
    /// shows as start lag.
    pub max_in_flight: usize,
    /// Seed of the Poisson schedule.
    pub seed: u64,
}

impl Churn {
    /// Creates and deletes, both single-object writes.
    pub fn classes() -> Vec<Class> {
        vec![
            Class::new("create", Kind::Mutating),
            Class::new("delete", Kind::Mutating),
        ]
    }

    /// Validates the options.
    pub fn check(&self) -> Result<(), Error> {
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(Error::Invalid("--rate must be a positive number".into()));
        }
        if self.max_in_flight == 0 {
            return Err(Error::Invalid("--max-in-flight must be positive".into()));
        }
        Ok(())
    }

    /// Writes `objects` until `ctx.stop` is cancelled, noting each delete
    /// in `deletes` for the watchers that time it.
    pub async fn write(
        &self,
        ctx: &Context,
        objects: &Objects,
        deletes: Option<DeleteLog>,
    ) -> Result<Output, Error> {
        let resource = &objects.resource;
        let shared = Arc::new(Shared {
            api: dynamic_api(ctx, resource),
            template: objects.template.clone(),
            namespace: resource.namespaced.then(|| ctx.namespace.clone()),
            run_id: ctx.run_id.clone(),
            create: ctx.measurement.class("create")?,
            delete: ctx.measurement.class("delete")?,
            sent: AtomicU64::new(0),
            created: AtomicU64::new(0),
            deleted: AtomicU64::new(0),
            in_flight: Semaphore::new(self.max_in_flight),
            lifetime: self.lifetime,
            deletes,
        });
        let start = Instant::now();
        let far_future = start + Duration::from_secs(365 * 24 * 3600);
        let schedule = Schedule::new(self.arrivals, self.rate, self.seed);
        let (pacer, mut arrivals) =
            Pacer::start(schedule, start, far_future).map_err(|source| Error::Io {
                context: "cannot start the arrival pacer thread",
                source,
            })?;

        let timer = pacer.timer();
        // Arrivals are short-lived tasks: they share one recorder, since a
        // recorder of their own would cost each a fresh set of histograms.
        let recorder = ctx.measurement.recorder();
        let mut tasks = JoinSet::new();
        let mut sequence = 0_u64;
        loop {
            tokio::select! {
                biased;
                () = ctx.stop.cancelled() => break,
                arrival = arrivals.recv() => {
                    let Some(intended) = arrival else { break };
                    sequence += 1;
                    let shared = Arc::clone(&shared);
                    let recorder = recorder.clone();
                    let timer = timer.clone();
                    let stop = ctx.stop.clone();
                    tasks.spawn(async move {
                        shared.lifecycle(sequence, intended, &timer, &recorder, &stop).await;
                    });
                }
            }
            while tasks.try_join_next().is_some() {}
        }
        let window = start.elapsed();
        pacer.stop();
        drain(&mut tasks).await;
        let sent = shared.sent.load(Ordering::Relaxed);

        Ok(Output {
            target_rate_per_s: Some(self.rate),
            achieved_rate_per_s: Some(sent as f64 / window.as_secs_f64().max(f64::EPSILON)),
            extra: [(
                "churn".to_owned(),
                json!({
                    "arrivals": sequence,
                    "sent": sent,
                    "created": shared.created.load(Ordering::Relaxed),
                    "deleted": shared.deleted.load(Ordering::Relaxed),
                }),
            )]
            .into(),
            ..Output::default()
        })
    }
}

#[async_trait]
impl Driver for Churn {
    fn name(&self) -> &str {
        "churn"
    }

    fn classes(&self) -> Vec<Class> {
        Self::classes()
    }

    fn validate(&self) -> Result<(), Error> {
        self.check()
    }

    fn options(&self) -> Value {
        options_of(self)
    }

    async fn run(&self, ctx: &Context, objects: Option<&Objects>) -> Result<Output, Error> {
        self.write(ctx, required(objects)?, None).await
    }
}

/// The dynamic client of `resource` in the run's namespace.
pub(crate) fn dynamic_api(ctx: &Context, resource: &Resource) -> Api<DynamicObject> {
    if resource.namespaced {
        Api::namespaced_with(ctx.client.clone(), &ctx.namespace, &resource.api)
    } else {
        Api::all_with(ctx.client.clone(), &resource.api)
    }
}

/// Waits for in-flight requests to finish after the run ended, for at most
/// [`DRAIN_TIMEOUT`]; tasks still waiting to send are cancelled by the stop
/// token and end at once.
pub(crate) async fn drain(tasks: &mut JoinSet<()>) {
    let drained = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
        tracing::warn!(
            remaining = tasks.len(),
            "requests still in flight after the drain timeout; abandoning them"
        );
        tasks.abort_all();
    }
}

struct Shared {
    api: Api<DynamicObject>,
    template: Template,
    namespace: Option<String>,
    run_id: String,
    create: ClassId,
    delete: ClassId,
    /// Creates that left for the server: the achieved arrival rate.
    sent: AtomicU64,
    created: AtomicU64,
    deleted: AtomicU64,
    in_flight: Semaphore,
    lifetime: Duration,
    deletes: Option<DeleteLog>,
}

impl Shared {
    async fn lifecycle(
        &self,
        sequence: u64,
        intended: Instant,
        timer: &Timer,
        recorder: &Recorder,
        stop: &tokio_util::sync::CancellationToken,
    ) {
        let name = format!("{}-{sequence}", self.run_id);
        let object = self
            .template
            .object(&name, self.namespace.as_deref(), &self.run_id);
        let created = {
            let Some(_permit) = permit(&self.in_flight, stop).await else {
                return;
            };
            self.sent.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let result = self.api.create(&PostParams::default(), &object).await;
            recorder.record_scheduled(
                self.create,
                intended,
                started,
                Instant::now(),
                outcome::of(&result),
            );
            result.is_ok()
        };
        if !created {
            return;
        }
        self.created.fetch_add(1, Ordering::Relaxed);

        let delete_at = intended + self.lifetime;
        tokio::select! {
            () = timer.sleep_until(delete_at) => {}
            // Objects still alive at the end go with the run's namespace.
            () = stop.cancelled() => return,
        }
        let Some(_permit) = permit(&self.in_flight, stop).await else {
            return;
        };
        if let Some(deletes) = &self.deletes {
            deletes.sent(&name);
        }
        let started = Instant::now();
        let result = self.api.delete(&name, &DeleteParams::default()).await;
        recorder.record_scheduled(
            self.delete,
            delete_at,
            started,
            Instant::now(),
            outcome::of(&result),
        );
        if result.is_ok() {
            self.deleted.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A slot for one more request in flight, unless the run ends first: a
/// request that never left is not part of the run.
pub(crate) async fn permit<'a>(
    in_flight: &'a Semaphore,
    stop: &tokio_util::sync::CancellationToken,
) -> Option<tokio::sync::SemaphorePermit<'a>> {
    tokio::select! {
        biased;
        () = stop.cancelled() => None,
        permit = in_flight.acquire() => permit.ok(),
    }
}
