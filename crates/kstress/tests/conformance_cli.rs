//! `kstress conformance node` as a user runs it: the built binary on its
//! embedded cluster and on a separate `kstress serve`.

use std::process::Stdio;

use testkit::{Serve, WAIT};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const KSTRESS: &str = env!("CARGO_BIN_EXE_kstress");

/// Sends SIGTERM to `kstress conformance node <target>` while a scenario
/// runs; returns its stderr once it has ended with status 1.
async fn stderr_after_sigterm(target: &[&str]) -> String {
    // Side by side, one scenario passes in about a second while the other
    // runs for half a minute, so the signal arrives while that one runs.
    let mut child = Command::new(KSTRESS)
        .args([
            "conformance",
            "node",
            "--parallel",
            "2",
            "--focus",
            "^(image-pull/never-missing|lifecycle/restart-always)$",
        ])
        .args(target)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kstress conformance node starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    // SKIP lines for the scenarios not chosen come first.
    let first = tokio::time::timeout(WAIT, async {
        loop {
            let line = lines.next_line().await.expect("stdout").expect("a line");
            if !line.starts_with("SKIP ") {
                return line;
            }
        }
    })
    .await
    .expect("a scenario result within the bound");
    assert!(
        first.starts_with("PASS image-pull/never-missing"),
        "{first}"
    );
    let pid = rustix::process::Pid::from_raw(
        i32::try_from(child.id().expect("still running")).expect("pid"),
    )
    .expect("a valid pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM sent");
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("conformance ends after SIGTERM")
        .expect("exit status");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    stderr
}

#[tokio::test]
async fn sigterm_stops_conformance_like_ctrl_c() {
    let stderr = stderr_after_sigterm(&[]).await;
    assert!(stderr.contains("interrupted (SIGTERM)"), "{stderr}");
    // The embedded cluster is gone with the process: nothing to clean up.
    assert!(!stderr.contains("kubectl"), "{stderr}");
}

#[tokio::test]
async fn an_interrupted_run_on_a_real_cluster_names_the_leftovers_label() {
    let serve = Serve::start(KSTRESS, &["--runtime".into(), "process".into()]).await;
    let kubeconfig = serve.kubeconfig().to_str().expect("UTF-8 path").to_owned();
    let stderr = stderr_after_sigterm(&["--kubeconfig", &kubeconfig, "--yes"]).await;
    assert!(
        stderr.contains(
            "interrupted (SIGTERM); remove leftover namespaces with `kubectl delete \
             namespace -l kstress.io/conformance`"
        ),
        "{stderr}"
    );
    drop(serve);
}

#[tokio::test]
async fn the_sim_runtime_is_refused_before_anything_starts() {
    let output = tokio::time::timeout(
        WAIT,
        Command::new(KSTRESS)
            .args(["conformance", "node", "--runtime", "sim"])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("kstress conformance node refuses at once")
    .expect("exit status");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stdout}{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "error: --runtime sim cannot run the node conformance scenarios: they need containers \
         that really run their commands (--runtime process, the default)"
    );
    assert!(stdout.is_empty(), "no scenario ran: {stdout}");
}

/// The bounds on the scenarios' waits are printed before they start and
/// are set by flags: a restart bound far too short for a crash loop fails
/// that scenario at once, naming the bound it hit.
#[tokio::test]
async fn wait_bounds_are_shown_and_honoured() {
    let output = tokio::time::timeout(
        WAIT,
        Command::new(KSTRESS)
            .args([
                "conformance",
                "node",
                "--focus",
                "^lifecycle/restart-always$",
                "--restart-timeout",
                "1s",
            ])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the scenario ends within the bound")
    .expect("exit status");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(
            "waits are bounded: pods 60s (--pod-timeout), restarts 1s (--restart-timeout), \
             image pulls 300s (--image-pull-timeout), events 30s (--event-timeout), \
             clean-up 120s (--cleanup-timeout)"
        ),
        "{stderr}"
    );
    let failed = stdout
        .lines()
        .find(|l| l.starts_with("FAIL lifecycle/restart-always"))
        .unwrap_or_else(|| panic!("the scenario fails: {stdout}"));
    assert!(failed.contains("timed out after 1s"), "{stdout}");
}
