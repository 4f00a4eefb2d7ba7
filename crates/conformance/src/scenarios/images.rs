//! Image pulls as the API shows them: pull policies decide whether a node
//! pulls (one `Pulling` event per pull), and failed pulls back off
//! (`ErrImagePull`, then `ImagePullBackOff`, retries further and further
//! apart).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use super::{Ctx, Failure, Scenario};
use crate::pods::short_lived_pod;
use crate::wait::{
    EventLog, container_status, count_events, create_pod, phase, wait_for_events, wait_for_pod,
    waiting_reason,
};

/// The container of every image scenario pod.
const CONTAINER: &str = "main";
const PULLING: &str = "Pulling";
const PULLED: &str = "Pulled";
const BACK_OFF: &str = "BackOff";
const ERR_IMAGE_PULL: &str = "ErrImagePull";
const IMAGE_PULL_BACK_OFF: &str = "ImagePullBackOff";
const ERR_IMAGE_NEVER_PULL: &str = "ErrImageNeverPull";

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "image-pull/never-missing",
            description: "pull policy Never with a missing image gives ErrImageNeverPull",
            run: |ctx| Box::pin(never_missing(ctx)),
        },
        Scenario {
            name: "image-pull/backoff",
            description: "an unpullable image gives ErrImagePull, then ImagePullBackOff, \
                          with retries at growing intervals",
            run: |ctx| Box::pin(backoff(ctx)),
        },
        Scenario {
            name: "image-pull/if-not-present",
            description: "pull policy IfNotPresent does not pull an image the node has",
            run: |ctx| Box::pin(if_not_present(ctx)),
        },
        Scenario {
            name: "image-pull/always",
            description: "pull policy Always pulls at each container start",
            run: |ctx| Box::pin(always(ctx)),
        },
    ]
}

/// Waits until the container waits for `reason`; the pod must stay Pending.
async fn wait_for_waiting_reason(ctx: &Ctx, pod: &str, reason: &str) -> Result<Pod, Failure> {
    wait_for_pod(
        &ctx.pods(),
        pod,
        &format!("report {reason}"),
        ctx.options.timeouts.image_pull,
        |pod| pending_and(pod, |r| r == Some(reason)),
    )
    .await
}

/// `Ok(done(waiting reason))` while the pod is Pending, an error otherwise.
fn pending_and(pod: &Pod, done: impl FnOnce(Option<&str>) -> bool) -> Result<bool, String> {
    match phase(pod) {
        None | Some("Pending") => Ok(done(
            container_status(pod, CONTAINER).and_then(waiting_reason),
        )),
        Some(other) => Err(format!(
            "the pod must stay Pending without its image, but it is {other}"
        )),
    }
}

/// Fails when a pod that must not pull has `Pulling` events.
async fn no_pulls(ctx: &Ctx, pod: &str) -> Result<(), Failure> {
    match count_events(&ctx.events(), pod, PULLING).await? {
        0 => Ok(()),
        n => Err(Failure::new(format!(
            "pod {pod} must not pull its image, but has {n} {PULLING:?} events"
        ))),
    }
}

async fn never_missing(ctx: Ctx) -> Result<(), Failure> {
    let name = "never-pull-missing";
    let pod = short_lived_pod(name, &ctx.options.bad_image, "Never", "Never");
    create_pod(&ctx.pods(), &pod, ctx.options.timeouts.image_pull).await?;
    wait_for_waiting_reason(&ctx, name, ERR_IMAGE_NEVER_PULL).await?;
    let events = ctx.options.timeouts.events;
    wait_for_events(&ctx.events(), name, ERR_IMAGE_NEVER_PULL, 1, events).await?;
    no_pulls(&ctx, name).await
}

async fn backoff(ctx: Ctx) -> Result<(), Failure> {
    let name = "pull-backoff";
    let timeouts = ctx.options.timeouts;
    let log = EventLog::start(ctx.events(), name);
    let pod = short_lived_pod(name, &ctx.options.bad_image, "IfNotPresent", "Never");
    create_pod(&ctx.pods(), &pod, timeouts.image_pull).await?;
    let mut pull_failed = false;
    wait_for_pod(
        &ctx.pods(),
        name,
        &format!("report {ERR_IMAGE_PULL}, then {IMAGE_PULL_BACK_OFF}"),
        timeouts.image_pull,
        |pod| {
            pending_and(pod, |reason| {
                pull_failed |= reason == Some(ERR_IMAGE_PULL);
                pull_failed && reason == Some(IMAGE_PULL_BACK_OFF)
            })
        },
    )
    .await?;
    log.wait_for(BACK_OFF, 1, timeouts.events).await?;
    let pulls = log.wait_for(PULLING, 3, timeouts.image_pull).await?;
    let gaps: Vec<Duration> = pulls[..3].windows(2).map(|w| w[1] - w[0]).collect();
    growing(&gaps).map_err(Failure::new)
}

/// Each gap between pull attempts must be longer than the one before.
fn growing(gaps: &[Duration]) -> Result<(), String> {
    match gaps.windows(2).find(|w| w[1] <= w[0]) {
        None => Ok(()),
        Some(w) => Err(format!(
            "pull attempts must back off further each time, but came {:?} and then {:?} apart",
            w[0], w[1]
        )),
    }
}

async fn if_not_present(ctx: Ctx) -> Result<(), Failure> {
    let image = &ctx.options.image;
    let timeouts = ctx.options.timeouts;
    let succeeded = |pod: &Pod| match phase(pod) {
        Some("Succeeded") => Ok(true),
        Some("Failed") => Err("the pod failed".to_owned()),
        _ => Ok(false),
    };

    // A first pod puts the image on some node ...
    let warm = short_lived_pod("warm-image", image, "IfNotPresent", "Never");
    create_pod(&ctx.pods(), &warm, timeouts.pod_finish).await?;
    let warm = wait_for_pod(
        &ctx.pods(),
        "warm-image",
        "succeed",
        timeouts.pod_finish,
        succeeded,
    )
    .await?;
    let node = warm
        .spec
        .and_then(|s| s.node_name)
        .ok_or_else(|| Failure::new("pod warm-image succeeded without a node"))?;

    // ... where a second one must find it.
    let name = "image-present";
    let mut pod = short_lived_pod(name, image, "IfNotPresent", "Never");
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_name = Some(node);
    }
    create_pod(&ctx.pods(), &pod, timeouts.pod_finish).await?;
    wait_for_pod(&ctx.pods(), name, "succeed", timeouts.pod_finish, succeeded).await?;
    wait_for_events(&ctx.events(), name, PULLED, 1, timeouts.events).await?;
    no_pulls(&ctx, name).await
}

async fn always(ctx: Ctx) -> Result<(), Failure> {
    let name = "always-pull";
    let timeouts = ctx.options.timeouts;
    let pod = short_lived_pod(name, &ctx.options.image, "Always", "Always");
    create_pod(&ctx.pods(), &pod, timeouts.pod_finish).await?;
    let pod = wait_for_pod(
        &ctx.pods(),
        name,
        "restart its container twice",
        timeouts.restarts,
        |pod| Ok(container_status(pod, CONTAINER).is_some_and(|s| s.restart_count >= 2)),
    )
    .await?;
    let restarts = container_status(&pod, CONTAINER).map_or(0, |s| s.restart_count);
    let starts = u64::try_from(restarts).unwrap_or(0) + 1;
    wait_for_events(&ctx.events(), name, PULLING, starts, timeouts.events).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(gaps: &[f64]) -> Vec<Duration> {
        gaps.iter().map(|s| Duration::from_secs_f64(*s)).collect()
    }

    #[test]
    fn growing_gaps_pass() {
        assert!(growing(&secs(&[1.0, 2.1])).is_ok());
        assert!(growing(&secs(&[10.0, 20.0, 40.0])).is_ok());
    }

    #[test]
    fn steady_or_shrinking_gaps_fail() {
        let err = growing(&secs(&[1.0, 1.0])).unwrap_err();
        assert!(err.contains("1s and then 1s apart"), "{err}");
        assert!(growing(&secs(&[2.0, 1.0])).is_err());
        assert!(growing(&secs(&[1.0, 2.0, 1.5])).is_err());
    }

    #[test]
    fn pods_that_leave_pending_fail_the_image_waits() {
        let pod = |phase: &str| Pod {
            status: Some(k8s_openapi::api::core::v1::PodStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
            ..Pod::default()
        };
        assert_eq!(pending_and(&pod("Pending"), |r| r.is_none()), Ok(true));
        assert_eq!(pending_and(&pod("Pending"), |r| r.is_some()), Ok(false));
        assert!(pending_and(&pod("Running"), |_| true).is_err());
    }
}
