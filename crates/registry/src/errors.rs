//! The one mapping from the project's [`Error`] to GraphQL errors.
//!
//! Every error carries `extensions.code`, one of [`ErrorCode`]; `INVALID_SPEC` also carries
//! `extensions.path` (the JSON pointer of the problem in the document), and input errors carry
//! `extensions.details` (`[{field, message}]`). Our own faults get a generic message: their
//! cause never reaches the client. Errors raised by async-graphql itself (syntax, validation,
//! bad scalar values) are the client's and get `BAD_USER_INPUT` from [`ErrorCodes`].
//!
//! Resolvers return [`ApiResult`]; since [`ApiError`] has no `Display`, async-graphql's
//! catch-all conversion (which would send `Display` text, internals included) cannot apply.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest};
use async_graphql::{ErrorExtensionValues, Response, Value};
use eventplane_core::Error;

/// The codes sent as `extensions.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The input is malformed or fails validation.
    BadUserInput,
    /// A spec document is invalid; `extensions.path` says where.
    InvalidSpec,
    /// The object does not exist (or belongs to another tenant).
    NotFound,
    /// A unique value (an application name) is taken.
    NotUnique,
    /// No valid credentials.
    Unauthenticated,
    /// The store did not answer (e.g. Redis is down): nothing was done; try again later.
    ServiceUnavailable,
    /// Our fault; the message is generic.
    Internal,
}

impl ErrorCode {
    /// The code as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::InvalidSpec => "INVALID_SPEC",
            Self::NotFound => "NOT_FOUND",
            Self::NotUnique => "NOT_UNIQUE",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }

    /// The code for `err`.
    pub fn of(err: &Error) -> Self {
        match err {
            Error::BadRequest { .. }
            | Error::PayloadTooLarge { .. }
            | Error::UnsupportedMediaType(_)
            | Error::MethodNotAllowed { .. }
            | Error::TooManyRequests { .. } => Self::BadUserInput,
            Error::InvalidSpec(_) | Error::Unprocessable { .. } => Self::InvalidSpec,
            Error::NotFound(_) => Self::NotFound,
            Error::AlreadyExists(_) => Self::NotUnique,
            Error::Unauthorized(_) | Error::Forbidden(_) => Self::Unauthenticated,
            Error::StoreUnavailable(_) => Self::ServiceUnavailable,
            // A compare-and-swap that kept losing: the message (try again) is safe to show.
            Error::Conflict(_) | Error::Internal { .. } => Self::Internal,
        }
    }
}

/// `err` as a GraphQL error: public message, `extensions.code`, and `path` / `details` when
/// the error has them.
pub fn to_graphql_error(err: &Error) -> async_graphql::Error {
    let code = ErrorCode::of(err);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code.as_str());
    if let Error::InvalidSpec(problem) = err {
        extensions.set("path", problem.field.as_str());
    }
    let details: Vec<Value> = err
        .details()
        .iter()
        .map(|detail| {
            Value::from_json(serde_json::json!({
                "field": detail.field,
                "message": detail.message,
            }))
            .unwrap_or(Value::Null)
        })
        .collect();
    if !details.is_empty() {
        extensions.set("details", Value::List(details));
    }
    let mut gql = async_graphql::Error::new(err.public_message());
    gql.extensions = Some(extensions);
    gql
}

/// An [`Error`] on its way out of a resolver, already mapped. Deliberately without `Display`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError(async_graphql::Error);

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        Self(to_graphql_error(&err))
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        err.0
    }
}

/// What resolvers return.
pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// Gives every error that has no `extensions.code` (those async-graphql raises while parsing
/// and validating a request) the code `BAD_USER_INPUT`.
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        for error in &mut response.errors {
            let extensions = error.extensions.get_or_insert_with(Default::default);
            if extensions.get("code").is_none() {
                extensions.set("code", ErrorCode::BadUserInput.as_str());
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use eventplane_core::{FieldError, StoreError};

    use super::*;

    fn extension(err: &async_graphql::Error, name: &str) -> Option<Value> {
        err.extensions.as_ref().and_then(|e| e.get(name)).cloned()
    }

    #[test]
    fn codes_follow_the_error_kind() {
        let cases = [
            (Error::invalid("in.name", "bad"), "BAD_USER_INPUT"),
            (Error::payload_too_large(10), "BAD_USER_INPUT"),
            (Error::invalid_spec("/info", "missing"), "INVALID_SPEC"),
            (Error::not_found("no application"), "NOT_FOUND"),
            (Error::already_exists("taken"), "NOT_UNIQUE"),
            (Error::unauthorized("no token"), "UNAUTHENTICATED"),
            (Error::conflict("busy, try again"), "INTERNAL"),
            (
                Error::from(StoreError::Backend("redis did not answer".into())),
                "SERVICE_UNAVAILABLE",
            ),
            (Error::internal("boom"), "INTERNAL"),
        ];
        for (err, code) in cases {
            let gql = to_graphql_error(&err);
            assert_eq!(extension(&gql, "code"), Some(Value::from(code)), "{err:?}");
        }
    }

    #[test]
    fn invalid_spec_carries_the_path() {
        let gql = to_graphql_error(&Error::invalid_spec("/channels/a", "no message"));
        assert_eq!(extension(&gql, "path"), Some(Value::from("/channels/a")));
        assert_eq!(gql.message, "invalid spec: no message (at /channels/a)");
    }

    #[test]
    fn input_errors_carry_their_fields() {
        let err = Error::validation("bad input", vec![FieldError::new("in.url", "not http")]);
        let details = extension(&to_graphql_error(&err), "details");
        let expected = serde_json::json!([{"field": "in.url", "message": "not http"}]);
        assert_eq!(details.map(|v| v.into_json().ok()), Some(Some(expected)));
    }

    #[test]
    fn our_faults_do_not_leak() {
        let store = Error::from(StoreError::Backend("sqlite: /var/db locked".into()));
        let internal = Error::internal_with("decoding t/acme/r/app/x", std::io::Error::other("x"));
        for err in [store, internal] {
            let gql = to_graphql_error(&err);
            assert!(!gql.message.contains("sqlite"), "{}", gql.message);
            assert!(!gql.message.contains("t/acme"), "{}", gql.message);
            assert!(extension(&gql, "details").is_none());
        }
    }
}
