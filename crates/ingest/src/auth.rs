//! Who is publishing: an access token, verified against our own keys or those of the
//! configured external OpenID Connect issuer. The gateway takes it from the `Authorization`
//! header ([`authenticate`]), MQTT from an attribute of the events ([`authenticate_token`]):
//! both verify it here, with the same caches.
//!
//! The external issuer's key set is fetched over outbound HTTP and cached in the store for
//! [`JWKS_TTL_SECONDS`]; a token whose `kid` is not in the cached set has it fetched
//! again (at most once per [`JWKS_MIN_REFRESH_SECONDS`]), so a rotated key is picked up
//! at once.
//!
//! A token that verified is remembered in the store under a hash of the whole token until it
//! expires ([`VerifiedToken`]): its next uses cost a read instead of a signature check, and stop
//! working as soon as its key leaves the issuer's key set.

use std::time::Duration;

use eventplane_core::{AppId, Error, Key, KvStore, KvStoreExt, StoreError, TenantId, keys};
use eventplane_events::signing;
use eventplane_events::token::{
    APP_CLAIM, APP_ID_CLAIM, AuthError, Jwks, Publisher, TENANT_CLAIM, TrustedIssuer,
    VerifiedToken, Verifier, bearer_token, unverified_claims, unverified_issuer,
};
use eventplane_spin::client;
use eventplane_spin::timer::timeout;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use spin_sdk::http::Method;

use crate::config::{Config, Oidc};
use crate::unix_now;

/// How long a fetched key set is used before it is fetched again.
pub const JWKS_TTL_SECONDS: u64 = 600;

/// An unknown `kid` refreshes the key set only if it is at least this old.
pub const JWKS_MIN_REFRESH_SECONDS: u64 = 1;

/// How long fetching a key set may take.
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest key set read.
const JWKS_MAX_BYTES: usize = 256 * 1024;

/// A cached key set.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedJwks {
    fetched_at: u64,
    document: String,
}

/// Why a request is not authenticated, or could not be checked.
#[derive(Debug)]
pub enum AuthFailure {
    /// The token is missing, invalid or not allowed (401 / 403).
    Denied(AuthError),
    /// The check itself failed (store or issuer unavailable).
    Unavailable(Error),
}

impl From<AuthError> for AuthFailure {
    fn from(err: AuthError) -> Self {
        Self::Denied(err)
    }
}

impl From<Error> for AuthFailure {
    fn from(err: Error) -> Self {
        Self::Unavailable(err)
    }
}

fn sleep(duration: Duration) {
    std::thread::sleep(duration);
}

/// The publisher of a request with `authorization` (`Bearer <token>`), and the tenant it
/// publishes to: the token's `tenant` claim, else `tenant_header`, else the default tenant.
pub async fn authenticate(
    store: &dyn KvStore,
    config: &Config,
    authorization: Option<&str>,
    tenant_header: Option<&str>,
) -> Result<(Publisher, TenantId), AuthFailure> {
    let token = bearer_token(authorization)?;
    authenticate_token(store, config, token, tenant_header).await
}

/// The publisher of the access token `token` (the bare JWT), and the tenant it publishes to:
/// the token's `tenant` claim, else `tenant_hint`, else the default tenant.
pub async fn authenticate_token(
    store: &dyn KvStore,
    config: &Config,
    token: &str,
    tenant_hint: Option<&str>,
) -> Result<(Publisher, TenantId), AuthFailure> {
    let now = unix_now();
    let publisher = match external_issuer(config, unverified_issuer(token).as_deref()) {
        None => {
            let keys = signing::public_keys(store, &config.token_signing_key, &sleep)?;
            match recall(store, PUBLISHING, token, &keys, now)? {
                Some(publisher) => publisher,
                None => {
                    let publisher = Verifier::new(vec![TrustedIssuer::ours(
                        config.our_issuer(),
                        config.our_audience(),
                        keys,
                        None,
                    )])
                    .verify(token, now)?;
                    remember(store, PUBLISHING, token, &publisher);
                    publisher
                }
            }
        }
        Some(oidc) => verify_external(store, oidc, token, now, PUBLISHING).await?,
    };
    let tenant = tenant_name(config, publisher.tenant.clone(), tenant_hint);
    let tenant = TenantId::new(&tenant)
        .map_err(|e| AuthError::InvalidToken(format!("the tenant `{tenant}` is invalid: {e}")))?;
    Ok((publisher, tenant))
}

/// The configured external issuer, if `issuer` (a token's `iss`) is it; else the token is to
/// be one of ours.
fn external_issuer<'c>(config: &'c Config, issuer: Option<&str>) -> Option<&'c Oidc> {
    config
        .oidc
        .as_ref()
        .filter(|oidc| issuer == Some(oidc.issuer.as_str()))
}

/// The tenant a token publishes to: its `tenant` claim, else the hint (the `Tenant` header),
/// else the default tenant.
fn tenant_name(config: &Config, claim: Option<String>, hint: Option<&str>) -> String {
    claim
        .or_else(|| hint.map(|t| t.trim().to_owned()))
        .unwrap_or_else(|| config.default_tenant.clone())
}

/// The longest tenant or application name [`publish_keys`] takes from an unverified token.
const MAX_GUESSED_NAME: usize = 256;

/// The keys an authenticated publish with `token` will read before it stores anything, so
/// that they can be fetched ahead in one round trip ([`eventplane_core::ReadAhead`]): those
/// [`authenticate_token`] reads (our signing key or the external issuer's cached key set, and
/// the verified-token cache), the name of the application it publishes for (`application`, else
/// the one the token names; with our tokens, its record and event-API index too), and the
/// tenant's subscriptions (the hand-off's read). Tenant and application are read from the
/// token unverified: a wrong guess only costs a read of its own.
pub fn publish_keys(
    config: &Config,
    token: &str,
    tenant_hint: Option<&str>,
    application: Option<&str>,
) -> Vec<Key> {
    let claims = unverified_claims(token).unwrap_or_default();
    // An unverified claim may be anything: only a plausible name is worth a read.
    let claim = |name: &str| {
        claims
            .get(name)
            .and_then(|value| value.as_str())
            .filter(|value| value.len() <= MAX_GUESSED_NAME)
            .map(str::to_owned)
    };
    let mut keys = vec![verified_key(PUBLISHING, token)];
    let app_claim = match external_issuer(config, claim("iss").as_deref()) {
        None => {
            if config.token_signing_key.trim().is_empty() {
                keys.push(signing::stored_key_record());
            }
            APP_CLAIM
        }
        Some(oidc) => {
            keys.push(cache_key(&oidc.jwks_url));
            oidc.app_claim.as_str()
        }
    };
    let Ok(tenant) = TenantId::new(tenant_name(config, claim(TENANT_CLAIM), tenant_hint)) else {
        return keys;
    };
    let named = claim(app_claim);
    if let Some(application) = application.map(str::to_owned).or_else(|| named.clone()) {
        keys.push(eventplane_eventstore::application_name_key(
            &tenant,
            &application,
        ));
        // Our tokens also name the application's id: its record and event APIs come along.
        let app_id = claim(APP_ID_CLAIM)
            .filter(|_| named.as_deref() == Some(application.as_str()))
            .and_then(|id| id.parse::<AppId>().ok());
        if let Some(app_id) = app_id {
            keys.extend(eventplane_eventstore::application_keys(&tenant, &app_id));
        }
    }
    keys.push(eventplane_dispatch::keys::subscriptions(&tenant));
    keys
}

/// The verified-token cache of publishing tokens (ours and the external issuer's).
const PUBLISHING: &str = "";

/// The verified-token cache of Pub/Sub push tokens: kept apart from publishing's, so a token
/// checked against one audience is never taken for the other's.
pub const PUSH: &str = "pubsub-push:";

/// Verifies `token` as one of `oidc`'s (its key set fetched and cached, refreshed on an unknown
/// `kid`), remembering it in the verified-token cache named `cache`.
pub async fn verify_external(
    store: &dyn KvStore,
    oidc: &Oidc,
    token: &str,
    now: u64,
    cache: &str,
) -> Result<Publisher, AuthFailure> {
    let trusted = |keys: Jwks| {
        Verifier::new(vec![TrustedIssuer {
            issuer: oidc.issuer.clone(),
            audience: oidc.audience.clone(),
            keys,
            app_claim: oidc.app_claim.clone(),
            default_tenant: None,
        }])
    };
    let cached = cached_jwks(store, &oidc.jwks_url)?;
    let (keys, fetched_at) = match cached {
        Some(cached) if now < cached.fetched_at.saturating_add(JWKS_TTL_SECONDS) => {
            (parse(&cached.document)?, cached.fetched_at)
        }
        _ => (fetch_jwks(store, &oidc.jwks_url, now).await?, now),
    };
    if let Some(publisher) = recall(store, cache, token, &keys, now)? {
        return Ok(publisher);
    }
    let publisher = match trusted(keys).verify(token, now) {
        Err(AuthError::UnknownKey { .. })
            if now >= fetched_at.saturating_add(JWKS_MIN_REFRESH_SECONDS) =>
        {
            let keys = fetch_jwks(store, &oidc.jwks_url, now).await?;
            trusted(keys).verify(token, now)?
        }
        other => other?,
    };
    remember(store, cache, token, &publisher);
    Ok(publisher)
}

fn verified_key(cache: &str, token: &str) -> eventplane_core::Key {
    keys::system(
        keys::VERIFIED_TOKENS,
        &format!("{cache}{}", VerifiedToken::cache_name(token)),
    )
}

/// The publisher of a token verified before, if it is still good and its key still trusted.
fn recall(
    store: &dyn KvStore,
    cache: &str,
    token: &str,
    keys: &Jwks,
    now: u64,
) -> Result<Option<Publisher>, AuthFailure> {
    let Some(verified) = store.get_json::<VerifiedToken>(&verified_key(cache, token))? else {
        return Ok(None);
    };
    Ok(verified.recall(keys, now)?)
}

/// Remembers a verified token (a lost write only costs a verification next time).
fn remember(store: &dyn KvStore, cache: &str, token: &str, publisher: &Publisher) {
    if let Some(verified) = VerifiedToken::remember(token, publisher.clone())
        && let Err(e) = store.set_json(&verified_key(cache, token), &verified)
    {
        eprintln!("cannot remember a verified token: {e}");
    }
}

fn cache_key(jwks_url: &str) -> eventplane_core::Key {
    keys::system(
        keys::OIDC_JWKS,
        &hex::encode(Sha256::digest(jwks_url.as_bytes())),
    )
}

fn cached_jwks(store: &dyn KvStore, jwks_url: &str) -> Result<Option<CachedJwks>, Error> {
    store.get_json(&cache_key(jwks_url))
}

fn parse(document: &str) -> Result<Jwks, Error> {
    Jwks::parse(document.as_bytes())
        .map_err(|e| Error::internal(format!("the OIDC issuer's key set is invalid: {e}")))
}

/// The issuer's key set cannot be had: a dependency is down (503), not the caller's fault.
fn unavailable(message: String) -> Error {
    Error::StoreUnavailable(StoreError::Backend(message))
}

/// Fetches the key set, caches it, and returns it.
async fn fetch_jwks(store: &dyn KvStore, jwks_url: &str, now: u64) -> Result<Jwks, Error> {
    let headers = [("accept".to_owned(), "application/json".to_owned())];
    let reply = match timeout(
        JWKS_TIMEOUT,
        client::send(Method::Get, jwks_url, &headers, Vec::new(), JWKS_MAX_BYTES),
    )
    .await
    {
        Some(Ok(reply)) if (200..300).contains(&reply.status) => reply,
        Some(Ok(reply)) => {
            return Err(unavailable(format!(
                "the OIDC key set at {jwks_url} answered HTTP {}",
                reply.status
            )));
        }
        Some(Err(e)) => {
            return Err(unavailable(format!("fetching the OIDC key set: {e}")));
        }
        None => {
            return Err(unavailable(format!(
                "the OIDC key set at {jwks_url} did not answer within {} s",
                JWKS_TIMEOUT.as_secs()
            )));
        }
    };
    let document = String::from_utf8_lossy(&reply.body).into_owned();
    let keys = parse(&document)?;
    let cached = CachedJwks {
        fetched_at: now,
        document,
    };
    if let Err(e) = store.set_json(&cache_key(jwks_url), &cached) {
        eprintln!("cannot cache the OIDC key set: {e}");
    }
    Ok(keys)
}
