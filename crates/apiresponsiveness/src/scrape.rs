//! One scrape of `apiserver_request_duration_seconds` from the Prometheus
//! text exposition, and the bucket arithmetic on it: differences of two
//! scrapes and quantiles interpolated as Prometheus'
//! `histogram_quantile` does.

use std::collections::BTreeMap;

/// The metric read.
const METRIC: &str = "apiserver_request_duration_seconds_bucket";

/// What identifies a kind of call.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallKey {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub scope: String,
}

/// Cumulative bucket counts by upper bound in seconds, in order; the last
/// is `+Inf`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Buckets(pub Vec<(f64, f64)>);

/// Every kind of call's buckets at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scrape(pub BTreeMap<CallKey, Buckets>);

impl Scrape {
    /// Reads the duration buckets out of a text exposition; other metrics
    /// and malformed lines are skipped. Series that differ only in labels
    /// kstress does not group by (`component`, `dry_run`, `version`) are
    /// added together.
    pub fn parse(text: &str) -> Scrape {
        let mut calls: BTreeMap<CallKey, BTreeMap<u64, (f64, f64)>> = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(METRIC) else {
                continue;
            };
            let Some((labels, value)) = split_sample(rest) else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let label = |name: &str| labels.get(name).cloned().unwrap_or_default();
            let le = match labels.get("le").map(String::as_str) {
                Some("+Inf") => f64::INFINITY,
                Some(le) => match le.parse::<f64>() {
                    Ok(le) => le,
                    Err(_) => continue,
                },
                None => continue,
            };
            let key = CallKey {
                verb: label("verb"),
                group: label("group"),
                resource: label("resource"),
                subresource: label("subresource"),
                scope: label("scope"),
            };
            let bucket = calls
                .entry(key)
                .or_default()
                .entry(le.to_bits())
                .or_insert((le, 0.0));
            bucket.1 += value;
        }
        Scrape(
            calls
                .into_iter()
                .map(|(key, buckets)| {
                    let mut buckets: Vec<(f64, f64)> = buckets.into_values().collect();
                    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                    (key, Buckets(buckets))
                })
                .collect(),
        )
    }

    /// The calls made between `earlier` and this scrape. A series that
    /// went down (a restarted server) counts from zero.
    pub fn since(&self, earlier: &Scrape) -> Scrape {
        Scrape(
            self.0
                .iter()
                .filter_map(|(key, now)| {
                    let before = earlier.0.get(key);
                    let reset = before.is_some_and(|b| b.total() > now.total());
                    let delta: Vec<(f64, f64)> = now
                        .0
                        .iter()
                        .map(|(le, count)| {
                            let was = match before {
                                Some(b) if !reset => b.at(*le),
                                _ => 0.0,
                            };
                            (*le, count - was)
                        })
                        .collect();
                    let delta = Buckets(delta);
                    (delta.total() > 0.0).then(|| (key.clone(), delta))
                })
                .collect(),
        )
    }
}

impl Buckets {
    /// Every call (the `+Inf` bucket).
    pub fn total(&self) -> f64 {
        self.0.last().map_or(0.0, |(_, count)| *count)
    }

    fn at(&self, le: f64) -> f64 {
        self.0
            .iter()
            .find(|(bound, _)| *bound == le)
            .map_or(0.0, |(_, count)| *count)
    }

    /// The `q` quantile in seconds, interpolated linearly within its
    /// bucket as Prometheus' `histogram_quantile`: a quantile in the
    /// `+Inf` bucket is the largest finite bound.
    pub fn quantile(&self, q: f64) -> f64 {
        let total = self.total();
        if total <= 0.0 {
            return 0.0;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(le, count) in &self.0 {
            if count >= rank {
                if le.is_infinite() {
                    return lower.0;
                }
                let width = count - lower.1;
                if width <= 0.0 {
                    return le;
                }
                return lower.0 + (le - lower.0) * (rank - lower.1) / width;
            }
            lower = (le, count);
        }
        lower.0
    }
}

/// Splits `{labels} value` (the metric name already taken off).
fn split_sample(rest: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let rest = rest.strip_prefix('{')?;
    let mut labels = BTreeMap::new();
    let mut chars = rest.char_indices().peekable();
    loop {
        let start = chars.peek()?.0;
        if rest[start..].starts_with('}') {
            let value = rest[start + 1..].split_whitespace().next()?;
            return Some((labels, value));
        }
        let eq = rest[start..].find('=')? + start;
        let name = rest[start..eq].trim_start_matches(',').trim().to_owned();
        if !rest[eq + 1..].starts_with('"') {
            return None;
        }
        while chars.next_if(|(i, _)| *i <= eq + 1).is_some() {}
        let mut value = String::new();
        loop {
            let (_, c) = chars.next()?;
            match c {
                '"' => break,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        }
        labels.insert(name, value);
        chars.next_if(|(_, c)| *c == ',');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP apiserver_request_duration_seconds Response latency.
# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{verb="GET",dry_run="",group="",version="v1",resource="pods",subresource="",scope="resource",component="apiserver",le="0.005"} 90
apiserver_request_duration_seconds_bucket{verb="GET",dry_run="",group="",version="v1",resource="pods",subresource="",scope="resource",component="apiserver",le="0.025"} 99
apiserver_request_duration_seconds_bucket{verb="GET",dry_run="",group="",version="v1",resource="pods",subresource="",scope="resource",component="apiserver",le="+Inf"} 100
apiserver_request_duration_seconds_count{verb="GET",group="",resource="pods"} 100
apiserver_request_duration_seconds_bucket{verb="LIST",group="apps",resource="deployments",subresource="",scope="cluster",le="1.0"} 3
apiserver_request_duration_seconds_bucket{verb="LIST",group="apps",resource="deployments",subresource="",scope="cluster",le="+Inf"} 3
apiserver_request_total{verb="GET",code="200"} 100
"#;

    fn get_pods() -> CallKey {
        CallKey {
            verb: "GET".into(),
            group: String::new(),
            resource: "pods".into(),
            subresource: String::new(),
            scope: "resource".into(),
        }
    }

    #[test]
    fn buckets_are_read_per_call_and_other_series_ignored() {
        let scrape = Scrape::parse(TEXT);
        assert_eq!(scrape.0.len(), 2);
        assert_eq!(
            scrape.0[&get_pods()].0,
            vec![(0.005, 90.0), (0.025, 99.0), (f64::INFINITY, 100.0)]
        );
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket_as_prometheus_does() {
        let buckets = &Scrape::parse(TEXT).0[&get_pods()];
        // Rank 50 of 90 in [0, 5 ms].
        assert!((buckets.quantile(0.5) - 0.005 * 50.0 / 90.0).abs() < 1e-9);
        // Rank 99 is the top of the second bucket.
        assert!((buckets.quantile(0.99) - 0.025).abs() < 1e-9);
        // Rank 99.9 is in +Inf: the largest finite bound.
        assert_eq!(buckets.quantile(0.999), 0.025);
        assert_eq!(Buckets::default().quantile(0.99), 0.0);
    }

    #[test]
    fn the_difference_of_two_scrapes_holds_the_calls_between_them() {
        let before = Scrape::parse(TEXT);
        let after = Scrape::parse(
            &TEXT
                .replace("le=\"0.005\"} 90", "le=\"0.005\"} 95")
                .replace("le=\"0.025\"} 99", "le=\"0.025\"} 109")
                .replace("le=\"+Inf\"} 100", "le=\"+Inf\"} 110"),
        );
        let delta = after.since(&before);
        assert_eq!(delta.0.len(), 1, "unchanged calls drop out: {delta:?}");
        assert_eq!(
            delta.0[&get_pods()].0,
            vec![(0.005, 5.0), (0.025, 10.0), (f64::INFINITY, 10.0)]
        );
        // A server that restarted counts from zero.
        let restarted = before.since(&after);
        assert_eq!(restarted.0[&get_pods()].total(), 100.0);
    }

    #[test]
    fn escaped_label_values_and_garbage_lines_are_handled() {
        let text = "apiserver_request_duration_seconds_bucket{verb=\"GET\",resource=\"a\\\"b\",le=\"+Inf\"} 2\n\
                    apiserver_request_duration_seconds_bucket{verb=\"GET\" 3\n\
                    apiserver_request_duration_seconds_bucket{verb=\"GET\",le=\"x\"} 3\n";
        let scrape = Scrape::parse(text);
        assert_eq!(scrape.0.len(), 1, "{scrape:?}");
        assert_eq!(
            scrape.0.keys().next().map(|k| k.resource.as_str()),
            Some("a\"b")
        );
    }
}
