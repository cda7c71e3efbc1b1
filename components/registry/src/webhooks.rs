//! Delivery of the `CONFIGURATION_CHANGED` notifications a request queued in the outbox.
//!
//! Each pending notification is POSTed (JSON) to its webhook with the webhook's auth, up to
//! `MAX_DELIVERY_ATTEMPTS` times with a short backoff; every attempt's outcome is recorded, so
//! the last one is visible on the webhook. Failures never fail the mutation that queued them,
//! and a notification not finished here (e.g. the instance stopped) is picked up by the next
//! registry request that changes something.

use std::time::Duration;

use base64::Engine as _;
use eventplane_core::{KvStore, TenantId};
use eventplane_registry_api::{
    Auth, Clock as _, Credential, DeliveryOutcome, DeliveryStatus, Notification, SystemClock,
    pending_notifications, record_delivery,
};
use spin_sdk::http::{Method, Request, Response};

use crate::timer::{sleep, timeout};

/// How long one webhook call (or one OAuth token request) may take.
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
            let outcome = attempt(&notification).await;
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

async fn attempt(notification: &Notification) -> DeliveryOutcome {
    let (status, message) = match call(notification).await {
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

/// POSTs the notification; the response status, or why there was none.
async fn call(notification: &Notification) -> Result<u16, String> {
    let mut url = notification.url.clone();
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(auth) = &notification.auth {
        apply_auth(auth, &mut url, &mut headers).await?;
    }
    let body = serde_json::to_vec(&notification.payload).map_err(|e| e.to_string())?;
    let mut request = Request::builder();
    request.method(Method::Post).uri(url.as_str()).body(body);
    for (name, value) in &headers {
        request.header(name.as_str(), value.as_str());
    }
    send(request.build(), &url).await.map(|r| *r.status())
}

async fn send(request: Request, url: &str) -> Result<Response, String> {
    match timeout(
        WEBHOOK_TIMEOUT,
        spin_sdk::http::send::<_, Response>(request),
    )
    .await
    {
        Some(Ok(response)) => Ok(response),
        Some(Err(e)) => Err(format!("cannot reach {url}: {e}")),
        None => Err(format!(
            "{url} did not answer within {} s",
            WEBHOOK_TIMEOUT.as_secs()
        )),
    }
}

async fn apply_auth(
    auth: &Auth,
    url: &mut String,
    headers: &mut Vec<(String, String)>,
) -> Result<(), String> {
    match &auth.credential {
        Credential::Basic { username, password } => {
            headers.push(("authorization".to_owned(), basic(username, password)));
        }
        Credential::OAuth {
            client_id,
            client_secret,
            url: token_url,
        } => {
            let token = oauth_token(token_url, client_id, client_secret).await?;
            headers.push(("authorization".to_owned(), format!("Bearer {token}")));
        }
    }
    for (name, values) in &auth.additional_headers.0 {
        headers.push((name.to_ascii_lowercase(), values.join(", ")));
    }
    for (name, values) in &auth.additional_query_params.0 {
        for value in values {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&form_encode(name));
            url.push('=');
            url.push_str(&form_encode(value));
        }
    }
    Ok(())
}

fn basic(username: &str, password: &str) -> String {
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {credentials}")
}

/// OAuth 2.0 client credentials grant (RFC 6749 §4.4), client authenticated with Basic.
async fn oauth_token(
    token_url: &str,
    client_id: &str,
    client_secret: &str,
) -> Result<String, String> {
    let mut request = Request::builder();
    request
        .method(Method::Post)
        .uri(token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            basic(&form_encode(client_id), &form_encode(client_secret)),
        )
        .body("grant_type=client_credentials");
    let response = send(request.build(), token_url).await?;
    if !(200..300).contains(response.status()) {
        return Err(format!(
            "token endpoint {token_url} answered HTTP {}",
            response.status()
        ));
    }
    let body: serde_json::Value = serde_json::from_slice(response.body())
        .map_err(|e| format!("token endpoint {token_url} sent invalid JSON: {e}"))?;
    body.get("access_token")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("token endpoint {token_url} sent no access_token"))
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
