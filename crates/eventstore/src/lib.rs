//! eventplane's event store, plain Rust over any [`KvStore`](eventplane_core::KvStore):
//!
//! - [`load_catalog`]: the event types an application registered, read from the registry's
//!   records (for validating what it publishes);
//! - [`store_event`]: an accepted event stored durably and idempotently per `source` and
//!   publisher id, filed under a per-tenant acceptance sequence number in the tenant's event
//!   log (see the [`events`] module for the algorithm and why it is safe on Spin's SQLite
//!   store);
//! - [`pending`] / [`advance`]: the log as the dispatcher drains it, read by sequence number
//!   from a cursor, without scanning;
//! - [`get_event`], [`events_since`]: reading events back, by id and in acceptance order;
//!   [`find_by_cloud_event_id`]: by the publisher's id alone (see the [`sources`] module);
//! - [`purge_expired`]: retention, removing the events older than the retention period (and
//!   with them their deduplication), oldest first (see the [`retention`] module);
//! - [`due`]: bucketed due queues (minutes, or any increasing bucket number), for work that is
//!   due later (the dispatcher's retries).
//!
//! The key layout is documented in `eventplane_core::keys`.
//!
//! ```
//! use eventplane_core::{AppId, MemoryStore, TenantId};
//! use eventplane_eventstore::{EventData, NewEvent, advance, pending, store_event};
//!
//! let store = MemoryStore::new();
//! let tenant: TenantId = "acme".parse()?;
//! let event = NewEvent {
//!     application: "shop".into(),
//!     app_id: AppId::new(),
//!     source: "/applications/shop".into(),
//!     event_id: "42".into(),
//!     type_name: "order.created.v1".into(),
//!     type_version: Some("v1".into()),
//!     spec_version: "1.0".into(),
//!     time: None,
//!     datacontenttype: Some("application/json".into()),
//!     dataschema: None,
//!     subject: None,
//!     extensions: Default::default(),
//!     data: EventData::Json(serde_json::json!({"orderId": "o-1"})),
//! };
//! let now_ms = 1_700_000_000_000;
//! let first = store_event(&store, &tenant, event.clone(), now_ms)?;
//! let again = store_event(&store, &tenant, event, now_ms + 5)?;
//! assert!(!first.duplicate && again.duplicate);
//! assert_eq!(again.event, first.event);
//!
//! let batch = pending(&store, &tenant, 10, now_ms)?;
//! assert_eq!(batch.entries.len(), 1);
//! assert_eq!(batch.entries[0].event_id, first.event.id);
//! // ...hand the event over durably, then move past it:
//! assert!(advance(&store, &tenant, &batch)?);
//! assert!(pending(&store, &tenant, 10, now_ms)?.entries.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

use std::time::Duration;

mod catalog;
pub mod due;
mod event;
pub mod events;
pub mod retention;
pub mod sources;

pub use catalog::{AppCatalog, CatalogEntry, application_keys, application_name_key, load_catalog};
pub use event::{EventData, NewEvent, StoredEvent};
pub use events::{
    EventPage, GAP_GRACE_MS, LogCursor, MAX_SEQUENCES_PER_CALL, PendingBatch, PendingEntry, Stored,
    advance, event_key, events_since, first_sequence_at_or_after, get_event, pending, store_event,
    store_event_with,
};
pub use retention::{Purged, purge_expired, purged_up_to};
pub use sources::{Found, MAX_TRACKED_SOURCES, event_id_of, find_by_cloud_event_id, note_source};

/// How long to wait for another instance's write that should appear shortly (a concurrent
/// store of the same event, the creation of a queue bucket): up to `rounds` more reads with
/// `sleep(pause)` between them.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    /// How many times to read again after the first read.
    pub rounds: u32,
    /// The pause between reads.
    pub pause: Duration,
    /// How to pause (`std::thread::sleep`; tests inject a no-op).
    pub sleep: fn(Duration),
}

impl Default for Patience {
    /// About a second: 100 rounds of 10 ms.
    fn default() -> Self {
        Self {
            rounds: 100,
            pause: Duration::from_millis(10),
            sleep: std::thread::sleep,
        }
    }
}

impl Patience {
    /// Reads once more after `rounds` pauses that do not sleep (for tests).
    pub fn no_sleep(rounds: u32) -> Self {
        Self {
            rounds,
            pause: Duration::ZERO,
            sleep: |_| {},
        }
    }
}

#[cfg(test)]
mod tests;
