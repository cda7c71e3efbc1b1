//! Logs of messages that could not become events, kept as they came so that a person can see
//! what was sent and why it was refused. One log per source of messages: an external bus
//! subscription (crate `eventplane-bus`), or an application publishing over MQTT
//! ([`crate::mqtt`]). Each log is named by its owner and lives under three kinds of key:
//!
//! | key | holds |
//! |---|---|
//! | `t/<tenant>/r/<records>/<name>:<message id>` | a [`RejectedMessage`] |
//! | `t/<tenant>/i/<list>/<name>` | the log's messages, `<at ms, 13 digits>:<message id>`, oldest first |
//! | `sys/<seeds>/<list key>` | the election of the writer creating the list |
//!
//! A message is recorded once per id (a message delivered again is not recorded twice); the
//! newest [`MAX_REJECTED_KEPT`] are kept, each with at most [`MAX_REJECTED_DATA_BYTES`] of its
//! data (as text when it is UTF-8, else base64). The list changes only by compare-and-swap, so
//! concurrent writers lose no entry.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use eventplane_core::keys::{self, Kind};
use eventplane_core::{Error, Key, KvStore, KvStoreExt, TenantId};
use serde::{Deserialize, Serialize};

use crate::Rejection;

/// How many rejected messages one log keeps; older ones are dropped.
pub const MAX_REJECTED_KEPT: usize = 1000;
/// How much of a rejected message's data is kept.
pub const MAX_REJECTED_DATA_BYTES: usize = 64 * 1024;
/// The most rejected messages one page lists.
pub const MAX_REJECTED_PAGE: usize = 200;

/// A message that could not become an event, kept as it came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedMessage {
    /// The message's id: the bus's, or one derived from the message itself.
    pub message_id: String,
    /// The rejection's code (`INVALID_CLOUDEVENT`, `EVENT_TYPE_NOT_REGISTERED`, …).
    pub code: String,
    /// Why it was rejected.
    pub reason: String,
    /// Its attributes (a bus message's attributes, an MQTT message's topic).
    pub attributes: BTreeMap<String, String>,
    /// Its data: the text when it is UTF-8, else base64 (see `data_encoding`).
    pub data: String,
    /// `text` or `base64`.
    pub data_encoding: String,
    /// Whether `data` was cut at [`MAX_REJECTED_DATA_BYTES`].
    #[serde(default)]
    pub truncated: bool,
    /// When the bus received it, as the bus said (empty when the transport does not say).
    #[serde(default)]
    pub publish_time: String,
    /// When it was rejected (Unix ms).
    pub at: u64,
}

impl RejectedMessage {
    /// The record of the message `message_id` with `attributes` and the data `raw`, refused
    /// for `rejection` at `at` (Unix ms): the first [`MAX_REJECTED_DATA_BYTES`] of the data, as
    /// text when they are UTF-8, else base64.
    pub fn new(
        message_id: impl Into<String>,
        rejection: &Rejection,
        attributes: BTreeMap<String, String>,
        raw: &[u8],
        publish_time: impl Into<String>,
        at: u64,
    ) -> Self {
        let truncated = raw.len() > MAX_REJECTED_DATA_BYTES;
        let kept = &raw[..raw.len().min(MAX_REJECTED_DATA_BYTES)];
        let (data, data_encoding) = match std::str::from_utf8(kept) {
            Ok(text) => (text.to_owned(), "text"),
            Err(_) => (STANDARD.encode(kept), "base64"),
        };
        Self {
            message_id: message_id.into(),
            code: rejection.code.clone(),
            reason: rejection.reason.clone(),
            attributes,
            data,
            data_encoding: data_encoding.to_owned(),
            truncated,
            publish_time: publish_time.into(),
            at,
        }
    }
}

/// One page of rejected messages, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedPage {
    /// The messages.
    pub data: Vec<RejectedMessage>,
    /// The cursor of the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// One log of rejected messages: where its records, its list and the list's seed live, and
/// its name (the owner: an external subscription, an application).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedLog {
    records: Kind,
    list: Kind,
    seeds: Kind,
    name: String,
}

impl RejectedLog {
    /// The log `name` with its records of kind `records`, its list in the owned index `list`,
    /// and the list's seed under the system kind `seeds`.
    pub fn new(records: Kind, list: Kind, seeds: Kind, name: impl Into<String>) -> Self {
        Self {
            records,
            list,
            seeds,
            name: name.into(),
        }
    }

    /// The log's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn record_key(&self, tenant: &TenantId, message_id: &str) -> Key {
        keys::record(tenant, self.records, &format!("{}:{message_id}", self.name))
    }

    fn list_key(&self, tenant: &TenantId) -> Key {
        keys::owned_index(tenant, self.list, &self.name)
    }

    fn seed_key(&self, tenant: &TenantId) -> Key {
        keys::system(self.seeds, self.list_key(tenant).as_str())
    }

    /// Records `message` in `tenant`, once per message id: `Ok(false)` if it was recorded
    /// before (delivered again). Keeps the newest [`MAX_REJECTED_KEPT`].
    pub fn record(
        &self,
        store: &dyn KvStore,
        tenant: &TenantId,
        message: &RejectedMessage,
    ) -> Result<bool, Error> {
        let key = self.record_key(tenant, &message.message_id);
        if store.exists(&key)? {
            return Ok(false);
        }
        store.set_json(&key, message)?;
        let member = format!("{:013}:{}", message.at, message.message_id);
        let mut evicted = Vec::new();
        let list = self.list_key(tenant);
        ensure_exists(
            store,
            &list,
            &self.seed_key(tenant),
            &BTreeSet::<String>::new(),
        )?;
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
                store.delete(&self.record_key(tenant, message_id))?;
            }
        }
        Ok(true)
    }

    /// Up to `first` (1 to [`MAX_REJECTED_PAGE`]) rejected messages of `tenant` after the
    /// cursor `after`.
    pub fn page(
        &self,
        store: &dyn KvStore,
        tenant: &TenantId,
        first: usize,
        after: Option<&str>,
    ) -> Result<RejectedPage, Error> {
        let page = store.index_page(
            &self.list_key(tenant),
            after,
            first.clamp(1, MAX_REJECTED_PAGE),
        )?;
        let mut data = Vec::with_capacity(page.members.len());
        for member in &page.members {
            let Some((_, message_id)) = member.split_once(':') else {
                continue;
            };
            // evicted meanwhile: simply gone
            if let Some(record) = store.get_json(&self.record_key(tenant, message_id))? {
                data.push(record);
            }
        }
        Ok(RejectedPage {
            data,
            next_cursor: page.next,
        })
    }

    /// Removes the log of `tenant`: every record, the list and its seed.
    pub fn forget(&self, store: &dyn KvStore, tenant: &TenantId) -> Result<(), Error> {
        let list = self.list_key(tenant);
        let members: BTreeSet<String> = store.get_json(&list)?.unwrap_or_default();
        for member in &members {
            if let Some((_, message_id)) = member.split_once(':') {
                store.delete(&self.record_key(tenant, message_id))?;
            }
        }
        store.delete(&list)?;
        store.delete(&self.seed_key(tenant))?;
        Ok(())
    }
}

/// Makes sure the JSON record `key` exists before it is changed by compare-and-swap: on Spin's
/// SQLite store a swap "only if absent" is an unconditional write, so two first writers could
/// lose one's change. The writer whose `increment` of `seed` returns 1 creates it with
/// `initial`; the others wait for it (about 200 ms at most, then go ahead).
pub fn ensure_exists(
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

#[cfg(test)]
mod tests {
    use eventplane_core::MemoryStore;

    use super::*;

    const RECORDS: Kind = Kind::new("test-rejected");
    const SEEDS: Kind = Kind::new("test-seed");

    fn log(name: &str) -> RejectedLog {
        RejectedLog::new(RECORDS, RECORDS, SEEDS, name)
    }

    fn message(id: &str, data: &[u8], at: u64) -> RejectedMessage {
        RejectedMessage::new(
            id,
            &Rejection::invalid("no ce-type"),
            BTreeMap::from([("topic".to_owned(), "a/b".to_owned())]),
            data,
            "",
            at,
        )
    }

    #[test]
    fn messages_are_kept_once_with_their_data() -> Result<(), Error> {
        let store = MemoryStore::new();
        let tenant: TenantId = "acme".parse()?;
        let shop = log("shop");
        assert!(shop.record(&store, &tenant, &message("m1", b"{\"a\":1}", 5))?);
        assert!(
            !shop.record(&store, &tenant, &message("m1", b"{\"a\":1}", 6))?,
            "recorded once"
        );
        assert!(shop.record(&store, &tenant, &message("m2", &[0xff, 0], 7))?);
        let page = shop.page(&store, &tenant, 1, None)?;
        assert_eq!(page.data.len(), 1);
        assert_eq!(
            (
                page.data[0].data.as_str(),
                page.data[0].data_encoding.as_str()
            ),
            ("{\"a\":1}", "text")
        );
        assert_eq!(page.data[0].code, "INVALID_CLOUDEVENT");
        let rest = shop.page(&store, &tenant, 10, page.next_cursor.as_deref())?;
        assert_eq!(rest.data[0].message_id, "m2");
        assert_eq!(rest.data[0].data_encoding, "base64");
        assert_eq!(rest.next_cursor, None);
        assert!(
            log("erp").page(&store, &tenant, 10, None)?.data.is_empty(),
            "logs are apart"
        );
        shop.forget(&store, &tenant)?;
        assert!(shop.page(&store, &tenant, 10, None)?.data.is_empty());
        assert!(store.is_empty(), "nothing left: {:?}", store.keys());
        Ok(())
    }

    #[test]
    fn only_the_newest_are_kept_and_data_is_bounded() -> Result<(), Error> {
        let store = MemoryStore::new();
        let tenant: TenantId = "acme".parse()?;
        let shop = log("shop");
        for i in 0..(MAX_REJECTED_KEPT + 3) {
            shop.record(&store, &tenant, &message(&format!("m{i}"), b"x", i as u64))?;
        }
        let first = shop.page(&store, &tenant, 1, None)?;
        assert_eq!(first.data[0].message_id, "m3", "the three oldest are gone");
        let large = message("big", &vec![b'a'; MAX_REJECTED_DATA_BYTES + 1], 1);
        assert!(large.truncated);
        assert_eq!(large.data.len(), MAX_REJECTED_DATA_BYTES);
        Ok(())
    }
}
