//! The upstream Kubernetes API call latency SLOs, checked per class.
//!
//! Upstream (sig-scalability) holds the 99th percentile of API call latency
//! to 1 s for mutating and single-object read calls, 5 s for lists within a
//! namespace and 30 s for cluster-wide lists. kstress checks each class's
//! p99 over the whole run against the bound for its [`Kind`].

use serde::{Deserialize, Serialize};

use crate::histogram::millis;
use crate::record::Kind;
use crate::snapshot::Snapshot;

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
    /// Whether the p99 is within the bound.
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
            Some(SloCheck {
                class: class.class.name.clone(),
                kind: class.class.kind,
                threshold_ms: millis(threshold),
                p99_ms: millis(p99),
                met: p99 <= threshold,
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
}
