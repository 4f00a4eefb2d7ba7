//! The JSON spelling of the API machinery's time types: `meta.v1.Time`
//! and `MicroTime` as RFC 3339. (`meta.v1.Duration`, a Go duration
//! string, is in no message of the kinds served.)

use super::TranscodeError;

/// The seconds of Go's zero `time.Time` (year 1), which upstream writes
/// for an unset non-pointer Time and JSON shows as absent.
pub const ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// RFC 3339 in UTC, to the second (`Time`) or the microsecond
/// (`MicroTime`), as Go's JSON marshalling of those types writes it.
pub fn format_time(seconds: i64, nanos: i32, micro: bool) -> Result<String, TranscodeError> {
    let nanos = if micro { nanos - nanos % 1000 } else { 0 };
    let ts = jiff::Timestamp::new(seconds, nanos)
        .map_err(|err| TranscodeError::Malformed(format!("time out of range: {err}")))?;
    let format = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Ok(ts.strftime(format).to_string())
}

/// Seconds and nanoseconds of an RFC 3339 time.
pub fn parse_time(text: &str) -> Result<(i64, i32), String> {
    let ts: jiff::Timestamp = text
        .parse()
        .map_err(|err| format!("not an RFC 3339 time: {err}"))?;
    Ok((ts.as_second(), ts.subsec_nanosecond()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_rfc3339() {
        assert_eq!(
            format_time(1_700_000_000, 123_456_789, false).unwrap(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            format_time(1_700_000_000, 123_456_789, true).unwrap(),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20.123456Z"),
            Ok((1_700_000_000, 123_456_000))
        );
    }
}
