//! # Commands from any node to the authority, answered once
//!
//! A node that is not the authority cannot run a command (join, click, leave, an admin
//! control); it **forwards** it and relays the answer. The way there is Redis Pub/Sub:
//!
//! ```text
//!  node B (follower)                      Redis                      node A (authority)
//!  forward(key, body) ── PUBLISH {game}:cmd {reply_to, corr, key, body} ──► inbox
//!        │    (0 receivers → NoAuthority at once)                          │ recall(key)?
//!        │                                                                 │ execute → events
//!        │                                                                 │ append events +
//!        │                                                                 │   result (1 script)
//!  reply ◄── PUBLISH {game}:reply:B:<instance> {corr, ok, body} ◄───────── answer
//! ```
//!
//! Pub/Sub delivers at most once and only to whoever listens right then: no queue to drain
//! after a failover, no stale commands run minutes later. `PUBLISH` returns how many listened,
//! so "nobody runs the game right now" is known at once (`503 no_authority`); a lost message
//! shows as a timeout (`503 authority_timeout`). Either way the client retries **with the same
//! idempotency key**, and that is what makes a retry safe:
//!
//! * The authority stores each command's answer under its key (`{game}:idem:<key>`, with a
//!   TTL) **in the same script** that appends the command's events (`stream.rs`): either both
//!   are in Redis or neither is. A command whose events were lost with a failed authority was
//!   not counted and its retry runs it; a command whose events are in the log has its answer
//!   there too, and its retry gets that answer without running again.
//! * Before running a command the authority looks its key up (one `GET`, pipelined with other
//!   commands' lookups); a retry arriving while the first attempt still runs waits for it.
//!
//! So a click in flight during a failover is counted once or answered with an error the client
//! retries — never counted twice. (Roads not taken: a Redis Stream of commands with a consumer
//! group would survive a failover, but then a new authority runs commands whose clients gave
//! up long ago; per-request reply lists with `BLPOP` cost a blocked connection per request.)
//!
//! On the authority itself, [`super::Node::forward`] skips Redis and puts the command straight
//! into the same inbox: one path, one idempotency rule, one Redis hop less.
//!
//! The boundary to the game is [`GameCore`]: the hub implements `execute`, which runs one
//! command under the game's lock and hands its events to [`Commit::finish`] before unlocking.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use super::conn::Redis;
use super::lease::{Lease, Role};
use super::stream::{Appender, Durable, LogEntry};
use super::ClusterError;

/// Commands waiting at the authority at most; beyond it, `503 server_busy`.
pub const INBOX_CAPACITY: usize = 4096;

/// A command's idempotency key: 1 to 128 characters of `A-Z a-z 0-9 . _ : -`. The caller
/// scopes it (phase 2: `<player id>:<client's Idempotency-Key>`), so one client cannot read or
/// block another's answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdemKey(String);

impl IdemKey {
    pub fn new(key: impl Into<String>) -> Result<IdemKey, String> {
        let key = key.into();
        let ok = (1..=128).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if ok {
            Ok(IdemKey(key))
        } else {
            Err(format!(
                "idempotency key {key:?}: use 1 to 128 characters of A-Z, a-z, 0-9, . _ : -"
            ))
        }
    }

    /// A fresh random key, for a command whose client sent none (then only the node's own
    /// retries are covered, not the client's).
    pub fn random() -> IdemKey {
        IdemKey(format!("srv:{}", super::hex(&super::random_bytes::<12>())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A forwarded command on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    reply_to: String,
    corr: u64,
    key: String,
    body: String,
}

/// The authority's answer on the wire. `ok: false` means the command did not happen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Reply {
    corr: u64,
    ok: bool,
    body: String,
}

/// Where an answer goes.
enum ReplyTo {
    Local(oneshot::Sender<Reply>),
    Remote { channel: String, corr: u64 },
}

/// A command at the authority.
pub struct Incoming {
    key: IdemKey,
    body: String,
    reply: ReplyTo,
}

/// One node's end of forwarding: the answers it waits for and, while it is the authority,
/// the inbox commands go to.
pub(crate) struct Router {
    redis: Redis,
    reply_channel: String,
    command_channel: String,
    broadcast_channel: String,
    /// What arrives on the broadcast channel, for whoever listens on this node.
    broadcasts: tokio::sync::broadcast::Sender<String>,
    next_corr: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    inbox: Mutex<Option<mpsc::Sender<Incoming>>>,
    /// Whether to listen on the command channel (true while an [`Authority`] is alive).
    listen_commands: watch::Sender<bool>,
    /// Whether the answer channel is subscribed: a command published before that could be
    /// answered into the void.
    replies_heard: watch::Sender<bool>,
    /// Whether the command channel is subscribed (what `listen_commands` asked for is done).
    commands_heard: watch::Sender<bool>,
}

impl Router {
    pub(crate) fn start(redis: Redis, instance: &str) -> Arc<Router> {
        let keys = redis.keys();
        let (listen_commands, _) = watch::channel(false);
        let (replies_heard, _) = watch::channel(false);
        let (commands_heard, _) = watch::channel(false);
        let router = Arc::new(Router {
            reply_channel: keys.reply_channel(&redis.config().node_id, instance),
            command_channel: keys.command_channel(),
            broadcast_channel: keys.broadcast_channel(),
            broadcasts: tokio::sync::broadcast::channel(64).0,
            redis: redis.clone(),
            next_corr: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            inbox: Mutex::new(None),
            listen_commands,
            replies_heard,
            commands_heard,
        });
        redis.spawn(listen(Arc::clone(&router)));
        router
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Reply>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn local_inbox(&self) -> Option<mpsc::Sender<Incoming>> {
        self.inbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn open_inbox(&self) -> mpsc::Receiver<Incoming> {
        let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
        *self.inbox.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
        self.listen_commands.send_replace(true);
        rx
    }

    /// Waits (at most `limit`) until commands published now reach us.
    pub(crate) async fn commands_heard(&self, limit: Duration) -> bool {
        let mut heard = self.commands_heard.subscribe();
        let ready = tokio::time::timeout(limit, heard.wait_for(|h| *h)).await;
        ready.is_ok()
    }

    /// Listens to the broadcast channel (every node's messages, our own included).
    pub(crate) fn broadcasts(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.broadcasts.subscribe()
    }

    /// Sends `message` to every node listening right now (at most once, like all Pub/Sub).
    pub(crate) async fn broadcast(&self, message: String) -> Result<(), ClusterError> {
        let channel = self.broadcast_channel.clone();
        self.redis
            .run("PUBLISH broadcast", move |mut c| async move {
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(message)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await
            .map(drop)
    }

    fn close_inbox(&self) {
        *self.inbox.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.listen_commands.send_replace(false);
    }

    /// Sends `body` to the authority and waits for its answer (see the module doc).
    pub(crate) async fn forward(
        &self,
        key: &IdemKey,
        body: String,
    ) -> Result<String, ClusterError> {
        let timeout = self.redis.config().forward_timeout;
        let (tx, rx) = oneshot::channel();
        if let Some(inbox) = self.local_inbox() {
            let incoming = Incoming {
                key: key.clone(),
                body,
                reply: ReplyTo::Local(tx),
            };
            inbox.try_send(incoming).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ClusterError::Busy,
                mpsc::error::TrySendError::Closed(_) => ClusterError::NoAuthority,
            })?;
            return wait(rx, timeout).await;
        }
        let mut heard = self.replies_heard.subscribe();
        let op = self.redis.config().op_timeout;
        if tokio::time::timeout(op, heard.wait_for(|h| *h))
            .await
            .is_err()
        {
            return Err(ClusterError::Unavailable(
                "not (yet) subscribed to the authority's answers".into(),
            ));
        }
        let corr = self.next_corr.fetch_add(1, Ordering::Relaxed);
        self.pending().insert(corr, tx);
        let _forget = Forget(self, corr);
        let request = Request {
            reply_to: self.reply_channel.clone(),
            corr,
            key: key.as_str().to_string(),
            body,
        };
        let message = serde_json::to_string(&request)
            .map_err(|e| ClusterError::Protocol(format!("request: {e}")))?;
        let channel = self.command_channel.clone();
        let listeners: i64 = self
            .redis
            .run("PUBLISH command", move |mut c| async move {
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(message)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        if listeners == 0 {
            return Err(ClusterError::NoAuthority);
        }
        wait(rx, timeout).await
    }

    /// A message from Pub/Sub: a command (we are the authority) or an answer (we asked).
    fn dispatch(&self, channel: &str, payload: &str) {
        if channel == self.command_channel {
            let Ok(request) = serde_json::from_str::<Request>(payload) else {
                tracing::warn!("a forwarded command that does not parse was dropped");
                return;
            };
            let Ok(key) = IdemKey::new(request.key) else {
                tracing::warn!("a forwarded command with a bad idempotency key was dropped");
                return;
            };
            let reply = ReplyTo::Remote {
                channel: request.reply_to,
                corr: request.corr,
            };
            // Not (or no longer) the authority: stay silent, the new one answers.
            let Some(inbox) = self.local_inbox() else {
                return;
            };
            if let Err(mpsc::error::TrySendError::Full(incoming)) = inbox.try_send(Incoming {
                key,
                body: request.body,
                reply,
            }) {
                answer(&self.redis, incoming.reply, Err(ClusterError::Busy));
            }
        } else if channel == self.broadcast_channel {
            // Nobody listening on this node is fine: the message was for whoever is.
            let _ = self.broadcasts.send(payload.to_string());
        } else if channel == self.reply_channel {
            let Ok(reply) = serde_json::from_str::<Reply>(payload) else {
                return;
            };
            if let Some(waiting) = self.pending().remove(&reply.corr) {
                let _ = waiting.send(reply);
            }
        }
    }
}

/// Drops a pending answer slot when its `forward` ends, whichever way.
struct Forget<'a>(&'a Router, u64);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.pending().remove(&self.1);
    }
}

async fn wait(rx: oneshot::Receiver<Reply>, timeout: Duration) -> Result<String, ClusterError> {
    match tokio::time::timeout(timeout, rx).await {
        Err(_) => Err(ClusterError::Timeout {
            waited_ms: timeout.as_millis() as u64,
        }),
        Ok(Err(_)) => Err(ClusterError::NoAuthority),
        Ok(Ok(reply)) if reply.ok => Ok(reply.body),
        Ok(Ok(reply)) => Err(match reply.body.as_str() {
            "busy" => ClusterError::Busy,
            _ => ClusterError::NoAuthority,
        }),
    }
}

/// Sends an answer; to a remote node through Redis, without waiting.
fn answer(redis: &Redis, to: ReplyTo, result: Result<String, ClusterError>) {
    let (ok, body) = match result {
        Ok(body) => (true, body),
        Err(ClusterError::Busy) => (false, "busy".to_string()),
        Err(e) => (false, e.to_string()),
    };
    match to {
        ReplyTo::Local(tx) => {
            let _ = tx.send(Reply { corr: 0, ok, body });
        }
        ReplyTo::Remote { channel, corr } => {
            let Ok(message) = serde_json::to_string(&Reply { corr, ok, body }) else {
                return;
            };
            let redis = redis.clone();
            redis.clone().spawn(async move {
                let _ = redis
                    .run("PUBLISH reply", move |mut c| async move {
                        redis::cmd("PUBLISH")
                            .arg(channel)
                            .arg(message)
                            .query_async::<i64>(&mut c)
                            .await
                    })
                    .await;
            });
        }
    }
}

/// The Pub/Sub connection: answers always, commands while we are the authority. Reconnects
/// by itself; messages sent while it is away are lost (and retried by their clients).
async fn listen(router: Arc<Router>) {
    let op = router.redis.config().op_timeout;
    let mut want_commands = router.listen_commands.subscribe();
    loop {
        let client = router.redis.client().clone();
        let Ok(Ok(pubsub)) = tokio::time::timeout(op, client.get_async_pubsub()).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let (mut sink, mut messages) = pubsub.split();
        let channels = [
            router.reply_channel.as_str(),
            router.broadcast_channel.as_str(),
        ];
        let subscribed = tokio::time::timeout(op, sink.subscribe(&channels[..])).await;
        if !matches!(subscribed, Ok(Ok(()))) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        router.replies_heard.send_replace(true);
        let mut listening = false;
        loop {
            let wanted = *want_commands.borrow_and_update();
            if wanted != listening {
                let channel = router.command_channel.as_str();
                let changed = if wanted {
                    tokio::time::timeout(op, sink.subscribe(channel)).await
                } else {
                    tokio::time::timeout(op, sink.unsubscribe(channel)).await
                };
                if !matches!(changed, Ok(Ok(()))) {
                    break;
                }
                listening = wanted;
                router.commands_heard.send_replace(wanted);
            }
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else { break };
                    let channel = message.get_channel_name().to_string();
                    if let Ok(payload) = message.get_payload::<String>() {
                        router.dispatch(&channel, &payload);
                    }
                }
                changed = want_commands.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
        router.replies_heard.send_replace(false);
        router.commands_heard.send_replace(false);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the hub implements so the authority can run commands on the game.
pub trait GameCore {
    /// Runs one forwarded command (`body`, in the hub's own format) on the game. While still
    /// holding the game's lock — so that seq order is queue order — it calls
    /// [`Commit::finish`] with the events the command caused (already numbered and serialised
    /// exactly as the transports send them; none is fine) and the answer for the client.
    fn execute(&self, body: &str, commit: Commit) -> Committed;
}

/// The one way to finish a command: its events and its answer go to Redis together.
pub struct Commit {
    appender: Appender,
    result_key: String,
}

impl Commit {
    pub fn finish(self, entries: Vec<LogEntry>, reply: String) -> Committed {
        let durable = self
            .appender
            .push_with_result(entries, self.result_key, reply.clone());
        Committed { reply, durable }
    }

    /// The fencing token the events will be written under.
    pub fn fence(&self) -> u64 {
        self.appender.fence()
    }
}

/// A command whose events are on their way to Redis.
pub struct Committed {
    reply: String,
    durable: Durable,
}

/// This node's term as the authority. Obtained from [`super::Node::authority`]; it ends when
/// the lease is lost (or a write fails). Dropping it stops taking commands.
pub struct Authority {
    pub(crate) fence: u64,
    pub(crate) epoch: String,
    pub(crate) redis: Redis,
    pub(crate) lease: Arc<Lease>,
    pub(crate) role: watch::Receiver<Role>,
    pub(crate) appender: Appender,
    pub(crate) inbox: mpsc::Receiver<Incoming>,
    pub(crate) router: Arc<Router>,
}

impl Drop for Authority {
    fn drop(&mut self) {
        self.router.close_inbox();
    }
}

impl Authority {
    pub fn fence(&self) -> u64 {
        self.fence
    }

    /// The game's epoch: the same across failovers.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Where the hub pushes the events the game causes by itself (timer) and checkpoints.
    pub fn appender(&self) -> &Appender {
        &self.appender
    }

    /// Whether the term is still on, by this node's clock (see [`Lease::holds`]).
    pub fn holds(&self) -> bool {
        self.lease.holds(self.fence)
    }

    /// Gives the lease up (this node cannot run the game, e.g. the game in Redis does not
    /// restore): another node gets its chance at once instead of this one holding it idle.
    pub fn resign(&self) {
        self.lease.resign(self.fence);
    }

    /// Runs forwarded commands on `core` until the term ends. Lookups and writes of different
    /// commands overlap; each command runs at most once per idempotency key.
    pub async fn serve<C: GameCore + ?Sized>(&mut self, core: &C) {
        let mut lookups = FuturesUnordered::new();
        let mut writes = FuturesUnordered::new();
        // Keys being looked up or written, and the duplicates waiting for their answer.
        let mut in_flight: HashMap<IdemKey, Vec<ReplyTo>> = HashMap::new();
        let mut role = self.role.clone();
        loop {
            let still_ours = matches!(*role.borrow_and_update(),
                Role::Authority { fence } if fence == self.fence);
            if !still_ours {
                break;
            }
            tokio::select! {
                changed = role.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                incoming = self.inbox.recv() => {
                    let Some(incoming) = incoming else { break };
                    if let Some(waiting) = in_flight.get_mut(&incoming.key) {
                        waiting.push(incoming.reply);
                        continue;
                    }
                    in_flight.insert(incoming.key.clone(), Vec::new());
                    let redis = self.redis.clone();
                    lookups.push(async move {
                        let stored = recall(&redis, &incoming.key).await;
                        (incoming, stored)
                    });
                }
                Some((incoming, stored)) = lookups.next() => {
                    match stored {
                        Ok(Some(answer)) => self.finish(&mut in_flight, incoming, Ok(answer)),
                        Ok(None) if self.lease.holds(self.fence) => {
                            let commit = Commit {
                                appender: self.appender.clone(),
                                result_key: self.redis.keys().idempotency(&incoming.key),
                            };
                            let Committed { reply, durable } = core.execute(&incoming.body, commit);
                            writes.push(async move {
                                let written = durable.await;
                                (incoming, written.map(|()| reply))
                            });
                        }
                        // Paused past our lease: run nothing more, and leave remote commands
                        // to the new authority, which heard them too.
                        Ok(None) => {
                            self.abandon(&mut in_flight, incoming);
                            break;
                        }
                        Err(e) => self.finish(&mut in_flight, incoming, Err(e)),
                    }
                }
                Some((incoming, result)) = writes.next() => {
                    self.finish(&mut in_flight, incoming, result);
                }
            }
        }
        // What is still in flight is answered by the drop: local callers see NoAuthority,
        // remote ones time out, and their retries go to the next authority.
    }

    /// Gives a command up without running it: local callers hear `NoAuthority` at once,
    /// remote ones get no word from us (the node that now holds the lease answers them).
    fn abandon(&self, in_flight: &mut HashMap<IdemKey, Vec<ReplyTo>>, incoming: Incoming) {
        let duplicates = in_flight.remove(&incoming.key).unwrap_or_default();
        for to in std::iter::once(incoming.reply).chain(duplicates) {
            if let ReplyTo::Local(_) = to {
                answer(&self.redis, to, Err(ClusterError::NoAuthority));
            }
        }
    }

    fn finish(
        &self,
        in_flight: &mut HashMap<IdemKey, Vec<ReplyTo>>,
        incoming: Incoming,
        result: Result<String, ClusterError>,
    ) {
        let duplicates = in_flight.remove(&incoming.key).unwrap_or_default();
        for to in std::iter::once(incoming.reply).chain(duplicates) {
            answer(&self.redis, to, result.clone());
        }
    }
}

/// The stored answer of a command that already ran, if any.
async fn recall(redis: &Redis, key: &IdemKey) -> Result<Option<String>, ClusterError> {
    let name = redis.keys().idempotency(key);
    redis
        .run("recall", move |mut c| async move {
            redis::cmd("GET").arg(name).query_async(&mut c).await
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_short_and_plain() {
        for good in ["a", "7:c-1", "srv:00ff", &"k".repeat(128)] {
            assert!(IdemKey::new(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a\nb", "ü", "*", &"k".repeat(129)] {
            assert!(IdemKey::new(bad).is_err(), "{bad:?}");
        }
        assert_ne!(IdemKey::random(), IdemKey::random());
    }
}
