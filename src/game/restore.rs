//! # Checking a saved game before trusting it
//!
//! A state file is input like any request: somebody may have edited it, a disk may have
//! mangled it, an older build may have written something this one never would. So a restored
//! state must pass the same rules live input passes, and the invariants live play keeps:
//!
//! * names: the join validator accepts each as it is written (already normalised), and no two
//!   look alike — markup, invisible characters and duplicates are refused;
//! * ids: every id is below `next_player_id`, which is at most [`MAX_PLAYER_ID`] + 1, so ids
//!   can neither wrap around nor be handed out twice;
//! * counters (seq, scores, misses, times): at most [`MAX_SAFE_INTEGER`], the largest integer a
//!   browser's `Number` holds exactly, so nothing overflows or is shown wrong;
//! * scores: no player has more than the rounds won, and no more rounds were won than played;
//! * the poll interval lies in [`POLL_INTERVAL_MS`], the lecturer control's range;
//! * the round: a target of radius 1..=500 that lies entirely on the 1000 × 1000 board, and
//!   not both won and expired.
//!
//! A refusal names the first field that broke a rule; the server then keeps the file aside and
//! starts a fresh game (`persist.rs`). The road not taken: repairing a bad state (dropping the
//! bad player, clamping the interval) — a file that breaks one rule cannot be trusted on the
//! others, and a silent repair hides the tampering.

use std::collections::HashMap;
use std::fmt;
use std::ops::RangeInclusive;

use super::{
    validate_name, EventKind, GameState, NameKeys, PlayerId, Round, Rules, BOARD_SIZE,
    MAX_PLAYER_ID,
};

/// `Number.MAX_SAFE_INTEGER` of JavaScript: 2^53 − 1.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The AJAX polling interval a lecturer may set, and a restored state may hold.
pub const POLL_INTERVAL_MS: RangeInclusive<u64> = 50..=60_000;

/// Why a saved state was refused: the first rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidState(pub String);

impl fmt::Display for InvalidState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidState {}

fn bad(why: String) -> Result<(), InvalidState> {
    Err(InvalidState(why))
}

fn counter(what: &str, value: u64) -> Result<(), InvalidState> {
    if value > MAX_SAFE_INTEGER {
        return bad(format!("{what} is {value}, above 2^53 - 1"));
    }
    Ok(())
}

/// An id that can have been handed out before `next_player_id`.
fn id(what: &str, id: PlayerId, next_player_id: PlayerId) -> Result<(), InvalidState> {
    if id == 0 || id >= next_player_id {
        return bad(format!(
            "{what} is {id}; ids run from 1 to below next_player_id {next_player_id}"
        ));
    }
    Ok(())
}

/// A name exactly as the join validator would have stored it.
fn stored_name(what: &str, name: &str) -> Result<(), InvalidState> {
    match validate_name(name) {
        Ok(normal) if normal == name => Ok(()),
        Ok(normal) => bad(format!(
            "{what} {name:?} is not in normal form (would be {normal:?})"
        )),
        Err(err) => bad(format!("{what} {name:?}: {err}")),
    }
}

/// A target that lies entirely on the board.
fn target(what: &str, x: u32, y: u32, r: u32) -> Result<(), InvalidState> {
    let fits = (1..=BOARD_SIZE / 2).contains(&r)
        && (r..=BOARD_SIZE - r).contains(&x)
        && (r..=BOARD_SIZE - r).contains(&y);
    if !fits {
        return bad(format!(
            "{what} at ({x}, {y}) with radius {r} does not lie on the {BOARD_SIZE} x {BOARD_SIZE} board"
        ));
    }
    Ok(())
}

fn poll_interval(what: &str, ms: u64) -> Result<(), InvalidState> {
    if !POLL_INTERVAL_MS.contains(&ms) {
        return bad(format!(
            "{what} is {ms} ms, outside {}..={} ms",
            POLL_INTERVAL_MS.start(),
            POLL_INTERVAL_MS.end()
        ));
    }
    Ok(())
}

fn round(round: &Round, next_player_id: PlayerId) -> Result<(), InvalidState> {
    if round.number == 0 {
        return bad("the round number is 0; rounds count from 1".into());
    }
    counter("the round number", round.number)?;
    counter("the round's start time", round.started_ts)?;
    target("the round's target", round.x, round.y, round.r)?;
    if let Some(winner) = round.winner {
        id("the round's winner", winner, next_player_id)?;
        if round.expired {
            return bad(format!(
                "round {} is both won (by {winner}) and expired; a round ends once",
                round.number
            ));
        }
    }
    Ok(())
}

/// Checks a whole saved state; on success returns the name index the game keeps.
pub(super) fn check_state(
    state: &GameState,
    next_player_id: PlayerId,
    rules: &Rules,
) -> Result<[HashMap<String, PlayerId>; 2], InvalidState> {
    if next_player_id == 0 || next_player_id > MAX_PLAYER_ID + 1 {
        return Err(InvalidState(format!(
            "next_player_id is {next_player_id}; it must lie in 1..=2^53"
        )));
    }
    poll_interval("the poll interval", state.poll_interval_ms)?;
    let rounds = match &state.round {
        Some(r) => {
            round(r, next_player_id)?;
            r.number
        }
        None => 0,
    };
    let tally = &state.transports;
    for (transport, t) in [
        ("ajax", tally.ajax),
        ("longpoll", tally.longpoll),
        ("sse", tally.sse),
        ("websocket", tally.websocket),
    ] {
        counter(&format!("{transport} wins"), t.wins)?;
        counter(&format!("{transport} reaction time"), t.total_reaction_ms)?;
    }
    let wins = tally.total_wins();
    if wins > rounds {
        return Err(InvalidState(format!(
            "{wins} rounds won but only {rounds} played"
        )));
    }
    if state.players.len() > rules.max_players {
        return Err(InvalidState(format!(
            "{} players, more than --max-players {}",
            state.players.len(),
            rules.max_players
        )));
    }
    let mut names: [HashMap<String, PlayerId>; 2] = Default::default();
    let mut scores: u64 = 0;
    for (key, p) in &state.players {
        if *key != p.id {
            return Err(InvalidState(format!(
                "player {} is filed under {key}",
                p.id
            )));
        }
        id("a player id", p.id, next_player_id)?;
        stored_name(&format!("player {}'s name", p.id), &p.name)?;
        counter(&format!("player {}'s misses", p.id), p.misses)?;
        if p.score > wins {
            return Err(InvalidState(format!(
                "player {} has {} points but only {wins} rounds were won",
                p.id, p.score
            )));
        }
        scores = scores.saturating_add(p.score);
        for (k, index) in NameKeys::of(&p.name).0.into_iter().zip(&mut names) {
            if let Some(other) = index.insert(k, p.id) {
                return Err(InvalidState(format!(
                    "players {other} and {} have names that look the same",
                    p.id
                )));
            }
        }
    }
    if scores > wins {
        return Err(InvalidState(format!(
            "the players hold {scores} points but only {wins} rounds were won"
        )));
    }
    Ok(names)
}

/// Checks one event of a saved history against the rules the game itself obeys when it makes
/// one: names as the join validator stores them, ids below `next_player_id`, targets on the
/// board, counters a browser can hold, the poll interval in range.
pub fn validate_event(kind: &EventKind, next_player_id: PlayerId) -> Result<(), InvalidState> {
    match kind {
        EventKind::PlayerJoined { player, name } => {
            id("a joining player", *player, next_player_id)?;
            stored_name("a joining player's name", name)
        }
        EventKind::PlayerLeft { player, .. } => id("a leaving player", *player, next_player_id),
        EventKind::PlayerRejoined {
            player,
            name,
            score,
            misses,
        } => {
            id("a rejoining player", *player, next_player_id)?;
            stored_name("a rejoining player's name", name)?;
            counter("a rejoining player's score", *score)?;
            counter("a rejoining player's misses", *misses)
        }
        EventKind::PlayerTransport { player, .. } => {
            id("a player changing transport", *player, next_player_id)
        }
        EventKind::RoundStarted { round, x, y, r } => {
            if *round == 0 {
                return bad("a round_started for round 0".into());
            }
            counter("a started round's number", *round)?;
            target("a started round's target", *x, *y, *r)
        }
        EventKind::ClickMissed {
            player,
            round,
            misses,
        } => {
            id("a missing player", *player, next_player_id)?;
            counter("a missed round's number", *round)?;
            counter("a miss count", *misses)
        }
        EventKind::RoundWon {
            round,
            winner,
            name,
            reaction_ms,
            ..
        } => {
            id("a round's winner", *winner, next_player_id)?;
            stored_name("a winner's name", name)?;
            counter("a won round's number", *round)?;
            counter("a reaction time", *reaction_ms)
        }
        EventKind::RoundExpired { round } => {
            if *round == 0 {
                return bad("a round_expired for round 0".into());
            }
            counter("an expired round's number", *round)
        }
        EventKind::Settings { poll_interval_ms } => {
            poll_interval("a settings event's poll interval", *poll_interval_ms)
        }
        EventKind::PlayerRenamed { player, name } => {
            id("a renamed player", *player, next_player_id)?;
            stored_name("a renamed player's new name", name)
        }
        EventKind::GamePaused { .. }
        | EventKind::ScoresReset {}
        | EventKind::JoinsChanged { .. } => Ok(()),
    }
}
