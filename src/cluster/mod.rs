//! # The cluster layer: several nodes, one game, through Redis (issue 16)
//!
//! Without `--redis-url` the server is one process and none of this runs. With it, several
//! clickgame processes ("nodes") serve **one** game. The design (`docs/scaling.md`) keeps the
//! idea the single node already has — one game core, one numbered event log, clients that resume
//! by `seq` — and only moves the log and the right to write it into Redis:
//!
//! * [`lease`] — exactly one node, the **authority**, runs the game core. It holds a lease in
//!   Redis (a key with a short TTL, renewed while the node is alive) and a **fencing token**, a
//!   number that grows with every new holder. Every write below is checked against the token
//!   inside Redis, so an ex-authority that was paused past its lease cannot write.
//! * [`stream`] — the authority appends events to a Redis Stream whose entry IDs are their
//!   `seq` (`<seq>-0`): a gap, a duplicate or a stale token makes the append fail, atomically.
//!   Every node tails the stream into its local ring buffer, so the four transports stay as
//!   they are. [`stream::Appender`] batches appends ("group commit").
//! * [`forward`] — any node forwards commands (join, click, leave, admin) to the authority and
//!   relays its answer. Each command carries an idempotency key; its result is stored in Redis
//!   in the same script as its events, so a retried command is answered, not run again.
//! * [`checkpoint`] — the authority saves the game (snapshot + last seq) now and then; a new
//!   authority restores it and folds the events after it with the game's own `apply`
//!   ([`fold`]).
//! * [`sessions`] — tokens every node can check without asking Redis per request, and one-time
//!   tickets spent exactly once across nodes.
//! * [`health`] — `redis: "ok" | "unreachable"`, recovering by itself.
//!
//! All Redis I/O runs on one thread of its own ([`conn::Redis`]): actix's workers each run a
//! single-threaded runtime busy with thousands of sockets, and a lease renewal queued behind
//! them could come too late. The handles here are `Send + Sync` and their futures can be
//! awaited from any runtime; they only pass messages to that thread.
//!
//! ## What the hub calls (phase 2)
//!
//! ```text
//! let node = Node::start(config).await?;                 // never fails because Redis is down
//! // every node: fill the ring buffer from the log
//! let restored = node.restore(history).await?;           // checkpoint + events after it
//! let mut tail = node.tail(restored.head);
//! loop { match tail.next_batch().await { Ok(Tailed::Events(e)) => hub.push_log(e),
//!                                        Ok(Tailed::Gap { .. }) => { /* restore again */ }
//!                                        Err(e) => { /* Redis away: wait, call again */ } } }
//! // the node that wins the lease: run the game
//! loop {
//!     let mut authority = node.authority().await;        // waits until we hold the lease
//!     let restored = node.restore(history).await?;       // read *after* winning: final
//!     hub.become_authority(restored, authority.appender(), authority.epoch());
//!     authority.serve(&hub).await;                        // until the lease is lost
//!     hub.become_follower();
//! }
//! // any node, for a command: node.forward(&key, body).await → reply body or ClusterError (503)
//! // a token: node.sessions().verify(token); a ticket: node.sessions().spend(ticket).await
//! ```

pub mod checkpoint;
pub mod conn;
pub mod fold;
pub mod forward;
pub mod health;
pub mod lease;
pub mod node;
pub mod sessions;
pub mod stream;

#[cfg(test)]
mod test_redis;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use actix_web::http::StatusCode;

use crate::error::ApiError;

pub use checkpoint::{Checkpoint, Restored};
pub use forward::{Authority, Commit, Committed, GameCore, IdemKey};
pub use health::RedisHealth;
pub use lease::Role;
pub use node::Node;
pub use stream::{Appender, Durable, EventTail, LogEntry, Tailed};

/// How long a lease lives without renewal: the longest a dead authority blocks the game.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_millis(3000);
/// The longest one Redis round trip may take before it counts as a failure.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a node waits for the authority's answer to a forwarded command.
pub const DEFAULT_FORWARD_TIMEOUT: Duration = Duration::from_millis(2000);
/// How long a command's result is kept for retries with the same idempotency key.
pub const DEFAULT_IDEMPOTENCY_TTL: Duration = Duration::from_secs(120);
/// Events kept in the stream beyond the last checkpoint, for nodes that resume from the log.
pub const DEFAULT_STREAM_WINDOW: u64 = 10_000;

/// A node's name: what `/api/stats` shows and what the lease names as its holder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeId(String);

impl NodeId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NodeId {
    type Err = String;

    /// 1 to 32 characters of `a-z`, `0-9`, `-` and `_`: it becomes part of Redis channel names
    /// and a log field, so nothing that needs quoting.
    fn from_str(s: &str) -> Result<NodeId, String> {
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(NodeId(s.to_string()))
        } else {
            Err(format!(
                "node id {s:?}: use 1 to 32 characters of a-z, 0-9, - and _"
            ))
        }
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Settings of the cluster layer. Phase 2 fills it from `--redis-url` and `--node-id`.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `redis://host:port[/db]`.
    pub redis_url: String,
    pub node_id: NodeId,
    /// The game's name in Redis: every key starts with `{<game>}:`. The braces are a Redis
    /// Cluster hash tag, so all keys of one game live in one slot and one script may touch them.
    pub game: String,
    pub lease_ttl: Duration,
    pub op_timeout: Duration,
    pub forward_timeout: Duration,
    pub idempotency_ttl: Duration,
    pub stream_window: u64,
}

impl ClusterConfig {
    pub fn new(redis_url: impl Into<String>, node_id: NodeId) -> ClusterConfig {
        ClusterConfig {
            redis_url: redis_url.into(),
            node_id,
            game: "clickgame".into(),
            lease_ttl: DEFAULT_LEASE_TTL,
            op_timeout: DEFAULT_OP_TIMEOUT,
            forward_timeout: DEFAULT_FORWARD_TIMEOUT,
            idempotency_ttl: DEFAULT_IDEMPOTENCY_TTL,
            stream_window: DEFAULT_STREAM_WINDOW,
        }
    }

    pub fn keys(&self) -> Keys {
        Keys {
            prefix: format!("{{{}}}:", self.game),
        }
    }
}

/// The names of everything one game keeps in Redis. One place, so `docs/scaling.md` and
/// `redis-cli` sessions can follow along.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// `"<node> <fence>"` of the authority, with a TTL.
    pub fn lease(&self) -> String {
        format!("{}lease", self.prefix)
    }
    /// The last fencing token handed out (INCR'd by every new holder).
    pub fn fence(&self) -> String {
        format!("{}fence", self.prefix)
    }
    /// The seq of the last event appended.
    pub fn head(&self) -> String {
        format!("{}head", self.prefix)
    }
    /// The event log: a Stream whose entry IDs are `<seq>-0`.
    pub fn events(&self) -> String {
        format!("{}events", self.prefix)
    }
    /// The latest checkpoint: a hash of `seq`, `data`, `fence`, `saved_ms`.
    pub fn checkpoint(&self) -> String {
        format!("{}checkpoint", self.prefix)
    }
    /// The game's `epoch` (constant across failovers; new when the game starts afresh).
    pub fn meta(&self) -> String {
        format!("{}meta", self.prefix)
    }
    /// The key session tokens and tickets are MAC'd with.
    pub fn session_key(&self) -> String {
        format!("{}session-key", self.prefix)
    }
    /// A spent ticket's nonce (kept until the ticket would have expired anyway).
    pub fn spent_ticket(&self, nonce: &str) -> String {
        format!("{}spent:{nonce}", self.prefix)
    }
    /// A command's stored result, by idempotency key.
    pub fn idempotency(&self, key: &IdemKey) -> String {
        format!("{}idem:{}", self.prefix, key.as_str())
    }
    /// Pub/Sub channel the authority listens on for forwarded commands.
    pub fn command_channel(&self) -> String {
        format!("{}cmd", self.prefix)
    }
    /// Pub/Sub channel every node listens on for lecturer controls that act on every node's
    /// connections (drop them all, a simulated delay): they are no game state, so not events.
    pub fn broadcast_channel(&self) -> String {
        format!("{}broadcast", self.prefix)
    }
    /// Pub/Sub channel one node process listens on for answers.
    pub fn reply_channel(&self, node: &NodeId, instance: &str) -> String {
        format!("{}reply:{node}:{instance}", self.prefix)
    }
}

/// Why a cluster operation did not happen. Every kind is a `503` with `Retry-After` for the
/// client: the game is fine, this node just cannot reach it right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterError {
    /// Redis did not answer (down, restarting, too slow).
    Unavailable(String),
    /// Nobody holds the lease (a failover is under way), or the authority stepped down while
    /// running the command; the command did not happen.
    NoAuthority,
    /// The authority took the command but did not answer in time; it may or may not have run,
    /// so the client retries with the same idempotency key.
    Timeout { waited_ms: u64 },
    /// Our fencing token is no longer the newest: another node took over.
    Fenced,
    /// The append did not continue the log (a gap or a duplicate seq).
    SeqMismatch { expected: u64, got: u64 },
    /// Too many commands queued at the authority.
    Busy,
    /// Redis answered something this code did not expect.
    Protocol(String),
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Unavailable(why) => write!(f, "Redis is unreachable: {why}"),
            ClusterError::NoAuthority => {
                f.write_str("no node runs the game right now (a failover is under way)")
            }
            ClusterError::Timeout { waited_ms } => write!(
                f,
                "the node running the game did not answer within {waited_ms} ms"
            ),
            ClusterError::Fenced => {
                f.write_str("this node's fencing token is stale: another node took over")
            }
            ClusterError::SeqMismatch { expected, got } => {
                write!(
                    f,
                    "append out of order: the log expects seq {expected}, got {got}"
                )
            }
            ClusterError::Busy => f.write_str("too many commands are waiting for the game"),
            ClusterError::Protocol(why) => write!(f, "unexpected answer from Redis: {why}"),
        }
    }
}

impl std::error::Error for ClusterError {}

impl From<ClusterError> for ApiError {
    /// `503 Service Unavailable` with `Retry-After: 1` for every kind: a retry a second later,
    /// with the same `Idempotency-Key`, either finds the new authority or the stored answer.
    fn from(err: ClusterError) -> ApiError {
        let code = match err {
            ClusterError::Unavailable(_) | ClusterError::Protocol(_) => "cluster_unavailable",
            ClusterError::NoAuthority | ClusterError::Fenced | ClusterError::SeqMismatch { .. } => {
                "no_authority"
            }
            ClusterError::Timeout { .. } => "authority_timeout",
            ClusterError::Busy => "server_busy",
        };
        let detail = format!("{err}; retry in a moment with the same Idempotency-Key");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, detail).retry_after(1)
    }
}

// The log's clock and the project's one way to make and spell secrets.
pub(crate) use crate::log::now_ms;
pub(crate) use crate::secret::{hex, random_bytes};

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn node_ids_are_short_lower_case_names() {
        for good in ["a", "node-7", "b_2", &"x".repeat(32)] {
            assert!(good.parse::<NodeId>().is_ok(), "{good}");
        }
        for bad in ["", "A", "a b", "a:b", "ä", &"x".repeat(33), "a\n"] {
            assert!(bad.parse::<NodeId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_key_of_a_game_shares_one_hash_tag() {
        let config = ClusterConfig::new("redis://127.0.0.1", "a".parse().unwrap());
        let keys = config.keys();
        let key = IdemKey::new("7:c1").unwrap();
        for name in [
            keys.lease(),
            keys.fence(),
            keys.head(),
            keys.events(),
            keys.checkpoint(),
            keys.meta(),
            keys.session_key(),
            keys.spent_ticket("ab"),
            keys.idempotency(&key),
        ] {
            assert!(name.starts_with("{clickgame}:"), "{name}");
        }
    }

    #[test]
    fn every_cluster_error_is_a_503_with_retry_after() {
        for err in [
            ClusterError::Unavailable("down".into()),
            ClusterError::NoAuthority,
            ClusterError::Timeout { waited_ms: 2000 },
            ClusterError::Fenced,
            ClusterError::SeqMismatch {
                expected: 3,
                got: 5,
            },
            ClusterError::Busy,
            ClusterError::Protocol("?".into()),
        ] {
            let api = ApiError::from(err.clone());
            assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE, "{err}");
            assert_eq!(api.retry_after, Some(1), "{err}");
            assert!(api.detail.contains("Idempotency-Key"), "{}", api.detail);
        }
    }
}
