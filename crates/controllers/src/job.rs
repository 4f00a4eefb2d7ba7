//! The Job controller: runs pods until `completions` of them succeed (in
//! Indexed mode, one per completion index), at most `parallelism` at a
//! time, and fails the Job once more than `backoffLimit` pods failed or
//! `activeDeadlineSeconds` passed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use crate::util::patch_status;
use crate::workload::{
    OwnerContext, cache_state, owner_reference, pod_from_template, pod_is_active, ready_since,
};

/// The annotation and label that carry an Indexed Job pod's index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
const LEGACY_JOB_NAME_LABEL: &str = "job-name";

/// Runs the Job's pods to completion and reports them in its status;
/// driven by [`run_owner_controller`](crate::workload::run_owner_controller).
pub async fn reconcile(job: Arc<Job>, ctx: Arc<OwnerContext>) -> Result<Action, kube::Error> {
    if job.metadata.deletion_timestamp.is_some() || finished(&job) {
        return Ok(Action::await_change());
    }
    ctx.pods.wait_until_ready().await;
    let namespace = job.namespace().unwrap_or_default();
    let uid = job.uid().unwrap_or_default();
    let spec = job.spec.clone().unwrap_or_default();
    let previous = job.status.clone().unwrap_or_default();
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let in_flight = ctx
        .expectations
        .in_flight(&uid, |name| cache_state(&ctx.pods.store, &namespace, name));
    let pods = ctx.pods.owned_by(&uid);
    let phase = |p: &Pod| p.status.as_ref().and_then(|s| s.phase.clone());
    let active: Vec<&Arc<Pod>> = pods
        .iter()
        .filter(|p| pod_is_active(p) && !in_flight.deleting.contains(&p.name_any()))
        .collect();
    let failed = count(
        pods.iter()
            .filter(|p| phase(p).as_deref() == Some("Failed"))
            .count(),
    );
    let succeeded_pods = pods
        .iter()
        .filter(|p| phase(p).as_deref() == Some("Succeeded"));
    let completions = spec.completions;
    let completed_indexes: BTreeSet<i32> = if indexed {
        succeeded_pods
            .clone()
            .filter_map(|p| completion_index(p))
            .filter(|i| completions.is_none_or(|c| *i < c))
            .collect()
    } else {
        BTreeSet::new()
    };
    let succeeded = if indexed {
        count(completed_indexes.len())
    } else {
        count(succeeded_pods.count())
    };
    let now = jiff::Timestamp::now();
    let start_time = previous
        .start_time
        .clone()
        .or_else(|| (!spec.suspend.unwrap_or(false)).then_some(Time(now)));
    let deadline_passed = spec
        .active_deadline_seconds
        .zip(start_time.as_ref())
        .is_some_and(|(secs, start)| {
            start
                .0
                .checked_add(jiff::SignedDuration::from_secs(secs))
                .is_ok_and(|end| end <= now)
        });
    let complete = if indexed {
        completions.is_some_and(|c| succeeded >= c)
    } else {
        match completions {
            Some(c) => succeeded >= c,
            None => succeeded > 0 && active.is_empty(),
        }
    };
    let mut conditions = previous.conditions.clone().unwrap_or_default();
    let mut completion_time = previous.completion_time.clone();
    let outcome = if failed > spec.backoff_limit.unwrap_or(6) {
        Some((
            "Failed",
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ))
    } else if deadline_passed && !complete {
        Some((
            "Failed",
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        ))
    } else if complete {
        Some((
            "Complete",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
        ))
    } else {
        None
    };
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let result;
    let mut requeue = None;
    if let Some((type_, reason, message)) = outcome {
        result = ctx.delete_pods(&api, &uid, &active).await;
        if type_ == "Complete" {
            completion_time = Some(Time(now));
        }
        conditions.push(JobCondition {
            type_: type_.to_string(),
            status: "True".to_string(),
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            last_probe_time: Some(Time(now)),
            last_transition_time: Some(Time(now)),
        });
    } else if spec.suspend.unwrap_or(false) {
        result = ctx.delete_pods(&api, &uid, &active).await;
    } else {
        let parallelism = spec.parallelism.unwrap_or(1).max(0);
        let running = count(active.len() + in_flight.creating.len());
        let missing: Vec<Option<i32>> = if indexed {
            let mut taken = completed_indexes.clone();
            taken.extend(active.iter().filter_map(|p| completion_index(p)));
            taken.extend(
                in_flight
                    .creating
                    .iter()
                    .filter_map(|n| index_from_name(&job.name_any(), n)),
            );
            (0..completions.unwrap_or(0))
                .filter(|i| !taken.contains(i))
                .take(usize::try_from(parallelism - running).unwrap_or(0))
                .map(Some)
                .collect()
        } else {
            let remaining = match completions {
                Some(c) => (c - succeeded).max(0),
                None if succeeded > 0 => 0,
                None => parallelism,
            };
            vec![None; usize::try_from(parallelism.min(remaining) - running).unwrap_or(0)]
        };
        result = ctx
            .create_pods(&api, &uid, missing.len(), |i| job_pod(&job, missing[i]))
            .await;
        if let Some(secs) = spec.active_deadline_seconds {
            requeue = Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)));
        }
    }
    let status = JobStatus {
        active: Some(count(active.len())),
        succeeded: Some(succeeded),
        failed: Some(failed),
        ready: Some(count(
            active.iter().filter(|p| ready_since(p).is_some()).count(),
        )),
        terminating: Some(count(
            pods.iter()
                .filter(|p| {
                    p.metadata.deletion_timestamp.is_some() && !crate::util::pod_is_terminal(p)
                })
                .count(),
        )),
        start_time,
        completion_time,
        completed_indexes: indexed.then(|| compress(&completed_indexes)),
        conditions: (!conditions.is_empty()).then_some(conditions),
        ..previous.clone()
    };
    if status != previous && !patch_status(&ctx.client, job.as_ref(), &status).await? {
        return Ok(Action::await_change());
    }
    result?;
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

fn finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

/// A pod of the Job; in Indexed mode it carries its index as annotation,
/// label and `JOB_COMPLETION_INDEX`, and `<job>-<index>` as hostname.
fn job_pod(job: &Job, index: Option<i32>) -> Pod {
    let name = job.name_any();
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let generate_name = match index {
        Some(i) => format!("{name}-{i}-"),
        None => format!("{name}-"),
    };
    let mut pod = pod_from_template(&template, owner_reference(job), generate_name);
    let labels = pod.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(JOB_NAME_LABEL.to_string(), name.clone());
    labels.insert(LEGACY_JOB_NAME_LABEL.to_string(), name.clone());
    let Some(i) = index else {
        return pod;
    };
    labels.insert(COMPLETION_INDEX.to_string(), i.to_string());
    pod.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(COMPLETION_INDEX.to_string(), i.to_string());
    if let Some(spec) = pod.spec.as_mut() {
        if spec.hostname.as_deref().is_none_or(str::is_empty) {
            spec.hostname = Some(format!("{name}-{i}"));
        }
        let env = EnvVar {
            name: "JOB_COMPLETION_INDEX".to_string(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
                }),
                ..EnvVarSource::default()
            }),
        };
        for container in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            container.env.get_or_insert_with(Vec::new).push(env.clone());
        }
    }
    pod
}

fn completion_index(pod: &Pod) -> Option<i32> {
    pod.annotations().get(COMPLETION_INDEX)?.parse().ok()
}

/// The index in a pod name `<job>-<index>-<suffix>`.
fn index_from_name(job: &str, pod: &str) -> Option<i32> {
    pod.strip_prefix(job)?
        .strip_prefix('-')?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Indexes as ranges, e.g. `0-2,5,7-8`.
fn compress(indexes: &BTreeSet<i32>) -> String {
    let mut ranges: Vec<(i32, i32)> = Vec::new();
    for &i in indexes {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == i => *end = i,
            _ => ranges.push((i, i)),
        }
    }
    ranges
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_indexes_are_compressed_into_ranges() {
        assert_eq!(compress(&BTreeSet::from([0, 1, 2, 5, 7, 8])), "0-2,5,7-8");
        assert_eq!(compress(&BTreeSet::new()), "");
    }

    #[test]
    fn indexes_are_read_back_from_generated_names() {
        assert_eq!(index_from_name("work", "work-3-x7k2p"), Some(3));
        assert_eq!(index_from_name("work", "other-3-x7k2p"), None);
    }
}
