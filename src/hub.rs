//! # The hub: the game, its numbered event log, and fan-out
//!
//! Transports never touch the game; they talk to a [`Hub`], a cheap-to-clone handle. The hub
//!
//! * runs commands (join, click, leave, transport contact) against the [`Game`] behind one mutex,
//! * numbers the resulting events (`seq`), stamps them (`ts`) and serialises each **once** into a
//!   [`WireEvent`] (JSON for polling/WebSocket, a ready SSE frame) so every transport sends the
//!   same bytes,
//! * keeps the last `history` events in a ring buffer ([`Log`], in `log.rs`) and answers
//!   "everything after seq N"
//!   ([`Hub::catch_up`]), falling back to a snapshot when N is too old or from another epoch,
//! * and wakes waiting connections by ringing a [`Bell`] (`bell.rs`: one wake per worker
//!   thread, which wakes its own connections).
//!
//! Why a shared log plus a bell, and not a `broadcast` channel or a queue per connection: each
//! connection only keeps a cursor (its last seq), so an idle connection costs no queue memory, a
//! slow one can never make the server buffer without bound, and "no skip, no reorder" holds by
//! construction — every sender reads the same ordered log. The price is a read lock per wake-up.
//!
//! Lock order: `core` (mutex) before `log` (rwlock) before the epoch and, in a cluster, the
//! replica. Readers that only catch up take just the log's read lock.
//!
//! **In a cluster** (`--redis-url`, `docs/scaling.md`) the public face stays the same — the
//! transports catch up from the same ring buffer and wait on the same bell — but what fills
//! it changes (`hub/replica.rs`): every node fills its ring from the log in Redis and keeps a
//! *replica* of the game folded from it (snapshots, "is this player still here"), and only the
//! node holding the lease runs the [`Game`], whose events go to Redis instead of the ring.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

mod replica;

use replica::Cluster;
pub use replica::Tell;

use serde::Serialize;
use tokio::sync::Notify;

use crate::bell::{Bell, Subscription};
use crate::error::to_json;
use crate::game::{
    validate_event, Click, ClickOutcome, Event, EventKind, Game, GameError, GameState,
    InvalidState, LeaveReason, NameCheck, Player, PlayerId, Round, Rules, Transport,
    TransportTally, BOARD_SIZE, MAX_SAFE_INTEGER, ROUND_STARTED,
};
use crate::log::{now_ms, Batch, Log, WireEvent};
use crate::metrics::Metrics;
use crate::persist::{SavedState, STATE_VERSION};
use crate::secret::{hex, random_bytes, same, unhex};

/// The `type` of the snapshot event (the catch-up a client gets instead of history).
pub const SNAPSHOT: &str = "snapshot";

/// Settings of the event log. (The AJAX polling interval is game state: the lecturer can change
/// it, so it travels in the snapshot and in `settings` events.)
#[derive(Debug, Clone)]
pub struct HubConfig {
    pub history: usize,
}

/// The whole visible state, as the `snapshot` event and `GET /api/snapshot` carry it.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub seq: u64,
    pub ts: u64,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub epoch: String,
    pub board: u32,
    pub poll_interval_ms: u64,
    pub paused: bool,
    /// Whether new players may join (the lecturer can close joining).
    pub joins_open: bool,
    pub round: Option<Round>,
    pub players: Vec<Player>,
    pub transports: TransportTally,
}

/// A successful join.
#[derive(Debug, Clone, Serialize)]
pub struct Joined {
    pub player_id: PlayerId,
    pub token: String,
    pub snapshot: Snapshot,
}

/// The game and everything that must change together with it.
struct Core {
    game: Game,
    last_seq: u64,
    /// Each player's 128-bit session secret. Tokens are `<player id>.<secret as hex>` so the
    /// lookup is by id and the secret is compared in constant time.
    secrets: HashMap<PlayerId, [u8; 16]>,
    /// Players who left for being idle, with the seq of their leaving: they may come back with
    /// the same token and score while that seq is still within the history window.
    departed: HashMap<PlayerId, u64>,
    /// In a cluster, while this node holds the lease: where its events go (Redis).
    term: Option<replica::Term>,
    /// In a cluster, while a forwarded command runs: its events, written together with its
    /// answer (`commands.rs`).
    collect: Option<Vec<crate::cluster::LogEntry>>,
    /// The newest `round_started`: its seq and its round. A delivery that carries this seq (or
    /// a snapshot taken after it) shows that round to its player; see [`Hub::round_delivered`].
    last_start: Option<(u64, u64)>,
}

/// Tells open connections to end: a lecturer's "drop all connections" (generation bumps) or
/// the server shutting down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Control {
    pub generation: u64,
    pub shutting_down: bool,
}

struct Inner {
    metrics: Metrics,
    /// Simulated network delay per transport, in ms (a lecturer control).
    delays: [AtomicU64; Transport::COUNT],
    core: Mutex<Core>,
    log: RwLock<Log>,
    /// Rung after every publish and every order to end all connections.
    bell: Arc<Bell>,
    control: Mutex<Control>,
    timer: Notify,
    /// Random per server start; in a cluster, the game's (kept in Redis, the same on every node
    /// and across failovers). Changes only in a cluster, when Redis starts a new game.
    epoch: RwLock<Arc<str>>,
    config: HubConfig,
    /// `Some` with `--redis-url`: this node's part of a game shared through Redis.
    cluster: Option<Cluster>,
}

/// The handle every transport holds. Clone it freely.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

/// Held by a long-lived downstream connection (SSE, WebSocket, a parked long poll) of a player,
/// so the player cannot go idle while it is open. Dropping it records the close.
pub struct StreamGuard {
    hub: Hub,
    player: PlayerId,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if let Some(cluster) = &self.hub.inner.cluster {
            cluster.stream_closed(self.player);
            return;
        }
        let now = now_ms();
        self.hub.core().game.stream_closed(self.player, now);
        self.hub.inner.timer.notify_one();
    }
}

impl Hub {
    /// A hub whose game starts its first round at once. `seed` fixes the targets.
    pub fn new(rules: Rules, seed: u64, config: HubConfig) -> Hub {
        Hub::build(
            Game::new(rules, seed, now_ms()),
            0,
            HashMap::new(),
            Vec::new(),
            config,
        )
    }

    /// A hub continuing a saved game: same players, scores, tokens, seq and history, under a
    /// new epoch so that every client resynchronises from a snapshot.
    ///
    /// Everything in `saved` is checked before it is used — the game state by
    /// [`Game::restore`], the rest here: the seq, one well-formed secret per player, and a
    /// history of consecutive events, each exactly as this server would have written it. A
    /// file that breaks any rule is refused whole; the caller keeps it aside and starts fresh.
    pub fn restore(
        rules: Rules,
        seed: u64,
        config: HubConfig,
        saved: SavedState,
    ) -> Result<Hub, InvalidState> {
        let max_players = rules.max_players;
        let game = Game::restore(rules, seed, now_ms(), saved.state, saved.next_player_id)?;
        let next_player_id = saved.next_player_id;
        let last_seq = saved.last_seq;
        if last_seq > MAX_SAFE_INTEGER {
            return Err(InvalidState(format!(
                "last_seq {last_seq} is above 2^53 - 1"
            )));
        }
        // Secrets: players still playing, and idle ones who may come back within the history.
        let most = max_players.saturating_add(config.history);
        if saved.secrets.len() > most {
            return Err(InvalidState(format!(
                "{} session secrets, more than players plus history ({most})",
                saved.secrets.len()
            )));
        }
        let mut secrets = HashMap::with_capacity(saved.secrets.len());
        for (id, text) in &saved.secrets {
            if *id == 0 || *id >= next_player_id {
                return Err(InvalidState(format!(
                    "a session secret for player {id}, who cannot exist"
                )));
            }
            let secret = unhex::<16>(text)
                .filter(|s| hex(s) == *text && *s != [0; 16])
                .ok_or_else(|| {
                    InvalidState(format!(
                        "player {id}'s session secret is not 32 lower-case hex digits of a \
                         random value"
                    ))
                })?;
            if secrets.insert(*id, secret).is_some() {
                return Err(InvalidState(format!("player {id} has two session secrets")));
            }
        }
        if let Some(id) = game
            .state()
            .players
            .keys()
            .find(|id| !secrets.contains_key(id))
        {
            return Err(InvalidState(format!("player {id} has no session secret")));
        }
        // History: consecutive seqs ending at last_seq, each event as we would serialise it.
        let first = (last_seq + 1).saturating_sub(saved.history.len() as u64);
        if saved.history.len() as u64 > last_seq {
            return Err(InvalidState(format!(
                "{} history events but last_seq is only {last_seq}",
                saved.history.len()
            )));
        }
        let mut history = Vec::with_capacity(saved.history.len());
        for (i, json) in saved.history.into_iter().enumerate() {
            let want = first + i as u64;
            let event: Event = serde_json::from_str(&json)
                .map_err(|e| InvalidState(format!("history event {want} does not parse: {e}")))?;
            if event.seq != want {
                return Err(InvalidState(format!(
                    "history event {want} has seq {}; the history must be consecutive and end \
                     at last_seq",
                    event.seq
                )));
            }
            if event.ts > MAX_SAFE_INTEGER {
                return Err(InvalidState(format!(
                    "history event {want}'s ts is too large"
                )));
            }
            validate_event(&event.kind, next_player_id)
                .map_err(|e| InvalidState(format!("history event {want}: {e}")))?;
            if serde_json::to_string(&event).ok().as_deref() != Some(json.as_str()) {
                return Err(InvalidState(format!(
                    "history event {want} is not in the form this server writes"
                )));
            }
            let type_name = event.kind.type_name();
            history.push(Arc::new(WireEvent::new(
                event.seq, event.ts, type_name, json,
            )));
        }
        Ok(Hub::build(game, last_seq, secrets, history, config))
    }

    fn build(
        game: Game,
        last_seq: u64,
        secrets: HashMap<PlayerId, [u8; 16]>,
        history: Vec<Arc<WireEvent>>,
        config: HubConfig,
    ) -> Hub {
        Hub::build_with(game, last_seq, secrets, history, config, None)
    }

    fn build_with(
        game: Game,
        last_seq: u64,
        secrets: HashMap<PlayerId, [u8; 16]>,
        history: Vec<Arc<WireEvent>>,
        config: HubConfig,
        cluster: Option<Cluster>,
    ) -> Hub {
        let log = Log::new(config.history, history, last_seq);
        Hub {
            inner: Arc::new(Inner {
                metrics: Metrics::default(),
                delays: Default::default(),
                core: Mutex::new(Core {
                    game,
                    last_seq,
                    secrets,
                    departed: HashMap::new(),
                    term: None,
                    collect: None,
                    last_start: None,
                }),
                log: RwLock::new(log),
                bell: Bell::new(),
                control: Mutex::new(Control::default()),
                timer: Notify::new(),
                epoch: RwLock::new(Arc::from(hex(&random_bytes::<8>()))),
                config,
                cluster,
            }),
        }
    }

    /// Everything needed to continue after a restart.
    pub fn export(&self) -> SavedState {
        let core = self.core();
        let log = self.log();
        SavedState {
            version: STATE_VERSION,
            saved_ts: now_ms(),
            last_seq: core.last_seq,
            next_player_id: core.game.next_player_id(),
            state: core.game.state().clone(),
            secrets: core.secrets.iter().map(|(id, s)| (*id, hex(s))).collect(),
            history: log.iter().map(|e| e.json.to_string()).collect(),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The simulated network delay a lecturer set for `t`.
    pub fn delay(&self, t: Transport) -> Duration {
        Duration::from_millis(self.inner.delays[t.index()].load(Ordering::Relaxed))
    }

    pub fn set_delay(&self, t: Transport, ms: u64) {
        self.inner.delays[t.index()].store(ms, Ordering::Relaxed);
    }

    /// Waits for the simulated delay of `t`, if any.
    pub async fn simulate_delay(&self, t: Transport) {
        let delay = self.delay(t);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }

    /// Whether `player` holds a session (is playing, or left for being idle and may still come
    /// back with their token).
    pub fn has_session(&self, player: PlayerId) -> bool {
        if let Some(cluster) = &self.inner.cluster {
            return cluster.knows(player);
        }
        self.core().secrets.contains_key(&player)
    }

    /// The transport a player was last seen on.
    pub fn transport_of(&self, player: PlayerId) -> Option<Transport> {
        if let Some(cluster) = &self.inner.cluster {
            return cluster.transport_of(player);
        }
        self.core()
            .game
            .state()
            .players
            .get(&player)
            .and_then(|p| p.transport)
    }

    /// Lecturer control: pause or resume new rounds.
    pub fn set_paused(&self, paused: bool) {
        let now = now_ms();
        let mut core = self.core();
        let events = core.game.set_paused(paused, now);
        self.publish(&mut core, events, now);
    }

    /// Lecturer control: all scores back to zero.
    pub fn reset_scores(&self) {
        let now = now_ms();
        let mut core = self.core();
        let events = core.game.reset_scores(now);
        self.publish(&mut core, events, now);
    }

    /// Lecturer control: a new AJAX polling interval, announced to every client.
    pub fn set_poll_interval(&self, ms: u64) {
        let now = now_ms();
        let mut core = self.core();
        let events = core.game.set_poll_interval(ms, now);
        self.publish(&mut core, events, now);
    }

    /// Lecturer control: removes a player; their token and tickets die with the event.
    pub fn kick(&self, player: PlayerId) -> Result<(), GameError> {
        let now = now_ms();
        let mut core = self.core();
        let events = core.game.kick(player, now)?;
        self.publish(&mut core, events, now);
        Ok(())
    }

    /// Lecturer control: renames a player; returns the name as stored.
    pub fn rename(&self, player: PlayerId, name: &str) -> Result<String, GameError> {
        let now = now_ms();
        let mut core = self.core();
        let (name, events) = core.game.rename(player, name, now)?;
        self.publish(&mut core, events, now);
        Ok(name)
    }

    /// Lecturer control: closes or reopens joining.
    pub fn set_joins_open(&self, open: bool) {
        let now = now_ms();
        let mut core = self.core();
        let events = core.game.set_joins_open(open, now);
        self.publish(&mut core, events, now);
    }

    /// Paused, joins open, poll interval — as the game in this process has them (in a cluster:
    /// the authority's game, ahead of the replica the figures read).
    pub(crate) fn game_flags(&self) -> (bool, bool, u64) {
        let core = self.core();
        let state = core.game.state();
        (state.paused, state.joins_open, state.poll_interval_ms)
    }

    pub fn joins_open(&self) -> bool {
        if let Some(cluster) = &self.inner.cluster {
            return cluster.with_state(|s| s.joins_open);
        }
        self.core().game.state().joins_open
    }

    pub fn is_paused(&self) -> bool {
        if let Some(cluster) = &self.inner.cluster {
            return cluster.with_state(|s| s.paused);
        }
        self.core().game.state().paused
    }

    pub fn poll_interval_ms(&self) -> u64 {
        if let Some(cluster) = &self.inner.cluster {
            return cluster.with_state(|s| s.poll_interval_ms);
        }
        self.core().game.state().poll_interval_ms
    }

    /// The current order to open connections (see [`Control`]); a change rings every
    /// [`Subscription`] with [`Rang::control`](crate::bell::Rang::control).
    pub fn control(&self) -> Control {
        *self
            .inner
            .control
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn change_control(&self, change: impl FnOnce(&mut Control)) {
        change(
            &mut self
                .inner
                .control
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        self.inner.bell.ring_control();
    }

    /// Ends every open downstream connection once (clients reconnect and resume).
    pub fn disconnect_all(&self) {
        self.change_control(|c| c.generation += 1);
    }

    /// Ends every open connection for good: WebSockets close with 1001, SSE streams end,
    /// parked long polls answer.
    pub fn begin_shutdown(&self) {
        self.change_control(|c| {
            c.generation += 1;
            c.shutting_down = true;
        });
    }

    /// Random per server start; a client from another epoch gets a snapshot. In a cluster, the
    /// game's epoch, the same on every node.
    pub fn epoch(&self) -> Arc<str> {
        self.inner
            .epoch
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// True when the epoch can never change (not a cluster node): a stream that has checked
    /// its epoch once need not compare it again (`ResumePoint`).
    pub fn epoch_fixed(&self) -> bool {
        self.inner.cluster.is_none()
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Rings whenever the log grows or all connections are told to end; see `bell.rs`. Read
    /// the log after the subscription says `Pending`, so that no event slips between.
    pub fn subscribe(&self) -> Subscription {
        self.inner.bell.subscribe()
    }

    pub fn last_seq(&self) -> u64 {
        self.log().last_seq()
    }

    // A poisoned lock means a panic happened while holding it; the state it guards is still the
    // last consistent one we wrote (every mutation is a single apply), so keep serving.
    fn core(&self) -> MutexGuard<'_, Core> {
        self.inner
            .core
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn log(&self) -> std::sync::RwLockReadGuard<'_, Log> {
        self.inner
            .log
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn log_mut(&self) -> std::sync::RwLockWriteGuard<'_, Log> {
        self.inner
            .log
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Numbers, stamps, serialises and publishes events. Called with the core lock held so that
    /// seq order is the order of changes to the game.
    fn publish(&self, core: &mut Core, kinds: Vec<EventKind>, now: u64) {
        if kinds.is_empty() {
            return;
        }
        if self.inner.cluster.is_some() {
            // To Redis, not to the ring: every node's ring is filled from there.
            self.publish_to_log(core, kinds, now);
            return;
        }
        {
            let mut log = self.log_mut();
            for kind in kinds {
                core.last_seq += 1;
                match &kind {
                    EventKind::PlayerLeft {
                        player,
                        reason: LeaveReason::Idle,
                    } => {
                        // Forget those whose window has passed, so the map stays bounded.
                        let (last, window) = (core.last_seq, self.inner.config.history as u64);
                        let expired: Vec<PlayerId> = core
                            .departed
                            .iter()
                            .filter(|(_, left)| last.saturating_sub(**left) >= window)
                            .map(|(id, _)| *id)
                            .collect();
                        for id in expired {
                            core.departed.remove(&id);
                            core.secrets.remove(&id);
                            core.game.forget(id);
                        }
                        core.departed.insert(*player, core.last_seq);
                    }
                    EventKind::PlayerLeft { player, .. } => {
                        core.secrets.remove(player);
                    }
                    EventKind::RoundStarted { round, .. } => {
                        core.last_start = Some((core.last_seq, *round));
                    }
                    _ => {}
                }
                let type_name = kind.type_name();
                let event = Event {
                    seq: core.last_seq,
                    ts: now,
                    kind,
                };
                // Should it ever fail (logged), the seq stays accounted for with a valid, if
                // empty, event.
                let json = to_json(&event, "an event").unwrap_or_else(|_| {
                    format!(r#"{{"seq":{},"ts":{now},"type":"{type_name}"}}"#, event.seq)
                });
                log.push(Arc::new(WireEvent::new(event.seq, now, type_name, json)));
            }
        }
        self.inner.bell.ring_news();
        self.inner.timer.notify_one();
    }

    fn snapshot_of(&self, core: &Core) -> Snapshot {
        let epoch = Hub::term_epoch(core).unwrap_or_else(|| self.epoch());
        self.snapshot_from(core.game.state(), core.last_seq, &epoch)
    }

    fn snapshot_from(&self, state: &GameState, seq: u64, epoch: &str) -> Snapshot {
        Snapshot {
            seq,
            ts: now_ms(),
            kind: SNAPSHOT,
            epoch: epoch.to_string(),
            board: BOARD_SIZE,
            poll_interval_ms: state.poll_interval_ms,
            paused: state.paused,
            joins_open: state.joins_open,
            round: state.round.clone(),
            players: state.players.values().cloned().collect(),
            transports: state.transports,
        }
    }

    /// The current state of the game.
    pub fn snapshot(&self) -> Snapshot {
        if self.inner.cluster.is_some() {
            return self.replica_snapshot();
        }
        self.snapshot_of(&self.core())
    }

    /// Everything after `since`; a snapshot first when `since` is missing, from another epoch,
    /// ahead of us, or older than the history.
    pub fn catch_up(&self, since: Option<u64>, epoch: Option<&str>) -> Batch {
        if self.inner.cluster.is_some() {
            return self.catch_up_replica(since, epoch);
        }
        let same_epoch = epoch.is_none_or(|e| e == &*self.epoch());
        if let (Some(since), true) = (since, same_epoch) {
            let log = self.log();
            if let Some(events) = log.after(since) {
                return Batch {
                    events,
                    last_seq: log.last_seq(),
                };
            }
        }
        let core = self.core();
        let snapshot = self.snapshot_of(&core);
        Hub::snapshot_batch(snapshot)
    }

    /// A snapshot as the one event of a batch.
    fn snapshot_batch(snapshot: Snapshot) -> Batch {
        let json = to_json(&snapshot, "a snapshot").unwrap_or_else(|_| {
            format!(
                r#"{{"seq":{},"ts":{},"type":"snapshot","epoch":"{}"}}"#,
                snapshot.seq, snapshot.ts, snapshot.epoch
            )
        });
        Batch {
            events: vec![Arc::new(WireEvent::new(
                snapshot.seq,
                snapshot.ts,
                SNAPSHOT,
                json,
            ))],
            last_seq: snapshot.seq,
        }
    }

    pub fn join(&self, name: &str) -> Result<Joined, GameError> {
        self.join_with(name, NameCheck::Validate)
    }

    /// [`Hub::join`] with the name checked as `check` says (naive only in the lab).
    pub fn join_with(&self, name: &str, check: NameCheck) -> Result<Joined, GameError> {
        let now = now_ms();
        let mut core = self.core();
        let (player, events) = core.game.join_with(name, check, now)?;
        // In a cluster the token is derived from the player id, so that every node checks it
        // without asking anyone (`cluster/sessions.rs`; `commands.rs` makes sure the key is
        // there before a join runs).
        let token = match &self.inner.cluster {
            Some(cluster) => cluster.token_for(player),
            None => {
                let secret = random_bytes::<16>();
                core.secrets.insert(player, secret);
                format!("{player}.{}", hex(&secret))
            }
        };
        self.publish(&mut core, events, now);
        Ok(Joined {
            player_id: player,
            token,
            snapshot: self.snapshot_of(&core),
        })
    }

    /// The player a session token belongs to, if it is valid.
    pub fn authenticate(&self, token: &str) -> Option<PlayerId> {
        if let Some(cluster) = &self.inner.cluster {
            return cluster.authenticate(token);
        }
        let (id, secret) = token.split_once('.')?;
        let id: PlayerId = id.parse().ok()?;
        let given = unhex::<16>(secret)?;
        let mut core = self.core();
        let expected = core.secrets.get(&id)?;
        if !same(expected, &given) {
            return None;
        }
        if core.game.is_player(id) {
            return Some(id);
        }
        // Left for being idle: welcome back if still within the history window.
        let left_seq = core.departed.remove(&id)?;
        let within = core.last_seq.saturating_sub(left_seq) < self.inner.config.history as u64;
        let now = now_ms();
        let rejoined = if within {
            core.game.rejoin(id, now)
        } else {
            Err(GameError::UnknownPlayer(id))
        };
        match rejoined {
            Ok(events) => {
                self.publish(&mut core, events, now);
                Some(id)
            }
            // No room right now: still departed, still welcome to try again.
            Err(GameError::GameFull { .. }) => {
                core.departed.insert(id, left_seq);
                None
            }
            Err(_) => {
                core.game.forget(id);
                core.secrets.remove(&id);
                None
            }
        }
    }

    pub fn click(&self, player: PlayerId, click: Click) -> Result<ClickOutcome, GameError> {
        let now = now_ms();
        let mut core = self.core();
        let (outcome, events) = core.game.click(player, click, now)?;
        self.publish(&mut core, events, now);
        Ok(outcome)
    }

    pub fn leave(&self, player: PlayerId) -> Result<(), GameError> {
        let now = now_ms();
        let mut core = self.core();
        let events = core.game.leave(player, now)?;
        self.publish(&mut core, events, now);
        Ok(())
    }

    /// `player`'s transport was just handed `events`. If they carry the live round's
    /// `round_started` (or a snapshot taken after it, which shows the round too), the game
    /// records the moment: the player's reaction time, should they win, counts from here. In a
    /// cluster the node tells the game's node (`hub/replica.rs`).
    ///
    /// Called by `Connection::delivered` only for batches holding a `round_started` or a
    /// snapshot (about once per round per connection), so the core lock is not taken for the
    /// ordinary delivery.
    ///
    /// `via`: the transport that carried them (a poll's delivery may be later than a stream's;
    /// see [`Game::round_delivered`]), whose simulated delay goes along.
    pub fn round_delivered(&self, player: PlayerId, events: &[Arc<WireEvent>], via: Transport) {
        let delay_ms = self.delay(via).as_millis() as u64;
        if let Some(cluster) = &self.inner.cluster {
            cluster.round_delivered(player, events, via, delay_ms);
            return;
        }
        let now = now_ms();
        let mut core = self.core();
        let Some((seq, round)) = core.last_start else {
            return;
        };
        if shows_round(events, seq) {
            core.game.round_delivered(player, round, now, via, delay_ms);
        }
    }

    /// [`Hub::round_delivered`] on the game of this process (in a cluster: the authority's,
    /// told by the node that delivered it, at the time it did, over `via` with `delay_ms`).
    pub(crate) fn round_delivered_game(
        &self,
        player: PlayerId,
        round: u64,
        at: u64,
        via: Transport,
        delay_ms: u64,
    ) {
        self.core()
            .game
            .round_delivered(player, round, at, via, delay_ms);
    }

    /// A poll from a player: refreshes their idle clock and records their transport. In a
    /// cluster this tells the node running the game, now and then (`hub/replica.rs`).
    pub fn contact(&self, player: PlayerId, transport: Transport) {
        if let Some(cluster) = &self.inner.cluster {
            cluster.contact(player, transport, false);
            return;
        }
        self.contact_game(player, transport);
    }

    /// [`Hub::contact`] on the game of this process (in a cluster: the authority's).
    pub(crate) fn contact_game(&self, player: PlayerId, transport: Transport) {
        let now = now_ms();
        let mut core = self.core();
        if let Ok(events) = core.game.contact(player, transport, now) {
            self.publish(&mut core, events, now);
        }
    }

    /// A long-lived downstream connection of a player opened; it stays counted until the guard
    /// is dropped. `None` if the player is no longer in the game.
    pub fn open_stream(&self, player: PlayerId, transport: Transport) -> Option<StreamGuard> {
        if let Some(cluster) = &self.inner.cluster {
            if !cluster.knows(player) {
                return None;
            }
            cluster.stream_opened(player, transport);
            return Some(StreamGuard {
                hub: self.clone(),
                player,
            });
        }
        let now = now_ms();
        let mut core = self.core();
        let events = core.game.stream_opened(player, transport, now).ok()?;
        self.publish(&mut core, events, now);
        Some(StreamGuard {
            hub: self.clone(),
            player,
        })
    }

    /// Drives time: starts rounds after their pause and removes idle players. Runs until the
    /// task is dropped or aborted.
    pub async fn run_timer(self) {
        loop {
            let now = now_ms();
            let deadline = {
                let mut core = self.core();
                let events = core.game.tick(now);
                self.publish(&mut core, events, now);
                core.game.next_deadline()
            };
            // Sleep until the next deadline, or until a command may have moved it.
            let wait = deadline.map(|d| d.saturating_sub(now_ms()));
            match wait {
                Some(0) => continue,
                Some(ms) => {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                        _ = self.inner.timer.notified() => {}
                    }
                }
                None => self.inner.timer.notified().await,
            }
        }
    }
}

/// Whether `events` show the round whose `round_started` has `seq`: that event itself, or a
/// snapshot taken after it.
pub(crate) fn shows_round(events: &[Arc<WireEvent>], seq: u64) -> bool {
    events
        .iter()
        .any(|e| (e.seq == seq && e.kind == ROUND_STARTED) || (e.kind == SNAPSHOT && e.seq >= seq))
}

#[cfg(test)]
mod tests;
