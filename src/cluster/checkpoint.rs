//! # Checkpoints: the game as of one seq, so a new authority need not replay from seq 1
//!
//! Now and then (phase 2: every few hundred events or seconds) the authority saves the game —
//! the snapshot of its state, the next player id, whatever the hub needs; to this module it is
//! an opaque string — together with the seq it is as of. [`save`] is one Lua script: the
//! fencing token must still be the newest (a stale authority cannot overwrite a newer game),
//! the seq may not be beyond the log's head (a checkpoint never names an event the log does
//! not have) nor behind the last checkpoint; then the checkpoint is stored and the stream is
//! trimmed to what is still needed — the events after the checkpoint, and at least the last
//! [`ClusterConfig::stream_window`] for nodes resuming from the log. Saving goes through the
//! [`Appender`](super::Appender) queue, so it lands after every event it includes.
//!
//! [`restore`] reads, in one script (so the parts agree), the head, the checkpoint, the epoch
//! and the entries a node needs: everything after the checkpoint, and the last `history` for
//! its ring buffer. The caller folds the entries after the checkpoint into the checkpoint's
//! state with the game's own `apply` (`fold.rs`). A new authority reads this *after* winning the
//! lease: from then on nobody else can append, so what it reads is the final word.
//!
//! [`ClusterConfig::stream_window`]: super::ClusterConfig::stream_window

use std::sync::LazyLock;

use redis::{Script, Value};

use super::conn::Redis;
use super::stream::{parse_entries, script_status, LogEntry};
use super::{random_bytes, ClusterError};

/// KEYS: fence, head, checkpoint, events. ARGV: fence, seq, data, saved ms, window.
const SAVE: &str = r"
local fence = redis.call('GET', KEYS[1])
if fence ~= ARGV[1] then
  return {'fenced', fence or '0'}
end
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local seq = tonumber(ARGV[2])
if seq > head then
  return {'seq', string.format('%d', head)}
end
local previous = tonumber(redis.call('HGET', KEYS[3], 'seq') or '0')
if seq < previous then
  return {'seq', string.format('%d', previous)}
end
redis.call('HSET', KEYS[3], 'seq', ARGV[2], 'data', ARGV[3], 'fence', ARGV[1], 'saved_ms', ARGV[4])
local keep_from = math.max(1, math.min(seq + 1, head - tonumber(ARGV[5]) + 1))
if keep_from > 1 then
  redis.call('XTRIM', KEYS[4], 'MINID', string.format('%d-0', keep_from))
end
return {'ok', string.format('%d', keep_from)}
";

/// KEYS: head, checkpoint, events, meta. ARGV: history. Read only.
const RESTORE: &str = r"
local head = tonumber(redis.call('GET', KEYS[1]) or '0')
local cp = redis.call('HMGET', KEYS[2], 'seq', 'data')
local epoch = redis.call('HGET', KEYS[4], 'epoch')
local from = 1
if cp[1] then
  from = math.min(tonumber(cp[1]) + 1, math.max(head - tonumber(ARGV[1]) + 1, 1))
end
local entries = redis.call('XRANGE', KEYS[3], string.format('%d-0', from), '+')
return {string.format('%d', head), cp[1] or '', cp[2] or '', epoch or '', entries}
";

/// KEYS: fence, meta. ARGV: fence, a fresh epoch, now ms. Keeps the epoch that is there.
const INIT_EPOCH: &str = r"
local fence = redis.call('GET', KEYS[1])
if fence ~= ARGV[1] then
  return {'fenced', fence or '0'}
end
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'created_ms', ARGV[3])
end
return {'ok', epoch}
";

static SAVE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SAVE));
static RESTORE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RESTORE));
static INIT_EPOCH_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(INIT_EPOCH));

/// The game as of `seq`, in the hub's own format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: u64,
    pub data: String,
}

/// What a node needs to (re)build its view of the game.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The game's epoch; `None` before any authority started the game.
    pub epoch: Option<String>,
    /// The seq of the last event in the log (0: none yet).
    pub head: u64,
    pub checkpoint: Option<Checkpoint>,
    /// Consecutive entries ending at `head`: all after the checkpoint, and the last `history`.
    pub entries: Vec<LogEntry>,
}

impl Restored {
    /// The entries to fold into the checkpoint (all of them without one).
    pub fn after_checkpoint(&self) -> &[LogEntry] {
        let after = self.checkpoint.as_ref().map_or(0, |c| c.seq);
        let skip = self.entries.iter().take_while(|e| e.seq <= after).count();
        &self.entries[skip..]
    }

    /// The last `n` entries, for the ring buffer.
    pub fn last(&self, n: usize) -> &[LogEntry] {
        &self.entries[self.entries.len().saturating_sub(n)..]
    }
}

/// Saves a checkpoint under `fence`. Returns the first seq kept in the stream.
pub async fn save(redis: &Redis, fence: u64, seq: u64, data: &str) -> Result<u64, ClusterError> {
    let keys = redis.keys();
    let mut invocation = SAVE_SCRIPT.prepare_invoke();
    invocation
        .key(keys.fence())
        .key(keys.head())
        .key(keys.checkpoint())
        .key(keys.events())
        .arg(fence)
        .arg(seq)
        .arg(data)
        .arg(super::now_ms())
        .arg(redis.config().stream_window);
    let reply: (String, String) = redis
        .run("checkpoint", move |mut c| async move {
            invocation.invoke_async(&mut c).await
        })
        .await?;
    script_status(reply, seq)
}

/// Reads checkpoint, head, epoch and entries at one instant (see the module doc).
pub async fn restore(redis: &Redis, history: u64) -> Result<Restored, ClusterError> {
    let keys = redis.keys();
    let mut invocation = RESTORE_SCRIPT.prepare_invoke();
    invocation
        .key(keys.head())
        .key(keys.checkpoint())
        .key(keys.events())
        .key(keys.meta())
        .arg(history);
    let reply: Value = redis
        .run("restore", move |mut c| async move {
            invocation.invoke_async(&mut c).await
        })
        .await?;
    let bad = |what: &str| ClusterError::Protocol(format!("restore: {what}"));
    let Value::Array(parts) = reply else {
        return Err(bad("not an array"));
    };
    let mut parts = parts.into_iter();
    let mut text = |what: &str| -> Result<String, ClusterError> {
        parts
            .next()
            .and_then(|v| redis::from_redis_value::<String>(v).ok())
            .ok_or_else(|| bad(what))
    };
    let head: u64 = text("head")?.parse().map_err(|_| bad("head"))?;
    let cp_seq = text("checkpoint seq")?;
    let cp_data = text("checkpoint data")?;
    let epoch = text("epoch")?;
    let entries = parse_entries(parts.next().ok_or_else(|| bad("entries"))?)?;
    let checkpoint = if cp_seq.is_empty() {
        None
    } else {
        Some(Checkpoint {
            seq: cp_seq.parse().map_err(|_| bad("checkpoint seq"))?,
            data: cp_data,
        })
    };
    // The entries must run without a gap from what the checkpoint lacks up to the head.
    let needed_from = checkpoint.as_ref().map_or(1, |c| c.seq + 1);
    let first = entries.first().map_or(head + 1, |e| e.seq);
    let consecutive = entries.windows(2).all(|w| w[1].seq == w[0].seq + 1);
    let ends_at_head = entries.last().map_or(0, |e| e.seq) == head || needed_from > head;
    if first > needed_from || !consecutive || !ends_at_head {
        return Err(bad(&format!(
            "the log does not hold seqs {needed_from}..={head} (it starts at {first})"
        )));
    }
    Ok(Restored {
        epoch: (!epoch.is_empty()).then_some(epoch),
        head,
        checkpoint,
        entries,
    })
}

/// The game's epoch, created by the first authority and kept across failovers. Fenced, so a
/// stale authority cannot start a second game.
pub async fn init_epoch(redis: &Redis, fence: u64) -> Result<String, ClusterError> {
    let keys = redis.keys();
    let fresh = super::hex(&random_bytes::<8>());
    let mut invocation = INIT_EPOCH_SCRIPT.prepare_invoke();
    invocation
        .key(keys.fence())
        .key(keys.meta())
        .arg(fence)
        .arg(fresh)
        .arg(super::now_ms());
    let (status, value): (String, String) = redis
        .run("init epoch", move |mut c| async move {
            invocation.invoke_async(&mut c).await
        })
        .await?;
    match status.as_str() {
        "ok" => Ok(value),
        "fenced" => Err(ClusterError::Fenced),
        _ => Err(ClusterError::Protocol(format!("init epoch: {status}"))),
    }
}
