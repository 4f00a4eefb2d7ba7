//! What a client run produced, and the once-a-second rate lines of `-v 2`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use measure::{Report, Results, RunInfo, Snapshot};
use serde_json::json;

use crate::Error;
use crate::client::{ClientConfig, RESPONSE, RunEnd};

/// Scenario name in results.json.
pub const SCENARIO: &str = "httperf";

/// The outcome of [`crate::Client::run`]: latency summaries per class
/// (`first-block`, `response`) plus the byte throughput.
#[derive(Clone, Debug)]
pub struct ClientReport {
    report: Report,
    received_bytes: u64,
    elapsed: Duration,
    connections: usize,
    threads: usize,
    end: RunEnd,
}

impl ClientReport {
    pub(crate) fn new(
        config: &ClientConfig,
        snapshot: Snapshot,
        received_bytes: u64,
        elapsed: Duration,
        per_second: Vec<u64>,
        end: RunEnd,
    ) -> Self {
        let throughput = json!({
            "received_bytes": received_bytes,
            "gbit_per_s": gbit_per_s(received_bytes, elapsed),
            "connections": config.connections,
            "streams": config.threads,
            "per_second": per_second
                .iter()
                .enumerate()
                .map(|(second, &bytes)| json!({
                    "second": second,
                    "bytes": bytes,
                    "gbit_per_s": gbit_per_s(bytes, Duration::from_secs(1)),
                }))
                .collect::<Vec<_>>(),
        });
        let info = RunInfo {
            scenario: SCENARIO.to_owned(),
            target: config.base_url.clone(),
            config: config.to_json(),
            target_rate_per_s: None,
            achieved_rate_per_s: None,
            extra: BTreeMap::from([
                ("throughput".to_owned(), throughput),
                ("stop_reason".to_owned(), json!(end.as_str())),
            ]),
            ..RunInfo::default()
        };
        Self {
            report: Report::new(info, snapshot),
            received_bytes,
            elapsed,
            connections: config.connections,
            threads: config.threads,
            end,
        }
    }

    /// Why the run ended.
    pub fn end(&self) -> RunEnd {
        self.end
    }

    /// Body bytes received, including those of requests cut off by the end
    /// of the run.
    pub fn received_bytes(&self) -> u64 {
        self.received_bytes
    }

    /// Length of the run.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Receive throughput over the run.
    pub fn gbit_per_s(&self) -> f64 {
        gbit_per_s(self.received_bytes, self.elapsed)
    }

    /// Completed requests, failed ones included.
    pub fn requests(&self) -> u64 {
        self.response().map_or(0, |summary| summary.count)
    }

    /// Failed requests.
    pub fn errors(&self) -> u64 {
        self.response().map_or(0, |summary| summary.errors)
    }

    fn response(&self) -> Option<&measure::Summary> {
        self.report.results().operations.get(RESPONSE)
    }

    /// The results.json document.
    pub fn results(&self) -> &Results {
        self.report.results()
    }

    /// Writes results.json into `dir`.
    pub fn write_json(&self, dir: &Path) -> Result<PathBuf, Error> {
        Ok(self.report.write_json(dir)?)
    }
}

impl fmt::Display for ClientReport {
    /// The end-of-run summary for the terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "received {} bytes ({}) in {:.2} s: {:.3} Gbit/s over {} connections, {} streams",
            self.received_bytes,
            binary_size(self.received_bytes),
            self.elapsed.as_secs_f64(),
            self.gbit_per_s(),
            self.connections,
            self.threads,
        )?;
        writeln!(
            f,
            "requests: {} completed, {} failed",
            self.requests(),
            self.errors()
        )?;
        for (code, count) in self
            .response()
            .map(|summary| &summary.errors_by_code)
            .into_iter()
            .flatten()
        {
            writeln!(f, "  {code}: {count}")?;
        }
        f.write_str(&self.report.table())
    }
}

/// Turns running byte totals into per-interval rates for `-v 2`.
#[derive(Debug)]
pub struct RateMeter {
    at: Instant,
    sent: u64,
    received: Option<u64>,
}

/// Rates over one interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates {
    /// Server role: block bytes sent, in Gbit/s.
    pub transmit_gbit_per_s: f64,
    /// Client role, when there is one: body bytes received, in Gbit/s.
    pub receive_gbit_per_s: Option<f64>,
}

impl RateMeter {
    /// Starts measuring from the current totals.
    pub fn new(sent: u64, received: Option<u64>) -> Self {
        Self {
            at: Instant::now(),
            sent,
            received,
        }
    }

    /// The rates since the previous sample (or the start).
    pub fn sample(&mut self, sent: u64, received: Option<u64>) -> Rates {
        let now = Instant::now();
        let interval = now - self.at;
        let rates = Rates {
            transmit_gbit_per_s: gbit_per_s(sent.saturating_sub(self.sent), interval),
            receive_gbit_per_s: received
                .map(|received| received.saturating_sub(self.received.unwrap_or(0)))
                .map(|bytes| gbit_per_s(bytes, interval)),
        };
        *self = Self {
            at: now,
            sent,
            received,
        };
        rates
    }
}

impl fmt::Display for Rates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transmit {:.3} Gbit/s", self.transmit_gbit_per_s)?;
        if let Some(receive) = self.receive_gbit_per_s {
            write!(f, ", receive {receive:.3} Gbit/s")?;
        }
        Ok(())
    }
}

/// Bits per second in units of 10^9, the unit network links are sold in.
fn gbit_per_s(bytes: u64, over: Duration) -> f64 {
    let seconds = over.as_secs_f64();
    if seconds > 0.0 {
        bytes as f64 * 8.0 / seconds / 1e9
    } else {
        0.0
    }
}

fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(gbit_per_s(125_000_000, Duration::from_secs(1)), 1.0);
        assert_eq!(gbit_per_s(1, Duration::ZERO), 0.0);
        assert_eq!(binary_size(512), "512 B");
        assert_eq!(binary_size(3 << 29), "1.50 GiB");
    }

    #[test]
    fn rate_lines_name_both_directions() {
        let mut meter = RateMeter::new(100, Some(0));
        let rates = meter.sample(100, Some(0));
        assert_eq!(rates.transmit_gbit_per_s, 0.0);
        assert_eq!(rates.receive_gbit_per_s, Some(0.0));
        assert_eq!(
            rates.to_string(),
            "transmit 0.000 Gbit/s, receive 0.000 Gbit/s"
        );
        let server_only = RateMeter::new(0, None).sample(0, None);
        assert_eq!(server_only.to_string(), "transmit 0.000 Gbit/s");
    }
}
