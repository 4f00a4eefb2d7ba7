//! Ctrl-C and SIGTERM, handled alike by every command: a terminal's Ctrl-C
//! and the SIGTERM of `kill`, a service manager or a Kubernetes pod's
//! termination all ask kstress to stop cleanly.

use anyhow::Context as _;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Which signal asked kstress to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// SIGINT, from Ctrl-C on a terminal.
    CtrlC,
    /// SIGTERM.
    Terminate,
}

impl Interrupt {
    /// The exit status of a process this signal ended, as a shell reports
    /// it (128 + the signal's number), for exits that give up cleaning up.
    pub fn exit_code(self) -> i32 {
        match self {
            Interrupt::CtrlC => 130,
            Interrupt::Terminate => 143,
        }
    }
}

impl std::fmt::Display for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Interrupt::CtrlC => "Ctrl-C",
            Interrupt::Terminate => "SIGTERM",
        })
    }
}

/// Listeners of both signals. Once installed, neither signal ends the
/// process by default any more, for the rest of its life: whoever installs
/// them must keep listening while there is something to clean up.
pub struct Interrupts {
    interrupt: Signal,
    terminate: Signal,
}

impl Interrupts {
    /// Installs both listeners.
    pub fn install() -> anyhow::Result<Interrupts> {
        Ok(Interrupts {
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?,
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }

    /// Waits for the next Ctrl-C or SIGTERM.
    pub async fn next(&mut self) -> Interrupt {
        tokio::select! {
            Some(()) = self.interrupt.recv() => Interrupt::CtrlC,
            Some(()) = self.terminate.recv() => Interrupt::Terminate,
            else => std::future::pending().await,
        }
    }
}

/// Waits for the first Ctrl-C or SIGTERM.
pub async fn wait_for_interrupt() -> anyhow::Result<Interrupt> {
    Ok(Interrupts::install()?.next().await)
}
