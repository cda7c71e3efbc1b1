//! Finding a stored event by its CloudEvents `id` alone.
//!
//! A stored event's key is derived from its `source` and publisher id ([`event_id_of`]), so an
//! event whose source is known is one read away. A user who knows only the publisher's id ("what
//! happened to order 4711's event?") needs the sources it may have come from: [`note_source`]
//! keeps, per tenant, the set of sources its events came from, and [`find_by_cloud_event_id`]
//! tries each.
//!
//! ## Cost on the publish path
//!
//! [`note_source`] reads one small marker per publish (`t/<tenant>/r/event-source/<hash>`). Only
//! the first event from a new source writes: it adds the source to the tenant's index
//! (`t/<tenant>/i/event-sources`, by compare-and-swap) and then sets the marker, so a marker
//! always means "in the index". It runs before the event is stored: an event is never stored
//! without its source being findable.
//!
//! ## Limit
//!
//! A tenant's index holds at most about [`MAX_TRACKED_SOURCES`] sources (concurrent first
//! publishes may pass it by a few). Sources beyond it are marked untracked, the tenant is
//! flagged, and from then on a lookup by CloudEvents id alone reports itself incomplete
//! ([`Found::complete`]): the caller must ask for `source` too, never guess.

use eventplane_core::index::{add_to_tenant_index, all_members};
use eventplane_core::keys::{self, EVENT_SOURCE_MARKERS, EVENT_SOURCES, UNTRACKED_EVENT_SOURCES};
use eventplane_core::{Error, EventId, KvStore, KvStoreExt, TenantId};
use sha2::{Digest, Sha256};

use crate::event::{StoredEvent, identity};
use crate::events::get_event;

/// The most sources a tenant's index keeps (about: concurrent first publishes may pass it by a
/// few).
pub const MAX_TRACKED_SOURCES: usize = 1000;

/// The internal id of the event `id` from `source` (the key its record is stored under).
pub fn event_id_of(source: &str, id: &str) -> Result<EventId, Error> {
    Ok(identity(source, id)?.id)
}

/// Makes sure events from `source` can be found by their CloudEvents id alone (see the module
/// docs): one read when the source is known, an index update the first time.
pub fn note_source(store: &dyn KvStore, tenant: &TenantId, source: &str) -> Result<(), Error> {
    let marker = marker_key(tenant, source);
    if store.get(&marker)?.is_some() {
        return Ok(());
    }
    let index = keys::index(tenant, EVENT_SOURCES);
    let tracked = store
        .get_json::<Vec<String>>(&index)?
        .unwrap_or_default()
        .len()
        < MAX_TRACKED_SOURCES;
    if tracked {
        add_to_tenant_index(store, tenant, EVENT_SOURCES, source)?;
    } else {
        store.set_json(
            &keys::record(tenant, UNTRACKED_EVENT_SOURCES, "flag"),
            &true,
        )?;
    }
    store.set_json(&marker, &tracked)
}

/// The stored events of `tenant` with CloudEvents id `id`, one per source.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The events found, in the order of their sources.
    pub events: Vec<StoredEvent>,
    /// `false` if some of the tenant's sources are not tracked ([`MAX_TRACKED_SOURCES`]), so an
    /// event with this id may exist that was not found.
    pub complete: bool,
}

/// Every stored event of `tenant` whose CloudEvents id is `id`, whatever its source: one read
/// per source the tenant's events came from.
pub fn find_by_cloud_event_id(
    store: &dyn KvStore,
    tenant: &TenantId,
    id: &str,
) -> Result<Found, Error> {
    let mut events = Vec::new();
    for source in all_members(store, &keys::index(tenant, EVENT_SOURCES))? {
        if let Some(event) = get_event(store, tenant, &event_id_of(&source, id)?)? {
            events.push(event);
        }
    }
    let complete = !store.exists(&keys::record(tenant, UNTRACKED_EVENT_SOURCES, "flag"))?;
    Ok(Found { events, complete })
}

/// The key [`note_source`] reads first: whether `source` is known in `tenant` (for readers
/// that fetch it ahead).
pub fn marker_key(tenant: &TenantId, source: &str) -> eventplane_core::Key {
    let hash = hex::encode(Sha256::digest(source.as_bytes()));
    keys::record(tenant, EVENT_SOURCE_MARKERS, &hash)
}

#[cfg(test)]
mod tests {
    use eventplane_core::{AppId, MemoryStore};

    use super::*;
    use crate::{NewEvent, store_event};

    fn event(source: &str, id: &str) -> NewEvent {
        NewEvent::new("shop", AppId::new(), source, id, "order.created.v1")
    }

    fn tenant() -> TenantId {
        "acme".parse().expect("a tenant")
    }

    #[test]
    fn an_event_is_found_by_its_cloud_event_id_in_every_source() -> Result<(), Error> {
        let store = MemoryStore::spin_sqlite_like();
        let t = tenant();
        let a = store_event(&store, &t, event("/applications/shop", "4711"), 1)?.event;
        let b = store_event(&store, &t, event("/applications/erp", "4711"), 2)?.event;
        store_event(&store, &t, event("/applications/erp", "4712"), 3)?;
        let found = find_by_cloud_event_id(&store, &t, "4711")?;
        assert!(found.complete);
        let mut ids: Vec<_> = found.events.iter().map(|e| e.id.clone()).collect();
        ids.sort();
        let mut expected = vec![a.id.clone(), b.id];
        expected.sort();
        assert_eq!(ids, expected);
        assert_eq!(event_id_of("/applications/shop", "4711")?, a.id);
        assert!(
            find_by_cloud_event_id(&store, &t, "nope")?
                .events
                .is_empty()
        );
        let other: TenantId = "other".parse().expect("a tenant");
        assert!(
            find_by_cloud_event_id(&store, &other, "4711")?
                .events
                .is_empty()
        );
        Ok(())
    }

    #[test]
    fn a_known_source_costs_one_read() -> Result<(), Error> {
        let store = MemoryStore::spin_sqlite_like();
        let t = tenant();
        note_source(&store, &t, "/applications/shop")?;
        let index = keys::index(&t, EVENT_SOURCES);
        let before = store.get(&index)?;
        note_source(&store, &t, "/applications/shop")?;
        assert_eq!(store.get(&index)?, before);
        assert_eq!(all_members(&store, &index)?, ["/applications/shop"]);
        Ok(())
    }

    #[test]
    fn past_the_limit_lookups_say_they_are_incomplete() -> Result<(), Error> {
        let store = MemoryStore::spin_sqlite_like();
        let t = tenant();
        for n in 0..MAX_TRACKED_SOURCES {
            note_source(&store, &t, &format!("/s/{n}"))?;
        }
        assert!(find_by_cloud_event_id(&store, &t, "1")?.complete);
        store_event(&store, &t, event("/s/extra", "1"), 1)?;
        let found = find_by_cloud_event_id(&store, &t, "1")?;
        assert!(
            !found.complete,
            "an untracked source makes the lookup incomplete"
        );
        assert!(found.events.is_empty());
        assert_eq!(
            all_members(&store, &keys::index(&t, EVENT_SOURCES))?.len(),
            MAX_TRACKED_SOURCES
        );
        Ok(())
    }
}
