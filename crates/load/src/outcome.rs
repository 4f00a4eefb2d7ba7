//! How a client call's result is counted.

use measure::Outcome;

/// The outcome of a call that returned `result`: the HTTP status of an API
/// error, or a short reason for failures that never got one.
pub fn of<T>(result: &Result<T, kube::Error>) -> Outcome {
    match result {
        Ok(_) => Outcome::Ok,
        Err(err) => failure(err),
    }
}

/// The outcome of a failed call.
pub fn failure(err: &kube::Error) -> Outcome {
    match err {
        kube::Error::Api(status) => Outcome::status(status.code),
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            if is_timeout(err) {
                Outcome::error("timeout")
            } else {
                Outcome::error("connection")
            }
        }
        kube::Error::SerdeError(_) => Outcome::error("decode"),
        kube::Error::ReadEvents(_) => Outcome::error("stream"),
        _ => Outcome::error("client"),
    }
}

/// The HTTP status of an API error, if the server answered with one.
pub fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

fn is_timeout(err: &kube::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        let text = current.to_string();
        if text.contains("timed out") || text.contains("deadline has elapsed") {
            return true;
        }
        source = current.source();
    }
    false
}

/// One line saying what went wrong: the server's message and status for
/// API errors, the innermost cause (e.g. "Connection refused") otherwise.
pub fn describe(err: &kube::Error) -> String {
    if let kube::Error::Api(status) = err {
        return format!("{} ({} {})", status.message, status.code, status.reason);
    }
    let mut innermost: &(dyn std::error::Error + 'static) = err;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    let top = err.to_string();
    let cause = innermost.to_string();
    if top.contains(&cause) {
        top
    } else {
        format!("{top}: {cause}")
    }
}
