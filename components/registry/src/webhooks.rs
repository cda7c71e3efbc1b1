//! Delivery of the `CONFIGURATION_CHANGED` notifications a request queued in the outbox.
//!
//! Each pending notification is POSTed (JSON) to its webhook with the webhook's auth, up to
//! `MAX_DELIVERY_ATTEMPTS` times with a short backoff; every attempt's outcome is recorded, so
//! the last one is visible on the webhook. Failures never fail the mutation that queued them,
//! and a notification not finished here (e.g. the instance stopped) is picked up by the next
//! registry request that changes something.

use std::time::Duration;

use eventplane_core::{KvStore, TenantId};
use eventplane_registry_api::{
    Clock as _, DeliveryOutcome, DeliveryStatus, Notification, SystemClock, pending_notifications,
    record_delivery,
};
use eventplane_spin::client::{self, Authorized};
use eventplane_spin::timer::{sleep, timeout};
use spin_sdk::http::Method;

/// The most of a receiver's answer that is read (it is not used beyond its status).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// How long one webhook call (its OAuth token and CSRF requests included) may take.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(3);

/// Pause before the second and third attempts.
const BACKOFF: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(500)];

/// Delivers every pending notification of `tenant`.
pub async fn deliver_pending(store: &(dyn KvStore + Send + Sync), tenant: &TenantId) {
    let pending = match pending_notifications(store, tenant) {
        Ok(pending) => pending,
        Err(e) => {
            eprintln!("registry: cannot read the webhook outbox: {e}");
            return;
        }
    };
    for mut notification in pending {
        loop {
            let last = notification.is_last_attempt();
            let outcome = attempt(store, tenant, &notification).await;
            let succeeded = outcome.status == DeliveryStatus::Succeeded;
            let done = succeeded || last;
            if let Err(e) = record_delivery(store, tenant, &notification.id, outcome, done) {
                eprintln!("registry: cannot record a webhook delivery: {e}");
                break;
            }
            if done {
                break;
            }
            let pause = BACKOFF
                .get(notification.attempts as usize)
                .copied()
                .unwrap_or(Duration::from_secs(1));
            notification.attempts += 1;
            sleep(pause).await;
        }
    }
}

async fn attempt(
    store: &dyn KvStore,
    tenant: &TenantId,
    notification: &Notification,
) -> DeliveryOutcome {
    let (status, message) = match call(store, tenant, notification).await {
        Ok(code) if (200..300).contains(&code) => {
            (DeliveryStatus::Succeeded, format!("HTTP {code}"))
        }
        Ok(code) => (
            DeliveryStatus::Failed,
            format!("HTTP {code} from {}", notification.url),
        ),
        Err(message) => (DeliveryStatus::Failed, message),
    };
    DeliveryOutcome {
        status,
        message: Some(message),
        at: SystemClock.now(),
    }
}

/// POSTs the notification with the webhook's auth; the response status, or why there was none.
async fn call(
    store: &dyn KvStore,
    tenant: &TenantId,
    notification: &Notification,
) -> Result<u16, String> {
    let body = serde_json::to_vec(&notification.payload).map_err(|e| e.to_string())?;
    let exchange = async {
        let mut authorized = match &notification.auth {
            Some(auth) => {
                client::authorize(store, tenant, &auth.to_request_auth(), &notification.url).await?
            }
            None => Authorized {
                url: notification.url.clone(),
                headers: Vec::new(),
            },
        };
        authorized
            .headers
            .push(("content-type".to_owned(), "application/json".to_owned()));
        client::send(
            Method::Post,
            &authorized.url,
            &authorized.headers,
            body,
            MAX_RESPONSE_BYTES,
        )
        .await
        .map(|reply| reply.status)
        .map_err(|e| e.to_string())
    };
    timeout(WEBHOOK_TIMEOUT, exchange).await.unwrap_or_else(|| {
        Err(format!(
            "{} did not answer within {} s",
            notification.url,
            WEBHOOK_TIMEOUT.as_secs()
        ))
    })
}
