//! The SQLite file behind every key-value store, laid out as Spin lays it out.
//!
//! Spin keeps all stores of an application in one table, `spin_key_value(store, key, value)`,
//! in `<state-dir>/sqlite_key_value.db`. Using the same file and schema means a state directory
//! written by `eventplane up` can be read by `spin up`, and the reverse.
//!
//! One connection behind a mutex serialises every operation, which is what makes
//! compare-and-swap and increment atomic across concurrent requests.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

/// The file name Spin uses for its default key-value store.
pub const DB_FILE_NAME: &str = "sqlite_key_value.db";

/// An error from the SQLite store, reported to guests as `other(<message>)`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KvError(String);

impl From<rusqlite::Error> for KvError {
    fn from(e: rusqlite::Error) -> Self {
        Self(e.to_string())
    }
}

/// Result of the key-value operations.
pub type KvResult<T> = Result<T, KvError>;

/// The application's key-value data: all stores, one SQLite connection.
pub struct SqliteKv {
    conn: Mutex<Connection>,
}

impl SqliteKv {
    /// Opens (creating if needed) the database file inside `state_dir`.
    pub fn open_in(state_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(state_dir).map_err(|e| {
            anyhow::anyhow!("cannot create state directory {}: {e}", state_dir.display())
        })?;
        let path = state_dir.join(DB_FILE_NAME);
        let conn = Connection::open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        Self::init(conn)
    }

    /// An in-memory database, for tests.
    #[cfg(test)]
    pub fn in_memory() -> anyhow::Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> anyhow::Result<Self> {
        // WAL keeps readers and the writer out of each other's way; FULL sync keeps every
        // acknowledged write on disk, so a request that got its 2xx survives a crash.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            )",
            [],
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> KvResult<T> {
        // A poisoned lock only means another request panicked mid-call; SQLite itself
        // rolled back whatever that call did, so the connection is still consistent.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(KvError::from)
    }

    /// The value of `key` in `store`, if any.
    pub fn get(&self, store: &str, key: &str) -> KvResult<Option<Vec<u8>>> {
        self.with(|c| {
            c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .query_row(params![store, key], |r| r.get(0))
                .optional()
        })
    }

    /// Sets `key` to `value`, replacing any previous value.
    pub fn set(&self, store: &str, key: &str, value: &[u8]) -> KvResult<()> {
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![store, key, value])
            .map(drop)
        })
    }

    /// Deletes `key`; deleting a missing key is not an error.
    pub fn delete(&self, store: &str, key: &str) -> KvResult<()> {
        self.with(|c| {
            c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .execute(params![store, key])
                .map(drop)
        })
    }

    /// Whether `key` has a value.
    pub fn exists(&self, store: &str, key: &str) -> KvResult<bool> {
        self.with(|c| {
            c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .exists(params![store, key])
        })
    }

    /// Every key of `store`, in key order.
    pub fn keys(&self, store: &str) -> KvResult<Vec<String>> {
        self.with(|c| {
            c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key")?
                .query_map(params![store], |r| r.get(0))?
                .collect()
        })
    }

    /// Sets several keys in one transaction.
    pub fn set_many(&self, store: &str, entries: &[(String, Vec<u8>)]) -> KvResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                )?;
                for (key, value) in entries {
                    stmt.execute(params![store, key, value])?;
                }
            }
            tx.commit()
        })
    }

    /// Deletes several keys in one transaction.
    pub fn delete_many(&self, store: &str, keys: &[String]) -> KvResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut stmt =
                    tx.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?;
                for key in keys {
                    stmt.execute(params![store, key])?;
                }
            }
            tx.commit()
        })
    }

    /// Adds `delta` to the 64-bit integer at `key` (absent counts as 0) and returns the result.
    ///
    /// The value is stored as 8 little-endian bytes, the encoding Spin uses, so counters are
    /// interchangeable between the two hosts.
    pub fn increment(&self, store: &str, key: &str, delta: i64) -> KvResult<i64> {
        let mut outcome = Err(KvError(String::new()));
        self.with(|c| {
            let tx = c.transaction()?;
            let current: Option<Vec<u8>> = tx
                .prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .query_row(params![store, key], |r| r.get(0))
                .optional()?;
            let current = match current {
                None => 0,
                Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
                    Ok(b) => i64::from_le_bytes(b),
                    Err(_) => {
                        outcome = Err(KvError(format!(
                            "value of {key:?} is not a 64-bit integer ({} bytes)",
                            bytes.len()
                        )));
                        return Ok(());
                    }
                },
            };
            let Some(next) = current.checked_add(delta) else {
                outcome = Err(KvError(format!("incrementing {key:?} overflows")));
                return Ok(());
            };
            tx.prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![store, key, next.to_le_bytes().as_slice()])?;
            tx.commit()?;
            outcome = Ok(next);
            Ok(())
        })?;
        outcome
    }

    /// Replaces the value of `key` with `new` only if it is still `expected`
    /// (`None`: only if the key is still absent). Returns whether it was replaced.
    pub fn compare_and_swap(
        &self,
        store: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> KvResult<bool> {
        self.with(|c| {
            let changed = match expected {
                Some(old) => c
                    .prepare_cached(
                        "UPDATE spin_key_value SET value = ?4
                         WHERE store = ?1 AND key = ?2 AND value = ?3",
                    )?
                    .execute(params![store, key, old, new])?,
                None => c
                    .prepare_cached(
                        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT (store, key) DO NOTHING",
                    )?
                    .execute(params![store, key, new])?,
            };
            Ok(changed == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_are_separate_namespaces() -> anyhow::Result<()> {
        let kv = SqliteKv::in_memory()?;
        kv.set("a", "k", b"1")?;
        kv.set("b", "k", b"2")?;
        assert_eq!(kv.get("a", "k")?.as_deref(), Some(&b"1"[..]));
        assert_eq!(kv.get("b", "k")?.as_deref(), Some(&b"2"[..]));
        kv.delete("a", "k")?;
        assert!(!kv.exists("a", "k")?);
        assert!(kv.exists("b", "k")?);
        Ok(())
    }

    #[test]
    fn compare_and_swap_from_absent_succeeds_once() -> anyhow::Result<()> {
        let kv = SqliteKv::in_memory()?;
        assert!(kv.compare_and_swap("s", "k", None, b"x")?);
        assert!(!kv.compare_and_swap("s", "k", None, b"y")?);
        assert!(!kv.compare_and_swap("s", "k", Some(b"y"), b"z")?);
        assert!(kv.compare_and_swap("s", "k", Some(b"x"), b"z")?);
        assert_eq!(kv.get("s", "k")?.as_deref(), Some(&b"z"[..]));
        Ok(())
    }

    #[test]
    fn increment_uses_little_endian_i64_and_rejects_other_values() -> anyhow::Result<()> {
        let kv = SqliteKv::in_memory()?;
        assert_eq!(kv.increment("s", "n", 5)?, 5);
        assert_eq!(kv.increment("s", "n", -2)?, 3);
        assert_eq!(kv.get("s", "n")?, Some(3i64.to_le_bytes().to_vec()));
        kv.set("s", "text", b"hello")?;
        let err = kv.increment("s", "text", 1).unwrap_err();
        assert!(err.to_string().contains("not a 64-bit integer"), "{err}");
        Ok(())
    }

    #[test]
    fn data_survives_reopening_the_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        SqliteKv::open_in(dir.path())?.set("default", "k", b"v")?;
        let kv = SqliteKv::open_in(dir.path())?;
        assert_eq!(kv.get("default", "k")?.as_deref(), Some(&b"v"[..]));
        Ok(())
    }
}
