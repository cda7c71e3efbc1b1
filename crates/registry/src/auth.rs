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

/// Fetch a CSRF token from `token_endpoint_url` (with its own credential, if it needs one)
/// before the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsrfTokenAuth {
    /// Where to fetch the token.
    pub token_endpoint_url: String,
    /// The credential for the token endpoint, if it takes one (as in Compass, it may be left
    /// out: the token endpoint then gets only the headers and parameters below).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
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
                    credential: csrf.credential.clone(),
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
    /// The credential for the token endpoint (secrets masked); null when it takes none.
    credential: Option<CredentialData>,
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
                credential: csrf.credential.as_ref().map(CredentialData::from),
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
    /// The credential for the token endpoint, if it takes one.
    credential: Option<CredentialDataInput>,
    /// Headers to add to the token request.
    additional_headers: Option<HttpHeaders>,
    /// Query parameters to add to the token request.
    additional_query_params: Option<QueryParams>,
}

/// Authentication to perform before the call: `csrf` is required.
#[derive(InputObject)]
pub(crate) struct CredentialRequestAuthInput {
    /// Fetch a CSRF token first.
    csrf: Option<CsrfTokenCredentialRequestAuthInput>,
}

/// How eventplane is to authenticate a call. Every member is optional, as in Compass, but at
/// least one must be given: a credential, headers or query parameters (e.g. a static
/// `Authorization` header), or a CSRF token to fetch first (with which the call then sends the
/// token and the cookies the token endpoint set).
#[derive(InputObject)]
pub(crate) struct AuthInput {
    /// The credential to present.
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
        let csrf = match self.request_auth {
            None => None,
            Some(CredentialRequestAuthInput { csrf: None }) => {
                return Err(Error::invalid(
                    format!("{field}.requestAuth.csrf"),
                    "is required when requestAuth is given",
                ));
            }
            Some(CredentialRequestAuthInput { csrf: Some(csrf) }) => {
                Some(csrf.into_csrf(&format!("{field}.requestAuth.csrf"))?)
            }
        };
        let headers = self.additional_headers.unwrap_or_default();
        let query_params = self.additional_query_params.unwrap_or_default();
        if credential.is_none() && csrf.is_none() && headers.is_empty() && query_params.is_empty() {
            return Err(Error::invalid(
                field,
                "give at least one of credential, additionalHeaders, additionalQueryParams and \
                 requestAuth",
            ));
        }
        Ok(Auth {
            credential,
            additional_headers: headers,
            additional_query_params: query_params,
            csrf,
        })
    }
}

impl CsrfTokenCredentialRequestAuthInput {
    fn into_csrf(self, field: &str) -> Result<CsrfTokenAuth, Error> {
        let credential = match self.credential {
            Some(credential) => Some(credential.into_credential(&format!("{field}.credential"))?),
            None => None,
        };
        Ok(CsrfTokenAuth {
            token_endpoint_url: validate::http_url(
                &format!("{field}.tokenEndpointURL"),
                self.token_endpoint_url,
            )?,
            credential,
            additional_headers: self.additional_headers.unwrap_or_default(),
            additional_query_params: self.additional_query_params.unwrap_or_default(),
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
