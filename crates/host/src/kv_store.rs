//! The SQLite file behind every key-value store, laid out as Spin lays it out.
//!
//! Spin keeps all stores of an application in one table, `spin_key_value(store, key, value)`,
//! in `<state-dir>/sqlite_key_value.db`. Using the same file and schema means a state directory
//! written by `eventplane up` can be read by `spin up`, and the reverse.
//!
//! ## Writes: one writing connection, group commit
//!
//! Every write (set, delete, the batch writes, increment, compare-and-swap) joins one queue in
//! front of the only writing connection. The request that finds the connection free commits
//! for everyone, on the thread it already runs on (it is the *leader*): it takes every write
//! that is waiting, applies them in order inside one transaction, commits once and answers
//! them all, and goes on while writes keep arriving. Requests that find the connection busy
//! wait for their answer. Because writes are applied one after another on one connection,
//! compare-and-swap and increment are atomic across concurrent requests, as on Spin. A write
//! that fails on its own (an increment of a non-integer) changes nothing and fails alone; if
//! the commit itself fails, every write of the group fails and none is kept.
//!
//! ## Durable before anyone outside sees it
//!
//! On Spin a write returns once it is on disk. Here a write returns once it is committed, and
//! a syncer thread makes the write-ahead log durable (`fdatasync`) when an instance needs it:
//! one sync covers every commit finished so far, and serves everyone who waited meanwhile.
//! What a component instance does is held back until every write it could have seen is on
//! disk ([`KvSession::durable`]):
//! - its HTTP response, head and each body frame;
//! - each outbound HTTP request it sends (service-chained ones included).
//!
//! So nothing leaves the process, and no other instance acts on anything, that a crash could
//! still take back: a 2xx still means the data is on disk. What a crash loses is only writes
//! nobody outside has seen the effect of, which is the same as the crash coming earlier. The
//! log is synced in commit order, so a crash keeps a prefix of the commits. In exchange a
//! request with several writes waits for one sync instead of one per write.
//!
//! An instance's *watermark* is the number of the latest commit it could have seen: the commit
//! holding each of its writes, and for each read the latest commit begun when the read ended.
//! If a sync fails, the store stops confirming anything: every wait for durability fails.
//!
//! Checkpoints stay SQLite's own (every 1,000 pages of log, by the commit that reaches them).
//! A checkpointer thread beside the writer was measured: more throughput, but its syncs of the
//! database file stalled the log's syncs behind them, and the slowest publishes got slower.
//!
//! ## Reads: a cache in front of their own connections
//!
//! Values read are kept in memory ([`ReadCache`], at most [`MAX_CACHED_BYTES`]): every write
//! goes through this process's one writing connection, which takes the keys it writes out of
//! the cache before it commits and lets them be cached again only after (from reads begun
//! after the commit), so a cached value is always the latest committed one. (Other processes
//! may read the file meanwhile, as Spin allows; a second process writing the same state
//! directory at the same time is not supported.)
//!
//! A value not in the cache is read with one of a small pool of read connections. The
//! database is in WAL mode, so a read never waits for the writer and sees every write that was
//! answered before it started.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{oneshot, watch};

/// The file name Spin uses for its default key-value store.
pub const DB_FILE_NAME: &str = "sqlite_key_value.db";

/// The most writes committed together; a longer queue is committed in several groups.
pub const MAX_WRITES_PER_COMMIT: usize = 512;

/// The most bytes of values (with their keys) the read cache holds; past it, it starts over.
pub const MAX_CACHED_BYTES: usize = 32 << 20;

/// Values larger than this are not cached.
const MAX_CACHED_VALUE: usize = 64 << 10;

/// What a cached entry costs beyond its key and value bytes.
const CACHE_ENTRY_OVERHEAD: usize = 64;

/// The most idle read connections kept open for reuse.
const MAX_IDLE_READERS: usize = 16;

/// An error from the SQLite store, reported to guests as `other(<message>)`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct KvError(String);

impl From<rusqlite::Error> for KvError {
    fn from(e: rusqlite::Error) -> Self {
        Self(e.to_string())
    }
}

/// Result of the key-value operations.
pub type KvResult<T> = Result<T, KvError>;

const UPSERT: &str = "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
     ON CONFLICT (store, key) DO UPDATE SET value = excluded.value";
const SELECT_VALUE: &str = "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2";
const DELETE: &str = "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2";

/// One write, as the leader applies it.
enum Write {
    Set {
        key: String,
        value: Vec<u8>,
    },
    Delete {
        key: String,
    },
    SetMany {
        entries: Vec<(String, Vec<u8>)>,
    },
    DeleteMany {
        keys: Vec<String>,
    },
    Increment {
        key: String,
        delta: i64,
    },
    CompareAndSwap {
        key: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    },
}

/// What a write answers: increments their new value, compare-and-swaps whether they swapped.
enum Written {
    Done,
    Counter(i64),
    Swapped(bool),
}

/// A write waiting in the queue, with where to send its outcome and the number of
/// the commit that holds it.
struct Job {
    store: String,
    write: Write,
    reply: oneshot::Sender<(KvResult<Written>, u64)>,
}

/// How far the log is on disk, as the syncer publishes it.
#[derive(Debug, Clone, Default)]
struct Synced {
    /// Every commit numbered up to this is on disk.
    through: u64,
    /// Why syncing failed, once it has: nothing more is confirmed.
    failed: Option<String>,
}

/// The commit numbers shared by the writers, the syncer and the sessions.
struct Commits {
    /// The number of the latest commit begun (commits are numbered from 1).
    begun: AtomicU64,
    /// The number of the latest commit finished (committed or failed): every commit numbered
    /// up to it is in the log file, and a sync now covers it.
    finished: AtomicU64,
    /// The highest commit number a session waits to see on disk.
    wanted: AtomicU64,
    /// Wakes the syncer when a session waits for what is not on disk yet.
    wake: Mutex<Option<mpsc::Sender<()>>>,
    /// What the syncer has made durable.
    synced: watch::Sender<Synced>,
}

impl Commits {
    /// Asks the syncer to sync what is committed (a no-op once it has stopped).
    fn wake_syncer(&self) {
        if let Some(wake) = lock(&self.wake).as_ref() {
            let _ = wake.send(());
        }
    }

    /// How far the log is known to be on disk.
    fn synced_through(&self) -> u64 {
        self.synced.borrow().through
    }
}

/// The queue of writes and the connection that commits them, held by the leader (module
/// docs, "Writes").
struct Writer {
    queue: Mutex<Vec<Job>>,
    conn: Mutex<Connection>,
}

impl Writer {
    /// Queues `job` and commits it, with every other waiting write, unless another caller is
    /// committing already: that one then takes it (see [`lead`](Self::lead)).
    fn submit(&self, job: Job, commits: &Commits, cache: &Mutex<ReadCache>) {
        lock(&self.queue).push(job);
        self.lead(commits, cache);
    }

    /// Commits queued writes, group after group, until the queue is empty; returns at once if
    /// another caller holds the connection.
    ///
    /// No write is left behind: the leader looks at the queue again after letting the
    /// connection go, so a write queued while it was finishing (whose caller found the
    /// connection taken) is committed by it or by whoever took the connection next.
    fn lead(&self, commits: &Commits, cache: &Mutex<ReadCache>) {
        loop {
            let conn = match self.conn.try_lock() {
                Ok(conn) => conn,
                Err(std::sync::TryLockError::WouldBlock) => return,
                Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            };
            loop {
                let group: Vec<Job> = {
                    let mut queue = lock(&self.queue);
                    let n = queue.len().min(MAX_WRITES_PER_COMMIT);
                    queue.drain(..n).collect()
                };
                if group.is_empty() {
                    break;
                }
                commit(&conn, group, commits, cache);
            }
            drop(conn);
            if lock(&self.queue).is_empty() {
                return;
            }
        }
    }
}

/// Applies `group` in one transaction, hands the commit to the syncer and answers every write
/// of the group.
fn commit(conn: &Connection, group: Vec<Job>, commits: &Commits, cache: &Mutex<ReadCache>) {
    // Numbered before it begins: a read that sees this commit ends after the number is
    // taken, so its watermark covers it.
    let number = commits.begun.fetch_add(1, Ordering::SeqCst) + 1;
    let started = std::time::Instant::now();
    let outcomes = commit_group(conn, &group, cache);
    let took = started.elapsed();
    if took > SLOW_COMMIT {
        tracing::warn!("key-value commit of {} writes took {took:?}", group.len());
    }
    // A failed commit counts as finished too: waits for its number must end. If a session
    // waits for a commit not on disk yet (perhaps this one, seen by a read while it was
    // under way), the syncer syncs it now.
    commits.finished.store(number, Ordering::SeqCst);
    if commits.wanted.load(Ordering::SeqCst) > commits.synced_through() {
        commits.wake_syncer();
    }
    for (job, outcome) in group.into_iter().zip(outcomes) {
        // The requester may have gone (its instance was cancelled); the write stands.
        let _ = job.reply.send((outcome, number));
    }
}

/// Recently read values, by store and key; `None` caches a key's absence (module docs,
/// "Reads").
#[derive(Default)]
struct ReadCache {
    stores: HashMap<String, HashMap<String, Option<Vec<u8>>>>,
    bytes: usize,
    /// Changes when a commit begins and when it ends: a value read from SQLite is cached only
    /// if the generation has not changed since the read began (the value could be older than
    /// a commit made meanwhile).
    generation: u64,
    /// The keys of the commit under way, by store: not served from the cache, nor cached,
    /// until it has ended (a read may find them changed in the file already, or not yet).
    /// Between commits every set is empty.
    pending: HashMap<String, std::collections::HashSet<String>>,
}

impl ReadCache {
    fn get(&self, store: &str, key: &str) -> Option<&Option<Vec<u8>>> {
        if self.is_pending(store, key) {
            return None;
        }
        self.stores.get(store)?.get(key)
    }

    fn is_pending(&self, store: &str, key: &str) -> bool {
        self.pending
            .get(store)
            .is_some_and(|keys| keys.contains(key))
    }

    /// Caches what was read of `key` if no commit dropped anything since `generation`.
    fn insert(&mut self, generation: u64, store: &str, key: &str, value: &Option<Vec<u8>>) {
        let size = key.len() + value.as_ref().map_or(0, Vec::len) + CACHE_ENTRY_OVERHEAD;
        if generation != self.generation || size > MAX_CACHED_VALUE || self.is_pending(store, key) {
            return;
        }
        if self.bytes + size > MAX_CACHED_BYTES {
            self.stores.clear();
            self.bytes = 0;
        }
        let previous = self
            .stores
            .entry(store.to_owned())
            .or_default()
            .insert(key.to_owned(), value.clone());
        if previous.is_none() {
            self.bytes += size;
        }
    }

    /// Before a commit: drops every key `write` changes (or may change) and holds it back
    /// from the cache until [`end_commit`](Self::end_commit); starts a new generation.
    fn begin_commit(&mut self, store: &str, write: &Write) {
        self.generation += 1;
        // A store's set stays (emptied) between commits: no allocation for its name each time.
        let pending = match self.pending.get_mut(store) {
            Some(keys) => keys,
            None => self.pending.entry(store.to_owned()).or_default(),
        };
        let mut values = self.stores.get_mut(store);
        let bytes = &mut self.bytes;
        let mut drop_key = |key: &str| {
            pending.insert(key.to_owned());
            if let Some(value) = values.as_mut().and_then(|v| v.remove(key)) {
                *bytes = bytes.saturating_sub(
                    key.len() + value.map_or(0, |v| v.len()) + CACHE_ENTRY_OVERHEAD,
                );
            }
        };
        match write {
            Write::Set { key, .. }
            | Write::Delete { key }
            | Write::Increment { key, .. }
            | Write::CompareAndSwap { key, .. } => drop_key(key),
            Write::SetMany { entries } => entries.iter().for_each(|(key, _)| drop_key(key)),
            Write::DeleteMany { keys } => keys.iter().for_each(|key| drop_key(key)),
        }
    }

    /// After the commit (or its failure): its keys may be cached again, from a new
    /// generation on.
    fn end_commit(&mut self) {
        self.generation += 1;
        self.pending
            .values_mut()
            .for_each(std::collections::HashSet::clear);
    }
}

/// Locks `mutex`; a panic while it was held leaves nothing half-done in what these guard.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The application's key-value data: all stores in one SQLite file.
pub struct SqliteKv {
    path: PathBuf,
    writer: Option<Writer>,
    syncer: Option<std::thread::JoinHandle<()>>,
    commits: Arc<Commits>,
    readers: Mutex<Vec<Connection>>,
    cache: Mutex<ReadCache>,
    /// Keeps a test database's directory alive as long as the store.
    #[cfg(test)]
    _temp: Option<tempfile::TempDir>,
}

fn writer_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // WAL keeps readers and the writer out of each other's way. A commit does not sync: the
    // syncer thread does, behind it, and nothing is shown outside before (module docs).
    // Checkpoints still sync the log before and the database after.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
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
    Ok(conn)
}

fn read_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

impl SqliteKv {
    /// Opens (creating if needed) the database file inside `state_dir`, and starts its writer.
    pub fn open_in(state_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(state_dir).map_err(|e| {
            anyhow::anyhow!("cannot create state directory {}: {e}", state_dir.display())
        })?;
        let path = state_dir.join(DB_FILE_NAME);
        let conn = writer_connection(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        let (wake, wakes) = mpsc::channel();
        let commits = Arc::new(Commits {
            begun: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            wanted: AtomicU64::new(0),
            wake: Mutex::new(Some(wake)),
            synced: watch::Sender::new(Synced::default()),
        });
        let writer = Writer {
            queue: Mutex::new(Vec::new()),
            conn: Mutex::new(conn),
        };
        let syncer_commits = commits.clone();
        let wal = wal_path(&path);
        let db = path.clone();
        let syncer = std::thread::Builder::new()
            .name("kv-syncer".into())
            .spawn(move || sync_loop(&wal, &db, &syncer_commits, &wakes))?;
        Ok(Self {
            path,
            writer: Some(writer),
            syncer: Some(syncer),
            commits,
            readers: Mutex::new(Vec::new()),
            cache: Mutex::default(),
            #[cfg(test)]
            _temp: None,
        })
    }

    /// A database in a temporary directory removed with the store, for tests.
    #[cfg(test)]
    pub fn in_memory() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut kv = Self::open_in(dir.path())?;
        kv._temp = Some(dir);
        Ok(kv)
    }

    /// Runs `f` on a read connection from the pool (opening one if none is idle).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> KvResult<T> {
        let pooled = lock(&self.readers).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => read_connection(&self.path)?,
        };
        let result = f(&conn).map_err(KvError::from);
        let mut idle = lock(&self.readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    /// The value of `key` in `store` (`None`: absent), from the cache or else from SQLite
    /// (then cached).
    fn get(&self, store: &str, key: &str) -> KvResult<Option<Vec<u8>>> {
        let generation = {
            let cache = lock(&self.cache);
            if let Some(value) = cache.get(store, key) {
                return Ok(value.clone());
            }
            cache.generation
        };
        let value = self.read(|c| {
            c.prepare_cached(SELECT_VALUE)?
                .query_row(params![store, key], |r| r.get(0))
                .optional()
        })?;
        lock(&self.cache).insert(generation, store, key, &value);
        Ok(value)
    }

    /// Whether `key` in `store` has a value, from the cache if it is there.
    fn exists(&self, store: &str, key: &str) -> KvResult<bool> {
        if let Some(value) = lock(&self.cache).get(store, key) {
            return Ok(value.is_some());
        }
        self.read(|c| {
            c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .exists(params![store, key])
        })
    }

    /// The number of the latest commit begun: every commit a read that has ended could see
    /// is numbered at most this.
    fn begun(&self) -> u64 {
        self.commits.begun.load(Ordering::SeqCst)
    }

    /// Waits until every commit numbered up to `commit` is on disk.
    async fn wait_durable(&self, commit: u64) -> KvResult<()> {
        if commit == 0 || self.is_durable(commit) {
            return Ok(());
        }
        self.commits.wanted.fetch_max(commit, Ordering::SeqCst);
        self.commits.wake_syncer();
        let mut synced = self.commits.synced.subscribe();
        let state = synced
            .wait_for(|s| s.through >= commit || s.failed.is_some())
            .await
            .map_err(|_| KvError("the key-value store is shut down".into()))?;
        match &state.failed {
            Some(reason) if state.through < commit => Err(KvError(format!(
                "the key-value store cannot make writes durable: {reason}"
            ))),
            _ => Ok(()),
        }
    }

    /// Whether every commit numbered up to `commit` is on disk already.
    fn is_durable(&self, commit: u64) -> bool {
        commit <= self.commits.synced.borrow().through
    }

    async fn write(&self, store: &str, write: Write) -> (KvResult<Written>, u64) {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            store: store.to_owned(),
            write,
            reply,
        };
        let Some(writer) = &self.writer else {
            return (Err(KvError("the key-value store is shut down".into())), 0);
        };
        writer.submit(job, &self.commits, &self.cache);
        answer
            .await
            .unwrap_or_else(|_| (Err(KvError("the key-value writer stopped".into())), 0))
    }
}

/// One component instance's use of the store: every operation, and the instance's watermark
/// (module docs), which [`durable`](Self::durable) waits for.
#[derive(Clone)]
pub struct KvSession {
    kv: Arc<SqliteKv>,
    watermark: Arc<AtomicU64>,
    /// Nanoseconds spent in the session's writes, all together: from each call until the
    /// instance runs again after the commit. Kept only for a [`timed`](Self::timed) session.
    write_wait: Option<Arc<AtomicU64>>,
}

impl KvSession {
    /// A new session (watermark 0: nothing seen) on `kv`.
    pub fn new(kv: Arc<SqliteKv>) -> Self {
        Self {
            kv,
            watermark: Arc::default(),
            write_wait: None,
        }
    }

    /// A new session that also keeps how long its writes take ([`write_wait`](Self::write_wait)).
    pub fn timed(kv: Arc<SqliteKv>) -> Self {
        Self {
            write_wait: Some(Arc::default()),
            ..Self::new(kv)
        }
    }

    fn saw(&self, commit: u64) {
        self.watermark.fetch_max(commit, Ordering::SeqCst);
    }

    fn after_read<T>(&self, result: KvResult<T>) -> KvResult<T> {
        self.saw(self.kv.begun());
        result
    }

    async fn write(&self, store: &str, write: Write) -> KvResult<Written> {
        let started = self.write_wait.as_ref().map(|_| std::time::Instant::now());
        let (result, commit) = self.kv.write(store, write).await;
        self.saw(commit);
        if let (Some(total), Some(started)) = (&self.write_wait, started) {
            let waited = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            total.fetch_add(waited, Ordering::Relaxed);
        }
        result
    }

    /// How long the session's writes have taken, all together: from each call until the
    /// instance runs again after the commit (zero unless the session is
    /// [`timed`](Self::timed)).
    pub fn write_wait(&self) -> std::time::Duration {
        let nanos = self
            .write_wait
            .as_ref()
            .map_or(0, |total| total.load(Ordering::Relaxed));
        std::time::Duration::from_nanos(nanos)
    }

    /// Makes every later wait for durability fail with `reason`, as a failed sync does.
    #[cfg(test)]
    pub(crate) fn fail_syncs(&self, reason: &str) {
        self.kv
            .commits
            .synced
            .send_modify(|s| s.failed = Some(reason.to_owned()));
    }

    /// Waits until every write this session could have seen is on disk: call it before
    /// anything of the session's is shown outside.
    pub async fn durable(&self) -> KvResult<()> {
        self.kv
            .wait_durable(self.watermark.load(Ordering::SeqCst))
            .await
    }

    /// Whether [`durable`](Self::durable) would not wait.
    pub fn is_durable(&self) -> bool {
        self.kv.is_durable(self.watermark.load(Ordering::SeqCst))
    }

    /// The value of `key` in `store`, if any.
    pub fn get(&self, store: &str, key: &str) -> KvResult<Option<Vec<u8>>> {
        self.after_read(self.kv.get(store, key))
    }

    /// Whether `key` has a value.
    pub fn exists(&self, store: &str, key: &str) -> KvResult<bool> {
        self.after_read(self.kv.exists(store, key))
    }

    /// Every key of `store`, in key order.
    pub fn keys(&self, store: &str) -> KvResult<Vec<String>> {
        self.after_read(self.kv.read(|c| {
            c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key")?
                .query_map(params![store], |r| r.get(0))?
                .collect()
        }))
    }

    /// Sets `key` to `value`, replacing any previous value.
    pub async fn set(&self, store: &str, key: &str, value: Vec<u8>) -> KvResult<()> {
        let key = key.to_owned();
        self.write(store, Write::Set { key, value }).await.map(drop)
    }

    /// Deletes `key`; deleting a missing key is not an error.
    pub async fn delete(&self, store: &str, key: &str) -> KvResult<()> {
        let key = key.to_owned();
        self.write(store, Write::Delete { key }).await.map(drop)
    }

    /// Sets several keys, all or none.
    pub async fn set_many(&self, store: &str, entries: Vec<(String, Vec<u8>)>) -> KvResult<()> {
        self.write(store, Write::SetMany { entries })
            .await
            .map(drop)
    }

    /// Deletes several keys, all or none.
    pub async fn delete_many(&self, store: &str, keys: Vec<String>) -> KvResult<()> {
        self.write(store, Write::DeleteMany { keys })
            .await
            .map(drop)
    }

    /// Adds `delta` to the 64-bit integer at `key` (absent counts as 0) and returns the result.
    ///
    /// The value is stored as 8 little-endian bytes, the encoding Spin uses, so counters are
    /// interchangeable between the two hosts.
    pub async fn increment(&self, store: &str, key: &str, delta: i64) -> KvResult<i64> {
        let key = key.to_owned();
        match self.write(store, Write::Increment { key, delta }).await? {
            Written::Counter(n) => Ok(n),
            _ => Err(KvError("increment answered without a value".into())),
        }
    }

    /// Replaces the value of `key` with `new` only if it is still `expected`
    /// (`None`: only if the key is still absent). Returns whether it was replaced.
    pub async fn compare_and_swap(
        &self,
        store: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> KvResult<bool> {
        let key = key.to_owned();
        let write = Write::CompareAndSwap { key, expected, new };
        match self.write(store, write).await? {
            Written::Swapped(swapped) => Ok(swapped),
            _ => Err(KvError(
                "compare-and-swap answered without an outcome".into(),
            )),
        }
    }
}

impl Drop for SqliteKv {
    fn drop(&mut self) {
        // No write is under way (this is the last owner). The writing connection closes, and
        // the syncer syncs what is left and stops.
        self.writer = None;
        lock(&self.commits.wake).take();
        if let Some(thread) = self.syncer.take() {
            let _ = thread.join();
        }
    }
}

/// The write-ahead log of the database at `db`.
fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// The syncer thread: whenever a session waits for a commit that is not on disk yet, syncs
/// the log once for every commit finished so far and publishes how far it is on disk. Syncs
/// happen only when someone waits, and one covers all who waited meanwhile. When the store
/// closes, it syncs what is left and stops.
fn sync_loop(wal: &Path, db: &Path, commits: &Commits, wakes: &mpsc::Receiver<()>) {
    let mut log: Option<File> = None;
    loop {
        let closing = wakes.recv().is_err();
        while wakes.try_recv().is_ok() {}
        let through = commits.finished.load(Ordering::SeqCst);
        if through > commits.synced_through() {
            sync_and_publish(&mut log, wal, db, commits, through);
        }
        if closing {
            return;
        }
    }
}

/// Syncs the log, covering every commit up to `through`, and publishes the outcome.
fn sync_and_publish(
    log: &mut Option<File>,
    wal: &Path,
    db: &Path,
    commits: &Commits,
    through: u64,
) {
    let started = std::time::Instant::now();
    let synced = sync_log(log, wal, db);
    let took = started.elapsed();
    if took > SLOW_COMMIT {
        // Storage stalls show up here first (every write since the last sync waits).
        tracing::warn!("key-value sync took {took:?}");
    }
    match synced {
        // After a failed sync, later ones prove nothing (the kernel may have dropped the
        // pages that failed): nothing more is confirmed.
        Ok(()) => {
            commits.synced.send_modify(|s| {
                if s.failed.is_none() {
                    s.through = s.through.max(through);
                }
            });
        }
        Err(e) => {
            tracing::error!("key-value store: syncing {} failed: {e}", wal.display());
            commits
                .synced
                .send_modify(|s| s.failed = Some(format!("syncing the log failed: {e}")));
        }
    }
}

/// `fdatasync` of the write-ahead log (opened once). Before the log exists (no commit has
/// written anything yet) the database file itself is synced.
fn sync_log(log: &mut Option<File>, wal: &Path, db: &Path) -> std::io::Result<()> {
    if log.is_none() {
        match File::options().read(true).write(true).open(wal) {
            Ok(file) => *log = Some(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return File::options().read(true).write(true).open(db)?.sync_data();
            }
            Err(e) => return Err(e),
        }
    }
    match log {
        Some(file) => file.sync_data(),
        None => Ok(()),
    }
}

/// A group commit or a sync slower than this is logged.
const SLOW_COMMIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Runs one statement without parameters, prepared once per connection.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Applies `group` in one transaction and commits it. Its keys leave `cache` before the
/// commit and may come back only after it, from reads begun after it: no read finds a value
/// in the cache that the file has already replaced, and none caches a value older than the
/// commit (see [`ReadCache::generation`] and [`ReadCache::pending`]).
fn commit_group(
    conn: &Connection,
    group: &[Job],
    cache: &Mutex<ReadCache>,
) -> Vec<KvResult<Written>> {
    if !conn.is_autocommit() {
        // Left open by a leader that panicked mid-commit: nothing of it was answered.
        let _ = run(conn, "ROLLBACK");
    }
    if let Err(e) = run(conn, "BEGIN IMMEDIATE") {
        let err = KvError::from(e);
        return group.iter().map(|_| Err(err.clone())).collect();
    }
    let outcomes: Vec<KvResult<Written>> = match group {
        // A lone write needs no savepoint: if it fails, the whole transaction is undone.
        [job] => match apply(conn, &job.store, &job.write) {
            Ok(written) => vec![Ok(written)],
            Err(e) => {
                let _ = run(conn, "ROLLBACK");
                return vec![Err(e)];
            }
        },
        _ => group
            .iter()
            .map(|job| apply_alone(conn, &job.store, &job.write))
            .collect(),
    };
    {
        let mut cache = lock(cache);
        for job in group {
            cache.begin_commit(&job.store, &job.write);
        }
    }
    // Outside the cache's lock: reads of other keys go on, even when this commit
    // checkpoints the log.
    let committed = run(conn, "COMMIT");
    lock(cache).end_commit();
    match committed {
        Ok(()) => outcomes,
        Err(e) => {
            let _ = run(conn, "ROLLBACK");
            let err = KvError::from(e);
            group.iter().map(|_| Err(err.clone())).collect()
        }
    }
}

/// Applies one write inside the group's transaction, undoing it alone if it fails.
fn apply_alone(conn: &Connection, store: &str, write: &Write) -> KvResult<Written> {
    run(conn, "SAVEPOINT one_write")?;
    match apply(conn, store, write) {
        Ok(written) => {
            run(conn, "RELEASE one_write")?;
            Ok(written)
        }
        Err(e) => {
            run(conn, "ROLLBACK TO one_write")?;
            run(conn, "RELEASE one_write")?;
            Err(e)
        }
    }
}

fn apply(conn: &Connection, store: &str, write: &Write) -> KvResult<Written> {
    match write {
        Write::Set { key, value } => {
            conn.prepare_cached(UPSERT)?
                .execute(params![store, key, value])?;
            Ok(Written::Done)
        }
        Write::Delete { key } => {
            conn.prepare_cached(DELETE)?.execute(params![store, key])?;
            Ok(Written::Done)
        }
        Write::SetMany { entries } => {
            let mut stmt = conn.prepare_cached(UPSERT)?;
            for (key, value) in entries {
                stmt.execute(params![store, key, value])?;
            }
            Ok(Written::Done)
        }
        Write::DeleteMany { keys } => {
            let mut stmt = conn.prepare_cached(DELETE)?;
            for key in keys {
                stmt.execute(params![store, key])?;
            }
            Ok(Written::Done)
        }
        Write::Increment { key, delta } => {
            let current: Option<Vec<u8>> = conn
                .prepare_cached(SELECT_VALUE)?
                .query_row(params![store, key], |r| r.get(0))
                .optional()?;
            let current = match current {
                None => 0,
                Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
                    Ok(b) => i64::from_le_bytes(b),
                    Err(_) => {
                        return Err(KvError(format!(
                            "value of {key:?} is not a 64-bit integer ({} bytes)",
                            bytes.len()
                        )));
                    }
                },
            };
            let next = current
                .checked_add(*delta)
                .ok_or_else(|| KvError(format!("incrementing {key:?} overflows")))?;
            conn.prepare_cached(UPSERT)?.execute(params![
                store,
                key,
                next.to_le_bytes().as_slice()
            ])?;
            Ok(Written::Counter(next))
        }
        Write::CompareAndSwap { key, expected, new } => {
            let changed = match expected {
                Some(old) => conn
                    .prepare_cached(
                        "UPDATE spin_key_value SET value = ?4
                         WHERE store = ?1 AND key = ?2 AND value = ?3",
                    )?
                    .execute(params![store, key, old, new])?,
                None => conn
                    .prepare_cached(
                        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT (store, key) DO NOTHING",
                    )?
                    .execute(params![store, key, new])?,
            };
            Ok(Written::Swapped(changed == 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session on a new database in a temporary directory.
    fn session() -> anyhow::Result<KvSession> {
        Ok(KvSession::new(Arc::new(SqliteKv::in_memory()?)))
    }

    fn watermark(session: &KvSession) -> u64 {
        session.watermark.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn stores_are_separate_namespaces() -> anyhow::Result<()> {
        let kv = session()?;
        kv.set("a", "k", b"1".to_vec()).await?;
        kv.set("b", "k", b"2".to_vec()).await?;
        assert_eq!(kv.get("a", "k")?.as_deref(), Some(&b"1"[..]));
        assert_eq!(kv.get("b", "k")?.as_deref(), Some(&b"2"[..]));
        kv.delete("a", "k").await?;
        assert!(!kv.exists("a", "k")?);
        assert!(kv.exists("b", "k")?);
        Ok(())
    }

    #[tokio::test]
    async fn compare_and_swap_from_absent_succeeds_once() -> anyhow::Result<()> {
        let kv = session()?;
        assert!(kv.compare_and_swap("s", "k", None, b"x".to_vec()).await?);
        assert!(!kv.compare_and_swap("s", "k", None, b"y".to_vec()).await?);
        let y = Some(b"y".to_vec());
        assert!(!kv.compare_and_swap("s", "k", y, b"z".to_vec()).await?);
        let x = Some(b"x".to_vec());
        assert!(kv.compare_and_swap("s", "k", x, b"z".to_vec()).await?);
        assert_eq!(kv.get("s", "k")?.as_deref(), Some(&b"z"[..]));
        Ok(())
    }

    #[tokio::test]
    async fn increment_uses_little_endian_i64_and_rejects_other_values() -> anyhow::Result<()> {
        let kv = session()?;
        assert_eq!(kv.increment("s", "n", 5).await?, 5);
        assert_eq!(kv.increment("s", "n", -2).await?, 3);
        assert_eq!(kv.get("s", "n")?, Some(3i64.to_le_bytes().to_vec()));
        kv.set("s", "text", b"hello".to_vec()).await?;
        let err = kv.increment("s", "text", 1).await.unwrap_err();
        assert!(err.to_string().contains("not a 64-bit integer"), "{err}");
        Ok(())
    }

    #[tokio::test]
    async fn data_survives_reopening_the_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let first = KvSession::new(Arc::new(SqliteKv::open_in(dir.path())?));
        first.set("default", "k", b"v".to_vec()).await?;
        first.durable().await?;
        drop(first);
        let kv = KvSession::new(Arc::new(SqliteKv::open_in(dir.path())?));
        assert_eq!(kv.get("default", "k")?.as_deref(), Some(&b"v"[..]));
        Ok(())
    }

    /// Many concurrent writers: increments grouped into shared commits lose nothing, a failing
    /// write in a group fails alone, and every answered write is visible to reads.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn grouped_writes_are_atomic_and_fail_alone() -> anyhow::Result<()> {
        let kv = session()?;
        kv.set("s", "text", b"not a number".to_vec()).await?;
        let mut tasks = Vec::new();
        for i in 0..200 {
            let kv = kv.clone();
            tasks.push(tokio::spawn(async move {
                let n = kv.increment("s", "n", 1).await?;
                if i % 10 == 0 {
                    assert!(kv.increment("s", "text", 1).await.is_err());
                }
                kv.set("s", &format!("k{i}"), n.to_le_bytes().to_vec())
                    .await?;
                assert!(kv.exists("s", &format!("k{i}"))?);
                Ok::<i64, KvError>(n)
            }));
        }
        let mut seen = Vec::new();
        for task in tasks {
            seen.push(task.await??);
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=200).collect::<Vec<i64>>());
        assert_eq!(kv.keys("s")?.len(), 202);
        Ok(())
    }

    /// A session's watermark covers its own writes and whatever its reads could see; waiting
    /// for it ends once the syncer has synced that far, and a session that used nothing
    /// never waits.
    #[tokio::test]
    async fn sessions_wait_for_the_sync_of_what_they_saw() -> anyhow::Result<()> {
        let writer = session()?;
        let reader = KvSession::new(writer.kv.clone());
        let idle = KvSession::new(writer.kv.clone());
        assert_eq!(watermark(&idle), 0);
        assert!(idle.is_durable());
        idle.durable().await?;

        writer.set("s", "k", b"v".to_vec()).await?;
        let written = watermark(&writer);
        assert!(written >= 1, "a write's commit is numbered");
        assert_eq!(reader.get("s", "k")?.as_deref(), Some(&b"v"[..]));
        assert!(
            watermark(&reader) >= written,
            "a read covers the commits it could see"
        );

        reader.durable().await?;
        assert!(reader.is_durable());
        assert!(
            writer.is_durable(),
            "the same sync covers the writer's commit"
        );
        assert!(writer.kv.commits.synced.borrow().through >= written);
        Ok(())
    }

    /// Many commits while one sync is slow are covered by the next sync: every session's wait
    /// ends, and the synced number never goes back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_sessions_all_become_durable() -> anyhow::Result<()> {
        let kv = Arc::new(SqliteKv::in_memory()?);
        let mut tasks = Vec::new();
        for i in 0..100 {
            let session = KvSession::new(kv.clone());
            tasks.push(tokio::spawn(async move {
                session.increment("s", "n", 1).await?;
                session.set("s", &format!("k{i}"), vec![1]).await?;
                session.durable().await?;
                Ok::<u64, KvError>(watermark(&session))
            }));
        }
        let mut highest = 0;
        for task in tasks {
            highest = highest.max(task.await??);
        }
        assert!(kv.commits.synced.borrow().through >= highest);
        assert_eq!(kv.begun(), highest.max(kv.begun()));
        Ok(())
    }

    /// Once a sync has failed, nothing more is confirmed: waits fail with the reason (the
    /// request is answered with an error), while what was synced before stays confirmed.
    #[tokio::test]
    async fn a_failed_sync_confirms_nothing_after_it() -> anyhow::Result<()> {
        let before = session()?;
        before.set("s", "a", vec![1]).await?;
        before.durable().await?;
        before
            .kv
            .commits
            .synced
            .send_modify(|s| s.failed = Some("injected".into()));
        let after = KvSession::new(before.kv.clone());
        after.set("s", "b", vec![2]).await?;
        let err = after.durable().await.unwrap_err();
        assert!(err.to_string().contains("injected"), "{err}");
        before.durable().await?;
        Ok(())
    }

    /// Only a timed session keeps how long its writes took.
    #[tokio::test]
    async fn only_timed_sessions_keep_their_write_time() -> anyhow::Result<()> {
        let kv = Arc::new(SqliteKv::in_memory()?);
        let plain = KvSession::new(kv.clone());
        let timed = KvSession::timed(kv);
        plain.set("s", "a", vec![1]).await?;
        timed.set("s", "b", vec![2]).await?;
        assert_eq!(plain.write_wait(), std::time::Duration::ZERO);
        assert!(timed.write_wait() > std::time::Duration::ZERO);
        Ok(())
    }

    /// What the file holds for `key`, read past the cache with a connection of its own.
    fn in_file(kv: &SqliteKv, store: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let conn = read_connection(&kv.path)?;
        Ok(conn
            .query_row(SELECT_VALUE, params![store, key], |r| r.get(0))
            .optional()?)
    }

    /// Every kind of write drops what the cache held of its keys before it is answered: a read
    /// after each one sees the new value (or the absence), as the file does.
    #[tokio::test]
    async fn cached_reads_see_every_write() -> anyhow::Result<()> {
        let kv = session()?;
        let check = |key: &str, expected: Option<&[u8]>| -> anyhow::Result<()> {
            assert_eq!(kv.get("s", key)?.as_deref(), expected, "{key}");
            assert_eq!(kv.exists("s", key)?, expected.is_some(), "{key}");
            assert_eq!(in_file(&kv.kv, "s", key)?.as_deref(), expected, "{key}");
            Ok(())
        };
        // Absence is cached too, and a write replaces it.
        check("a", None)?;
        kv.set("s", "a", b"1".to_vec()).await?;
        check("a", Some(b"1"))?;
        kv.set("s", "a", b"2".to_vec()).await?;
        check("a", Some(b"2"))?;
        kv.delete("s", "a").await?;
        check("a", None)?;

        check("n", None)?;
        kv.increment("s", "n", 7).await?;
        check("n", Some(&7i64.to_le_bytes()))?;

        check("c", None)?;
        assert!(kv.compare_and_swap("s", "c", None, b"x".to_vec()).await?);
        check("c", Some(b"x"))?;
        let stale = Some(b"nope".to_vec());
        assert!(!kv.compare_and_swap("s", "c", stale, b"y".to_vec()).await?);
        check("c", Some(b"x"))?;

        check("m1", None)?;
        check("m2", None)?;
        let entries = vec![("m1".into(), b"a".to_vec()), ("m2".into(), b"b".to_vec())];
        kv.set_many("s", entries).await?;
        check("m1", Some(b"a"))?;
        check("m2", Some(b"b"))?;
        kv.delete_many("s", vec!["m1".into(), "m2".into()]).await?;
        check("m1", None)?;
        check("m2", None)?;

        // A failed write changes nothing, in the file or in what reads see.
        kv.set("s", "t", b"text".to_vec()).await?;
        check("t", Some(b"text"))?;
        assert!(kv.increment("s", "t", 1).await.is_err());
        check("t", Some(b"text"))?;
        // Another store's key of the same name is another value.
        assert_eq!(kv.get("other", "t")?, None);
        Ok(())
    }

    /// Readers racing writers through the cache never see a value go back, and once the last
    /// write is answered every read sees it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn cached_reads_never_go_back_under_concurrent_writes() -> anyhow::Result<()> {
        const WRITES: i64 = 300;
        let kv = session()?;
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut readers = Vec::new();
        for _ in 0..4 {
            let (kv, done) = (kv.clone(), done.clone());
            readers.push(tokio::spawn(async move {
                let mut last = 0;
                let mut reads = 0;
                while !done.load(Ordering::SeqCst) {
                    let value = match kv.get("s", "n")? {
                        Some(bytes) => i64::from_le_bytes(bytes.as_slice().try_into().unwrap()),
                        None => 0,
                    };
                    assert!(value >= last, "read {value} after {last}");
                    last = value;
                    reads += 1;
                    tokio::task::yield_now().await;
                }
                Ok::<u64, KvError>(reads)
            }));
        }
        let mut writers = Vec::new();
        for _ in 0..3 {
            let kv = kv.clone();
            writers.push(tokio::spawn(async move {
                for _ in 0..WRITES / 3 {
                    let n = kv.increment("s", "n", 1).await?;
                    let seen = kv.get("s", "n")?.expect("written");
                    let seen = i64::from_le_bytes(seen.as_slice().try_into().unwrap());
                    assert!(seen >= n, "a writer reads {seen} after writing {n}");
                }
                Ok::<(), KvError>(())
            }));
        }
        for writer in writers {
            writer.await??;
        }
        done.store(true, Ordering::SeqCst);
        for reader in readers {
            assert!(reader.await?? > 0);
        }
        assert_eq!(kv.get("s", "n")?, Some(WRITES.to_le_bytes().to_vec()));
        assert_eq!(
            in_file(&kv.kv, "s", "n")?,
            Some(WRITES.to_le_bytes().to_vec())
        );
        Ok(())
    }

    /// The cache keeps to its size: past [`MAX_CACHED_BYTES`] it starts over, and values too
    /// large are read from the file every time.
    #[test]
    fn the_cache_keeps_to_its_size() {
        let mut cache = ReadCache::default();
        let value = Some(vec![0u8; 60 << 10]);
        for i in 0..1000 {
            cache.insert(0, "s", &format!("k{i}"), &value);
            assert!(cache.bytes <= MAX_CACHED_BYTES);
        }
        assert!(cache.get("s", "k999").is_some());
        assert!(cache.get("s", "k0").is_none(), "the cache started over");
        cache.insert(0, "s", "big", &Some(vec![0u8; MAX_CACHED_VALUE]));
        assert!(cache.get("s", "big").is_none());
        // A value read before a commit dropped keys is not cached: it may be older than it.
        let generation = cache.generation;
        cache.begin_commit("s", &Write::Delete { key: "x".into() });
        cache.insert(generation, "s", "y", &Some(vec![1]));
        assert!(cache.get("s", "y").is_none());
        // Nor is a key of the commit under way, even when read in its generation; once the
        // commit has ended, a new read caches it.
        cache.insert(cache.generation, "s", "x", &Some(vec![2]));
        assert!(cache.get("s", "x").is_none());
        cache.end_commit();
        cache.insert(cache.generation, "s", "x", &Some(vec![2]));
        assert_eq!(cache.get("s", "x"), Some(&Some(vec![2])));
    }

    /// The log is synced only when someone waits: commits nobody waits for cost no sync.
    #[tokio::test]
    async fn nothing_is_synced_until_someone_waits() -> anyhow::Result<()> {
        let kv = session()?;
        for i in 0..20 {
            kv.set("s", &format!("k{i}"), vec![1]).await?;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(kv.kv.commits.synced.borrow().through, 0);
        kv.durable().await?;
        assert!(kv.kv.commits.synced.borrow().through >= watermark(&kv));
        Ok(())
    }

    #[test]
    fn syncing_a_log_that_cannot_be_opened_fails() {
        let missing = Path::new("/nonexistent-eventplane-dir/db");
        assert!(sync_log(&mut None, &wal_path(missing), missing).is_err());
    }
}
