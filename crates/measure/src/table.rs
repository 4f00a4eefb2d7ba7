//! The summary table printed at the end of every run.

use std::fmt::Write as _;

use crate::results::Results;

const HEADER: [&str; 9] = [
    "class", "count", "errors", "rate/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms",
];

/// Renders one row per operation class with aligned columns: the class name
/// left-aligned, the figures right-aligned. Ends with a newline.
pub fn render_table(results: &Results) -> String {
    let rows: Vec<[String; 9]> = results
        .operations
        .iter()
        .map(|(class, s)| {
            [
                class.clone(),
                s.count.to_string(),
                s.errors.to_string(),
                format!("{:.1}", s.rate_per_s),
                ms(s.p50_ms),
                ms(s.p90_ms),
                ms(s.p99_ms),
                ms(s.p999_ms),
                ms(s.max_ms),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..HEADER.len())
        .map(|i| {
            rows.iter()
                .map(|row| row[i].len())
                .chain([HEADER[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();

    let mut out = String::new();
    let header = HEADER.map(str::to_owned);
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i == 0 {
                let _ = write!(line, "{cell:<width$}", width = widths[i]);
            } else {
                let _ = write!(line, "  {cell:>width$}", width = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if let Some(pod_latency) = &results.pod_latency {
        out.push_str(&pod_latency.table());
    }
    if let Some(api) = &results.api_responsiveness {
        out.push_str(&api.table(10));
    }
    // The API table already gives each call's SLO verdict; its gates are
    // repeated only when they fail.
    let shown =
        |gate: &&crate::GateVerdict| gate.measurement != "apiResponsiveness" || !gate.passed;
    for gate in results.gates.iter().filter(shown) {
        let _ = writeln!(out, "gate: {gate}");
    }
    out
}

fn ms(value: f64) -> String {
    format!("{value:.2}")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::histogram::LatencyHistogram;
    use crate::record::{Class, Kind};
    use crate::results::RunInfo;
    use crate::snapshot::{ClassSnapshot, Snapshot};

    #[test]
    fn columns_line_up() {
        let class = |name: &str, ms: u64, n: u64| {
            let mut latency = LatencyHistogram::new();
            for _ in 0..n {
                latency.record(Duration::from_millis(ms));
            }
            ClassSnapshot {
                class: Class::new(name, Kind::Read),
                latency,
                errors_by_code: BTreeMap::new(),
                start_lag: None,
                active_s: None,
            }
        };
        let snapshot = Snapshot {
            started_at: jiff::Timestamp::UNIX_EPOCH,
            duration: Duration::from_secs(10),
            classes: vec![class("get", 2, 12_345), class("range-get-long", 1_500, 3)],
            series: Vec::new(),
        };
        let table = render_table(&Results::new(RunInfo::default(), &snapshot));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("class"));
        assert!(lines[1].starts_with("get "));
        assert!(lines[1].contains("12345"));
        assert!(lines[1].contains("1234.5"));
        assert!(lines[2].contains(" 1500."), "{table}");
        // Right-aligned columns end at the same offset on every line.
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{table}");
        let max_column = lines[0].rfind("max ms").unwrap() + "max ms".len();
        assert!(lines.iter().all(|l| l.len() == max_column));
    }
}
