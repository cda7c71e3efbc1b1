//! Indexes and records that are never created by accident, and a safe first creation of
//! tenant-wide indexes: what the registry and the dispatcher need beyond [`KvStoreExt`].
//!
//! Why not plain [`KvStoreExt::index_add`]: on an absent key it compare-and-swaps against
//! "absent", which Spin's SQLite store (3.x/4.x) performs as an unconditional write. Two
//! writers creating the same index at once could then lose a member, and an add racing a
//! cascade delete could bring a deleted owner's index back. So:
//!
//! - an index owned by one object is created with that object ([`create_index`]: nobody else
//!   knows its id yet) and later only changed while it exists ([`add_to_existing`],
//!   [`remove_from_existing`]): an index's existence is its owner's liveness;
//! - a tenant-wide index is created once, by the one writer whose `increment` of its seed key
//!   ([`keys::index_seed`]) returns 1 ([`add_to_tenant_index`]); everyone else waits for it to
//!   appear, then changes it by compare-and-swap against its present value;
//! - a record that may be deleted meanwhile is changed with [`update_existing`], which never
//!   recreates it.
//!
//! ```
//! use eventplane_core::index::{add_to_existing, add_to_tenant_index, all_members};
//! use eventplane_core::keys::{self, Kind};
//! use eventplane_core::{Error, KvStore, MemoryStore, TenantId};
//!
//! const THINGS: Kind = Kind::new("things");
//!
//! let store = MemoryStore::spin_sqlite_like();
//! let tenant: TenantId = "acme".parse()?;
//! add_to_tenant_index(&store, &tenant, THINGS, "a")?;
//! add_to_tenant_index(&store, &tenant, THINGS, "b")?;
//! assert_eq!(all_members(&store, &keys::index(&tenant, THINGS))?, ["a", "b"]);
//!
//! let owned = keys::owned_index(&tenant, THINGS, "gone");
//! assert!(!add_to_existing(&store, &owned, "c")?);
//! assert!(!store.exists(&owned)?);
//! # Ok::<(), Error>(())
//! ```

use std::collections::BTreeSet;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::ids::TenantId;
use crate::keys::{self, Key, Kind};
use crate::store::{KvStore, KvStoreExt, MAX_INDEX_PAGE};

/// How many times (about a millisecond apart) a writer that lost the election for a tenant
/// index checks for it before creating it itself.
const SEED_WAIT_ROUNDS: u32 = 200;

/// Members of an index, as [`KvStoreExt`]'s index operations store them.
type Members = BTreeSet<String>;

/// Creates the index `index` with `members`, unconditionally. Only for an index no one else
/// can know yet (it belongs to an object being created).
pub fn create_index<S: KvStore + ?Sized>(
    store: &S,
    index: &Key,
    members: impl IntoIterator<Item = String>,
) -> Result<(), Error> {
    store.set_json(index, &members.into_iter().collect::<Members>())
}

/// Adds `member` to `index` by compare-and-swap if the index exists; `Ok(false)` (and nothing
/// written) if it does not (its owner is gone). Adding a present member changes nothing.
pub fn add_to_existing<S: KvStore + ?Sized>(
    store: &S,
    index: &Key,
    member: &str,
) -> Result<bool, Error> {
    let updated = update_existing(store, index, |mut members: Members| {
        members.insert(member.to_owned());
        Ok(members)
    })?;
    Ok(updated.is_some())
}

/// Removes `member` from `index` by compare-and-swap if the index exists; never creates it.
pub fn remove_from_existing<S: KvStore + ?Sized>(
    store: &S,
    index: &Key,
    member: &str,
) -> Result<(), Error> {
    update_existing(store, index, |mut members: Members| {
        members.remove(member);
        Ok(members)
    })?;
    Ok(())
}

/// The members (ascending) of the index `index` from its stored `value`: for code that reads
/// an index's value itself (in a batch, or fetched ahead) rather than by
/// [`KvStoreExt::index_page`], which decodes it the same way.
pub fn decode_members(index: &Key, value: &[u8]) -> Result<BTreeSet<String>, Error> {
    crate::store::decode_json::<Members>(index, value)
}

/// All members of `index`, in ascending order (empty if it does not exist), read page by page
/// ([`MAX_INDEX_PAGE`] at a time).
pub fn all_members<S: KvStore + ?Sized>(store: &S, index: &Key) -> Result<Vec<String>, Error> {
    let mut members = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.index_page(index, after.as_deref(), MAX_INDEX_PAGE)?;
        members.extend(page.members);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(members),
        }
    }
}

/// Adds `member` to the tenant-wide index `name` ([`keys::index`]), creating the index the
/// first time in a way that is safe under concurrency on every Spin backend: the writer whose
/// `increment` of [`keys::index_seed`] returns 1 creates it (empty); the others wait for it to
/// appear. Every writer then adds its member by compare-and-swap against the present index.
///
/// If the elected writer died between its increment and its write, the others create the
/// index themselves after waiting (about 200 ms): the lesser evil, which can only lose a
/// member if that writer wakes up and writes after all.
pub fn add_to_tenant_index<S: KvStore + ?Sized>(
    store: &S,
    tenant: &TenantId,
    name: Kind,
    member: &str,
) -> Result<(), Error> {
    let index = keys::index(tenant, name);
    if add_to_existing(store, &index, member)? {
        return Ok(());
    }
    ensure_tenant_index(store, tenant, name)?;
    if add_to_existing(store, &index, member)? {
        return Ok(());
    }
    Err(Error::internal(format!(
        "the index {index} vanished after its creation"
    )))
}

/// Makes sure the tenant-wide index `name` exists: the writer whose `increment` of the seed
/// returns 1 creates it; the others wait for it.
fn ensure_tenant_index<S: KvStore + ?Sized>(
    store: &S,
    tenant: &TenantId,
    name: Kind,
) -> Result<(), Error> {
    let index = keys::index(tenant, name);
    if store.increment(&keys::index_seed(tenant, name), 1)? == 1 {
        return create_index(store, &index, []);
    }
    for _ in 0..SEED_WAIT_ROUNDS {
        if store.exists(&index)? {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // The elected writer died between its increment and its write. Creating the index now is
    // the lesser evil: it can only lose a member if that writer wakes up and writes after all.
    store.update_json(&index, |members: Option<Members>| {
        Ok(members.unwrap_or_default())
    })?;
    Ok(())
}

/// Read-modify-write of the JSON record at `key` by compare-and-swap
/// ([`KvStoreExt::update_json`]), only while it exists: `f` gets the current value and returns
/// the new one (or an error, returned as is, to abort without writing). `Ok(Some(value
/// written))`, or `Ok(None)` if the record is absent (deleted meanwhile): it is never
/// recreated.
pub fn update_existing<S, T, F>(store: &S, key: &Key, mut f: F) -> Result<Option<T>, Error>
where
    S: KvStore + ?Sized,
    T: Serialize + DeserializeOwned,
    F: FnMut(T) -> Result<T, Error>,
{
    let mut absent = false;
    let result = store.update_json(key, |current: Option<T>| match current {
        Some(current) => {
            absent = false;
            f(current)
        }
        None => {
            absent = true;
            Err(Error::not_found(format!("{key} is gone")))
        }
    });
    match result {
        Ok(updated) => Ok(Some(updated)),
        Err(_) if absent => Ok(None),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::memory::MemoryStore;

    const THINGS: Kind = Kind::new("things");

    fn tenant() -> TenantId {
        TenantId::new("acme").expect("tenant")
    }

    #[test]
    fn owned_indexes_are_never_recreated() -> Result<(), Error> {
        let store = MemoryStore::new();
        let index = keys::owned_index(&tenant(), THINGS, "owner");
        assert!(!add_to_existing(&store, &index, "a")?);
        remove_from_existing(&store, &index, "a")?;
        assert!(store.is_empty());
        create_index(&store, &index, ["a".to_owned()])?;
        assert!(add_to_existing(&store, &index, "b")?);
        remove_from_existing(&store, &index, "a")?;
        assert_eq!(all_members(&store, &index)?, ["b"]);
        Ok(())
    }

    #[test]
    fn all_members_crosses_index_pages() -> Result<(), Error> {
        let store = MemoryStore::new();
        let index = keys::index(&tenant(), THINGS);
        let members: Vec<String> = (0..2500).map(|i| format!("m{i:05}")).collect();
        create_index(&store, &index, members.clone())?;
        assert_eq!(all_members(&store, &index)?, members);
        Ok(())
    }

    #[test]
    fn decode_members_reads_a_stored_index_value() -> Result<(), Error> {
        let store = MemoryStore::new();
        let index = keys::index(&tenant(), THINGS);
        create_index(&store, &index, ["c", "a", "b"].map(str::to_owned))?;
        let value = store.get(&index)?.expect("the index");
        let members: Vec<String> = decode_members(&index, &value)?.into_iter().collect();
        assert_eq!(members, ["a", "b", "c"]);
        assert_eq!(store.index_page(&index, None, 10)?.members, members);
        let err = decode_members(&index, b"not json").expect_err("not an index");
        assert_eq!(err.status(), 500, "{err:?}");
        Ok(())
    }

    #[test]
    fn concurrent_first_adds_to_a_tenant_index_lose_nothing_even_on_sqlite() -> Result<(), Error> {
        concurrent_first_adds_lose_nothing(MemoryStore::spin_sqlite_like)
    }

    #[test]
    fn concurrent_adds_lose_nothing_when_every_swap_reports_failure() -> Result<(), Error> {
        concurrent_first_adds_lose_nothing(MemoryStore::spin_redis_like)
    }

    fn concurrent_first_adds_lose_nothing(new: fn() -> MemoryStore) -> Result<(), Error> {
        for round in 0..20 {
            let store = Arc::new(new());
            let barrier = Arc::new(std::sync::Barrier::new(8));
            let threads: Vec<_> = (0..8)
                .map(|t| {
                    let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        barrier.wait();
                        add_to_tenant_index(store.as_ref(), &tenant(), THINGS, &format!("m{t}"))
                    })
                })
                .collect();
            for thread in threads {
                thread
                    .join()
                    .map_err(|_| Error::internal("thread panicked"))??;
            }
            let members = all_members(store.as_ref(), &keys::index(&tenant(), THINGS))?;
            assert_eq!(members.len(), 8, "round {round}: {members:?}");
        }
        Ok(())
    }

    #[test]
    fn a_tenant_index_whose_elected_creator_died_is_created_after_waiting() -> Result<(), Error> {
        let store = MemoryStore::spin_sqlite_like();
        // The elected writer incremented the seed, then never wrote the index.
        assert_eq!(store.increment(&keys::index_seed(&tenant(), THINGS), 1)?, 1);
        add_to_tenant_index(&store, &tenant(), THINGS, "a")?;
        add_to_tenant_index(&store, &tenant(), THINGS, "b")?;
        assert_eq!(
            all_members(&store, &keys::index(&tenant(), THINGS))?,
            ["a", "b"]
        );
        Ok(())
    }

    #[test]
    fn update_existing_skips_absent_records() -> Result<(), Error> {
        let store = MemoryStore::new();
        let key = keys::record(&tenant(), THINGS, "x");
        assert_eq!(update_existing(&store, &key, |n: u32| Ok(n + 1))?, None);
        assert!(store.is_empty());
        store.set_json(&key, &1_u32)?;
        assert_eq!(update_existing(&store, &key, |n: u32| Ok(n + 1))?, Some(2));
        let err = update_existing(&store, &key, |_: u32| Err(Error::invalid("n", "no")));
        assert_eq!(err.map_err(|e| e.code()), Err("BAD_REQUEST"));
        Ok(())
    }
}
