//! What eventplane knows of each external subscription, kept in the store:
//!
//! | key | holds |
//! |---|---|
//! | `t/<tenant>/i/bus-apis` | the ids of the event APIs that have external subscriptions (written by the registry) |
//! | `t/<tenant>/seed/bus-apis` | the election of the writer creating that index |
//! | `t/<tenant>/r/bus-state/<api id>:<sub key>` | a [`BusState`] |
//! | `t/<tenant>/r/bus-rejected/<api id>:<sub key>:<message id>` | a [`RejectedMessage`] |
//! | `t/<tenant>/i/bus-rejected/<api id>:<sub key>` | its rejected messages, `<at ms, 13 digits>:<message id>`, oldest first |
//!
//! | `sys/bus-seed/<key>` | the election of the writer creating one of those records |
//!
//! `<sub key>` is [`subscription_key`](crate::config::subscription_key) of the subscription's URL.
//! The rejected messages are a [`RejectedLog`] of `eventplane-ingest` (the log MQTT uses too).
//! Every change is a compare-and-swap on an existing record, so concurrent ticks lose no count.

use eventplane_core::keys::{self, Kind};
use eventplane_core::{ApiId, Error, Key, KvStore, KvStoreExt, TenantId};
use eventplane_ingest::rejected::ensure_exists;
pub use eventplane_ingest::rejected::{
    MAX_REJECTED_DATA_BYTES, MAX_REJECTED_KEPT, MAX_REJECTED_PAGE, RejectedLog, RejectedMessage,
    RejectedPage,
};
use serde::{Deserialize, Serialize};

use crate::ingest::Rejection;
use crate::wire::PubsubMessage;

/// Index: the event APIs of a tenant with external subscriptions.
pub const BUS_APIS: Kind = Kind::new("bus-apis");
/// Records: the state of one external subscription.
pub const BUS_STATES: Kind = Kind::new("bus-state");
/// Records: one rejected message.
pub const BUS_REJECTED: Kind = Kind::new("bus-rejected");
/// Owned index: the rejected messages of one external subscription.
pub const BUS_REJECTED_LIST: Kind = Kind::new("bus-rejected");

/// System counters electing the first writer of a state record or rejected list.
pub const BUS_SEEDS: Kind = Kind::new("bus-seed");

/// The state of one external subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BusState {
    /// When it was last pulled (Unix ms), successfully or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pull_at: Option<u64>,
    /// When the subscription resource was last checked (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_at: Option<u64>,
    /// Messages stored as events and acknowledged (a message delivered again by the bus and
    /// found already stored counts again).
    #[serde(default)]
    pub messages_taken: u64,
    /// Messages recorded as rejected and acknowledged.
    #[serde(default)]
    pub messages_rejected: u64,
    /// What went wrong on the last check or pull; `None` once one succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When `last_error` happened (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<u64>,
}

/// The name of one external subscription of one API: `<api id>:<sub key>`.
pub fn subscription_name(api: &ApiId, sub_key: &str) -> String {
    format!("{api}:{sub_key}")
}

/// The index of event APIs with external subscriptions.
pub fn bus_apis(tenant: &TenantId) -> Key {
    keys::index(tenant, BUS_APIS)
}

fn state_key(tenant: &TenantId, api: &ApiId, sub_key: &str) -> Key {
    keys::record(tenant, BUS_STATES, &subscription_name(api, sub_key))
}

/// The rejected messages of the subscription `sub_key` of `api`: records
/// `t/<tenant>/r/bus-rejected/<api id>:<sub key>:<message id>`, listed in
/// `t/<tenant>/i/bus-rejected/<api id>:<sub key>`.
pub fn rejected_log(api: &ApiId, sub_key: &str) -> RejectedLog {
    RejectedLog::new(
        BUS_REJECTED,
        BUS_REJECTED_LIST,
        BUS_SEEDS,
        subscription_name(api, sub_key),
    )
}

/// The state of the subscription `sub_key` of `api` (the default when none was recorded).
pub fn load(
    store: &dyn KvStore,
    tenant: &TenantId,
    api: &ApiId,
    sub_key: &str,
) -> Result<BusState, Error> {
    Ok(store
        .get_json(&state_key(tenant, api, sub_key))?
        .unwrap_or_default())
}

fn seed_of(key: &Key) -> Key {
    keys::system(BUS_SEEDS, key.as_str())
}

/// Changes the state by compare-and-swap.
pub fn update(
    store: &dyn KvStore,
    tenant: &TenantId,
    api: &ApiId,
    sub_key: &str,
    change: impl Fn(&mut BusState),
) -> Result<BusState, Error> {
    let key = state_key(tenant, api, sub_key);
    ensure_exists(store, &key, &seed_of(&key), &BusState::default())?;
    store.update_json(&key, |current: Option<BusState>| {
        let mut state = current.unwrap_or_default();
        change(&mut state);
        Ok(state)
    })
}

/// Records `error` (at `now_ms`) as the subscription's last error.
pub fn record_error(
    store: &dyn KvStore,
    tenant: &TenantId,
    api: &ApiId,
    sub_key: &str,
    error: &str,
    now_ms: u64,
) -> Result<(), Error> {
    update(store, tenant, api, sub_key, |state| {
        state.last_error = Some(error.to_owned());
        state.last_error_at = Some(now_ms);
    })
    .map(|_| ())
}

/// Records a rejected message, once per message id; `Ok(false)` if it was recorded before
/// (the bus delivered it again). Keeps the newest [`MAX_REJECTED_KEPT`].
pub fn record_rejected(
    store: &dyn KvStore,
    tenant: &TenantId,
    api: &ApiId,
    sub_key: &str,
    message: &PubsubMessage,
    rejection: &Rejection,
    now_ms: u64,
) -> Result<bool, Error> {
    let raw = message
        .decoded_data()
        .unwrap_or_else(|_| message.data.clone().into_bytes());
    let record = RejectedMessage::new(
        message.message_id.clone(),
        rejection,
        message.attributes.clone(),
        &raw,
        message.publish_time.clone(),
        now_ms,
    );
    rejected_log(api, sub_key).record(store, tenant, &record)
}

/// Up to `first` (1 to [`MAX_REJECTED_PAGE`]) rejected messages after the cursor `after`.
pub fn rejected_page(
    store: &dyn KvStore,
    tenant: &TenantId,
    api: &ApiId,
    sub_key: &str,
    first: usize,
    after: Option<&str>,
) -> Result<RejectedPage, Error> {
    rejected_log(api, sub_key).page(store, tenant, first, after)
}

/// Removes everything recorded of the subscription `sub_key` of `api` (when it is removed
/// from its API, or the API is deleted).
pub fn forget(
    store: &dyn KvStore,
    tenant: &TenantId,
    api: &ApiId,
    sub_key: &str,
) -> Result<(), Error> {
    rejected_log(api, sub_key).forget(store, tenant)?;
    let state = state_key(tenant, api, sub_key);
    store.delete(&state)?;
    store.delete(&seed_of(&state))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use eventplane_core::MemoryStore;

    use super::*;

    fn rejection() -> Rejection {
        Rejection {
            code: "INVALID_CLOUDEVENT".into(),
            reason: "no ce-type".into(),
            status: 400,
        }
    }

    fn message(id: &str, data: &[u8]) -> PubsubMessage {
        PubsubMessage {
            data: STANDARD.encode(data),
            message_id: id.into(),
            ..PubsubMessage::default()
        }
    }

    #[test]
    fn rejected_messages_are_kept_once_with_their_data() -> Result<(), Error> {
        let store = MemoryStore::new();
        let tenant: TenantId = "acme".parse()?;
        let api = ApiId::new();
        let reject = |id: &str, data: &[u8], at: u64| {
            record_rejected(
                &store,
                &tenant,
                &api,
                "k",
                &message(id, data),
                &rejection(),
                at,
            )
        };
        assert!(reject("m1", b"{\"a\":1}", 5)?);
        assert!(!reject("m1", b"{\"a\":1}", 6)?, "recorded once");
        assert!(reject("m2", &[0xff, 0], 7)?);
        let page = rejected_page(&store, &tenant, &api, "k", 1, None)?;
        assert_eq!(page.data.len(), 1);
        assert_eq!(page.data[0].data, "{\"a\":1}");
        assert_eq!(page.data[0].data_encoding, "text");
        let rest = rejected_page(&store, &tenant, &api, "k", 10, page.next_cursor.as_deref())?;
        assert_eq!(rest.data[0].message_id, "m2");
        assert_eq!(rest.data[0].data_encoding, "base64");
        assert_eq!(rest.next_cursor, None);
        forget(&store, &tenant, &api, "k")?;
        assert!(
            rejected_page(&store, &tenant, &api, "k", 10, None)?
                .data
                .is_empty()
        );
        Ok(())
    }

    #[test]
    fn only_the_newest_rejected_messages_are_kept() -> Result<(), Error> {
        let store = MemoryStore::new();
        let tenant: TenantId = "acme".parse()?;
        let api = ApiId::new();
        for i in 0..(MAX_REJECTED_KEPT + 3) {
            record_rejected(
                &store,
                &tenant,
                &api,
                "k",
                &message(&format!("m{i}"), b"x"),
                &rejection(),
                i as u64,
            )?;
        }
        let first = rejected_page(&store, &tenant, &api, "k", 1, None)?;
        assert_eq!(first.data[0].message_id, "m3", "the three oldest are gone");
        Ok(())
    }

    #[test]
    fn concurrent_counts_lose_nothing() -> Result<(), Error> {
        let store = Arc::new(MemoryStore::new());
        let tenant: TenantId = "acme".parse()?;
        let api = ApiId::new();
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let (store, tenant, api) = (store.clone(), tenant.clone(), api.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        update(&*store, &tenant, &api, "k", |s| s.messages_taken += 1)
                            .expect("update");
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("worker");
        }
        assert_eq!(load(&*store, &tenant, &api, "k")?.messages_taken, 400);
        Ok(())
    }
}
