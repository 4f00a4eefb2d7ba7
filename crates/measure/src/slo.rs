//! The upstream Kubernetes API call latency SLOs, checked per class.
//!
//! Upstream (sig-scalability) holds the 99th percentile of API call latency
//! to 1 s for mutating and single-object read calls, 5 s for lists within a
//! namespace and 30 s for cluster-wide lists. kstress checks each class's
//! p99 over the whole run against the bound for its [`Kind`].
//!
//! A fast failure is not a met SLO: upstream's SLIs are defined over calls
//! the server processed, and a run whose calls fail answers nothing about
//! latency. A class whose failed calls exceed [`MAX_ERROR_RATIO`] of its
//! calls therefore fails its check whatever its p99. Conflicts (409) are
//! not counted: they are the server's correct answer to a stale
//! resourceVersion, which drivers such as pod-stress provoke on purpose and
//! retry.

use serde::{Deserialize, Serialize};

use crate::histogram::millis;
use crate::record::Kind;
use crate::snapshot::Snapshot;

/// The largest share of a class's calls that may fail (1 %) for its SLO
/// to be met; 409 Conflicts are not failures here.
pub const MAX_ERROR_RATIO: f64 = 0.01;

/// One class checked against its SLO.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloCheck {
    /// The operation class.
    pub class: String,
    /// Its kind, which picks the bound.
    pub kind: Kind,
    /// The bound on the 99th percentile.
    pub threshold_ms: f64,
    /// The measured 99th percentile.
    pub p99_ms: f64,
    /// Failed calls (409 Conflicts excepted) over all calls of the class;
    /// 0 in results written before kstress checked it.
    #[serde(default)]
    pub error_ratio: f64,
    /// Whether the p99 is within the bound and the error ratio at most
    /// [`MAX_ERROR_RATIO`].
    pub met: bool,
}

/// Checks every class that has an SLO and at least one request; classes
/// without requests have nothing to judge and are left out.
pub fn check_slos(snapshot: &Snapshot) -> Vec<SloCheck> {
    snapshot
        .classes
        .iter()
        .filter(|class| class.latency.count() > 0)
        .filter_map(|class| {
            let threshold = class.class.kind.slo()?;
            let p99 = class.latency.quantile(0.99);
            let failed: u64 = class
                .errors_by_code
                .iter()
                .filter(|(code, _)| code.as_str() != "409")
                .map(|(_, n)| n)
                .sum();
            let error_ratio = failed as f64 / class.latency.count() as f64;
            Some(SloCheck {
                class: class.class.name.clone(),
                kind: class.class.kind,
                threshold_ms: millis(threshold),
                p99_ms: millis(p99),
                error_ratio,
                met: p99 <= threshold && error_ratio <= MAX_ERROR_RATIO,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::histogram::LatencyHistogram;
    use crate::record::Class;
    use crate::snapshot::ClassSnapshot;

    /// 100 samples of which the slowest `slow` take `slow_ms`, the rest 1 ms.
    fn class(name: &str, kind: Kind, slow: usize, slow_ms: u64) -> ClassSnapshot {
        let mut latency = LatencyHistogram::new();
        for i in 0..100 {
            let ms = if i < slow { slow_ms } else { 1 };
            latency.record(Duration::from_millis(ms));
        }
        ClassSnapshot {
            class: Class::new(name, kind),
            latency,
            errors_by_code: BTreeMap::new(),
            start_lag: None,
            active_s: None,
        }
    }

    #[test]
    fn each_kind_is_held_to_its_bound() {
        let snapshot = Snapshot {
            started_at: jiff::Timestamp::UNIX_EPOCH,
            duration: Duration::from_secs(1),
            classes: vec![
                // One slow sample in 100 is above p99: met.
                class("write", Kind::Mutating, 1, 5_000),
                // Two slow samples reach p99: not met.
                class("get", Kind::Read, 2, 1_500),
                class("list", Kind::ListNamespaced, 5, 4_900),
                class("list-all", Kind::ListCluster, 50, 31_000),
                class("events", Kind::Other, 100, 60_000),
                ClassSnapshot {
                    latency: LatencyHistogram::new(),
                    ..class("delete", Kind::Mutating, 0, 0)
                },
            ],
            series: Vec::new(),
        };
        let checks = check_slos(&snapshot);
        let verdicts: Vec<(&str, bool)> =
            checks.iter().map(|c| (c.class.as_str(), c.met)).collect();
        assert_eq!(
            verdicts,
            [
                ("write", true),
                ("get", false),
                ("list", true),
                ("list-all", false)
            ]
        );
        assert_eq!(checks[0].threshold_ms, 1_000.0);
        assert_eq!(checks[2].threshold_ms, 5_000.0);
        assert_eq!(checks[3].threshold_ms, 30_000.0);
        assert!(checks[1].p99_ms >= 1_499.0, "{:?}", checks[1]);
    }

    /// `failed` of the class's 100 fast calls failed with `code`.
    fn failing(code: &str, failed: u64) -> ClassSnapshot {
        ClassSnapshot {
            errors_by_code: BTreeMap::from([(code.to_owned(), failed)]),
            ..class("create", Kind::Mutating, 0, 0)
        }
    }

    #[test]
    fn failures_above_one_percent_fail_the_slo_but_conflicts_do_not() {
        let verdict = |class: ClassSnapshot| {
            let snapshot = Snapshot {
                started_at: jiff::Timestamp::UNIX_EPOCH,
                duration: Duration::from_secs(1),
                classes: vec![class],
                series: Vec::new(),
            };
            let check = check_slos(&snapshot).remove(0);
            (check.met, check.error_ratio)
        };
        assert_eq!(verdict(failing("422", 100)), (false, 1.0));
        assert_eq!(verdict(failing("503", 2)), (false, 0.02));
        assert_eq!(verdict(failing("timeout", 1)), (true, 0.01));
        assert_eq!(verdict(failing("409", 50)), (true, 0.0));
    }
}
