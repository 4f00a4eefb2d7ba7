//! Latency histograms: HDR histograms in microseconds that merge exactly.
//!
//! Every latency kstress reports goes through [`LatencyHistogram`], so that
//! per-worker, per-second and per-pod histograms can be added together
//! without the error that averaging percentiles would introduce. The wire
//! form is base64 of the HdrHistogram V2 compressed format, which other HDR
//! tooling can read as well.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use serde::{Deserialize, Serialize, Serializer};

use crate::Error;

/// Significant decimal digits kept for run totals: 0.1% relative error.
const TOTAL_FIGURES: u8 = 3;

/// Significant digits kept for the per-second time series: 1% relative
/// error is plenty for a p99 chart and keeps thousands of seconds small.
const SERIES_FIGURES: u8 = 2;

/// Latencies above this are recorded as this value, so that one absurd
/// sample (a clock jump, a request stuck for days) cannot grow a histogram
/// without bound.
pub const MAX_LATENCY: Duration = Duration::from_secs(3600);

/// Upper bounds, in milliseconds, of the pod-stress reference's Prometheus
/// histogram buckets: 0.5 ms doubling 14 times, up to 4.096 s.
pub const REFERENCE_BUCKETS_MS: [f64; 14] = [
    0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// A latency distribution with microsecond resolution.
///
/// Histograms resize themselves as larger values arrive, so an empty one is
/// cheap and merging never fails.
#[derive(Clone)]
pub struct LatencyHistogram(Histogram<u64>);

/// One cumulative bucket, as Prometheus reports it with `le`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Inclusive upper bound in milliseconds.
    pub le_ms: f64,
    /// Samples at or below the bound.
    pub count: u64,
}

impl LatencyHistogram {
    /// An empty histogram with the precision used for run totals.
    pub fn new() -> Self {
        Self::with_figures(TOTAL_FIGURES)
    }

    /// An empty histogram with the lower precision of the time series.
    pub(crate) fn coarse() -> Self {
        Self::with_figures(SERIES_FIGURES)
    }

    fn with_figures(figures: u8) -> Self {
        // Creation only fails for more than five significant figures; the
        // callers pass fixed values of two or three.
        let histogram = Histogram::new(figures).expect("2 or 3 significant figures are valid");
        Self(histogram)
    }

    /// Adds one sample; latencies beyond [`MAX_LATENCY`] count as that value.
    pub fn record(&mut self, latency: Duration) {
        let value = micros(latency);
        if self.0.record(value).is_err() {
            // Only a histogram that cannot resize refuses a value; keep the
            // sample, clamped to the histogram's range.
            self.0.saturating_record(value);
        }
    }

    /// Adds every sample of `other`, exactly.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if self.0.add(&other.0).is_err() {
            // `add` only refuses values beyond a histogram's fixed range, and
            // every histogram built here auto-resizes; still, copy value by
            // value rather than drop anything.
            for value in other.0.iter_recorded() {
                let (value, count) = (value.value_iterated_to(), value.count_at_value());
                if self.0.record_n(value, count).is_err() {
                    self.0.saturating_record_n(value, count);
                }
            }
        }
    }

    /// Forgets all samples but keeps the allocation for reuse.
    pub(crate) fn reset(&mut self) {
        self.0.reset();
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The latency at quantile `q` (0.0..=1.0); zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        Duration::from_micros(self.0.value_at_quantile(q))
    }

    /// The largest sample (to the histogram's precision); zero when empty.
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.0.max())
    }

    /// Mean latency; zero when empty.
    pub fn mean(&self) -> Duration {
        Duration::from_secs_f64(self.0.mean() / 1e6)
    }

    /// Cumulative counts at the given upper bounds (milliseconds), like a
    /// Prometheus histogram's `le` buckets.
    pub fn cumulative_buckets(&self, bounds_ms: &[f64]) -> Vec<Bucket> {
        bounds_ms
            .iter()
            .map(|&le_ms| Bucket {
                le_ms,
                count: self.0.count_between(0, (le_ms * 1000.0) as u64),
            })
            .collect()
    }

    /// The distribution as `(latency_ms, fraction of samples at or below)`
    /// points, one per distinct recorded value, for CDF charts.
    pub fn cdf_ms(&self) -> Vec<(f64, f64)> {
        let total = self.0.len() as f64;
        let mut seen = 0u64;
        self.0
            .iter_recorded()
            .map(|value| {
                seen += value.count_at_value();
                (
                    value.value_iterated_to() as f64 / 1000.0,
                    seen as f64 / total,
                )
            })
            .collect()
    }

    /// Base64 of the HdrHistogram V2 compressed (deflate) encoding.
    pub fn to_base64(&self) -> Result<String, Error> {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.0, &mut bytes)
            .map_err(|e| Error::Histogram(e.to_string()))?;
        Ok(BASE64.encode(bytes))
    }

    /// Parses [`to_base64`](Self::to_base64) output (or the uncompressed V2
    /// encoding), as written by another kstress worker.
    pub fn from_base64(encoded: &str) -> Result<Self, Error> {
        let bytes = BASE64
            .decode(encoded.trim())
            .map_err(|e| Error::Histogram(format!("invalid base64: {e}")))?;
        let mut histogram: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| Error::Histogram(e.to_string()))?;
        histogram.auto(true);
        Ok(Self(histogram))
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

/// Equal when both hold the same samples, whatever their allocated ranges.
impl PartialEq for LatencyHistogram {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .eq(other
                    .0
                    .iter_recorded()
                    .map(|v| (v.value_iterated_to(), v.count_at_value())))
    }
}

impl fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.count())
            .field("p50", &self.quantile(0.5))
            .field("p99", &self.quantile(0.99))
            .field("max", &self.max())
            .finish()
    }
}

impl Serialize for LatencyHistogram {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let encoded = self.to_base64().map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&encoded)
    }
}

impl<'de> Deserialize<'de> for LatencyHistogram {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let encoded = String::deserialize(deserializer)?;
        Self::from_base64(&encoded).map_err(serde::de::Error::custom)
    }
}

/// Whole microseconds, saturating at [`MAX_LATENCY`].
pub(crate) fn micros(latency: Duration) -> u64 {
    latency.min(MAX_LATENCY).as_micros() as u64
}

/// Milliseconds as a float, the unit of every figure in reports, with the
/// microsecond resolution of the histograms (no binary-fraction noise).
pub(crate) fn millis(latency: Duration) -> f64 {
    latency.as_micros() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_micros(values: impl IntoIterator<Item = u64>) -> LatencyHistogram {
        let mut histogram = LatencyHistogram::new();
        for value in values {
            histogram.record(Duration::from_micros(value));
        }
        histogram
    }

    #[test]
    fn merging_parts_equals_recording_everything_in_one() {
        let values: Vec<u64> = (0..20_000u64).map(|i| (i * 7919) % 2_500_000 + 1).collect();
        let whole = from_micros(values.iter().copied());
        let mut merged = LatencyHistogram::new();
        for part in values.chunks(1_237) {
            merged.merge(&from_micros(part.iter().copied()));
        }
        assert_eq!(merged, whole);
        assert_eq!(merged.count(), 20_000);
        for q in [0.5, 0.9, 0.99, 0.999, 0.9999, 1.0] {
            assert_eq!(merged.quantile(q), whole.quantile(q), "quantile {q}");
        }
    }

    #[test]
    fn base64_round_trip_keeps_every_sample() {
        let original = from_micros([1, 2, 500, 40_000, 3_000_000, 3_000_000]);
        let encoded = original.to_base64().unwrap();
        let decoded = LatencyHistogram::from_base64(&encoded).unwrap();
        assert_eq!(decoded, original);
        assert_eq!(decoded.max(), original.max());

        let mut grown = decoded;
        grown.record(Duration::from_secs(3000));
        assert_eq!(
            grown.count(),
            7,
            "a decoded histogram still accepts large values"
        );
    }

    #[test]
    fn serde_uses_the_base64_form() {
        let original = from_micros([10, 20, 30]);
        let json = serde_json::to_string(&original).unwrap();
        assert!(json.starts_with('"'), "{json}");
        let back: LatencyHistogram = serde_json::from_str(&json).unwrap();
        assert_eq!(back, original);
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(LatencyHistogram::from_base64("not base64!").is_err());
        assert!(LatencyHistogram::from_base64("aGVsbG8=").is_err());
    }

    #[test]
    fn percentiles_are_ordered() {
        let histogram = from_micros((1..=100_000u64).map(|i| i * i % 1_000_003));
        let qs = [0.5, 0.9, 0.99, 0.999, 0.9999, 1.0];
        let values: Vec<Duration> = qs.iter().map(|&q| histogram.quantile(q)).collect();
        assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
        assert_eq!(values[5], histogram.max());
    }

    #[test]
    fn reference_buckets_are_cumulative() {
        // 0.4 ms, 0.5 ms (on the bound), 0.7 ms, 3 ms, 4.096 s, 10 s.
        let histogram = from_micros([400, 500, 700, 3_000, 4_096_000, 10_000_000]);
        let buckets = histogram.cumulative_buckets(&REFERENCE_BUCKETS_MS);
        let counts: Vec<u64> = buckets.iter().map(|b| b.count).collect();
        assert_eq!(counts, [2, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5]);
        assert_eq!(buckets[13].le_ms, 4096.0);
    }

    #[test]
    fn huge_latencies_saturate() {
        let histogram = from_micros([u64::MAX / 2]);
        assert_eq!(histogram.count(), 1);
        assert!(histogram.max() <= MAX_LATENCY + Duration::from_secs(4));
    }

    #[test]
    fn cdf_ends_at_one() {
        let histogram = from_micros([1_000, 2_000, 2_000, 8_000]);
        let cdf = histogram.cdf_ms();
        assert_eq!(cdf.len(), 3);
        assert_eq!(cdf[0], (1.0, 0.25));
        assert_eq!(cdf[2].1, 1.0);
    }
}
