//! The dispatcher's keys, built with `eventplane_core::keys` (so tenant-scoped and escaped
//! like every other key):
//!
//! | key | holds |
//! |---|---|
//! | `t/<tenant>/r/sub/<subscription id>` | a [`Subscription`](crate::Subscription) |
//! | `t/<tenant>/i/subs` | the ids of the tenant's subscriptions |
//! | `t/<tenant>/seed/subs` | the election of the writer creating that index |
//! | `t/<tenant>/r/sub-delivery/<sub id>:<event id>` | the dispatcher's delivery state of one event to one subscription, with its [`Attempt`](crate::Attempt)s (oldest first) |
//! | `t/<tenant>/r/sub-delivery-seed/<sub id>:<event id>` | the election of the writer creating that state |
//! | `t/<tenant>/r/sub-dead-letter/<sub id>:<event id>` | a [`DeadLetter`](crate::DeadLetter) |
//! | `t/<tenant>/i/sub-dead-letters/<sub id>` | the ids of the events dead-lettered for a subscription |
//! | `t/<tenant>/i/subs-deleted` | subscriptions deleted within the retention period (`<deleted at>:<id>`, see [`crate::retention`]) |
//! | `t/<tenant>/seed/subs-deleted` | the election of the writer creating that index |
//! | `t/<tenant>/due/sub-retry/<minute>` | deliveries (`<sub id>:<event id>`) whose retry is due in that minute (a due queue, see `eventplane_eventstore::due`) |
//!
//! A subscription's dead-letter index is created (empty) with the subscription and deleted
//! with it, and otherwise only changed while it exists, so a dead letter racing a delete never
//! brings the index back (see [`add_dead_letter`](crate::store::add_dead_letter)).

use eventplane_core::keys::{self, Kind};
use eventplane_core::{EventId, Key, SubscriptionId, TenantId};

/// Index: the ids of all subscriptions of a tenant.
pub const SUBSCRIPTIONS: Kind = Kind::new("subs");
/// Records, per delivery (`<sub id>:<event id>`): the dispatcher's state of that delivery.
pub const DELIVERIES: Kind = Kind::new("sub-delivery");
/// Records, per delivery: the dead letter, if the dispatcher gave up.
pub const DEAD_LETTERS: Kind = Kind::new("sub-dead-letter");
/// Owned index, per subscription id: the ids of its dead-lettered events.
pub const SUBSCRIPTION_DEAD_LETTERS: Kind = Kind::new("sub-dead-letters");
/// Due queue: deliveries whose next attempt is due, bucketed by minute.
pub const RETRIES: Kind = Kind::new("sub-retry");

/// The record of a subscription: `t/<tenant>/r/sub/<id>`.
pub fn subscription(tenant: &TenantId, id: &SubscriptionId) -> Key {
    keys::record_for(tenant, id)
}

/// The index of a tenant's subscriptions: `t/<tenant>/i/subs`.
pub fn subscriptions(tenant: &TenantId) -> Key {
    keys::index(tenant, SUBSCRIPTIONS)
}

/// The counter electing the writer that creates [`subscriptions`]: `t/<tenant>/seed/subs`
/// (the key `eventplane_core::index::add_to_tenant_index` uses for [`SUBSCRIPTIONS`]).
pub fn subscriptions_seed(tenant: &TenantId) -> Key {
    keys::index_seed(tenant, SUBSCRIPTIONS)
}

/// The name of one delivery (one event to one subscription): `<sub id>:<event id>`. Used in
/// record keys.
pub fn delivery_name(subscription: &SubscriptionId, event: &EventId) -> String {
    format!("{subscription}:{event}")
}

/// A delivery as a member of the [`RETRIES`] due queue: `<sequence, 20 digits>:<sub id>:<event
/// id>`, so that a bucket's members, read in order, come in the events' acceptance order.
pub fn due_member(sequence: u64, subscription: &SubscriptionId, event: &EventId) -> String {
    format!("{sequence:020}:{subscription}:{event}")
}

/// The subscription and event of a [`due_member`]; `None` if `member` is not one.
pub fn parse_due_member(member: &str) -> Option<(SubscriptionId, EventId)> {
    let (sequence, name) = member.split_once(':')?;
    if sequence.len() != 20 || !sequence.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    parse_delivery_name(name)
}

/// The subscription and event named by [`delivery_name`]; `None` if `name` is not one.
pub fn parse_delivery_name(name: &str) -> Option<(SubscriptionId, EventId)> {
    let (subscription, event) = name.split_once(':')?;
    Some((subscription.parse().ok()?, event.parse().ok()?))
}

/// The delivery state of `event` to `subscription`: `t/<tenant>/r/sub-delivery/<sub>:<evt>`.
pub fn delivery(tenant: &TenantId, subscription: &SubscriptionId, event: &EventId) -> Key {
    keys::record(tenant, DELIVERIES, &delivery_name(subscription, event))
}

/// The dead letter of `event` for `subscription`: `t/<tenant>/r/sub-dead-letter/<sub>:<evt>`.
pub fn dead_letter(tenant: &TenantId, subscription: &SubscriptionId, event: &EventId) -> Key {
    keys::record(tenant, DEAD_LETTERS, &delivery_name(subscription, event))
}

/// The index of a subscription's dead-lettered event ids:
/// `t/<tenant>/i/sub-dead-letters/<sub>`.
pub fn dead_letters(tenant: &TenantId, subscription: &SubscriptionId) -> Key {
    keys::owned_index(tenant, SUBSCRIPTION_DEAD_LETTERS, subscription.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_layout() -> Result<(), Box<dyn std::error::Error>> {
        let t = TenantId::new("acme")?;
        let sub: SubscriptionId = "sub_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f".parse()?;
        let evt: EventId = "evt_00000000000000000000000000000001".parse()?;
        assert_eq!(
            subscription(&t, &sub).as_str(),
            "t/acme/r/sub/sub_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f"
        );
        assert_eq!(subscriptions(&t).as_str(), "t/acme/i/subs");
        assert_eq!(subscriptions_seed(&t).as_str(), "t/acme/seed/subs");
        let pair = "sub_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f:evt_00000000000000000000000000000001";
        assert_eq!(
            delivery(&t, &sub, &evt).as_str(),
            format!("t/acme/r/sub-delivery/{pair}")
        );
        assert_eq!(
            dead_letter(&t, &sub, &evt).as_str(),
            format!("t/acme/r/sub-dead-letter/{pair}")
        );
        let member = due_member(7, &sub, &evt);
        assert_eq!(member, format!("00000000000000000007:{pair}"));
        assert_eq!(parse_due_member(&member), Some((sub.clone(), evt.clone())));
        assert_eq!(parse_due_member(pair), None);
        assert!(due_member(9, &sub, &evt) < due_member(10, &sub, &evt));
        assert_eq!(
            dead_letters(&t, &sub).as_str(),
            "t/acme/i/sub-dead-letters/sub_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f"
        );
        assert_eq!(
            eventplane_core::keys::due(
                &t,
                RETRIES,
                eventplane_core::keys::DueBucket::from_minute(7)
            )
            .as_str(),
            "t/acme/due/sub-retry/7"
        );
        Ok(())
    }

    #[test]
    fn delivery_names_round_trip() -> Result<(), Box<dyn std::error::Error>> {
        let sub = SubscriptionId::new();
        let evt: EventId = "evt_00000000000000000000000000000001".parse()?;
        assert_eq!(
            parse_delivery_name(&delivery_name(&sub, &evt)),
            Some((sub.clone(), evt.clone()))
        );
        for bad in [
            "",
            ":",
            sub.as_str(),
            &format!("{evt}:{sub}"),
            &format!("{sub}:{evt}:x"),
            &format!("{sub}/{evt}"),
        ] {
            assert_eq!(parse_delivery_name(bad), None, "{bad}");
        }
        Ok(())
    }
}
