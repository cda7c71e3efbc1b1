//! The project's one error type and its HTTP mapping.
//!
//! Variants are split into the caller's fault (4xx: the message is written for the client) and our
//! fault (5xx: the client gets a generic message; the cause stays in `Display` and `source()` for
//! the logs). [`Error::status`], [`Error::code`], [`Error::headers`] and [`Error::body`] are the
//! only mapping from errors to HTTP; components call them through one function of the Spin
//! adapter.

use serde::Serialize;
use serde_json::{Value, json};

use crate::store::StoreError;

/// A problem with one field of the input, reported in an error body's `details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Where the problem is: a field name or a JSON-pointer-like path (`spec.url`).
    pub field: String,
    /// What is wrong with it, written for the client.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Everything that can go wrong in eventplane, as seen by an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- the caller's fault -------------------------------------------------------------------
    /// 400: the request is malformed or fails validation; `details` names the offending fields.
    #[error("{message}")]
    BadRequest {
        /// Summary for the client.
        message: String,
        /// One entry per offending field (may be empty).
        details: Vec<FieldError>,
    },
    /// 401: no credentials, or credentials that do not authenticate anyone.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: the resource (or route) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists but not with this method.
    #[error("method {method} is not allowed on {path} (allowed: {})", allowed.join(", "))]
    MethodNotAllowed {
        /// The method that was used.
        method: String,
        /// The request path.
        path: String,
        /// The methods the path accepts; sent in the `Allow` header.
        allowed: Vec<String>,
    },
    /// 409: the request conflicts with the current state (e.g. a concurrent update).
    #[error("{0}")]
    Conflict(String),
    /// 409: something that must be unique (a name) is already taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// 413: the body is larger than the limit.
    #[error("payload exceeds the limit of {limit_bytes} bytes")]
    PayloadTooLarge {
        /// The limit that was exceeded.
        limit_bytes: u64,
    },
    /// 415: the content type is not one this endpoint accepts.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed but semantically unusable input (e.g. an invalid AsyncAPI document).
    #[error("{message}")]
    Unprocessable {
        /// Summary for the client.
        message: String,
        /// One entry per problem found (may be empty).
        details: Vec<FieldError>,
    },
    /// 422: a spec document (AsyncAPI) is invalid. `field` is the JSON pointer of the problem
    /// inside the document, `message` what is wrong there.
    #[error("invalid spec: {} (at {})", .0.message, .0.field)]
    InvalidSpec(FieldError),
    /// 429: slow down; `retry_after_seconds` becomes a `Retry-After` header.
    #[error("{message}")]
    TooManyRequests {
        /// Summary for the client.
        message: String,
        /// When the client may retry, if known.
        retry_after_seconds: Option<u64>,
    },

    // ---- our fault ----------------------------------------------------------------------------
    /// 503: the key-value store failed. The client sees a generic message.
    #[error("key-value store unavailable: {0}")]
    StoreUnavailable(#[from] StoreError),
    /// 500: a bug or an unexpected state. The client sees a generic message.
    #[error("internal error: {context}")]
    Internal {
        /// What we were doing, for the logs.
        context: String,
        /// The underlying cause, for the logs.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

/// The message clients get for [`Error::StoreUnavailable`].
const UNAVAILABLE_MESSAGE: &str = "the service is temporarily unavailable; try again later";
/// The message clients get for [`Error::Internal`].
const INTERNAL_MESSAGE: &str = "an internal error occurred";

impl Error {
    /// 400 with a message and no field details.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// 400 for one invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let detail = FieldError::new(field, message);
        Self::BadRequest {
            message: format!("invalid {}: {}", detail.field, detail.message),
            details: vec![detail],
        }
    }

    /// 400 for several invalid fields.
    pub fn validation(message: impl Into<String>, details: Vec<FieldError>) -> Self {
        Self::BadRequest {
            message: message.into(),
            details,
        }
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized(message.into())
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    /// 405 listing the methods the path accepts.
    pub fn method_not_allowed(
        method: impl Into<String>,
        path: impl Into<String>,
        allowed: Vec<String>,
    ) -> Self {
        Self::MethodNotAllowed {
            method: method.into(),
            path: path.into(),
            allowed,
        }
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }

    /// 409 for a unique name (or other unique value) that is already taken.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::AlreadyExists(message.into())
    }

    /// 422 for an invalid spec document: what is wrong, at which JSON pointer.
    pub fn invalid_spec(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidSpec(FieldError::new(path, message))
    }

    /// 413.
    pub fn payload_too_large(limit_bytes: u64) -> Self {
        Self::PayloadTooLarge { limit_bytes }
    }

    /// 415.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::UnsupportedMediaType(message.into())
    }

    /// 422 with the problems found.
    pub fn unprocessable(message: impl Into<String>, details: Vec<FieldError>) -> Self {
        Self::Unprocessable {
            message: message.into(),
            details,
        }
    }

    /// 429.
    pub fn too_many_requests(message: impl Into<String>, retry_after_seconds: Option<u64>) -> Self {
        Self::TooManyRequests {
            message: message.into(),
            retry_after_seconds,
        }
    }

    /// 500 describing what we were doing; the client only sees a generic message.
    pub fn internal(context: impl Into<String>) -> Self {
        Self::Internal {
            context: context.into(),
            source: None,
        }
    }

    /// 500 with the underlying cause kept for the logs.
    pub fn internal_with(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self::Internal {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// Whether the caller can fix this (4xx) rather than us (5xx).
    pub fn is_caller_fault(&self) -> bool {
        self.status() < 500
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest { .. } => 400,
            Self::Unauthorized(_) => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::Conflict(_) | Self::AlreadyExists(_) => 409,
            Self::PayloadTooLarge { .. } => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::Unprocessable { .. } | Self::InvalidSpec(_) => 422,
            Self::TooManyRequests { .. } => 429,
            Self::Internal { .. } => 500,
            Self::StoreUnavailable(_) => 503,
        }
    }

    /// The stable, machine-readable code sent as `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "BAD_REQUEST",
            Self::Unauthorized(_) => "UNAUTHORIZED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            Self::Conflict(_) => "CONFLICT",
            Self::AlreadyExists(_) => "ALREADY_EXISTS",
            Self::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            Self::Unprocessable { .. } => "UNPROCESSABLE_ENTITY",
            Self::InvalidSpec(_) => "INVALID_SPEC",
            Self::TooManyRequests { .. } => "TOO_MANY_REQUESTS",
            Self::Internal { .. } => "INTERNAL_ERROR",
            Self::StoreUnavailable(_) => "SERVICE_UNAVAILABLE",
        }
    }

    /// The message sent to the client: ours for the caller's fault, a generic one for our fault.
    pub fn public_message(&self) -> String {
        match self {
            Self::StoreUnavailable(_) => UNAVAILABLE_MESSAGE.to_owned(),
            Self::Internal { .. } => INTERNAL_MESSAGE.to_owned(),
            caller_fault => caller_fault.to_string(),
        }
    }

    /// The per-field problems sent as `error.details`.
    pub fn details(&self) -> &[FieldError] {
        match self {
            Self::BadRequest { details, .. } | Self::Unprocessable { details, .. } => details,
            Self::InvalidSpec(problem) => std::slice::from_ref(problem),
            _ => &[],
        }
    }

    /// Extra response headers this error calls for (`Allow`, `Retry-After`, `WWW-Authenticate`).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::MethodNotAllowed { allowed, .. } => vec![("allow", allowed.join(", "))],
            Self::TooManyRequests {
                retry_after_seconds: Some(seconds),
                ..
            } => vec![("retry-after", seconds.to_string())],
            Self::Unauthorized(_) => vec![("www-authenticate", "Bearer".to_owned())],
            _ => Vec::new(),
        }
    }

    /// The JSON body: `{"error": {"code": ..., "message": ..., "details": [{field, message}]}}`.
    pub fn body(&self) -> Value {
        json!({
            "error": {
                "code": self.code(),
                "message": self.public_message(),
                "details": self.details(),
            }
        })
    }
}

impl From<crate::ids::ParseIdError> for Error {
    fn from(err: crate::ids::ParseIdError) -> Self {
        Self::bad_request(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_variants() -> Vec<Error> {
        vec![
            Error::validation("bad", vec![FieldError::new("name", "is required")]),
            Error::unauthorized("no token"),
            Error::forbidden("not yours"),
            Error::not_found("no such app"),
            Error::method_not_allowed("POST", "/x", vec!["GET".into(), "PUT".into()]),
            Error::conflict("exists"),
            Error::already_exists("name taken"),
            Error::payload_too_large(10),
            Error::unsupported_media_type("want json"),
            Error::unprocessable("not asyncapi", vec![]),
            Error::invalid_spec("/channels", "is required"),
            Error::too_many_requests("slow down", Some(3)),
            Error::internal("boom"),
            Error::from(StoreError::Backend("disk on fire".into())),
        ]
    }

    #[test]
    fn every_variant_maps_to_its_status_and_code() {
        let mapped: Vec<(u16, &str)> = all_variants()
            .iter()
            .map(|e| (e.status(), e.code()))
            .collect();
        assert_eq!(
            mapped,
            vec![
                (400, "BAD_REQUEST"),
                (401, "UNAUTHORIZED"),
                (403, "FORBIDDEN"),
                (404, "NOT_FOUND"),
                (405, "METHOD_NOT_ALLOWED"),
                (409, "CONFLICT"),
                (409, "ALREADY_EXISTS"),
                (413, "PAYLOAD_TOO_LARGE"),
                (415, "UNSUPPORTED_MEDIA_TYPE"),
                (422, "UNPROCESSABLE_ENTITY"),
                (422, "INVALID_SPEC"),
                (429, "TOO_MANY_REQUESTS"),
                (500, "INTERNAL_ERROR"),
                (503, "SERVICE_UNAVAILABLE"),
            ]
        );
    }

    #[test]
    fn codes_are_upper_snake_case() {
        for err in all_variants() {
            let code = err.code();
            assert!(
                code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{code}"
            );
        }
    }

    #[test]
    fn body_has_exactly_code_message_and_details() {
        let err = Error::invalid("url", "must be absolute");
        assert_eq!(
            err.body(),
            json!({"error": {
                "code": "BAD_REQUEST",
                "message": "invalid url: must be absolute",
                "details": [{"field": "url", "message": "must be absolute"}],
            }})
        );
        assert_eq!(
            Error::not_found("no such app").body(),
            json!({"error": {"code": "NOT_FOUND", "message": "no such app", "details": []}})
        );
    }

    #[test]
    fn our_faults_do_not_leak_internals_to_the_client() {
        let store = Error::from(StoreError::Backend(
            "sqlite: disk I/O error at /var/x".into(),
        ));
        let internal = Error::internal_with("decoding app record", std::io::Error::other("secret"));
        for err in [store, internal] {
            assert!(!err.is_caller_fault());
            let body = err.body().to_string();
            assert!(!body.contains("sqlite"), "{body}");
            assert!(!body.contains("secret"), "{body}");
            assert!(!body.contains("decoding"), "{body}");
        }
    }

    #[test]
    fn our_faults_keep_the_cause_for_logging() {
        let err = Error::from(StoreError::Backend("disk I/O error".into()));
        assert!(err.to_string().contains("disk I/O error"));
        let err = Error::internal_with("decoding app record", std::io::Error::other("bad byte"));
        assert!(err.to_string().contains("decoding app record"));
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("bad byte"));
    }

    #[test]
    fn method_not_allowed_lists_allowed_methods() {
        let err =
            Error::method_not_allowed("DELETE", "/graphql", vec!["GET".into(), "POST".into()]);
        assert_eq!(err.headers(), vec![("allow", "GET, POST".to_owned())]);
        assert_eq!(
            err.public_message(),
            "method DELETE is not allowed on /graphql (allowed: GET, POST)"
        );
    }

    #[test]
    fn retry_after_and_www_authenticate_headers() {
        assert_eq!(
            Error::too_many_requests("slow", Some(7)).headers(),
            vec![("retry-after", "7".to_owned())]
        );
        assert!(Error::too_many_requests("slow", None).headers().is_empty());
        assert_eq!(
            Error::unauthorized("no token").headers(),
            vec![("www-authenticate", "Bearer".to_owned())]
        );
    }

    #[test]
    fn invalid_spec_reports_the_json_pointer_as_its_detail() {
        let err = Error::invalid_spec("/channels/user~1signedup", "has no message");
        assert_eq!(
            err.public_message(),
            "invalid spec: has no message (at /channels/user~1signedup)"
        );
        assert_eq!(
            err.body(),
            json!({"error": {
                "code": "INVALID_SPEC",
                "message": "invalid spec: has no message (at /channels/user~1signedup)",
                "details": [{"field": "/channels/user~1signedup", "message": "has no message"}],
            }})
        );
    }
}
