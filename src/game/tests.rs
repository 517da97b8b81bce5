//! Rules in isolation: no runtime, explicit time, fixed seeds.

use proptest::prelude::*;

use super::*;

const T0: u64 = 1_700_000_000_000;

fn rules() -> Rules {
    Rules {
        target_radius: 40,
        round_pause_ms: 100,
        round_pause_jitter_ms: 0,
        idle_timeout_ms: 60_000,
        poll_interval_ms: 1000,
        max_players: 1000,
        round_timeout_ms: 0,
    }
}

fn started(seed: u64) -> Game {
    let mut game = Game::new(rules(), seed, T0);
    let events = game.tick(T0);
    assert!(matches!(
        events.as_slice(),
        [EventKind::RoundStarted { round: 1, .. }]
    ));
    game
}

fn target(game: &Game) -> (f64, f64) {
    let round = game.state().round.as_ref().expect("a round is running");
    (f64::from(round.x), f64::from(round.y))
}

#[test]
fn the_first_hit_wins_and_a_second_hit_is_late_with_the_winner_named() {
    let mut game = started(1);
    let (ada, _) = game.join("Ada", T0).unwrap();
    let (bob, _) = game.join("Bob", T0).unwrap();
    game.contact(bob, Transport::Sse, T0).unwrap();
    let (x, y) = target(&game);

    let (hit, events) = game.click(bob, Click { round: 1, x, y }, T0 + 250).unwrap();
    assert_eq!(
        hit,
        ClickOutcome::Hit {
            round: 1,
            reaction_ms: 250
        }
    );
    assert!(matches!(
        events.as_slice(),
        [EventKind::RoundWon { round: 1, winner, reaction_ms: 250, transport: Transport::Sse, .. }] if *winner == bob
    ));

    let (late, events) = game.click(ada, Click { round: 1, x, y }, T0 + 251).unwrap();
    assert_eq!(
        late,
        ClickOutcome::Late {
            round: 1,
            winner: Some(bob),
            winner_name: Some("Bob".into())
        }
    );
    assert!(events.is_empty());
    assert_eq!(game.state().players[&bob].score, 1);
    assert_eq!(
        game.state().transports.sse,
        Tally {
            wins: 1,
            total_reaction_ms: 250
        }
    );
}

#[test]
fn a_click_outside_the_target_is_a_counted_miss() {
    let mut game = started(2);
    let (ada, _) = game.join("Ada", T0).unwrap();
    let (x, y) = target(&game);
    let far_x = if x > 500.0 { 0.0 } else { 1000.0 };
    let (miss, _) = game
        .click(
            ada,
            Click {
                round: 1,
                x: far_x,
                y,
            },
            T0,
        )
        .unwrap();
    assert_eq!(
        miss,
        ClickOutcome::Miss {
            round: 1,
            misses: 1
        }
    );
    let (miss, _) = game
        .click(
            ada,
            Click {
                round: 1,
                x: far_x,
                y,
            },
            T0,
        )
        .unwrap();
    assert_eq!(
        miss,
        ClickOutcome::Miss {
            round: 1,
            misses: 2
        }
    );
    assert_eq!(game.state().players[&ada].misses, 2);
    assert!(game.state().round.as_ref().unwrap().winner.is_none());
}

#[test]
fn the_edge_of_the_target_counts_as_inside() {
    let mut game = started(3);
    let (ada, _) = game.join("Ada", T0).unwrap();
    let (x, y) = target(&game);
    let (hit, _) = game
        .click(
            ada,
            Click {
                round: 1,
                x: x + 40.0,
                y,
            },
            T0,
        )
        .unwrap();
    assert!(matches!(hit, ClickOutcome::Hit { .. }));
}

#[test]
fn a_click_for_a_future_round_or_off_the_board_is_refused_and_changes_nothing() {
    let mut game = started(4);
    let (ada, _) = game.join("Ada", T0).unwrap();
    let before = game.state().clone();
    assert!(matches!(
        game.click(
            ada,
            Click {
                round: 2,
                x: 1.0,
                y: 1.0
            },
            T0
        ),
        Err(GameError::RoundNotStarted {
            requested: 2,
            current: Some(1)
        })
    ));
    assert!(matches!(
        game.click(
            ada,
            Click {
                round: 1,
                x: -1.0,
                y: 1.0
            },
            T0
        ),
        Err(GameError::OutOfBoard { .. })
    ));
    assert!(matches!(
        game.click(
            ada,
            Click {
                round: 1,
                x: 1.0,
                y: 1000.5
            },
            T0
        ),
        Err(GameError::OutOfBoard { .. })
    ));
    assert!(matches!(
        game.click(
            ada,
            Click {
                round: 1,
                x: f64::NAN,
                y: 1.0
            },
            T0
        ),
        Err(GameError::OutOfBoard { .. })
    ));
    assert!(matches!(
        game.click(
            99,
            Click {
                round: 1,
                x: 1.0,
                y: 1.0
            },
            T0
        ),
        Err(GameError::UnknownPlayer(99))
    ));
    assert_eq!(game.state(), &before);
}

#[test]
fn the_next_round_starts_after_the_pause_and_not_before() {
    let mut game = started(5);
    let (ada, _) = game.join("Ada", T0).unwrap();
    let (x, y) = target(&game);
    game.click(ada, Click { round: 1, x, y }, T0 + 10).unwrap();
    assert_eq!(game.next_deadline(), Some(T0 + 110));
    assert!(game.tick(T0 + 109).is_empty());
    let events = game.tick(T0 + 110);
    assert!(matches!(
        events.as_slice(),
        [EventKind::RoundStarted { round: 2, .. }]
    ));
    let (late, _) = game.click(ada, Click { round: 1, x, y }, T0 + 111).unwrap();
    assert!(matches!(late, ClickOutcome::Late { round: 1, winner: Some(w), .. } if w == ada));
}

#[test]
fn names_are_trimmed_checked_and_unique_ignoring_case() {
    let mut game = started(6);
    assert_eq!(validate_name("  Ada Lovelace ").unwrap(), "Ada Lovelace");
    assert_eq!(validate_name("Zoë_2-x.y").unwrap(), "Zoë_2-x.y");
    for bad in [
        "",
        "   ",
        "<img src=x onerror=alert(1)>",
        "a\u{0}b",
        "twenty-one-characters",
        "tab\there",
        "😀",
    ] {
        assert!(
            matches!(validate_name(bad), Err(GameError::InvalidName(_))),
            "{bad:?} should be refused"
        );
    }
    assert_eq!(
        validate_name("exactly-twenty-chars")
            .unwrap()
            .chars()
            .count(),
        20
    );
    game.join("Ada", T0).unwrap();
    assert!(matches!(
        game.join(" ada", T0),
        Err(GameError::NameTaken(_))
    ));
}

#[test]
fn a_silent_player_leaves_after_the_idle_timeout_but_not_while_a_stream_is_open() {
    let mut game = started(7);
    let (ada, _) = game.join("Ada", T0).unwrap();
    let (bob, _) = game.join("Bob", T0).unwrap();
    game.stream_opened(bob, Transport::Websocket, T0).unwrap();
    assert!(game.tick(T0 + 59_999).is_empty());
    let events = game.tick(T0 + 60_000);
    assert_eq!(
        events,
        vec![EventKind::PlayerLeft {
            player: ada,
            reason: LeaveReason::Idle
        }]
    );
    assert!(
        game.tick(T0 + 600_000).is_empty(),
        "an open stream keeps Bob in"
    );
    game.stream_closed(bob, T0 + 600_000);
    assert_eq!(game.next_deadline(), Some(T0 + 660_000));
    assert_eq!(game.tick(T0 + 660_000).len(), 1);
    assert!(game.state().players.is_empty());
}

#[test]
fn a_transport_change_is_an_event_and_a_repeat_is_not() {
    let mut game = started(8);
    let (ada, _) = game.join("Ada", T0).unwrap();
    assert_eq!(game.contact(ada, Transport::Ajax, T0).unwrap().len(), 1);
    assert!(game.contact(ada, Transport::Ajax, T0).unwrap().is_empty());
    assert_eq!(
        game.contact(ada, Transport::Sse, T0).unwrap(),
        vec![EventKind::PlayerTransport {
            player: ada,
            transport: Transport::Sse
        }]
    );
}

#[test]
fn the_same_seed_places_the_same_targets() {
    let a = started(42);
    let b = started(42);
    assert_eq!(a.state().round, b.state().round);
}

#[test]
fn events_serialise_with_seq_type_and_ts() {
    let event = Event {
        seq: 7,
        ts: T0,
        kind: EventKind::RoundStarted {
            round: 3,
            x: 10,
            y: 20,
            r: 40,
        },
    };
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"seq": 7, "ts": T0, "type": "round_started", "round": 3, "x": 10, "y": 20, "r": 40})
    );
    assert_eq!(serde_json::from_value::<Event>(json).unwrap(), event);
}

// ---- properties -------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Join(u8),
    Leave(u8),
    Contact(u8, u8),
    /// Click by player slot; `true` aims at the centre of the current target.
    Click(u8, bool, u16, u16),
    Wait(u16),
    /// Lecturer: 0 pause, 1 resume, 2 reset scores, 3 change the poll interval.
    Lecturer(u8),
    /// The current round reached a player (by slot), as a transport reports it.
    Deliver(u8),
    /// Lecturer: remove the player in this slot.
    Kick(u8),
    /// Lecturer: rename the player in this slot to `p<n>` (may clash, may be their own name).
    Rename(u8, u8),
    /// Lecturer: open (`true`) or close joining.
    Joins(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6).prop_map(Op::Join),
        (0u8..6).prop_map(Op::Leave),
        (0u8..6, 0u8..4).prop_map(|(p, t)| Op::Contact(p, t)),
        (0u8..6, any::<bool>(), 0u16..=1000, 0u16..=1000)
            .prop_map(|(p, aim, x, y)| Op::Click(p, aim, x, y)),
        (0u16..2000).prop_map(Op::Wait),
        (0u8..4).prop_map(Op::Lecturer),
        (0u8..6).prop_map(Op::Deliver),
        (0u8..6).prop_map(Op::Kick),
        (0u8..6, 0u8..8).prop_map(|(p, n)| Op::Rename(p, n)),
        any::<bool>().prop_map(Op::Joins),
    ]
}

/// The round timeout of [`play`]: shorter than the longest wait, so rounds expire.
const PLAY_ROUND_TIMEOUT_MS: u64 = 1_500;

/// Runs a random session and returns the numbered log and the final game.
/// Also returns the points a player had when they left, and how many wins a reset wiped.
fn play(seed: u64, ops: &[Op]) -> (Vec<Event>, Game, u64, u64) {
    let mut game = Game::new(
        Rules {
            idle_timeout_ms: 5_000,
            round_timeout_ms: PLAY_ROUND_TIMEOUT_MS,
            ..rules()
        },
        seed,
        T0,
    );
    let mut now = T0;
    let mut log = Vec::new();
    let mut seq = 0;
    let mut record = |log: &mut Vec<Event>, kinds: Vec<EventKind>, now: u64| {
        for kind in kinds {
            seq += 1;
            log.push(Event { seq, ts: now, kind });
        }
    };
    let mut departed_score = 0;
    let mut reset_wins = 0;
    for op in ops {
        let ids: Vec<PlayerId> = game.state().players.keys().copied().collect();
        let pick = |slot: u8| {
            ids.get(usize::from(slot) % ids.len().max(1))
                .copied()
                .unwrap_or(999)
        };
        match *op {
            Op::Join(n) => {
                if let Ok((_, ev)) = game.join(&format!("p{n}"), now) {
                    record(&mut log, ev, now);
                }
            }
            Op::Leave(p) => {
                let id = pick(p);
                let score = game.state().players.get(&id).map_or(0, |p| p.score);
                if let Ok(ev) = game.leave(id, now) {
                    departed_score += score;
                    record(&mut log, ev, now);
                }
            }
            Op::Contact(p, t) => {
                if let Ok(ev) = game.contact(pick(p), Transport::ALL[usize::from(t)], now) {
                    record(&mut log, ev, now);
                }
            }
            Op::Click(p, aim, x, y) => {
                let round = game.state().round.clone();
                let (number, x, y) = match (aim, round) {
                    (true, Some(r)) => (r.number, f64::from(r.x), f64::from(r.y)),
                    (_, r) => (r.map_or(1, |r| r.number), f64::from(x), f64::from(y)),
                };
                if let Ok((_, ev)) = game.click(
                    pick(p),
                    Click {
                        round: number,
                        x,
                        y,
                    },
                    now,
                ) {
                    record(&mut log, ev, now);
                }
            }
            Op::Lecturer(what) => {
                let ev = match what {
                    0 => game.set_paused(true, now),
                    1 => game.set_paused(false, now),
                    2 => {
                        // Points wiped by a reset are neither present nor departed.
                        departed_score = 0;
                        reset_wins = log
                            .iter()
                            .filter(|e| matches!(e.kind, EventKind::RoundWon { .. }))
                            .count() as u64;
                        game.reset_scores(now)
                    }
                    _ => game.set_poll_interval(500 + (now % 7) * 100, now),
                };
                record(&mut log, ev, now);
            }
            Op::Deliver(p) => {
                if let Some(round) = game.state().round.as_ref().map(|r| r.number) {
                    let via = Transport::ALL[usize::from(p) % Transport::COUNT];
                    game.round_delivered(pick(p), round, now, via, 0);
                }
            }
            Op::Kick(p) => {
                let id = pick(p);
                let score = game.state().players.get(&id).map_or(0, |p| p.score);
                if let Ok(ev) = game.kick(id, now) {
                    departed_score += score;
                    record(&mut log, ev, now);
                }
            }
            Op::Rename(p, n) => {
                if let Ok((_, ev)) = game.rename(pick(p), &format!("p{n}"), now) {
                    record(&mut log, ev, now);
                }
            }
            Op::Joins(open) => {
                let ev = game.set_joins_open(open, now);
                record(&mut log, ev, now);
            }
            Op::Wait(ms) => {
                now += u64::from(ms);
                // Players who left idle take their points with them.
                let before: Vec<(PlayerId, u64)> = game
                    .state()
                    .players
                    .values()
                    .map(|p| (p.id, p.score))
                    .collect();
                let ev = game.tick(now);
                for kind in &ev {
                    if let EventKind::PlayerLeft { player, .. } = kind {
                        departed_score += before
                            .iter()
                            .find(|(id, _)| id == player)
                            .map_or(0, |(_, s)| *s);
                    }
                }
                record(&mut log, ev, now);
            }
        }
    }
    (log, game, departed_score, reset_wins)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn seq_is_strictly_increasing_and_each_round_has_at_most_one_winner(seed in any::<u64>(), ops in prop::collection::vec(op(), 0..120)) {
        let (log, _, _, _) = play(seed, &ops);
        prop_assert!(log.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        let mut won = std::collections::HashSet::new();
        for e in &log {
            if let EventKind::RoundWon { round, .. } = e.kind {
                prop_assert!(won.insert(round), "round {} won twice", round);
            }
        }
    }

    #[test]
    fn every_round_ends_exactly_once_won_or_expired_never_both_and_only_in_its_time(
        seed in any::<u64>(), ops in prop::collection::vec(op(), 0..160)
    ) {
        let (log, game, _, _) = play(seed, &ops);
        let mut started: Vec<(u64, u64)> = Vec::new();
        let mut ended = std::collections::HashMap::new();
        for e in &log {
            match e.kind {
                EventKind::RoundStarted { round, .. } => {
                    if let Some((previous, _)) = started.last() {
                        prop_assert!(ended.contains_key(previous), "round {} started before {} ended", round, previous);
                    }
                    started.push((round, e.ts));
                }
                EventKind::RoundWon { round, .. } | EventKind::RoundExpired { round } => {
                    let (_, start) = *started.iter().find(|(r, _)| *r == round)
                        .ok_or_else(|| TestCaseError::fail(format!("round {round} ended without starting")))?;
                    let expired = matches!(e.kind, EventKind::RoundExpired { .. });
                    prop_assert!(ended.insert(round, expired).is_none(), "round {} ended twice", round);
                    if expired {
                        prop_assert!(e.ts >= start + PLAY_ROUND_TIMEOUT_MS, "round {} expired early", round);
                    } else {
                        prop_assert!(e.ts < start + PLAY_ROUND_TIMEOUT_MS, "round {} won after its time", round);
                    }
                }
                _ => {}
            }
        }
        // Every round but the last has ended; the state says how the last one stands.
        for (round, _) in started.iter().rev().skip(1) {
            prop_assert!(ended.contains_key(round), "round {} never ended", round);
        }
        if let Some(r) = game.state().round.as_ref() {
            prop_assert!(!(r.winner.is_some() && r.expired));
            prop_assert_eq!(ended.get(&r.number).copied(), (!r.is_open()).then_some(r.expired));
        }
    }

    #[test]
    fn reaction_counts_from_the_delivery_when_one_was_reported_else_from_the_start(
        seed in any::<u64>(), ops in prop::collection::vec(op(), 0..160)
    ) {
        let (log, _, _, _) = play(seed, &ops);
        let mut start = 0;
        for e in &log {
            match &e.kind {
                EventKind::RoundStarted { .. } => start = e.ts,
                EventKind::RoundWon { reaction_ms, reaction_from, .. } => {
                    prop_assert!(*reaction_ms <= e.ts - start);
                    if *reaction_from == ReactionFrom::RoundStart {
                        prop_assert_eq!(*reaction_ms, e.ts - start);
                    }
                }
                _ => {}
            }
        }
    }

    #[test]
    fn scores_add_up_to_rounds_won(seed in any::<u64>(), ops in prop::collection::vec(op(), 0..120)) {
        let (log, game, departed, wiped) = play(seed, &ops);
        let rounds_won = log.iter().filter(|e| matches!(e.kind, EventKind::RoundWon { .. })).count() as u64 - wiped;
        let present: u64 = game.state().players.values().map(|p| p.score).sum();
        prop_assert_eq!(present + departed, rounds_won);
        prop_assert_eq!(game.state().transports.total_wins(), rounds_won);
    }

    #[test]
    fn a_snapshot_from_any_point_plus_the_later_events_reproduces_the_state(
        seed in any::<u64>(), ops in prop::collection::vec(op(), 0..120), cut in any::<prop::sample::Index>()
    ) {
        let (log, game, _, _) = play(seed, &ops);
        let cut = cut.index(log.len() + 1);
        // The snapshot as a client receives it: built by folding, then sent through JSON.
        // Seq 0: the state a new game starts in, before any event.
        let mut snapshot = Game::new(rules(), seed, T0).state().clone();
        for e in &log[..cut] {
            snapshot.apply(&e.kind, e.ts);
        }
        let wire = serde_json::to_string(&snapshot).unwrap();
        let mut replayed: GameState = serde_json::from_str(&wire).unwrap();
        for e in &log[cut..] {
            let wire = serde_json::to_string(e).unwrap();
            let e: Event = serde_json::from_str(&wire).unwrap();
            replayed.apply(&e.kind, e.ts);
        }
        prop_assert_eq!(&replayed, game.state());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// The restore checks are the rules live play keeps: whatever play reaches is accepted,
    /// restored unchanged, and every event it made passes the history check.
    #[test]
    fn every_state_live_play_reaches_restores_unchanged_and_every_event_validates(
        seed in any::<u64>(), ops in prop::collection::vec(op(), 0..120)
    ) {
        let (log, game, _, _) = play(seed, &ops);
        let wire = serde_json::to_string(game.state()).unwrap();
        let state: GameState = serde_json::from_str(&wire).unwrap();
        let restored = Game::restore(rules(), seed, T0, state, game.next_player_id());
        prop_assert_eq!(restored.map(|g| g.state().clone()), Ok(game.state().clone()));
        for e in &log {
            prop_assert_eq!(validate_event(&e.kind, game.next_player_id()), Ok(()), "{:?}", e);
        }
    }
}

/// A state as a game that played a little would save it: Ada (id 1) won round 1, Bob (id 2)
/// missed twice, round 2 runs.
fn saved_state() -> (GameState, PlayerId) {
    let mut game = started(4);
    let (ada, _) = game.join("Ada", T0).unwrap();
    let (bob, _) = game.join("Bob", T0).unwrap();
    let (x, y) = target(&game);
    game.click(ada, Click { round: 1, x, y }, T0 + 5).unwrap();
    game.tick(T0 + 1000);
    game.click(
        bob,
        Click {
            round: 2,
            x: 0.0,
            y: 0.0,
        },
        T0 + 1001,
    )
    .unwrap();
    game.click(
        bob,
        Click {
            round: 2,
            x: 0.0,
            y: 0.0,
        },
        T0 + 1002,
    )
    .unwrap();
    (game.state().clone(), game.next_player_id())
}

#[test]
fn a_saved_state_that_breaks_a_rule_of_live_play_is_refused_with_the_reason() {
    let (good, next) = saved_state();
    assert!(Game::restore(rules(), 1, T0, good.clone(), next).is_ok());
    type Edit = Box<dyn Fn(&mut GameState, &mut PlayerId)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "poll interval 0",
            Box::new(|s, _| s.poll_interval_ms = 0),
            "poll interval",
        ),
        (
            "poll interval 1 h",
            Box::new(|s, _| s.poll_interval_ms = 3_600_000),
            "poll interval",
        ),
        (
            "markup in a name",
            Box::new(|s, _| {
                s.players.get_mut(&1).unwrap().name = "<img src=x onerror=alert(1)>".into()
            }),
            "name",
        ),
        (
            "a name that looks like another",
            Box::new(|s, _| s.players.get_mut(&2).unwrap().name = "ADA".into()),
            "look the same",
        ),
        (
            "a name not in normal form",
            Box::new(|s, _| s.players.get_mut(&2).unwrap().name = "Ｂｏｂ".into()),
            "normal form",
        ),
        (
            "a round off the board with radius 0",
            Box::new(|s, _| {
                let r = s.round.as_mut().unwrap();
                (r.x, r.r) = (5000, 0);
            }),
            "board",
        ),
        (
            "a round partly off the board",
            Box::new(|s, _| {
                let r = s.round.as_mut().unwrap();
                (r.x, r.r) = (990, 40);
            }),
            "board",
        ),
        (
            "round 0",
            Box::new(|s, _| s.round.as_mut().unwrap().number = 0),
            "round number",
        ),
        (
            "next_player_id 2^64 - 1 (ids would wrap)",
            Box::new(|_, n| *n = u64::MAX),
            "next_player_id",
        ),
        (
            "next_player_id 0",
            Box::new(|_, n| *n = 0),
            "next_player_id",
        ),
        (
            "a player id at next_player_id",
            Box::new(|s, n| {
                let mut p = s.players.remove(&2).unwrap();
                p.id = *n;
                s.players.insert(p.id, p);
            }),
            "ids run from 1",
        ),
        (
            "a player filed under another id",
            Box::new(|s, _| s.players.get_mut(&2).unwrap().id = 1),
            "filed under",
        ),
        (
            "more points than rounds won",
            Box::new(|s, _| s.players.get_mut(&2).unwrap().score = 5),
            "points",
        ),
        (
            "points for nobody's wins",
            Box::new(|s, _| s.players.get_mut(&2).unwrap().score = 1),
            "points",
        ),
        (
            "misses beyond 2^53",
            Box::new(|s, _| s.players.get_mut(&2).unwrap().misses = u64::MAX),
            "misses",
        ),
        (
            "more wins than rounds",
            Box::new(|s, _| s.transports.sse.wins = 3),
            "rounds won",
        ),
        (
            "a winner who cannot exist",
            Box::new(|s, _| s.round.as_mut().unwrap().winner = Some(99)),
            "winner",
        ),
        (
            "a round both won and expired",
            Box::new(|s, _| {
                let r = s.round.as_mut().unwrap();
                (r.winner, r.expired) = (Some(1), true);
            }),
            "both won",
        ),
    ];
    for (what, edit, reason) in cases {
        let (mut state, mut next) = (good.clone(), next);
        edit(&mut state, &mut next);
        match Game::restore(rules(), 1, T0, state, next) {
            Err(InvalidState(why)) => assert!(why.contains(reason), "{what}: {why}"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }
    let crowded = Rules {
        max_players: 1,
        ..rules()
    };
    assert!(
        Game::restore(crowded, 1, T0, good, next).is_err(),
        "more players than the cap"
    );
}

#[test]
fn a_full_game_refuses_joins_and_rejoins_until_somebody_leaves() {
    let mut game = Game::new(
        Rules {
            max_players: 2,
            idle_timeout_ms: 100,
            ..rules()
        },
        1,
        T0,
    );
    let (ada, _) = game.join("Ada", T0).unwrap();
    let (bob, _) = game.join("Bob", T0 + 50).unwrap();
    assert_eq!(
        game.join("Cy", T0 + 50),
        Err(GameError::GameFull { max: 2 })
    );
    // Ada goes idle; Cy takes her place; Ada cannot come back while the game is full.
    game.tick(T0 + 100);
    assert!(!game.is_player(ada));
    let (cy, _) = game.join("Cy", T0 + 100).unwrap();
    assert_eq!(
        game.rejoin(ada, T0 + 110),
        Err(GameError::GameFull { max: 2 })
    );
    game.leave(cy, T0 + 120).unwrap();
    assert!(game.rejoin(ada, T0 + 130).is_ok());
    assert!(game.is_player(bob));
}

#[test]
fn ids_stop_at_2_pow_53_instead_of_wrapping() {
    let (state, _) = saved_state();
    let mut game = Game::restore(rules(), 1, T0, state, MAX_PLAYER_ID).unwrap();
    let (last, _) = game.join("Last", T0).unwrap();
    assert_eq!(last, MAX_PLAYER_ID);
    assert!(matches!(
        game.join("Next", T0),
        Err(GameError::GameFull { .. })
    ));
}

#[test]
fn a_paused_game_starts_no_round_until_resumed_and_a_reset_zeroes_every_score() {
    let mut game = started(9);
    let (ada, _) = game.join("Ada", T0).unwrap();
    let (x, y) = target(&game);
    game.contact(ada, Transport::Websocket, T0).unwrap();
    game.click(ada, Click { round: 1, x, y }, T0 + 5).unwrap();
    assert_eq!(
        game.set_paused(true, T0 + 6),
        vec![EventKind::GamePaused { paused: true }]
    );
    assert!(game.set_paused(true, T0 + 6).is_empty(), "already paused");
    assert!(game.tick(T0 + 10_000).is_empty(), "no round while paused");
    game.set_paused(false, T0 + 10_001);
    assert!(matches!(
        game.tick(T0 + 10_001).as_slice(),
        [EventKind::RoundStarted { round: 2, .. }]
    ));
    assert_eq!(
        game.reset_scores(T0 + 10_002),
        vec![EventKind::ScoresReset {}]
    );
    assert_eq!(game.state().players[&ada].score, 0);
    assert_eq!(game.state().transports.total_wins(), 0);
    assert_eq!(
        game.set_poll_interval(250, T0),
        vec![EventKind::Settings {
            poll_interval_ms: 250
        }]
    );
    assert_eq!(game.state().poll_interval_ms, 250);
}

// ---- the round timeout ------------------------------------------------------------------------

fn timed(seed: u64, timeout: u64) -> Game {
    let mut game = Game::new(
        Rules {
            round_timeout_ms: timeout,
            ..rules()
        },
        seed,
        T0,
    );
    game.tick(T0);
    game
}

#[test]
fn a_round_nobody_hits_expires_once_at_its_deadline_and_the_next_follows_the_pause() {
    let mut game = timed(11, 1_000);
    assert_eq!(
        game.next_deadline(),
        Some(T0 + 1_000),
        "the round's deadline"
    );
    assert!(game.tick(T0 + 999).is_empty(), "not yet");
    assert_eq!(
        game.tick(T0 + 1_000),
        vec![EventKind::RoundExpired { round: 1 }]
    );
    let round = game.state().round.clone().unwrap();
    assert!(round.expired && round.winner.is_none() && !round.is_open());
    assert!(game.tick(T0 + 1_050).is_empty(), "expires once; pause runs");
    assert_eq!(game.next_deadline(), Some(T0 + 1_100), "the usual pause");
    assert!(matches!(
        game.tick(T0 + 1_100).as_slice(),
        [EventKind::RoundStarted { round: 2, .. }]
    ));
    assert_eq!(game.next_deadline(), Some(T0 + 2_100), "a fresh deadline");
}

#[test]
fn with_a_round_timeout_of_zero_a_round_waits_for_ever() {
    let mut game = timed(12, 0);
    assert_eq!(game.next_deadline(), None);
    assert!(game.tick(T0 + 86_400_000).is_empty());
    assert!(game.state().round.as_ref().unwrap().is_open());
}

#[test]
fn a_click_after_the_deadline_finds_the_round_expired_even_before_the_timer_ticks() {
    let mut game = timed(13, 1_000);
    let (ada, _) = game.join("Ada", T0).unwrap();
    let (x, y) = target(&game);
    let (outcome, events) = game
        .click(ada, Click { round: 1, x, y }, T0 + 1_000)
        .unwrap();
    assert_eq!(outcome, ClickOutcome::Expired { round: 1 });
    assert_eq!(events, vec![EventKind::RoundExpired { round: 1 }]);
    assert_eq!(game.state().players[&ada].score, 0);
    assert!(game.tick(T0 + 1_001).is_empty(), "the timer finds it ended");
    // Still "expired", not "late", while remembered: after the next round too.
    game.tick(T0 + 1_100);
    let (outcome, _) = game
        .click(ada, Click { round: 1, x, y }, T0 + 1_200)
        .unwrap();
    assert_eq!(outcome, ClickOutcome::Expired { round: 1 });
}

#[test]
fn a_click_for_a_round_not_started_changes_nothing_even_past_the_deadline() {
    // An error carries no events, so it must not change the state: the round still expires
    // with its own event, at the next tick.
    let mut game = timed(15, 1_000);
    let (ada, _) = game.join("Ada", T0).unwrap();
    let before = game.state().clone();
    let err = game
        .click(
            ada,
            Click {
                round: 2,
                x: 500.0,
                y: 500.0,
            },
            T0 + 1_000,
        )
        .unwrap_err();
    assert!(matches!(
        err,
        GameError::RoundNotStarted {
            requested: 2,
            current: Some(1)
        }
    ));
    assert_eq!(game.state().round, before.round, "the round is untouched");
    assert_eq!(
        game.tick(T0 + 1_000),
        vec![EventKind::RoundExpired { round: 1 }]
    );
}

#[test]
fn a_won_round_never_expires() {
    let mut game = timed(14, 1_000);
    let (ada, _) = game.join("Ada", T0).unwrap();
    let (x, y) = target(&game);
    game.click(ada, Click { round: 1, x, y }, T0 + 999).unwrap();
    assert_eq!(
        game.next_deadline(),
        Some(T0 + 1_099),
        "only the pause is left"
    );
    let events = game.tick(T0 + 1_099);
    assert!(
        matches!(
            events.as_slice(),
            [EventKind::RoundStarted { round: 2, .. }]
        ),
        "{events:?}"
    );
}

#[test]
fn a_paused_game_still_expires_its_open_round_but_starts_no_new_one() {
    let mut game = timed(15, 1_000);
    game.set_paused(true, T0 + 10);
    assert_eq!(game.next_deadline(), Some(T0 + 1_000));
    assert_eq!(
        game.tick(T0 + 1_000),
        vec![EventKind::RoundExpired { round: 1 }]
    );
    assert_eq!(
        game.next_deadline(),
        None,
        "paused: no next round to wait for"
    );
    assert!(game.tick(T0 + 60_000).is_empty());
}

#[test]
fn reaction_counts_from_the_players_own_delivery_once_it_is_reported() {
    let mut game = timed(16, 0);
    let (ada, _) = game.join("Ada", T0).unwrap();
    let (bob, _) = game.join("Bob", T0).unwrap();
    // Ada polls every second; the round started just after her poll at T0 − 600, so her next
    // one, at T0 + 400, is the first to carry it.
    for at in [T0 - 1_600, T0 - 600, T0 + 400] {
        game.contact(ada, Transport::Ajax, at).unwrap();
    }
    game.round_delivered(ada, 1, T0 + 400, Transport::Ajax, 0);
    game.round_delivered(ada, 1, T0 + 900, Transport::Ajax, 0); // only the first delivery counts
    game.round_delivered(bob, 2, T0 + 100, Transport::Sse, 0); // not the open round: ignored
    let (x, y) = target(&game);
    let (hit, events) = game.click(ada, Click { round: 1, x, y }, T0 + 650).unwrap();
    assert_eq!(
        hit,
        ClickOutcome::Hit {
            round: 1,
            reaction_ms: 250
        }
    );
    assert!(matches!(
        events.as_slice(),
        [EventKind::RoundWon {
            reaction_ms: 250,
            reaction_from: ReactionFrom::Delivery,
            ..
        }]
    ));
    // The next round: Bob has no delivery reported, so his counts from the round's start.
    game.tick(T0 + 750);
    let (x, y) = target(&game);
    let (_, events) = game
        .click(bob, Click { round: 2, x, y }, T0 + 1_000)
        .unwrap();
    assert!(matches!(
        events.as_slice(),
        [EventKind::RoundWon {
            reaction_ms: 250,
            reaction_from: ReactionFrom::RoundStart,
            ..
        }]
    ));
}

/// The reaction of a player whose round was delivered `via` at `delivered` (after `polls` as
/// AJAX polls, with a simulated delay of `delay`) and who hit it at `clicked`; round 1 starts at
/// T0.
fn reaction_after(polls: &[u64], via: Transport, delay: u64, delivered: u64, clicked: u64) -> u64 {
    let mut game = timed(16, 0);
    let (p, _) = game.join("Mallory", T0 - 10_000).unwrap();
    for at in polls {
        game.contact(p, Transport::Ajax, *at).unwrap();
    }
    if via == Transport::Ajax {
        game.contact(p, Transport::Ajax, delivered - delay).unwrap();
    }
    game.round_delivered(p, 1, delivered, via, delay);
    let (x, y) = target(&game);
    match game.click(p, Click { round: 1, x, y }, clicked).unwrap().0 {
        ClickOutcome::Hit { reaction_ms, .. } => reaction_ms,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_delivery_the_client_put_off_counts_from_when_it_was_due() {
    // The attack: watch the round on the public snapshot or a spectator stream, and only after
    // 800 ms poll (or resume, or connect) as the player and click at once. Before: a reaction
    // of 10 ms. Now it counts from when the delivery was due, plus the slack.
    let put_off = |polls: &[u64], via| reaction_after(polls, via, 0, T0 + 800, T0 + 810);
    let from_due = 810 - DELIVERY_SLACK_MS;
    // A WebSocket or SSE stream opened (or resumed) late, a long poll sent late.
    for via in [Transport::Websocket, Transport::Sse, Transport::Longpoll] {
        assert_eq!(put_off(&[], via), from_due, "{via:?}");
    }
    // A poller who had stopped polling, or never had.
    assert_eq!(
        put_off(&[T0 - 5_000, T0 - 4_000], Transport::Ajax),
        from_due
    );
    assert_eq!(put_off(&[], Transport::Ajax), from_due);
    // A poller who polled every 10 ms up to the start, then waited.
    assert_eq!(put_off(&[T0 - 20, T0 - 10], Transport::Ajax), from_due);
    // A poller at the advertised pace whose poll was due at T0 + 300: counted from there.
    assert_eq!(
        put_off(&[T0 - 1_700, T0 - 700], Transport::Ajax),
        810 - 300 - DELIVERY_SLACK_MS
    );
}

#[test]
fn an_honest_delivery_counts_as_it_happened() {
    // A stream writes the round at once; the lecturer's simulated delay comes before it.
    assert_eq!(
        reaction_after(&[], Transport::Websocket, 0, T0 + 3, T0 + 300),
        297
    );
    assert_eq!(
        reaction_after(&[], Transport::Sse, 2_000, T0 + 2_010, T0 + 2_300),
        290
    );
    // A poller at one poll a second sees the round up to a second late, delay included.
    assert_eq!(
        reaction_after(
            &[T0 - 1_900, T0 - 900],
            Transport::Ajax,
            0,
            T0 + 100,
            T0 + 400
        ),
        300
    );
    assert_eq!(
        reaction_after(
            &[T0 - 1_050, T0 - 50],
            Transport::Ajax,
            0,
            T0 + 950,
            T0 + 1_250
        ),
        300
    );
    assert_eq!(
        reaction_after(
            &[T0 - 1_050, T0 - 50],
            Transport::Ajax,
            700,
            T0 + 1_650,
            T0 + 1_950
        ),
        300
    );
}

#[test]
fn round_expired_serialises_as_the_protocol_says_and_old_round_won_events_still_read() {
    let event = Event {
        seq: 9,
        ts: T0,
        kind: EventKind::RoundExpired { round: 4 },
    };
    assert_eq!(
        serde_json::to_value(&event).unwrap(),
        serde_json::json!({"seq": 9, "ts": T0, "type": "round_expired", "round": 4})
    );
    let old = serde_json::json!({"seq": 3, "ts": T0, "type": "round_won", "round": 1, "winner": 1,
        "name": "Ada", "reaction_ms": 5, "transport": "sse"});
    let read: Event = serde_json::from_value(old).unwrap();
    assert!(matches!(
        read.kind,
        EventKind::RoundWon {
            reaction_from: ReactionFrom::RoundStart,
            ..
        }
    ));
}

#[test]
fn a_restored_open_round_gets_a_fresh_timeout_and_an_expired_one_is_followed_by_the_pause() {
    let rules = Rules {
        round_timeout_ms: 1_000,
        ..rules()
    };
    let mut game = timed(17, 1_000);
    let saved = game.state().clone();
    let later = T0 + 50_000;
    let restored = Game::restore(rules.clone(), 1, later, saved, game.next_player_id()).unwrap();
    assert_eq!(restored.next_deadline(), Some(later + 1_000));

    game.tick(T0 + 1_000);
    let saved = game.state().clone();
    assert!(saved.round.as_ref().unwrap().expired);
    let mut restored = Game::restore(rules, 1, later, saved, game.next_player_id()).unwrap();
    assert_eq!(restored.next_deadline(), Some(later + 100));
    assert!(matches!(
        restored.tick(later + 100).as_slice(),
        [EventKind::RoundStarted { round: 2, .. }]
    ));
}

#[test]
fn the_lecturer_removes_a_player_whose_score_goes_with_them() {
    let mut game = started(3);
    let (ada, _) = game.join("Ada", T0).unwrap();
    let (bob, _) = game.join("Bob", T0).unwrap();
    let (x, y) = target(&game);
    game.click(ada, Click { round: 1, x, y }, T0 + 5).unwrap();
    assert_eq!(
        game.kick(ada, T0 + 6),
        Ok(vec![EventKind::PlayerLeft {
            player: ada,
            reason: LeaveReason::Kicked
        }])
    );
    assert!(!game.is_player(ada));
    assert!(game.is_player(bob));
    // Gone for good: no idle return, no second kick, and the name is free again.
    assert_eq!(game.rejoin(ada, T0 + 7), Err(GameError::UnknownPlayer(ada)));
    assert_eq!(game.kick(ada, T0 + 7), Err(GameError::UnknownPlayer(ada)));
    assert!(game.join("ada", T0 + 8).is_ok());
    let wire = serde_json::to_string(&EventKind::PlayerLeft {
        player: 1,
        reason: LeaveReason::Kicked,
    })
    .unwrap();
    assert_eq!(
        wire,
        r#"{"type":"player_left","player":1,"reason":"kicked"}"#
    );
}

#[test]
fn a_rename_is_checked_and_unique_like_a_join_and_frees_the_old_name() {
    let mut game = started(4);
    let (ada, _) = game.join("Ada", T0).unwrap();
    let (bob, _) = game.join("Bob", T0).unwrap();
    // Markup, invisible characters and look-alikes of another player are refused.
    assert!(matches!(
        game.rename(ada, "<b>x</b>", T0),
        Err(GameError::InvalidName(_))
    ));
    assert!(matches!(
        game.rename(ada, "Bo\u{200B}b", T0),
        Err(GameError::InvalidName(_))
    ));
    assert_eq!(
        game.rename(ada, "BOB", T0),
        Err(GameError::NameTaken("BOB".into()))
    );
    assert_eq!(
        game.rename(99, "Zed", T0),
        Err(GameError::UnknownPlayer(99))
    );
    // The player's own name, in another case, is no clash; the exact same name is no event.
    let (name, events) = game.rename(ada, "  ADA ", T0).unwrap();
    assert_eq!(name, "ADA");
    assert_eq!(
        events,
        vec![EventKind::PlayerRenamed {
            player: ada,
            name: "ADA".into()
        }]
    );
    assert_eq!(game.rename(ada, "ADA", T0).unwrap().1, vec![]);
    let (_, events) = game.rename(ada, "Grace", T0).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(game.state().players[&ada].name, "Grace");
    // "Ada" is free again, "Grace" is taken.
    assert!(game.join("ada", T0).is_ok());
    assert!(matches!(
        game.join("GRACE", T0),
        Err(GameError::NameTaken(_))
    ));
    assert!(game.is_player(bob));
}

#[test]
fn closed_joining_refuses_newcomers_but_keeps_players_and_lets_idle_ones_back() {
    let mut game = Game::new(
        Rules {
            idle_timeout_ms: 100,
            ..rules()
        },
        1,
        T0,
    );
    let (ada, _) = game.join("Ada", T0).unwrap();
    let (bob, _) = game.join("Bob", T0 + 90).unwrap();
    assert_eq!(
        game.set_joins_open(false, T0 + 90),
        vec![EventKind::JoinsChanged { open: false }]
    );
    assert!(
        game.set_joins_open(false, T0 + 90).is_empty(),
        "already closed"
    );
    assert!(!game.state().joins_open);
    assert_eq!(game.join("Cy", T0 + 91), Err(GameError::JoinsClosed));
    game.tick(T0 + 100);
    assert!(!game.is_player(ada), "Ada went idle");
    assert!(game.rejoin(ada, T0 + 110).is_ok(), "and may come back");
    assert!(game.is_player(bob));
    game.set_joins_open(true, T0 + 120);
    assert!(game.join("Cy", T0 + 121).is_ok());
}

#[test]
fn a_state_saved_before_joins_could_close_restores_as_open() {
    let (state, next) = saved_state();
    let mut wire: serde_json::Value = serde_json::to_value(&state).unwrap();
    wire.as_object_mut().unwrap().remove("joins_open");
    let old: GameState = serde_json::from_value(wire).unwrap();
    assert!(old.joins_open);
    assert!(Game::restore(rules(), 1, T0, old, next).is_ok());
}
