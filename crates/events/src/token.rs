//! Publisher access tokens: issuing ours, publishing their keys, verifying tokens from trusted
//! issuers, and the `401`/`403` answers.
//!
//! # Our tokens
//!
//! A [`SigningKey`] is an ES256 key (P-256, [`SigningKey::generate`] or a PKCS#8/SEC1 PEM) or an
//! RS256 key (RSA of at least 2048 bits, PKCS#8 or PKCS#1 PEM). Its `kid` is its RFC 7638 JWK
//! thumbprint (SHA-256, base64url), so it is stable for a key and changes when the key is rotated.
//! [`issue`] signs [`AccessClaims`] (`iss`, `aud`, `sub`, `tenant`, `app`, `scope`, `iat`, `exp`)
//! with a header carrying `alg`, `kid` and `typ: "JWT"`. [`SigningKey::jwks`] is the document for
//! `GET /oauth/jwks.json`.
//!
//! # Verification
//!
//! A [`Verifier`] knows the trusted issuers ([`TrustedIssuer`]: issuer, audience, key set, the
//! claim naming the application, a default tenant). [`Verifier::verify`]:
//!
//! 1. splits the token and reads its header and claims without trusting them;
//! 2. accepts only `RS256`, `ES256` and `EdDSA` (`none`, `HS*`, `PS*`, … are rejected);
//! 3. picks the issuer by the unverified `iss` (unknown → [`AuthError::UntrustedIssuer`]);
//! 4. requires a `kid` found in that issuer's key set (else [`AuthError::UnknownKey`], so the caller
//!    can refresh the issuer's JWKS once and retry);
//! 5. requires the key's type to agree with `alg` (RSA ↔ RS256, EC P-256 ↔ ES256, OKP Ed25519 ↔
//!    EdDSA; a JWK `alg`, when present, must be the same), which, with step 2, defeats the
//!    "HS256 signed with the RSA public key" confusion;
//! 6. verifies the signature, then the claims: `exp` required, `exp`/`nbf` with
//!    [`LEEWAY_SECONDS`] of leeway, `aud` (string or array) containing the issuer's audience, and
//!    the application claim present.
//!
//! Tokens without `kid` are rejected: every issuer we trust (ours, OpenID Connect providers,
//! Google for Pub/Sub push) sets it, and trying every key would blur the unknown-key signal.
//!
//! # Errors
//!
//! [`AuthError::status`] is `401` for anything wrong with the token (or no token) and `403` for a
//! valid token that may not do this ([`authorize`]); [`AuthError::www_authenticate`] is the
//! RFC 6750 challenge to send with it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use eventplane_core::Error;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::cloudevents;

/// The scope that allows publishing events.
pub const SCOPE_PUBLISH: &str = "events:publish";
/// The default lifetime of our access tokens: 15 minutes.
pub const DEFAULT_TOKEN_TTL_SECONDS: u64 = 900;
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 60;
/// The claim naming the application in our tokens.
pub const APP_CLAIM: &str = "app";
/// The claim naming the tenant.
pub const TENANT_CLAIM: &str = "tenant";

/// The claim of our tokens naming the application's id (tokens issued before it was added lack
/// it). Only a hint, to fetch the application ahead: the application is the one [`APP_CLAIM`]
/// names.
pub const APP_ID_CLAIM: &str = "app_id";
/// The realm of our `WWW-Authenticate` challenges.
pub const REALM: &str = "eventplane";
/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// A problem with a signing key (configuration, not the client's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

impl From<KeyError> for Error {
    fn from(err: KeyError) -> Self {
        Error::internal(err.0)
    }
}

/// Base64url without padding.
fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A public key as a JSON Web Key (RFC 7517), of the kinds eventplane signs or verifies with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `RSA`, `EC` or `OKP`.
    pub kty: String,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Intended use; `sig` when present.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// Algorithm: `RS256`, `ES256` or `EdDSA` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Curve of an EC or OKP key: `P-256` or `Ed25519`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x coordinate, or the OKP public key (base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate (base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus (base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent (base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

impl Jwk {
    /// The one algorithm this key may verify, from its type and curve; `None` for keys eventplane
    /// does not support.
    pub fn algorithm(&self) -> Option<Algorithm> {
        let alg = match (self.kty.as_str(), self.crv.as_deref()) {
            ("RSA", _) => Algorithm::RS256,
            ("EC", Some("P-256")) => Algorithm::ES256,
            ("OKP", Some("Ed25519")) => Algorithm::EdDSA,
            _ => return None,
        };
        match self.alg.as_deref() {
            None => Some(alg),
            Some(declared) if declared == alg_name(alg) => Some(alg),
            Some(_) => None,
        }
    }

    /// Why this key cannot be used for verifying signatures, if it cannot.
    fn unusable(&self) -> Option<&'static str> {
        let decoded_len = |part: &Option<String>| {
            part.as_deref()
                .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
                .map(|bytes| bytes.len())
        };
        if self.kid.as_deref().is_none_or(str::is_empty) {
            return Some("no kid");
        }
        if self.key_use.as_deref().is_some_and(|u| u != "sig") {
            return Some("not a signing key");
        }
        match self.algorithm() {
            None => Some("unsupported key type, curve or algorithm"),
            Some(Algorithm::RS256) => match (decoded_len(&self.n), decoded_len(&self.e)) {
                (Some(n), Some(e)) if n * 8 >= MIN_RSA_BITS && (1..=8).contains(&e) => None,
                (Some(_), Some(_)) => Some("RSA key too small"),
                _ => Some("RSA key without valid n and e"),
            },
            Some(Algorithm::ES256) => match (decoded_len(&self.x), decoded_len(&self.y)) {
                (Some(32), Some(32)) => None,
                _ => Some("EC key without valid x and y"),
            },
            Some(_) => match decoded_len(&self.x) {
                Some(32) => None,
                _ => Some("OKP key without a valid x"),
            },
        }
    }

    /// The key for jsonwebtoken.
    fn decoding_key(&self) -> Option<DecodingKey> {
        match self.algorithm()? {
            Algorithm::RS256 => {
                DecodingKey::from_rsa_components(self.n.as_deref()?, self.e.as_deref()?).ok()
            }
            Algorithm::ES256 => {
                DecodingKey::from_ec_components(self.x.as_deref()?, self.y.as_deref()?).ok()
            }
            Algorithm::EdDSA => DecodingKey::from_ed_components(self.x.as_deref()?).ok(),
            _ => None,
        }
    }

    /// The RFC 7638 thumbprint (SHA-256, base64url) of an RSA or EC public key.
    fn thumbprint(&self) -> String {
        let canonical = match self.kty.as_str() {
            "RSA" => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                self.e.as_deref().unwrap_or_default(),
                self.n.as_deref().unwrap_or_default()
            ),
            _ => format!(
                r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
                self.crv.as_deref().unwrap_or_default(),
                self.kty,
                self.x.as_deref().unwrap_or_default(),
                self.y.as_deref().unwrap_or_default()
            ),
        };
        b64(&Sha256::digest(canonical.as_bytes()))
    }
}

/// The name of an algorithm in a JWT header or JWK.
fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        _ => "unsupported",
    }
}

/// A JSON Web Key Set (RFC 7517 §5): `{"keys": [...]}`.
///
/// [`Jwks::parse`] reads an external issuer's set leniently (keys eventplane cannot use are left
/// out), so the gateway should cache the raw document and parse it when it uses it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// A JWKS document that is not even a key set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JWKS document: {0}")]
pub struct JwksError(String);

impl Jwks {
    /// Parses a JWKS document, keeping the keys that can verify RS256, ES256 or EdDSA signatures
    /// and have a `kid`, and silently leaving out every other entry (encryption keys, other
    /// curves or algorithms, malformed entries). Fails only when the document is not a JSON
    /// object with a `keys` array.
    pub fn parse(document: &[u8]) -> Result<Self, JwksError> {
        let value: Value =
            serde_json::from_slice(document).map_err(|err| JwksError(err.to_string()))?;
        let Some(entries) = value.get("keys").and_then(Value::as_array) else {
            return Err(JwksError(
                "expected a JSON object with a \"keys\" array".into(),
            ));
        };
        let keys = entries
            .iter()
            .filter_map(|entry| serde_json::from_value::<Jwk>(entry.clone()).ok())
            .filter(|jwk| jwk.unusable().is_none())
            .collect();
        Ok(Self { keys })
    }

    /// The key with this `kid`.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|key| key.kid.as_deref() == Some(kid))
    }

    /// This set plus the keys of `other` whose `kid` it does not have yet (e.g. the current and
    /// the previous signing key during a rotation).
    pub fn merged(mut self, other: &Jwks) -> Self {
        for key in &other.keys {
            if let Some(kid) = &key.kid
                && self.find(kid).is_none()
            {
                self.keys.push(key.clone());
            }
        }
        self
    }
}

/// The private key our tokens are signed with.
#[derive(Clone)]
pub struct SigningKey {
    algorithm: Algorithm,
    encoding: EncodingKey,
    jwk: Jwk,
    pem: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &alg_name(self.algorithm))
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a PEM private key: a P-256 EC key (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`)
    /// signs ES256, an RSA key of at least 2048 bits (PKCS#8 `PRIVATE KEY` or PKCS#1
    /// `RSA PRIVATE KEY`) signs RS256. Literal `\n` sequences (as a PEM squeezed into one
    /// environment variable often has) are read as line breaks.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let pem = pem.replace("\\n", "\n");
        let pem = pem.trim();
        if pem.contains("-----BEGIN EC PRIVATE KEY-----") {
            let key = p256::SecretKey::from_sec1_pem(pem)
                .map_err(|_| KeyError("not a valid P-256 SEC1 EC private key".into()))?;
            return Self::from_p256(&key);
        }
        if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            let key = rsa::RsaPrivateKey::from_pkcs1_pem(pem)
                .map_err(|_| KeyError("not a valid PKCS#1 RSA private key".into()))?;
            return Self::from_rsa(&key);
        }
        if pem.contains("-----BEGIN PRIVATE KEY-----") {
            if let Ok(key) = p256::SecretKey::from_pkcs8_pem(pem) {
                return Self::from_p256(&key);
            }
            if let Ok(key) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
                return Self::from_rsa(&key);
            }
            return Err(KeyError(
                "the PKCS#8 key is neither a P-256 EC key nor an RSA key".into(),
            ));
        }
        Err(KeyError(
            "expected a PEM private key (PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)".into(),
        ))
    }

    /// A fresh P-256 key (ES256) from the system's random generator.
    pub fn generate() -> Result<Self, Error> {
        // A random 32-byte string is a valid scalar unless it is zero or not below the group
        // order, which happens with probability below 2^-32; retry a few times anyway.
        for _ in 0..8 {
            let bytes = eventplane_core::random::bytes::<32>()?;
            if let Ok(key) = p256::SecretKey::from_slice(&bytes) {
                return Ok(Self::from_p256(&key)?);
            }
        }
        Err(Error::internal("could not generate a P-256 key"))
    }

    fn from_p256(key: &p256::SecretKey) -> Result<Self, KeyError> {
        let der = key
            .to_pkcs8_der()
            .map_err(|err| KeyError(format!("encoding the EC key: {err}")))?;
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|err| KeyError(format!("encoding the EC key: {err}")))?;
        let point = key.public_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(KeyError("the EC public key is the identity".into()));
        };
        let mut jwk = Jwk {
            kty: "EC".into(),
            kid: None,
            key_use: Some("sig".into()),
            alg: Some("ES256".into()),
            crv: Some("P-256".into()),
            x: Some(b64(x)),
            y: Some(b64(y)),
            n: None,
            e: None,
        };
        jwk.kid = Some(jwk.thumbprint());
        Ok(Self {
            algorithm: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(der.as_bytes()),
            jwk,
            pem: pem.to_string(),
        })
    }

    fn from_rsa(key: &rsa::RsaPrivateKey) -> Result<Self, KeyError> {
        if key.size() * 8 < MIN_RSA_BITS {
            return Err(KeyError(format!(
                "the RSA key has {} bits; at least {MIN_RSA_BITS} are required",
                key.size() * 8
            )));
        }
        let der = key
            .to_pkcs1_der()
            .map_err(|err| KeyError(format!("encoding the RSA key: {err}")))?;
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|err| KeyError(format!("encoding the RSA key: {err}")))?;
        let mut jwk = Jwk {
            kty: "RSA".into(),
            kid: None,
            key_use: Some("sig".into()),
            alg: Some("RS256".into()),
            crv: None,
            x: None,
            y: None,
            n: Some(b64(&key.n().to_bytes_be())),
            e: Some(b64(&key.e().to_bytes_be())),
        };
        jwk.kid = Some(jwk.thumbprint());
        Ok(Self {
            algorithm: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk,
            pem: pem.to_string(),
        })
    }

    /// The key as a PKCS#8 PEM (to store a generated key). Secret: never return it to a client.
    pub fn to_pem(&self) -> &str {
        &self.pem
    }

    /// `ES256` or `RS256`.
    pub fn algorithm(&self) -> &'static str {
        alg_name(self.algorithm)
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        self.jwk.kid.as_deref().unwrap_or_default()
    }

    /// The public key as a JWK (with `kid`, `use: "sig"` and `alg`).
    pub fn public_jwk(&self) -> Jwk {
        self.jwk.clone()
    }

    /// The JWKS document with this key: the body of `GET /oauth/jwks.json`.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![self.public_jwk()],
        }
    }
}

/// The claims of our access tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: our token endpoint's issuer name.
    pub iss: String,
    /// Audience: the gateway.
    pub aud: String,
    /// Subject: the client id.
    pub sub: String,
    /// Tenant of the application.
    pub tenant: String,
    /// The application's name.
    pub app: String,
    /// The application's id ([`APP_ID_CLAIM`]), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Space-separated scopes: [`SCOPE_PUBLISH`].
    pub scope: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds).
    pub exp: u64,
}

impl AccessClaims {
    /// Claims for a publish token issued at `now` for `ttl_seconds`.
    pub fn publish(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        client_id: impl Into<String>,
        tenant: impl Into<String>,
        app: impl Into<String>,
        now: u64,
        ttl_seconds: u64,
    ) -> Self {
        Self {
            iss: issuer.into(),
            aud: audience.into(),
            sub: client_id.into(),
            tenant: tenant.into(),
            app: app.into(),
            app_id: None,
            scope: SCOPE_PUBLISH.to_owned(),
            iat: now,
            exp: now.saturating_add(ttl_seconds),
        }
    }

    /// These claims naming the application's id too.
    pub fn with_app_id(mut self, app_id: impl Into<String>) -> Self {
        self.app_id = Some(app_id.into());
        self
    }
}

/// Signs `claims` with `key`: a compact JWT whose header has `alg`, `kid` and `typ: "JWT"`.
pub fn issue(key: &SigningKey, claims: &AccessClaims) -> Result<String, KeyError> {
    let mut header = Header::new(key.algorithm);
    header.kid = Some(key.kid().to_owned());
    header.typ = Some("JWT".to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding)
        .map_err(|err| KeyError(format!("signing the token: {err}")))
}

/// An issuer whose tokens the gateway accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIssuer {
    /// The `iss` its tokens carry.
    pub issuer: String,
    /// The audience its tokens must name in `aud`.
    pub audience: String,
    /// Its public keys.
    pub keys: Jwks,
    /// The claim naming the application (`app` for ours).
    pub app_claim: String,
    /// The tenant when a token has no `tenant` claim.
    pub default_tenant: Option<String>,
}

impl TrustedIssuer {
    /// Our own token endpoint: application in the [`APP_CLAIM`] claim.
    pub fn ours(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        keys: Jwks,
        default_tenant: Option<String>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            keys,
            app_claim: APP_CLAIM.to_owned(),
            default_tenant,
        }
    }
}

/// Who a verified token says is publishing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publisher {
    /// The `tenant` claim, or the issuer's default tenant.
    pub tenant: Option<String>,
    /// The application named by the issuer's application claim.
    pub app: String,
    /// The granted scopes (`scope`, space-separated, or `scp`).
    pub scopes: Vec<String>,
    /// The token's issuer.
    pub issuer: String,
    /// The token's subject (`sub`), if any.
    pub subject: Option<String>,
}

impl Publisher {
    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Why a request is not authenticated (`401`) or not authorized (`403`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// 401: no bearer token was sent.
    #[error("a bearer token is required")]
    MissingToken,
    /// 401: the token is malformed, uses a refused algorithm, or its signature or claims are bad.
    #[error("{0}")]
    InvalidToken(String),
    /// 401: `exp` has passed (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// 401: `nbf` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// 401: `iss` is not a trusted issuer.
    #[error("the token's issuer is not trusted")]
    UntrustedIssuer,
    /// 401: `aud` does not name this service.
    #[error("the token is not meant for this service (aud)")]
    WrongAudience,
    /// 401: the `kid` is not in the issuer's key set. The caller may refresh that issuer's JWKS
    /// once and verify again.
    #[error("the token's signing key is unknown")]
    UnknownKey {
        /// The (unverified) issuer.
        issuer: String,
        /// The unknown key id.
        kid: String,
    },
    /// 403: the token lacks the scope.
    #[error("the token lacks the scope {required}")]
    InsufficientScope {
        /// The scope that is required.
        required: String,
    },
    /// 403: the token's application may not do this (another application's events).
    #[error("{0}")]
    Forbidden(String),
}

/// Makes text safe inside an RFC 6750 quoted `error_description` (no `"`, `\` or non-ASCII).
fn quoted_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c == ' ' || c.is_ascii_graphic() => c,
            _ => '?',
        })
        .collect()
}

impl AuthError {
    /// `401` or `403`.
    pub fn status(&self) -> u16 {
        match self {
            Self::InsufficientScope { .. } | Self::Forbidden(_) => 403,
            _ => 401,
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3): `Bearer realm="eventplane"` when no token was
    /// sent, `error="invalid_token"` for a bad token, `error="insufficient_scope"` for a missing
    /// scope; `None` for [`AuthError::Forbidden`].
    pub fn www_authenticate(&self) -> Option<String> {
        let description = quoted_safe(&self.to_string());
        match self {
            Self::MissingToken => Some(format!("Bearer realm=\"{REALM}\"")),
            Self::InsufficientScope { required } => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", \
                 error_description=\"{description}\", scope=\"{}\"",
                quoted_safe(required)
            )),
            Self::Forbidden(_) => None,
            _ => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", \
                 error_description=\"{description}\""
            )),
        }
    }

    /// As the project's error (`Unauthorized` or `Forbidden`). Its own `WWW-Authenticate` is a
    /// bare `Bearer`: send [`AuthError::www_authenticate`] instead.
    pub fn to_error(&self) -> Error {
        match self.status() {
            403 => Error::forbidden(self.to_string()),
            _ => Error::unauthorized(self.to_string()),
        }
    }
}

impl From<AuthError> for Error {
    fn from(err: AuthError) -> Self {
        err.to_error()
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive). No header,
/// or another scheme, is [`AuthError::MissingToken`]; an empty token is invalid.
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, AuthError> {
    let value = authorization.map(str::trim).unwrap_or_default();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MissingToken);
    }
    match token.trim() {
        "" => Err(AuthError::InvalidToken("the bearer token is empty".into())),
        token => Ok(token),
    }
}

/// Decodes one base64url JSON object part of a JWT.
fn json_part(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A JSON object: a JWT's header or claims.
type JsonObject = Map<String, Value>;

/// The header and claims of a compact JWT, unverified.
fn split(token: &str) -> Result<(JsonObject, JsonObject), AuthError> {
    let malformed = || AuthError::InvalidToken("the token is not a well-formed JWT".into());
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err(malformed());
    };
    if signature.is_empty() {
        return Err(AuthError::InvalidToken("the token is not signed".into()));
    }
    Ok((
        json_part(header).ok_or_else(malformed)?,
        json_part(claims).ok_or_else(malformed)?,
    ))
}

/// The `iss` of a token, unverified: which issuer's keys the caller needs before verifying it.
pub fn unverified_issuer(token: &str) -> Option<String> {
    let (_, claims) = split(token).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// The claims of `token`, unverified (`None` if it is not a well-formed JWT): only for
/// guesses (which keys a request will read, to fetch them ahead), never for a decision.
pub fn unverified_claims(token: &str) -> Option<Map<String, Value>> {
    split(token).ok().map(|(_, claims)| claims)
}

/// A verification remembered, so that the next request with the same token needs no signature
/// check (an ECDSA or RSA verification costs milliseconds in WebAssembly; a store read costs
/// microseconds). Only a token that verified is remembered, under a hash of the whole token
/// ([`VerifiedToken::cache_name`]), so a changed token never matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedToken {
    /// Who the token says is publishing.
    pub publisher: Publisher,
    /// The key that signed it.
    pub kid: String,
    /// Its `exp` (Unix seconds).
    pub exp: u64,
}

impl VerifiedToken {
    /// The record of `token`, which [`Verifier::verify`] just accepted as `publisher`.
    pub fn remember(token: &str, publisher: Publisher) -> Option<Self> {
        let (header, claims) = split(token).ok()?;
        let kid = header.get("kid")?.as_str()?.to_owned();
        let exp = claims.get("exp")?.as_f64()?;
        Some(Self {
            publisher,
            kid,
            exp: exp.max(0.0) as u64,
        })
    }

    /// The name to remember `token` under: SHA-256 of the whole token, hex.
    pub fn cache_name(token: &str) -> String {
        hex::encode(Sha256::digest(token.as_bytes()))
    }

    /// The publisher, if the remembered token is still good at `now` and its key is still one
    /// of `keys` (a key removed from the set takes its tokens with it). `Err(Expired)` once it
    /// has expired; `Ok(None)` when its key is gone (verify it afresh).
    pub fn recall(&self, keys: &Jwks, now: u64) -> Result<Option<Publisher>, AuthError> {
        if now > self.exp.saturating_add(LEEWAY_SECONDS) {
            return Err(AuthError::Expired);
        }
        Ok(keys.find(&self.kid).map(|_| self.publisher.clone()))
    }
}

/// A NumericDate claim (RFC 7519 §2: seconds, possibly fractional).
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_f64()
            .map(Some)
            .ok_or_else(|| AuthError::InvalidToken(format!("the {name} claim is not a number"))),
    }
}

/// Verifies tokens of the trusted issuers.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    issuers: Vec<TrustedIssuer>,
}

impl Verifier {
    /// A verifier trusting `issuers`.
    pub fn new(issuers: Vec<TrustedIssuer>) -> Self {
        Self { issuers }
    }

    /// The trusted issuer named `issuer`.
    pub fn issuer(&self, issuer: &str) -> Option<&TrustedIssuer> {
        self.issuers.iter().find(|i| i.issuer == issuer)
    }

    /// Replaces the keys of the trusted issuer named `issuer` (after refreshing its JWKS);
    /// `false` if there is no such issuer.
    pub fn set_keys(&mut self, issuer: &str, keys: Jwks) -> bool {
        match self.issuers.iter_mut().find(|i| i.issuer == issuer) {
            Some(trusted) => {
                trusted.keys = keys;
                true
            }
            None => false,
        }
    }

    /// Verifies `token` at time `now` (Unix seconds); see the module doc for the rules.
    pub fn verify(&self, token: &str, now: u64) -> Result<Publisher, AuthError> {
        let (header, unverified) = split(token.trim())?;
        let alg = match header.get("alg").and_then(Value::as_str) {
            Some("RS256") => Algorithm::RS256,
            Some("ES256") => Algorithm::ES256,
            Some("EdDSA") => Algorithm::EdDSA,
            Some(other) => {
                return Err(AuthError::InvalidToken(format!(
                    "the algorithm {} is not accepted (only RS256, ES256, EdDSA)",
                    quoted_safe(other)
                )));
            }
            None => return Err(AuthError::InvalidToken("the token has no alg".into())),
        };
        let Some(iss) = unverified.get("iss").and_then(Value::as_str) else {
            return Err(AuthError::InvalidToken("the token has no iss claim".into()));
        };
        let trusted = self.issuer(iss).ok_or(AuthError::UntrustedIssuer)?;
        let Some(kid) = header.get("kid").and_then(Value::as_str) else {
            return Err(AuthError::InvalidToken("the token has no kid".into()));
        };
        let Some(jwk) = trusted.keys.find(kid) else {
            return Err(AuthError::UnknownKey {
                issuer: trusted.issuer.clone(),
                kid: kid.to_owned(),
            });
        };
        if jwk.algorithm() != Some(alg) {
            return Err(AuthError::InvalidToken(
                "the token's algorithm does not match its key".into(),
            ));
        }
        let key = jwk.decoding_key().ok_or_else(|| {
            AuthError::InvalidToken("the issuer's key for this kid is unusable".into())
        })?;
        let mut validation = Validation::new(alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token.trim(), &key, &validation)
            .map_err(|_| AuthError::InvalidToken("the token's signature is invalid".into()))?
            .claims;
        self.check_claims(trusted, &claims, now)
    }

    fn check_claims(
        &self,
        trusted: &TrustedIssuer,
        claims: &Map<String, Value>,
        now: u64,
    ) -> Result<Publisher, AuthError> {
        // NumericDate may be fractional; Unix seconds are exact in f64 (below 2^53).
        let (now, leeway) = (now as f64, LEEWAY_SECONDS as f64);
        let Some(exp) = numeric_date(claims, "exp")? else {
            return Err(AuthError::InvalidToken("the token has no exp claim".into()));
        };
        if now > exp + leeway {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = numeric_date(claims, "nbf")?
            && nbf > now + leeway
        {
            return Err(AuthError::NotYetValid);
        }
        if claims.get("iss").and_then(Value::as_str) != Some(trusted.issuer.as_str()) {
            return Err(AuthError::UntrustedIssuer);
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == trusted.audience,
            Some(Value::Array(auds)) => auds
                .iter()
                .any(|aud| aud.as_str() == Some(trusted.audience.as_str())),
            _ => false,
        };
        if !audience_ok {
            return Err(AuthError::WrongAudience);
        }
        let app = match claims.get(&trusted.app_claim) {
            Some(Value::String(app)) if !app.is_empty() => app.clone(),
            _ => {
                return Err(AuthError::InvalidToken(format!(
                    "the token has no {} claim naming the application",
                    quoted_safe(&trusted.app_claim)
                )));
            }
        };
        let scopes = match (claims.get("scope"), claims.get("scp")) {
            (Some(Value::String(scope)), _) | (None, Some(Value::String(scope))) => {
                scope.split_whitespace().map(str::to_owned).collect()
            }
            (None, Some(Value::Array(scopes))) => scopes
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        let tenant = match claims.get(TENANT_CLAIM) {
            Some(Value::String(tenant)) if !tenant.is_empty() => Some(tenant.clone()),
            _ => trusted.default_tenant.clone(),
        };
        Ok(Publisher {
            tenant,
            app,
            scopes,
            issuer: trusted.issuer.clone(),
            subject: claims.get("sub").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

/// Whether `publisher` may act for application `application` with `required_scope`: the scope
/// first ([`AuthError::InsufficientScope`]), then the application ([`AuthError::Forbidden`]).
pub fn authorize(
    publisher: &Publisher,
    required_scope: &str,
    application: &str,
) -> Result<(), AuthError> {
    if !publisher.has_scope(required_scope) {
        return Err(AuthError::InsufficientScope {
            required: required_scope.to_owned(),
        });
    }
    if publisher.app != application {
        return Err(AuthError::Forbidden(format!(
            "the token is for application {:?}, not {application:?}",
            publisher.app
        )));
    }
    Ok(())
}

/// Whether `publisher` may publish an event with this CloudEvents `source`: it needs
/// [`SCOPE_PUBLISH`], and the source must be its application's, `/applications/<app>`.
pub fn authorize_source(publisher: &Publisher, source: &str) -> Result<(), AuthError> {
    if !publisher.has_scope(SCOPE_PUBLISH) {
        return Err(AuthError::InsufficientScope {
            required: SCOPE_PUBLISH.to_owned(),
        });
    }
    match cloudevents::source_application(source) {
        Some(app) if app == publisher.app => Ok(()),
        _ => Err(AuthError::Forbidden(format!(
            "the event's source must be {:?}, the source of the token's application",
            cloudevents::application_source(&publisher.app)
        ))),
    }
}

#[cfg(test)]
mod tests;
