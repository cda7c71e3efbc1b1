//! The key layout: the one place that builds key-value keys.
//!
//! Every key is tenant-scoped and made of `/`-separated segments:
//!
//! | key | holds |
//! |---|---|
//! | `t/<tenant>/r/<kind>/<id>` | one record (JSON) |
//! | `t/<tenant>/i/<index>` | an index: the set of member ids of a tenant-wide list |
//! | `t/<tenant>/i/<index>/<owner>` | an index scoped to one owner (e.g. the APIs of an app) |
//! | `t/<tenant>/due/<kind>/<minute>` | an index of the items of `kind` due in that minute |
//! | `t/<tenant>/due-cursor/<kind>` | the first minute bucket not yet fully drained |
//! | `t/<tenant>/seed/<index>` | a counter electing the one writer that creates a tenant-wide index |
//! | `t/<tenant>/due-seed/<kind>/<minute>` | a counter electing the one writer that creates a due index |
//! | `t/<tenant>/n/<counter>` | a tenant-wide counter (read it with `increment(key, 0)`) |
//! | `sys/<kind>/<name>` | a system record shared by all tenants (the token signing key, cached JWKS of external issuers, verified tokens) |
//!
//! The registry's records and indexes, built with the constants below:
//!
//! | key | holds |
//! |---|---|
//! | `t/<tenant>/r/app/<app id>` | an application |
//! | `t/<tenant>/r/api/<api id>` | an event API definition, with its spec and event catalog |
//! | `t/<tenant>/r/whk/<webhook id>` | an application webhook and its last delivery outcome |
//! | `t/<tenant>/r/ntf/<notification id>` | a webhook notification waiting to be delivered |
//! | `t/<tenant>/r/app-name-claim/<name>` | a counter: `1` after the create that won the name |
//! | `t/<tenant>/r/app-by-name/<name>` | the id of the application holding the name |
//! | `t/<tenant>/i/apps` | the ids of all applications of the tenant |
//! | `t/<tenant>/i/app-apis/<app id>` | the ids of an application's event APIs |
//! | `t/<tenant>/i/app-webhooks/<app id>` | the ids of an application's webhooks |
//! | `t/<tenant>/i/webhook-outbox` | the ids of the notifications not yet delivered |
//! | `t/<tenant>/r/oauth-token/<hash>` | the cached access token of one OAuth client used for calls out |
//!
//! The event store's keys (crate `eventplane-eventstore`), built with the constants below;
//! `<hash>` is the SHA-256 (hex) of an event's `source` and publisher id, and an event's id is
//! `evt_` followed by the first 32 hex digits of that hash:
//!
//! | key | holds |
//! |---|---|
//! | `t/<tenant>/r/event-claim/<hash>` | a counter: `1` for the first store of that `source` + id |
//! | `t/<tenant>/r/evt/<event id>` | an accepted event (JSON) |
//! | `t/<tenant>/n/event-seq` | the counter handing out acceptance sequence numbers |
//! | `t/<tenant>/r/event-by-seq/<sequence>` | the event log: the id of the event accepted with that sequence |
//! | `t/<tenant>/r/event-pending/cursor` | the dispatcher's place in the event log (the first sequence not yet handed over) |
//!
//! Tenants, kinds and ids are validated types that cannot contain `/`; free-form text (an id
//! given as `&str`, an owner) is escaped (`%` → `%25`, `/` → `%2F`), so no input can add a
//! segment, reach another tenant, or make two different keys equal.
//!
//! Due work is found without scanning the store: an item due at time `t` is added to the index
//! of the minute bucket containing `t`; a worker walks the buckets from the cursor up to now.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{PrefixedId, TenantId};

/// A full key-value key. Only this module can build one.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(String);

impl Key {
    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The longest [`Kind`] name.
const KIND_MAX_LEN: usize = 32;

/// The name of a record kind, index or due queue: 1 to 32 of `[a-z0-9_-]`, starting with a
/// letter. Checked when the constant is built, so a bad name fails the build:
///
/// ```
/// use eventplane_core::keys::Kind;
/// const APPS_BY_NAME: Kind = Kind::new("apps-by-name");
/// assert_eq!(APPS_BY_NAME.as_str(), "apps-by-name");
/// ```
///
/// ```compile_fail
/// use eventplane_core::keys::Kind;
/// const BAD: Kind = Kind::new("a/b");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Kind(&'static str);

impl Kind {
    /// Checks `name`.
    ///
    /// # Panics
    /// If `name` is not a valid kind name; in a `const` this is a build error.
    pub const fn new(name: &'static str) -> Self {
        let bytes = name.as_bytes();
        assert!(
            !bytes.is_empty() && bytes.len() <= KIND_MAX_LEN,
            "a kind name has 1 to 32 characters"
        );
        assert!(
            bytes[0].is_ascii_lowercase(),
            "a kind name starts with a lowercase letter"
        );
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            assert!(
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-',
                "a kind name has only lowercase letters, digits, `_` and `-`"
            );
            i += 1;
        }
        Self(name)
    }

    /// The name.
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Index: the ids of all applications of a tenant (`t/<tenant>/i/apps`).
pub const APPLICATIONS: Kind = Kind::new("apps");

/// Owned index, per application id: the ids of its event API definitions.
pub const APPLICATION_EVENT_APIS: Kind = Kind::new("app-apis");

/// Owned index, per application id: the ids of its webhooks.
pub const APPLICATION_WEBHOOKS: Kind = Kind::new("app-webhooks");

/// Records, per application name: a counter whose first increment wins the name. Names are
/// claimed with `increment`, not compare-and-swap, because Spin's SQLite store turns a
/// compare-and-swap on an absent key into an unconditional write.
pub const APPLICATION_NAME_CLAIMS: Kind = Kind::new("app-name-claim");

/// Records, per application name: the id of the application holding the name.
pub const APPLICATIONS_BY_NAME: Kind = Kind::new("app-by-name");

/// Index: the ids of the webhook notifications not yet delivered (the outbox) of a tenant.
pub const WEBHOOK_OUTBOX: Kind = Kind::new("webhook-outbox");

/// Records, per OAuth client (a hash of token URL, client id and secret): the last access token
/// obtained for calls out (fetches, webhooks), reused until shortly before it expires.
pub const OAUTH_TOKENS: Kind = Kind::new("oauth-token");

/// System records (not of any tenant): the signing key of our access tokens.
pub const SIGNING_KEYS: Kind = Kind::new("signing-key");

/// System records, per JWKS URL (a hash of it): the cached key set of an external OpenID
/// Connect issuer, with when it was fetched.
pub const OIDC_JWKS: Kind = Kind::new("oidc-jwks");

/// System records, per access token (a SHA-256 of it): a token that verified, with its
/// publisher, key and expiry, so that its next uses need no signature check.
pub const VERIFIED_TOKENS: Kind = Kind::new("verified-token");

/// System records: a counter electing the one instance that generates a missing signing key.
pub const SIGNING_KEY_CLAIMS: Kind = Kind::new("signing-key-claim");

/// Records, per hash of an event's `source` and publisher id: a counter whose first increment
/// makes the caller the one that stores the event (see [`APPLICATION_NAME_CLAIMS`] for why a
/// counter).
pub const EVENT_CLAIMS: Kind = Kind::new("event-claim");

/// Counter ([`counter`]): the per-tenant acceptance sequence of events.
pub const EVENT_SEQUENCE: Kind = Kind::new("event-seq");

/// Records, per acceptance sequence number: the id of the event accepted with it (the event
/// log, read in order by the dispatcher and by replay).
pub const EVENTS_BY_SEQUENCE: Kind = Kind::new("event-by-seq");

/// Index: the CloudEvents `source`s a tenant's events came from (at most about a thousand),
/// so that an event can be found by its publisher's id alone.
pub const EVENT_SOURCES: Kind = Kind::new("event-sources");

/// Records, per hash of a `source`: `true` once it is in [`EVENT_SOURCES`], `false` if it came
/// when the index was full.
pub const EVENT_SOURCE_MARKERS: Kind = Kind::new("event-source");

/// Records: the flag set once a `source` was left out of a full [`EVENT_SOURCES`].
pub const UNTRACKED_EVENT_SOURCES: Kind = Kind::new("event-sources-untracked");

/// Records: the dispatcher's cursor in the event log ([`EVENTS_BY_SEQUENCE`]); the events from
/// it on are pending.
pub const PENDING_EVENTS: Kind = Kind::new("event-pending");

/// Width of a due-time bucket, in seconds.
pub const DUE_BUCKET_SECONDS: u64 = 60;

/// A one-minute slot of due time (minutes since the Unix epoch).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DueBucket(u64);

impl DueBucket {
    /// The bucket containing the instant `unix_seconds`.
    pub fn containing(unix_seconds: u64) -> Self {
        Self(unix_seconds / DUE_BUCKET_SECONDS)
    }

    /// The bucket with this number (minutes since the epoch).
    pub fn from_minute(minute: u64) -> Self {
        Self(minute)
    }

    /// The bucket's number (minutes since the epoch).
    pub fn minute(self) -> u64 {
        self.0
    }

    /// The first second of the bucket, as Unix time.
    pub fn start_unix_seconds(self) -> u64 {
        self.0.saturating_mul(DUE_BUCKET_SECONDS)
    }

    /// The following bucket.
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }

    /// The buckets from `self` to `last`, both included (empty if `last < self`).
    pub fn through(self, last: DueBucket) -> impl Iterator<Item = DueBucket> {
        (self.0..=last.0).map(DueBucket)
    }
}

/// Escapes free-form text into one key segment: `%` and `/` are percent-encoded, so the
/// result has no `/` and different inputs give different segments.
fn escape_segment(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['%', '/']) {
        return text.into();
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '%' => escaped.push_str("%25"),
            '/' => escaped.push_str("%2F"),
            c => escaped.push(c),
        }
    }
    escaped.into()
}

/// Joins the tenant scope and the given segments (already safe) into a key.
fn tenant_key(tenant: &TenantId, segments: &[&str]) -> Key {
    let mut key = format!("t/{tenant}");
    for segment in segments {
        key.push('/');
        key.push_str(segment);
    }
    Key(key)
}

/// A system record shared by all tenants (`sys/<kind>/<name>`, the name escaped): only for what
/// is truly global, such as the key that signs every tenant's access tokens.
pub fn system(kind: Kind, name: &str) -> Key {
    Key(format!("sys/{kind}/{}", escape_segment(name)))
}

/// The record of `kind` named `id` (free-form text, escaped): `t/<tenant>/r/<kind>/<id>`.
pub fn record(tenant: &TenantId, kind: Kind, id: &str) -> Key {
    tenant_key(tenant, &["r", kind.as_str(), &escape_segment(id)])
}

/// The record named by a typed id, under the id's own kind: `t/<tenant>/r/app/app_…`.
pub fn record_for<I: PrefixedId>(tenant: &TenantId, id: &I) -> Key {
    record(tenant, I::KIND, id.as_str())
}

/// A tenant-wide index: `t/<tenant>/i/<name>`.
pub fn index(tenant: &TenantId, name: Kind) -> Key {
    tenant_key(tenant, &["i", name.as_str()])
}

/// An index scoped to one owner (free-form text, escaped): `t/<tenant>/i/<name>/<owner>`.
pub fn owned_index(tenant: &TenantId, name: Kind, owner: &str) -> Key {
    tenant_key(tenant, &["i", name.as_str(), &escape_segment(owner)])
}

/// The counter that elects the one writer creating the tenant-wide index `name`:
/// `t/<tenant>/seed/<name>`. See [`APPLICATION_NAME_CLAIMS`] for why a counter.
pub fn index_seed(tenant: &TenantId, name: Kind) -> Key {
    tenant_key(tenant, &["seed", name.as_str()])
}

/// The index of items of `kind` due in `bucket`: `t/<tenant>/due/<kind>/<minute>`.
pub fn due(tenant: &TenantId, kind: Kind, bucket: DueBucket) -> Key {
    tenant_key(
        tenant,
        &["due", kind.as_str(), &bucket.minute().to_string()],
    )
}

/// Where the worker for due items of `kind` has got to: `t/<tenant>/due-cursor/<kind>`.
pub fn due_cursor(tenant: &TenantId, kind: Kind) -> Key {
    tenant_key(tenant, &["due-cursor", kind.as_str()])
}

/// The counter electing the one writer that creates the due index of `kind` for `bucket`:
/// `t/<tenant>/due-seed/<kind>/<minute>`. See [`APPLICATION_NAME_CLAIMS`] for why a counter.
pub fn due_seed(tenant: &TenantId, kind: Kind, bucket: DueBucket) -> Key {
    tenant_key(
        tenant,
        &["due-seed", kind.as_str(), &bucket.minute().to_string()],
    )
}

/// A tenant-wide counter: `t/<tenant>/n/<name>`. Read it with `increment(key, 0)`.
pub fn counter(tenant: &TenantId, name: Kind) -> Key {
    tenant_key(tenant, &["n", name.as_str()])
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::ids::{AppId, SubscriptionId};

    const APPS: Kind = Kind::new("app");
    const APIS_BY_APP: Kind = Kind::new("apis-by-app");
    const DELIVERY: Kind = Kind::new("delivery");

    fn tenant(name: &str) -> TenantId {
        TenantId::new(name).expect("valid tenant")
    }

    /// Nasty free-form inputs: separators, escapes, look-alikes of other keys.
    const HOSTILE: &[&str] = &[
        "",
        "x",
        "/",
        "//",
        "%",
        "%2F",
        "%252F",
        "a/b",
        "a%2Fb",
        "../t/other/r/app/x",
        "x/../../t/b",
        "t/b/r/app/x",
        "é/ü",
    ];

    fn all_keys_of(t: &TenantId) -> Vec<Key> {
        let mut keys = vec![
            index(t, APPS),
            index(t, APIS_BY_APP),
            due_cursor(t, DELIVERY),
            index_seed(t, APPS),
            index(t, APPLICATIONS),
            index(t, WEBHOOK_OUTBOX),
            record(t, APPLICATION_NAME_CLAIMS, "shop"),
            record(t, APPLICATIONS_BY_NAME, "shop"),
            due(t, DELIVERY, DueBucket::from_minute(0)),
            due(t, DELIVERY, DueBucket::from_minute(29_000_000)),
            record_for(t, &AppId::new()),
        ];
        for text in HOSTILE {
            keys.push(record(t, APPS, text));
            keys.push(record(t, DELIVERY, text));
            keys.push(owned_index(t, APIS_BY_APP, text));
        }
        keys
    }

    #[test]
    fn keys_have_the_documented_layout() {
        let t = tenant("acme");
        let app: AppId = "app_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f".parse().expect("id");
        assert_eq!(
            record_for(&t, &app).as_str(),
            "t/acme/r/app/app_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f"
        );
        assert_eq!(record(&t, APPS, "x").as_str(), "t/acme/r/app/x");
        assert_eq!(index(&t, APPS).as_str(), "t/acme/i/app");
        assert_eq!(index_seed(&t, APPS).as_str(), "t/acme/seed/app");
        assert_eq!(
            owned_index(&t, APPLICATION_EVENT_APIS, app.as_str()).as_str(),
            "t/acme/i/app-apis/app_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f"
        );
        assert_eq!(
            record(&t, APPLICATION_NAME_CLAIMS, "shop").as_str(),
            "t/acme/r/app-name-claim/shop"
        );
        assert_eq!(
            owned_index(&t, APIS_BY_APP, app.as_str()).as_str(),
            "t/acme/i/apis-by-app/app_0190b7c8e3a47c3e9d2f5a1b2c3d4e5f"
        );
        assert_eq!(
            due(&t, DELIVERY, DueBucket::containing(1_700_000_000)).as_str(),
            "t/acme/due/delivery/28333333"
        );
        assert_eq!(
            due_cursor(&t, DELIVERY).as_str(),
            "t/acme/due-cursor/delivery"
        );
    }

    #[test]
    fn keys_of_two_tenants_never_collide() {
        for (a, b) in [
            ("a", "b"),
            ("a", "a-b"),
            ("t", "r"),
            ("default", "default-2"),
        ] {
            let (a, b) = (tenant(a), tenant(b));
            let keys_a: HashSet<Key> = all_keys_of(&a).into_iter().collect();
            for key in all_keys_of(&b) {
                assert!(!keys_a.contains(&key), "{key} is in both tenants");
                assert_eq!(key.as_str().split('/').nth(1), Some(b.as_str()));
            }
        }
    }

    #[test]
    fn free_form_segments_cannot_inject_a_slash() {
        let t = tenant("acme");
        for text in HOSTILE {
            let key = record(&t, APPS, text);
            let segments: Vec<&str> = key.as_str().split('/').collect();
            assert_eq!(segments.len(), 5, "{key}");
            assert_eq!(&segments[..4], ["t", "acme", "r", "app"], "{key}");
            let key = owned_index(&t, APIS_BY_APP, text);
            assert_eq!(key.as_str().split('/').count(), 5, "{key}");
        }
    }

    #[test]
    fn different_inputs_give_different_keys() {
        let t = tenant("acme");
        let keys: HashSet<Key> = HOSTILE.iter().map(|text| record(&t, APPS, text)).collect();
        assert_eq!(keys.len(), HOSTILE.len());
        let keys: Vec<Key> = all_keys_of(&t);
        let unique: HashSet<&Key> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len());
    }

    #[test]
    fn typed_ids_share_their_kind_with_untyped_records() {
        let t = tenant("acme");
        let sub = SubscriptionId::new();
        assert_eq!(
            record_for(&t, &sub),
            record(&t, SubscriptionId::KIND, sub.as_str())
        );
    }

    #[test]
    fn due_buckets_are_minutes() {
        let bucket = DueBucket::containing(119);
        assert_eq!(bucket.minute(), 1);
        assert_eq!(bucket.start_unix_seconds(), 60);
        assert_eq!(bucket.next(), DueBucket::containing(120));
        let walked: Vec<u64> = bucket
            .through(DueBucket::from_minute(3))
            .map(DueBucket::minute)
            .collect();
        assert_eq!(walked, [1, 2, 3]);
        assert_eq!(bucket.through(DueBucket::from_minute(0)).count(), 0);
    }

    #[test]
    fn event_store_keys_have_the_documented_layout() {
        let t = tenant("acme");
        assert_eq!(
            record(&t, PENDING_EVENTS, "cursor").as_str(),
            "t/acme/r/event-pending/cursor"
        );
        assert_eq!(counter(&t, EVENT_SEQUENCE).as_str(), "t/acme/n/event-seq");
        assert_eq!(
            record(&t, EVENTS_BY_SEQUENCE, "7").as_str(),
            "t/acme/r/event-by-seq/7"
        );
        assert_eq!(
            record(&t, EVENT_CLAIMS, "ab").as_str(),
            "t/acme/r/event-claim/ab"
        );
    }
}
