//! What players ask of the game, what it answers, and why it refuses.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::PlayerId;

/// A click on the board for a given round, in board units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Click {
    pub round: u64,
    pub x: f64,
    pub y: f64,
}

/// The game's answer to a click. Serialised as the body of `POST /api/click`
/// (and of a WebSocket `click_result`): `{"result":"hit","round":4,"reaction_ms":312}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ClickOutcome {
    /// First click inside the target: the round is yours.
    Hit { round: u64, reaction_ms: u64 },
    /// Outside the target; `misses` is your running total.
    Miss { round: u64, misses: u64 },
    /// Somebody was faster. `winner` is `None` only for rounds too old to remember.
    Late {
        round: u64,
        winner: Option<PlayerId>,
        winner_name: Option<String>,
    },
    /// Nobody hit that round in time: it ended by itself (`round_expired`) before this click.
    Expired { round: u64 },
}

/// Why the game refused a command. `error.rs` maps each to an HTTP status and an error code.
#[derive(Debug, Clone, PartialEq)]
pub enum GameError {
    InvalidName(String),
    NameTaken(String),
    /// The game holds its maximum number of players (`--max-players`), or ran out of ids.
    GameFull {
        max: usize,
    },
    UnknownPlayer(PlayerId),
    OutOfBoard {
        x: f64,
        y: f64,
        size: u32,
    },
    RoundNotStarted {
        requested: u64,
        current: Option<u64>,
    },
    /// The lecturer closed joining.
    JoinsClosed,
}

impl fmt::Display for GameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GameError::InvalidName(why) => write!(f, "invalid name: {why}"),
            GameError::NameTaken(name) => write!(
                f,
                "the name {name:?} is already playing, or one that looks the same"
            ),
            GameError::GameFull { max } => write!(
                f,
                "the game is full ({max} players); try again when somebody leaves"
            ),
            GameError::UnknownPlayer(id) => write!(f, "player {id} is not in the game"),
            GameError::OutOfBoard { x, y, size } => {
                write!(f, "click ({x}, {y}) is outside the {size}x{size} board")
            }
            GameError::RoundNotStarted { requested, current } => match current {
                Some(c) => write!(
                    f,
                    "round {requested} has not started (current round is {c})"
                ),
                None => write!(f, "round {requested} has not started (no round yet)"),
            },
            GameError::JoinsClosed => write!(
                f,
                "the lecturer has closed joining for now; watch, or ask to be let in"
            ),
        }
    }
}

impl std::error::Error for GameError {}
