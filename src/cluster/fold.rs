//! # Checkpoint + events → the game now, with the game's own `apply`
//!
//! A new authority (and a node rebuilding its replica) starts from the last checkpoint's
//! [`GameState`] and folds every later event into it with [`GameState::apply`] — the same fold
//! the browser does to its snapshot (`web/js/protocol.js`), which a property test already holds
//! to "snapshot + events = state". Nothing here knows the rules: a new kind of event needs no
//! change in this file.
//!
//! Pure: entries in, state out, so it is tested without Redis.

use crate::game::{Event, EventKind, GameState, PlayerId};

use super::stream::LogEntry;

/// The game after folding.
#[derive(Debug, Clone, PartialEq)]
pub struct Folded {
    pub state: GameState,
    /// One above every player id seen: ids are never reused.
    pub next_player_id: PlayerId,
    pub last_seq: u64,
}

/// Why the entries could not be folded; the log is then not one this server wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldError(pub String);

impl std::fmt::Display for FoldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot fold the log: {}", self.0)
    }
}

impl std::error::Error for FoldError {}

/// Folds `entries` into `state`, which is the game as of `last_seq`. Entries at or before
/// `last_seq` are skipped (a restore also returns the history before the checkpoint); the rest
/// must follow without a gap.
pub fn fold(
    mut state: GameState,
    mut next_player_id: PlayerId,
    mut last_seq: u64,
    entries: &[LogEntry],
) -> Result<Folded, FoldError> {
    let start = last_seq;
    for entry in entries.iter().filter(|e| e.seq > start) {
        if entry.seq != last_seq + 1 {
            return Err(FoldError(format!(
                "seq {} follows {last_seq}: events are missing",
                entry.seq
            )));
        }
        let event: Event = serde_json::from_str(&entry.json)
            .map_err(|e| FoldError(format!("event {} does not parse: {e}", entry.seq)))?;
        if event.seq != entry.seq {
            return Err(FoldError(format!(
                "entry {} holds the event with seq {}",
                entry.seq, event.seq
            )));
        }
        if let EventKind::PlayerJoined { player, .. } | EventKind::PlayerRejoined { player, .. } =
            &event.kind
        {
            next_player_id = next_player_id.max(player.saturating_add(1));
        }
        state.apply(&event.kind, event.ts);
        last_seq = entry.seq;
    }
    Ok(Folded {
        state,
        next_player_id,
        last_seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::{Click, Game, Rules};

    /// Numbers and serialises events as the hub does.
    struct Log {
        seq: u64,
        entries: Vec<LogEntry>,
    }

    impl Log {
        fn push(&mut self, kinds: Vec<EventKind>, ts: u64) {
            for kind in kinds {
                self.seq += 1;
                let event = Event {
                    seq: self.seq,
                    ts,
                    kind,
                };
                self.entries.push(LogEntry {
                    seq: self.seq,
                    json: serde_json::to_string(&event).unwrap(),
                });
            }
        }
    }

    fn rules() -> Rules {
        Rules {
            round_pause_ms: 0,
            round_pause_jitter_ms: 0,
            ..Rules::default()
        }
    }

    /// A game played for a while: joins, rounds won and missed, a leave, lecturer controls.
    fn played() -> (Game, Log, Vec<(GameState, PlayerId, u64)>) {
        let mut now = 1_000_000;
        let mut game = Game::new(rules(), 3, now);
        let mut log = Log {
            seq: 0,
            entries: Vec::new(),
        };
        let mut checkpoints = vec![(game.state().clone(), game.next_player_id(), 0)];
        let mut players = Vec::new();
        for name in ["Ada", "Bob", "Cy", "Dee"] {
            let (id, events) = game.join(name, now).unwrap();
            players.push(id);
            log.push(events, now);
        }
        for round in 0..12u64 {
            now += 100;
            let events = game.tick(now);
            log.push(events, now);
            let r = game.state().round.clone().unwrap();
            let who = players[(round % players.len() as u64) as usize];
            let (x, y) = if round % 3 == 0 {
                (0.0, 0.0)
            } else {
                (r.x as f64, r.y as f64)
            };
            let click = Click {
                round: r.number,
                x,
                y,
            };
            if let Ok((_, events)) = game.click(who, click, now + 50) {
                log.push(events, now + 50);
            }
            if round == 5 {
                log.push(game.leave(players[3], now).unwrap(), now);
                players.pop();
                log.push(game.set_paused(true, now), now);
                log.push(game.set_paused(false, now), now);
            }
            if round == 8 {
                log.push(game.reset_scores(now), now);
                let (id, events) = game.join("Eve", now).unwrap();
                players.push(id);
                log.push(events, now);
            }
            checkpoints.push((game.state().clone(), game.next_player_id(), log.seq));
        }
        (game, log, checkpoints)
    }

    #[test]
    fn any_checkpoint_plus_the_events_after_it_gives_the_game_as_it_is() {
        let (game, log, checkpoints) = played();
        assert!(log.seq > 25, "the game produced a real log: {}", log.seq);
        for (state, next_id, seq) in checkpoints {
            let folded = fold(state, next_id, seq, &log.entries).unwrap();
            assert_eq!(&folded.state, game.state(), "from the checkpoint at {seq}");
            assert_eq!(folded.next_player_id, game.next_player_id());
            assert_eq!(folded.last_seq, log.seq);
        }
    }

    #[test]
    fn folding_from_nothing_replays_the_whole_game() {
        let (game, log, _) = played();
        let folded = fold(GameState::default(), 1, 0, &log.entries).unwrap();
        // The poll interval is set by the rules at start, not by an event.
        let mut expected = game.state().clone();
        expected.poll_interval_ms = 0;
        assert_eq!(folded.state, expected);
        assert_eq!(folded.next_player_id, game.next_player_id());
    }

    #[test]
    fn a_gap_a_foreign_entry_or_a_misnumbered_event_is_refused() {
        let (_, log, _) = played();
        let mut gap = log.entries.clone();
        gap.remove(4);
        let err = fold(GameState::default(), 1, 0, &gap).unwrap_err();
        assert!(err.0.contains("missing"), "{err}");

        let mut foreign = log.entries.clone();
        foreign[2].json = r#"{"seq":3,"ts":1,"type":"no_such_event"}"#.into();
        let err = fold(GameState::default(), 1, 0, &foreign).unwrap_err();
        assert!(err.0.contains("does not parse"), "{err}");

        let mut misnumbered = log.entries.clone();
        misnumbered[2].json = misnumbered[3].json.clone();
        let err = fold(GameState::default(), 1, 0, &misnumbered).unwrap_err();
        assert!(err.0.contains("holds the event"), "{err}");
    }
}
