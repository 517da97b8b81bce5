//! The hub's own tests: sessions, tickets, catch-up, restore, reaction timing.
use super::*;

fn hub(history: usize) -> Hub {
    let rules = Rules {
        round_pause_ms: 0,
        round_pause_jitter_ms: 0,
        ..Rules::default()
    };
    Hub::new(rules, 1, HubConfig { history })
}

/// Starts the next round if its pause is over, as the timer task would.
fn tick(hub: &Hub) {
    let now = now_ms();
    let mut core = hub.core();
    let events = core.game.tick(now);
    hub.publish(&mut core, events, now);
}

/// The `round_won` event of the newest batch after `since`.
fn won_after(hub: &Hub, since: u64) -> serde_json::Value {
    let batch = hub.catch_up(Some(since), None);
    let won = batch
        .events
        .iter()
        .find(|e| e.kind == "round_won")
        .expect("a round_won");
    serde_json::from_str(&won.json).unwrap()
}

#[test]
fn a_winner_is_timed_from_the_batch_that_carried_the_round_to_them() {
    let hub = hub(64);
    let ada = hub.join("Ada").unwrap().player_id;
    let bob = hub.join("Bob").unwrap().player_id;
    let before = hub.last_seq();
    tick(&hub);
    let start = hub.catch_up(Some(before), None);
    let (round, x, y) = match hub.snapshot().round {
        Some(r) => (r.number, f64::from(r.x), f64::from(r.y)),
        None => panic!("no round"),
    };
    // Ada's transport hands her the round 80 ms after it started; she clicks at once.
    std::thread::sleep(Duration::from_millis(80));
    hub.round_delivered(ada, &start.events, Transport::Websocket);
    let at = hub.last_seq();
    hub.click(ada, Click { round, x, y }).unwrap();
    let won = won_after(&hub, at);
    assert_eq!(won["reaction_from"], "delivery", "{won}");
    assert!(won["reaction_ms"].as_u64().unwrap() < 80, "{won}");

    // Next round: the old round's start and a batch without the new one change nothing for
    // Bob; a snapshot taken after the new start shows it to him.
    let before = hub.last_seq();
    tick(&hub);
    let round = hub.snapshot().round.unwrap();
    hub.round_delivered(bob, &start.events, Transport::Websocket);
    hub.round_delivered(
        bob,
        &hub.catch_up(Some(hub.last_seq()), None).events,
        Transport::Websocket,
    );
    std::thread::sleep(Duration::from_millis(60));
    let snapshot = hub.catch_up(None, None);
    assert_eq!(snapshot.events[0].kind, SNAPSHOT);
    hub.round_delivered(bob, &snapshot.events, Transport::Websocket);
    let (x, y) = (f64::from(round.x), f64::from(round.y));
    hub.click(
        bob,
        Click {
            round: round.number,
            x,
            y,
        },
    )
    .unwrap();
    let won = won_after(&hub, before);
    assert_eq!(won["reaction_from"], "delivery", "{won}");
    assert!(won["reaction_ms"].as_u64().unwrap() < 60, "{won}");

    // A round nobody's transport carried: timed from its start.
    let before = hub.last_seq();
    tick(&hub);
    let round = hub.snapshot().round.unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let (x, y) = (f64::from(round.x), f64::from(round.y));
    hub.click(
        ada,
        Click {
            round: round.number,
            x,
            y,
        },
    )
    .unwrap();
    let won = won_after(&hub, before);
    assert_eq!(won["reaction_from"], "round_start", "{won}");
    assert!(won["reaction_ms"].as_u64().unwrap() >= 30, "{won}");
}

#[test]
fn a_token_opens_only_its_own_session() {
    let hub = hub(16);
    let ada = hub.join("Ada").unwrap();
    assert_eq!(hub.authenticate(&ada.token), Some(ada.player_id));
    let forged = format!("{}.{}", ada.player_id, "0".repeat(32));
    assert_eq!(hub.authenticate(&forged), None);
    assert_eq!(hub.authenticate("nonsense"), None);
    assert_eq!(hub.authenticate("1.zz"), None);
    assert!(hub.has_session(ada.player_id));
    hub.leave(ada.player_id).unwrap();
    assert_eq!(
        hub.authenticate(&ada.token),
        None,
        "a token dies with its player"
    );
    assert!(!hub.has_session(ada.player_id), "and so do their tickets");
}

#[test]
fn a_kicked_players_token_and_tickets_die_with_the_event() {
    let hub = hub(16);
    let tickets = crate::tickets::Tickets::default();
    let ada = hub.join("Ada").unwrap();
    let ticket = tickets.issue(ada.player_id).unwrap();
    hub.kick(ada.player_id).unwrap();
    assert_eq!(hub.authenticate(&ada.token), None);
    assert_eq!(tickets.redeem(&ticket, |p| hub.has_session(p)), None);
    assert!(hub.kick(ada.player_id).is_err());
    let batch = hub.catch_up(Some(1), None);
    assert!(
        batch.events[0].json.contains(r#""reason":"kicked""#),
        "{}",
        batch.events[0].json
    );
}

#[test]
fn catching_up_gives_the_events_after_since_or_a_snapshot_when_they_are_gone() {
    let hub = hub(4);
    for name in ["a", "b", "c", "d", "e", "f"] {
        hub.join(name).unwrap();
    }
    assert_eq!(hub.last_seq(), 6);
    let batch = hub.catch_up(Some(3), Some(&hub.epoch()));
    assert_eq!(
        batch.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![4, 5, 6]
    );
    assert_eq!(batch.last_seq, 6);
    assert!(hub.catch_up(Some(6), None).events.is_empty());
    for stale in [
        hub.catch_up(Some(1), None),
        hub.catch_up(Some(9), None),
        hub.catch_up(None, None),
        hub.catch_up(Some(5), Some("other")),
    ] {
        assert_eq!(stale.events.len(), 1);
        assert_eq!(stale.events[0].kind, "snapshot");
        assert_eq!(stale.events[0].seq, 6);
    }
}

#[test]
fn an_exported_game_restores_and_keeps_its_tokens() {
    let hub = hub(16);
    let ada = hub.join("Ada").unwrap();
    hub.join("Bob").unwrap();
    let again = Hub::restore(Rules::default(), 1, HubConfig { history: 16 }, hub.export()).unwrap();
    assert_eq!(again.authenticate(&ada.token), Some(ada.player_id));
    assert_eq!(again.snapshot().players, hub.snapshot().players);
    assert_eq!(again.last_seq(), hub.last_seq());
}

#[test]
fn a_saved_hub_with_bad_secrets_or_history_is_refused_with_the_reason() {
    let hub = hub(16);
    hub.join("Ada").unwrap();
    hub.join("Bob").unwrap();
    let good = hub.export();
    type Edit = Box<dyn Fn(&mut SavedState)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "seq beyond 2^53",
            Box::new(|s| s.last_seq = u64::MAX),
            "last_seq",
        ),
        (
            "a secret of the wrong length",
            Box::new(|s| s.secrets[0].1 = "abcd".into()),
            "hex",
        ),
        (
            "a secret in upper case",
            Box::new(|s| s.secrets[0].1 = s.secrets[0].1.to_uppercase()),
            "hex",
        ),
        (
            "an all-zero secret",
            Box::new(|s| s.secrets[0].1 = "0".repeat(32)),
            "hex",
        ),
        (
            "two secrets for one player",
            Box::new(|s| {
                let first = s.secrets[0].clone();
                s.secrets.push(first);
            }),
            "two session secrets",
        ),
        (
            "a player without a secret",
            Box::new(|s| {
                s.secrets.pop();
            }),
            "no session secret",
        ),
        (
            "a secret for an id never handed out",
            Box::new(|s| s.secrets.push((99, "ab".repeat(16)))),
            "cannot exist",
        ),
        (
            "a gap in the history",
            Box::new(|s| {
                s.history.remove(0);
                s.last_seq += 1;
            }),
            "consecutive",
        ),
        (
            "a history longer than the seq",
            Box::new(|s| s.last_seq = 1),
            "history events",
        ),
        (
            "markup in a history name",
            Box::new(|s| s.history[0] = s.history[0].replace("Ada", "<b>Ada</b>")),
            "name",
        ),
        (
            "an extra field in a history event",
            Box::new(|s| s.history[1] = s.history[1].replace("{", "{\"x\":1,")),
            "history event",
        ),
        (
            "a history event not as we write it",
            Box::new(|s| s.history[1] = s.history[1].replace(":", ": ")),
            "form",
        ),
        (
            "a history event that does not parse",
            Box::new(|s| s.history[1] = "<script>".into()),
            "parse",
        ),
    ];
    for (what, edit, reason) in cases {
        let mut saved = good.clone();
        edit(&mut saved);
        match Hub::restore(Rules::default(), 1, HubConfig { history: 16 }, saved) {
            Err(InvalidState(why)) => assert!(why.contains(reason), "{what}: {why}"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }
}
