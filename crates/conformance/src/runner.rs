//! Runs the selected scenarios side by side, each in a namespace of its own
//! that is removed (and waited for) afterwards.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use rand::Rng;
use tokio::time::Instant;

use crate::Error;
use crate::options::Options;
use crate::report::{self, Report, ScenarioResult, Status};
use crate::scenarios::{self, Ctx, Failure, Scenario};
use crate::wait::POLL;

/// Label on every namespace a scenario runs in, valued with the scenario.
pub const SCENARIO_LABEL: &str = "kstress.io/conformance";

/// Runs the scenarios `options` select against the cluster of `client`.
///
/// Scenario failures are results, not errors: the error cases are an empty
/// selection and a failure to build the report.
pub async fn run(client: Client, options: Options) -> Result<Report, Error> {
    let registry = scenarios::all();
    let (chosen, skipped): (Vec<_>, Vec<_>) = registry.iter().enumerate().partition(|(_, s)| {
        scenarios::selected(s.name, options.focus.as_ref(), options.skip.as_ref())
    });
    if chosen.is_empty() {
        return Err(Error::NothingSelected);
    }
    let measurement = report::measurement()?;
    let options = Arc::new(options);
    let notify = |result: &ScenarioResult| {
        if let Some(hook) = &options.on_result {
            (hook.0)(result);
        }
    };

    let mut results: Vec<Option<ScenarioResult>> = vec![None; registry.len()];
    for (i, scenario) in skipped {
        let result = ScenarioResult {
            name: scenario.name.into(),
            status: Status::Skipped,
            duration: Duration::ZERO,
            message: None,
            timeline: None,
        };
        notify(&result);
        results[i] = Some(result);
    }
    let mut running = futures::stream::iter(chosen)
        .map(|(i, scenario)| {
            let client = client.clone();
            let options = Arc::clone(&options);
            async move { (i, run_one(client, options, *scenario).await) }
        })
        .buffer_unordered(options.parallel.max(1));
    while let Some((i, result)) = running.next().await {
        report::record(&measurement, &result)?;
        notify(&result);
        results[i] = Some(result);
    }
    Report::new(
        &options,
        results.into_iter().flatten().collect(),
        &measurement,
    )
}

async fn run_one(client: Client, options: Arc<Options>, scenario: Scenario) -> ScenarioResult {
    let started = Instant::now();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = namespace_name(scenario.name);
    tracing::info!(scenario = scenario.name, %namespace, "starting");
    let cleanup = options.timeouts.cleanup;
    let outcome = match create_namespace(&namespaces, &namespace, scenario.name).await {
        Ok(()) => {
            let ctx = Ctx {
                client,
                namespace: namespace.clone(),
                options,
            };
            let outcome = (scenario.run)(ctx).await;
            let removed = delete_namespace(&namespaces, &namespace, cleanup).await;
            outcome.and(removed)
        }
        Err(failure) => Err(failure),
    };
    let (status, message, timeline) = match outcome {
        Ok(()) => (Status::Passed, None, None),
        Err(Failure { message, timeline }) => (Status::Failed, Some(message), timeline),
    };
    ScenarioResult {
        name: scenario.name.into(),
        status,
        duration: started.elapsed(),
        message,
        timeline,
    }
}

/// `conformance-<group>-<name>-<5 random characters>`.
fn namespace_name(scenario: &str) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect();
    format!("conformance-{}-{suffix}", scenario.replace('/', "-"))
}

async fn create_namespace(api: &Api<Namespace>, name: &str, scenario: &str) -> Result<(), Failure> {
    let labels = BTreeMap::from([
        (SCENARIO_LABEL.to_owned(), scenario.replace('/', ".")),
        // The scenarios use exec hooks and probes that a restricted
        // policy would refuse.
        (
            "pod-security.kubernetes.io/enforce".to_owned(),
            "privileged".to_owned(),
        ),
    ]);
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    api.create(&PostParams::default(), &namespace)
        .await
        .map(drop)
        .map_err(|e| Failure::api(&format!("create namespace {name}"), e))
}

/// Deletes the namespace and waits until the API no longer has it.
async fn delete_namespace(
    api: &Api<Namespace>,
    name: &str,
    timeout: Duration,
) -> Result<(), Failure> {
    let is_gone = |err: &kube::Error| matches!(err, kube::Error::Api(s) if s.code == 404);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(err) if is_gone(&err) => return Ok(()),
        Err(err) => return Err(Failure::api(&format!("delete namespace {name}"), err)),
    }
    let deadline = Instant::now() + timeout;
    loop {
        match api.get(name).await {
            Err(err) if is_gone(&err) => return Ok(()),
            Err(err) => return Err(Failure::api(&format!("get namespace {name}"), err)),
            Ok(_) if Instant::now() >= deadline => {
                return Err(Failure::new(format!(
                    "namespace {name} still exists {timeout:?} after its deletion"
                )));
            }
            Ok(_) => tokio::time::sleep(POLL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_unique_dns_labels() {
        for scenario in scenarios::all() {
            let name = namespace_name(scenario.name);
            assert!(name.len() <= 63, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
            assert!(
                name.starts_with("conformance-") && !name.ends_with('-'),
                "{name}"
            );
            assert_ne!(name, namespace_name(scenario.name));
        }
    }
}
