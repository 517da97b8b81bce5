//! # The hub in a cluster: a replica of the game, filled from the log in Redis
//!
//! With `--redis-url` several processes serve one game (`docs/scaling.md`). The transports do
//! not notice: they still catch up from the hub's ring buffer and wait on its bell. What
//! changes is who fills the ring, and where a snapshot comes from:
//!
//! * **Every node** tails the log in Redis (`clustered.rs` calls [`Hub::apply_log`]) into its
//!   ring and folds each event into a [`Replica`] of the game with the game's own
//!   [`GameState::apply`]. Snapshots, "is this player still here" and the lecturer's figures
//!   read the replica, so all nodes answer alike and a snapshot always matches the ring's seq.
//! * **The node holding the lease** also runs the [`Game`] (restored from the checkpoint and
//!   the events after it, [`Hub::begin_term`]). Its events go to Redis through the term's
//!   [`Appender`] — not into its own ring: it reads them back like everybody else, so its
//!   clients see exactly the bytes the other nodes' clients see. Every few hundred events it
//!   checkpoints the game into the same queue.
//! * **Presence** (who is still connected) is the authority's business, but connections are on
//!   every node. A node tells the authority about a player's contact when their transport
//!   changes and, while the player holds a stream here, every quarter of the idle timeout — a
//!   renewal, not an open/close count, so a node that dies takes its players' presence with it
//!   after one idle timeout instead of keeping them for ever.
//!
//! Roads not taken: the authority pushing events into its own ring at once (its clients would
//! see an event that a failover can still lose, and before anybody else), and a per-request
//! Redis read in the session extractors (every poll of every spectator would depend on Redis).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Batch, Core, Hub, HubConfig, Snapshot};
use crate::cluster::fold::fold;
use crate::cluster::{Appender, LogEntry, Node, Restored};
use crate::error::to_json;
use crate::game::{Event, EventKind, Game, GameState, LeaveReason, PlayerId, Rules, Transport};
use crate::log::{now_ms, Log, WireEvent};

/// The authority checkpoints the game after this many events (and when its term starts on a
/// game that has none): a new authority folds at most this many events on top of it.
pub const CHECKPOINT_EVERY: u64 = 256;

/// What a checkpoint holds, as JSON: the game's visible state and the next player id.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointData {
    state: GameState,
    next_player_id: PlayerId,
}

/// The game as this node has read it from the log, as of the ring's last seq.
#[derive(Debug)]
struct Replica {
    state: GameState,
    /// One above every player id seen in the log.
    next_player_id: PlayerId,
    /// Whether it has been read from Redis at least once.
    loaded: bool,
}

/// One player's connections on this node, and what the authority was last told.
#[derive(Debug)]
struct Presence {
    streams: u32,
    transport: Transport,
    told: Option<(Instant, Transport)>,
    /// The last round whose delivery to this player the authority was told of.
    delivered: Option<u64>,
}

/// What a node tells the node running the game about its players (`clustered.rs` forwards it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tell {
    /// Heard from over this transport (idle clock, scoreboard label).
    Contact(PlayerId, Transport),
    /// The round's `round_started` reached the player at `at` (ms, this node's clock) over
    /// `via`, whose simulated delay here was `delay_ms`: their reaction time counts from there,
    /// or from when it was due if that was earlier (`Game::round_delivered`).
    Delivered {
        player: PlayerId,
        round: u64,
        at: u64,
        via: Transport,
        delay_ms: u64,
    },
}

/// This node's term as the authority, kept with the game it runs.
pub(crate) struct Term {
    appender: Appender,
    epoch: Arc<str>,
    /// The seq of the last checkpoint queued.
    checkpointed: u64,
}

/// A hub's cluster side: the node, the rules (to restore a game on becoming the authority),
/// the replica and the presence book.
pub(crate) struct Cluster {
    node: Arc<Node>,
    rules: Rules,
    seed: u64,
    replica: RwLock<Replica>,
    presence: Mutex<HashMap<PlayerId, Presence>>,
    /// How often a player's presence is renewed while they hold a stream here.
    refresh: Duration,
    /// Where contacts to tell the authority go (`clustered.rs` forwards them).
    tell: mpsc::UnboundedSender<Tell>,
    /// The newest `round_started` this node has read: its seq and round.
    last_start: Mutex<Option<(u64, u64)>>,
}

/// A player's presence is renewed this often while they hold a stream on a node: a quarter of
/// the idle timeout, between 1 and 15 seconds.
pub fn presence_refresh(idle_timeout_ms: u64) -> Duration {
    Duration::from_millis(idle_timeout_ms / 4)
        .clamp(Duration::from_secs(1), Duration::from_secs(15))
}

impl Cluster {
    fn replica(&self) -> std::sync::RwLockReadGuard<'_, Replica> {
        self.replica.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn replica_mut(&self) -> std::sync::RwLockWriteGuard<'_, Replica> {
        self.replica.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn presence(&self) -> MutexGuard<'_, HashMap<PlayerId, Presence>> {
        self.presence.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&GameState) -> R) -> R {
        f(&self.replica().state)
    }

    /// Whether `player` may hold a session: in the game as far as we have read, or joined
    /// after what we have read (a token is minted only at a join; an id we have not seen yet
    /// is a join still on its way to us — a client may well be faster than our tail).
    pub(crate) fn knows(&self, player: PlayerId) -> bool {
        let replica = self.replica();
        replica.state.players.contains_key(&player) || player >= replica.next_player_id
    }

    pub(crate) fn transport_of(&self, player: PlayerId) -> Option<Transport> {
        self.replica()
            .state
            .players
            .get(&player)
            .and_then(|p| p.transport)
    }

    pub(crate) fn token_for(&self, player: PlayerId) -> String {
        self.node
            .sessions()
            .token_for(player)
            .unwrap_or_else(|err| {
                tracing::error!(%err, player, "no token could be made");
                String::new()
            })
    }

    /// The MAC check against the game's key, then the replica: see [`Cluster::knows`]. A
    /// player who left for being idle does not come back with their token in a cluster (the
    /// authority forgets them; they join again).
    pub(crate) fn authenticate(&self, token: &str) -> Option<PlayerId> {
        let player = self.node.sessions().verify(token).ok().flatten()?;
        self.knows(player).then_some(player)
    }

    /// A contact of `player` over `transport` on this node: told to the authority if the
    /// transport changed or the last word is older than the refresh interval.
    pub(crate) fn contact(&self, player: PlayerId, transport: Transport, stream: bool) {
        let mut book = self.presence();
        let p = book.entry(player).or_insert(Presence {
            streams: 0,
            transport,
            told: None,
            delivered: None,
        });
        if stream {
            p.streams += 1;
        }
        p.transport = transport;
        let due = p
            .told
            .is_none_or(|(at, told)| told != transport || at.elapsed() >= self.refresh);
        if due {
            p.told = Some((Instant::now(), transport));
            let _ = self.tell.send(Tell::Contact(player, transport));
        }
    }

    /// `events` reached `player` here: if they show the live round, the authority hears of it
    /// (once per player and round).
    pub(crate) fn round_delivered(
        &self,
        player: PlayerId,
        events: &[Arc<WireEvent>],
        via: Transport,
        delay_ms: u64,
    ) {
        let Some((seq, round)) = *self
            .last_start
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        else {
            return;
        };
        if !super::shows_round(events, seq) {
            return;
        }
        let mut book = self.presence();
        if let Some(p) = book.get_mut(&player) {
            if p.delivered == Some(round) {
                return;
            }
            p.delivered = Some(round);
        }
        let _ = self.tell.send(Tell::Delivered {
            player,
            round,
            at: now_ms(),
            via,
            delay_ms,
        });
    }

    pub(crate) fn stream_opened(&self, player: PlayerId, transport: Transport) {
        self.contact(player, transport, true);
    }

    pub(crate) fn stream_closed(&self, player: PlayerId) {
        if let Some(p) = self.presence().get_mut(&player) {
            p.streams = p.streams.saturating_sub(1);
        }
    }

    /// Renews the presence of every player holding a stream here whose last word is due, and
    /// forgets players who hold none and were last heard of long ago.
    pub(crate) fn renew_presence(&self) {
        let mut book = self.presence();
        book.retain(|_, p| {
            p.streams > 0
                || p.told
                    .is_some_and(|(at, _)| at.elapsed() < self.refresh * 2)
        });
        for (player, p) in book.iter_mut() {
            let due = p.told.is_none_or(|(at, _)| at.elapsed() >= self.refresh);
            if p.streams > 0 && due {
                p.told = Some((Instant::now(), p.transport));
                let _ = self.tell.send(Tell::Contact(*player, p.transport));
            }
        }
    }
}

/// The state, next player id and seq a checkpoint holds; without one, a game that has just
/// started (the poll interval comes from the rules, not from an event).
fn checkpoint_state(
    checkpoint: Option<&crate::cluster::Checkpoint>,
    rules: &Rules,
) -> Result<(GameState, PlayerId, u64), String> {
    match checkpoint {
        Some(cp) => {
            let data: CheckpointData = serde_json::from_str(&cp.data)
                .map_err(|e| format!("checkpoint at seq {}: {e}", cp.seq))?;
            Ok((data.state, data.next_player_id, cp.seq))
        }
        None => Ok((
            GameState {
                poll_interval_ms: rules.poll_interval_ms,
                ..GameState::default()
            },
            1,
            0,
        )),
    }
}

/// One log entry as the ring holds it. The JSON is kept byte for byte; only `ts` and the type
/// name are read from it.
fn wire(entry: &LogEntry) -> Result<(Arc<WireEvent>, Event), String> {
    let event: Event = serde_json::from_str(&entry.json)
        .map_err(|e| format!("event {} does not parse: {e}", entry.seq))?;
    if event.seq != entry.seq {
        return Err(format!("entry {} holds event {}", entry.seq, event.seq));
    }
    let wire = WireEvent::new(
        entry.seq,
        event.ts,
        event.kind.type_name(),
        entry.json.clone(),
    );
    Ok((Arc::new(wire), event))
}

impl Hub {
    /// A hub for one node of a cluster. It serves nothing but an empty snapshot until
    /// `clustered.rs` has loaded the log ([`Hub::load_replica`]); contacts to tell the
    /// authority come out of the returned receiver.
    pub(crate) fn clustered(
        rules: Rules,
        seed: u64,
        config: HubConfig,
        node: Arc<Node>,
    ) -> (Hub, mpsc::UnboundedReceiver<Tell>) {
        let (tell, told) = mpsc::unbounded_channel();
        let state = GameState {
            poll_interval_ms: rules.poll_interval_ms,
            ..GameState::default()
        };
        let cluster = Cluster {
            node,
            refresh: presence_refresh(rules.idle_timeout_ms),
            rules: rules.clone(),
            seed,
            replica: RwLock::new(Replica {
                state,
                next_player_id: 1,
                loaded: false,
            }),
            presence: Mutex::new(HashMap::new()),
            tell,
            last_start: Mutex::new(None),
        };
        let game = Game::new(rules, seed, now_ms());
        let hub = Hub::build_with(game, 0, HashMap::new(), Vec::new(), config, Some(cluster));
        (hub, told)
    }

    /// The cluster node this hub belongs to; `None` without `--redis-url`.
    pub fn node(&self) -> Option<&Arc<Node>> {
        self.inner.cluster.as_ref().map(|c| &c.node)
    }

    /// How often presence is renewed (`None` without a cluster).
    pub(crate) fn presence_refresh(&self) -> Option<Duration> {
        self.inner.cluster.as_ref().map(|c| c.refresh)
    }

    pub(crate) fn renew_presence(&self) {
        if let Some(cluster) = &self.inner.cluster {
            cluster.renew_presence();
        }
    }

    /// Whether this node has read the game from Redis at least once.
    pub fn replica_loaded(&self) -> bool {
        self.inner
            .cluster
            .as_ref()
            .is_some_and(|c| c.replica().loaded)
    }

    /// The events of a command (or of the timer) on the authority: numbered and serialised as
    /// always, then queued for Redis — with the running command's answer if one is being
    /// collected, on their own otherwise.
    pub(super) fn publish_to_log(&self, core: &mut Core, kinds: Vec<EventKind>, now: u64) {
        let mut entries = Vec::with_capacity(kinds.len());
        for kind in kinds {
            core.last_seq += 1;
            if let EventKind::PlayerLeft {
                player,
                reason: LeaveReason::Idle,
            } = &kind
            {
                // No coming back with the old token in a cluster: the right to would not
                // survive a failover (it is not in the checkpoint), so it is not offered.
                core.game.forget(*player);
            }
            let type_name = kind.type_name();
            let event = Event {
                seq: core.last_seq,
                ts: now,
                kind,
            };
            let json = to_json(&event, "an event").unwrap_or_else(|_| {
                format!(r#"{{"seq":{},"ts":{now},"type":"{type_name}"}}"#, event.seq)
            });
            entries.push(LogEntry {
                seq: event.seq,
                json,
            });
        }
        if let Some(collected) = core.collect.as_mut() {
            collected.extend(entries);
        } else if let Some(term) = &core.term {
            // Timer events: nobody waits for them; a failed write ends the term anyway.
            let _durable = term.appender.push(entries);
            self.checkpoint_if_due(core);
        } else {
            tracing::warn!(
                events = entries.len(),
                "events outside a term are dropped: this node no longer runs the game"
            );
        }
        self.inner.timer.notify_one();
    }

    /// Queues a checkpoint once [`CHECKPOINT_EVERY`] events have been pushed since the last.
    /// Only after a push: a checkpoint must never name a seq the log does not have yet.
    fn checkpoint_if_due(&self, core: &mut Core) {
        let Some(term) = core.term.as_mut() else {
            return;
        };
        if core.last_seq < term.checkpointed + CHECKPOINT_EVERY {
            return;
        }
        Hub::queue_checkpoint(term, &core.game, core.last_seq);
    }

    fn queue_checkpoint(term: &mut Term, game: &Game, seq: u64) {
        let data = CheckpointData {
            state: game.state().clone(),
            next_player_id: game.next_player_id(),
        };
        match to_json(&data, "a checkpoint") {
            Ok(json) => {
                let _durable = term.appender.checkpoint(seq, json);
                term.checkpointed = seq;
            }
            Err(_) => tracing::error!(seq, "checkpoint skipped"),
        }
    }

    /// Starts collecting the events of one forwarded command (`commands.rs`).
    pub(crate) fn start_collecting(&self) {
        self.core().collect = Some(Vec::new());
    }

    /// Hands the collected events to `finish` (which queues them with the command's answer)
    /// while the game is still locked, so that queue order stays seq order.
    pub(crate) fn finish_collecting<R>(&self, finish: impl FnOnce(Vec<LogEntry>) -> R) -> R {
        let mut core = self.core();
        let entries = core.collect.take().unwrap_or_default();
        let done = finish(entries);
        self.checkpoint_if_due(&mut core);
        done
    }

    /// Starts this node's term as the authority: the game as Redis has it (checkpoint + the
    /// events after it, folded with the game's own `apply`), continued with the next seq of
    /// the same epoch. Read *after* the lease was won, so nobody else appends meanwhile.
    pub(crate) fn begin_term(
        &self,
        appender: Appender,
        epoch: &str,
        restored: &Restored,
    ) -> Result<(), String> {
        let cluster = self.inner.cluster.as_ref().ok_or("not a cluster node")?;
        let now = now_ms();
        let (rules, seed) = (cluster.rules.clone(), cluster.seed);
        let (game, last_seq, checkpointed) = if restored.head == 0 && restored.checkpoint.is_none()
        {
            (Game::new(rules, seed, now), 0, None)
        } else {
            let (state, next_id, seq) = checkpoint_state(restored.checkpoint.as_ref(), &rules)?;
            let folded = fold(state, next_id, seq, restored.after_checkpoint())
                .map_err(|e| e.to_string())?;
            if folded.last_seq != restored.head {
                return Err(format!(
                    "the log ends at {} but the fold at {}",
                    restored.head, folded.last_seq
                ));
            }
            let game = Game::restore(rules, seed, now, folded.state, folded.next_player_id)
                .map_err(|e| e.0)?;
            let cp = restored.checkpoint.as_ref().map(|c| c.seq);
            (game, folded.last_seq, cp)
        };
        let mut core = self.core();
        core.game = game;
        core.last_seq = last_seq;
        core.collect = None;
        core.secrets.clear();
        core.departed.clear();
        let mut term = Term {
            appender,
            epoch: Arc::from(epoch),
            checkpointed: checkpointed.unwrap_or(0),
        };
        // A game without a checkpoint gets one at once: the state at its first seq (the poll
        // interval, say) is then in Redis, not only in this node's flags.
        if checkpointed.is_none() {
            Hub::queue_checkpoint(&mut term, &core.game, last_seq);
        }
        core.term = Some(term);
        drop(core);
        self.inner.timer.notify_one();
        tracing::info!(
            epoch,
            next_seq = last_seq + 1,
            checkpoint = ?checkpointed,
            "this node runs the game now"
        );
        Ok(())
    }

    /// Ends the term: the game in memory may be ahead of Redis and is not used again; the next
    /// term restores from Redis.
    pub(crate) fn end_term(&self) {
        let mut core = self.core();
        core.term = None;
        core.collect = None;
    }

    /// The epoch of the term this node is in, for the snapshot a join answers with.
    pub(super) fn term_epoch(core: &Core) -> Option<Arc<str>> {
        core.term.as_ref().map(|t| t.epoch.clone())
    }

    /// Replaces the ring and the replica with what Redis holds (at start, after a gap, after
    /// Redis was away). A new epoch means a new game: clients resynchronise from a snapshot.
    pub(crate) fn load_replica(&self, restored: &Restored) -> Result<(), String> {
        let cluster = self.inner.cluster.as_ref().ok_or("not a cluster node")?;
        let epoch = restored.epoch.as_deref().ok_or("no game has started yet")?;
        let (state, next_id, seq) = checkpoint_state(restored.checkpoint.as_ref(), &cluster.rules)?;
        let folded =
            fold(state, next_id, seq, restored.after_checkpoint()).map_err(|e| e.to_string())?;
        let history = self.inner.config.history;
        let mut last_start = None;
        let mut ring = Vec::new();
        for entry in restored.last(history) {
            let (w, event) = wire(entry)?;
            if let EventKind::RoundStarted { round, .. } = event.kind {
                last_start = Some((event.seq, round));
            }
            ring.push(w);
        }
        *cluster
            .last_start
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = last_start;
        {
            let mut log = self.log_mut();
            *log = Log::new(history, ring, restored.head);
            let mut replica = cluster.replica_mut();
            *replica = Replica {
                state: folded.state,
                next_player_id: folded.next_player_id,
                loaded: true,
            };
            let mut current = self
                .inner
                .epoch
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if &**current != epoch {
                *current = Arc::from(epoch);
            }
        }
        self.inner.bell.ring_news();
        Ok(())
    }

    /// Appends entries the tail read to the ring and folds them into the replica, then wakes
    /// the connections. `Err` when they do not continue the ring (the caller reloads).
    pub(crate) fn apply_log(&self, entries: &[LogEntry]) -> Result<(), String> {
        let cluster = self.inner.cluster.as_ref().ok_or("not a cluster node")?;
        if entries.is_empty() {
            return Ok(());
        }
        {
            let mut log = self.log_mut();
            let mut replica = cluster.replica_mut();
            for entry in entries {
                if entry.seq != log.last_seq() + 1 {
                    return Err(format!(
                        "entry {} does not follow {}",
                        entry.seq,
                        log.last_seq()
                    ));
                }
                let (wire, event) = wire(entry)?;
                if let EventKind::RoundStarted { round, .. } = &event.kind {
                    *cluster
                        .last_start
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some((event.seq, *round));
                }
                if let EventKind::PlayerJoined { player, .. }
                | EventKind::PlayerRejoined { player, .. } = &event.kind
                {
                    replica.next_player_id = replica.next_player_id.max(player.saturating_add(1));
                }
                replica.state.apply(&event.kind, event.ts);
                log.push(wire);
            }
        }
        self.inner.bell.ring_news();
        Ok(())
    }

    /// The replica as a snapshot, at the ring's last seq.
    pub(super) fn replica_snapshot(&self) -> Snapshot {
        let log = self.log();
        let epoch = self.epoch();
        let state = self
            .inner
            .cluster
            .as_ref()
            .map(|c| c.replica().state.clone())
            .unwrap_or_default();
        self.snapshot_from(&state, log.last_seq(), &epoch)
    }

    /// [`Hub::catch_up`] in a cluster. One difference: a client of this epoch that is *ahead*
    /// of our ring saw those events on a faster node (or in a join's answer); it gets nothing
    /// yet and waits for our tail to get there, instead of a snapshot that would take it back.
    ///
    /// Before this node has read the game at all (just started, Redis away since), nobody gets
    /// anything yet — not a snapshot of an empty game that a moment later turns out to be
    /// another epoch; streams wait for the first load like for any event.
    pub(super) fn catch_up_replica(&self, since: Option<u64>, epoch: Option<&str>) -> Batch {
        if !self.replica_loaded() {
            return Batch {
                events: Vec::new(),
                last_seq: since.unwrap_or(0),
            };
        }
        let log = self.log();
        let current = self.epoch();
        if let (Some(since), Some(epoch)) = (since, epoch) {
            if epoch == &*current {
                if let Some(events) = log.after(since) {
                    return Batch {
                        events,
                        last_seq: log.last_seq(),
                    };
                }
                if since > log.last_seq() {
                    return Batch {
                        events: Vec::new(),
                        last_seq: since,
                    };
                }
            }
        } else if let (Some(since), None) = (since, epoch) {
            if let Some(events) = log.after(since) {
                return Batch {
                    events,
                    last_seq: log.last_seq(),
                };
            }
        }
        let state = self
            .inner
            .cluster
            .as_ref()
            .map(|c| c.replica().state.clone())
            .unwrap_or_default();
        let snapshot = self.snapshot_from(&state, log.last_seq(), &current);
        drop(log);
        Hub::snapshot_batch(snapshot)
    }
}
