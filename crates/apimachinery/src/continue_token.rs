//! List continue tokens in upstream's format (k8s.io/apiserver
//! `pkg/storage/continue.go`): unpadded URL-safe base64 of
//! `{"v":"meta.k8s.io/v1","rv":N,"start":"<key>"}`, where `start` is the
//! storage key, relative to the list's prefix, to resume from (inclusive:
//! the last returned key followed by `\0`) and `rv` the revision every page
//! of the list is read at.
//!
//! Tokens come back from clients, so decoding validates them: a start key
//! must not climb out of the list's prefix (`..`, `.`, `//`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

const VERSION: &str = "meta.k8s.io/v1";

/// A decoded, validated continue token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContinueToken {
    /// The revision of the list. Never 0; negative means "the latest
    /// revision", which upstream hands out with a 410 so that a client can
    /// finish an expired list inconsistently.
    pub rv: i64,
    /// The key to resume from, relative to the list's prefix and already
    /// cleaned of a leading `/`; may be empty (start of the prefix).
    pub start: String,
}

impl ContinueToken {
    /// The revision to read the next page at; `None` for the latest.
    pub fn read_revision(&self) -> Option<i64> {
        (self.rv > 0).then_some(self.rv)
    }
}

/// Why a continue token was rejected; the text is upstream's, which the
/// server returns as `400 invalid continue token: <text>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContinueTokenError {
    #[error("continue key is not valid: {0}")]
    Malformed(String),
    #[error("continue key is not valid: server does not recognize this encoded version {0}")]
    UnrecognizedVersion(String),
    #[error(
        "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
    )]
    InvalidRevision,
    #[error("continue key is not valid: encoded start key empty (version meta.k8s.io/v1)")]
    EmptyStartKey,
    /// The start key is not in clean path form, e.g. `../x` or `a//b`.
    #[error("continue key is not valid: {0}")]
    UncleanStartKey(String),
}

/// Encodes a token for a list read at `rv` that resumes at `start` (the
/// key relative to the list's prefix).
pub fn encode(rv: i64, start: &str) -> String {
    // Field order as upstream's struct, so tokens are byte-identical.
    let json = format!(
        r#"{{"v":"{VERSION}","rv":{rv},"start":{}}}"#,
        Value::from(start)
    );
    URL_SAFE_NO_PAD.encode(json)
}

/// Upstream's token struct; absent fields decode as zero values, like Go.
#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    v: String,
    #[serde(default)]
    rv: i64,
    #[serde(default)]
    start: String,
}

/// Decodes and validates a token from a `continue` query parameter.
pub fn decode(token: &str) -> Result<ContinueToken, ContinueTokenError> {
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|err| {
        let offset = match err {
            base64::DecodeError::InvalidByte(offset, _)
            | base64::DecodeError::InvalidLastSymbol(offset, _) => offset,
            base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => {
                token.len()
            }
        };
        ContinueTokenError::Malformed(format!("illegal base64 data at input byte {offset}"))
    })?;
    let wire: Option<Wire> = serde_json::from_slice(&bytes)
        .map_err(|err| ContinueTokenError::Malformed(err.to_string()))?;
    let Wire { v, rv, start } = wire.unwrap_or(Wire {
        v: String::new(),
        rv: 0,
        start: String::new(),
    });
    if v != VERSION {
        return Err(ContinueTokenError::UnrecognizedVersion(v));
    }
    if rv == 0 {
        return Err(ContinueTokenError::InvalidRevision);
    }
    if start.is_empty() {
        return Err(ContinueTokenError::EmptyStartKey);
    }
    let rooted = if start.starts_with('/') {
        start.clone()
    } else {
        format!("/{start}")
    };
    if clean_rooted(&rooted) != rooted {
        return Err(ContinueTokenError::UncleanStartKey(start));
    }
    Ok(ContinueToken {
        rv,
        start: rooted[1..].to_string(),
    })
}

/// Go's `path.Clean` for a path starting with `/`: no empty, `.` or `..`
/// elements, no trailing slash except for the root.
fn clean_rooted(path: &str) -> String {
    let mut elements: Vec<&str> = Vec::new();
    for element in path.split('/') {
        match element {
            "" | "." => {}
            ".." => {
                elements.pop();
            }
            other => elements.push(other),
        }
    }
    format!("/{}", elements.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(v: &str, rv: i64, start: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            r#"{{"v":{},"rv":{rv},"start":{}}}"#,
            Value::from(v),
            Value::from(start)
        ))
    }

    #[test]
    fn encodes_upstreams_bytes() {
        // base64.RawURLEncoding of {"v":"meta.k8s.io/v1","rv":42,"start":"p1\u0000"} as Go writes it.
        let token = encode(42, "p1\u{0}");
        let json = URL_SAFE_NO_PAD.decode(&token).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"v":"meta.k8s.io/v1","rv":42,"start":"p1\u0000"}"#
        );
        assert!(
            !token.contains(['=', '+', '/']),
            "unpadded URL-safe alphabet: {token}"
        );
    }

    #[test]
    fn round_trip() {
        for (rv, start) in [
            (42, "ns-1/cm-9\u{0}"),
            (1, "a"),
            (-1, "x\u{0}"),
            (i64::MAX, "ü/ß"),
        ] {
            let decoded = decode(&encode(rv, start)).unwrap();
            assert_eq!(
                decoded,
                ContinueToken {
                    rv,
                    start: start.to_string()
                }
            );
        }
        assert_eq!(decode(&encode(7, "a")).unwrap().read_revision(), Some(7));
        assert_eq!(decode(&encode(-1, "a")).unwrap().read_revision(), None);
    }

    #[test]
    fn upstream_decode_cases() {
        let ok = |token: String| decode(&token).unwrap().start;
        assert_eq!(ok(wire(VERSION, 1, "key")), "key");
        assert_eq!(ok(wire(VERSION, 1, "/")), "", "root path");
        assert_eq!(
            ok(wire(VERSION, 1, "/key")),
            "key",
            "a leading slash stays inside the prefix"
        );

        assert_eq!(
            decode(&wire("", 1, "key")),
            Err(ContinueTokenError::UnrecognizedVersion(String::new()))
        );
        assert_eq!(
            decode(&wire("v1", 1, "key")),
            Err(ContinueTokenError::UnrecognizedVersion("v1".into()))
        );
        assert_eq!(
            decode(&wire(VERSION, 0, "key")),
            Err(ContinueTokenError::InvalidRevision)
        );
        assert_eq!(
            decode(&wire(VERSION, 1, "")),
            Err(ContinueTokenError::EmptyStartKey)
        );
        for traversal in [
            "../key",
            "./key",
            "./../key",
            "key/../..",
            "a//b",
            "a/",
            "a/./b",
        ] {
            assert_eq!(
                decode(&wire(VERSION, 1, traversal)),
                Err(ContinueTokenError::UncleanStartKey(traversal.into())),
                "{traversal}"
            );
        }
    }

    #[test]
    fn rejects_malformed_tokens_with_upstream_text() {
        assert_eq!(
            decode("%%%").unwrap_err().to_string(),
            "continue key is not valid: illegal base64 data at input byte 0"
        );
        let padded = base64::engine::general_purpose::STANDARD
            .encode(r#"{"v":"meta.k8s.io/v1","rv":1,"start":"a"}"#);
        assert!(padded.ends_with('='));
        assert!(
            matches!(decode(&padded), Err(ContinueTokenError::Malformed(_))),
            "padding is not accepted"
        );
        assert!(matches!(
            decode(&URL_SAFE_NO_PAD.encode("{")),
            Err(ContinueTokenError::Malformed(_))
        ));
        assert!(matches!(
            decode(&URL_SAFE_NO_PAD.encode(r#"{"v":"meta.k8s.io/v1","rv":"1","start":"a"}"#)),
            Err(ContinueTokenError::Malformed(_))
        ));
        assert_eq!(
            decode(&URL_SAFE_NO_PAD.encode("null")),
            Err(ContinueTokenError::UnrecognizedVersion(String::new()))
        );
        assert_eq!(
            decode(&wire("v2", 1, "a")).unwrap_err().to_string(),
            "continue key is not valid: server does not recognize this encoded version v2"
        );
        assert_eq!(
            decode(&wire(VERSION, 1, "../x")).unwrap_err().to_string(),
            "continue key is not valid: ../x"
        );
    }
}
