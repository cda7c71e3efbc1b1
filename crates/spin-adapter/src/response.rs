//! Building HTTP responses: the one mapping from [`Error`] to a response, and JSON bodies.

use eventplane_core::Error;
use serde::Serialize;
use spin_sdk::http::{OutgoingBody, OutgoingResponse, Response, ResponseOutparam};

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

/// Sends `response` through `out` in one piece: with a `Content-Length` ([`framed`]), and with
/// its body written and finished *before* the response is handed to the runtime.
///
/// Why: a runtime that has the response head but not yet the body writes the head in a packet of
/// its own and the body in a second small one, which Nagle's algorithm holds back until the
/// client acknowledges the first; clients delay that acknowledgement by up to 40 ms. Spin does
/// not set `TCP_NODELAY`, and on Spin every key-value call moves the instance to another thread,
/// so the head often went out alone: one publish in four took 40–50 ms instead of a few.
///
/// WASI HTTP buffers one chunk of the body (up to 1 MiB on wasmtime and Spin) before the response
/// is set; a longer body is sent after the head, chunk by chunk, as before.
pub fn send_response(out: ResponseOutparam, response: Response) {
    let mut response = framed(response);
    let bytes = std::mem::take(response.body_mut());
    let outgoing = match OutgoingResponse::try_from(response) {
        Ok(outgoing) => outgoing,
        Err(e) => {
            eprintln!("eventplane: could not convert a response: {e:?}");
            return;
        }
    };
    let Ok(body) = outgoing.body() else {
        eprintln!("eventplane: a response body was taken twice");
        return;
    };
    let Ok(stream) = body.write() else {
        eprintln!("eventplane: a response body stream was taken twice");
        return;
    };
    let fits = stream
        .check_write()
        .is_ok_and(|budget| usize::try_from(budget).is_ok_and(|b| b >= bytes.len()));
    if fits {
        if !bytes.is_empty()
            && let Err(e) = stream.write(&bytes)
        {
            eprintln!("eventplane: could not write a response body: {e:?}");
        }
        drop(stream);
        finish(body);
        out.set(outgoing);
        return;
    }
    out.set(outgoing);
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        let budget = match stream.check_write() {
            Ok(0) => {
                stream.subscribe().block();
                continue;
            }
            Ok(budget) => usize::try_from(budget).unwrap_or(usize::MAX),
            Err(e) => {
                eprintln!("eventplane: the client is gone mid-response: {e:?}");
                return;
            }
        };
        let (chunk, tail) = rest.split_at(budget.min(rest.len()));
        if let Err(e) = stream.write(chunk) {
            eprintln!("eventplane: could not write a response body: {e:?}");
            return;
        }
        rest = tail;
    }
    drop(stream);
    finish(body);
}

fn finish(body: OutgoingBody) {
    if let Err(e) = OutgoingBody::finish(body, None) {
        eprintln!("eventplane: could not finish a response body: {e:?}");
    }
}

/// `response` with a `Content-Length` header for its body, so that the runtime sends it with a
/// known length instead of chunks (whose closing chunk would be one more small write).
/// (`204` and `304` answers carry no body and no length, as HTTP requires.)
pub fn framed(mut response: Response) -> Response {
    if !matches!(*response.status(), 204 | 304) {
        let length = response.body().len().to_string();
        response.set_header("content-length", length);
    }
    response
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
    fn framed_responses_state_their_length_except_where_http_forbids_one() {
        let response = framed(json_response(202, &json!({"id": "1"})));
        assert_eq!(header(&response, "content-length").as_deref(), Some("10"));
        let empty = framed(Response::new(200, ()));
        assert_eq!(header(&empty, "content-length").as_deref(), Some("0"));
        for status in [204, 304] {
            let response = framed(Response::new(status, ()));
            assert_eq!(header(&response, "content-length"), None, "{status}");
        }
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
