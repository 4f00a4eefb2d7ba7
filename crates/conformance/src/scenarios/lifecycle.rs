//! Container lifecycle: init containers run one at a time and must succeed,
//! PostStart hooks finish before the next container starts, restartPolicy
//! Always restarts failing containers, and a bad init image starts nothing.

use k8s_openapi::api::core::v1::Pod;

use super::{Ctx, Failure, Scenario, timeline_of, verify};
use crate::pods::{
    Script, lifecycle_pod, logging_container, post_start_name, with_post_start, with_started_probe,
};
use crate::wait::{container_status, create_pod, phase, wait_for_pod, waiting_reason};

const INIT_1: &str = "init-1";
const INIT_2: &str = "init-2";
const INIT_3: &str = "init-3";
const REGULAR_1: &str = "regular-1";
const REGULAR_2: &str = "regular-2";
const BAD_INIT: &str = "init1-1";

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "lifecycle/init-serial",
            description: "init containers run one at a time, before the regular container",
            run: |ctx| Box::pin(init_serial(ctx)),
        },
        Scenario {
            name: "lifecycle/init-failure",
            description: "a failing init container fails the pod; regular containers never start",
            run: |ctx| Box::pin(init_failure(ctx)),
        },
        Scenario {
            name: "lifecycle/init-before-post-start",
            description: "init containers complete before a PostStart hook runs",
            run: |ctx| Box::pin(init_before_post_start(ctx)),
        },
        Scenario {
            name: "lifecycle/restart-always",
            description: "restartPolicy Always restarts a failing container",
            run: |ctx| Box::pin(restart_always(ctx)),
        },
        Scenario {
            name: "lifecycle/post-start-blocks-next",
            description: "the next container starts only after the PostStart hook completed",
            run: |ctx| Box::pin(post_start_blocks_next(ctx)),
        },
        Scenario {
            name: "lifecycle/bad-image-init",
            description: "an init container with an unpullable image starts nothing",
            run: |ctx| Box::pin(bad_image_init(ctx)),
        },
    ]
}

fn script(delay: u32, exit_code: i32) -> Script {
    Script {
        start_delay: 0,
        delay,
        exit_code,
    }
}

/// Creates `pod` and waits until its phase is Succeeded or Failed.
async fn run_to_end(ctx: &Ctx, pod: Pod) -> Result<Pod, Failure> {
    let api = ctx.pods();
    let created = create_pod(&api, &pod, ctx.options.timeouts.pod_finish).await?;
    let name = created.metadata.name.unwrap_or_default();
    wait_for_pod(
        &api,
        &name,
        "finish",
        ctx.options.timeouts.pod_finish,
        |pod| Ok(matches!(phase(pod), Some("Succeeded" | "Failed"))),
    )
    .await
}

async fn init_serial(ctx: Ctx) -> Result<(), Failure> {
    let image = &ctx.options.image;
    let inits = [INIT_1, INIT_2, INIT_3]
        .map(|name| logging_container(name, image, script(1, 0)))
        .to_vec();
    let regular = with_started_probe(logging_container(
        REGULAR_1,
        image,
        Script {
            start_delay: 5,
            delay: 1,
            exit_code: 0,
        },
    ));
    let pod = lifecycle_pod("initcontainer-test-pod", "Never", inits, vec![regular]);
    let pod = run_to_end(&ctx, pod).await?;
    verify(timeline_of(&pod)?, |t| {
        t.starts_before(INIT_1, INIT_2)?;
        t.exits_before(INIT_1, INIT_2)?;
        t.starts_before(INIT_2, INIT_3)?;
        t.exits_before(INIT_2, INIT_3)?;
        t.starts_before(INIT_3, REGULAR_1)?;
        t.exits_before(INIT_3, REGULAR_1)
    })
}

async fn init_failure(ctx: Ctx) -> Result<(), Failure> {
    let image = &ctx.options.image;
    let pod = lifecycle_pod(
        "initcontainer-test-pod-failure",
        "Never",
        vec![logging_container(INIT_1, image, script(1, 1))],
        vec![logging_container(REGULAR_1, image, script(1, 0))],
    );
    let api = ctx.pods();
    create_pod(&api, &pod, ctx.options.timeouts.pod_finish).await?;
    let pod = wait_for_pod(
        &api,
        "initcontainer-test-pod-failure",
        "fail",
        ctx.options.timeouts.pod_finish,
        |pod| match phase(pod) {
            Some("Failed") => Ok(true),
            Some("Succeeded") => Err("the pod succeeded, but its init container failed".into()),
            _ => Ok(false),
        },
    )
    .await?;
    verify(timeline_of(&pod)?, |t| {
        t.starts(INIT_1)?;
        t.exits(INIT_1)?;
        t.doesnt_start(REGULAR_1)
    })
}

async fn init_before_post_start(ctx: Ctx) -> Result<(), Failure> {
    let image = &ctx.options.image;
    let regular = with_post_start(
        logging_container(REGULAR_1, image, script(2, 0)),
        script(1, 0),
    );
    let pod = lifecycle_pod(
        "initcontainer-test-pod-with-post-start",
        "Never",
        vec![logging_container(INIT_1, image, script(1, 0))],
        vec![regular],
    );
    let pod = run_to_end(&ctx, pod).await?;
    let hook = post_start_name(REGULAR_1);
    verify(timeline_of(&pod)?, |t| {
        t.starts_before(INIT_1, &hook)?;
        t.exits_before(INIT_1, &hook)?;
        t.run_together(REGULAR_1, &hook)
    })
}

async fn restart_always(ctx: Ctx) -> Result<(), Failure> {
    let pod = lifecycle_pod(
        "container-must-be-restarted",
        "Always",
        Vec::new(),
        vec![logging_container(
            REGULAR_1,
            &ctx.options.image,
            script(1, 1),
        )],
    );
    let api = ctx.pods();
    create_pod(&api, &pod, ctx.options.timeouts.pod_finish).await?;
    let pod = wait_for_pod(
        &api,
        "container-must-be-restarted",
        "restart its container 3 times",
        ctx.options.timeouts.restarts,
        |pod| Ok(container_status(pod, REGULAR_1).is_some_and(|s| s.restart_count >= 3)),
    )
    .await?;
    verify(timeline_of(&pod)?, |t| {
        t.starts(REGULAR_1)?;
        t.has_restarted(REGULAR_1)?;
        t.starts_before(REGULAR_1, REGULAR_1)?;
        t.exits_before(REGULAR_1, REGULAR_1)
    })
}

async fn post_start_blocks_next(ctx: Ctx) -> Result<(), Failure> {
    let image = &ctx.options.image;
    let first = with_post_start(
        logging_container(REGULAR_1, image, script(2, 0)),
        script(1, 0),
    );
    let second = logging_container(REGULAR_2, image, script(1, 0));
    let pod = lifecycle_pod(
        "post-start-blocks-second-container",
        "Never",
        Vec::new(),
        vec![first, second],
    );
    let pod = run_to_end(&ctx, pod).await?;
    let hook = post_start_name(REGULAR_1);
    verify(timeline_of(&pod)?, |t| {
        t.starts_before(&hook, REGULAR_2)?;
        t.exits_before(&hook, REGULAR_2)
    })
}

async fn bad_image_init(ctx: Ctx) -> Result<(), Failure> {
    let options = &ctx.options;
    let pod = lifecycle_pod(
        "sidecar-runs-with-pod",
        "Never",
        vec![logging_container(
            BAD_INIT,
            &options.bad_image,
            script(600, 0),
        )],
        vec![logging_container(REGULAR_1, &options.image, script(1, 0))],
    );
    let api = ctx.pods();
    create_pod(&api, &pod, options.timeouts.image_pull).await?;
    let pod = wait_for_pod(
        &api,
        "sidecar-runs-with-pod",
        "report ImagePullBackOff for its init container",
        options.timeouts.image_pull,
        |pod| match phase(pod) {
            None | Some("Pending") => Ok(container_status(pod, BAD_INIT).and_then(waiting_reason)
                == Some("ImagePullBackOff")),
            Some(other) => Err(format!("the pod must stay Pending, but it is {other}")),
        },
    )
    .await?;
    verify(timeline_of(&pod)?, |t| {
        t.doesnt_start(BAD_INIT)?;
        t.doesnt_start(REGULAR_1)
    })
}
