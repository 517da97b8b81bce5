//! Reaction time means what a student thinks: from the moment the server handed the round to
//! the winner's own transport to the moment their click arrived — measured by the server, over
//! real sockets, on every transport.

use std::time::Duration;

use clickgame::game::Transport;
use serde_json::{json, Value};

use crate::clients::{Downstream, Kind, ALL};
use crate::helpers::TestApp;

fn transport(kind: Kind) -> Transport {
    match kind {
        Kind::Ajax => Transport::Ajax,
        Kind::Longpoll => Transport::Longpoll,
        Kind::Sse => Transport::Sse,
        Kind::Websocket => Transport::Websocket,
    }
}

fn ms(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// The round's `round_won`, from the server's history.
async fn won_event(app: &TestApp, round: u64) -> Value {
    let (_, history) = app.get("/api/poll?since=0").await;
    history["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "round_won" && e["round"] == round)
        .cloned()
        .unwrap_or_else(|| panic!("no round_won for round {round}: {history}"))
}

#[actix_web::test]
async fn a_simulated_delay_on_the_winners_transport_is_not_in_their_reaction_time() {
    const DELAY_MS: u64 = 400;
    for kind in ALL {
        let app = TestApp::spawn_with(|c| c.round_pause_ms = 1000).await;
        app.server.hub.set_delay(transport(kind), DELAY_MS);
        let ada = app.join("Ada").await;
        let bob = app.join("Bob").await;
        // Bob (no downstream at all) takes the round on the board; Ada listens for the next.
        let first = app.win_round(&bob).await;
        // Ada listens from here: the next round starts after the pause.
        let since = app.server.hub.last_seq();
        let bobs = won_event(&app, first).await;
        assert_eq!(
            bobs["reaction_from"], "round_start",
            "{kind:?}: no delivery on record, so from the round's start: {bobs}"
        );
        let mut down = Downstream::open(&app, kind, Some(&ada.token), Some(since), None).await;
        let started = down.until(|v| v["type"] == "round_started").await;
        let round = ms(&started, "round");
        let result = down
            .click(round, ms(&started, "x") as f64, ms(&started, "y") as f64)
            .await;
        assert_eq!(result["result"], "hit", "{kind:?}: {result}");
        let won = down
            .until(|v| v["type"] == "round_won" && v["round"] == round)
            .await;
        assert_eq!(won["reaction_from"], "delivery", "{kind:?}: {won}");
        assert_eq!(won["reaction_ms"], result["reaction_ms"], "{kind:?}");
        // The round reached Ada no earlier than DELAY_MS after it started, so from its start
        // to her click is at least the delay plus her reaction: the delay is not in it.
        let since_start = ms(&won, "ts") - ms(&started, "ts");
        assert!(
            ms(&won, "reaction_ms") + DELAY_MS <= since_start,
            "{kind:?}: reaction {} ms, {since_start} ms after the round started",
            won["reaction_ms"]
        );
        app.server.stop().await;
    }
}

#[actix_web::test]
async fn an_ajax_player_is_timed_from_the_poll_answer_that_carried_the_round() {
    const POLL_MS: u64 = 1000;
    let app = TestApp::spawn_with(|c| {
        c.round_pause_ms = 2_500;
        c.poll_interval_ms = POLL_MS;
    })
    .await;
    let ada = app.join("Ada").await;
    let bob = app.join("Bob").await;
    app.win_round(&bob).await;
    // Ada polls at the advertised pace, as the page does; the next round starts between two
    // of her polls, and the one after shows it to her. She clicks as soon as she has it.
    let mut since = app.server.hub.last_seq();
    let (round, x, y, asked_at) = loop {
        let asked_at = app.get("/api/time").await.1["ts"].as_u64().unwrap();
        let mut res = app
            .client
            .get(app.url(&format!("/api/poll?since={since}")))
            .bearer_auth(&ada.token)
            .send()
            .await
            .unwrap();
        let poll: Value = res.json().limit(1 << 20).await.unwrap();
        since = poll["last_seq"].as_u64().unwrap();
        let started = poll["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "round_started")
            .cloned();
        if let Some(e) = started {
            break (
                ms(&e, "round"),
                ms(&e, "x") as f64,
                ms(&e, "y") as f64,
                asked_at,
            );
        }
        actix_web::rt::time::sleep(Duration::from_millis(POLL_MS)).await;
    };
    let (_, hit) = app
        .post(
            "/api/click",
            Some(&ada.token),
            &json!({"round": round, "x": x, "y": y}),
        )
        .await;
    assert_eq!(hit["result"], "hit", "{hit}");
    let won = won_event(&app, round).await;
    let started_ts = app.get("/api/poll?since=0").await.1["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "round_started" && e["round"] == round)
        .map(|e| ms(e, "ts"))
        .unwrap();
    assert_eq!(won["reaction_from"], "delivery", "{won}");
    // The poll was sent `late` after the round started: that wait is not in her reaction.
    let late = asked_at.saturating_sub(started_ts);
    let since_start = ms(&won, "ts") - started_ts;
    assert!(
        ms(&won, "reaction_ms") + late <= since_start,
        "not the {late} ms before the poll: {won}"
    );
    app.server.stop().await;
}

#[actix_web::test]
async fn a_player_who_takes_the_round_late_on_purpose_is_timed_from_when_it_was_due() {
    // The attack: watch the round on the public snapshot, wait like a slow human, and only then
    // poll (or connect, or resume) as the player and click at once. Before the fix: a reaction of
    // 1 ms after 813 ms of watching. Now the delivery counts no later than it was due (a stream:
    // the round's start; a poller: their next poll at their pace — here they had not been
    // polling) plus the slack.
    const WATCHED_MS: u64 = 800;
    for kind in ALL {
        let app = TestApp::spawn_with(|c| c.round_pause_ms = 60_000).await;
        let mallory = app.join("Mallory").await;
        // The round is on the board, seen as any spectator sees it.
        let (round, x, y) = app.open_round().await;
        actix_web::rt::time::sleep(Duration::from_millis(WATCHED_MS)).await;
        let mut down = Downstream::open(&app, kind, Some(&mallory.token), None, None).await;
        let shown = down
            .until(|v| {
                (v["type"] == "round_started" && v["round"] == round) || v["type"] == "snapshot"
            })
            .await;
        let result = down.click(round, x, y).await;
        assert_eq!(result["result"], "hit", "{kind:?}: {result} after {shown}");
        let won = won_event(&app, round).await;
        let started_ts = app.get("/api/snapshot").await.1["round"]["started_ts"]
            .as_u64()
            .unwrap();
        let since_start = ms(&won, "ts") - started_ts;
        assert!(since_start >= WATCHED_MS, "{kind:?}: {since_start}");
        assert_eq!(won["reaction_from"], "delivery", "{kind:?}: {won}");
        assert_eq!(
            ms(&won, "reaction_ms"),
            since_start - clickgame::game::DELIVERY_SLACK_MS,
            "{kind:?}: {won}"
        );
        app.server.stop().await;
    }
}
