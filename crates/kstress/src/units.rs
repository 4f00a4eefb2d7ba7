//! Command-line values with units: durations and byte sizes.

use std::time::Duration;

/// Parses a duration: `30s`, `500ms`, `2m`, `1h30m`, or a plain number of
/// seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let signed: jiff::SignedDuration = text
        .parse()
        .map_err(|_| format!("invalid duration {text:?} (expected e.g. 30s, 500ms, 2m, 1h30m)"))?;
    Duration::try_from(signed).map_err(|_| format!("duration {text:?} must not be negative"))
}

/// A duration option whose default `--help` shows in the unit it is
/// written in (`60s`, `250ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span(pub Duration);

impl std::str::FromStr for Span {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_duration(text).map(Span)
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.subsec_nanos() == 0 {
            write!(f, "{}s", self.0.as_secs())
        } else {
            write!(f, "{}ms", self.0.as_millis())
        }
    }
}

/// Parses a byte size: a plain number of bytes, or a number with a unit:
/// `KiB`, `MiB`, `GiB` (also written `K`/`Ki`, ...) or the decimal `kB`,
/// `MB`, `GB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "Ki" | "KiB" => 1 << 10,
        "M" | "Mi" | "MiB" => 1 << 20,
        "G" | "Gi" | "GiB" => 1 << 30,
        "k" | "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "invalid size {text:?}: unknown unit {other:?} (use B, KiB, MiB, GiB, kB, MB or GB)"
            ));
        }
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("invalid size {text:?} (expected e.g. 10KiB)"))?;
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-5s").is_err());
    }

    #[test]
    fn spans_print_as_they_parse() {
        for text in ["60s", "250ms", "0s"] {
            let span: Span = text.parse().expect("a span");
            assert_eq!(span.to_string(), text);
        }
        assert_eq!(
            "2m".parse::<Span>().map(|s| s.to_string()),
            Ok("120s".into())
        );
    }

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("10KiB"), Ok(10 * 1024));
        assert_eq!(parse_size("10Ki"), Ok(10 * 1024));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2kB"), Ok(2000));
        assert_eq!(parse_size("16 GiB"), Ok(16 << 30));
        assert_eq!(parse_size("2K"), Ok(2048));
        assert!(parse_size("1TB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("10 parsecs").is_err());
        assert!(parse_size("KiB").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }
}
