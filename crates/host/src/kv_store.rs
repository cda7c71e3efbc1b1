//! The SQLite file behind every key-value store, laid out as Spin lays it out.
//!
//! Spin keeps all stores of an application in one table, `spin_key_value(store, key, value)`,
//! in `<state-dir>/sqlite_key_value.db`. Using the same file and schema means a state directory
//! written by `eventplane up` can be read by `spin up`, and the reverse.
//!
//! ## Writes: one writer thread, group commit
//!
//! Every write (set, delete, the batch writes, increment, compare-and-swap) is sent to one
//! writer thread that owns the only writing connection. The thread takes every write that is
//! waiting, applies them in order inside one transaction and commits once. Because one thread
//! applies writes one after another, compare-and-swap and increment are atomic across
//! concurrent requests, as on Spin. A write that fails on its own (an increment of a
//! non-integer) changes nothing and fails alone; if the commit itself fails, every write of
//! the group fails and none is kept.
//!
//! ## Durable before anyone outside sees it
//!
//! On Spin a write returns once it is on disk. Here a write returns once it is committed, and
//! a syncer thread makes the write-ahead log durable (`fdatasync`) behind the writer, covering
//! every commit made meanwhile with one sync. What a component instance does is held back
//! until every write it could have seen is on disk ([`KvSession::durable`]):
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
//! ## Reads: their own connections
//!
//! Reads use a small pool of read connections. The database is in WAL mode, so a read never
//! waits for the writer and sees every write that was answered before it started.

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

/// One write, as the writer thread applies it.
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

/// A write waiting for the writer thread, with where to send its outcome and the number of
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

/// The commit numbers shared by the writer, the syncer and the sessions.
struct Commits {
    /// The number of the latest commit begun (commits are numbered from 1).
    begun: AtomicU64,
    /// What the syncer has made durable.
    synced: watch::Sender<Synced>,
}

/// How many commits the writer makes past the last sync before it waits for the syncer. Under
/// load the writes that queue meanwhile then share one larger commit, instead of many small
/// commits rewriting the same pages; with little load no write ever waits here.
const MAX_UNSYNCED_COMMITS: u64 = 2;

impl Commits {
    /// Blocks the writer until fewer than [`MAX_UNSYNCED_COMMITS`] commits wait for the syncer
    /// (or syncing has failed: then the writer goes on, and nothing is confirmed anyway).
    fn wait_for_syncer(&self) {
        let begun = self.begun.load(Ordering::SeqCst);
        let mut synced = self.synced.subscribe();
        // The writer is a plain thread: it blocks on the same progress the sessions await.
        let _ = futures::executor::block_on(synced.wait_for(|s| {
            s.failed.is_some() || begun.saturating_sub(s.through) < MAX_UNSYNCED_COMMITS
        }));
    }
}

/// The application's key-value data: all stores in one SQLite file.
pub struct SqliteKv {
    path: PathBuf,
    writer: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    syncer: Option<std::thread::JoinHandle<()>>,
    commits: Arc<Commits>,
    readers: Mutex<Vec<Connection>>,
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
        let commits = Arc::new(Commits {
            begun: AtomicU64::new(0),
            synced: watch::Sender::new(Synced::default()),
        });
        let (sender, receiver) = mpsc::channel();
        let (to_sync, to_syncer) = mpsc::channel();
        let writer_commits = commits.clone();
        let thread = std::thread::Builder::new()
            .name("kv-writer".into())
            .spawn(move || write_loop(conn, &receiver, &writer_commits, &to_sync))?;
        let syncer_commits = commits.clone();
        let wal = wal_path(&path);
        let db = path.clone();
        let syncer = std::thread::Builder::new()
            .name("kv-syncer".into())
            .spawn(move || sync_loop(&wal, &db, &syncer_commits, &to_syncer))?;
        Ok(Self {
            path,
            writer: Some(sender),
            thread: Some(thread),
            syncer: Some(syncer),
            commits,
            readers: Mutex::new(Vec::new()),
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

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> KvResult<T> {
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => read_connection(&self.path)?,
        };
        let result = f(&conn).map_err(KvError::from);
        let mut idle = self
            .readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    /// The number of the latest commit begun: every commit a read that has ended could see
    /// is numbered at most this.
    fn begun(&self) -> u64 {
        self.commits.begun.load(Ordering::SeqCst)
    }

    /// Waits until every commit numbered up to `commit` is on disk.
    async fn wait_durable(&self, commit: u64) -> KvResult<()> {
        if commit == 0 {
            return Ok(());
        }
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
        let sent = self.writer.as_ref().is_some_and(|w| w.send(job).is_ok());
        if !sent {
            return (Err(KvError("the key-value store is shut down".into())), 0);
        }
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
}

impl KvSession {
    /// A new session (watermark 0: nothing seen) on `kv`.
    pub fn new(kv: Arc<SqliteKv>) -> Self {
        Self {
            kv,
            watermark: Arc::default(),
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
        let (result, commit) = self.kv.write(store, write).await;
        self.saw(commit);
        result
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
        self.after_read(self.kv.read(|c| {
            c.prepare_cached(SELECT_VALUE)?
                .query_row(params![store, key], |r| r.get(0))
                .optional()
        }))
    }

    /// Whether `key` has a value.
    pub fn exists(&self, store: &str, key: &str) -> KvResult<bool> {
        self.after_read(self.kv.read(|c| {
            c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .exists(params![store, key])
        }))
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
        // Closing the channel lets the writer finish what is queued and close the file; its
        // end closes the syncer's channel, and the syncer syncs what is left and stops.
        self.writer = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
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

/// The syncer thread: waits for commits, takes every commit number waiting, syncs the log
/// once for all of them and publishes how far it is on disk.
fn sync_loop(wal: &Path, db: &Path, commits: &Commits, numbers: &mpsc::Receiver<u64>) {
    let mut log: Option<File> = None;
    while let Ok(mut through) = numbers.recv() {
        while let Ok(more) = numbers.try_recv() {
            through = through.max(more);
        }
        let started = std::time::Instant::now();
        let synced = sync_log(&mut log, wal, db);
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

/// The writer thread: waits for a write, takes every other write already waiting, applies
/// them in one transaction, commits once, hands the commit to the syncer and answers them all.
fn write_loop(
    conn: Connection,
    jobs: &mpsc::Receiver<Job>,
    commits: &Commits,
    to_sync: &mpsc::Sender<u64>,
) {
    while let Ok(first) = jobs.recv() {
        commits.wait_for_syncer();
        let mut group = vec![first];
        while group.len() < MAX_WRITES_PER_COMMIT {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        // Numbered before it begins: a read that sees this commit ends after the number is
        // taken, so its watermark covers it.
        let number = commits.begun.fetch_add(1, Ordering::SeqCst) + 1;
        let started = std::time::Instant::now();
        let outcomes = commit_group(&conn, &group);
        let took = started.elapsed();
        if took > SLOW_COMMIT {
            tracing::warn!("key-value commit of {} writes took {took:?}", group.len());
        }
        // A failed commit is synced too: waits for its number must end.
        let _ = to_sync.send(number);
        for (job, outcome) in group.into_iter().zip(outcomes) {
            // The requester may have gone (its instance was cancelled); the write stands.
            let _ = job.reply.send((outcome, number));
        }
    }
}

fn commit_group(conn: &Connection, group: &[Job]) -> Vec<KvResult<Written>> {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let err = KvError::from(e);
        return group.iter().map(|_| Err(err.clone())).collect();
    }
    let outcomes: Vec<KvResult<Written>> = group
        .iter()
        .map(|job| apply_alone(conn, &job.store, &job.write))
        .collect();
    match conn.execute_batch("COMMIT") {
        Ok(()) => outcomes,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            let err = KvError::from(e);
            group.iter().map(|_| Err(err.clone())).collect()
        }
    }
}

/// Applies one write inside the group's transaction, undoing it alone if it fails.
fn apply_alone(conn: &Connection, store: &str, write: &Write) -> KvResult<Written> {
    conn.execute_batch("SAVEPOINT one_write")?;
    match apply(conn, store, write) {
        Ok(written) => {
            conn.execute_batch("RELEASE one_write")?;
            Ok(written)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO one_write; RELEASE one_write")?;
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

    #[test]
    fn syncing_a_log_that_cannot_be_opened_fails() {
        let missing = Path::new("/nonexistent-eventplane-dir/db");
        assert!(sync_log(&mut None, &wal_path(missing), missing).is_err());
    }
}
