//! The application's key-value stores, by label, and one component instance's view of them.
//!
//! Each label a component may open is backed by a SQLite file laid out as Spin lays it out
//! ([`crate::kv_store`]) or by a Redis server ([`crate::redis_kv`]). Labels sharing a file
//! share one [`SqliteKv`]; an instance has one [`KvSession`] per file, whose watermark says
//! what it has seen there. Before anything of the instance's leaves the host,
//! [`StoreSession::durable`] waits until every file has made durable what the instance saw
//! there. Nothing waits for Redis: its writes are answered once the server has applied them,
//! and the server's own persistence decides what survives it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::kv_store::{KvError, KvResult, KvSession, SqliteKv};
use crate::redis_kv::RedisKv;

/// Where a label's data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreLocation {
    /// A SQLite file in Spin's layout; `None`: a temporary one, gone when the host stops
    /// (Spin keeps such a store in memory).
    Sqlite(Option<PathBuf>),
    /// A Redis server, at this url.
    Redis(String),
}

/// One SQLite file and whether responses wait for it.
struct SqliteFile {
    kv: Arc<SqliteKv>,
    /// A temporary file keeps nothing past the host's life: nothing needs to wait for it.
    wait_durable: bool,
}

/// What backs a label.
enum Backend {
    /// Index into [`Stores::files`].
    Sqlite(usize),
    Redis(Arc<RedisKv>),
}

/// Every key-value store of the application.
pub(crate) struct Stores {
    labels: HashMap<String, Backend>,
    files: Vec<SqliteFile>,
    /// `(label, where its data lives)`, by label.
    descriptions: Vec<(String, String)>,
}

impl Stores {
    /// Opens the store of each `(label, location)`: one [`SqliteKv`] per file and one
    /// connection per Redis server (checked at once: it must answer), however many labels they
    /// hold. A label's problem is passed through `context` with the label.
    pub(crate) fn open(
        locations: &[(String, StoreLocation)],
        context: impl Fn(&str, anyhow::Error) -> anyhow::Error,
    ) -> anyhow::Result<Self> {
        let mut stores = Self {
            labels: HashMap::new(),
            files: Vec::new(),
            descriptions: Vec::new(),
        };
        let mut by_path: HashMap<PathBuf, usize> = HashMap::new();
        let mut by_url: HashMap<&str, Arc<RedisKv>> = HashMap::new();
        let mut temporary = None;
        for (label, location) in locations {
            let context = |e| context(label, e);
            let (backend, description) = match location {
                StoreLocation::Redis(url) => {
                    let redis = match by_url.get(url.as_str()) {
                        Some(redis) => redis.clone(),
                        None => {
                            let redis = Arc::new(RedisKv::connect(url).map_err(context)?);
                            by_url.insert(url, redis.clone());
                            redis
                        }
                    };
                    let description = format!("Redis {}", redis.shown());
                    (Backend::Redis(redis), description)
                }
                StoreLocation::Sqlite(Some(path)) => {
                    let path = prepare_file(path).map_err(context)?;
                    let index = match by_path.get(&path) {
                        Some(&index) => index,
                        None => {
                            stores.files.push(SqliteFile {
                                kv: Arc::new(SqliteKv::open_file(&path).map_err(context)?),
                                wait_durable: true,
                            });
                            by_path.insert(path.clone(), stores.files.len() - 1);
                            stores.files.len() - 1
                        }
                    };
                    (Backend::Sqlite(index), format!("SQLite {}", path.display()))
                }
                StoreLocation::Sqlite(None) => {
                    // Labels keep apart inside one file, so one temporary file serves them all.
                    let index = match temporary {
                        Some(index) => index,
                        None => {
                            stores.files.push(SqliteFile {
                                kv: Arc::new(SqliteKv::temporary().map_err(context)?),
                                wait_durable: false,
                            });
                            temporary = Some(stores.files.len() - 1);
                            stores.files.len() - 1
                        }
                    };
                    (
                        Backend::Sqlite(index),
                        "SQLite in memory (gone when the host stops)".to_owned(),
                    )
                }
            };
            stores.labels.insert(label.clone(), backend);
            stores.descriptions.push((label.clone(), description));
        }
        stores.descriptions.sort();
        Ok(stores)
    }

    /// `(label, where its data lives)` for every store, by label.
    pub(crate) fn descriptions(&self) -> &[(String, String)] {
        &self.descriptions
    }
}

/// The absolute path of a database file at `path`, its directory created if needed, so that
/// two spellings of one file open it once.
fn prepare_file(path: &Path) -> anyhow::Result<PathBuf> {
    let path = std::path::absolute(path)
        .map_err(|e| anyhow::anyhow!("invalid key-value file path {}: {e}", path.display()))?;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        anyhow::bail!("{} is not a file path", path.display());
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create directory {}: {e}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| anyhow::anyhow!("cannot resolve directory {}: {e}", dir.display()))?;
    Ok(dir.join(name))
}

/// How many store operations of each kind a session made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// `get`, `exists` and `get-many` (one each: one round trip on Redis), and the read that
    /// starts a compare-and-swap.
    pub reads: u32,
    /// `get-keys`: every key of a store.
    pub lists: u32,
    /// `set` and `delete`.
    pub writes: u32,
    /// `set-many` and `delete-many`: several keys in one transaction.
    pub batches: u32,
    /// `increment`.
    pub increments: u32,
    /// The swap of a compare-and-swap.
    pub swaps: u32,
}

impl OpCounts {
    /// Operations that change the store (each is one transaction on Spin's SQLite store).
    pub fn transactions(&self) -> u32 {
        self.writes + self.batches + self.increments + self.swaps
    }
}

/// Indexes into [`Timing::ops`].
#[derive(Clone, Copy)]
enum Op {
    Read = 0,
    List = 1,
    Write = 2,
    Batch = 3,
    Increment = 4,
    Swap = 5,
}

/// What a timed session keeps: the time its writes took, and its operations by kind.
#[derive(Default)]
struct Timing {
    write_nanos: AtomicU64,
    ops: [AtomicU64; 6],
}

/// One component instance's use of the stores: each operation goes to its label's backend,
/// and [`durable`](Self::durable) waits for whatever the instance has seen.
#[derive(Clone)]
pub(crate) struct StoreSession {
    stores: Arc<Stores>,
    /// One per file of [`Stores::files`], in the same order.
    sqlite: Arc<[KvSession]>,
    /// Kept only for a [`timed`](Self::timed) session.
    timing: Option<Arc<Timing>>,
}

impl StoreSession {
    /// A new session on `stores`, that has seen nothing yet.
    pub(crate) fn new(stores: &Arc<Stores>) -> Self {
        Self {
            stores: stores.clone(),
            sqlite: stores
                .files
                .iter()
                .map(|file| KvSession::new(file.kv.clone()))
                .collect(),
            timing: None,
        }
    }

    /// A new session that also keeps how long its writes take ([`write_wait`](Self::write_wait))
    /// and counts its operations ([`op_counts`](Self::op_counts)).
    pub(crate) fn timed(stores: &Arc<Stores>) -> Self {
        Self {
            timing: Some(Arc::default()),
            ..Self::new(stores)
        }
    }

    fn backend(&self, label: &str) -> KvResult<Label<'_>> {
        match self.stores.labels.get(label) {
            Some(Backend::Sqlite(index)) => Ok(Label::Sqlite(&self.sqlite[*index])),
            Some(Backend::Redis(redis)) => Ok(Label::Redis(redis)),
            None => Err(KvError::new(format!(
                "no key-value store is labelled {label:?}"
            ))),
        }
    }

    fn count(&self, op: Op) {
        if let Some(timing) = &self.timing {
            timing.ops[op as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs the write `op`, timed if the session is.
    async fn write<T>(&self, op: Op, write: impl Future<Output = KvResult<T>>) -> KvResult<T> {
        self.count(op);
        let Some(timing) = &self.timing else {
            return write.await;
        };
        let started = std::time::Instant::now();
        let result = write.await;
        let waited = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        timing.write_nanos.fetch_add(waited, Ordering::Relaxed);
        result
    }

    /// How long the session's writes have taken, all together (zero unless the session is
    /// [`timed`](Self::timed)).
    pub(crate) fn write_wait(&self) -> std::time::Duration {
        let nanos = self
            .timing
            .as_ref()
            .map_or(0, |t| t.write_nanos.load(Ordering::Relaxed));
        std::time::Duration::from_nanos(nanos)
    }

    /// The operations the session made so far, by kind (all zero unless the session is
    /// [`timed`](Self::timed)).
    pub(crate) fn op_counts(&self) -> OpCounts {
        let Some(timing) = &self.timing else {
            return OpCounts::default();
        };
        let n = |op: Op| {
            u32::try_from(timing.ops[op as usize].load(Ordering::Relaxed)).unwrap_or(u32::MAX)
        };
        OpCounts {
            reads: n(Op::Read),
            lists: n(Op::List),
            writes: n(Op::Write),
            batches: n(Op::Batch),
            increments: n(Op::Increment),
            swaps: n(Op::Swap),
        }
    }

    /// The sessions on files whose durability responses wait for.
    fn waited_for(&self) -> impl Iterator<Item = &KvSession> {
        self.sqlite
            .iter()
            .zip(&self.stores.files)
            .filter(|(_, file)| file.wait_durable)
            .map(|(session, _)| session)
    }

    /// Waits until every write this session could have seen is durable: call it before
    /// anything of the session's is shown outside.
    pub(crate) async fn durable(&self) -> KvResult<()> {
        for session in self.waited_for() {
            session.durable().await?;
        }
        Ok(())
    }

    /// Whether [`durable`](Self::durable) would not wait.
    pub(crate) fn is_durable(&self) -> bool {
        self.waited_for().all(KvSession::is_durable)
    }

    /// Makes every later wait for durability fail with `reason`, as a failed sync does.
    #[cfg(test)]
    pub(crate) fn fail_syncs(&self, reason: &str) {
        for session in self.sqlite.iter() {
            session.fail_syncs(reason);
        }
    }

    /// The value of `key` in the store `label`, if any.
    pub(crate) async fn get(&self, label: &str, key: &str) -> KvResult<Option<Vec<u8>>> {
        self.count(Op::Read);
        match self.backend(label)? {
            Label::Sqlite(session) => session.get(label, key),
            Label::Redis(redis) => redis.get(label, key).await,
        }
    }

    /// The values of `keys` in the store `label`, in order: one round trip on Redis (`MGET`),
    /// counted as one read.
    pub(crate) async fn get_many(
        &self,
        label: &str,
        keys: &[String],
    ) -> KvResult<Vec<Option<Vec<u8>>>> {
        self.count(Op::Read);
        match self.backend(label)? {
            Label::Sqlite(session) => keys.iter().map(|key| session.get(label, key)).collect(),
            Label::Redis(redis) => redis.get_many(label, keys).await,
        }
    }

    /// Whether `key` has a value.
    pub(crate) async fn exists(&self, label: &str, key: &str) -> KvResult<bool> {
        self.count(Op::Read);
        match self.backend(label)? {
            Label::Sqlite(session) => session.exists(label, key),
            Label::Redis(redis) => redis.exists(label, key).await,
        }
    }

    /// Every key of the store `label`.
    pub(crate) async fn keys(&self, label: &str) -> KvResult<Vec<String>> {
        self.count(Op::List);
        match self.backend(label)? {
            Label::Sqlite(session) => session.keys(label),
            Label::Redis(redis) => redis.keys(label).await,
        }
    }

    /// Sets `key` to `value`, replacing any previous value.
    pub(crate) async fn set(&self, label: &str, key: &str, value: Vec<u8>) -> KvResult<()> {
        let backend = self.backend(label)?;
        self.write(Op::Write, async {
            match backend {
                Label::Sqlite(session) => session.set(label, key, value).await,
                Label::Redis(redis) => redis.set(label, key, &value).await,
            }
        })
        .await
    }

    /// Deletes `key`; deleting a missing key is not an error.
    pub(crate) async fn delete(&self, label: &str, key: &str) -> KvResult<()> {
        let backend = self.backend(label)?;
        self.write(Op::Write, async {
            match backend {
                Label::Sqlite(session) => session.delete(label, key).await,
                Label::Redis(redis) => redis.delete(label, key).await,
            }
        })
        .await
    }

    /// Sets several keys, all or none.
    pub(crate) async fn set_many(
        &self,
        label: &str,
        entries: Vec<(String, Vec<u8>)>,
    ) -> KvResult<()> {
        let backend = self.backend(label)?;
        self.write(Op::Batch, async {
            match backend {
                Label::Sqlite(session) => session.set_many(label, entries).await,
                Label::Redis(redis) => redis.set_many(label, &entries).await,
            }
        })
        .await
    }

    /// Deletes several keys, all or none.
    pub(crate) async fn delete_many(&self, label: &str, keys: Vec<String>) -> KvResult<()> {
        let backend = self.backend(label)?;
        self.write(Op::Batch, async {
            match backend {
                Label::Sqlite(session) => session.delete_many(label, keys).await,
                Label::Redis(redis) => redis.delete_many(label, &keys).await,
            }
        })
        .await
    }

    /// Adds `delta` to the counter at `key` (absent counts as 0) and returns the result.
    pub(crate) async fn increment(&self, label: &str, key: &str, delta: i64) -> KvResult<i64> {
        let backend = self.backend(label)?;
        self.write(Op::Increment, async {
            match backend {
                Label::Sqlite(session) => session.increment(label, key, delta).await,
                Label::Redis(redis) => redis.increment(label, key, delta).await,
            }
        })
        .await
    }

    /// Replaces the value of `key` with `new` only if it is still `expected` (`None`: only if
    /// the key is still absent), atomically. Returns whether it was replaced.
    pub(crate) async fn compare_and_swap(
        &self,
        label: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> KvResult<bool> {
        let backend = self.backend(label)?;
        self.write(Op::Swap, async {
            match backend {
                Label::Sqlite(session) => session.compare_and_swap(label, key, expected, new).await,
                Label::Redis(redis) => {
                    redis
                        .compare_and_swap(label, key, expected.as_deref(), &new)
                        .await
                }
            }
        })
        .await
    }
}

/// A label's backend, as one session reaches it.
#[derive(Clone, Copy)]
enum Label<'a> {
    Sqlite(&'a KvSession),
    Redis(&'a RedisKv),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a timed session keeps how long its writes took, and counts its operations.
    #[tokio::test]
    async fn only_timed_sessions_keep_their_write_time_and_counts() -> anyhow::Result<()> {
        let stores = Arc::new(Stores::open(
            &[("s".to_owned(), StoreLocation::Sqlite(None))],
            |_, e| e,
        )?);
        let plain = StoreSession::new(&stores);
        let timed = StoreSession::timed(&stores);
        plain.set("s", "a", vec![1]).await?;
        timed.set("s", "b", vec![2]).await?;
        timed.get("s", "b").await?;
        timed.increment("s", "n", 1).await?;
        assert_eq!(plain.write_wait(), std::time::Duration::ZERO);
        assert_eq!(plain.op_counts(), OpCounts::default());
        assert!(timed.write_wait() > std::time::Duration::ZERO);
        let counts = timed.op_counts();
        assert_eq!((counts.reads, counts.writes, counts.increments), (1, 1, 1));
        assert_eq!(counts.transactions(), 2);
        Ok(())
    }

    /// Labels on one file (however it is spelled) share it; labels on other files, and in
    /// memory, have theirs. A label's keys are its own in a shared file.
    #[tokio::test]
    async fn labels_share_a_file_only_when_its_path_is_the_same() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("a.db");
        let same = dir.path().join("sub/../a.db");
        std::fs::create_dir_all(dir.path().join("sub"))?;
        let stores = Arc::new(Stores::open(
            &[
                ("one".into(), StoreLocation::Sqlite(Some(file.clone()))),
                ("two".into(), StoreLocation::Sqlite(Some(same))),
                (
                    "three".into(),
                    StoreLocation::Sqlite(Some(dir.path().join("new/b.db"))),
                ),
                ("mem".into(), StoreLocation::Sqlite(None)),
            ],
            |_, e| e,
        )?);
        assert_eq!(stores.files.len(), 3);
        let session = StoreSession::new(&stores);
        session.set("one", "k", b"1".to_vec()).await?;
        session.set("two", "k", b"2".to_vec()).await?;
        session.set("three", "k", b"3".to_vec()).await?;
        session.set("mem", "k", b"m".to_vec()).await?;
        assert_eq!(session.get("one", "k").await?, Some(b"1".to_vec()));
        assert_eq!(session.get("two", "k").await?, Some(b"2".to_vec()));
        session.durable().await?;
        assert!(dir.path().join("new/b.db").exists());
        let err = session.get("nope", "k").await.unwrap_err();
        assert!(err.to_string().contains("\"nope\""), "{err}");
        Ok(())
    }
}
