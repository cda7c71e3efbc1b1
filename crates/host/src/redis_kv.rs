//! Key-value stores on Redis (`type = "redis"` in the runtime config), kept as Spin's Redis
//! store keeps them, so that `spin up` and `eventplane up` can share one server:
//!
//! - a key is the Redis key itself, whatever the label (two labels on one server share their
//!   keys, as on Spin), and a value is a Redis string;
//! - `get-keys` lists every key of the server's database (with `SCAN`, never `KEYS`, which
//!   blocks the server);
//! - `increment` is `INCRBY`: a counter is a Redis integer, which Spin's Redis store reads and
//!   writes the same way;
//! - `set-many` is one `MSET` and `delete-many` one `DEL`: all or nothing, atomically;
//! - compare-and-swap is one Lua script, which Redis runs atomically: it compares the value
//!   with the one the guest saw (or checks the key is absent) and sets the new one only if
//!   they match. So it is strict under any concurrency, across hosts too; Spin 4.0.2's Redis
//!   store is not (its swap can write yet report a failure).
//!
//! All labels on one server share one multiplexed connection, which reconnects by itself when
//! the server goes away and comes back. Every command is bounded by [`OP_TIMEOUT`]; a failure
//! is the guest's `other(<message>)` naming the store and the server.
//!
//! Nothing is held back for Redis: a write is answered once Redis has applied it, and what
//! survives a crash of the server is what its own persistence (`appendonly`, `appendfsync`)
//! keeps.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, FromRedisValue, ProtocolVersion, RedisError, RedisResult};

use crate::kv_store::{KvError, KvResult};

/// How long start-up waits for a server to answer `PING`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The longest one store operation may take (each round trip of a listing too); past it, the
/// operation fails.
pub const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// How many keys one `SCAN` asks for.
const SCAN_COUNT: usize = 1000;

/// Compare-and-swap, atomic on the server. `KEYS[1]`: the key; `ARGV[1]`: `"1"` if a value
/// is expected (`ARGV[2]`), `"0"` if the key is expected absent; `ARGV[3]`: the new value.
/// Answers 1 if it swapped, 0 if not.
const COMPARE_AND_SWAP: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
";

/// One Redis server (database) holding one or more labels.
pub(crate) struct RedisKv {
    client: Client,
    /// The server as messages show it: `redis://host:port`, without credentials.
    shown: String,
    /// Made on first use, inside the runtime that serves requests (its driver runs there).
    connection: OnceLock<ConnectionManager>,
    compare_and_swap: redis::Script,
}

impl RedisKv {
    /// A store on the server at `url`, once it has answered `PING` within
    /// [`CONNECT_TIMEOUT`]. Works inside or outside an async runtime (the check runs on a
    /// thread of its own).
    pub(crate) fn connect(url: &str) -> anyhow::Result<Self> {
        let client =
            Client::open(url).map_err(|e| anyhow::anyhow!("invalid Redis url {url:?}: {e}"))?;
        let shown = shown(&client);
        // RESP3, where the url does not choose: on RESP3 the connection notices at once when
        // the server goes away and starts reconnecting, so that a write after the server is
        // back is not lost to the dead connection. Servers older than Redis 6 speak RESP2.
        let mut candidates = Vec::new();
        if !url.contains("protocol=") {
            let info = client.get_connection_info().clone();
            let redis = info
                .redis_settings()
                .clone()
                .set_protocol(ProtocolVersion::RESP3);
            candidates.push(Client::open(info.set_redis_settings(redis))?);
        }
        candidates.push(client);
        let (answer, answered) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("redis-check".into())
            .spawn(move || {
                let mut outcome = Err(anyhow::anyhow!("no client"));
                for candidate in candidates {
                    match ping(&candidate) {
                        Ok(()) => {
                            outcome = Ok(candidate);
                            break;
                        }
                        // Not there at all: another protocol will not help.
                        Err(e) if e.is_io_error() => {
                            outcome = Err(e.into());
                            break;
                        }
                        Err(e) => outcome = Err(e.into()),
                    }
                }
                let _ = answer.send(outcome);
            })?;
        let client = match answered.recv_timeout(CONNECT_TIMEOUT + Duration::from_millis(500)) {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => anyhow::bail!("Redis at {shown} does not answer: {e}"),
            Err(_) => anyhow::bail!(
                "Redis at {shown} did not answer PING within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
        };
        Ok(Self {
            client,
            shown,
            connection: OnceLock::new(),
            compare_and_swap: redis::Script::new(COMPARE_AND_SWAP),
        })
    }

    /// The server, as messages show it (`redis://host:port`).
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    fn connection(&self) -> RedisResult<ConnectionManager> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(OP_TIMEOUT - Duration::from_secs(1)))
            // Reconnecting: a few quick attempts, then the next command starts over. A server
            // that is down fails commands in well under a second, and one that is back is used
            // again by the next command.
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let made = ConnectionManager::new_lazy_with_config(self.client.clone(), config)?;
        Ok(self.connection.get_or_init(|| made).clone())
    }

    /// Runs `op` (the command `command`, for messages) on the connection, bounded by
    /// [`OP_TIMEOUT`]. A command that could not be sent because the server refused the
    /// connection is sent once more (the connection is being remade); so is a `read` that
    /// failed with the connection: reads change nothing.
    async fn run<T, F, Fut>(&self, label: &str, command: &str, read: bool, op: F) -> KvResult<T>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let attempts = async {
            let mut retried = false;
            loop {
                let outcome = match self.connection() {
                    Ok(connection) => op(connection).await,
                    Err(e) => Err(e),
                };
                match outcome {
                    Err(e)
                        if !retried
                            && (e.is_connection_refusal()
                                || (read && (e.is_io_error() || e.is_unrecoverable_error()))) =>
                    {
                        retried = true;
                    }
                    outcome => return outcome,
                }
            }
        };
        match tokio::time::timeout(OP_TIMEOUT, attempts).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.error(label, command, &e)),
            Err(_) => {
                let shown = &self.shown;
                let seconds = OP_TIMEOUT.as_secs();
                tracing::warn!(
                    "key-value store {label:?}: Redis at {shown} did not answer {command} within {seconds} s"
                );
                Err(KvError::new(format!(
                    "the key-value store `{label}` ({shown}) did not answer {command} within {seconds} s"
                )))
            }
        }
    }

    /// Sends `cmd` (named `command` in messages).
    async fn query<T: FromRedisValue>(
        &self,
        label: &str,
        command: &str,
        read: bool,
        cmd: &Cmd,
    ) -> KvResult<T> {
        self.run(label, command, read, |mut connection| async move {
            cmd.query_async(&mut connection).await
        })
        .await
    }

    fn error(&self, label: &str, command: &str, e: &RedisError) -> KvError {
        let shown = &self.shown;
        if e.is_io_error() || e.is_unrecoverable_error() {
            tracing::warn!(
                "key-value store {label:?}: Redis at {shown} did not answer {command}: {e}"
            );
            KvError::new(format!(
                "the key-value store `{label}` ({shown}) did not answer: {e}"
            ))
        } else {
            KvError::new(format!(
                "the key-value store `{label}` ({shown}) failed {command}: {e}"
            ))
        }
    }

    /// The value of `key`, if any.
    pub(crate) async fn get(&self, label: &str, key: &str) -> KvResult<Option<Vec<u8>>> {
        self.query(label, "GET", true, redis::cmd("GET").arg(key))
            .await
    }

    /// The values of `keys`, in order (`MGET`: one round trip).
    pub(crate) async fn get_many(
        &self,
        label: &str,
        keys: &[String],
    ) -> KvResult<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<Vec<u8>>> = self
            .query(label, "MGET", true, redis::cmd("MGET").arg(keys))
            .await?;
        if values.len() != keys.len() {
            return Err(KvError::new(format!(
                "the key-value store `{label}` ({}) answered MGET of {} keys with {} values",
                self.shown,
                keys.len(),
                values.len()
            )));
        }
        Ok(values)
    }

    /// Whether `key` has a value.
    pub(crate) async fn exists(&self, label: &str, key: &str) -> KvResult<bool> {
        let n: i64 = self
            .query(label, "EXISTS", true, redis::cmd("EXISTS").arg(key))
            .await?;
        Ok(n > 0)
    }

    /// Every key of the database, in order (keys that are not UTF-8 cannot be named by a
    /// guest, and are left out).
    pub(crate) async fn keys(&self, label: &str) -> KvResult<Vec<String>> {
        let mut keys = BTreeSet::new();
        let mut cursor = 0u64;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor).arg("COUNT").arg(SCAN_COUNT);
            let (next, batch): (u64, Vec<Vec<u8>>) = self.query(label, "SCAN", true, &scan).await?;
            keys.extend(batch.into_iter().filter_map(|k| String::from_utf8(k).ok()));
            if next == 0 {
                return Ok(keys.into_iter().collect());
            }
            cursor = next;
        }
    }

    /// Sets `key` to `value`.
    pub(crate) async fn set(&self, label: &str, key: &str, value: &[u8]) -> KvResult<()> {
        self.query(label, "SET", false, redis::cmd("SET").arg(key).arg(value))
            .await
    }

    /// Deletes `key` (a missing key is not an error).
    pub(crate) async fn delete(&self, label: &str, key: &str) -> KvResult<()> {
        self.query::<i64>(label, "DEL", false, redis::cmd("DEL").arg(key))
            .await
            .map(drop)
    }

    /// Sets every key of `entries` at once (`MSET`).
    pub(crate) async fn set_many(
        &self,
        label: &str,
        entries: &[(String, Vec<u8>)],
    ) -> KvResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut mset = redis::cmd("MSET");
        for (key, value) in entries {
            mset.arg(key).arg(value);
        }
        self.query(label, "MSET", false, &mset).await
    }

    /// Deletes every key of `keys` at once (`DEL`).
    pub(crate) async fn delete_many(&self, label: &str, keys: &[String]) -> KvResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.query::<i64>(label, "DEL", false, redis::cmd("DEL").arg(keys))
            .await
            .map(drop)
    }

    /// Adds `delta` to the integer at `key` (absent: 0) and returns the result (`INCRBY`).
    pub(crate) async fn increment(&self, label: &str, key: &str, delta: i64) -> KvResult<i64> {
        self.query(
            label,
            "INCRBY",
            false,
            redis::cmd("INCRBY").arg(key).arg(delta),
        )
        .await
    }

    /// Sets `key` to `new` only if its value is still `expected` (`None`: only if it is still
    /// absent), atomically on the server. Returns whether it did.
    pub(crate) async fn compare_and_swap(
        &self,
        label: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> KvResult<bool> {
        let (flag, expected) = match expected {
            Some(value) => ("1", value),
            None => ("0", &b""[..]),
        };
        let swapped: i64 = self
            .run(
                label,
                "compare-and-swap",
                false,
                |mut connection| async move {
                    self.compare_and_swap
                        .key(key)
                        .arg(flag)
                        .arg(expected)
                        .arg(new)
                        .invoke_async(&mut connection)
                        .await
                },
            )
            .await?;
        Ok(swapped == 1)
    }
}

/// `redis://host:port` (or the socket's path), and the database if not 0: the server without
/// credentials.
fn shown(client: &Client) -> String {
    let info = client.get_connection_info();
    let db = info.redis_settings().db();
    let db = if db == 0 {
        String::new()
    } else {
        format!("/{db}")
    };
    match info.addr() {
        redis::ConnectionAddr::Unix(path) => format!("redis+unix://{}{db}", path.display()),
        addr => format!("redis://{addr}{db}"),
    }
}

/// Connects and sends `PING`, each bounded by [`CONNECT_TIMEOUT`].
fn ping(client: &Client) -> RedisResult<()> {
    let mut connection = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
    connection.set_read_timeout(Some(CONNECT_TIMEOUT))?;
    connection.set_write_timeout(Some(CONNECT_TIMEOUT))?;
    redis::cmd("PING")
        .query::<String>(&mut connection)
        .map(drop)
}

#[cfg(test)]
#[path = "../tests/support/redis_server.rs"]
pub(crate) mod redis_server;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::redis_server::RedisServer;
    use super::*;

    /// A server of the test's own and a store on it; `None` (said on stderr) where there is no
    /// `redis-server` and this is not CI.
    fn store() -> anyhow::Result<Option<(RedisServer, Arc<RedisKv>)>> {
        let Some(server) = RedisServer::start()? else {
            return Ok(None);
        };
        let kv = Arc::new(RedisKv::connect(&server.url())?);
        Ok(Some((server, kv)))
    }

    #[tokio::test]
    async fn each_operation_does_what_spins_redis_store_does() -> anyhow::Result<()> {
        let Some((server, kv)) = store()? else {
            return Ok(());
        };
        assert_eq!(kv.shown(), server.url());
        assert_eq!(kv.get("default", "a").await?, None);
        assert!(!kv.exists("default", "a").await?);
        kv.set("default", "a", b"1").await?;
        assert_eq!(kv.get("default", "a").await?, Some(b"1".to_vec()));
        assert!(kv.exists("default", "a").await?);
        // Binary values survive as they are.
        let binary: Vec<u8> = (0..=255).collect();
        kv.set("default", "bin", &binary).await?;
        assert_eq!(kv.get("default", "bin").await?, Some(binary));
        kv.delete("default", "a").await?;
        kv.delete("default", "a").await?;
        assert_eq!(kv.get("default", "a").await?, None);

        // Counters are Redis integers, as Spin's Redis store keeps them.
        assert_eq!(kv.increment("default", "n", 5).await?, 5);
        assert_eq!(kv.increment("default", "n", -2).await?, 3);
        assert_eq!(kv.get("default", "n").await?, Some(b"3".to_vec()));
        let err = kv
            .increment("default", "bin", 1)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("the key-value store `default`"), "{err}");
        assert!(err.contains("INCRBY"), "{err}");

        let entries: Vec<(String, Vec<u8>)> = (0..3)
            .map(|i| (format!("m{i}"), format!("v{i}").into_bytes()))
            .collect();
        kv.set_many("default", &entries).await?;
        kv.set_many("default", &[]).await?;
        assert_eq!(kv.get("default", "m2").await?, Some(b"v2".to_vec()));
        // One MGET answers several keys, in order, absent ones included.
        let keys = ["m2".to_owned(), "nope".to_owned(), "m0".to_owned()];
        assert_eq!(
            kv.get_many("default", &keys).await?,
            [Some(b"v2".to_vec()), None, Some(b"v0".to_vec())]
        );
        assert_eq!(
            kv.get_many("default", &[]).await?,
            Vec::<Option<Vec<u8>>>::new()
        );
        assert_eq!(kv.keys("default").await?, ["bin", "m0", "m1", "m2", "n"]);
        kv.delete_many("default", &["m0".into(), "m1".into(), "nope".into()])
            .await?;
        kv.delete_many("default", &[]).await?;
        assert_eq!(kv.keys("default").await?, ["bin", "m2", "n"]);

        // Compare-and-swap: from absent once, then only from the value it holds.
        assert!(kv.compare_and_swap("default", "c", None, b"x").await?);
        assert!(!kv.compare_and_swap("default", "c", None, b"y").await?);
        assert!(
            !kv.compare_and_swap("default", "c", Some(b"y"), b"z")
                .await?
        );
        assert!(
            kv.compare_and_swap("default", "c", Some(b"x"), b"z")
                .await?
        );
        assert_eq!(kv.get("default", "c").await?, Some(b"z".to_vec()));
        // An empty value is a value, not an absence.
        kv.set("default", "e", b"").await?;
        assert!(!kv.compare_and_swap("default", "e", None, b"1").await?);
        assert!(kv.compare_and_swap("default", "e", Some(b""), b"1").await?);
        Ok(())
    }

    /// Listing pages through `SCAN`: many keys come back once each.
    #[tokio::test]
    async fn keys_are_listed_in_full_past_one_scan() -> anyhow::Result<()> {
        let Some((_server, kv)) = store()? else {
            return Ok(());
        };
        let entries: Vec<(String, Vec<u8>)> =
            (0..2500).map(|i| (format!("k{i:05}"), vec![1])).collect();
        kv.set_many("default", &entries).await?;
        let keys = kv.keys("default").await?;
        assert_eq!(keys.len(), 2500);
        assert_eq!(keys.first().map(String::as_str), Some("k00000"));
        assert_eq!(keys.last().map(String::as_str), Some("k02499"));
        Ok(())
    }

    /// Many tasks incrementing one JSON counter by compare-and-swap, each retrying from what it
    /// reads when it loses: no increment is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_compare_and_swaps_lose_nothing() -> anyhow::Result<()> {
        const TASKS: u64 = 16;
        const EACH: u64 = 50;
        let Some((_server, kv)) = store()? else {
            return Ok(());
        };
        let mut tasks = Vec::new();
        for _ in 0..TASKS {
            let kv = kv.clone();
            tasks.push(tokio::spawn(async move {
                let mut lost = 0u64;
                for _ in 0..EACH {
                    loop {
                        let current = kv.get("default", "counter").await?;
                        let n = match &current {
                            Some(bytes) => serde_json::from_slice::<serde_json::Value>(bytes)
                                .map_err(|e| KvError::new(e.to_string()))?["n"]
                                .as_u64()
                                .unwrap_or_default(),
                            None => 0,
                        };
                        let next = serde_json::json!({ "n": n + 1 }).to_string();
                        if kv
                            .compare_and_swap(
                                "default",
                                "counter",
                                current.as_deref(),
                                next.as_bytes(),
                            )
                            .await?
                        {
                            break;
                        }
                        lost += 1;
                    }
                }
                Ok::<u64, KvError>(lost)
            }));
        }
        let mut conflicts = 0;
        for task in tasks {
            conflicts += task.await??;
        }
        let value = kv.get("default", "counter").await?.expect("a counter");
        let value: serde_json::Value = serde_json::from_slice(&value)?;
        assert_eq!(value["n"], TASKS * EACH, "{conflicts} swaps lost a race");
        Ok(())
    }

    /// Concurrent increments are atomic: every task sees a different value, and none is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_increments_are_atomic() -> anyhow::Result<()> {
        let Some((_server, kv)) = store()? else {
            return Ok(());
        };
        let mut tasks = Vec::new();
        for _ in 0..400 {
            let kv = kv.clone();
            tasks.push(tokio::spawn(async move {
                kv.increment("default", "n", 1).await
            }));
        }
        let mut seen = Vec::new();
        for task in tasks {
            seen.push(task.await??);
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=400).collect::<Vec<i64>>());
        Ok(())
    }

    /// A server that keeps the connection but answers nothing (frozen): every operation fails
    /// within the timeout; once it answers again, the store works again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_that_hangs_fails_operations_within_the_timeout() -> anyhow::Result<()> {
        let Some((server, kv)) = store()? else {
            return Ok(());
        };
        kv.set("default", "k", b"v").await?;
        server.pause()?;
        let limit = OP_TIMEOUT + Duration::from_millis(500);
        let started = std::time::Instant::now();
        let (read, write) = tokio::join!(kv.get("default", "k"), kv.increment("default", "n", 1));
        assert!(started.elapsed() <= limit, "{:?}", started.elapsed());
        for err in [read.unwrap_err(), write.unwrap_err()] {
            let err = err.to_string();
            assert!(
                err.starts_with(&format!(
                    "the key-value store `default` ({}) did not answer",
                    server.url()
                )),
                "{err}"
            );
        }
        server.resume()?;
        let deadline = std::time::Instant::now() + OP_TIMEOUT * 2;
        loop {
            match kv.get("default", "k").await {
                Ok(value) => {
                    assert_eq!(value, Some(b"v".to_vec()));
                    break;
                }
                Err(e) => assert!(std::time::Instant::now() < deadline, "{e}"),
            }
        }
        kv.set("default", "k", b"w").await?;
        Ok(())
    }

    /// A server that is not there stops start-up, naming it.
    #[test]
    fn a_server_that_does_not_answer_is_refused_at_start() -> anyhow::Result<()> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let url = format!("redis://127.0.0.1:{port}");
        let started = std::time::Instant::now();
        let err = RedisKv::connect(&url).err().expect("refused").to_string();
        assert!(
            err.contains(&format!("Redis at {url} does not answer")),
            "{err}"
        );
        assert!(started.elapsed() < CONNECT_TIMEOUT + Duration::from_secs(1));
        // A server that accepts the connection but never answers: the check gives up.
        let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
        let url = format!("redis://{}", silent.local_addr()?);
        let started = std::time::Instant::now();
        let err = RedisKv::connect(&url).err().expect("refused").to_string();
        assert!(err.contains(&url), "{err}");
        assert!(started.elapsed() < CONNECT_TIMEOUT + Duration::from_secs(2));
        let err = RedisKv::connect("http://127.0.0.1:1")
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("invalid Redis url \"http://127.0.0.1:1\""),
            "{err}"
        );
        Ok(())
    }

    /// While the server is stopped every operation fails within the timeout, with a message
    /// naming the store and the server; once it is back, the same store works again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_that_goes_away_and_comes_back_is_used_again() -> anyhow::Result<()> {
        let Some((mut server, kv)) = store()? else {
            return Ok(());
        };
        kv.set("default", "k", b"before").await?;
        server.stop();
        for attempt in 0..3 {
            let started = std::time::Instant::now();
            let err = kv.get("default", "k").await.unwrap_err().to_string();
            assert!(
                started.elapsed() <= OP_TIMEOUT + Duration::from_millis(500),
                "attempt {attempt} took {:?}",
                started.elapsed()
            );
            assert!(
                err.starts_with(&format!(
                    "the key-value store `default` ({}) did not answer",
                    server.url()
                )),
                "{err}"
            );
            let err = kv.set("default", "k", b"x").await.unwrap_err().to_string();
            assert!(err.contains("did not answer"), "{err}");
            let err = kv
                .increment("default", "n", 1)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("did not answer"), "{err}");
        }
        server.start_again()?;
        // The data survived (the server's append-only file), and every kind of operation works
        // at once: the first command after the restart is not lost to the old connection.
        assert_eq!(kv.get("default", "k").await?, Some(b"before".to_vec()));
        kv.set("default", "k", b"after").await?;
        assert_eq!(kv.increment("default", "n", 1).await?, 1);
        assert!(
            kv.compare_and_swap("default", "k", Some(b"after"), b"swapped")
                .await?
        );

        // Restarted while nobody used it: the first command, a write, goes through.
        server.stop();
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.start_again()?;
        assert_eq!(kv.increment("default", "n", 1).await?, 2);
        Ok(())
    }
}
