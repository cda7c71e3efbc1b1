//! Publisher credentials: OAuth 2.0 client credentials of an application, and the access
//! tokens the token endpoint (`POST /oauth/token`) issues for them.
//!
//! A credential is a record `t/<tenant>/r/cli/<client id>` holding only a salted hash of the
//! secret; the secret is shown once, by `requestClientCredentialsForApplication`. The
//! application's record lists its client ids, so deleting the application deletes them and a
//! token is issued only for a credential its application still lists.

use async_graphql::{ID, SimpleObject};
use eventplane_core::index::update_existing;
use eventplane_core::{AppId, ClientId, Error, KvStore, KvStoreExt, TenantId, keys};
use eventplane_events::credentials::{
    self, OAuthError, OAuthErrorCode, TokenRequest, TokenResponse,
};
use eventplane_events::token::{self, AccessClaims, SigningKey};
use serde::{Deserialize, Serialize};

use crate::applications;
use crate::context::RequestScope;
use crate::model::AppRecord;
use crate::time::Timestamp;

/// A credential as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CredentialRecord {
    pub client_id: ClientId,
    pub app_id: AppId,
    /// `sha256$<salt>$<digest>` of the secret.
    pub secret_hash: String,
    pub created_at: Timestamp,
}

/// New client credentials. The secret is shown only here: it is stored as a hash.
#[derive(SimpleObject)]
pub(crate) struct ClientCredentials {
    /// The client id (`cli_…`).
    pub client_id: ID,
    /// The client secret. Keep it: it cannot be shown again.
    pub client_secret: String,
}

/// How tokens are issued: issuer, audience and lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// The `iss` of our tokens.
    pub issuer: String,
    /// The `aud` of our tokens (the gateway).
    pub audience: String,
    /// Lifetime in seconds (`token_ttl_seconds`).
    pub ttl_seconds: u64,
}

impl TokenSettings {
    /// The settings for a deployment whose public base URL is `events_base_url`: issuer
    /// `<base>/oauth`, audience `<base>/events`.
    pub fn for_base_url(events_base_url: &str, ttl_seconds: u64) -> Self {
        let base = events_base_url.trim_end_matches('/');
        Self {
            issuer: format!("{base}/oauth"),
            audience: format!("{base}/events"),
            ttl_seconds,
        }
    }
}

fn key_of(tenant: &TenantId, client_id: &ClientId) -> eventplane_core::Key {
    keys::record_for(tenant, client_id)
}

/// Creates client credentials for application `app_id`.
pub(crate) fn request(scope: &RequestScope, app_id: &AppId) -> Result<ClientCredentials, Error> {
    let app = applications::load(scope, app_id)?;
    let (client_id, secret) = credentials::generate()?;
    let record = CredentialRecord {
        client_id: client_id.clone(),
        app_id: app.id.clone(),
        secret_hash: credentials::hash_secret(&secret)?,
        created_at: scope.now(),
    };
    let store = scope.store();
    let key = key_of(&scope.tenant, &client_id);
    store.set_json(&key, &record)?;
    let app_key = keys::record_for(&scope.tenant, &app.id);
    let listed = update_existing(store, &app_key, |mut app: AppRecord| {
        app.client_ids.push(client_id.clone());
        Ok(app)
    })?;
    if listed.is_none() {
        // The application was deleted meanwhile.
        store.delete(&key)?;
        return Err(applications::not_found(app_id));
    }
    Ok(ClientCredentials {
        client_id: ID(client_id.to_string()),
        client_secret: secret,
    })
}

/// Revokes client credentials: tokens are no longer issued for them. Whether they existed.
pub(crate) fn revoke(scope: &RequestScope, client_id: &ClientId) -> Result<bool, Error> {
    let store = scope.store();
    let key = key_of(&scope.tenant, client_id);
    let Some(record) = store.get_json::<CredentialRecord>(&key)? else {
        return Ok(false);
    };
    update_existing(
        store,
        &keys::record_for(&scope.tenant, &record.app_id),
        |mut app: AppRecord| {
            app.client_ids.retain(|id| id != client_id);
            Ok(app)
        },
    )?;
    store.delete(&key)?;
    Ok(true)
}

/// Deletes every credential of `app` (when the application is deleted).
pub(crate) fn delete_all_of(
    store: &dyn KvStore,
    tenant: &TenantId,
    app: &AppRecord,
) -> Result<(), Error> {
    for client_id in &app.client_ids {
        store.delete(&key_of(tenant, client_id))?;
    }
    Ok(())
}

/// The token endpoint: checks the client's credentials and issues an access token for its
/// application, signed with `key`, at `now` (Unix seconds).
pub fn issue_token(
    store: &dyn KvStore,
    tenant: &TenantId,
    request: &TokenRequest,
    key: &SigningKey,
    settings: &TokenSettings,
    now: u64,
) -> Result<TokenResponse, OAuthError> {
    let invalid = OAuthError::invalid_client;
    let client_id: ClientId = request.client_id.parse().map_err(|_| invalid())?;
    let unavailable = |e: Error| {
        eprintln!("registry: token endpoint: {e}");
        OAuthError::new(
            OAuthErrorCode::TemporarilyUnavailable,
            "the store is unavailable; try again",
        )
    };
    let record = store
        .get_json::<CredentialRecord>(&key_of(tenant, &client_id))
        .map_err(unavailable)?
        .ok_or_else(invalid)?;
    if !credentials::verify_secret(&request.client_secret, &record.secret_hash) {
        return Err(invalid());
    }
    let app = store
        .get_json::<AppRecord>(&keys::record_for(tenant, &record.app_id))
        .map_err(unavailable)?
        .filter(|app| app.client_ids.contains(&client_id))
        .ok_or_else(invalid)?;
    let claims = AccessClaims::publish(
        &settings.issuer,
        &settings.audience,
        client_id.as_str(),
        tenant.as_str(),
        &app.name,
        now,
        settings.ttl_seconds,
    )
    .with_app_id(record.app_id.as_str());
    let jwt = token::issue(key, &claims).map_err(|e| {
        eprintln!("registry: signing a token: {e}");
        OAuthError::new(OAuthErrorCode::ServerError, "the token could not be signed")
    })?;
    Ok(TokenResponse::bearer(jwt, settings.ttl_seconds))
}
