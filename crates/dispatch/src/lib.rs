//! eventplane's dispatcher domain, plain Rust over any [`KvStore`](eventplane_core::KvStore)
//! (no Spin): what the `dispatcher` component needs besides HTTP.
//!
//! - [`api`]: the subscriptions REST API without Spin: each [`Operation`](api::Operation) run
//!   against the store ([`api::execute`]), the request checks and the [`Reply`](api::Reply);
//! - [`input`]: the subscriptions API's request body, checked into a [`SubscriptionInput`]
//!   (every problem reported at once, with field paths, as one 422);
//! - [`model`]: the stored [`Subscription`] (sink, filter, delivery policy, signing secret,
//!   status) and its public view, which never shows a secret;
//! - [`store`]: create, get, list, replace, delete, pause and resume subscriptions, find the
//!   active ones matching an event ([`active_for`]), record attempts and dead letters;
//! - [`filter`]: [`Filter`] matching against a [`FilterSubject`] (from a stored event);
//! - [`policy`]: an attempt's result [`classify`]d, backoff delays ([`next_delay_ms`]) and the
//!   [`decide`] function (done, retry later, dead letter, dead letter and pause);
//! - [`outgoing`]: the HTTP request of an attempt (CloudEvents binary mode, the sink's headers
//!   and authorization, Standard Webhooks signature headers);
//! - [`signing`]: Standard Webhooks signatures ([`sign`]) and secrets ([`SigningSecret`]);
//! - [`records`]: [`Attempt`] and [`DeadLetter`] records, each naming its event both ways
//!   (eventplane's id and the CloudEvents `id`, `source`, `type`);
//! - [`lookup`]: an event named in a request by either id ([`EventRef`](lookup::EventRef));
//! - [`engine`]: the work: filing each accepted event's deliveries, making due attempts
//!   (claim, send, record, retry / finish / dead-letter), [`tick`](engine::tick), redelivery;
//! - [`delivery`]: one event's delivery to one subscription: created once, claimed with a
//!   lease (never two workers on one attempt), finished by the lease's holder;
//! - [`duration`]: ISO 8601 durations (`PT5S`) ↔ milliseconds;
//! - [`time`]: [`Timestamp`] (RFC 3339) and HTTP dates (`Retry-After`);
//! - [`keys`]: the dispatcher's key layout, on `eventplane_core::keys`.
//!
//! ```
//! use eventplane_core::{MemoryStore, TenantId};
//! use eventplane_dispatch::policy::{AttemptResult, Decision, classify, decide};
//! use eventplane_dispatch::{FilterSubject, SubscriptionInput, active_for, create};
//! use serde_json::json;
//!
//! let store = MemoryStore::new();
//! let tenant: TenantId = "acme".parse()?;
//! let input = SubscriptionInput::parse(&json!({
//!     "name": "orders to billing",
//!     "sink": {"url": "https://billing.example/hooks"},
//!     "filter": {"application": "shop", "typePrefix": "order."},
//!     "delivery": {"retry": 3},
//! }))?;
//! let created = create(&store, &tenant, input, [7; 32], 1_700_000_000_000)?;
//! assert!(created.view()["signing"]["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")));
//!
//! let extensions = Default::default();
//! let event = FilterSubject {
//!     application: "shop",
//!     type_name: "order.created.v1",
//!     source: "/applications/shop",
//!     extensions: &extensions,
//! };
//! let subscriptions = active_for(&store, &tenant, &event)?;
//! assert_eq!(subscriptions.len(), 1);
//!
//! let result = classify(&AttemptResult::Response { status: 503, retry_after: None }, 0);
//! let decision = decide(&subscriptions[0].delivery, 1, &result, 0.5);
//! assert_eq!(decision, Decision::RetryAt(5_000));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod api;
pub mod delivery;
pub mod duration;
pub mod engine;
pub mod filter;
pub mod input;
pub mod keys;
pub mod lookup;
pub mod model;
pub mod outgoing;
pub mod policy;
pub mod records;
pub mod retention;
pub mod signing;
pub mod store;
pub mod time;

pub use filter::{Filter, FilterSubject};
pub use input::SubscriptionInput;
pub use model::{
    BackoffPolicy, DeadLetterSink, Delivery, SECRET_MASK, Sink, SinkAuth, Subscription,
    SubscriptionStatus,
};
pub use policy::{
    AttemptResult, Classification, Decision, ErrorClass, Outcome, classify, decide, next_delay_ms,
};
pub use records::{Attempt, AttemptOutcome, DeadLetter, Trigger, response_excerpt};
pub use signing::{SigningSecret, sign};
pub use store::{
    Created, SubscriptionPage, active, active_for, add_dead_letter, attempts, create, delete, get,
    list, pause, replace, resume, subscription_records_in,
};
pub use time::Timestamp;

#[cfg(test)]
mod tests;
