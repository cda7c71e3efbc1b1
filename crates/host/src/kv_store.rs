//! The SQLite file behind every key-value store, laid out as Spin lays it out.
//!
//! Spin keeps all stores of an application in one table, `spin_key_value(store, key, value)`,
//! in `<state-dir>/sqlite_key_value.db`. Using the same file and schema means a state directory
//! written by `eventplane up` can be read by `spin up`, and the reverse.
//!
//! ## Writes: applied in memory, committed together when someone needs them durable
//!
//! Every write (set, delete, the batch writes, increment, compare-and-swap) is applied, one at
//! a time, to the *unwritten* values held in memory: each key's latest value not yet in the
//! file, and the number of the write that made it (writes are numbered from 1). The write is
//! answered at once; every later read, by any instance, sees it. Writes are applied one after
//! another, so compare-and-swap and increment are atomic across concurrent requests, as on
//! Spin. A write that fails on its own (an increment of a non-integer) changes nothing and
//! fails alone.
//!
//! The values reach the file in *commits*, made by the syncer thread when a session waits for
//! durability (below). A commit takes everything unwritten at one moment (a consistent cut:
//! all writes up to some number, none after) and applies it to the file in one transaction on
//! the one writing connection; committed values leave the unwritten ones and go to the read
//! cache. So one transaction carries the writes of every request that waited meanwhile, a key
//! written several times between two commits is written to the file once, and no request
//! thread ever waits for a commit, or for a checkpoint inside one.
//!
//! ## Durable before anyone outside sees it
//!
//! On Spin a write returns once it is on disk. Here a write returns once it is applied in
//! memory, and the syncer thread makes it durable when an instance needs it: it commits, then
//! syncs the write-ahead log (`fdatasync`) once for every commit finished so far, serving
//! everyone who waited meanwhile. What a component instance does is held back until
//! every write it could have seen is committed and on disk ([`KvSession::durable`]):
//! - its HTTP response, head and each body frame;
//! - each outbound HTTP request it sends (service-chained ones included).
//!
//! So nothing leaves the process, and no other instance acts on anything, that a crash could
//! still take back: a 2xx still means the data is on disk. What a crash loses is only writes
//! nobody outside has seen the effect of, which is the same as the crash coming earlier. A
//! commit is a consistent cut and the log is synced in commit order, so a crash keeps the
//! writes up to some number and none after. Writes nobody waits for are committed and synced
//! by the syncer after at most [`IDLE_FLUSH`], and when the store closes.
//!
//! An instance's *watermark* is the number of the latest write it could have seen: each of its
//! own writes, each unwritten value it read, and for each value read from the cache or the file
//! the writes covered by the latest commit begun when the read ended. If a commit or a sync
//! fails, the store stops: every later write and every wait for durability fails with the
//! reason (the request is answered `503`), and the host must be restarted once the disk is
//! mended. Nothing is lost that was confirmed.
//!
//! Unwritten values take memory: past [`MAX_UNWRITTEN_BYTES`] a write first commits (or waits
//! for the commit under way).
//!
//! Checkpoints stay SQLite's own (by the commit that reaches [`CHECKPOINT_PAGES`] of log, so
//! on the syncer thread: a checkpoint delays that round's durability by a millisecond or
//! two). A checkpointer thread beside the writer was measured: more throughput, but
//! its syncs of the database file stalled the log's syncs behind them, and the slowest
//! publishes got slower.
//!
//! ## Reads: unwritten values, then a cache, then their own connections
//!
//! A read finds a key's unwritten value first. Otherwise it looks in the cache of committed
//! values ([`ReadCache`], at most [`MAX_CACHED_BYTES`]): every write goes through this
//! process, and a committed value reaches the cache only from the commit itself or from a read
//! no commit finished during, so a cached value is always the latest committed one. (Other
//! processes may read the file meanwhile, and see what is committed, as Spin allows; a second
//! process writing the same state directory at the same time is not supported.)
//!
//! A value in neither is read with one of a small pool of read connections. The database is
//! in WAL mode, so a read never waits for the writer.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::watch;

/// The file name Spin uses for its default key-value store.
pub const DB_FILE_NAME: &str = "sqlite_key_value.db";

/// The most bytes of unwritten values (with their keys) held in memory; a write past it first
/// commits.
pub const MAX_UNWRITTEN_BYTES: usize = 64 << 20;

/// How long writes nobody waits for stay unwritten, at most (then the syncer commits and
/// syncs them).
pub const IDLE_FLUSH: std::time::Duration = std::time::Duration::from_millis(200);

/// The most bytes of values (with their keys) the read cache holds; past it, it starts over.
pub const MAX_CACHED_BYTES: usize = 32 << 20;

/// Values larger than this are not cached.
const MAX_CACHED_VALUE: usize = 64 << 10;

/// What a cached or unwritten entry costs beyond its key and value bytes.
const ENTRY_OVERHEAD: usize = 64;

/// How many pages of log make a commit checkpoint (SQLite's default is 1,000). A checkpoint
/// holds up its durability round: at concurrency 16 on the gateway, 250 pages cut the slowest
/// rounds (durability p99 about 4 ms instead of 6.5) at the same throughput.
const CHECKPOINT_PAGES: i64 = 250;

/// The most idle read connections kept open for reuse.
const MAX_IDLE_READERS: usize = 16;

/// An error from a key-value store, reported to guests as `other(<message>)`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct KvError(String);

impl KvError {
    /// An error with `message`, as the guest will see it.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

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

/// A stored value, shared between the unwritten values, the commit that writes it and the
/// cache.
type Value = Arc<[u8]>;

/// One write, as the store applies it.
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

/// How far the log is on disk, as the syncer publishes it.
#[derive(Debug, Clone, Default)]
struct Synced {
    /// Every write numbered up to this is on disk.
    through: u64,
    /// Why committing or syncing failed, once it has: nothing more is confirmed.
    failed: Option<String>,
}

/// The write numbers shared by writers, the syncer and the sessions.
struct Commits {
    /// The number of the latest write applied.
    written: AtomicU64,
    /// The writes the latest commit begun covers (every one numbered up to this).
    begun: AtomicU64,
    /// The writes the latest finished commit covers: they are in the log file, and a sync now
    /// covers them.
    finished: AtomicU64,
    /// Wakes the syncer when someone waits for what is not on disk yet.
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

    /// Why the store has stopped, if it has.
    fn failure(&self) -> Option<String> {
        self.synced.borrow().failed.clone()
    }

    /// Stops the store: nothing more is confirmed, and later writes fail.
    fn fail(&self, reason: String) {
        self.synced.send_modify(|s| {
            s.failed.get_or_insert(reason);
        });
    }
}

/// A key's latest value not yet in the file (`None`: deleted), and the number of the write
/// that made it.
struct Unwritten {
    value: Option<Value>,
    number: u64,
}

/// What reads and writes share in memory: the unwritten values and the cache of committed
/// ones.
#[derive(Default)]
struct Memory {
    unwritten: HashMap<String, HashMap<String, Unwritten>>,
    unwritten_bytes: usize,
    cache: ReadCache,
}

impl Memory {
    /// The key's latest value if memory knows it: unwritten (with the write's number) or
    /// cached (number `None`).
    fn lookup(&self, store: &str, key: &str) -> Option<(Option<Value>, Option<u64>)> {
        if let Some(entry) = self.unwritten.get(store).and_then(|keys| keys.get(key)) {
            return Some((entry.value.clone(), Some(entry.number)));
        }
        self.cache
            .get(store, key)
            .map(|value| (value.clone(), None))
    }

    fn is_unwritten(&self, store: &str, key: &str) -> bool {
        self.unwritten
            .get(store)
            .is_some_and(|keys| keys.contains_key(key))
    }

    /// Records `value` as `key`'s latest, made by write `number`.
    fn put(&mut self, store: &str, key: String, value: Option<Value>, number: u64) {
        let key_len = key.len();
        self.unwritten_bytes += key_len + value_len(value.as_ref()) + ENTRY_OVERHEAD;
        let keys = match self.unwritten.get_mut(store) {
            Some(keys) => keys,
            None => self.unwritten.entry(store.to_owned()).or_default(),
        };
        if let Some(old) = keys.insert(key, Unwritten { value, number }) {
            self.unwritten_bytes -= key_len + value_len(old.value.as_ref()) + ENTRY_OVERHEAD;
        }
    }

    /// After a commit: `key` leaves the unwritten values (unless written again since the
    /// commit took it) and its committed value goes to the cache.
    fn committed(&mut self, store: &str, key: &str, value: Option<Value>, number: u64) {
        if let Some(keys) = self.unwritten.get_mut(store)
            && keys.get(key).is_some_and(|entry| entry.number == number)
        {
            keys.remove(key);
            self.unwritten_bytes -= entry_size(key, value.as_ref());
        }
        self.cache.put(store, key, value);
    }
}

fn value_len(value: Option<&Value>) -> usize {
    value.map_or(0, |v| v.len())
}

fn entry_size(key: &str, value: Option<&Value>) -> usize {
    key.len() + value_len(value) + ENTRY_OVERHEAD
}
/// Committed values recently read or written, by store and key; `None` caches a key's absence
/// (module docs, "Reads").
#[derive(Default)]
struct ReadCache {
    stores: HashMap<String, HashMap<String, Option<Value>>>,
    bytes: usize,
    /// Changes with every commit: a value read from the file is cached only if no commit
    /// finished since the read began (the value could be older than that commit's).
    generation: u64,
}

impl ReadCache {
    fn get(&self, store: &str, key: &str) -> Option<&Option<Value>> {
        self.stores.get(store)?.get(key)
    }

    /// Caches what a read begun in `generation` found of `key`, unless a commit finished
    /// since.
    fn insert(&mut self, generation: u64, store: &str, key: &str, value: Option<Value>) {
        if generation == self.generation {
            self.put(store, key, value);
        }
    }

    /// Caches `key`'s committed value (too large a value is dropped instead).
    fn put(&mut self, store: &str, key: &str, value: Option<Value>) {
        let size = entry_size(key, value.as_ref());
        let keys = match self.stores.get_mut(store) {
            Some(keys) => keys,
            None => self.stores.entry(store.to_owned()).or_default(),
        };
        if let Some(old) = keys.remove(key) {
            self.bytes -= entry_size(key, old.as_ref());
        }
        if size > MAX_CACHED_VALUE {
            return;
        }
        if self.bytes + size > MAX_CACHED_BYTES {
            self.stores.clear();
            self.bytes = 0;
        }
        self.stores
            .entry(store.to_owned())
            .or_default()
            .insert(key.to_owned(), value);
        self.bytes += size;
    }
}

/// Locks `mutex`; a panic while it was held leaves nothing half-done in what these guard.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Everything the store's users and its syncer thread share.
struct Inner {
    path: PathBuf,
    /// The one writing connection, held by whoever commits (the syncer, mostly).
    conn: Mutex<Connection>,
    /// Held while a write is applied: writes are applied one at a time, each seeing the one
    /// before.
    applying: Mutex<()>,
    memory: Mutex<Memory>,
    commits: Commits,
    readers: Mutex<Vec<Connection>>,
}

/// The application's key-value data: all stores in one SQLite file.
pub struct SqliteKv {
    inner: Arc<Inner>,
    syncer: Option<std::thread::JoinHandle<()>>,
    /// Keeps a temporary database's directory alive as long as the store.
    _temp: Option<tempfile::TempDir>,
}

fn writer_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // WAL keeps readers and the writer out of each other's way. A commit does not sync: the
    // syncer thread does, behind it, and nothing is shown outside before (module docs).
    // Checkpoints still sync the log before and the database after.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES)?;
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
    /// Opens (creating if needed) the database file inside `state_dir`, and starts its syncer.
    pub fn open_in(state_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(state_dir).map_err(|e| {
            anyhow::anyhow!("cannot create state directory {}: {e}", state_dir.display())
        })?;
        Self::open_file(&state_dir.join(DB_FILE_NAME))
    }

    /// Opens (creating if needed) the database file at `path`, whose directory exists, and
    /// starts its syncer.
    pub fn open_file(path: &Path) -> anyhow::Result<Self> {
        let path = path.to_path_buf();
        let conn = writer_connection(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        let (wake, wakes) = mpsc::channel();
        let inner = Arc::new(Inner {
            path,
            conn: Mutex::new(conn),
            applying: Mutex::new(()),
            memory: Mutex::default(),
            commits: Commits {
                written: AtomicU64::new(0),
                begun: AtomicU64::new(0),
                finished: AtomicU64::new(0),
                wake: Mutex::new(Some(wake)),
                synced: watch::Sender::new(Synced::default()),
            },
            readers: Mutex::new(Vec::new()),
        });
        let syncer_inner = inner.clone();
        let syncer = std::thread::Builder::new()
            .name("kv-syncer".into())
            .spawn(move || sync_loop(&syncer_inner, &wakes))?;
        Ok(Self {
            inner,
            syncer: Some(syncer),
            _temp: None,
        })
    }

    /// A database in a temporary directory removed with the store: what Spin keeps in memory
    /// (a `spin` store without a `path`), and the tests' stores.
    pub fn temporary() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("eventplane-kv-")
            .tempdir()
            .map_err(|e| anyhow::anyhow!("cannot create a temporary directory: {e}"))?;
        let mut kv = Self::open_in(dir.path())?;
        kv._temp = Some(dir);
        Ok(kv)
    }

    /// A temporary database, for tests.
    #[cfg(test)]
    pub fn in_memory() -> anyhow::Result<Self> {
        Self::temporary()
    }
}

impl Inner {
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

    /// The latest value of `key` in `store` (`None`: absent), from memory or else from the
    /// file (then cached), and the number of the latest write the value could come from.
    fn get(&self, store: &str, key: &str) -> KvResult<(Option<Value>, u64)> {
        let generation = {
            let memory = lock(&self.memory);
            match memory.lookup(store, key) {
                Some((value, Some(number))) => return Ok((value, number)),
                // Cached values come from finished commits (module docs, "Reads").
                Some((value, None)) => {
                    return Ok((value, self.commits.finished.load(Ordering::SeqCst)));
                }
                None => memory.cache.generation,
            }
        };
        let value: Option<Vec<u8>> = self.read(|c| {
            c.prepare_cached(SELECT_VALUE)?
                .query_row(params![store, key], |r| r.get(0))
                .optional()
        })?;
        // Read after the value: a commit the read saw had begun by then.
        let seen = self.commits.begun.load(Ordering::SeqCst);
        let value: Option<Value> = value.map(Value::from);
        let mut memory = lock(&self.memory);
        // Written meanwhile: the read stays valid (the value was the latest when the read
        // began), but the cache must not take it.
        if !memory.is_unwritten(store, key) {
            memory.cache.insert(generation, store, key, value.clone());
        }
        Ok((value, seen))
    }

    /// Every key of `store` with a value, in key order, and the number of the latest write
    /// the list could reflect. Holds the writing connection, so that no commit changes the
    /// file between looking at the unwritten values and reading it.
    fn keys(&self, store: &str) -> KvResult<(Vec<String>, u64)> {
        let conn = lock(&self.conn);
        let (changes, seen): (Vec<(String, bool)>, u64) = {
            let memory = lock(&self.memory);
            let changes = memory.unwritten.get(store).map_or_else(Vec::new, |keys| {
                keys.iter()
                    .map(|(key, entry)| (key.clone(), entry.value.is_some()))
                    .collect()
            });
            (changes, self.commits.written.load(Ordering::SeqCst))
        };
        let mut keys: BTreeSet<String> = conn
            .prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?
            .query_map(params![store], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for (key, present) in changes {
            if present {
                keys.insert(key);
            } else {
                keys.remove(&key);
            }
        }
        Ok((keys.into_iter().collect(), seen))
    }

    /// Applies `write` in memory and answers it, with the number of the latest write its
    /// outcome could reflect (module docs, "Writes").
    fn write(&self, store: &str, write: Write) -> (KvResult<Written>, u64) {
        if let Some(reason) = self.commits.failure() {
            return (Err(stopped(&reason)), 0);
        }
        let _applying = lock(&self.applying);
        // Whatever the write reads: nobody else changes it until it is applied.
        let (changes, outcome, seen) = match write {
            Write::Set { key, value } => (vec![(key, Some(value))], Written::Done, 0),
            Write::Delete { key } => (vec![(key, None)], Written::Done, 0),
            Write::SetMany { entries } => (
                entries.into_iter().map(|(k, v)| (k, Some(v))).collect(),
                Written::Done,
                0,
            ),
            Write::DeleteMany { keys } => (
                keys.into_iter().map(|k| (k, None)).collect(),
                Written::Done,
                0,
            ),
            Write::Increment { key, delta } => {
                let (current, seen) = match self.get(store, &key) {
                    Ok(found) => found,
                    Err(e) => return (Err(e), 0),
                };
                let next = match increment(&key, current.as_deref(), delta) {
                    Ok(next) => next,
                    Err(e) => return (Err(e), seen),
                };
                let value = next.to_le_bytes().to_vec();
                (vec![(key, Some(value))], Written::Counter(next), seen)
            }
            Write::CompareAndSwap { key, expected, new } => {
                let (current, seen) = match self.get(store, &key) {
                    Ok(found) => found,
                    Err(e) => return (Err(e), 0),
                };
                if current.as_deref() != expected.as_deref() {
                    return (Ok(Written::Swapped(false)), seen);
                }
                (vec![(key, Some(new))], Written::Swapped(true), seen)
            }
        };
        let mut memory = lock(&self.memory);
        let number = self.commits.written.load(Ordering::SeqCst) + 1;
        for (key, value) in changes {
            memory.put(store, key, value.map(Value::from), number);
        }
        self.commits.written.store(number, Ordering::SeqCst);
        (Ok(outcome), number.max(seen))
    }

    /// Whether more is unwritten than memory may hold.
    fn too_much_unwritten(&self) -> bool {
        lock(&self.memory).unwritten_bytes > MAX_UNWRITTEN_BYTES
    }

    /// Commits everything applied so far, on the caller's thread (waiting for the writing
    /// connection if the syncer holds it).
    fn commit_everything(&self) {
        let conn = lock(&self.conn);
        if self.commits.written.load(Ordering::SeqCst)
            > self.commits.finished.load(Ordering::SeqCst)
            && self.commits.failure().is_none()
        {
            self.commit(&conn);
        }
    }

    /// One commit: takes everything unwritten, writes it to the file in one transaction, and
    /// moves it to the cache.
    fn commit(&self, conn: &Connection) {
        let commits = &self.commits;
        let (number, changes) = {
            let memory = lock(&self.memory);
            let number = commits.written.load(Ordering::SeqCst);
            // Numbered before the transaction: a read that sees this commit in the file ends
            // after the number is set, so its watermark covers it.
            commits.begun.store(number, Ordering::SeqCst);
            let changes: Vec<(String, String, Option<Value>, u64)> = memory
                .unwritten
                .iter()
                .flat_map(|(store, keys)| {
                    keys.iter().map(|(key, entry)| {
                        (
                            store.clone(),
                            key.clone(),
                            entry.value.clone(),
                            entry.number,
                        )
                    })
                })
                .collect();
            (number, changes)
        };
        let started = std::time::Instant::now();
        if let Err(e) = write_changes(conn, &changes) {
            tracing::error!(
                "key-value store: committing to {} failed: {e}",
                self.path.display()
            );
            commits.fail(format!("committing failed: {e}"));
            return;
        }
        let took = started.elapsed();
        if took > SLOW_COMMIT {
            tracing::warn!("key-value commit of {} values took {took:?}", changes.len());
        }
        commits.finished.store(number, Ordering::SeqCst);
        {
            let mut memory = lock(&self.memory);
            memory.cache.generation += 1;
            for (store, key, value, written) in changes {
                memory.committed(&store, &key, value, written);
            }
        }
    }

    /// Waits until every write numbered up to `number` is committed and on disk.
    async fn wait_durable(&self, number: u64) -> KvResult<()> {
        if number == 0 || self.is_durable(number) {
            return Ok(());
        }
        let commits = &self.commits;
        commits.wake_syncer();
        let mut synced = commits.synced.subscribe();
        let state = synced
            .wait_for(|s| s.through >= number || s.failed.is_some())
            .await
            .map_err(|_| KvError("the key-value store is shut down".into()))?;
        match &state.failed {
            Some(reason) if state.through < number => Err(stopped(reason)),
            _ => Ok(()),
        }
    }

    /// Whether every write numbered up to `number` is on disk already.
    fn is_durable(&self, number: u64) -> bool {
        number <= self.commits.synced_through()
    }
}

/// The error of every write and wait once the store has stopped.
fn stopped(reason: &str) -> KvError {
    KvError(format!(
        "the key-value store cannot make writes durable: {reason}"
    ))
}

/// `current` (a counter's stored bytes, `None`: 0) plus `delta`.
fn increment(key: &str, current: Option<&[u8]>, delta: i64) -> KvResult<i64> {
    let current = match current {
        None => 0,
        Some(bytes) => match <[u8; 8]>::try_from(bytes) {
            Ok(b) => i64::from_le_bytes(b),
            Err(_) => {
                return Err(KvError(format!(
                    "value of {key:?} is not a 64-bit integer ({} bytes)",
                    bytes.len()
                )));
            }
        },
    };
    current
        .checked_add(delta)
        .ok_or_else(|| KvError(format!("incrementing {key:?} overflows")))
}

/// Writes `changes` (store, key, value or `None` to delete) in one transaction.
fn write_changes(
    conn: &Connection,
    changes: &[(String, String, Option<Value>, u64)],
) -> rusqlite::Result<()> {
    if !conn.is_autocommit() {
        // Left open by a commit that panicked: nothing of it was confirmed.
        let _ = run(conn, "ROLLBACK");
    }
    if changes.is_empty() {
        return Ok(());
    }
    run(conn, "BEGIN IMMEDIATE")?;
    let applied = (|| {
        let mut upsert = conn.prepare_cached(UPSERT)?;
        let mut delete = conn.prepare_cached(DELETE)?;
        for (store, key, value, _) in changes {
            match value {
                Some(value) => upsert.execute(params![store, key, &value[..]])?,
                None => delete.execute(params![store, key])?,
            };
        }
        run(conn, "COMMIT")
    })();
    if applied.is_err() {
        let _ = run(conn, "ROLLBACK");
    }
    applied
}

/// One component instance's use of the store: every operation, and the instance's watermark
/// (module docs), which [`durable`](Self::durable) waits for.
#[derive(Clone)]
pub struct KvSession {
    kv: Arc<SqliteKv>,
    watermark: Arc<AtomicU64>,
}

impl KvSession {
    /// A new session (watermark 0: nothing seen) on `kv`.
    pub fn new(kv: Arc<SqliteKv>) -> Self {
        Self {
            kv,
            watermark: Arc::default(),
        }
    }

    fn inner(&self) -> &Inner {
        &self.kv.inner
    }

    fn saw(&self, number: u64) {
        self.watermark.fetch_max(number, Ordering::SeqCst);
    }

    fn after_read<T>(&self, result: KvResult<(T, u64)>) -> KvResult<T> {
        result.map(|(value, seen)| {
            self.saw(seen);
            value
        })
    }

    async fn write(&self, store: &str, write: Write) -> KvResult<Written> {
        let inner = self.inner();
        // Too much waiting to be committed: commit first (or let the commit under way go on).
        while inner.too_much_unwritten() && inner.commits.failure().is_none() {
            inner.commit_everything();
            tokio::task::yield_now().await;
        }
        let (result, seen) = inner.write(store, write);
        self.saw(seen);
        result
    }

    /// Makes every later wait for durability fail with `reason`, as a failed sync does.
    #[cfg(test)]
    pub(crate) fn fail_syncs(&self, reason: &str) {
        self.inner().commits.fail(reason.to_owned());
    }

    /// Waits until every write this session could have seen is on disk: call it before
    /// anything of the session's is shown outside.
    pub async fn durable(&self) -> KvResult<()> {
        self.inner()
            .wait_durable(self.watermark.load(Ordering::SeqCst))
            .await
    }

    /// Whether [`durable`](Self::durable) would not wait.
    pub fn is_durable(&self) -> bool {
        self.inner()
            .is_durable(self.watermark.load(Ordering::SeqCst))
    }

    /// The value of `key` in `store`, if any.
    pub fn get(&self, store: &str, key: &str) -> KvResult<Option<Vec<u8>>> {
        let found = self.inner().get(store, key);
        self.after_read(found)
            .map(|value| value.map(|v| v.to_vec()))
    }

    /// Whether `key` has a value.
    pub fn exists(&self, store: &str, key: &str) -> KvResult<bool> {
        let found = self.inner().get(store, key);
        self.after_read(found).map(|value| value.is_some())
    }

    /// Every key of `store`, in key order.
    pub fn keys(&self, store: &str) -> KvResult<Vec<String>> {
        self.after_read(self.inner().keys(store))
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
        // No write is under way (this is the last user). The syncer commits and syncs what
        // is left, and stops.
        lock(&self.inner.commits.wake).take();
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

/// The syncer thread: whenever a session waits for writes that are not on disk yet, commits
/// everything applied so far in one transaction, syncs the log once and publishes how far it
/// is on disk; one round serves everyone who waited meanwhile, and sessions that start waiting
/// during a round are served by the next. Writes nobody waits for are committed and synced
/// after at most [`IDLE_FLUSH`]; when the store closes, everything left is.
fn sync_loop(inner: &Inner, wakes: &mpsc::Receiver<()>) {
    let (wal, db) = (wal_path(&inner.path), inner.path.clone());
    let commits = &inner.commits;
    let mut log: Option<File> = None;
    loop {
        // Woken by a session, by nobody for IDLE_FLUSH, or because the store closes.
        let woken = wakes.recv_timeout(IDLE_FLUSH);
        while wakes.try_recv().is_ok() {}
        inner.commit_everything();
        let through = commits.finished.load(Ordering::SeqCst);
        if through > commits.synced_through() {
            sync_and_publish(&mut log, &wal, &db, commits, through);
        }
        if matches!(woken, Err(mpsc::RecvTimeoutError::Disconnected)) {
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
            commits.fail(format!("syncing the log failed: {e}"));
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

/// A commit or a sync slower than this is logged.
const SLOW_COMMIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Runs one statement without parameters, prepared once per connection.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
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
        assert!(written >= 1, "a write is numbered");
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
        assert!(writer.kv.inner.commits.synced_through() >= written);
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
        assert!(kv.inner.commits.synced_through() >= highest);
        assert!(kv.inner.commits.finished.load(Ordering::SeqCst) >= highest);
        Ok(())
    }

    /// A failure stops the store: once `fail` has made the store fail (with a message
    /// containing `reason`), the wait of a write not yet durable fails with the reason (the
    /// request is answered with an error), and so do later writes, while what was durable
    /// before stays confirmed.
    async fn a_failure_stops_the_store(
        fail: impl FnOnce(&KvSession) -> anyhow::Result<()>,
        reason: &str,
    ) -> anyhow::Result<()> {
        let before = session()?;
        before.set("s", "a", vec![1]).await?;
        before.durable().await?;
        let pending = KvSession::new(before.kv.clone());
        pending.set("s", "b", vec![2]).await?;
        fail(&pending)?;
        let err = pending.durable().await.unwrap_err();
        assert!(err.to_string().contains(reason), "{err}");
        let after = KvSession::new(before.kv.clone());
        let err = after.set("s", "c", vec![3]).await.unwrap_err();
        assert!(err.to_string().contains(reason), "{err}");
        before.durable().await?;
        Ok(())
    }

    #[tokio::test]
    async fn a_failed_sync_stops_the_store() -> anyhow::Result<()> {
        let fail = |kv: &KvSession| {
            kv.fail_syncs("injected");
            Ok(())
        };
        a_failure_stops_the_store(fail, "injected").await
    }

    /// The commit fails for real: another connection takes the table away.
    #[tokio::test]
    async fn a_failed_commit_stops_the_store() -> anyhow::Result<()> {
        let fail = |kv: &KvSession| {
            let other = Connection::open(&kv.kv.inner.path)?;
            other.busy_timeout(std::time::Duration::from_secs(5))?;
            other.execute("DROP TABLE spin_key_value", [])?;
            Ok(())
        };
        a_failure_stops_the_store(fail, "committing failed").await
    }

    /// What the file holds for `key`, read past the cache with a connection of its own.
    fn in_file(kv: &SqliteKv, store: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let conn = read_connection(&kv.inner.path)?;
        Ok(conn
            .query_row(SELECT_VALUE, params![store, key], |r| r.get(0))
            .optional()?)
    }

    /// A read after each kind of write sees the new value (or the absence), from the unwritten
    /// values and then, once committed, from the cache; the file agrees once it is durable.
    #[tokio::test]
    async fn cached_reads_see_every_write() -> anyhow::Result<()> {
        let kv = session()?;
        let check = async |key: &str, expected: Option<&[u8]>| -> anyhow::Result<()> {
            assert_eq!(kv.get("s", key)?.as_deref(), expected, "{key}");
            assert_eq!(kv.exists("s", key)?, expected.is_some(), "{key}");
            kv.durable().await?;
            assert_eq!(in_file(&kv.kv, "s", key)?.as_deref(), expected, "{key}");
            assert_eq!(
                kv.get("s", key)?.as_deref(),
                expected,
                "{key}, once committed"
            );
            Ok(())
        };
        // Absence is cached too, and a write replaces it.
        check("a", None).await?;
        kv.set("s", "a", b"1".to_vec()).await?;
        check("a", Some(b"1")).await?;
        kv.set("s", "a", b"2".to_vec()).await?;
        check("a", Some(b"2")).await?;
        kv.delete("s", "a").await?;
        check("a", None).await?;

        check("n", None).await?;
        kv.increment("s", "n", 7).await?;
        check("n", Some(&7i64.to_le_bytes())).await?;

        check("c", None).await?;
        assert!(kv.compare_and_swap("s", "c", None, b"x".to_vec()).await?);
        check("c", Some(b"x")).await?;
        let stale = Some(b"nope".to_vec());
        assert!(!kv.compare_and_swap("s", "c", stale, b"y".to_vec()).await?);
        check("c", Some(b"x")).await?;

        check("m1", None).await?;
        check("m2", None).await?;
        let entries = vec![("m1".into(), b"a".to_vec()), ("m2".into(), b"b".to_vec())];
        kv.set_many("s", entries).await?;
        check("m1", Some(b"a")).await?;
        check("m2", Some(b"b")).await?;
        kv.delete_many("s", vec!["m1".into(), "m2".into()]).await?;
        check("m1", None).await?;
        check("m2", None).await?;

        // A failed write changes nothing, in the file or in what reads see.
        kv.set("s", "t", b"text".to_vec()).await?;
        check("t", Some(b"text")).await?;
        assert!(kv.increment("s", "t", 1).await.is_err());
        check("t", Some(b"text")).await?;
        // Another store's key of the same name is another value.
        assert_eq!(kv.get("other", "t")?, None);
        Ok(())
    }

    /// Readers racing writers never see a value go back, while commits move the values from
    /// the unwritten ones to the cache, and once the last write is answered every read sees it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn reads_never_go_back_under_concurrent_writes() -> anyhow::Result<()> {
        const WRITES: i64 = 300;
        let kv = session()?;
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let started = Arc::new(tokio::sync::Barrier::new(5));
        let mut readers = Vec::new();
        for _ in 0..4 {
            let (kv, done, started) = (kv.clone(), done.clone(), started.clone());
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
                    if reads == 1 {
                        started.wait().await;
                    }
                    tokio::task::yield_now().await;
                }
                Ok::<u64, KvError>(reads)
            }));
        }
        // Every reader reads before the writers begin (writes in memory are quick).
        started.wait().await;
        let mut writers = Vec::new();
        for w in 0..3 {
            let kv = kv.clone();
            writers.push(tokio::spawn(async move {
                for i in 0..WRITES / 3 {
                    if i % 10 == w {
                        // Commits move the values from the unwritten ones to the cache.
                        kv.durable().await?;
                    }
                    tokio::task::yield_now().await;
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
            assert!(reader.await?? > 1);
        }
        assert_eq!(kv.get("s", "n")?, Some(WRITES.to_le_bytes().to_vec()));
        kv.durable().await?;
        assert_eq!(
            in_file(&kv.kv, "s", "n")?,
            Some(WRITES.to_le_bytes().to_vec())
        );
        Ok(())
    }

    /// A key read from the file as absent while it is written and committed is not cached as
    /// absent: every read begun after a write was answered sees it, whether the value is
    /// unwritten, cached or only in the file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn reads_of_keys_being_written_see_every_answered_write() -> anyhow::Result<()> {
        const KEYS: u64 = 400;
        let kv = session()?;
        let answered = Arc::new(AtomicU64::new(0));
        let mut readers = Vec::new();
        for r in 0..3 {
            let (kv, answered) = (kv.clone(), answered.clone());
            readers.push(tokio::spawn(async move {
                let mut reads = 0u64;
                loop {
                    let written = answered.load(Ordering::SeqCst);
                    if written >= KEYS {
                        return Ok::<u64, KvError>(reads);
                    }
                    // The key being written next (read from the file as absent, racing its
                    // write and commit), and one answered already.
                    let _ = kv.get("s", &format!("k{}", written + 1 + r % 2))?;
                    if written > 0 {
                        let key = format!("k{}", written - (reads % written.min(3)));
                        assert!(kv.get("s", &key)?.is_some(), "{key} was answered");
                    }
                    reads += 1;
                    tokio::task::yield_now().await;
                }
            }));
        }
        for i in 1..=KEYS {
            kv.set("s", &format!("k{i}"), vec![1]).await?;
            answered.store(i, Ordering::SeqCst);
            if i % 3 == 0 {
                kv.durable().await?;
            }
            tokio::task::yield_now().await;
        }
        for reader in readers {
            assert!(reader.await?? > 0);
        }
        for i in 1..=KEYS {
            assert!(kv.get("s", &format!("k{i}"))?.is_some(), "k{i}");
        }
        Ok(())
    }

    /// The cache keeps to its size: past [`MAX_CACHED_BYTES`] it starts over, and values too
    /// large are read from the file every time. A value read before a commit finished is not
    /// cached: it may be older than the commit's.
    #[test]
    fn the_cache_keeps_to_its_size() {
        let mut cache = ReadCache::default();
        let value: Option<Value> = Some(vec![0u8; 60 << 10].into());
        for i in 0..1000 {
            cache.insert(0, "s", &format!("k{i}"), value.clone());
            assert!(cache.bytes <= MAX_CACHED_BYTES);
        }
        assert!(cache.get("s", "k999").is_some());
        assert!(cache.get("s", "k0").is_none(), "the cache started over");
        cache.insert(0, "s", "big", Some(vec![0u8; MAX_CACHED_VALUE].into()));
        assert!(cache.get("s", "big").is_none());
        // Replacing a value counts only the new one.
        let before = cache.bytes;
        cache.put("s", "k999", Some(vec![1u8; 10].into()));
        assert_eq!(cache.bytes, before - (60 << 10) + 10);
        let generation = cache.generation;
        cache.generation += 1;
        cache.insert(generation, "s", "y", Some(vec![1].into()));
        assert!(cache.get("s", "y").is_none());
        cache.insert(cache.generation, "s", "y", Some(vec![1].into()));
        assert_eq!(cache.get("s", "y"), Some(&Some(Value::from(vec![1u8]))));
    }

    /// Writes are committed and synced only when someone waits: writes nobody waits for cost
    /// no transaction and no sync (until [`IDLE_FLUSH`]).
    #[tokio::test]
    async fn nothing_is_committed_until_someone_waits() -> anyhow::Result<()> {
        let kv = session()?;
        for i in 0..20 {
            kv.set("s", &format!("k{i}"), vec![1]).await?;
        }
        assert_eq!(kv.kv.inner.commits.finished.load(Ordering::SeqCst), 0);
        assert_eq!(in_file(&kv.kv, "s", "k0")?, None);
        assert_eq!(kv.get("s", "k0")?, Some(vec![1]));
        kv.durable().await?;
        assert!(kv.kv.inner.commits.synced_through() >= watermark(&kv));
        assert_eq!(in_file(&kv.kv, "s", "k19")?, Some(vec![1]));
        Ok(())
    }

    /// Writes nobody waits for reach the disk anyway: after [`IDLE_FLUSH`], and when the store
    /// closes.
    #[tokio::test]
    async fn writes_nobody_waits_for_are_flushed() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let kv = KvSession::new(Arc::new(SqliteKv::open_in(dir.path())?));
        kv.set("s", "idle", vec![1]).await?;
        let deadline = std::time::Instant::now() + 20 * IDLE_FLUSH;
        while !kv.is_durable() {
            assert!(std::time::Instant::now() < deadline, "never flushed");
            tokio::time::sleep(IDLE_FLUSH / 4).await;
        }
        assert_eq!(in_file(&kv.kv, "s", "idle")?, Some(vec![1]));
        kv.set("s", "closing", vec![2]).await?;
        drop(kv);
        let reopened = KvSession::new(Arc::new(SqliteKv::open_in(dir.path())?));
        assert_eq!(reopened.get("s", "closing")?, Some(vec![2]));
        Ok(())
    }

    /// Past [`MAX_UNWRITTEN_BYTES`] of unwritten values, a write commits first, though nobody
    /// waits.
    #[tokio::test]
    async fn unwritten_values_keep_to_their_limit() -> anyhow::Result<()> {
        let kv = session()?;
        let value = vec![7u8; 1 << 20];
        for i in 0..(MAX_UNWRITTEN_BYTES >> 20) + 2 {
            kv.set("s", &format!("k{i}"), value.clone()).await?;
            assert!(lock(&kv.kv.inner.memory).unwritten_bytes <= MAX_UNWRITTEN_BYTES + (2 << 20));
        }
        assert!(kv.kv.inner.commits.finished.load(Ordering::SeqCst) > 0);
        assert_eq!(in_file(&kv.kv, "s", "k0")?, Some(value));
        Ok(())
    }

    /// Listing keys merges the unwritten writes (sets and deletes) into what the file holds.
    #[tokio::test]
    async fn keys_include_unwritten_writes() -> anyhow::Result<()> {
        let kv = session()?;
        kv.set_many("s", vec![("a".into(), vec![1]), ("b".into(), vec![2])])
            .await?;
        kv.durable().await?;
        kv.delete("s", "a").await?;
        kv.set("s", "c", vec![3]).await?;
        kv.set("other", "d", vec![4]).await?;
        assert_eq!(kv.keys("s")?, ["b", "c"]);
        kv.durable().await?;
        assert_eq!(kv.keys("s")?, ["b", "c"]);
        Ok(())
    }

    #[test]
    fn syncing_a_log_that_cannot_be_opened_fails() {
        let missing = Path::new("/nonexistent-eventplane-dir/db");
        assert!(sync_log(&mut None, &wal_path(missing), missing).is_err());
    }
}
