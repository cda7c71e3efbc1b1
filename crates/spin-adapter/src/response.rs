//! Building HTTP responses: the one mapping from [`Error`] to a response, and JSON bodies.

use eventplane_core::Error;
use serde::Serialize;
use spin_sdk::http::Response;

/// The content type of every JSON response.
const JSON: &str = "application/json";

/// The response for `err`: its status, extra headers (`Allow`, `Retry-After`,
/// `WWW-Authenticate`) and JSON body `{"error": {"code", "message", "details"}}`.
///
/// Errors that are our fault are logged (to stderr, which Spin collects) with their full cause;
/// the client only gets the generic message.
pub fn error_response(err: &Error) -> Response {
    if !err.is_caller_fault() {
        eprintln!(
            "eventplane: {} {}: {}",
            err.status(),
            err.code(),
            cause_chain(err)
        );
    }
    let mut builder = Response::builder();
    builder.status(err.status()).header("content-type", JSON);
    for (name, value) in err.headers() {
        builder.header(name, value);
    }
    builder.body(err.body().to_string()).build()
}

/// A JSON response with `status` and `body`. If `body` cannot be encoded (a bug), the response
/// is the 500 of [`error_response`].
pub fn json_response<T: Serialize + ?Sized>(status: u16, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => Response::builder()
            .status(status)
            .header("content-type", JSON)
            .body(bytes)
            .build(),
        Err(err) => error_response(&Error::internal_with("encoding a response body", err)),
    }
}

/// `err` and all its sources, for the log.
fn cause_chain(err: &Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use eventplane_core::{FieldError, StoreError};
    use serde_json::{Value, json};

    use super::*;

    fn header(response: &Response, name: &str) -> Option<String> {
        response
            .header(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    }

    fn body(response: &Response) -> Value {
        serde_json::from_slice(response.body()).expect("JSON body")
    }

    #[test]
    fn error_response_carries_status_content_type_and_body() {
        let err = Error::validation("bad input", vec![FieldError::new("name", "is required")]);
        let response = error_response(&err);
        assert_eq!(*response.status(), 400);
        assert_eq!(header(&response, "content-type").as_deref(), Some(JSON));
        assert_eq!(body(&response), err.body());
    }

    #[test]
    fn method_not_allowed_response_has_allow_header() {
        let err = Error::method_not_allowed("PUT", "/graphql", vec!["GET".into(), "POST".into()]);
        let response = error_response(&err);
        assert_eq!(*response.status(), 405);
        assert_eq!(header(&response, "allow").as_deref(), Some("GET, POST"));
        assert_eq!(body(&response)["error"]["code"], "METHOD_NOT_ALLOWED");
    }

    #[test]
    fn our_fault_response_is_generic() {
        let err = Error::from(StoreError::Backend("sqlite locked at /srv/kv.db".into()));
        let response = error_response(&err);
        assert_eq!(*response.status(), 503);
        let text = String::from_utf8_lossy(response.body()).into_owned();
        assert!(!text.contains("sqlite"), "{text}");
    }

    #[test]
    fn json_response_encodes_the_body() {
        let response = json_response(201, &json!({"id": "app_1"}));
        assert_eq!(*response.status(), 201);
        assert_eq!(header(&response, "content-type").as_deref(), Some(JSON));
        assert_eq!(body(&response), json!({"id": "app_1"}));
    }

    #[test]
    fn cause_chain_includes_sources() {
        let err = Error::internal_with("decoding", std::io::Error::other("bad byte"));
        assert_eq!(cause_chain(&err), "internal error: decoding: bad byte");
    }
}
