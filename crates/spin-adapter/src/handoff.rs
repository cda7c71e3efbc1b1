//! Handing accepted events to the dispatcher right away, by service chaining to its private
//! `POST /dispatcher/deliver` endpoint: the gateway does it for published and pushed events,
//! the dispatcher's tick for events it pulled from an external bus.
//!
//! A hand-off is only a shortcut. Every accepted event is in the event log, which the
//! dispatcher's tick reads, so a failed hand-off is logged and nothing more.

use std::cell::Cell;
use std::time::Instant;

use eventplane_core::{EventId, TenantId};
use futures::StreamExt as _;
use serde_json::json;
use spin_sdk::http::Method;

use crate::client::send;
use crate::request::{switch_variable, variable};

/// The path of the dispatcher's hand-off endpoint (it takes the admin token).
pub const HANDOFF_PATH: &str = "/dispatcher/deliver";

/// The dispatcher's hand-off endpoint by service chaining, as the HTTP components reach it.
pub const HANDOFF_URL: &str = "http://dispatcher.spin.internal/dispatcher/deliver";

/// How many hand-offs are in flight at once.
pub const HANDOFF_CONCURRENCY: usize = 16;

/// The largest answer read from the dispatcher.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Whether accepted events are handed off: the `delivery_handoff` variable, on unless it is
/// `false`.
pub fn enabled() -> bool {
    switch_variable("delivery_handoff", true)
}

/// Hands each of `events` in `tenant` to a dispatcher instance of its own, at most
/// [`HANDOFF_CONCURRENCY`] at a time. `None` asks only for the bounded drain of due work
/// (retries) every hand-off also makes. Failures are logged.
///
/// With a `deadline`, no hand-off starts after it (those under way finish, so no delivery is
/// cut off in the middle and left to its lease); the events not handed off stay in the event
/// log for the tick. Answers how many hand-offs were started.
pub async fn hand_off(
    tenant: &TenantId,
    events: &[Option<EventId>],
    deadline: Option<Instant>,
) -> usize {
    hand_off_to(HANDOFF_URL, tenant, events, deadline).await
}

/// [`hand_off`] to the endpoint at `url` (e.g. `<the application's URL>/dispatcher/deliver`
/// from a component whose trigger has no service chaining, as Spin's MQTT trigger).
pub async fn hand_off_to(
    url: &str,
    tenant: &TenantId,
    events: &[Option<EventId>],
    deadline: Option<Instant>,
) -> usize {
    let token = match variable("admin_token") {
        Ok(token) => token,
        Err(err) => {
            eprintln!("hand-off skipped: {}", err.public_message());
            return 0;
        }
    };
    let started = Cell::new(0);
    let headers = [
        ("authorization".to_owned(), format!("Bearer {token}")),
        ("tenant".to_owned(), tenant.to_string()),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    let in_time = |_: &&Option<EventId>| {
        let go = deadline.is_none_or(|deadline| Instant::now() < deadline);
        if go {
            started.set(started.get() + 1);
        }
        std::future::ready(go)
    };
    let calls = futures::stream::iter(events)
        .take_while(in_time)
        .map(|event| {
            let body = json!({ "eventId": event }).to_string().into_bytes();
            let headers = &headers;
            async move {
                match send(Method::Post, url, headers, body, MAX_ANSWER_BYTES).await {
                    Ok(reply) if (200..300).contains(&reply.status) => {}
                    Ok(reply) => eprintln!(
                        "hand-off of {event:?}: the dispatcher answered {}",
                        reply.status
                    ),
                    Err(err) => eprintln!("hand-off of {event:?}: {err}"),
                }
            }
        });
    calls
        .buffer_unordered(HANDOFF_CONCURRENCY)
        .for_each(|()| async {})
        .await;
    started.get()
}
