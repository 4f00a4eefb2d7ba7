//! `/readyz` and `/livez` of `kstress serve` on etcd, read with kubectl as
//! an operator would: they fail while etcd is down and recover with it.

use std::path::Path;
use std::process::{Output, Stdio};

use store::etcd_server::TestEtcd;
use testkit::{Serve, wait_until};
use tokio::process::Command;

const KSTRESS: &str = env!("CARGO_BIN_EXE_kstress");

async fn raw(kubeconfig: &Path, path: &str) -> Output {
    tokio::time::timeout(
        testkit::WAIT,
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["get", "--raw", path])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("kubectl get --raw {path} answers in time"))
    .expect("kubectl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_while_etcd_is_down_and_recovers_with_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut etcd = TestEtcd::start().await;
    let serve = Serve::start_in(
        KSTRESS,
        dir.path(),
        &["--etcd-servers".into(), etcd.endpoint()],
    )
    .await;
    let kubeconfig = serve.kubeconfig();

    let ready = raw(kubeconfig, "/readyz?verbose").await;
    assert!(ready.status.success(), "{}", text(&ready.stderr));
    assert_eq!(
        text(&ready.stdout),
        "[+]ping ok\n[+]etcd ok\nreadyz check passed\n"
    );
    let ready = raw(kubeconfig, "/readyz").await;
    assert_eq!(text(&ready.stdout), "ok");

    etcd.kill();
    for endpoint in ["/readyz", "/livez?verbose", "/healthz"] {
        let down = raw(kubeconfig, endpoint).await;
        let stderr = text(&down.stderr);
        assert!(!down.status.success(), "{endpoint} passed without etcd");
        let name = endpoint
            .trim_start_matches('/')
            .split('?')
            .next()
            .unwrap_or_default();
        assert!(
            stderr.contains("(InternalError)")
                && stderr.contains(r"[+]ping ok\n[-]etcd failed: reason withheld\n")
                && stderr.contains(&format!("{name} check failed")),
            "{endpoint}: {stderr}"
        );
    }
    let alone = raw(kubeconfig, "/readyz/etcd").await;
    assert!(!alone.status.success(), "/readyz/etcd passed without etcd");
    assert!(
        text(&alone.stderr).contains("internal server error: "),
        "{}",
        text(&alone.stderr)
    );

    etcd.restart().await;
    wait_until("/readyz to pass once etcd is back", || async {
        let ready = raw(kubeconfig, "/readyz").await;
        (ready.status.success() && ready.stdout == b"ok").then_some(())
    })
    .await;
    serve.kill().await;
}
