//! `POST /events/{application}/pubsub`: Google Cloud Pub/Sub push requests for the
//! application's push-mode external subscriptions.
//!
//! The request carries Pub/Sub's push envelope `{message: {data, attributes, messageId,
//! publishTime}, subscription}` and an OIDC bearer token that Pub/Sub signs for the
//! subscription's service account: verified against `pubsub_push_issuer`'s keys
//! (`pubsub_push_jwks_url`, cached, refreshed on an unknown `kid`), with `aud` =
//! `pubsub_push_audience` (empty: this endpoint's URL) and `email` =
//! `pubsub_push_service_account`. Push is refused (`403`) until that account is set: anyone can
//! have Google sign a token for any audience, so the account is what proves the sender. The message becomes a CloudEvent as a pulled one does
//! (`eventplane_bus::ingest`), checked against the event API's catalog, and is stored before
//! the `204`: Pub/Sub retries whatever is not answered 2xx. What a retry cannot fix is a 4xx:
//! 401/403 (token), 400 (not an envelope), 404 (no such push subscription), 422/413 (not a
//! valid CloudEvent or not in the catalog, too large; such messages are also recorded in the
//! subscription's state, as pulled ones are). The tenant is the `Tenant` header or the
//! `tenant` query parameter (Pub/Sub cannot send headers), else the default tenant.

use eventplane_bus::ingest::{Ingested, ingest};
use eventplane_bus::wire::PushEnvelope;
use eventplane_bus::{push_target, state};
use eventplane_core::{Error, TenantId};
use eventplane_events::token::{AuthError, bearer_token};
use eventplane_spin::request::{header, read_body, variable};
use eventplane_spin::{SpinStore, error_response, json_response};
use serde_json::json;
use spin_sdk::http::{IncomingRequest, Response};

use eventplane_ingest::auth::{self, AuthFailure};
use eventplane_ingest::config::Oidc;
use eventplane_ingest::handoff::HandOff;
use eventplane_ingest::{now_ms, unix_now};

use crate::config::PushConfig;

/// Room for the envelope around a message's data (base64, a third larger than the data).
const ENVELOPE_OVERHEAD_BYTES: u64 = 64 * 1024;

/// The claim naming the push subscription's service account.
const EMAIL_CLAIM: &str = "email";

fn denied(err: &AuthError) -> Response {
    let mut response = error_response(&err.to_error());
    if let Some(challenge) = err.www_authenticate() {
        response.set_header("www-authenticate", challenge);
    }
    response
}

fn failed(err: AuthFailure) -> Response {
    match err {
        AuthFailure::Denied(err) => denied(&err),
        AuthFailure::Unavailable(err) => error_response(&err),
    }
}

/// The tenant of a push: the `Tenant` header, else the `tenant` query parameter, else the
/// default tenant.
fn push_tenant(request: &IncomingRequest) -> Result<TenantId, Error> {
    let query_tenant = request.path_with_query().and_then(|path| {
        let (_, query) = path.split_once('?')?;
        form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "tenant")
            .map(|(_, value)| value.into_owned())
    });
    let tenant = match header(request, "tenant").or(query_tenant) {
        Some(tenant) => tenant,
        None => variable("default_tenant")?,
    };
    TenantId::new(tenant.trim()).map_err(|e| Error::invalid("tenant", e.to_string()))
}

/// Handles one push for `application`: the answer, and the hand-off to make after it.
pub async fn push(request: IncomingRequest, application: &str) -> (Response, Option<HandOff>) {
    match accept(request, application).await {
        Ok(answer) => answer,
        Err(response) => (response, None),
    }
}

async fn accept(
    request: IncomingRequest,
    application: &str,
) -> Result<(Response, Option<HandOff>), Response> {
    let fail = |err: Error| error_response(&err);
    let config = PushConfig::load().map_err(fail)?;
    if config.service_account.is_empty() {
        // Anyone with a Google account can have Google sign a token for any audience: only the
        // service account proves that the push comes from the application's subscription.
        return Err(denied(&AuthError::Forbidden(
            "Pub/Sub push is not enabled: set pubsub_push_service_account to the service \
             account of the push subscription"
                .to_owned(),
        )));
    }
    let max_event_bytes: u64 =
        eventplane_spin::request::number_variable("max_event_bytes").map_err(fail)?;
    let store = SpinStore::open_default().map_err(|e| fail(e.into()))?;
    let authorization = header(&request, "authorization");
    let token = bearer_token(authorization.as_deref()).map_err(|e| denied(&e))?;
    let audience = if config.audience.is_empty() {
        header(&request, "spin-full-url")
            .map(|url| url.split('?').next().unwrap_or_default().to_owned())
            .unwrap_or_default()
    } else {
        config.audience.clone()
    };
    // Remembered verifications are per audience: the default one differs per endpoint.
    let cache = format!("{}{audience}:", auth::PUSH);
    let issuer = Oidc {
        issuer: config.issuer.clone(),
        jwks_url: config.jwks_url.clone(),
        audience,
        app_claim: EMAIL_CLAIM.to_owned(),
    };
    let pusher = auth::verify_external(&store, &issuer, token, unix_now(), &cache)
        .await
        .map_err(failed)?;
    if pusher.app != config.service_account {
        return Err(denied(&AuthError::Forbidden(format!(
            "the push comes from the service account {:?}, not from the configured \
             pubsub_push_service_account",
            pusher.app
        ))));
    }
    let tenant = push_tenant(&request).map_err(fail)?;
    let limit = max_event_bytes.saturating_mul(4) / 3 + ENVELOPE_OVERHEAD_BYTES;
    let body = read_body(request, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(fail)?;
    let envelope: PushEnvelope = serde_json::from_slice(&body).map_err(|e| {
        fail(Error::invalid(
            "body",
            format!("is not a Pub/Sub push envelope {{message, subscription}}: {e}"),
        ))
    })?;
    let Some(target) = push_target(
        &store,
        &tenant,
        application,
        &envelope.subscription,
        max_event_bytes,
    )
    .map_err(fail)?
    else {
        return Err(fail(Error::not_found(format!(
            "the application {application:?} has no push-mode external subscription named {:?}",
            envelope.subscription
        ))));
    };
    let now = now_ms();
    let sub_key = &target.subscription.key;
    match ingest(&store, &tenant, &target.target, &envelope.message, now).map_err(fail)? {
        Ingested::Stored(stored) => {
            if let Err(e) = state::update(&store, &tenant, &target.api, sub_key, |state| {
                state.messages_taken += 1;
            }) {
                eprintln!("gateway: cannot count a pushed message: {e}");
            }
            let hand_off = HandOff::of(&store, &tenant, std::slice::from_ref(&*stored));
            let response = Response::builder().status(204).build();
            Ok((response, hand_off))
        }
        Ingested::Rejected(rejection) => {
            let recorded = state::record_rejected(
                &store,
                &tenant,
                &target.api,
                sub_key,
                &envelope.message,
                &rejection,
                now,
            )
            .map_err(fail)?;
            if recorded
                && let Err(e) = state::update(&store, &tenant, &target.api, sub_key, |state| {
                    state.messages_rejected += 1;
                })
            {
                eprintln!("gateway: cannot count a rejected pushed message: {e}");
            }
            let body = json!({"error": {
                "code": rejection.code,
                "message": rejection.reason,
                "details": [],
            }});
            Err(json_response(rejection.status, &body))
        }
    }
}
