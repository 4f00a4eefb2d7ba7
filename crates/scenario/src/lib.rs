//! Scenario files: multi-phase workloads in kube-burner's job
//! configuration, run by kstress against its embedded cluster or any other,
//! and measured per job and operation class.
//!
//! A scenario is read and checked once ([`Scenario::load`]: every problem
//! reported together, before any cluster is touched), then run as one
//! [`load::driver::Driver`] through the same lifecycle as kstress's own
//! drivers ([`ScenarioDriver`]).

pub mod config;
mod engine;
mod labels;
pub mod load;
mod ready;
pub mod source;

use std::sync::{Arc, Mutex, PoisonError};

use ::load::lifecycle::PodLatencyOptions;
use async_trait::async_trait;
use kube::Client;
use measure::Class;
use podlatency::Selection;
use serde_json::{Value, json};

pub use crate::load::{Problems, Scenario};
pub use crate::source::{BUILTINS, Builtin, Source};

/// A scenario as a driver: its jobs in order, then the clean-up it asks
/// for.
pub struct ScenarioDriver {
    scenario: Arc<Scenario>,
    /// Leave what the scenario created, whatever its `gc` settings say.
    keep: bool,
    uuid: String,
    run_id: String,
    /// What [`Driver::check_cluster`](::load::driver::Driver::check_cluster)
    /// learnt of the server's kinds, for the run to use.
    discovery: Mutex<Option<engine::Discovery>>,
}

impl ScenarioDriver {
    pub fn new(scenario: Scenario, keep: bool) -> Self {
        let uuid = uuid::Uuid::new_v4().to_string();
        let run_id = uuid::Uuid::new_v4().to_string();
        Self {
            scenario: Arc::new(scenario),
            keep,
            uuid,
            run_id,
            discovery: Mutex::new(None),
        }
    }

    /// The run's UUID, as kube-burner's `.UUID` and `kube-burner.io/uuid`.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }
}

#[async_trait]
impl ::load::driver::Driver for ScenarioDriver {
    fn name(&self) -> &str {
        &self.scenario.name
    }

    fn classes(&self) -> Vec<Class> {
        engine::classes(&self.scenario)
    }

    fn validate(&self) -> Result<(), ::load::Error> {
        Ok(())
    }

    fn options(&self) -> Value {
        json!({
            "scenario": self.scenario.source.display(),
            "uuid": self.uuid,
            "run_id": self.run_id,
            "config": self.scenario.config,
            "keep": self.keep,
        })
    }

    fn uses_objects(&self) -> bool {
        false
    }

    fn uses_namespace(&self) -> bool {
        false
    }

    fn runs_for_duration(&self) -> bool {
        false
    }

    fn pod_latency(&self) -> Option<PodLatencyOptions> {
        self.scenario.pod_latency.clone()
    }

    /// The run's pods in every namespace, grouped by the job that created
    /// them (directly or through a workload).
    fn pod_selection(&self, _ctx: &::load::Context) -> Selection {
        Selection {
            namespace: None,
            label_selector: format!("{}={}", labels::UUID, self.uuid),
            group_label: Some(labels::JOB.to_owned()),
            group: self.scenario.name.clone(),
            records: false,
        }
    }

    async fn check_cluster(&self, client: &Client, _embedded: bool) -> Result<(), ::load::Error> {
        let discovery = engine::Discovery::resolve(client, &self.scenario).await?;
        *self
            .discovery
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(discovery);
        Ok(())
    }

    async fn run(
        &self,
        ctx: &::load::Context,
        _objects: Option<&::load::driver::Objects>,
    ) -> Result<::load::Output, ::load::Error> {
        let engine = engine::Engine::new(
            ctx.client.clone(),
            Arc::clone(&self.scenario),
            self.uuid.clone(),
            self.run_id.clone(),
            ctx.measurement.clone(),
            ctx.stop.clone(),
            // The kinds resolved before the run, or resolved as they come
            // when the cluster was not checked first.
            self.discovery
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .unwrap_or_default(),
        );
        let summary = engine.run(self.keep).await?;
        // The first open-loop job's rates are the run's, as for churn.
        let open_loop = summary["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|job| job["target_rate_per_s"].is_number()));
        Ok(::load::Output {
            target_rate_per_s: open_loop.and_then(|job| job["target_rate_per_s"].as_f64()),
            achieved_rate_per_s: open_loop.and_then(|job| job["achieved_rate_per_s"].as_f64()),
            extra: [("scenario".to_owned(), summary)].into(),
            finished_early: true,
        })
    }
}
