//! Response helpers shared by the server's routes.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use crate::error::ApiError;
use crate::server::Body;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub(crate) fn json_response(code: u16, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub(crate) fn protobuf_response(code: u16, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::protobuf::CONTENT_TYPE),
    );
    response
}

pub(crate) fn error_response(err: &ApiError) -> Response<Body> {
    error_response_in(err, false)
}

/// An error's Status, in protobuf when `protobuf` (the client accepts
/// nothing else), in JSON otherwise.
pub(crate) fn error_response_in(err: &ApiError, protobuf: bool) -> Response<Body> {
    let encoded = protobuf
        .then(|| crate::protobuf::encode(&err.status_value()).ok())
        .flatten();
    let mut response = match encoded {
        Some(bytes) => protobuf_response(err.code, bytes),
        None => json_response(err.code, err.status_body()),
    };
    if let Some(seconds) = err.retry_after
        && let Ok(v) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

pub(crate) fn text_response(body: String, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(full(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
