//! # The numbered event log in Redis: appended by the authority, tailed by every node
//!
//! The log is a Redis Stream, `{game}:events`, with one entry per event: ID `<seq>-0`, field
//! `e` the event's JSON exactly as the transports send it, field `f` the fencing token of the
//! authority that wrote it (so `XRANGE` shows who wrote what). Next to it `{game}:head` holds
//! the last seq.
//!
//! **Appending** is one Lua script ([`APPEND`]), so its checks and its writes are atomic:
//! the token must still be the newest (`{game}:fence`), the first seq must be `head + 1`, and
//! only then are the entries added, the head moved and the results of the commands that caused
//! them stored under their idempotency keys. A stale authority, a gap and a duplicate all fail
//! without writing anything. Redis would also refuse an explicit ID that is not above the
//! stream's last one; the head check comes first so a gap is caught too.
//!
//! [`Appender`] queues appends in seq order (the hub pushes while it holds the game's lock) and
//! writes whatever has queued up in one script call: under load many commands share one round
//! trip ("group commit"); when idle each costs one. Its [`Durable`] futures resolve once their
//! entries are in Redis: a node answers a command only then, so an answer never names an event
//! a failover could lose. The first failed write stops the appender for good and resigns the
//! lease: the authority's memory may now be ahead of the log, so the next term starts from Redis.
//!
//! **Tailing** ([`EventTail`]) is `XREAD BLOCK` from the last seq seen, on a connection of its
//! own. Every node, the authority included, fills its ring buffer this way, so all nodes send
//! byte-identical JSON in the same order. A tail that finds the entry after its position gone
//! (trimmed behind a checkpoint) reports [`Tailed::Gap`]: that node reloads from the checkpoint.

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Script, Value};
use tokio::sync::{mpsc, oneshot};

use super::conn::Redis;
use super::ClusterError;

/// KEYS: fence, head, events, then one key per stored command result.
/// ARGV: fence, first seq, entry count n, result TTL ms, n entry JSONs, one value per result key.
/// Returns `{'ok', head}`, `{'fenced', newest fence}` or `{'seq', expected seq}`.
pub const APPEND: &str = r"
local fence = redis.call('GET', KEYS[1])
if fence ~= ARGV[1] then
  return {'fenced', fence or '0'}
end
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local first = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
if n > 0 and first ~= head + 1 then
  return {'seq', string.format('%d', head + 1)}
end
for i = 1, n do
  redis.call('XADD', KEYS[3], string.format('%d-0', first + i - 1), 'e', ARGV[4 + i], 'f', ARGV[1])
end
if n > 0 then
  redis.call('SET', KEYS[2], string.format('%d', first + n - 1))
end
for i = 4, #KEYS do
  redis.call('SET', KEYS[i], ARGV[4 + n + i - 3], 'PX', ARGV[4])
end
return {'ok', string.format('%d', head + n)}
";

static APPEND_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(APPEND));

/// Entries per script call at most, and bytes of event JSON: bounds one call's time in Redis
/// (which runs nothing else meanwhile).
const MAX_BATCH_ENTRIES: usize = 1024;
const MAX_BATCH_BYTES: usize = 1 << 20;
/// How long one `XREAD` blocks before it is sent again.
const TAIL_BLOCK: Duration = Duration::from_millis(1000);
/// Entries one `XREAD` returns at most.
const TAIL_COUNT: usize = 1024;
/// A tail waits this long after a failure before it reports it (so a plain retry loop does
/// not spin while Redis is away).
const TAIL_RETRY: Duration = Duration::from_millis(200);

/// One event of the log: its seq and its JSON, as every transport sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub seq: u64,
    pub json: String,
}

/// The answer of a fenced script: `{'ok', n}`, `{'fenced', newest}` or `{'seq', expected}`.
pub(crate) fn script_status(reply: (String, String), got: u64) -> Result<u64, ClusterError> {
    let (status, value) = reply;
    let number = || {
        value
            .parse::<u64>()
            .map_err(|_| ClusterError::Protocol(format!("{status} {value:?}")))
    };
    match status.as_str() {
        "ok" => number(),
        "fenced" => Err(ClusterError::Fenced),
        "seq" => Err(ClusterError::SeqMismatch {
            expected: number()?,
            got,
        }),
        _ => Err(ClusterError::Protocol(format!("{status} {value:?}"))),
    }
}

/// Appends `entries` (consecutive seqs) under `fence`, storing each `(key, value)` result for
/// `result_ttl`; returns the new head. The one write path of the log; [`Appender`] batches
/// into it.
pub async fn append(
    redis: &Redis,
    fence: u64,
    entries: &[LogEntry],
    results: &[(String, String)],
    result_ttl: Duration,
) -> Result<u64, ClusterError> {
    let first = entries.first().map_or(0, |e| e.seq);
    if let Some(bad) = entries.windows(2).find(|w| w[1].seq != w[0].seq + 1) {
        return Err(ClusterError::SeqMismatch {
            expected: bad[0].seq + 1,
            got: bad[1].seq,
        });
    }
    let keys = redis.keys();
    let mut invocation = APPEND_SCRIPT.prepare_invoke();
    invocation
        .key(keys.fence())
        .key(keys.head())
        .key(keys.events());
    for (key, _) in results {
        invocation.key(key);
    }
    invocation
        .arg(fence)
        .arg(first)
        .arg(entries.len())
        .arg(result_ttl.as_millis() as u64);
    for entry in entries {
        invocation.arg(&entry.json);
    }
    for (_, value) in results {
        invocation.arg(value);
    }
    // `invoke_async` sends EVALSHA, and the script itself on NOSCRIPT (after a Redis restart).
    let reply: (String, String) = redis
        .run("append", move |mut c| async move {
            invocation.invoke_async(&mut c).await
        })
        .await?;
    script_status(reply, first)
}

enum Job {
    Append {
        entries: Vec<LogEntry>,
        result: Option<(String, String)>,
        done: oneshot::Sender<Result<(), ClusterError>>,
    },
    Checkpoint {
        seq: u64,
        data: String,
        done: oneshot::Sender<Result<(), ClusterError>>,
    },
}

impl Job {
    fn fail(self, err: &ClusterError) {
        let done = match self {
            Job::Append { done, .. } | Job::Checkpoint { done, .. } => done,
        };
        let _ = done.send(Err(err.clone()));
    }
}

/// Resolves when the pushed entries (or checkpoint) are in Redis, or with why they never will
/// be. Dropping it changes nothing: the write still happens.
#[must_use = "a command is answered only once its events are durable"]
pub struct Durable(oneshot::Receiver<Result<(), ClusterError>>);

impl Future for Durable {
    type Output = Result<(), ClusterError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(ClusterError::NoAuthority)))
    }
}

/// The authority's write queue. Clone it freely; pushes keep the order they were made in.
#[derive(Clone)]
pub struct Appender {
    fence: u64,
    tx: mpsc::UnboundedSender<Job>,
}

impl Appender {
    /// Starts the writer task on the I/O thread. `on_failure` runs once, at the first failed
    /// write (the node then resigns the lease).
    pub(crate) fn start(
        redis: Redis,
        fence: u64,
        on_failure: impl FnOnce(&ClusterError) + Send + 'static,
    ) -> Appender {
        let (tx, rx) = mpsc::unbounded_channel();
        redis.spawn(write_loop(redis.clone(), fence, rx, on_failure));
        Appender { fence, tx }
    }

    /// The fencing token every write of this appender carries.
    pub fn fence(&self) -> u64 {
        self.fence
    }

    /// Queues events the game caused by itself (a round starting, an idle player leaving).
    /// Call it while holding the lock under which the seqs were given, so that queue order is
    /// seq order. Never blocks.
    pub fn push(&self, entries: Vec<LogEntry>) -> Durable {
        self.send(|done| Job::Append {
            entries,
            result: None,
            done,
        })
    }

    /// Queues a command's events together with its result, stored under `result_key` in the
    /// same script (see `forward::Commit`).
    pub(crate) fn push_with_result(
        &self,
        entries: Vec<LogEntry>,
        result_key: String,
        result: String,
    ) -> Durable {
        self.send(|done| Job::Append {
            entries,
            result: Some((result_key, result)),
            done,
        })
    }

    /// Queues a checkpoint of the game as of `seq` (the last seq pushed so far): written after
    /// everything pushed before it (`checkpoint.rs`).
    pub fn checkpoint(&self, seq: u64, data: String) -> Durable {
        self.send(|done| Job::Checkpoint { seq, data, done })
    }

    fn send(&self, job: impl FnOnce(oneshot::Sender<Result<(), ClusterError>>) -> Job) -> Durable {
        let (done, durable) = oneshot::channel();
        // A closed queue drops the job, and with it `done`: the Durable says NoAuthority.
        let _ = self.tx.send(job(done));
        Durable(durable)
    }
}

async fn write_loop(
    redis: Redis,
    fence: u64,
    mut rx: mpsc::UnboundedReceiver<Job>,
    on_failure: impl FnOnce(&ClusterError) + Send + 'static,
) {
    let mut on_failure = Some(on_failure);
    let mut failed: Option<ClusterError> = None;
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while let Ok(job) = rx.try_recv() {
            jobs.push(job);
        }
        let mut jobs = jobs.into_iter().peekable();
        while let Some(job) = jobs.next() {
            if let Some(err) = &failed {
                job.fail(err);
                continue;
            }
            let outcome = match job {
                Job::Checkpoint { seq, data, done } => {
                    let r = super::checkpoint::save(&redis, fence, seq, &data).await;
                    (r.clone().map(|_| ()), vec![done], r.err())
                }
                Job::Append {
                    entries,
                    result,
                    done,
                } => {
                    // This job and the appends right behind it, in one script call.
                    let mut all = entries;
                    let mut results: Vec<(String, String)> = result.into_iter().collect();
                    let mut dones = vec![done];
                    let mut bytes: usize = all.iter().map(|e| e.json.len()).sum();
                    while let Some(Job::Append { entries, .. }) = jobs.peek() {
                        let more: usize = entries.iter().map(|e| e.json.len()).sum();
                        if all.len() + entries.len() > MAX_BATCH_ENTRIES
                            || bytes + more > MAX_BATCH_BYTES
                        {
                            break;
                        }
                        let Some(Job::Append {
                            entries,
                            result,
                            done,
                        }) = jobs.next()
                        else {
                            break;
                        };
                        bytes += more;
                        all.extend(entries);
                        results.extend(result);
                        dones.push(done);
                    }
                    let ttl = redis.config().idempotency_ttl;
                    let r = append(&redis, fence, &all, &results, ttl).await;
                    (r.clone().map(|_| ()), dones, r.err())
                }
            };
            let (result, dones, err) = outcome;
            for done in dones {
                let _ = done.send(result.clone());
            }
            if let Some(err) = err {
                tracing::warn!(fence, error = %err, "a write to the log failed: stepping down");
                if let Some(f) = on_failure.take() {
                    f(&err);
                }
                failed = Some(err);
            }
        }
    }
}

/// What a tail read: the next events in order, or the news that some are gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tailed {
    /// The entries right after the tail's position, consecutive; never empty.
    Events(Vec<LogEntry>),
    /// The entry after `after` is no longer in the stream (trimmed behind a checkpoint); the
    /// oldest left is `first_available`. Restore from the checkpoint, then [`EventTail::reset`].
    Gap { after: u64, first_available: u64 },
}

/// Reads the log from a position on, each entry once, in order. One per node.
pub struct EventTail {
    redis: Redis,
    conn: Option<MultiplexedConnection>,
    after: u64,
}

impl EventTail {
    /// A tail that will return the entries after seq `after`.
    pub fn new(redis: Redis, after: u64) -> EventTail {
        EventTail {
            redis,
            conn: None,
            after,
        }
    }

    /// The last seq returned (or the starting point).
    pub fn position(&self) -> u64 {
        self.after
    }

    /// Continues after seq `after` (after a restore).
    pub fn reset(&mut self, after: u64) {
        self.after = after;
    }

    /// Waits for the next entries. On an error (Redis away) it has already waited a moment:
    /// call it again, it reconnects by itself.
    pub async fn next_batch(&mut self) -> Result<Tailed, ClusterError> {
        loop {
            match self.read_once().await {
                Ok(Some(entries)) => {
                    let Some(first) = entries.first() else {
                        continue;
                    };
                    if first.seq != self.after + 1 {
                        return Ok(Tailed::Gap {
                            after: self.after,
                            first_available: first.seq,
                        });
                    }
                    let consecutive = entries.windows(2).all(|w| w[1].seq == w[0].seq + 1);
                    if !consecutive {
                        return Err(ClusterError::Protocol(
                            "the stream holds non-consecutive seqs".into(),
                        ));
                    }
                    if let Some(last) = entries.last() {
                        self.after = last.seq;
                    }
                    return Ok(Tailed::Events(entries));
                }
                Ok(None) => continue,
                Err(err) => {
                    self.conn = None;
                    tokio::time::sleep(TAIL_RETRY).await;
                    return Err(err);
                }
            }
        }
    }

    /// One `XREAD BLOCK`; `None` when it timed out with nothing new.
    async fn read_once(&mut self) -> Result<Option<Vec<LogEntry>>, ClusterError> {
        let conn = match &self.conn {
            Some(conn) => conn.clone(),
            None => {
                let op = self.redis.config().op_timeout;
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(op))
                    .set_response_timeout(Some(TAIL_BLOCK + op));
                let client = self.redis.client().clone();
                let conn = self
                    .redis
                    .spawn(async move {
                        client
                            .get_multiplexed_async_connection_with_config(&config)
                            .await
                    })
                    .await
                    .map_err(|e| ClusterError::Unavailable(format!("tail: {e}")))?
                    .map_err(|e| self.redis.classify("tail connect", e))?;
                self.conn = Some(conn.clone());
                conn
            }
        };
        let mut conn = conn;
        let events = self.redis.keys().events();
        let from = format!("{}-0", self.after);
        let reply: Value = self
            .redis
            .spawn(async move {
                redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(TAIL_COUNT)
                    .arg("BLOCK")
                    .arg(TAIL_BLOCK.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(events)
                    .arg(from)
                    .query_async(&mut conn)
                    .await
            })
            .await
            .map_err(|e| ClusterError::Unavailable(format!("tail: {e}")))?
            .map_err(|e| self.redis.classify("XREAD", e))?;
        match reply {
            Value::Nil => Ok(None),
            Value::Array(streams) => {
                let Some(Value::Array(stream)) = streams.into_iter().next() else {
                    return Ok(None);
                };
                let Some(entries) = stream.into_iter().nth(1) else {
                    return Ok(None);
                };
                parse_entries(entries).map(Some)
            }
            other => Err(ClusterError::Protocol(format!("XREAD answered {other:?}"))),
        }
    }
}

/// Parses `[[id, [field, value, ...]], ...]` (what `XRANGE` and `XREAD` return per stream).
pub(crate) fn parse_entries(value: Value) -> Result<Vec<LogEntry>, ClusterError> {
    let Value::Array(items) = value else {
        return Err(ClusterError::Protocol(format!("stream entries: {value:?}")));
    };
    items.into_iter().map(parse_entry).collect()
}

fn parse_entry(value: Value) -> Result<LogEntry, ClusterError> {
    let bad = |what: &str| ClusterError::Protocol(format!("stream entry: {what}"));
    let Value::Array(parts) = value else {
        return Err(bad("not an array"));
    };
    let mut parts = parts.into_iter();
    let id: String = parts
        .next()
        .and_then(|v| redis::from_redis_value(v).ok())
        .ok_or_else(|| bad("no id"))?;
    let seq = id
        .strip_suffix("-0")
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| bad(&format!("id {id:?} is not <seq>-0")))?;
    let fields: Vec<String> = parts
        .next()
        .and_then(|v| redis::from_redis_value(v).ok())
        .ok_or_else(|| bad("no fields"))?;
    let json = fields
        .chunks(2)
        .find(|pair| pair.first().is_some_and(|f| f == "e"))
        .and_then(|pair| pair.get(1).cloned())
        .ok_or_else(|| bad(&format!("entry {seq} has no field e")))?;
    Ok(LogEntry { seq, json })
}
