//! # The Click Game core
//!
//! The rules, and nothing else: no sockets, no async runtime, no clock of its own. Every method
//! takes the current time (`now`, ms since the Unix epoch) and returns the events it caused, so
//! the game is tested with plain `#[test]`s and property tests, and the hub decides how events
//! travel. The core has never heard of HTTP; it only knows transport *names* ([`Transport`]),
//! because the scoreboard shows them.
//!
//! Rules: each round one circular target appears at a random spot on a 1000 × 1000 board. The
//! first click that names the current round and lands inside wins it (+1 point). Later clicks for
//! that round are `late`; clicks outside are `miss`es. A round nobody hits within the round
//! timeout ends by itself (`round_expired`), so a forgotten target never inflates reaction
//! times. Every round ends exactly once, won or expired; after a pause (plus jitter) the next
//! round starts. A player with no transport contact for the idle timeout leaves. At most
//! `max_players` play at once, and no two of them have names that look alike (`name.rs`). The
//! lecturer may remove a player, rename one, and close joining.

mod command;
mod event;
mod name;
mod restore;
mod state;

use std::collections::{HashMap, VecDeque};

use rand::{rngs::StdRng, RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

pub use command::{Click, ClickOutcome, GameError};
pub use event::{Event, EventKind, LeaveReason, ReactionFrom, ROUND_STARTED};
pub use name::{validate_name, NameCheck, NameKeys, MAX_NAME_CHARS};
pub use restore::{validate_event, InvalidState, MAX_SAFE_INTEGER, POLL_INTERVAL_MS};
pub use state::{GameState, Player, Round, Tally, TransportTally};

/// Players are numbered from 1 in join order; ids are never reused within one server state.
pub type PlayerId = u64;

/// The largest player id: the largest integer a browser's `Number` holds exactly, like every
/// other counter the game sends.
pub const MAX_PLAYER_ID: PlayerId = MAX_SAFE_INTEGER;

/// Side length of the square board, in logical units (clients scale it).
pub const BOARD_SIZE: u32 = 1000;

/// How many past rounds' ends we remember, to answer a late click with the winner's name (or
/// with "expired").
const REMEMBERED_ROUNDS: usize = 64;

/// The four ways a browser can hear about events. Only a label to the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Ajax,
    Longpoll,
    Sse,
    Websocket,
}

impl Transport {
    /// Every transport, in [`Transport::index`] order.
    pub const ALL: &'static [Transport] = &[
        Transport::Ajax,
        Transport::Longpoll,
        Transport::Sse,
        Transport::Websocket,
    ];

    /// How many there are, from the list: the length of every per-transport array.
    pub const COUNT: usize = Transport::ALL.len();

    /// Position in [`Transport::ALL`], for per-transport arrays.
    pub fn index(self) -> usize {
        match self {
            Transport::Ajax => 0,
            Transport::Longpoll => 1,
            Transport::Sse => 2,
            Transport::Websocket => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Ajax => "ajax",
            Transport::Longpoll => "longpoll",
            Transport::Sse => "sse",
            Transport::Websocket => "websocket",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tunables of the rules. Their defaults are the flags' defaults: `Rules::default()` is
/// implemented in `config.rs`, the one place defaults are written (the core reads no
/// configuration of its own).
#[derive(Debug, Clone)]
pub struct Rules {
    pub target_radius: u32,
    pub round_pause_ms: u64,
    /// A random extra pause in `0..=round_pause_jitter_ms`, so nobody can click on rhythm.
    pub round_pause_jitter_ms: u64,
    pub idle_timeout_ms: u64,
    /// Told to AJAX polling clients through the state; the lecturer can change it.
    pub poll_interval_ms: u64,
    /// Players at once; a join beyond it is refused (`game_full`). It also bounds the snapshot
    /// every join answers with.
    pub max_players: usize,
    /// A round nobody hits ends by itself this long after it started (`round_expired`); 0 = a
    /// round waits for its winner for ever (what the load tool and the benches want: their
    /// rounds are fixed and must not expire under them).
    pub round_timeout_ms: u64,
}

/// When a player was last heard from, and over how many open downstream connections.
#[derive(Debug, Clone, Copy, Default)]
struct Contact {
    last_ms: u64,
    open_streams: u32,
    /// When their last three AJAX polls arrived, newest first: the pace they poll at, which
    /// bounds how late a poll of theirs may honestly bring them a round ([`Game::round_delivered`]).
    polls: [Option<u64>; 3],
}

impl Contact {
    fn at(now: u64) -> Contact {
        Contact {
            last_ms: now,
            ..Contact::default()
        }
    }

    /// When an honest poller at this player's pace would have polled next after the round
    /// `started`: the poll before the newest one plus the gap before that (at most the
    /// advertised `interval`), and never before the start. A player who had not been polling
    /// gets no allowance: the round is due at its start.
    fn next_poll_due(&self, started: u64, interval: u64) -> u64 {
        let [_, prev, before] = self.polls;
        let Some(prev) = prev else {
            return started;
        };
        let gap = before.map_or(interval, |b| prev.saturating_sub(b).min(interval));
        started.max(prev.saturating_add(gap))
    }
}

/// How much later than its due time a delivery still counts as it happened (a stream's write, a
/// long poll's next request, a poller's timer drift and round trip).
pub const DELIVERY_SLACK_MS: u64 = 250;

/// The authoritative game. Not thread-safe by itself; the hub keeps it behind one mutex.
#[derive(Debug)]
pub struct Game {
    rules: Rules,
    rng: StdRng,
    state: GameState,
    next_player_id: PlayerId,
    next_round_at: Option<u64>,
    /// When the open round expires; `None` while no round is open or with no round timeout.
    round_ends_at: Option<u64>,
    /// When the open round's `round_started` first reached each player (their transport
    /// reports it through the hub, [`Game::round_delivered`]): their reaction time counts from
    /// there.
    delivered: HashMap<PlayerId, u64>,
    contacts: HashMap<PlayerId, Contact>,
    /// The last rounds' ends: the winner's id and name, or `None` for an expired round.
    recent_ends: VecDeque<(u64, Option<(PlayerId, String)>)>,
    /// Players who left for being idle, kept so they can come back with their score.
    departed: HashMap<PlayerId, Player>,
    /// The two [`NameKeys`] forms of every current player's name, for uniqueness. Kept in step
    /// with `state.players` by [`Game::emit`], the one place players come and go.
    names: [HashMap<String, PlayerId>; 2],
}

impl Game {
    /// A new game whose first round starts at the first [`Game::tick`] at or after `now`.
    pub fn new(rules: Rules, seed: u64, now: u64) -> Game {
        let state = GameState {
            poll_interval_ms: rules.poll_interval_ms,
            ..GameState::default()
        };
        Game {
            rules,
            rng: StdRng::seed_from_u64(seed),
            state,
            next_player_id: 1,
            next_round_at: Some(now),
            round_ends_at: None,
            delivered: HashMap::new(),
            contacts: HashMap::new(),
            recent_ends: VecDeque::with_capacity(REMEMBERED_ROUNDS),
            departed: HashMap::new(),
            names: Default::default(),
        }
    }

    /// A game continuing from a saved state (after a restart). The state is checked first
    /// against the rules live input obeys (`restore.rs`); a state no live game could have
    /// reached is refused. Every player gets a fresh idle clock from `now`; an open round stays
    /// open (with a fresh round timeout from `now`: nobody could see it while the server was
    /// down), a won or expired one is followed by the usual pause.
    pub fn restore(
        rules: Rules,
        seed: u64,
        now: u64,
        state: GameState,
        next_player_id: PlayerId,
    ) -> Result<Game, InvalidState> {
        let names = restore::check_state(&state, next_player_id, &rules)?;
        let round_open = state.round.as_ref().is_some_and(Round::is_open);
        let next_round_at = (!round_open).then_some(now.saturating_add(rules.round_pause_ms));
        let round_ends_at = round_open
            .then(|| Self::round_deadline(&rules, now))
            .flatten();
        let contacts = state
            .players
            .keys()
            .map(|id| (*id, Contact::at(now)))
            .collect();
        Ok(Game {
            rules,
            rng: StdRng::seed_from_u64(seed),
            state,
            next_player_id,
            next_round_at,
            round_ends_at,
            delivered: HashMap::new(),
            contacts,
            recent_ends: VecDeque::with_capacity(REMEMBERED_ROUNDS),
            departed: HashMap::new(),
            names,
        })
    }

    pub fn state(&self) -> &GameState {
        &self.state
    }

    /// The id the next player will get (saved so ids are never reused across restarts).
    pub fn next_player_id(&self) -> PlayerId {
        self.next_player_id
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// When a round started at `now` expires under `rules`; `None` with no round timeout.
    fn round_deadline(rules: &Rules, now: u64) -> Option<u64> {
        (rules.round_timeout_ms > 0).then(|| now.saturating_add(rules.round_timeout_ms))
    }

    /// The earliest time at which [`Game::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        let idle = self
            .contacts
            .values()
            .filter(|c| c.open_streams == 0)
            .map(|c| c.last_ms.saturating_add(self.rules.idle_timeout_ms))
            .min();
        let next_round = self.next_round_at.filter(|_| !self.state.paused);
        // A round expires while the game is paused too: pause stops new rounds, not the clock
        // of the one on the board.
        [next_round, self.round_ends_at, idle]
            .into_iter()
            .flatten()
            .min()
    }

    /// Ends the open round unwon when its time is up, starts the next round when its pause is
    /// over, and removes idle players.
    pub fn tick(&mut self, now: u64) -> Vec<EventKind> {
        let mut out = Vec::new();
        self.expire_if_due(now, &mut out);
        if !self.state.paused && self.next_round_at.is_some_and(|at| at <= now) {
            self.next_round_at = None;
            let r = self.rules.target_radius.min(BOARD_SIZE / 2);
            let number = self
                .state
                .round
                .as_ref()
                .map_or(1, |round| round.number + 1);
            let x = self.rng.random_range(r..=BOARD_SIZE - r);
            let y = self.rng.random_range(r..=BOARD_SIZE - r);
            self.round_ends_at = Self::round_deadline(&self.rules, now);
            self.delivered.clear();
            self.emit(
                &mut out,
                now,
                EventKind::RoundStarted {
                    round: number,
                    x,
                    y,
                    r,
                },
            );
        }
        let idle_timeout = self.rules.idle_timeout_ms;
        let mut idle: Vec<PlayerId> = self
            .contacts
            .iter()
            .filter(|(_, c)| c.open_streams == 0 && now.saturating_sub(c.last_ms) >= idle_timeout)
            .map(|(id, _)| *id)
            .collect();
        idle.sort_unstable();
        for player in idle {
            self.contacts.remove(&player);
            if let Some(p) = self.state.players.get(&player) {
                self.departed.insert(player, p.clone());
            }
            self.emit(
                &mut out,
                now,
                EventKind::PlayerLeft {
                    player,
                    reason: LeaveReason::Idle,
                },
            );
        }
        out
    }

    /// Ends the open round unwon if its time is up.
    fn expire_if_due(&mut self, now: u64, out: &mut Vec<EventKind>) {
        if self.round_ends_at.is_none_or(|at| at > now) {
            return;
        }
        self.round_ends_at = None;
        let open = self.state.round.as_ref().filter(|r| r.is_open());
        if let Some(round) = open.map(|r| r.number) {
            self.remember_end(round, None);
            self.schedule_next_round(now);
            self.emit(out, now, EventKind::RoundExpired { round });
        }
    }

    /// The next round starts after the pause plus a random jitter, however this one ended.
    fn schedule_next_round(&mut self, now: u64) {
        let jitter = match self.rules.round_pause_jitter_ms {
            0 => 0,
            j => self.rng.random_range(0..=j),
        };
        self.next_round_at = Some(
            now.saturating_add(self.rules.round_pause_ms)
                .saturating_add(jitter),
        );
    }

    /// Remembers how a round ended (`None`: it expired), for late clicks.
    fn remember_end(&mut self, round: u64, winner: Option<(PlayerId, String)>) {
        if self.recent_ends.len() == REMEMBERED_ROUNDS {
            self.recent_ends.pop_front();
        }
        self.recent_ends.push_back((round, winner));
    }

    /// Records that the open round's `round_started` reached `player` at `now`, through
    /// `via` (the write to their stream or socket, or the poll answer that carried it), with the
    /// lecturer's simulated delay for that transport being `delay_ms`. Only the first delivery
    /// counts; a delivery of another round, or of one already ended, changes nothing. Their
    /// reaction time, if they win, then counts from here instead of from the round's start —
    /// what a student means by "how fast was I". Every transport reports it through
    /// `Connection::delivered` and `Hub::round_delivered`; a player with no delivery on record
    /// (a click before any downstream contact, a round restored after a restart) is timed from
    /// the round's start.
    ///
    /// **A delivery counts no later than it was due.** When a delivery happens is partly the
    /// client's choice: it decides when to poll, when to open a stream, when to send a
    /// WebSocket `resume`. A client that watched the round elsewhere (the public snapshot, a
    /// spectator stream) and only then polled as the player, then clicked, had a "reaction" of
    /// 1 ms where the truth was 800. So the moment counts at most [`DELIVERY_SLACK_MS`] after
    /// it was due: for a stream, the round's start (the server writes it at once); for an AJAX
    /// poll, when this player's next poll was due at the pace of their previous ones (at most
    /// the advertised interval: a poller honestly sees a round up to one interval late); plus
    /// the simulated delay, which comes before every delivery. An honest client is never held
    /// to this bound; a cheating one can gain no more than an honest one could lose.
    pub fn round_delivered(
        &mut self,
        player: PlayerId,
        round: u64,
        now: u64,
        via: Transport,
        delay_ms: u64,
    ) {
        let Some(started) = self
            .state
            .round
            .as_ref()
            .filter(|r| r.number == round && r.is_open())
            .map(|r| r.started_ts)
        else {
            return;
        };
        if !self.state.players.contains_key(&player) {
            return;
        }
        let due = match via {
            Transport::Ajax => self.contacts.get(&player).map_or(started, |c| {
                c.next_poll_due(started, self.state.poll_interval_ms)
            }),
            Transport::Longpoll | Transport::Sse | Transport::Websocket => started,
        };
        let latest = due
            .saturating_add(delay_ms)
            .saturating_add(DELIVERY_SLACK_MS);
        self.delivered.entry(player).or_insert(now.min(latest));
    }

    /// Adds a player. The name is checked and normalised (`name.rs`) and must not look like
    /// the name of anybody playing; the game must have room.
    pub fn join(
        &mut self,
        raw_name: &str,
        now: u64,
    ) -> Result<(PlayerId, Vec<EventKind>), GameError> {
        self.join_with(raw_name, NameCheck::Validate, now)
    }

    /// [`Game::join`], with the name checked as `check` says: [`NameCheck::Naive`] only in the
    /// lab, with its input defence switched off.
    pub fn join_with(
        &mut self,
        raw_name: &str,
        check: NameCheck,
        now: u64,
    ) -> Result<(PlayerId, Vec<EventKind>), GameError> {
        if !self.state.joins_open {
            return Err(GameError::JoinsClosed);
        }
        let name = check.apply(raw_name)?;
        let player = self.next_player_id;
        if self.state.players.len() >= self.rules.max_players || player > MAX_PLAYER_ID {
            return Err(GameError::GameFull {
                max: self.rules.max_players,
            });
        }
        self.check_name_free(&name)?;
        self.next_player_id += 1;
        self.contacts.insert(player, Contact::at(now));
        let mut out = Vec::new();
        self.emit(&mut out, now, EventKind::PlayerJoined { player, name });
        Ok((player, out))
    }

    /// `NameTaken` if a current player's name looks like `name`.
    fn check_name_free(&self, name: &str) -> Result<(), GameError> {
        self.check_name_free_for(name, None)
    }

    /// `NameTaken` if the name of a current player other than `except` looks like `name`.
    fn check_name_free_for(&self, name: &str, except: Option<PlayerId>) -> Result<(), GameError> {
        let keys = NameKeys::of(name);
        let taken = keys
            .0
            .iter()
            .zip(&self.names)
            .any(|(key, index)| index.get(key).is_some_and(|owner| Some(*owner) != except));
        if taken {
            return Err(GameError::NameTaken(name.to_string()));
        }
        Ok(())
    }

    pub fn leave(&mut self, player: PlayerId, now: u64) -> Result<Vec<EventKind>, GameError> {
        self.require(player)?;
        self.contacts.remove(&player);
        let mut out = Vec::new();
        self.emit(
            &mut out,
            now,
            EventKind::PlayerLeft {
                player,
                reason: LeaveReason::Left,
            },
        );
        Ok(out)
    }

    /// Lecturer control: removes a player at once. Unlike a player who went idle, a removed
    /// one cannot come back with their token (the hub forgets it with this event).
    pub fn kick(&mut self, player: PlayerId, now: u64) -> Result<Vec<EventKind>, GameError> {
        self.require(player)?;
        self.contacts.remove(&player);
        let mut out = Vec::new();
        self.emit(
            &mut out,
            now,
            EventKind::PlayerLeft {
                player,
                reason: LeaveReason::Kicked,
            },
        );
        Ok(out)
    }

    /// Lecturer control: gives a player another name, checked and normalised like a join's
    /// and unique like one (the player's own current name does not count against it). The
    /// same name again changes nothing. Returns the name as stored.
    pub fn rename(
        &mut self,
        player: PlayerId,
        raw_name: &str,
        now: u64,
    ) -> Result<(String, Vec<EventKind>), GameError> {
        let current = self.require(player)?.name.clone();
        let name = validate_name(raw_name)?;
        let mut out = Vec::new();
        if name == current {
            return Ok((name, out));
        }
        self.check_name_free_for(&name, Some(player))?;
        self.emit(
            &mut out,
            now,
            EventKind::PlayerRenamed {
                player,
                name: name.clone(),
            },
        );
        Ok((name, out))
    }

    /// Lecturer control: closes or reopens joining. Players in the game stay; idle ones may
    /// still come back (they had joined before).
    pub fn set_joins_open(&mut self, open: bool, now: u64) -> Vec<EventKind> {
        let mut out = Vec::new();
        if self.state.joins_open != open {
            self.emit(&mut out, now, EventKind::JoinsChanged { open });
        }
        out
    }

    /// Brings back a player who left for being idle, with the score they had. Refused if
    /// they were never idle-departed (or were forgotten), their name is now taken, or the game
    /// is full (then they stay departed and may try again).
    pub fn rejoin(&mut self, player: PlayerId, now: u64) -> Result<Vec<EventKind>, GameError> {
        let gone = self
            .departed
            .get(&player)
            .ok_or(GameError::UnknownPlayer(player))?;
        if self.state.players.len() >= self.rules.max_players {
            return Err(GameError::GameFull {
                max: self.rules.max_players,
            });
        }
        self.check_name_free(&gone.name)?;
        let gone = self
            .departed
            .remove(&player)
            .ok_or(GameError::UnknownPlayer(player))?;
        self.contacts.insert(player, Contact::at(now));
        let mut out = Vec::new();
        self.emit(
            &mut out,
            now,
            EventKind::PlayerRejoined {
                player,
                name: gone.name,
                score: gone.score,
                misses: gone.misses,
            },
        );
        Ok(out)
    }

    /// Stops remembering an idle-departed player (their window to come back has passed).
    pub fn forget(&mut self, player: PlayerId) {
        self.departed.remove(&player);
    }

    pub fn is_player(&self, player: PlayerId) -> bool {
        self.state.players.contains_key(&player)
    }

    /// A downstream request (a poll) from `player` over `transport`.
    pub fn contact(
        &mut self,
        player: PlayerId,
        transport: Transport,
        now: u64,
    ) -> Result<Vec<EventKind>, GameError> {
        self.require(player)?;
        if let Some(c) = self.contacts.get_mut(&player) {
            c.last_ms = c.last_ms.max(now);
            if transport == Transport::Ajax {
                c.polls = [Some(now), c.polls[0], c.polls[1]];
            }
        }
        let mut out = Vec::new();
        let current = self.state.players.get(&player).and_then(|p| p.transport);
        if current != Some(transport) {
            self.emit(
                &mut out,
                now,
                EventKind::PlayerTransport { player, transport },
            );
        }
        Ok(out)
    }

    /// A long-lived downstream connection opened: the player cannot go idle while it is open.
    pub fn stream_opened(
        &mut self,
        player: PlayerId,
        transport: Transport,
        now: u64,
    ) -> Result<Vec<EventKind>, GameError> {
        let out = self.contact(player, transport, now)?;
        if let Some(c) = self.contacts.get_mut(&player) {
            c.open_streams += 1;
        }
        Ok(out)
    }

    /// The matching close of [`Game::stream_opened`]; the idle clock starts now.
    pub fn stream_closed(&mut self, player: PlayerId, now: u64) {
        if let Some(c) = self.contacts.get_mut(&player) {
            c.open_streams = c.open_streams.saturating_sub(1);
            c.last_ms = c.last_ms.max(now);
        }
    }

    /// Judges a click. Only the first hit of the current round scores.
    pub fn click(
        &mut self,
        player: PlayerId,
        click: Click,
        now: u64,
    ) -> Result<(ClickOutcome, Vec<EventKind>), GameError> {
        let transport = self.require(player)?.transport;
        let size = f64::from(BOARD_SIZE);
        // A range check also refuses NaN and the infinities.
        if !((0.0..=size).contains(&click.x) && (0.0..=size).contains(&click.y)) {
            return Err(GameError::OutOfBoard {
                x: click.x,
                y: click.y,
                size: BOARD_SIZE,
            });
        }
        if let Some(c) = self.contacts.get_mut(&player) {
            c.last_ms = c.last_ms.max(now);
        }
        // A round that has not started is refused before anything changes: an error carries no
        // events, so it must not change the state either (the fold would miss it).
        let current = self.state.round.as_ref().map(|r| r.number);
        let not_started = GameError::RoundNotStarted {
            requested: click.round,
            current,
        };
        if current.is_none_or(|number| click.round > number) {
            return Err(not_started);
        }
        // A click that arrives after the deadline but before the timer's tick must not win: the
        // round expires first, here, so the answer never depends on when the timer woke up.
        let mut out = Vec::new();
        self.expire_if_due(now, &mut out);
        let Some(round) = self.state.round.clone() else {
            return Err(not_started);
        };
        if click.round < round.number || !round.is_open() {
            let remembered = self.recent_ends.iter().find(|(r, _)| *r == click.round);
            let outcome = match remembered {
                Some((_, None)) => ClickOutcome::Expired { round: click.round },
                Some((_, Some((id, name)))) => ClickOutcome::Late {
                    round: click.round,
                    winner: Some(*id),
                    winner_name: Some(name.clone()),
                },
                None => ClickOutcome::Late {
                    round: click.round,
                    winner: None,
                    winner_name: None,
                },
            };
            return Ok((outcome, out));
        }
        let (dx, dy) = (click.x - f64::from(round.x), click.y - f64::from(round.y));
        let r = f64::from(round.r);
        if dx * dx + dy * dy <= r * r {
            // From when this player's transport delivered the round; before any delivery, from
            // the round's start.
            let (since, reaction_from) = match self.delivered.get(&player) {
                Some(at) => (*at, ReactionFrom::Delivery),
                None => (round.started_ts, ReactionFrom::RoundStart),
            };
            let reaction_ms = now.saturating_sub(since);
            let name = self
                .state
                .players
                .get(&player)
                .map(|p| p.name.clone())
                .unwrap_or_default();
            // A player who clicks before any downstream contact is counted by the transport
            // that carried the click: only the WebSocket carries clicks in-band, so this is HTTP.
            let transport = transport.unwrap_or(Transport::Ajax);
            self.remember_end(round.number, Some((player, name.clone())));
            self.round_ends_at = None;
            self.schedule_next_round(now);
            self.emit(
                &mut out,
                now,
                EventKind::RoundWon {
                    round: round.number,
                    winner: player,
                    name,
                    reaction_ms,
                    transport,
                    reaction_from,
                },
            );
            Ok((
                ClickOutcome::Hit {
                    round: round.number,
                    reaction_ms,
                },
                out,
            ))
        } else {
            let misses = self.state.players.get(&player).map_or(0, |p| p.misses) + 1;
            self.emit(
                &mut out,
                now,
                EventKind::ClickMissed {
                    player,
                    round: round.number,
                    misses,
                },
            );
            Ok((
                ClickOutcome::Miss {
                    round: round.number,
                    misses,
                },
                out,
            ))
        }
    }

    /// Lecturer control: no new rounds while paused (a running round can still be won).
    pub fn set_paused(&mut self, paused: bool, now: u64) -> Vec<EventKind> {
        let mut out = Vec::new();
        if self.state.paused != paused {
            self.emit(&mut out, now, EventKind::GamePaused { paused });
        }
        out
    }

    /// Lecturer control: every score, miss count and transport tally back to zero.
    pub fn reset_scores(&mut self, now: u64) -> Vec<EventKind> {
        for p in self.departed.values_mut() {
            p.score = 0;
            p.misses = 0;
        }
        let mut out = Vec::new();
        self.emit(&mut out, now, EventKind::ScoresReset {});
        out
    }

    /// Lecturer control: a new AJAX polling interval for every client.
    pub fn set_poll_interval(&mut self, poll_interval_ms: u64, now: u64) -> Vec<EventKind> {
        let mut out = Vec::new();
        if self.state.poll_interval_ms != poll_interval_ms {
            self.emit(&mut out, now, EventKind::Settings { poll_interval_ms });
        }
        out
    }

    fn require(&self, player: PlayerId) -> Result<&Player, GameError> {
        self.state
            .players
            .get(&player)
            .ok_or(GameError::UnknownPlayer(player))
    }

    /// Applies an event to our own state and records it for the caller: the same fold clients
    /// use. Also keeps the name index in step with the players.
    fn emit(&mut self, out: &mut Vec<EventKind>, now: u64, kind: EventKind) {
        match &kind {
            EventKind::PlayerJoined { player, name }
            | EventKind::PlayerRejoined { player, name, .. } => {
                let keys = NameKeys::of(name);
                for (key, index) in keys.0.into_iter().zip(&mut self.names) {
                    index.insert(key, *player);
                }
            }
            EventKind::PlayerLeft { player, .. } => {
                if let Some(p) = self.state.players.get(player) {
                    let keys = NameKeys::of(&p.name);
                    for (key, index) in keys.0.iter().zip(&mut self.names) {
                        index.remove(key);
                    }
                }
            }
            EventKind::PlayerRenamed { player, name } => {
                if let Some(p) = self.state.players.get(player) {
                    for (key, index) in NameKeys::of(&p.name).0.iter().zip(&mut self.names) {
                        index.remove(key);
                    }
                }
                for (key, index) in NameKeys::of(name).0.into_iter().zip(&mut self.names) {
                    index.insert(key, *player);
                }
            }
            _ => {}
        }
        self.state.apply(&kind, now);
        out.push(kind);
    }
}

#[cfg(test)]
mod tests;
