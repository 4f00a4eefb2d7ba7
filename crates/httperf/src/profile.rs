//! `GET /debug/pprof/profile?seconds=S`: a CPU profile of the whole
//! process, in the pprof protobuf format that `go tool pprof` and other
//! pprof tools read, or as an SVG flamegraph with `format=svg`.
//!
//! The profiler samples with `SIGPROF` and is process-wide, so only one
//! profile can be taken at a time; a second request gets 409 Conflict.

use std::time::Duration;

use bytes::Bytes;
use http::{StatusCode, header};
use pprof::protos::Message as _;

use crate::server::{Response, text};

/// Profile length when the request does not say, as in Go's net/http/pprof.
const DEFAULT_SECONDS: u64 = 30;
/// Longest profile the server agrees to take.
pub const MAX_SECONDS: u64 = 300;
/// Sampling rate; just under 100 Hz so that sampling does not run in
/// lockstep with 10 ms timers.
const FREQUENCY_HZ: i32 = 99;

/// The output the client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Pprof,
    Svg,
}

fn parse(query: Option<&str>) -> Result<(Duration, Format), String> {
    let mut seconds = DEFAULT_SECONDS;
    let mut format = Format::Pprof;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*key {
            "seconds" => {
                seconds = match value.parse::<u64>() {
                    Ok(s) if (1..=MAX_SECONDS).contains(&s) => s,
                    _ => {
                        return Err(format!(
                            "query parameter \"seconds\" must be an integer from 1 to \
                             {MAX_SECONDS}, got {value:?}"
                        ));
                    }
                }
            }
            "format" => {
                format = match &*value {
                    "pprof" | "proto" => Format::Pprof,
                    "svg" | "flamegraph" => Format::Svg,
                    _ => {
                        return Err(format!(
                            "query parameter \"format\" must be \"pprof\" or \"svg\", got {value:?}"
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok((Duration::from_secs(seconds), format))
}

/// Profiles the process for the requested time and answers with the
/// encoded profile. Dropping the future (client gone, server shutting
/// down) stops the profiler.
pub(crate) async fn handle(query: Option<&str>) -> Response {
    let (duration, format) = match parse(query) {
        Ok(parsed) => parsed,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let guard = match pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY_HZ)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
    {
        Ok(guard) => guard,
        Err(pprof::Error::Running) => {
            return text(
                StatusCode::CONFLICT,
                "a CPU profile is already being taken; retry when it ends",
            );
        }
        Err(err) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot start the CPU profiler: {err}"),
            );
        }
    };
    tokio::time::sleep(duration).await;
    // Symbolizing and encoding take a while; keep them off the runtime's
    // worker threads, which are serving traffic.
    let encoded = tokio::task::spawn_blocking(move || {
        let report = guard
            .report()
            .build()
            .map_err(|err| format!("cannot build the CPU profile: {err}"))?;
        drop(guard);
        encode(&report, format, duration)
    })
    .await;
    match encoded {
        Ok(Ok((content_type, body))) => http::Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type)
            .body(crate::server::full(body))
            .unwrap_or_else(|err| text(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())),
        Ok(Err(message)) => text(StatusCode::INTERNAL_SERVER_ERROR, message),
        Err(err) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("CPU profile encoding failed: {err}"),
        ),
    }
}

fn encode(
    report: &pprof::Report,
    format: Format,
    duration: Duration,
) -> Result<(&'static str, Bytes), String> {
    match format {
        Format::Pprof => {
            let profile = report
                .pprof()
                .map_err(|err| format!("cannot encode the CPU profile: {err}"))?;
            Ok(("application/octet-stream", profile.encode_to_vec().into()))
        }
        Format::Svg => {
            let mut svg = Vec::new();
            report
                .flamegraph(&mut svg)
                .map_err(|err| format!("cannot draw the flamegraph: {err}"))?;
            if svg.is_empty() {
                // The flamegraph writer draws nothing without samples; an
                // idle server still deserves a valid image.
                svg = format!(
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"40\">\
                     <text x=\"10\" y=\"25\">no CPU samples in {} s</text></svg>\n",
                    duration.as_secs()
                )
                .into_bytes();
            }
            Ok(("image/svg+xml", svg.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_bounded_and_format_is_checked() {
        assert_eq!(
            parse(None),
            Ok((Duration::from_secs(DEFAULT_SECONDS), Format::Pprof))
        );
        assert_eq!(
            parse(Some("seconds=2&format=svg")),
            Ok((Duration::from_secs(2), Format::Svg))
        );
        for query in ["seconds=0", "seconds=301", "seconds=x", "seconds=-1"] {
            let err = parse(Some(query)).unwrap_err();
            assert!(err.contains("\"seconds\""), "{query}: {err}");
        }
        assert!(
            parse(Some("format=gif"))
                .unwrap_err()
                .contains("\"format\"")
        );
    }
}
