//! Test harness shared by kstress's integration tests: an embedded API
//! server on loopback, kube-rs clients for it, `kstress serve` child
//! processes, and bounded waits.
//!
//! Every wait here is bounded, so that a test on a busy machine fails with
//! a message naming what it waited for instead of hanging.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use apiserver::{Server, ServerConfig};
use kube::Client;
use store::{MemoryStore, MemoryStoreOptions, Store};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Generous bound for anything a test waits for on a busy machine.
pub const WAIT: Duration = Duration::from_secs(60);

/// A kube-rs client from a kubeconfig's text. Tests look at each answer of
/// the server, so kube-rs must not retry 429, 503 and 504 on its own.
pub async fn client_for(kubeconfig: &str) -> Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(kubeconfig).expect("kubeconfig parses");
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("kubeconfig is complete");
    config.default_retry = false;
    Client::try_from(config).expect("client builds")
}

/// Starts an API server on `store` and returns it with an admin client.
/// The default [`ServerConfig`] listens on a free loopback port, so tests
/// can run in parallel.
pub async fn start_server(store: Arc<dyn Store>, config: ServerConfig) -> (Server, Client) {
    let server = Server::start(store, config)
        .await
        .expect("the API server starts");
    let client = client_for(&server.kubeconfig()).await;
    (server, client)
}

/// [`start_server`] with the default configuration on an empty memory
/// store: what tests of the components behind the API server need.
pub async fn start_memory_server() -> (Server, Client) {
    let store = Arc::new(MemoryStore::new(MemoryStoreOptions::default()));
    start_server(store, ServerConfig::default()).await
}

/// Retries `check` until it returns `Some`, failing after [`WAIT`] with
/// `what` in the message.
pub async fn wait_until<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_until_within(WAIT, what, check).await
}

/// [`wait_until`] with its own bound, for suites that expect answers
/// sooner than [`WAIT`].
pub async fn wait_until_within<T, F, Fut>(bound: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {bound:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A loopback port nothing listens on, for tests of unreachable servers.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `kstress serve` child process on a free loopback port, killed when
/// dropped, and the kubeconfig it wrote.
pub struct Serve {
    child: Child,
    kubeconfig: PathBuf,
    /// The directory of the kubeconfig, when the process owns it.
    _dir: Option<tempfile::TempDir>,
}

impl Serve {
    /// Starts `binary serve` with `args` and its kubeconfig in a temporary
    /// directory of its own. `binary` is the built kstress, which only its
    /// own crate's tests know (`env!("CARGO_BIN_EXE_kstress")`). Returns
    /// once it listens, as [`Serve::start_in`] does.
    pub async fn start(binary: impl AsRef<Path>, args: &[String]) -> Serve {
        Self::start_on(binary, "127.0.0.1:0", args).await
    }

    /// [`Serve::start`] on `listen` instead of a free loopback port.
    pub async fn start_on(binary: impl AsRef<Path>, listen: &str, args: &[String]) -> Serve {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().to_owned();
        Self::spawn(binary.as_ref(), &path, listen, args, Some(dir)).await
    }

    /// Starts `binary serve` with `args` and its kubeconfig in `dir`, and
    /// waits until it listens, by which time the kubeconfig is written. A
    /// kubeconfig left there by an earlier process is removed first, so a
    /// restarted server is never reached through a stale one.
    pub async fn start_in(binary: impl AsRef<Path>, dir: &Path, args: &[String]) -> Serve {
        Self::spawn(binary.as_ref(), dir, "127.0.0.1:0", args, None).await
    }

    /// What [`Serve::start`] and [`Serve::start_in`] share; `owned` is the
    /// temporary directory the process keeps until it is dropped.
    async fn spawn(
        binary: &Path,
        dir: &Path,
        listen: &str,
        args: &[String],
        owned: Option<tempfile::TempDir>,
    ) -> Serve {
        let kubeconfig = dir.join("kubeconfig");
        let _ = std::fs::remove_file(&kubeconfig);
        let mut child = Command::new(binary)
            .args(["serve", "--listen", listen, "--kubeconfig-out"])
            .arg(&kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("kstress serve starts");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let ready = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await.expect("kstress serve output") {
                if line.starts_with("kstress API server listening on https://") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(
            ready,
            Ok(true),
            "kstress serve did not report that it listens"
        );
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Serve {
            child,
            kubeconfig,
            _dir: owned,
        }
    }

    /// The kubeconfig the server wrote, for kubectl and `kstress` commands.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A client from the kubeconfig the server wrote (see [`client_for`]).
    pub async fn client(&self) -> Client {
        client_for(&std::fs::read_to_string(&self.kubeconfig).expect("kubeconfig")).await
    }

    /// Kills the server with SIGKILL and reaps it.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.expect("reaped");
    }
}
