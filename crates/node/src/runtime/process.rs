//! The `process` runtime: each container run is its command executed for
//! real inside bubblewrap.
//!
//! The sandbox gets a fresh writable root directory per run, the host's
//! `/usr` read-only (with the usual `/bin`, `/lib`, `/lib64`, `/sbin`
//! links and `/etc/alternatives`), `/proc`, `/dev`, the pod's volumes
//! bound at their mount paths (shared by all its containers), and the
//! termination message path bound to a per-run file. Hooks and exec probes
//! run in another sandbox with the same view. Containers share the host
//! network, so `httpGet`/`tcpSocket` probes reach them on the node address.
//!
//! Layout under the data directory:
//! `pods/<uid>/volumes/<volume>`, `pods/<uid>/containers/<name>/<attempt>/{root,termination-log}`
//! and `pods/<uid>/logs/<name>/<attempt>.log`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use super::{
    ContainerControl, ContainerRun, ExecOutput, Exit, NetworkProbe, PodSandbox, Runtime,
    RuntimeError, Started, StopSignal, container_id, network,
};
use crate::logs::LogWriter;

/// Upstream's limit on a termination message read from its file.
const MAX_TERMINATION_MESSAGE: u64 = 4096;
/// Exec output kept for probe and hook messages.
const MAX_EXEC_OUTPUT: usize = 10 * 1024;
/// The PATH of a container that sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs containers as bubblewrap-sandboxed processes under `dir`.
#[derive(Debug)]
pub struct ProcessRuntime {
    dir: PathBuf,
    /// The directory was made for this node and goes away with it.
    owned: bool,
    bwrap: PathBuf,
}

impl ProcessRuntime {
    /// A runtime keeping its files in `dir` (removed at shutdown when
    /// `owned`); fails with a clear message when bubblewrap is missing.
    pub fn new(dir: PathBuf, owned: bool, bwrap: PathBuf) -> Result<Self, crate::Error> {
        let probe = std::process::Command::new(&bwrap)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match probe {
            Ok(status) if status.success() => {}
            Ok(status) => {
                return Err(crate::Error::Runtime(format!(
                    "`{} --version` failed ({status}); the process runtime needs a working \
                     bubblewrap (Debian/Ubuntu package: bubblewrap)",
                    bwrap.display()
                )));
            }
            Err(err) => {
                return Err(crate::Error::Runtime(format!(
                    "cannot run `{}` ({err}); the process runtime needs bubblewrap \
                     (install the bubblewrap package)",
                    bwrap.display()
                )));
            }
        }
        std::fs::create_dir_all(dir.join("pods")).map_err(crate::Error::io(format!(
            "cannot create the data directory {}",
            dir.display()
        )))?;
        Ok(ProcessRuntime { dir, owned, bwrap })
    }

    fn pod_dir(&self, uid: &str) -> PathBuf {
        self.dir.join("pods").join(uid)
    }

    fn run_dir(&self, run: &ContainerRun) -> PathBuf {
        self.pod_dir(&run.pod_uid)
            .join("containers")
            .join(&run.container)
            .join(run.attempt.to_string())
    }

    fn log_path(&self, run: &ContainerRun) -> PathBuf {
        self.pod_dir(&run.pod_uid)
            .join("logs")
            .join(&run.container)
            .join(format!("{}.log", run.attempt))
    }

    /// The bubblewrap command line giving `run`'s filesystem view, up to
    /// (not including) the program to run.
    fn sandbox(&self, run: &ContainerRun) -> Command {
        let run_dir = self.run_dir(run);
        let mut cmd = Command::new(&self.bwrap);
        cmd.arg("--die-with-parent")
            .arg("--bind")
            .arg(run_dir.join("root"))
            .arg("/")
            .args(["--ro-bind", "/usr", "/usr"])
            .args(["--ro-bind-try", "/etc/alternatives", "/etc/alternatives"])
            .args(["--proc", "/proc", "--dev", "/dev"]);
        let volumes = self.pod_dir(&run.pod_uid).join("volumes");
        for mount in &run.mounts {
            let bind = if mount.read_only {
                "--ro-bind"
            } else {
                "--bind"
            };
            cmd.arg(bind)
                .arg(volumes.join(&mount.volume))
                .arg(&mount.path);
        }
        cmd.arg("--bind")
            .arg(run_dir.join("termination-log"))
            .arg(&run.termination_message_path)
            .arg("--chdir")
            .arg(run.working_dir.as_deref().unwrap_or("/"))
            .arg("--clearenv")
            .args(["--setenv", "PATH", DEFAULT_PATH])
            .args(["--setenv", "HOSTNAME", &run.pod_name])
            .args(["--setenv", "HOME", "/root"]);
        for (name, value) in &run.env {
            cmd.arg("--setenv").arg(name).arg(value);
        }
        cmd.arg("--")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .process_group(0);
        cmd
    }

    /// Creates this run's root and empty termination-message file, and
    /// drops the run before the previous one (logs of the previous run stay
    /// for `kubectl logs --previous`).
    async fn prepare(&self, run: &ContainerRun) -> Result<(), RuntimeError> {
        let run_dir = self.run_dir(run);
        let root = run_dir.join("root");
        let mut dirs = vec![root.join("tmp"), root.join("root")];
        if let Some(dir) = &run.working_dir {
            dirs.push(root.join(dir.trim_start_matches('/')));
        }
        for dir in dirs {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|err| io_error("create", &dir, err))?;
        }
        // The root is shared by the container and its hooks and probes, so
        // the usual links live in it rather than being made by each sandbox.
        for link in ["bin", "sbin", "lib", "lib64"] {
            let path = root.join(link);
            if tokio::fs::symlink_metadata(&path).await.is_err() {
                tokio::fs::symlink(format!("usr/{link}"), &path)
                    .await
                    .map_err(|err| io_error("link", &path, err))?;
            }
        }
        let message = run_dir.join("termination-log");
        tokio::fs::write(&message, b"")
            .await
            .map_err(|err| io_error("create", &message, err))?;
        if let Some(stale) = run.attempt.checked_sub(2) {
            let stale_dir = run_dir.with_file_name(stale.to_string());
            let _ = tokio::fs::remove_dir_all(stale_dir).await;
        }
        Ok(())
    }
}

fn io_error(action: &str, path: &Path, err: std::io::Error) -> RuntimeError {
    RuntimeError(format!("cannot {action} {}: {err}", path.display()))
}

/// Signals one sandboxed container: SIGTERM goes to the container's main
/// process (the sandbox's child), SIGKILL to its whole process group.
struct ProcessControl {
    pid: i32,
    exited: Arc<AtomicBool>,
}

impl ContainerControl for ProcessControl {
    fn signal(&self, signal: StopSignal) {
        if self.exited.load(Ordering::SeqCst) {
            return;
        }
        match signal {
            StopSignal::Term => {
                let children = sandbox_children(self.pid);
                if children.is_empty() {
                    signal_group(self.pid, Signal::TERM);
                }
                for child in children {
                    if let Some(pid) = Pid::from_raw(child) {
                        let _ = kill_process(pid, Signal::TERM);
                    }
                }
            }
            StopSignal::Kill => signal_group(self.pid, Signal::KILL),
        }
    }
}

/// The processes bubblewrap started (the container's main process).
fn sandbox_children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn signal_group(pgid: i32, signal: Signal) {
    if let Some(pid) = Pid::from_raw(pgid) {
        let _ = kill_process_group(pid, signal);
    }
}

/// Copies one output stream of a container into its log.
async fn pump(mut stream: impl AsyncRead + Unpin, name: &'static str, log: Arc<LogWriter>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => log.write(name, &buf[..n]).await,
        }
    }
    log.finish(name).await;
}

/// The tail of a termination message file, as much as upstream keeps.
async fn read_termination_message(path: &Path) -> String {
    let Ok(bytes) = tokio::fs::read(path).await else {
        return String::new();
    };
    let start = bytes
        .len()
        .saturating_sub(usize::try_from(MAX_TERMINATION_MESSAGE).unwrap_or(usize::MAX));
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

fn exit_code(status: std::io::Result<std::process::ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(128),
        Err(_) => 128,
    }
}

#[async_trait]
impl Runtime for ProcessRuntime {
    fn version(&self) -> String {
        format!("kstress-process://{}", env!("CARGO_PKG_VERSION"))
    }

    async fn create_pod(&self, pod: &PodSandbox) -> Result<(), RuntimeError> {
        let volumes = self.pod_dir(&pod.uid).join("volumes");
        for name in &pod.empty_dirs {
            let dir = volumes.join(name);
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|err| io_error("create", &dir, err))?;
        }
        Ok(())
    }

    async fn start(&self, run: &ContainerRun) -> Result<Started, RuntimeError> {
        if run.argv.is_empty() {
            return Err(RuntimeError(
                "the process runtime runs spec.containers[].command; images are not unpacked, \
                 so a container without a command cannot start"
                    .into(),
            ));
        }
        self.prepare(run).await?;
        let log_path = self.log_path(run);
        let log = Arc::new(
            LogWriter::create(&log_path)
                .await
                .map_err(|err| io_error("create", &log_path, err))?,
        );
        let mut cmd = self.sandbox(run);
        cmd.args(&run.argv)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|err| RuntimeError(format!("cannot start {}: {err}", self.bwrap.display())))?;
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| RuntimeError("the sandbox exited at once".into()))?;
        let pumps = [
            child
                .stdout
                .take()
                .map(|out| tokio::spawn(pump(out, "stdout", log.clone()))),
            child
                .stderr
                .take()
                .map(|err| tokio::spawn(pump(err, "stderr", log.clone()))),
        ];
        let exited = Arc::new(AtomicBool::new(false));
        let (exit_tx, exit) = oneshot::channel();
        let message_path = self.run_dir(run).join("termination-log");
        let waiter_exited = exited.clone();
        tokio::spawn(async move {
            let code = wait(&mut child).await;
            waiter_exited.store(true, Ordering::SeqCst);
            // Whatever the main process left behind goes with it, as with a
            // container's cgroup.
            signal_group(pid, Signal::KILL);
            for pump in pumps.into_iter().flatten() {
                let _ = tokio::time::timeout(Duration::from_secs(5), pump).await;
            }
            let message = read_termination_message(&message_path).await;
            let _ = exit_tx.send(Exit { code, message });
        });
        Ok(Started {
            id: container_id("kstress-process"),
            exit,
            control: Box::new(ProcessControl { pid, exited }),
            log: Some(log_path),
        })
    }

    async fn exec(
        &self,
        run: &ContainerRun,
        command: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        if command.is_empty() {
            return Err(RuntimeError("exec needs a command".into()));
        }
        let mut cmd = self.sandbox(run);
        cmd.args(command)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|err| RuntimeError(format!("cannot start {}: {err}", self.bwrap.display())))?;
        let pid = child.id().and_then(|id| i32::try_from(id).ok());
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let collect = async {
            let mut out = Vec::new();
            let mut err = Vec::new();
            let read_out = async {
                if let Some(s) = stdout.as_mut() {
                    let _ = s.read_to_end(&mut out).await;
                }
            };
            let read_err = async {
                if let Some(s) = stderr.as_mut() {
                    let _ = s.read_to_end(&mut err).await;
                }
            };
            tokio::join!(read_out, read_err);
            let code = wait(&mut child).await;
            out.extend_from_slice(&err);
            (code, out)
        };
        match tokio::time::timeout(timeout, collect).await {
            Ok((code, mut output)) => {
                if let Some(pid) = pid {
                    signal_group(pid, Signal::KILL);
                }
                output.truncate(MAX_EXEC_OUTPUT);
                Ok(ExecOutput {
                    code,
                    output: String::from_utf8_lossy(&output).into_owned(),
                })
            }
            Err(_) => {
                if let Some(pid) = pid {
                    signal_group(pid, Signal::KILL);
                }
                Err(RuntimeError(format!(
                    "command {command:?} timed out after {timeout:?}"
                )))
            }
        }
    }

    async fn probe_network(&self, probe: &NetworkProbe, timeout: Duration) -> Result<(), String> {
        network::check(probe, timeout).await
    }

    async fn remove_pod(&self, pod_uid: &str) {
        let dir = self.pod_dir(pod_uid);
        if let Err(err) = tokio::fs::remove_dir_all(&dir).await
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), %err, "cannot remove pod directory");
        }
    }

    async fn shutdown(&self) {
        if self.owned {
            let _ = tokio::fs::remove_dir_all(&self.dir).await;
        }
    }
}

async fn wait(child: &mut Child) -> i32 {
    exit_code(child.wait().await)
}
