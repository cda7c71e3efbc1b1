//! Consuming external subscriptions (Google Cloud Pub/Sub) over Spin's outbound HTTP: the
//! [`BusClient`] the pull loop ([`eventplane_bus::pull`]) calls through, the pull step of
//! `POST /dispatcher/tick`, and the check the registry asks for when an API is registered
//! (`POST http://dispatcher.spin.internal/dispatcher/bus/check`).
//!
//! Bus endpoints must be allowed outbound hosts of the dispatcher (`delivery_allowed_hosts`).

use std::time::Duration;

use eventplane_bus::pull::{BusApi, load_api};
use eventplane_bus::wire::{AcknowledgeRequest, PullRequest, PullResponse, SubscriptionResource};
use eventplane_bus::{BusClient, BusSubscription, PullCounts, check, pull_all};
use eventplane_core::{ApiId, Error, TenantId};
use eventplane_spin::SpinStore;
use eventplane_spin::client::{authorize, send};
use eventplane_spin::timer::{block_on, timeout};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use spin_sdk::http::Method;

/// How long one call to the bus may take.
pub const BUS_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer read from a `GET` of a subscription or an acknowledgement.
const SMALL_ANSWER_BYTES: usize = 256 * 1024;

/// How much of an error answer's body goes into the subscription's `lastError`.
const ERROR_EXCERPT_CHARS: usize = 300;

/// Calls the bus with Spin's outbound HTTP, authenticated with the subscription's `auth`
/// (OAuth 2.0 tokens cached in the store until they expire).
struct SpinBusClient<'a> {
    store: &'a SpinStore,
    tenant: &'a TenantId,
    /// The largest pull answer read: `maxMessages` messages of `max_event_bytes`, base64.
    max_event_bytes: u64,
}

impl SpinBusClient<'_> {
    fn call<T: DeserializeOwned>(
        &self,
        sub: &BusSubscription,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
        max_bytes: usize,
    ) -> Result<T, String> {
        block_on(async {
            let authorized = authorize(self.store, self.tenant, &sub.auth, url).await?;
            let mut headers = authorized.headers;
            headers.push(("accept".to_owned(), "application/json".to_owned()));
            if body.is_some() {
                headers.push(("content-type".to_owned(), "application/json".to_owned()));
            }
            let call = send(
                method,
                &authorized.url,
                &headers,
                body.unwrap_or_default(),
                max_bytes,
            );
            let reply = match timeout(BUS_CALL_TIMEOUT, call).await {
                None => {
                    return Err(format!("no answer within {} s", BUS_CALL_TIMEOUT.as_secs()));
                }
                Some(Err(e)) => return Err(e.to_string()),
                Some(Ok(reply)) => reply,
            };
            if !(200..300).contains(&reply.status) {
                let text: String = String::from_utf8_lossy(&reply.body)
                    .chars()
                    .take(ERROR_EXCERPT_CHARS)
                    .collect();
                return Err(format!("HTTP {}: {}", reply.status, text.trim()));
            }
            if reply.body.iter().all(u8::is_ascii_whitespace) {
                return serde_json::from_slice(b"{}").map_err(|e| e.to_string());
            }
            serde_json::from_slice(&reply.body)
                .map_err(|e| format!("the answer is not what Pub/Sub answers: {e}"))
        })
    }
}

impl BusClient for SpinBusClient<'_> {
    fn get(&self, sub: &BusSubscription) -> Result<SubscriptionResource, String> {
        self.call(sub, Method::Get, &sub.url, None, SMALL_ANSWER_BYTES)
    }

    fn pull(&self, sub: &BusSubscription, request: &PullRequest) -> Result<PullResponse, String> {
        let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
        let per_message = self.max_event_bytes.saturating_mul(4) / 3 + 4096;
        let limit = per_message
            .saturating_mul(u64::from(request.max_messages))
            .saturating_add(64 * 1024);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        self.call(sub, Method::Post, &sub.pull_url(), Some(body), limit)
    }

    fn acknowledge(&self, sub: &BusSubscription, ack_ids: &[String]) -> Result<(), String> {
        let body = serde_json::to_vec(&AcknowledgeRequest {
            ack_ids: ack_ids.to_vec(),
        })
        .map_err(|e| e.to_string())?;
        self.call::<Value>(
            sub,
            Method::Post,
            &sub.acknowledge_url(),
            Some(body),
            SMALL_ANSWER_BYTES,
        )
        .map(|_| ())
    }
}

/// Pulls every pull-mode external subscription of `tenant` until `deadline_ms`.
pub fn pull(
    store: &SpinStore,
    tenant: &TenantId,
    max_event_bytes: u64,
    now_ms: &dyn Fn() -> u64,
    deadline_ms: u64,
) -> Result<PullCounts, Error> {
    let client = SpinBusClient {
        store,
        tenant,
        max_event_bytes,
    };
    pull_all(store, tenant, &client, max_event_bytes, now_ms, deadline_ms)
}

/// Checks the external subscriptions of API `api` (just registered); answers how many were
/// checked and how many are fine.
pub fn check_api(
    store: &SpinStore,
    tenant: &TenantId,
    api: &ApiId,
    max_event_bytes: u64,
    now_ms: u64,
) -> Result<Value, Error> {
    let Some(BusApi { bus, .. }) = load_api(store, tenant, api)? else {
        return Err(Error::not_found(format!("there is no event API {api}")));
    };
    let client = SpinBusClient {
        store,
        tenant,
        max_event_bytes,
    };
    let mut fine = 0;
    for sub in &bus {
        if check(store, tenant, api, sub, &client, now_ms)? {
            fine += 1;
        }
    }
    Ok(json!({ "checked": bus.len(), "ok": fine }))
}
