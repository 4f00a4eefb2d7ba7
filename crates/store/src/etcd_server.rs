//! A throwaway etcd server for tests: a real `etcd` process on free
//! loopback ports with its data in a temporary directory. Dropping it kills
//! the process and removes the directory; [`TestEtcd::kill`] and
//! [`TestEtcd::restart`] let fault tests take it away and bring it back with
//! its data.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{EtcdStore, EtcdStoreOptions};

/// How long etcd may take to answer after it is started on a busy machine.
const START_WAIT: Duration = Duration::from_secs(60);

/// A running (or killed) etcd.
pub struct TestEtcd {
    child: Option<Child>,
    client_port: u16,
    peer_port: u16,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl TestEtcd {
    /// Starts etcd (`$ETCD_BIN`, or `etcd` on the `PATH`) and waits until it
    /// answers. Panics with etcd's log when it does not come up.
    pub async fn start() -> TestEtcd {
        let mut last_log = String::new();
        for _ in 0..3 {
            let mut etcd = TestEtcd {
                child: None,
                client_port: free_port(),
                peer_port: free_port(),
                dir: tempfile::tempdir().expect("a temporary directory"),
            };
            etcd.spawn();
            if etcd.wait_ready().await {
                return etcd;
            }
            // Most likely a port was taken between probing and binding.
            last_log = etcd.log();
        }
        panic!("etcd did not start; its log:\n{last_log}");
    }

    /// The client URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Options of a store on this etcd with quick progress marks.
    pub fn options(&self) -> EtcdStoreOptions {
        EtcdStoreOptions {
            endpoints: vec![self.endpoint()],
            progress_interval: Duration::from_millis(100),
            ..EtcdStoreOptions::default()
        }
    }

    /// A store on this etcd.
    pub async fn store(&self) -> EtcdStore {
        EtcdStore::connect(self.options())
            .await
            .expect("the test etcd answers")
    }

    /// Kills etcd with SIGKILL, as a crash would; its data stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data after [`kill`](Self::kill).
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn();
        if !self.wait_ready().await {
            panic!("etcd did not restart; its log:\n{}", self.log());
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn spawn(&mut self) {
        let binary = std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into());
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("the etcd log file");
        let child = Command::new(&binary)
            .arg("--name=kstress-test")
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=kstress-test={peer}"))
            .arg("--experimental-watch-progress-notify-interval=200ms")
            .arg("--logger=zap")
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the etcd log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {binary}: {err} (install etcd-server)"));
        self.child = Some(child);
    }

    /// Polls until etcd answers; false when it exits or stays silent.
    async fn wait_ready(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + START_WAIT;
        while tokio::time::Instant::now() < deadline {
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if exited {
                return false;
            }
            let options = EtcdStoreOptions {
                connect_timeout: Duration::from_secs(1),
                request_timeout: Duration::from_secs(2),
                ..self.options()
            };
            if EtcdStore::connect(options).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

impl Drop for TestEtcd {
    fn drop(&mut self) {
        self.kill();
    }
}
