//! The visible state of the game: exactly what a snapshot carries and what events change.
//!
//! [`GameState::apply`] is the one fold from events to state. The server uses it to move the
//! game forward and the browser mirrors it in `web/js/protocol.js`, so a snapshot plus the events
//! after it always give the same picture (a property test holds us to that).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{EventKind, PlayerId, Transport};

/// The current (or last) round. `winner` is set once somebody hit the target; `expired` once
/// the round timeout passed with nobody hitting it. Never both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Round {
    pub number: u64,
    pub x: u32,
    pub y: u32,
    pub r: u32,
    /// Server time the round started (ms since the Unix epoch).
    pub started_ts: u64,
    pub winner: Option<PlayerId>,
    /// Absent in states saved before round timeouts existed: those rounds had not expired.
    #[serde(default)]
    pub expired: bool,
}

impl Round {
    /// Neither won nor expired: a click may still win it.
    pub fn is_open(&self) -> bool {
        self.winner.is_none() && !self.expired
    }
}

/// One scoreboard row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Player {
    pub id: PlayerId,
    pub name: String,
    pub score: u64,
    pub misses: u64,
    /// The transport of the player's most recent downstream contact; `None` before the first.
    pub transport: Option<Transport>,
}

/// Rounds won and summed reaction times of the winners on one transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tally {
    pub wins: u64,
    pub total_reaction_ms: u64,
}

/// The lecture's punchline: which transport wins races, and how fast.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportTally {
    pub ajax: Tally,
    pub longpoll: Tally,
    pub sse: Tally,
    pub websocket: Tally,
}

impl TransportTally {
    pub fn get_mut(&mut self, transport: Transport) -> &mut Tally {
        match transport {
            Transport::Ajax => &mut self.ajax,
            Transport::Longpoll => &mut self.longpoll,
            Transport::Sse => &mut self.sse,
            Transport::Websocket => &mut self.websocket,
        }
    }

    pub fn total_wins(&self) -> u64 {
        self.ajax.wins + self.longpoll.wins + self.sse.wins + self.websocket.wins
    }
}

/// Everything a client needs to draw the game.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GameState {
    pub round: Option<Round>,
    /// Keyed by id for the server; an array ordered by id on the wire.
    #[serde(
        serialize_with = "players_as_list",
        deserialize_with = "players_from_list"
    )]
    pub players: BTreeMap<PlayerId, Player>,
    pub transports: TransportTally,
    /// While paused no new round starts.
    #[serde(default)]
    pub paused: bool,
    /// How often AJAX polling clients ask, in ms.
    #[serde(default)]
    pub poll_interval_ms: u64,
    /// Whether new players may join (the lecturer can close joining). A state saved before
    /// this field existed was open.
    #[serde(default = "open")]
    pub joins_open: bool,
}

fn open() -> bool {
    true
}

impl Default for GameState {
    fn default() -> GameState {
        GameState {
            round: None,
            players: BTreeMap::new(),
            transports: TransportTally::default(),
            paused: false,
            poll_interval_ms: 0,
            joins_open: true,
        }
    }
}

impl GameState {
    /// Folds one event into the state. `ts` is the event's server time.
    pub fn apply(&mut self, kind: &EventKind, ts: u64) {
        match kind {
            EventKind::PlayerJoined { player, name } => {
                self.players.insert(
                    *player,
                    Player {
                        id: *player,
                        name: name.clone(),
                        score: 0,
                        misses: 0,
                        transport: None,
                    },
                );
            }
            EventKind::PlayerLeft { player, .. } => {
                self.players.remove(player);
            }
            EventKind::PlayerRejoined {
                player,
                name,
                score,
                misses,
            } => {
                self.players.insert(
                    *player,
                    Player {
                        id: *player,
                        name: name.clone(),
                        score: *score,
                        misses: *misses,
                        transport: None,
                    },
                );
            }
            EventKind::PlayerTransport { player, transport } => {
                if let Some(p) = self.players.get_mut(player) {
                    p.transport = Some(*transport);
                }
            }
            EventKind::RoundStarted { round, x, y, r } => {
                self.round = Some(Round {
                    number: *round,
                    x: *x,
                    y: *y,
                    r: *r,
                    started_ts: ts,
                    winner: None,
                    expired: false,
                });
            }
            EventKind::ClickMissed { player, misses, .. } => {
                if let Some(p) = self.players.get_mut(player) {
                    p.misses = *misses;
                }
            }
            EventKind::RoundWon {
                round,
                winner,
                reaction_ms,
                transport,
                ..
            } => {
                if let Some(current) = self.round.as_mut().filter(|c| c.number == *round) {
                    current.winner = Some(*winner);
                }
                if let Some(p) = self.players.get_mut(winner) {
                    p.score += 1;
                }
                let tally = self.transports.get_mut(*transport);
                tally.wins += 1;
                tally.total_reaction_ms += reaction_ms;
            }
            EventKind::RoundExpired { round } => {
                if let Some(current) = self.round.as_mut().filter(|c| c.number == *round) {
                    current.expired = true;
                }
            }
            EventKind::GamePaused { paused } => self.paused = *paused,
            EventKind::ScoresReset {} => {
                for p in self.players.values_mut() {
                    p.score = 0;
                    p.misses = 0;
                }
                self.transports = TransportTally::default();
            }
            EventKind::Settings { poll_interval_ms } => self.poll_interval_ms = *poll_interval_ms,
            EventKind::PlayerRenamed { player, name } => {
                if let Some(p) = self.players.get_mut(player) {
                    p.name = name.clone();
                }
            }
            EventKind::JoinsChanged { open } => self.joins_open = *open,
        }
    }
}

fn players_as_list<S: Serializer>(
    players: &BTreeMap<PlayerId, Player>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(players.values())
}

/// Two rows with one id are an error, not "the last one wins": a restored state must say
/// exactly one thing about each player.
fn players_from_list<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<PlayerId, Player>, D::Error> {
    let list = Vec::<Player>::deserialize(d)?;
    let mut players = BTreeMap::new();
    for p in list {
        if let Some(dup) = players.insert(p.id, p) {
            return Err(serde::de::Error::custom(format!(
                "player id {} appears twice",
                dup.id
            )));
        }
    }
    Ok(players)
}
