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
//! Every change is a compare-and-swap on an existing record, so concurrent ticks lose no count.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use eventplane_core::keys::{self, Kind};
use eventplane_core::{ApiId, Error, Key, KvStore, KvStoreExt, TenantId};
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

/// How many rejected messages are kept per subscription; older ones are dropped.
pub const MAX_REJECTED_KEPT: usize = 1000;
/// How much of a rejected message's data is kept.
pub const MAX_REJECTED_DATA_BYTES: usize = 64 * 1024;
/// The most rejected messages one page lists.
pub const MAX_REJECTED_PAGE: usize = 200;

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

/// A message that could not become an event, kept as it came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedMessage {
    /// Pub/Sub's id of the message.
    pub message_id: String,
    /// The rejection's code (`INVALID_CLOUDEVENT`, `EVENT_TYPE_NOT_REGISTERED`, …).
    pub code: String,
    /// Why it was rejected.
    pub reason: String,
    /// Its attributes.
    pub attributes: BTreeMap<String, String>,
    /// Its data: the text when it is UTF-8, else base64 (see `data_encoding`).
    pub data: String,
    /// `text` or `base64`.
    pub data_encoding: String,
    /// Whether `data` was cut at [`MAX_REJECTED_DATA_BYTES`].
    #[serde(default)]
    pub truncated: bool,
    /// When Pub/Sub received it.
    #[serde(default)]
    pub publish_time: String,
    /// When it was rejected (Unix ms).
    pub at: u64,
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

fn rejected_key(tenant: &TenantId, api: &ApiId, sub_key: &str, message_id: &str) -> Key {
    keys::record(
        tenant,
        BUS_REJECTED,
        &format!("{}:{message_id}", subscription_name(api, sub_key)),
    )
}

fn rejected_list(tenant: &TenantId, api: &ApiId, sub_key: &str) -> Key {
    keys::owned_index(tenant, BUS_REJECTED_LIST, &subscription_name(api, sub_key))
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

/// Makes sure the JSON record `key` exists before it is changed by compare-and-swap: on Spin's
/// SQLite store a swap "only if absent" is an unconditional write, so two first writers could
/// lose one's change. The writer whose `increment` of `seed` returns 1 creates it with
/// `initial`; the others wait for it (about 200 ms at most, then go ahead).
fn ensure_exists(
    store: &dyn KvStore,
    key: &Key,
    seed: &Key,
    initial: &impl Serialize,
) -> Result<(), Error> {
    if store.exists(key)? {
        return Ok(());
    }
    if store.increment(seed, 1)? == 1 {
        return store.set_json(key, initial);
    }
    for _ in 0..200 {
        if store.exists(key)? {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(())
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
    let key = rejected_key(tenant, api, sub_key, &message.message_id);
    if store.exists(&key)? {
        return Ok(false);
    }
    let raw = message
        .decoded_data()
        .unwrap_or_else(|_| message.data.clone().into_bytes());
    let truncated = raw.len() > MAX_REJECTED_DATA_BYTES;
    let kept = &raw[..raw.len().min(MAX_REJECTED_DATA_BYTES)];
    let (data, data_encoding) = match std::str::from_utf8(kept) {
        Ok(text) => (text.to_owned(), "text"),
        Err(_) => (STANDARD.encode(kept), "base64"),
    };
    let record = RejectedMessage {
        message_id: message.message_id.clone(),
        code: rejection.code.clone(),
        reason: rejection.reason.clone(),
        attributes: message.attributes.clone(),
        data,
        data_encoding: data_encoding.to_owned(),
        truncated,
        publish_time: message.publish_time.clone(),
        at: now_ms,
    };
    store.set_json(&key, &record)?;
    let member = format!("{now_ms:013}:{}", message.message_id);
    let mut evicted = Vec::new();
    let list = rejected_list(tenant, api, sub_key);
    ensure_exists(store, &list, &seed_of(&list), &BTreeSet::<String>::new())?;
    store.update_json(&list, |members: Option<BTreeSet<String>>| {
        let mut members = members.unwrap_or_default();
        members.insert(member.clone());
        evicted.clear();
        while members.len() > MAX_REJECTED_KEPT {
            if let Some(oldest) = members.pop_first() {
                evicted.push(oldest);
            }
        }
        Ok(members)
    })?;
    for member in evicted {
        if let Some((_, message_id)) = member.split_once(':') {
            store.delete(&rejected_key(tenant, api, sub_key, message_id))?;
        }
    }
    Ok(true)
}

/// One page of rejected messages, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedPage {
    /// The messages.
    pub data: Vec<RejectedMessage>,
    /// The cursor of the next page; `None` on the last.
    pub next_cursor: Option<String>,
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
    let page = store.index_page(
        &rejected_list(tenant, api, sub_key),
        after,
        first.clamp(1, MAX_REJECTED_PAGE),
    )?;
    let mut data = Vec::with_capacity(page.members.len());
    for member in &page.members {
        let Some((_, message_id)) = member.split_once(':') else {
            continue;
        };
        // evicted meanwhile: simply gone
        if let Some(record) = store.get_json(&rejected_key(tenant, api, sub_key, message_id))? {
            data.push(record);
        }
    }
    Ok(RejectedPage {
        data,
        next_cursor: page.next,
    })
}

/// Removes everything recorded of the subscription `sub_key` of `api` (when it is removed
/// from its API, or the API is deleted).
pub fn forget(
    store: &dyn KvStore,
    tenant: &TenantId,
    api: &ApiId,
    sub_key: &str,
) -> Result<(), Error> {
    let list = rejected_list(tenant, api, sub_key);
    let members: BTreeSet<String> = store.get_json(&list)?.unwrap_or_default();
    for member in &members {
        if let Some((_, message_id)) = member.split_once(':') {
            store.delete(&rejected_key(tenant, api, sub_key, message_id))?;
        }
    }
    let state = state_key(tenant, api, sub_key);
    for key in [&list, &state] {
        store.delete(key)?;
        store.delete(&seed_of(key))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

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
