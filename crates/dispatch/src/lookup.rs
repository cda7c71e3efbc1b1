//! Naming an event in a request: by eventplane's id (`evt_…`) or by the CloudEvents `id` its
//! publisher sent, optionally with its `source`.
//!
//! | `eventId` | `source` | means |
//! |---|---|---|
//! | `evt_…` | absent | eventplane's id |
//! | anything else | absent | the CloudEvents id, from whichever source sent it: `409` if two sources did |
//! | anything | given | the CloudEvents id from that source (so a publisher whose own ids look like `evt_…` passes `source`) |

use eventplane_core::{Error, EventId, KvStore, TenantId};
use eventplane_eventstore::{event_id_of, find_by_cloud_event_id};

/// The longest `eventId` or `source` accepted in a request (the CloudEvents attributes of a
/// stored event are within the gateway's limits, far below this).
pub const MAX_REFERENCE_CHARS: usize = 4096;

/// An event as a request names it (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventRef {
    /// eventplane's id.
    Internal(EventId),
    /// The publisher's CloudEvents id, and the source if the request gave it.
    CloudEvent {
        /// CloudEvents `id`.
        id: String,
        /// CloudEvents `source`.
        source: Option<String>,
    },
}

impl EventRef {
    /// Reads an `eventId` and an optional `source` as the module docs say. `400` for an empty
    /// or over-long value.
    pub fn parse(id: &str, source: Option<&str>) -> Result<Self, Error> {
        check("eventId", id)?;
        if let Some(source) = source {
            check("source", source)?;
            return Ok(Self::CloudEvent {
                id: id.to_owned(),
                source: Some(source.to_owned()),
            });
        }
        Ok(match id.parse::<EventId>() {
            Ok(internal) => Self::Internal(internal),
            Err(_) => Self::CloudEvent {
                id: id.to_owned(),
                source: None,
            },
        })
    }

    /// eventplane's id of the event named: `Ok(None)` if no stored event has the CloudEvents id
    /// (an internal id, or a CloudEvents id with its source, is returned as is, stored or not).
    /// `409 CONFLICT` when a CloudEvents id alone is ambiguous: two sources sent it (the message
    /// names them), or the tenant has more sources than are tracked.
    pub fn resolve(
        &self,
        store: &dyn KvStore,
        tenant: &TenantId,
    ) -> Result<Option<EventId>, Error> {
        match self {
            Self::Internal(id) => Ok(Some(id.clone())),
            Self::CloudEvent {
                id,
                source: Some(source),
            } => Ok(Some(event_id_of(source, id)?)),
            Self::CloudEvent { id, source: None } => {
                let found = find_by_cloud_event_id(store, tenant, id)?;
                if !found.complete {
                    return Err(Error::conflict(format!(
                        "this tenant's events come from more sources than eventplane tracks \
                         ({}), so the CloudEvents id {id:?} alone cannot name one event: add \
                         source=",
                        eventplane_eventstore::MAX_TRACKED_SOURCES
                    )));
                }
                match found.events.as_slice() {
                    [] => Ok(None),
                    [event] => Ok(Some(event.id.clone())),
                    events => {
                        let sources: Vec<String> = events
                            .iter()
                            .map(|event| format!("{:?} ({})", event.source, event.id))
                            .collect();
                        Err(Error::conflict(format!(
                            "the CloudEvents id {id:?} was sent by {} sources: {}; add source= \
                             to choose, or use eventplane's id",
                            events.len(),
                            sources.join(", ")
                        )))
                    }
                }
            }
        }
    }
}

/// Checks a `source` given without an `eventId` (a filter of a listing) as [`EventRef::parse`]
/// checks one given with it: `400` for an empty or over-long value.
pub fn check_source(source: &str) -> Result<(), Error> {
    check("source", source)
}

fn check(field: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() || value.chars().count() > MAX_REFERENCE_CHARS {
        return Err(Error::invalid(
            field,
            format!("must have 1 to {MAX_REFERENCE_CHARS} characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use eventplane_core::{AppId, MemoryStore};
    use eventplane_eventstore::{NewEvent, store_event};

    use super::*;

    fn publish(store: &MemoryStore, source: &str, id: &str) -> Result<EventId, Error> {
        let event = NewEvent::new("shop", AppId::new(), source, id, "order.created.v1");
        Ok(store_event(store, &tenant(), event, 1)?.event.id)
    }

    fn tenant() -> TenantId {
        "acme".parse().expect("a tenant")
    }

    #[test]
    fn parsing_tells_our_ids_from_the_publishers() -> Result<(), Error> {
        let ours = "evt_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f";
        assert!(matches!(
            EventRef::parse(ours, None)?,
            EventRef::Internal(_)
        ));
        assert_eq!(
            EventRef::parse(ours, Some("/s"))?,
            EventRef::CloudEvent {
                id: ours.into(),
                source: Some("/s".into())
            }
        );
        assert_eq!(
            EventRef::parse("4711", None)?,
            EventRef::CloudEvent {
                id: "4711".into(),
                source: None
            }
        );
        assert_eq!(EventRef::parse("", None).map_err(|e| e.status()), Err(400));
        let long = "x".repeat(MAX_REFERENCE_CHARS + 1);
        assert_eq!(
            EventRef::parse("1", Some(&long)).map_err(|e| e.status()),
            Err(400)
        );
        Ok(())
    }

    #[test]
    fn a_cloud_event_id_resolves_to_one_event_or_a_conflict_naming_both_sources()
    -> Result<(), Error> {
        let store = MemoryStore::spin_sqlite_like();
        let shop = publish(&store, "/applications/shop", "4711")?;
        let only = EventRef::parse("4711", None)?.resolve(&store, &tenant())?;
        assert_eq!(only, Some(shop.clone()));
        assert_eq!(
            EventRef::parse("4712", None)?.resolve(&store, &tenant())?,
            None
        );

        let erp = publish(&store, "/applications/erp", "4711")?;
        let err = EventRef::parse("4711", None)?
            .resolve(&store, &tenant())
            .expect_err("ambiguous");
        assert_eq!(err.status(), 409);
        let message = err.to_string();
        assert!(
            message.contains("/applications/shop") && message.contains("/applications/erp"),
            "{message}"
        );
        let chosen = EventRef::parse("4711", Some("/applications/erp"))?;
        assert_eq!(chosen.resolve(&store, &tenant())?, Some(erp.clone()));
        let ours = EventRef::parse(erp.as_str(), None)?;
        assert_eq!(ours.resolve(&store, &tenant())?, Some(erp));
        Ok(())
    }
}
