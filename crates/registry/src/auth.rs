//! Credentials for calling out (webhooks, fetch requests, external buses): the stored model
//! [`Auth`], its GraphQL input, and its GraphQL output with every secret masked.
//!
//! Secrets (basic passwords, OAuth client secrets, and the same inside CSRF request auth) are
//! stored as given, because eventplane must present them, and are never returned in clear:
//! the schema shows [`SECRET_MASK`] instead.

use async_graphql::{ID, InputObject, Object, SimpleObject, Union};
use eventplane_core::Error;
use eventplane_outbound::{CsrfAuth, RequestAuth};
use serde::{Deserialize, Serialize};

use crate::scalars::{HttpHeaders, QueryParams};
use crate::validate;

pub use eventplane_outbound::Credential;
pub use eventplane_outbound::auth::SECRET_MASK;

/// How to authenticate a call: a credential, extra headers and query parameters, and
/// optionally a CSRF token to fetch first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auth {
    /// The credential to present, if any (an auth may carry only headers, e.g. a static bearer
    /// token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
    /// Headers to add to the call.
    #[serde(default, skip_serializing_if = "HttpHeaders::is_empty")]
    pub additional_headers: HttpHeaders,
    /// Query parameters to add to the call.
    #[serde(default, skip_serializing_if = "QueryParams::is_empty")]
    pub additional_query_params: QueryParams,
    /// A CSRF token to obtain before the call, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf: Option<CsrfTokenAuth>,
}

/// Fetch a CSRF token from `token_endpoint_url` (with its own credential) before the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsrfTokenAuth {
    /// Where to fetch the token.
    pub token_endpoint_url: String,
    /// The credential for the token endpoint.
    pub credential: Credential,
    /// Headers to add to the token request.
    #[serde(default, skip_serializing_if = "HttpHeaders::is_empty")]
    pub additional_headers: HttpHeaders,
    /// Query parameters to add to the token request.
    #[serde(default, skip_serializing_if = "QueryParams::is_empty")]
    pub additional_query_params: QueryParams,
}

impl Auth {
    /// The auth of a call out, as `eventplane-outbound` applies it.
    pub fn to_request_auth(&self) -> RequestAuth {
        RequestAuth {
            credential: self.credential.clone(),
            headers: self.additional_headers.0.clone(),
            query_params: self.additional_query_params.0.clone(),
            csrf: self.csrf.as_ref().map(|csrf| CsrfAuth {
                token_endpoint_url: csrf.token_endpoint_url.clone(),
                auth: Box::new(RequestAuth {
                    credential: Some(csrf.credential.clone()),
                    headers: csrf.additional_headers.0.clone(),
                    query_params: csrf.additional_query_params.0.clone(),
                    csrf: None,
                }),
            }),
        }
    }
}

// ---- output ---------------------------------------------------------------------------------

/// HTTP basic credentials. The password is never returned in clear.
#[derive(SimpleObject)]
pub(crate) struct BasicCredentialData {
    /// The user name.
    username: String,
    /// Always `********`: the password is stored but never returned.
    password: String,
}

/// OAuth 2.0 client credentials. The client secret is never returned in clear.
#[derive(SimpleObject)]
#[graphql(name = "OAuthCredentialData")]
pub(crate) struct OAuthCredentialData {
    /// The client id.
    client_id: ID,
    /// Always `********`: the secret is stored but never returned.
    client_secret: String,
    /// The token endpoint.
    url: String,
}

/// A credential: basic or OAuth.
#[derive(Union)]
pub(crate) enum CredentialData {
    /// HTTP basic.
    Basic(BasicCredentialData),
    /// OAuth 2.0 client credentials.
    OAuth(OAuthCredentialData),
}

impl From<&Credential> for CredentialData {
    fn from(credential: &Credential) -> Self {
        match credential {
            Credential::Basic { username, .. } => Self::Basic(BasicCredentialData {
                username: username.clone(),
                password: SECRET_MASK.to_owned(),
            }),
            Credential::OAuth { client_id, url, .. } => Self::OAuth(OAuthCredentialData {
                client_id: ID(client_id.clone()),
                client_secret: SECRET_MASK.to_owned(),
                url: url.clone(),
            }),
        }
    }
}

/// Authentication to perform before the call.
#[derive(SimpleObject)]
pub(crate) struct CredentialRequestAuth {
    /// Fetch a CSRF token first.
    csrf: Option<CsrfTokenCredentialRequestAuth>,
}

/// Fetch a CSRF token first, with its own credential.
#[derive(SimpleObject)]
#[graphql(name = "CSRFTokenCredentialRequestAuth")]
pub(crate) struct CsrfTokenCredentialRequestAuth {
    /// Where to fetch the token.
    #[graphql(name = "tokenEndpointURL")]
    token_endpoint_url: String,
    /// The credential for the token endpoint (secrets masked).
    credential: CredentialData,
    /// Headers to add to the token request.
    additional_headers: Option<HttpHeaders>,
    /// Query parameters to add to the token request.
    additional_query_params: Option<QueryParams>,
}

fn non_empty<T: Clone>(value: &T, is_empty: bool) -> Option<T> {
    (!is_empty).then(|| value.clone())
}

/// How eventplane authenticates a call. Secrets are masked.
#[Object(name = "Auth")]
impl Auth {
    /// The credential (secrets masked); null when the auth is only headers or parameters.
    async fn credential(&self) -> Option<CredentialData> {
        self.credential.as_ref().map(CredentialData::from)
    }

    /// Headers added to the call.
    async fn additional_headers(&self) -> Option<HttpHeaders> {
        non_empty(&self.additional_headers, self.additional_headers.is_empty())
    }

    /// Query parameters added to the call.
    async fn additional_query_params(&self) -> Option<QueryParams> {
        non_empty(
            &self.additional_query_params,
            self.additional_query_params.is_empty(),
        )
    }

    /// Authentication performed before the call.
    async fn request_auth(&self) -> Option<CredentialRequestAuth> {
        let csrf = self.csrf.as_ref()?;
        Some(CredentialRequestAuth {
            csrf: Some(CsrfTokenCredentialRequestAuth {
                token_endpoint_url: csrf.token_endpoint_url.clone(),
                credential: CredentialData::from(&csrf.credential),
                additional_headers: non_empty(
                    &csrf.additional_headers,
                    csrf.additional_headers.is_empty(),
                ),
                additional_query_params: non_empty(
                    &csrf.additional_query_params,
                    csrf.additional_query_params.is_empty(),
                ),
            }),
        })
    }
}

// ---- input ----------------------------------------------------------------------------------

/// HTTP basic credentials.
#[derive(InputObject)]
pub(crate) struct BasicCredentialDataInput {
    /// The user name.
    username: String,
    /// The password; stored, never returned.
    password: String,
}

/// OAuth 2.0 client credentials.
#[derive(InputObject)]
#[graphql(name = "OAuthCredentialDataInput")]
pub(crate) struct OAuthCredentialDataInput {
    /// The client id.
    client_id: ID,
    /// The client secret; stored, never returned.
    client_secret: String,
    /// The token endpoint (http or https).
    url: String,
}

/// A credential: exactly one of `basic` and `oauth`.
#[derive(InputObject)]
pub(crate) struct CredentialDataInput {
    /// HTTP basic.
    basic: Option<BasicCredentialDataInput>,
    /// OAuth 2.0 client credentials.
    oauth: Option<OAuthCredentialDataInput>,
}

/// Fetch a CSRF token first, with its own credential.
#[derive(InputObject)]
#[graphql(name = "CSRFTokenCredentialRequestAuthInput")]
pub(crate) struct CsrfTokenCredentialRequestAuthInput {
    /// Where to fetch the token (http or https).
    #[graphql(name = "tokenEndpointURL")]
    token_endpoint_url: String,
    /// The credential for the token endpoint.
    credential: CredentialDataInput,
    /// Headers to add to the token request.
    additional_headers: Option<HttpHeaders>,
    /// Query parameters to add to the token request.
    additional_query_params: Option<QueryParams>,
}

/// Authentication to perform before the call.
#[derive(InputObject)]
pub(crate) struct CredentialRequestAuthInput {
    /// Fetch a CSRF token first.
    csrf: Option<CsrfTokenCredentialRequestAuthInput>,
}

/// How eventplane is to authenticate a call.
#[derive(InputObject)]
pub(crate) struct AuthInput {
    /// The credential to present; may be left out when the headers (e.g. a static
    /// `Authorization`) or query parameters are the whole authentication.
    credential: Option<CredentialDataInput>,
    /// Headers to add to the call.
    additional_headers: Option<HttpHeaders>,
    /// Query parameters to add to the call.
    additional_query_params: Option<QueryParams>,
    /// Authentication to perform before the call.
    request_auth: Option<CredentialRequestAuthInput>,
}

impl AuthInput {
    /// Validates the input (`field` names it in errors) into the stored model.
    pub(crate) fn into_auth(self, field: &str) -> Result<Auth, Error> {
        let credential = match self.credential {
            Some(credential) => Some(credential.into_credential(&format!("{field}.credential"))?),
            None => None,
        };
        let headers_or_params = self
            .additional_headers
            .as_ref()
            .is_some_and(|h| !h.is_empty())
            || self
                .additional_query_params
                .as_ref()
                .is_some_and(|p| !p.is_empty());
        if credential.is_none() && !headers_or_params {
            return Err(Error::invalid(
                format!("{field}.credential"),
                "is required unless additionalHeaders or additionalQueryParams carry the \
                 authentication",
            ));
        }
        let csrf = match self.request_auth.and_then(|request_auth| request_auth.csrf) {
            None => None,
            Some(csrf) => {
                let field = format!("{field}.requestAuth.csrf");
                Some(CsrfTokenAuth {
                    token_endpoint_url: validate::http_url(
                        &format!("{field}.tokenEndpointURL"),
                        csrf.token_endpoint_url,
                    )?,
                    credential: csrf
                        .credential
                        .into_credential(&format!("{field}.credential"))?,
                    additional_headers: csrf.additional_headers.unwrap_or_default(),
                    additional_query_params: csrf.additional_query_params.unwrap_or_default(),
                })
            }
        };
        Ok(Auth {
            credential,
            additional_headers: self.additional_headers.unwrap_or_default(),
            additional_query_params: self.additional_query_params.unwrap_or_default(),
            csrf,
        })
    }
}

impl CredentialDataInput {
    fn into_credential(self, field: &str) -> Result<Credential, Error> {
        match (self.basic, self.oauth) {
            (Some(basic), None) => Ok(Credential::Basic {
                username: validate::required_text(
                    &format!("{field}.basic.username"),
                    basic.username,
                    validate::MAX_SHORT_TEXT,
                )?,
                password: basic.password,
            }),
            (None, Some(oauth)) => Ok(Credential::OAuth {
                client_id: validate::required_text(
                    &format!("{field}.oauth.clientId"),
                    oauth.client_id.0,
                    validate::MAX_SHORT_TEXT,
                )?,
                client_secret: oauth.client_secret,
                url: validate::http_url(&format!("{field}.oauth.url"), oauth.url)?,
            }),
            _ => Err(Error::invalid(
                field,
                "give exactly one of `basic` and `oauth`",
            )),
        }
    }
}

/// Validates an optional auth input.
pub(crate) fn optional_auth(input: Option<AuthInput>, field: &str) -> Result<Option<Auth>, Error> {
    input.map(|auth| auth.into_auth(field)).transpose()
}
