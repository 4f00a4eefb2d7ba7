//! List continue tokens in upstream's format: base64 of
//! `{"v":"meta.k8s.io/v1","rv":N,"start":"<key>"}`, where `start` is the
//! key (relative to the list's prefix) to resume from and `rv` the revision
//! every page of the list is read at.

use base64::Engine;
use serde::{Deserialize, Serialize};

const VERSION: &str = "meta.k8s.io/v1";

/// A decoded continue token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinueToken {
    #[serde(rename = "v")]
    version: String,
    pub rv: i64,
    pub start: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContinueTokenError {
    #[error("continue key is not valid: {0}")]
    Malformed(String),
    #[error("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")]
    BadRevision,
    #[error("continue key is not valid: server does not recognize this encoded version {0:?}")]
    UnknownVersion(String),
    #[error("continue key is not valid: the start key may not escape the list's prefix")]
    Escapes,
}

pub fn encode(rv: i64, start: &str) -> String {
    let token = ContinueToken {
        version: VERSION.to_string(),
        rv,
        start: start.to_string(),
    };
    let json = serde_json::to_vec(&token).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(json)
}

pub fn decode(token: &str) -> Result<ContinueToken, ContinueTokenError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(token))
        .map_err(|err| ContinueTokenError::Malformed(err.to_string()))?;
    let decoded: ContinueToken =
        serde_json::from_slice(&bytes).map_err(|err| ContinueTokenError::Malformed(err.to_string()))?;
    if decoded.version != VERSION {
        return Err(ContinueTokenError::UnknownVersion(decoded.version));
    }
    if decoded.rv <= 0 {
        return Err(ContinueTokenError::BadRevision);
    }
    let escapes = decoded.start.starts_with('/')
        || decoded.start.split('/').any(|segment| segment == ".." || segment == ".");
    if escapes {
        return Err(ContinueTokenError::Escapes);
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let token = encode(42, "ns-1/cm-9\u{0}");
        let decoded = decode(&token).unwrap();
        assert_eq!((decoded.rv, decoded.start.as_str()), (42, "ns-1/cm-9\u{0}"));
    }

    #[test]
    fn rejects_bad_tokens() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(matches!(decode("%%%"), Err(ContinueTokenError::Malformed(_))));
        assert!(matches!(decode(&b64("{}")), Err(ContinueTokenError::Malformed(_))));
        assert!(matches!(
            decode(&b64(r#"{"v":"x","rv":1,"start":"a"}"#)),
            Err(ContinueTokenError::UnknownVersion(_))
        ));
        assert_eq!(decode(&b64(r#"{"v":"meta.k8s.io/v1","rv":0,"start":"a"}"#)), Err(ContinueTokenError::BadRevision));
        for start in ["/etc", "../x", "a/../../b"] {
            let token = b64(&format!(r#"{{"v":"meta.k8s.io/v1","rv":3,"start":"{start}"}}"#));
            assert_eq!(decode(&token), Err(ContinueTokenError::Escapes), "{start}");
        }
    }
}
