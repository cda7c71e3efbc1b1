//! The one path an event takes into eventplane, whatever carried it: an HTTP publish (the
//! gateway's CloudEvents and Kyma legacy endpoints), a Pub/Sub push, a Pub/Sub pull, or an
//! MQTT message.
//!
//! 1. **Parse**: each entry turns its wire format into a CloudEvent ([`Event`]) with the events
//!    crate (`cloudevents`, `legacy`) or its own binding (Pub/Sub's in the bus crate, MQTT's in
//!    [`mqtt`]).
//! 2. **Authenticate**: each entry proves who published (access tokens, verified by `auth`
//!    with the feature `spin`; Pub/Sub's push token; the bus subscription it pulled from) and
//!    so which [`Application`] it is.
//! 3. **Check**: against the application's catalog ([`Application::check`],
//!    [`Application::check_batch`]): the type must be registered and the data must satisfy its
//!    payload schema.
//! 4. **Store**: durably and idempotently per `source` and `id` ([`Application::store`]) before
//!    the entry says yes.
//! 5. **Hand off**: the entry lets the dispatcher know (`handoff::HandOff` with the feature
//!    `spin`; a pull delivers in the same tick).
//!
//! Entries that cannot answer with the gateway's error shapes (a push answers Pub/Sub, a pull
//! records the problem in the subscription's state, MQTT has no answer) get a [`Rejection`]
//! instead, and keep what they refused in a [`rejected::RejectedLog`].
//!
//! The feature `spin` adds the parts that run on spin-sdk: `auth` (access tokens: ours and the
//! external OpenID Connect issuer's, with the key-set and verified-token caches), `config`
//! (the variables they read) and `handoff`. Without it the crate is plain domain code.
#![deny(missing_docs)]

#[cfg(feature = "spin")]
pub mod auth;
#[cfg(feature = "spin")]
pub mod config;
#[cfg(feature = "spin")]
pub mod handoff;
pub mod mqtt;
pub mod rejected;

use std::time::{SystemTime, UNIX_EPOCH};

use eventplane_core::{AppId, Error, FieldError, KvStore, TenantId};
use eventplane_events::catalog::{Catalog, PayloadCheck};
use eventplane_events::cloudevents::Event;
use eventplane_events::token::AuthError;
use eventplane_events::{CatalogEntry, CatalogError, EventData};
use eventplane_eventstore::{self as eventstore, NewEvent, Stored};

/// An application that publishes, with its catalog: what its events are checked against.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    /// Its id.
    pub id: AppId,
    /// Its name (the `source` of its events is `/applications/<name>`).
    pub name: String,
    /// The event types of all its event APIs.
    pub entries: Vec<CatalogEntry>,
}

impl Application {
    /// The application named `name` of `tenant` with its catalog, read from the registry's
    /// records; `None` if there is none.
    pub fn load(store: &dyn KvStore, tenant: &TenantId, name: &str) -> Result<Option<Self>, Error> {
        let Some(catalog) = eventstore::load_catalog(store, tenant, name)? else {
            return Ok(None);
        };
        Ok(Some(Self {
            id: catalog.app_id,
            name: catalog.app_name,
            entries: catalog
                .entries
                .into_iter()
                .map(|entry| CatalogEntry {
                    name: entry.name,
                    version: entry.version,
                    payload_schema: entry.payload_schema,
                })
                .collect(),
        }))
    }

    /// Checks `event` against the catalog (`version`: the legacy `event-type-version`, if the
    /// entry knows it).
    pub fn check(
        &self,
        event: &Event,
        version: Option<&str>,
    ) -> Result<PayloadCheck, CatalogError> {
        Catalog::new(&self.entries).validate(event, version)
    }

    /// Checks a batch of events as a whole: either every event passes (the outcomes in order),
    /// or one error listing the problems of every failing entry (`[index]`-prefixed fields).
    pub fn check_batch(&self, events: &[Event]) -> Result<Vec<PayloadCheck>, CatalogError> {
        Catalog::new(&self.entries).validate_batch(events)
    }

    /// Stores `event`, published by this application and checked, for `tenant` at `now_ms`
    /// (Unix ms); idempotent per `source` and `id` (a repeat answers the first record, as a
    /// duplicate). `type_version` is the catalog entry's version, when the entry knows it.
    pub fn store(
        &self,
        store: &dyn KvStore,
        tenant: &TenantId,
        event: Event,
        type_version: Option<String>,
        now_ms: u64,
    ) -> Result<Stored, Error> {
        eventstore::store_event(store, tenant, self.record(event, type_version), now_ms)
    }

    /// The record of `event` as this application published it.
    pub fn record(&self, event: Event, type_version: Option<String>) -> NewEvent {
        let data = match event.data {
            EventData::None => eventstore::EventData::None,
            EventData::Json(value) => eventstore::EventData::Json(value),
            EventData::Text(text) => eventstore::EventData::Text(text),
            EventData::Binary(bytes) => eventstore::EventData::Binary(bytes),
        };
        NewEvent {
            application: self.name.clone(),
            app_id: self.id.clone(),
            source: event.source,
            event_id: event.id,
            type_name: event.event_type,
            type_version,
            spec_version: event.specversion,
            time: event.time,
            datacontenttype: event.datacontenttype,
            dataschema: event.dataschema,
            subject: event.subject,
            extensions: event.extensions,
            data,
        }
    }

    /// Checks `event` and stores it: the path of entries that answer with a [`Rejection`].
    /// `Err` only when the store failed (the entry must not say yes, and may try again).
    pub fn accept(
        &self,
        store: &dyn KvStore,
        tenant: &TenantId,
        event: Event,
        now_ms: u64,
    ) -> Result<Result<Stored, Rejection>, Error> {
        if let Err(err) = self.check(&event, None) {
            return Ok(Err(Rejection::from_catalog(&err)));
        }
        self.store(store, tenant, event, None, now_ms).map(Ok)
    }
}

/// Why something that arrived cannot become an event: a code and a reason a person reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// `INVALID_CLOUDEVENT`, `PAYLOAD_TOO_LARGE`, `EVENT_TYPE_NOT_REGISTERED`,
    /// `PAYLOAD_SCHEMA_VIOLATION`; for entries that authenticate each message themselves also
    /// `UNAUTHORIZED`, `FORBIDDEN` and `NOT_FOUND` (no such application).
    pub code: String,
    /// What is wrong, with each field's problem.
    pub reason: String,
    /// The HTTP status an entry that answers over HTTP uses: `413` (too large), `422`, or
    /// `401`, `403`, `404`.
    pub status: u16,
}

impl Rejection {
    /// An event that is not a valid CloudEvent, or too large (`413`).
    pub fn from_error(err: &Error) -> Self {
        let too_large = err.status() == 413;
        Self {
            code: if too_large {
                "PAYLOAD_TOO_LARGE"
            } else {
                "INVALID_CLOUDEVENT"
            }
            .to_owned(),
            reason: with_details(&err.public_message(), err.details()),
            status: if too_large { 413 } else { 422 },
        }
    }

    /// An event the catalog refuses.
    pub fn from_catalog(err: &CatalogError) -> Self {
        Self {
            code: err.code().to_owned(),
            reason: with_details(&err.message(), err.details()),
            status: err.status(),
        }
    }

    /// Not a CloudEvent, for `reason`.
    pub fn invalid(reason: impl Into<String>) -> Self {
        Self {
            code: "INVALID_CLOUDEVENT".to_owned(),
            reason: reason.into(),
            status: 422,
        }
    }

    /// Not authenticated (`UNAUTHORIZED`, 401) or not allowed (`FORBIDDEN`, 403).
    pub fn from_auth(err: &AuthError) -> Self {
        let status = err.status();
        Self {
            code: if status == 403 {
                "FORBIDDEN"
            } else {
                "UNAUTHORIZED"
            }
            .to_owned(),
            reason: err.to_string(),
            status,
        }
    }

    /// The application `name` does not exist (`NOT_FOUND`, 404).
    pub fn no_application(name: &str) -> Self {
        Self {
            code: "NOT_FOUND".to_owned(),
            reason: format!("there is no application named {name:?}"),
            status: 404,
        }
    }
}

/// Names to `store` what storing `events` for `tenant` and handing them off read next:
/// whether each event's source is known, and the subscriptions' records (named from the
/// subscriptions index, fetched with the first reads). Every entry calls it once the events
/// are parsed and authorised, before it loads the application, so that these come with the
/// catalog's reads.
#[cfg(feature = "spin")]
pub fn want_storing_reads<S: KvStore>(
    store: &eventplane_core::ReadAhead<S>,
    tenant: &TenantId,
    events: &[Event],
) {
    store.want(
        events
            .iter()
            .map(|event| eventstore::sources::marker_key(tenant, &event.source)),
    );
    store.want(handoff::HandOff::next_reads(store, tenant));
}

/// Milliseconds since the Unix epoch (`0` if the clock is before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Seconds since the Unix epoch (`0` if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn with_details(message: &str, details: &[FieldError]) -> String {
    if details.is_empty() {
        return message.to_owned();
    }
    let problems: Vec<String> = details
        .iter()
        .map(|d| format!("{}: {}", d.field, d.message))
        .collect();
    format!("{message} ({})", problems.join("; "))
}

#[cfg(test)]
mod tests {
    use eventplane_core::MemoryStore;
    use serde_json::json;

    use super::*;

    fn shop() -> Application {
        Application {
            id: AppId::new(),
            name: "shop".into(),
            entries: vec![CatalogEntry {
                name: "order.created.v1".into(),
                version: "v1".into(),
                payload_schema: Some(json!({"type": "object", "required": ["orderId"],
                    "properties": {"orderId": {"type": "string"}}})),
            }],
        }
    }

    fn order(id: &str, data: serde_json::Value) -> Event {
        let mut event = Event::new(id, "/applications/shop", "order.created.v1");
        event.data = EventData::Json(data);
        event
    }

    #[test]
    fn accepted_events_are_stored_once_under_their_application() -> Result<(), Error> {
        let store = MemoryStore::spin_sqlite_like();
        let tenant: TenantId = "acme".parse()?;
        let app = shop();
        let first = app
            .accept(&store, &tenant, order("1", json!({"orderId": "o-1"})), 1)?
            .expect("valid");
        assert!(!first.duplicate);
        assert_eq!(
            (first.event.application.as_str(), &first.event.app_id),
            ("shop", &app.id)
        );
        assert_eq!(first.event.type_name, "order.created.v1");
        let again = app
            .accept(&store, &tenant, order("1", json!({"orderId": "o-1"})), 2)?
            .expect("valid");
        assert!(again.duplicate);
        assert_eq!(again.event.id, first.event.id);
        Ok(())
    }

    #[test]
    fn what_the_catalog_refuses_is_a_rejection_and_nothing_is_stored() -> Result<(), Error> {
        let store = MemoryStore::new();
        let tenant: TenantId = "acme".parse()?;
        let app = shop();
        let bad = app
            .accept(&store, &tenant, order("2", json!({"orderId": 7})), 1)?
            .expect_err("schema violation");
        assert_eq!(
            (bad.code.as_str(), bad.status),
            ("PAYLOAD_SCHEMA_VIOLATION", 422)
        );
        assert!(bad.reason.contains("/data/orderId"), "{}", bad.reason);
        let mut unknown = order("3", json!({"orderId": "o"}));
        unknown.event_type = "order.deleted.v1".into();
        let unknown = app
            .accept(&store, &tenant, unknown, 1)?
            .expect_err("not registered");
        assert_eq!(unknown.code, "EVENT_TYPE_NOT_REGISTERED");
        assert!(store.is_empty(), "nothing stored: {:?}", store.keys());
        Ok(())
    }

    #[test]
    fn rejections_of_malformed_or_large_events() {
        let large = Rejection::from_error(&Error::payload_too_large(65536));
        assert_eq!(
            (large.code.as_str(), large.status),
            ("PAYLOAD_TOO_LARGE", 413)
        );
        let invalid = Rejection::invalid("no ce-type");
        assert_eq!(
            (invalid.code.as_str(), invalid.status),
            ("INVALID_CLOUDEVENT", 422)
        );
    }
}
