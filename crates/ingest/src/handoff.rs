//! The last step of the path: accepted events with subscribers are handed to the dispatcher at
//! once (by service chaining, `eventplane_spin::handoff`), after the publisher has its answer.

use eventplane_core::{EventId, Key, KvStore, ReadAhead, TenantId};
use eventplane_eventstore::Stored;

/// Events to hand to the dispatcher once the publisher has its answer: the accepted (not
/// duplicate) events that at least one active subscription receives. When the tenant has
/// active subscriptions but none receives these events, the hand-off still goes (without an
/// event): every publish lets the dispatcher make a bounded amount of due work (retries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandOff {
    tenant: TenantId,
    events: Vec<EventId>,
}

impl HandOff {
    /// The hand-off of the events `stored` accepted in `tenant`, if any of them has a
    /// subscriber.
    pub fn of(store: &dyn KvStore, tenant: &TenantId, stored: &[Stored]) -> Option<Self> {
        let fresh: Vec<&Stored> = stored.iter().filter(|s| !s.duplicate).collect();
        if fresh.is_empty() || !eventplane_spin::handoff::enabled() {
            return None;
        }
        // The tick takes every event from the log anyway: a failed read only skips the hand-off.
        let subscriptions = eventplane_dispatch::active(store, tenant).ok()?;
        if subscriptions.is_empty() {
            return None; // no due work can be made either
        }
        let events: Vec<_> = fresh
            .into_iter()
            .filter(|s| {
                let subject = eventplane_dispatch::FilterSubject::from_event(&s.event);
                subscriptions.iter().any(|sub| sub.filter.matches(&subject))
            })
            .map(|s| s.event.id.clone())
            .collect();
        Some(Self {
            tenant: tenant.clone(),
            events,
        })
    }

    /// What [`of`](Self::of) will read after the subscriptions index, named from the index's
    /// value where `store` has fetched it ahead and not read it yet (the publish wants the
    /// index with its first reads): the subscriptions' records, so that a store that reads
    /// ahead fetches them with the publish's next read instead of in a round trip of their
    /// own. Nothing when the hand-off is off.
    pub(crate) fn next_reads<S: KvStore>(store: &ReadAhead<S>, tenant: &TenantId) -> Vec<Key> {
        if !eventplane_spin::handoff::enabled() {
            return Vec::new();
        }
        match store.peek(&eventplane_dispatch::keys::subscriptions(tenant)) {
            Some(Some(index)) => eventplane_dispatch::subscription_records_in(tenant, &index),
            _ => Vec::new(),
        }
    }

    /// Asks the dispatcher to deliver the events now, in parallel, by service chaining.
    /// Failures are only logged: the dispatcher's tick takes every accepted event from the
    /// event log anyway.
    pub async fn send(self) {
        self.send_to(eventplane_spin::handoff::HANDOFF_URL).await;
    }

    /// [`send`](Self::send) to the dispatcher's hand-off endpoint at `url`.
    pub async fn send_to(self, url: &str) {
        let events: Vec<Option<EventId>> = if self.events.is_empty() {
            vec![None] // only the drain
        } else {
            self.events.into_iter().map(Some).collect()
        };
        eventplane_spin::handoff::hand_off_to(url, &self.tenant, &events, None).await;
    }
}
