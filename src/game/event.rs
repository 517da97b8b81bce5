//! What the game says happened. Every state change is one [`EventKind`]; the hub numbers them
//! (`seq`) and stamps them (`ts`), producing the [`Event`] every transport carries unchanged.

use serde::{Deserialize, Serialize};

use super::{PlayerId, Transport};

/// One numbered, timestamped event exactly as it goes over the wire:
/// `{"seq":7,"ts":1764386400000,"type":"round_won",...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Strictly increasing per server state; never reused, never skipped.
    pub seq: u64,
    /// Server time in milliseconds since the Unix epoch.
    pub ts: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Why a player left the game.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// The player asked (`POST /api/leave`).
    Left,
    /// No transport contact for the idle timeout.
    Idle,
    /// The lecturer removed the player (`POST /api/admin/kick`); their session ends with it.
    Kicked,
}

/// Where a winner's `reaction_ms` counts from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReactionFrom {
    /// From the round's start (`round_started`'s `ts`): before the server knew when the round
    /// reached the winner. Events saved before the field existed read as this.
    #[default]
    RoundStart,
    /// From the moment the server handed `round_started` to the winner's own transport.
    Delivery,
}

/// The state changes of the Click Game. Serialised with an internal `type` tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EventKind {
    PlayerJoined {
        player: PlayerId,
        name: String,
    },
    PlayerLeft {
        player: PlayerId,
        reason: LeaveReason,
    },
    /// A player who left for being idle came back in time, with their score.
    PlayerRejoined {
        player: PlayerId,
        name: String,
        score: u64,
        misses: u64,
    },
    /// The transport a player's most recent downstream contact used changed.
    PlayerTransport {
        player: PlayerId,
        transport: Transport,
    },
    /// A new target: centre `(x, y)` and radius `r` on the 1000 × 1000 board.
    RoundStarted {
        round: u64,
        x: u32,
        y: u32,
        r: u32,
    },
    /// A click outside the target; `misses` is the player's new running total.
    ClickMissed {
        player: PlayerId,
        round: u64,
        misses: u64,
    },
    RoundWon {
        round: u64,
        winner: PlayerId,
        name: String,
        reaction_ms: u64,
        transport: Transport,
        /// What `reaction_ms` counts from.
        #[serde(default)]
        reaction_from: ReactionFrom,
    },
    /// Nobody hit the round within the round timeout: it ended unwon. Every round ends exactly
    /// once, with a `round_won` or a `round_expired`.
    RoundExpired {
        round: u64,
    },
    /// The lecturer paused (no new rounds) or resumed the game.
    GamePaused {
        paused: bool,
    },
    /// The lecturer reset every score, miss count and transport tally to zero.
    ScoresReset {},
    /// The lecturer changed how often AJAX clients poll.
    Settings {
        poll_interval_ms: u64,
    },
    /// The lecturer renamed a player; `name` went through the same checks as a join's.
    PlayerRenamed {
        player: PlayerId,
        name: String,
    },
    /// The lecturer closed (`open: false`) or reopened joining. Players already in the game,
    /// and idle ones coming back, are not affected.
    JoinsChanged {
        open: bool,
    },
}

/// The `type` tag of [`EventKind::RoundStarted`]: what a transport's delivery is checked for
/// (`Connection::delivered`), so the spelling lives here once.
pub const ROUND_STARTED: &str = "round_started";

impl EventKind {
    /// The `type` tag, also used as the SSE `event:` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::PlayerJoined { .. } => "player_joined",
            EventKind::PlayerLeft { .. } => "player_left",
            EventKind::PlayerRejoined { .. } => "player_rejoined",
            EventKind::PlayerTransport { .. } => "player_transport",
            EventKind::RoundStarted { .. } => ROUND_STARTED,
            EventKind::ClickMissed { .. } => "click_missed",
            EventKind::RoundWon { .. } => "round_won",
            EventKind::RoundExpired { .. } => "round_expired",
            EventKind::GamePaused { .. } => "game_paused",
            EventKind::ScoresReset {} => "scores_reset",
            EventKind::Settings { .. } => "settings",
            EventKind::PlayerRenamed { .. } => "player_renamed",
            EventKind::JoinsChanged { .. } => "joins_changed",
        }
    }
}
