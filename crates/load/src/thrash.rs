//! thrash: closed-loop object thrashing. Each worker cycles create ->
//! update -> delete on objects of its own, as fast as the server answers,
//! so the offered load follows the server's speed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use measure::{Class, ClassId, Kind, Recorder};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::churn::dynamic_api;
use crate::driver::{Driver, Objects, options_of, required};
use crate::objects::{Template, stamp_patch};
use crate::watch_latency::DeleteLog;
use crate::{Context, Error, Output, outcome};

/// Options of the thrash driver.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Thrash {
    /// Concurrent workers.
    pub workers: usize,
}

impl Thrash {
    /// Creates, updates and deletes, all single-object writes.
    pub fn classes() -> Vec<Class> {
        vec![
            Class::new("create", Kind::Mutating),
            Class::new("update", Kind::Mutating),
            Class::new("delete", Kind::Mutating),
        ]
    }

    /// Validates the options.
    pub fn check(&self) -> Result<(), Error> {
        if self.workers == 0 {
            return Err(Error::Invalid("--workers must be positive".into()));
        }
        Ok(())
    }

    /// Writes `objects` until `ctx.stop` is cancelled, noting each delete
    /// in `deletes`; each worker finishes the cycle step it is in, so no
    /// object is left half-way except by a failure.
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
            update: ctx.measurement.class("update")?,
            delete: ctx.measurement.class("delete")?,
            cycles: AtomicU64::new(0),
            deletes,
        });
        let mut workers = JoinSet::new();
        for worker in 0..self.workers {
            let shared = Arc::clone(&shared);
            let recorder = ctx.measurement.recorder();
            let stop = ctx.stop.clone();
            workers.spawn(async move {
                let mut cycle = 0_u64;
                while !stop.is_cancelled() {
                    cycle += 1;
                    shared.cycle(worker, cycle, &recorder).await;
                }
            });
        }
        while workers.join_next().await.is_some() {}
        Ok(Output {
            extra: [(
                "thrash".to_owned(),
                json!({ "cycles": shared.cycles.load(Ordering::Relaxed) }),
            )]
            .into(),
            ..Output::default()
        })
    }
}

#[async_trait]
impl Driver for Thrash {
    fn name(&self) -> &str {
        "thrash"
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

struct Shared {
    api: Api<DynamicObject>,
    template: Template,
    namespace: Option<String>,
    run_id: String,
    create: ClassId,
    update: ClassId,
    delete: ClassId,
    cycles: AtomicU64,
    deletes: Option<DeleteLog>,
}

impl Shared {
    async fn cycle(&self, worker: usize, cycle: u64, recorder: &Recorder) {
        let name = format!("{}-w{worker}-{cycle}", self.run_id);
        let object = self
            .template
            .object(&name, self.namespace.as_deref(), &self.run_id);
        let started = Instant::now();
        let result = self.api.create(&PostParams::default(), &object).await;
        recorder.record(self.create, started.elapsed(), outcome::of(&result));
        if result.is_err() {
            return;
        }

        let patch = Patch::Merge(stamp_patch(cycle));
        let started = Instant::now();
        let result = self.api.patch(&name, &PatchParams::default(), &patch).await;
        recorder.record(self.update, started.elapsed(), outcome::of(&result));

        if let Some(deletes) = &self.deletes {
            deletes.sent(&name);
        }
        let started = Instant::now();
        let result = self.api.delete(&name, &DeleteParams::default()).await;
        recorder.record(self.delete, started.elapsed(), outcome::of(&result));
        if result.is_ok() {
            self.cycles.fetch_add(1, Ordering::Relaxed);
        }
    }
}
