//! report.html: one self-contained page per run.
//!
//! Everything is inline (styles and SVG charts drawn with plotters), so the
//! file can be attached to an issue or opened from a CI artifact with no
//! network access.

use std::fmt::{self, Write as _};

use plotters::prelude::*;

use crate::Error;
use crate::results::Results;
use crate::snapshot::Snapshot;

/// Chart size in SVG pixels.
const SIZE: (u32, u32) = (900, 380);

/// Latencies below this (1 µs) are drawn at it: a log axis has no zero.
const LOG_FLOOR_MS: f64 = 0.001;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}\
th,td{border:1px solid #ccc;padding:.3em .7em;text-align:right}\
th:first-child,td:first-child{text-align:left}\
.met{color:#176b2c;font-weight:bold}.not-met{color:#b00020;font-weight:bold}\
pre{background:#f5f5f5;padding:1em;overflow:auto}";

/// Renders the report page.
pub(crate) fn render_html(results: &Results, snapshot: &Snapshot) -> Result<String, Error> {
    let mut page = String::new();
    write_page(&mut page, results, snapshot)?;
    Ok(page)
}

fn write_page(page: &mut String, results: &Results, snapshot: &Snapshot) -> Result<(), Error> {
    let title = format!("kstress {}", results.scenario);
    write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\n\
         <h1>{title}</h1>\n<p>Target: {target}<br>Started: {started}<br>Duration: {duration:.1} s</p>\n",
        title = escape(&title),
        target = escape(&results.target),
        started = escape(&results.started_at),
        duration = results.duration_s,
    )?;

    page.push_str("<h2>Summary</h2>\n");
    write_summary(page, results)?;
    page.push_str("<h2>API latency SLOs</h2>\n");
    write_slos(page, results)?;
    if let Some(open_loop) = &results.open_loop {
        page.push_str(
            "<h2>Open-loop schedule</h2>\n<table><tr><th>class</th><th>scheduled</th>\
                       <th>lag p50 ms</th><th>lag p99 ms</th><th>lag max ms</th></tr>\n",
        );
        for (class, lag) in &open_loop.start_lag {
            writeln!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
                escape(class),
                lag.count,
                lag.p50_ms,
                lag.p99_ms,
                lag.max_ms
            )?;
        }
        page.push_str("</table>\n");
        let target = open_loop
            .target_rate_per_s
            .map_or_else(|| "unset".to_owned(), |rate| format!("{rate:.1}/s"));
        writeln!(
            page,
            "<p>Target rate: {target}; achieved: {:.1}/s</p>",
            open_loop.achieved_rate_per_s
        )?;
    }

    page.push_str("<h2>Latency distribution</h2>\n");
    page.push_str(&cdf_chart(snapshot)?);
    page.push_str("\n<h2>Throughput</h2>\n");
    let throughput = series(snapshot, |cell| Some(cell.requests as f64));
    page.push_str(&time_chart(
        "Requests per second",
        "requests/s",
        &throughput,
    )?);
    page.push_str("\n<h2>p99 latency over time</h2>\n");
    let p99 = series(snapshot, |cell| {
        let latency = cell.latency.as_ref().filter(|l| l.count() > 0)?;
        Some(latency.quantile(0.99).as_secs_f64() * 1000.0)
    });
    page.push_str(&time_chart("p99 latency per second", "p99 (ms)", &p99)?);

    let config = serde_json::to_string_pretty(&results.config)?;
    write!(
        page,
        "\n<h2>Configuration</h2>\n<pre>{}</pre>\n</body></html>\n",
        escape(&config)
    )?;
    Ok(())
}

fn write_summary(page: &mut String, results: &Results) -> fmt::Result {
    page.push_str(
        "<table><tr><th>class</th><th>kind</th><th>count</th><th>errors</th><th>rate/s</th>\
         <th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>\n",
    );
    for (class, s) in &results.operations {
        writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.2}</td>\
             <td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
            escape(class),
            s.kind.as_str(),
            s.count,
            s.errors,
            s.rate_per_s,
            s.p50_ms,
            s.p90_ms,
            s.p99_ms,
            s.p999_ms,
            s.max_ms
        )?;
    }
    page.push_str("</table>\n");
    Ok(())
}

fn write_slos(page: &mut String, results: &Results) -> fmt::Result {
    if results.slo.is_empty() {
        page.push_str("<p>No API calls with an SLO were measured.</p>\n");
        return Ok(());
    }
    page.push_str(
        "<table><tr><th>class</th><th>kind</th><th>p99 ms</th><th>SLO ms</th><th>errors</th><th>result</th></tr>\n",
    );
    for check in &results.slo {
        let (css, verdict) = if check.met {
            ("met", "met")
        } else {
            ("not-met", "not met")
        };
        writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.0}</td><td>{:.2} %</td>\
             <td class=\"{css}\">{verdict}</td></tr>",
            escape(&check.class),
            check.kind.as_str(),
            check.p99_ms,
            check.threshold_ms,
            check.error_ratio * 100.0
        )?;
    }
    page.push_str("</table>\n");
    Ok(())
}

type Lines = Vec<(String, Vec<(f64, f64)>)>;

/// One line per class of `(second, value)` points, skipping seconds for
/// which `value` has nothing.
fn series(
    snapshot: &Snapshot,
    value: impl Fn(&crate::snapshot::SeriesCell) -> Option<f64>,
) -> Lines {
    snapshot
        .classes
        .iter()
        .enumerate()
        .map(|(i, class)| {
            let points = snapshot
                .series
                .iter()
                .enumerate()
                .filter_map(|(second, cells)| Some((second as f64, value(cells.get(i)?)?)))
                .collect();
            (class.class.name.clone(), points)
        })
        .collect()
}

fn cdf_chart(snapshot: &Snapshot) -> Result<String, Error> {
    let lines: Lines = snapshot
        .classes
        .iter()
        .filter(|class| class.latency.count() > 0)
        .map(|class| {
            let points = class
                .latency
                .cdf_ms()
                .into_iter()
                .map(|(ms, fraction)| (ms.max(LOG_FLOOR_MS), fraction * 100.0))
                .collect();
            (class.class.name.clone(), points)
        })
        .collect();
    let xs = || {
        lines
            .iter()
            .flat_map(|(_, points)| points.iter().map(|p| p.0))
    };
    let low = xs().fold(f64::INFINITY, f64::min);
    let high = xs().fold(0.0, f64::max);
    let (low, high) = if low.is_finite() {
        ((low * 0.8).max(LOG_FLOOR_MS), high * 1.25)
    } else {
        (0.1, 10.0)
    };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Latency CDF", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((low..high).log_scale(), 0f64..100f64)
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .x_desc("latency (ms, log scale)")
            .y_desc("requests at or below (%)")
            .draw()
            .map_err(chart_error)?;
        draw_lines(&mut chart, &lines)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

fn time_chart(title: &str, y_desc: &str, lines: &Lines) -> Result<String, Error> {
    let points = || lines.iter().flat_map(|(_, points)| points.iter());
    let x_max = points().map(|p| p.0).fold(0.0, f64::max).max(1.0);
    let y_max = (points().map(|p| p.1).fold(0.0, f64::max) * 1.1).max(1.0);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .x_desc("seconds since start")
            .y_desc(y_desc)
            .draw()
            .map_err(chart_error)?;
        draw_lines(&mut chart, lines)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

/// Draws one line per class, each with its own colour, and the legend.
fn draw_lines<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    lines: &Lines,
) -> Result<(), Error>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (i, (name, points)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(chart_error)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(chart_error)
}

fn chart_error(error: impl fmt::Display) -> Error {
    Error::Chart(error.to_string())
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::histogram::LatencyHistogram;
    use crate::record::{Class, Kind};
    use crate::results::RunInfo;
    use crate::snapshot::{ClassSnapshot, SeriesCell};

    fn snapshot() -> Snapshot {
        let class = |name: &str, kind: Kind, ms: &[u64]| {
            let mut latency = LatencyHistogram::new();
            for &ms in ms {
                latency.record(Duration::from_millis(ms));
            }
            ClassSnapshot {
                class: Class::new(name, kind),
                latency,
                errors_by_code: BTreeMap::new(),
                start_lag: None,
                active_s: None,
            }
        };
        let cell = |n: u64, ms: u64| {
            let mut cell = SeriesCell::default();
            for _ in 0..n {
                cell.record(Duration::from_millis(ms), false);
            }
            cell
        };
        Snapshot {
            started_at: jiff::Timestamp::UNIX_EPOCH,
            duration: Duration::from_secs(3),
            classes: vec![
                class("write", Kind::Mutating, &[0, 2, 4, 1_500]),
                class("get", Kind::Read, &[1, 1, 2]),
                class("list", Kind::ListCluster, &[]),
            ],
            series: vec![
                vec![cell(3, 2), cell(2, 1), SeriesCell::default()],
                vec![SeriesCell::default(), cell(1, 2), SeriesCell::default()],
                vec![cell(1, 1_500), SeriesCell::default(), SeriesCell::default()],
            ],
        }
    }

    #[test]
    fn the_report_is_self_contained_with_its_charts() {
        let snapshot = snapshot();
        let info = RunInfo {
            scenario: "pod-stress".into(),
            target: "<embedded>".into(),
            config: serde_json::json!({"key_prefix": "a<b>"}),
            ..RunInfo::default()
        };
        let html = render_html(&Results::new(info, &snapshot), &snapshot).unwrap();

        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        assert_eq!(
            html.matches("<svg").count(),
            3,
            "CDF, throughput and p99 charts"
        );
        assert_eq!(html.matches("</svg>").count(), 3);
        for caption in [
            "Latency CDF",
            "Requests per second",
            "p99 latency per second",
        ] {
            assert!(html.contains(caption), "missing chart {caption}");
        }
        // The write class misses its 1 s SLO, get meets it.
        assert!(html.contains("<td>write</td><td>mutating</td>"));
        assert!(html.contains("class=\"not-met\">not met"));
        assert!(html.contains("class=\"met\">met"));
        // Text from the run is escaped.
        assert!(html.contains("&lt;embedded&gt;"));
        assert!(html.contains("a&lt;b&gt;"));
        // Nothing is fetched from elsewhere.
        for external in [
            "<script", "<link", "<img", "src=", "href=", "url(", "@import",
        ] {
            assert!(!html.contains(external), "report references {external}");
        }
    }

    #[test]
    fn a_run_without_requests_still_renders() {
        let snapshot = Snapshot {
            started_at: jiff::Timestamp::UNIX_EPOCH,
            duration: Duration::ZERO,
            classes: Vec::new(),
            series: Vec::new(),
        };
        let html = render_html(&Results::new(RunInfo::default(), &snapshot), &snapshot).unwrap();
        assert_eq!(html.matches("<svg").count(), 3);
        assert!(html.contains("No API calls with an SLO were measured."));
    }
}
