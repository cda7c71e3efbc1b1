//! eventplane's external event buses: an event API's `externalSubscriptions` on Google Cloud
//! Pub/Sub, consumed by pulling (on each dispatcher tick) or by push (into the gateway).
//!
//! - [`config`]: what the registered fields mean, validated ([`BusSubscription`]);
//! - [`wire`]: Pub/Sub's REST shapes (subscription resource, `:pull`, `:acknowledge`, push
//!   envelope);
//! - [`ingest`]: a message as a CloudEvent (binary or structured mode), checked against the
//!   event API's catalog like a published event, and stored;
//! - [`state`]: each subscription's state (last pull, messages taken, last error) and its
//!   rejected messages;
//! - [`pull`]: one pull round, acknowledging only what is stored or recorded;
//! - [`push`]: which push-mode subscription of an application a push request comes from.
#![deny(missing_docs)]

pub mod config;
pub mod ingest;
pub mod pull;
pub mod push;
pub mod state;
pub mod wire;

pub use config::{BusSubscription, Mode, Settings, SubscriptionUrl, subscription_key};
pub use ingest::{Ingested, Rejection, Target};
pub use pull::{BusClient, PullCounts, PullReport, check, pull_all, pull_once};
pub use push::{PushTarget, push_target};
pub use state::{BusState, RejectedMessage, RejectedPage};
