//! The kstress binary: command-line parsing and wiring of the library crates.

mod conformance_cmd;
mod embedded;
mod httperf_cmd;
mod measurement_args;
mod node_cmd;
mod run;
mod scenario_cmd;
mod serve;
mod signals;
mod storage;
mod target;
mod units;

use std::process::ExitCode;

/// The API server, its clients and the load drivers share one process and
/// allocate a buffer or a JSON tree for every request; mimalloc serves those
/// short-lived allocations from per-thread pages, where the system
/// allocator spends a sixth of a pod-stress run's CPU time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// Kubernetes scale lab: load drivers, an embedded cluster and node
/// conformance checks in one binary.
#[derive(Parser)]
#[command(name = "kstress", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a load driver against the embedded cluster or a real one.
    Run(run::RunArgs),
    /// Run, check, list and show scenario files (kube-burner job
    /// configurations).
    Scenario(scenario_cmd::ScenarioArgs),
    /// Run the embedded Kubernetes API server in the foreground.
    Serve(serve::ServeArgs),
    /// HTTP/2 + TLS block-transfer throughput server and client.
    Httperf(httperf_cmd::HttperfArgs),
    /// Run one simulated kubelet against a cluster.
    Node(node_cmd::NodeArgs),
    /// Check node lifecycle and image-pull behaviour on a cluster.
    Conformance(conformance_cmd::ConformanceArgs),
}

impl Command {
    /// Whether the command times requests against a schedule, so that its
    /// threads should wake up promptly.
    fn generates_load(&self) -> bool {
        matches!(
            self,
            Command::Run(_) | Command::Scenario(_) | Command::Httperf(_)
        )
    }
}

/// Applies the wake-up latency hints to the calling thread; without them
/// the run is still valid, only less precise on a busy machine.
fn favour_wakeups() {
    if let Err(err) = lowlatency::favour_wakeups() {
        tracing::debug!(%err, "running without wake-up latency hints");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if cli.command.generates_load() {
        // Start times are only as precise as these threads' wake-ups.
        favour_wakeups();
        builder.on_thread_start(favour_wakeups);
    }
    let runtime = match builder.build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Scenario(args) => scenario_cmd::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Httperf(args) => httperf_cmd::run(args).await,
            Command::Node(args) => node_cmd::run(args).await,
            Command::Conformance(args) => conformance_cmd::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", error_chain(&err));
            exit_code(&err)
        }
    }
}

/// Exit status of a run that completed but failed one of its gates: the
/// cluster fell short, which scripts tell apart from a run that could not
/// be carried out (status 1) or a usage error (status 2).
const GATES_FAILED: u8 = 3;

fn exit_code(err: &anyhow::Error) -> ExitCode {
    let gates_failed = err
        .chain()
        .any(|cause| matches!(cause.downcast_ref(), Some(load::Error::GatesFailed(_))));
    if gates_failed {
        ExitCode::from(GATES_FAILED)
    } else {
        ExitCode::FAILURE
    }
}

/// An error and its causes on one line, each cause once.
///
/// The library errors name their cause in their own message (so that a
/// plain `{}` is complete wherever they are shown, Status messages
/// included) and also expose it as `source()`; anyhow's `{:#}` would then
/// print every such cause twice. A cause whose text the line already holds
/// is left out.
pub(crate) fn error_chain(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Warnings and errors, except kube-rs's report of each failed request:
/// load drivers count those themselves, and a failing server would
/// otherwise flood the terminal.
const DEFAULT_LOG_FILTER: &str = "warn,kube_client::client::builder=off";

/// Logs go to stderr, filtered by `RUST_LOG` (default: warnings and errors).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_logs())
        .init();
}

/// Whether log lines may carry ANSI colour codes: only when stderr is a
/// terminal, so files, pipes and CI logs get plain text, and never when
/// `NO_COLOR` is set to anything but the empty string (no-color.org).
fn colour_logs() -> bool {
    use std::io::IsTerminal as _;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    std::io::stderr().is_terminal() && !no_color
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;

    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot listen on 127.0.0.1:1: {source}")]
    struct Listen {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn each_cause_is_named_once_and_none_is_lost() {
        let busy = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let err = Err::<(), _>(Listen { source: busy })
            .context("cannot start the embedded API server")
            .unwrap_err();
        assert_eq!(
            error_chain(&err),
            "cannot start the embedded API server: cannot listen on 127.0.0.1:1: address in use"
        );
        let io = Err::<(), _>(std::io::Error::other("disk full"))
            .context("cannot write results.json")
            .unwrap_err();
        assert_eq!(error_chain(&io), "cannot write results.json: disk full");
    }
}
