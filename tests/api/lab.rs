//! The WSS best-practices lab (`--lab`, issue 14): each of the six attacks of the attacker's
//! page, with its defence switched off (the attack works, observably) and on (refused with the
//! exact code, written to the defence log, nothing changed in the game). Then what the lab must
//! never do: exist without the flag, run on the network unasked, or forget to count refusals.

use std::time::Duration;

use awc::ws;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

use crate::helpers::{assert_error, parse, Player, TestApp};

type Socket = actix_codec::Framed<awc::BoxedSocket, ws::Codec>;

async fn lab_app() -> TestApp {
    TestApp::spawn_with(|c| c.lab = true).await
}

/// The attacker's site's origin: what a browser sends from `/attacker.html`.
fn attacker_origin(app: &TestApp) -> String {
    format!(
        "http://{}",
        app.server
            .lab_attacker_addr
            .expect("the attacker's site runs")
    )
}

/// `POST /api/admin/lab` with the admin token; returns the answer's `defences`.
async fn switch(app: &TestApp, body: Value) -> Value {
    let mut res = app
        .client
        .post(app.url("/api/admin/lab"))
        .bearer_auth(&app.server.admin_token)
        .send_json(&body)
        .await
        .unwrap();
    let answer = parse(&res.body().await.unwrap());
    assert_eq!(res.status().as_u16(), 200, "{answer}");
    answer["defences"].clone()
}

/// Every entry of the defence log.
async fn defence_log(app: &TestApp) -> Vec<Value> {
    let mut res = app
        .client
        .get(app.url("/api/admin/lab/log?since=0"))
        .bearer_auth(&app.server.admin_token)
        .send()
        .await
        .unwrap();
    let body = parse(&res.body().await.unwrap());
    assert_eq!(res.status().as_u16(), 200, "{body}");
    body["entries"].as_array().unwrap().clone()
}

/// Asserts the log holds an entry of `rule` with `code` and `error`, and returns it.
async fn logged(app: &TestApp, rule: &str, code: u16, error: &str) -> Value {
    let entries = defence_log(app).await;
    entries
        .iter()
        .find(|e| e["rule"] == rule && e["code"] == code && e["error"] == error)
        .unwrap_or_else(|| panic!("no {rule} {code} {error} in the defence log: {entries:#?}"))
        .clone()
}

/// Each player's `(score, misses)`, by id.
async fn scores(app: &TestApp) -> Vec<(u64, u64, u64)> {
    let (_, snap) = app.get("/api/snapshot").await;
    snap["players"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_u64().unwrap(),
                p["score"].as_u64().unwrap(),
                p["misses"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn score_of(scores: &[(u64, u64, u64)], id: u64) -> u64 {
    scores.iter().find(|p| p.0 == id).map(|p| p.1).unwrap()
}

/// The `Cookie` header a browser sends for the player's session.
fn session_cookie(player: &Player) -> String {
    format!("clickgame_session={}", player.token)
}

/// The next text frame (answering pings), or the close code as `Err`.
async fn next_text(socket: &mut Socket) -> Result<Value, Option<u16>> {
    let deadline = actix_web::rt::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = socket.next().await {
            match frame {
                Ok(ws::Frame::Text(t)) => return Ok(serde_json::from_slice(&t).unwrap()),
                Ok(ws::Frame::Close(reason)) => return Err(reason.map(|r| u16::from(r.code))),
                Ok(ws::Frame::Ping(p)) => {
                    let _ = socket.send(ws::Message::Pong(p)).await;
                }
                Ok(_) => {}
                Err(e) => panic!("websocket error: {e}"),
            }
        }
        Err(None)
    });
    deadline.await.expect("a frame within 10 s")
}

/// The next reply to a command (events of the stream skipped).
async fn next_reply(socket: &mut Socket) -> Result<Value, Option<u16>> {
    loop {
        let msg = next_text(socket).await?;
        if msg["type"] == "click_result" || msg["type"] == "error" {
            return Ok(msg);
        }
    }
}

// ---- 1. Cross-site WebSocket hijacking ------------------------------------------------------

#[actix_web::test]
async fn cross_site_websocket_hijacking_works_with_the_origin_check_off_and_is_refused_403_with_it_on(
) {
    let app = lab_app().await;
    let victim = app.join("Victim").await;
    let evil = attacker_origin(&app);
    let hijack = || {
        app.client
            .ws(app.url("/api/ws"))
            .origin(evil.as_str())
            .header("Cookie", session_cookie(&victim))
            .protocols(["clickgame.v1"])
            .connect()
    };

    // On: 403 before the upgrade, logged with the attacker's origin; nothing read, nothing clicked.
    let err = hijack().await.err().expect("refused");
    assert!(
        matches!(err, awc::error::WsClientError::InvalidResponseStatus(s) if s.as_u16() == 403),
        "{err:?}"
    );
    let entry = logged(&app, "origin", 403, "origin_not_allowed").await;
    assert_eq!(entry["origin"], evil);
    assert!(
        entry["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{entry}"
    );
    assert_eq!(score_of(&scores(&app).await, victim.id), 0);

    // Off: the same handshake opens, reads the victim's game and clicks in the victim's name.
    assert_eq!(
        switch(&app, json!({"origin": false})).await["origin"],
        false
    );
    let (res, mut socket) = hijack().await.expect("hijacked");
    assert_eq!(res.status().as_u16(), 101);
    socket
        .send(ws::Message::Text(
            json!({"type": "resume"}).to_string().into(),
        ))
        .await
        .unwrap();
    let snapshot = next_text(&mut socket).await.unwrap();
    assert_eq!(snapshot["type"], "snapshot");
    assert!(
        snapshot["players"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "Victim"),
        "the attacker reads the victim's events: {snapshot}"
    );
    let (round, x, y) = app.open_round().await;
    let click = json!({"type": "click", "id": 1, "round": round, "x": x, "y": y});
    socket
        .send(ws::Message::Text(click.to_string().into()))
        .await
        .unwrap();
    let reply = next_reply(&mut socket).await.unwrap();
    assert_eq!(reply["result"], "hit", "{reply}");
    assert_eq!(
        score_of(&scores(&app).await, victim.id),
        1,
        "the win is the victim's"
    );
    app.server.stop().await;
}

// ---- 2. Cross-site click --------------------------------------------------------------------

#[actix_web::test]
async fn a_cross_site_text_plain_click_counts_for_the_victim_with_the_origin_check_off_and_is_refused_403_with_it_on(
) {
    let app = lab_app().await;
    let victim = app.join("Victim").await;
    let evil = attacker_origin(&app);
    // What a browser sends for `fetch(…, {mode: 'no-cors', credentials: 'include'})` from the
    // attacker's page: a "simple" request, no preflight; same site, so the cookie rides along.
    let cross_site_click = |round: u64, x: f64, y: f64| {
        app.client
            .post(app.url("/api/click"))
            .insert_header(("Origin", evil.as_str()))
            .insert_header(("Sec-Fetch-Site", "same-site"))
            .insert_header(("Content-Type", "text/plain;charset=UTF-8"))
            .insert_header(("Cookie", session_cookie(&victim)))
            .send_body(json!({"round": round, "x": x, "y": y}).to_string())
    };

    let (round, x, y) = app.open_round().await;
    let mut res = cross_site_click(round, x, y).await.unwrap();
    let body = parse(&res.body().await.unwrap());
    assert_error(res.status(), &body, 403, "origin_not_allowed");
    logged(&app, "origin", 403, "origin_not_allowed").await;
    assert_eq!(
        scores(&app).await,
        vec![(victim.id, 0, 0)],
        "nothing counted"
    );

    switch(&app, json!({"origin": false})).await;
    let (round, x, y) = app.open_round().await;
    let mut res = cross_site_click(round, x, y).await.unwrap();
    let body = parse(&res.body().await.unwrap());
    assert_eq!(res.status().as_u16(), 200, "{body}");
    assert_eq!(body["result"], "hit");
    assert_eq!(
        scores(&app).await,
        vec![(victim.id, 1, 0)],
        "counted for the victim"
    );
    app.server.stop().await;
}

// ---- 3. Wrong protocol ----------------------------------------------------------------------

#[actix_web::test]
async fn a_foreign_sub_protocol_is_upgraded_with_inspection_off_and_refused_400_with_it_on() {
    let app = lab_app().await;
    let before = scores(&app).await;
    for offered in [vec![], vec!["stomp.v12"]] {
        let mut req = app.client.ws(app.url("/api/ws"));
        if !offered.is_empty() {
            req = req.protocols(offered.clone());
        }
        let err = req.connect().await.err().expect("refused");
        assert!(
            matches!(err, awc::error::WsClientError::InvalidResponseStatus(s) if s.as_u16() == 400),
            "{offered:?}: {err:?}"
        );
    }
    let entries = defence_log(&app).await;
    let refused = entries
        .iter()
        .filter(|e| e["rule"] == "subprotocol" && e["code"] == 400)
        .count();
    assert_eq!(refused, 2, "{entries:#?}");

    switch(&app, json!({"subprotocol": false})).await;
    let (res, mut socket) = app
        .client
        .ws(app.url("/api/ws"))
        .protocols(["stomp.v12"])
        .connect()
        .await
        .expect("a naive server upgrades it");
    assert_eq!(res.status().as_u16(), 101);
    assert_eq!(
        res.headers().get("sec-websocket-protocol").unwrap(),
        "stomp.v12",
        "and agrees to speak it"
    );
    socket
        .send(ws::Message::Text(
            "SEND\ndestination:/queue/score\n\n{\"points\":1000}\u{0}".into(),
        ))
        .await
        .unwrap();
    let reply = next_reply(&mut socket).await.unwrap();
    assert_eq!(
        reply["error"], "bad_message",
        "read as its own protocol: {reply}"
    );
    let (res, _socket) = app
        .client
        .ws(app.url("/api/ws"))
        .connect()
        .await
        .expect("no sub-protocol at all: upgraded too");
    assert_eq!(res.status().as_u16(), 101);
    assert_eq!(scores(&app).await, before);
    app.server.stop().await;
}

// ---- 4. Oversized and malformed input -------------------------------------------------------

/// A `resume` message padded with an unknown field to `len` bytes.
fn padded(len: usize) -> String {
    let head = "{\"type\":\"resume\",\"pad\":\"";
    format!("{head}{}\"}}", "a".repeat(len - head.len() - 2))
}

async fn game_socket(app: &TestApp) -> Socket {
    app.client
        .ws(app.url("/api/ws"))
        .protocols(["clickgame.v1"])
        .connect()
        .await
        .expect("upgrade")
        .1
}

#[actix_web::test]
async fn a_1_mib_frame_is_accepted_below_the_hard_ceiling_with_input_off_and_closed_1009_with_it_on(
) {
    let app = lab_app().await;
    let mib = padded(1024 * 1024);

    let mut socket = game_socket(&app).await;
    socket
        .send(ws::Message::Text(mib.clone().into()))
        .await
        .unwrap();
    assert_eq!(next_text(&mut socket).await, Err(Some(1009)));
    let entry = logged(&app, "size", 1009, "message_too_big").await;
    assert!(entry["origin"].is_null(), "a non-browser client: {entry}");

    switch(&app, json!({"input": false})).await;
    let mut socket = game_socket(&app).await;
    socket.send(ws::Message::Text(mib.into())).await.unwrap();
    let reply = next_reply(&mut socket).await.expect("accepted, not closed");
    assert_eq!(reply["error"], "bad_message", "parsed whole: {reply}");
    assert!(reply["detail"].as_str().unwrap().contains("pad"), "{reply}");
    // The hard ceiling holds with the defence off.
    socket
        .send(ws::Message::Text(
            padded(clickgame::lab::LIFTED_WS_MAX_MESSAGE + 1).into(),
        ))
        .await
        .unwrap();
    assert_eq!(next_text(&mut socket).await, Err(Some(1009)));
    // A binary frame is read as text by the naive server.
    let mut socket = game_socket(&app).await;
    socket
        .send(ws::Message::Binary(
            json!({"type": "resume"}).to_string().into(),
        ))
        .await
        .unwrap();
    assert_eq!(next_text(&mut socket).await.unwrap()["type"], "snapshot");
    app.server.stop().await;
}

#[actix_web::test]
async fn with_input_off_at_most_eight_sockets_at_once_may_send_large_messages() {
    let app = lab_app().await;
    switch(&app, json!({"input": false})).await;
    let large = padded(8 * 1024);
    let mut holders = Vec::new();
    for _ in 0..clickgame::lab::LIFTED_SOCKETS {
        let mut socket = game_socket(&app).await;
        socket
            .send(ws::Message::Text(large.clone().into()))
            .await
            .unwrap();
        assert_eq!(
            next_reply(&mut socket).await.unwrap()["error"],
            "bad_message"
        );
        holders.push(socket);
    }
    let mut one_more = game_socket(&app).await;
    one_more
        .send(ws::Message::Text(large.clone().into()))
        .await
        .unwrap();
    assert_eq!(
        next_text(&mut one_more).await,
        Err(Some(1009)),
        "the ninth is refused: the ceiling is for the whole process"
    );
    // A socket that ends gives its place back.
    let mut first = holders.remove(0);
    first.close().await.unwrap();
    drop(first);
    let mut got_one = false;
    for _ in 0..50 {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        let mut socket = game_socket(&app).await;
        socket
            .send(ws::Message::Text(large.clone().into()))
            .await
            .unwrap();
        if next_text(&mut socket).await.is_ok() {
            got_one = true;
            break;
        }
    }
    assert!(got_one, "a place came free");
    app.server.stop().await;
}

// ---- 5. Impersonation -----------------------------------------------------------------------

#[actix_web::test]
async fn an_impersonated_click_scores_for_the_other_player_with_auth_off_and_is_refused_403_with_it_on(
) {
    let app = lab_app().await;
    let victim = app.join("Victim").await;
    let mallory = app.join("Mallory").await;

    let (round, x, y) = app.open_round().await;
    let click = json!({"round": round, "x": x, "y": y, "player": victim.id});
    let (status, body) = app.post("/api/click", Some(&mallory.token), &click).await;
    assert_error(status, &body, 403, "impersonation");
    let mut socket = app
        .client
        .ws(app.url("/api/ws"))
        .protocols(["clickgame.v1"])
        .bearer_auth(&mallory.token)
        .connect()
        .await
        .unwrap()
        .1;
    let mut msg = click.clone();
    msg["type"] = json!("click");
    msg["id"] = json!(7);
    socket
        .send(ws::Message::Text(msg.to_string().into()))
        .await
        .unwrap();
    let reply = next_reply(&mut socket).await.unwrap();
    assert_eq!(
        (&reply["error"], &reply["id"]),
        (&json!("impersonation"), &json!(7))
    );
    let entries = defence_log(&app).await;
    let auth: Vec<&Value> = entries
        .iter()
        .filter(|e| e["rule"] == "auth" && e["error"] == "impersonation" && e["code"] == 403)
        .collect();
    assert_eq!(auth.len(), 2, "HTTP and WebSocket: {entries:#?}");
    assert!(auth[1]["detail"].as_str().unwrap().starts_with("WebSocket"));
    assert_eq!(
        scores(&app).await,
        vec![(victim.id, 0, 0), (mallory.id, 0, 0)]
    );
    // Naming yourself is no impersonation.
    let own = json!({"round": round, "x": 0, "y": 0, "player": mallory.id});
    let (status, body) = app.post("/api/click", Some(&mallory.token), &own).await;
    assert_eq!(status.as_u16(), 200, "{body}");

    switch(&app, json!({"auth": false})).await;
    let (round, x, y) = app.open_round().await;
    let click = json!({"round": round, "x": x, "y": y, "player": victim.id});
    let (status, body) = app.post("/api/click", Some(&mallory.token), &click).await;
    assert_eq!(
        (status.as_u16(), &body["result"]),
        (200, &json!("hit")),
        "{body}"
    );
    let after = scores(&app).await;
    assert_eq!(
        score_of(&after, victim.id),
        1,
        "scored for the other player"
    );
    assert_eq!(score_of(&after, mallory.id), 0);
    // A naive server needs no session at all once the message names a player.
    let (round, x, y) = app.open_round().await;
    let click = json!({"round": round, "x": x, "y": y, "player": victim.id});
    let (status, body) = app.post("/api/click", None, &click).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    assert_eq!(score_of(&scores(&app).await, victim.id), 2);
    app.server.stop().await;
}

#[actix_web::test]
async fn without_the_lab_a_click_naming_another_player_is_403_impersonation() {
    let app = TestApp::spawn().await;
    let victim = app.join("Victim").await;
    let mallory = app.join("Mallory").await;
    let (round, x, y) = app.open_round().await;
    let click = json!({"round": round, "x": x, "y": y, "player": victim.id});
    let (status, body) = app.post("/api/click", Some(&mallory.token), &click).await;
    assert_error(status, &body, 403, "impersonation");
    let (status, body) = app.post("/api/click", None, &click).await;
    assert_error(status, &body, 401, "unauthorized");
    assert_eq!(score_of(&scores(&app).await, victim.id), 0);
    app.server.stop().await;
}

/// Runs attack `n` on the attacker's site (`site`: its base URL) with `query`; the transcript.
async fn run_attack(app: &TestApp, site: &str, n: u8, query: &str) -> Value {
    let mut res = app
        .client
        .post(format!("{site}/attack/{n}{query}"))
        .send()
        .await
        .unwrap();
    let body = parse(&res.body().await.unwrap());
    assert_eq!(res.status().as_u16(), 200, "{body}");
    body
}

/// The steps of a transcript that sent a click (HTTP or WebSocket).
fn click_steps(transcript: &Value) -> Vec<Value> {
    transcript["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["sent"].as_str().unwrap().contains("\"player\""))
        .cloned()
        .collect()
}

#[actix_web::test]
async fn the_impersonation_attack_reports_the_claim_believed_when_every_round_expires_before_the_click_and_403_only_with_auth_on(
) {
    // Rounds that expire a millisecond after they start: claimed clicks land on a round that is
    // over, and are answered `expired` — as the victim's clicks. (Now and then one lands within
    // the millisecond and hits: as the victim too.)
    let app = TestApp::spawn_with(|c| {
        c.lab = true;
        c.round_timeout_ms = 1;
    })
    .await;
    let victim = app.join("Victim").await;
    let site = attacker_origin(&app);
    let query = format!("?victim={}", victim.id);

    switch(&app, json!({"auth": false})).await;
    let believed = run_attack(&app, &site, 5, &query).await;
    let summary = believed["summary"].as_str().unwrap();
    assert_eq!(
        (&believed["succeeded"], &believed["refused"]),
        (&json!(true), &json!(false)),
        "{believed:#}"
    );
    assert!(
        !summary.contains("403") && !summary.contains("Refused"),
        "auth is off: nothing was refused — {summary}"
    );
    assert!(summary.contains("believed the message"), "{summary}");
    let clicks = click_steps(&believed);
    assert!(clicks.len() >= 2, "HTTP and WebSocket: {believed:#}");
    for step in &clicks {
        let answer = step["answer"].as_str().unwrap();
        assert_eq!(step["refused"], false, "{step}");
        assert!(
            answer.starts_with("200 ") || answer.contains("\"click_result\""),
            "{step}"
        );
    }
    let answered = |result: &str| {
        clicks
            .iter()
            .filter(|s| {
                s["answer"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("\"result\":\"{result}\""))
            })
            .count()
    };
    let (expired, hits) = (answered("expired"), answered("hit"));
    assert_eq!(expired + hits, clicks.len(), "{believed:#}");
    assert!(
        expired >= 1,
        "the case the old verdict called a refusal: {believed:#}"
    );
    assert!(
        clicks.len() > 2,
        "an expired round is followed by the next: {believed:#}"
    );
    assert_eq!(
        score_of(&scores(&app).await, victim.id),
        hits as u64,
        "a hit, if any, scored for the victim"
    );
    assert!(
        defence_log(&app).await.iter().all(|e| e["rule"] != "auth"),
        "the auth defence is off: it refused nothing"
    );

    switch(&app, json!({"auth": true})).await;
    let refused = run_attack(&app, &site, 5, &query).await;
    assert_eq!(
        (&refused["succeeded"], &refused["refused"]),
        (&json!(false), &json!(true)),
        "{refused:#}"
    );
    assert!(refused["summary"]
        .as_str()
        .unwrap()
        .starts_with("403 impersonation"));
    let clicks = click_steps(&refused);
    assert_eq!(clicks.len(), 2, "one refusal each, no retry: {refused:#}");
    assert!(clicks[0]["answer"]
        .as_str()
        .unwrap()
        .starts_with("403 impersonation"));
    assert!(clicks[1]["answer"]
        .as_str()
        .unwrap()
        .contains("\"error\":\"impersonation\""));
    logged(&app, "auth", 403, "impersonation").await;
    app.server.stop().await;
}

#[actix_web::test]
async fn the_impersonation_attack_on_a_live_game_scores_a_real_hit_for_the_victim_on_both_transports(
) {
    let app = lab_app().await;
    let victim = app.join("Victim").await;
    switch(&app, json!({"auth": false})).await;
    let site = attacker_origin(&app);
    let t = run_attack(&app, &site, 5, &format!("?victim={}", victim.id)).await;
    assert_eq!(t["succeeded"], true, "{t:#}");
    let clicks = click_steps(&t);
    assert_eq!(clicks.len(), 2, "a hit on each, no retry: {t:#}");
    assert!(
        clicks
            .iter()
            .all(|s| s["answer"].as_str().unwrap().contains("hit")),
        "{t:#}"
    );
    assert_eq!(score_of(&scores(&app).await, victim.id), 2);
    assert!(t["summary"].as_str().unwrap().contains("0 → 2"), "{t:#}");
    app.server.stop().await;
}

// ---- 6. Poisoned server data ----------------------------------------------------------------

#[actix_web::test]
async fn a_name_with_markup_is_stored_with_input_off_and_refused_400_with_it_on() {
    let app = lab_app().await;
    let name = "<mark data-testid=\"lab-marker\">hacked</mark>";
    let (status, body) = app.post("/api/join", None, &json!({ "name": name })).await;
    assert_error(status, &body, 400, "invalid_name");
    logged(&app, "input", 400, "invalid_name").await;
    assert!(scores(&app).await.is_empty(), "nobody joined");

    switch(&app, json!({"input": false})).await;
    let (status, body) = app.post("/api/join", None, &json!({ "name": name })).await;
    assert_eq!(status.as_u16(), 201, "{body}");
    let (_, snap) = app.get("/api/snapshot").await;
    assert_eq!(snap["players"][0]["name"], name, "stored exactly as sent");
    // The server still tells `server_data` apart: it is the pages' defence.
    let (_, stats) = app.get("/api/stats").await;
    assert_eq!(stats["lab"]["off"], json!(["input"]));
    app.server.stop().await;
}

// ---- the switches, the log, the pages' reports ----------------------------------------------

#[actix_web::test]
async fn the_switches_start_on_and_the_admin_api_reads_and_flips_any_of_them() {
    let app = lab_app().await;
    let (status, body) = app.get("/api/admin/lab").await;
    assert_error(status, &body, 403, "admin_required");
    logged(&app, "auth", 403, "admin_required").await;
    let mut res = app
        .client
        .get(app.url("/api/admin/lab"))
        .bearer_auth(&app.server.admin_token)
        .send()
        .await
        .unwrap();
    let body = parse(&res.body().await.unwrap());
    assert_eq!(
        body,
        json!({"defences": {"origin": true, "subprotocol": true, "input": true, "auth": true, "server_data": true}})
    );
    let (_, stats) = app.get("/api/stats").await;
    assert_eq!(stats["lab"]["off"], json!([]));
    assert_eq!(
        stats["lab"]["attacker_port"],
        app.server.lab_attacker_addr.unwrap().port()
    );

    let defences = switch(&app, json!({"server_data": false, "auth": false})).await;
    assert_eq!(
        defences,
        json!({"origin": true, "subprotocol": true, "input": true, "auth": false, "server_data": false})
    );
    let (_, stats) = app.get("/api/stats").await;
    assert_eq!(stats["lab"]["off"], json!(["auth", "server_data"]));
    let mut res = app
        .client
        .post(app.url("/api/admin/lab"))
        .bearer_auth(&app.server.admin_token)
        .send_json(&json!({"firewall": false}))
        .await
        .unwrap();
    let body = parse(&res.body().await.unwrap());
    assert_error(res.status(), &body, 400, "bad_json");
    switch(&app, json!({"auth": true, "server_data": true})).await;
    let (_, stats) = app.get("/api/stats").await;
    assert_eq!(stats["lab"]["off"], json!([]));
    app.server.stop().await;
}

#[actix_web::test]
async fn the_log_answers_after_a_seq_and_pages_report_what_they_refused() {
    let app = lab_app().await;
    let report = |code: &str| {
        app.client
            .post(app.url("/api/lab/report"))
            .insert_header(("Origin", app.origin()))
            .send_json(&json!({"code": code, "detail": "a player name with markup, shown as text"}))
    };
    let res = report("rendered_as_text").await.unwrap();
    assert_eq!(res.status().as_u16(), 204);
    let entry = logged(&app, "server_data", 0, "rendered_as_text").await;
    assert_eq!(entry["origin"], app.origin());
    let seq = entry["seq"].as_u64().unwrap();
    let mut res = report("evil").await.unwrap();
    let body = parse(&res.body().await.unwrap());
    assert_error(res.status(), &body, 400, "bad_json");
    let mut res = app
        .client
        .get(app.url(&format!("/api/admin/lab/log?since={seq}")))
        .bearer_auth(&app.server.admin_token)
        .send()
        .await
        .unwrap();
    let body = parse(&res.body().await.unwrap());
    let newer = body["entries"].as_array().unwrap();
    assert!(
        newer.iter().all(|e| e["seq"].as_u64().unwrap() > seq),
        "{body}"
    );
    assert_eq!(newer.len(), 1, "only the refused report came after: {body}");
    assert_eq!(body["last_seq"], newer[0]["seq"]);
    // Reports are rate-limited: a burst, then 429.
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(report("event_ignored").await.unwrap().status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let (_, metrics) = app.get("/metrics").await;
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("clickgame_refusals_total{rule=\"server_data\"}"),
        "{text}"
    );
    app.server.stop().await;
}

#[actix_web::test]
async fn refusals_are_counted_in_metrics_by_rule_without_the_lab() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/api/poll"))
        .insert_header(("Origin", "https://evil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let err = app.client.ws(app.url("/api/ws")).connect().await.err();
    assert!(err.is_some());
    let mut socket = game_socket(&app).await;
    socket
        .send(ws::Message::Text(padded(5000).into()))
        .await
        .unwrap();
    assert_eq!(next_text(&mut socket).await, Err(Some(1009)));
    let (status, _) = app.post("/api/join", None, &json!({"name": "<b>"})).await;
    assert_eq!(status.as_u16(), 400);
    let (_, metrics) = app.get("/metrics").await;
    let text = metrics.as_str().unwrap().to_string();
    for (rule, n) in [
        ("origin", 1),
        ("subprotocol", 1),
        ("size", 1),
        ("input", 1),
        ("auth", 0),
        ("server_data", 0),
    ] {
        let line = format!("clickgame_refusals_total{{rule=\"{rule}\"}} {n}\n");
        assert!(text.contains(&line), "{line} in\n{text}");
    }
    app.server.stop().await;
}

// ---- the flag, and only the flag ------------------------------------------------------------

#[actix_web::test]
async fn without_lab_the_lab_endpoints_are_404_and_nothing_listens_on_the_attacker_port() {
    // A port that was free a moment ago, given as --lab-attacker-addr: without --lab nothing
    // may bind it.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let app = TestApp::spawn_with(|c| c.lab_attacker_addr = ([127, 0, 0, 1], port).into()).await;
    assert!(app.server.lab_attacker_addr.is_none());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens on the attacker's port"
    );
    for (method, path) in [
        ("GET", "/api/admin/lab"),
        ("POST", "/api/admin/lab"),
        ("GET", "/api/admin/lab/log?since=0"),
        ("POST", "/api/lab/report"),
    ] {
        let mut res = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .bearer_auth(&app.server.admin_token)
            .insert_header(("Content-Type", "application/json"))
            .send_body("{\"origin\": false}")
            .await
            .unwrap();
        let body = parse(&res.body().await.unwrap());
        assert_error(res.status(), &body, 404, "not_found");
    }
    let (_, stats) = app.get("/api/stats").await;
    assert!(stats.get("lab").is_none(), "{stats}");
    app.server.stop().await;
}

#[actix_web::test]
async fn lab_on_a_listener_other_than_loopback_needs_lab_allow_remote() {
    let mut config = clickgame::config::Config::for_tests();
    config.lab = true;
    config.http_addr = ([0, 0, 0, 0], 0).into();
    let err = clickgame::server::start(config.clone())
        .await
        .err()
        .expect("refused to start");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("--lab-allow-remote"), "{err}");
    assert!(
        !err.to_string().contains("  "),
        "a run of spaces in the message: {err}"
    );
    config.lab_allow_remote = true;
    let server = clickgame::server::start(config).await.expect("starts");
    assert!(server.lab_attacker_addr.is_some());
    server.stop().await;
}

// ---- the attacker's site ----------------------------------------------------------------------

#[actix_web::test]
async fn the_attacker_site_serves_its_page_under_its_own_csp_and_runs_the_client_attacks() {
    let app = lab_app().await;
    let site = attacker_origin(&app);
    let mut res = app
        .client
        .get(format!("{site}/attacker.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers().get("content-security-policy").unwrap(),
        clickgame::lab::attacker::PERMISSIVE_CSP
    );
    let page = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    for n in 1..=6 {
        assert!(
            page.contains(&format!("data-testid=\"attack-{n}\"")),
            "button {n}"
        );
    }
    let (_, target) = {
        let mut res = app
            .client
            .get(format!("{site}/target"))
            .send()
            .await
            .unwrap();
        (res.status(), parse(&res.body().await.unwrap()))
    };
    assert_eq!(target["http_port"], app.server.http_addr.port());
    assert_eq!(
        (&target["https_port"], &target["attacker_https_port"]),
        (&Value::Null, &Value::Null),
        "no TLS listener (--no-tls), so no page over TLS either"
    );
    let mut res = app
        .client
        .post(format!("{site}/attack/3?tls=true"))
        .send()
        .await
        .unwrap();
    let body = parse(&res.body().await.unwrap());
    assert_error(res.status(), &body, 409, "no_tls");

    let attack6 = || async {
        let mut res = app
            .client
            .post(format!("{site}/attack/6"))
            .send()
            .await
            .unwrap();
        parse(&res.body().await.unwrap())
    };
    let refused = attack6().await;
    assert_eq!(refused["succeeded"], false, "{refused}");
    assert!(refused["steps"][0]["answer"]
        .as_str()
        .unwrap()
        .contains("400 invalid_name"));
    switch(&app, json!({"input": false})).await;
    let stored = attack6().await;
    assert_eq!(stored["succeeded"], true, "{stored}");
    let (_, snap) = app.get("/api/snapshot").await;
    assert!(snap["players"][0]["name"]
        .as_str()
        .unwrap()
        .starts_with("<mark"));
    app.server.stop().await;
}

// ---- over TLS ---------------------------------------------------------------------------------

/// A client that takes the game's self-signed certificate unchecked (like `curl -k`), HTTP/1.1.
fn tls_client() -> awc::Client {
    let mut tls =
        openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
    tls.set_verify(openssl::ssl::SslVerifyMode::NONE);
    tls.set_alpn_protos(b"\x08http/1.1").unwrap();
    awc::Client::builder()
        .connector(awc::Connector::new().openssl(tls.build()))
        .timeout(Duration::from_secs(30))
        .finish()
}

#[actix_web::test]
async fn over_tls_the_attacks_work_with_their_defence_off_and_are_refused_with_the_same_code_with_it_on(
) {
    let app = TestApp::spawn_with(|c| {
        c.lab = true;
        c.no_tls = false;
    })
    .await;
    let https = app.server.https_addr.expect("the game's TLS listener");
    let site = attacker_origin(&app);
    let mut res = app
        .client
        .get(format!("{site}/target"))
        .send()
        .await
        .unwrap();
    let target = parse(&res.body().await.unwrap());
    assert_eq!(target["https_port"], https.port());
    let site_tls_port = target["attacker_https_port"]
        .as_u64()
        .expect("the attacker's page over TLS");
    let site_tls = format!("https://127.0.0.1:{site_tls_port}");

    // The attacker's page over HTTPS: the same page, its own CSP, the game's certificate.
    let tls = tls_client();
    let mut res = tls
        .get(format!("{site_tls}/attacker.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers().get("content-security-policy").unwrap(),
        clickgame::lab::attacker::PERMISSIVE_CSP
    );
    assert!(String::from_utf8(res.body().await.unwrap().to_vec())
        .unwrap()
        .contains("data-testid=\"over-tls\""));

    // 1. The hijack over wss:// from the attacker's https: origin: 403 with the Origin check on,
    // upgraded with the victim's session with it off. TLS changed nothing.
    let victim = app.join("Victim").await;
    let hijack = || {
        tls.ws(format!("wss://{https}/api/ws"))
            .origin(site_tls.as_str())
            .header("Cookie", session_cookie(&victim))
            .protocols(["clickgame.v1"])
            .connect()
    };
    let err = hijack().await.err().expect("refused");
    assert!(
        matches!(err, awc::error::WsClientError::InvalidResponseStatus(s) if s.as_u16() == 403),
        "{err:?}"
    );
    assert_eq!(
        logged(&app, "origin", 403, "origin_not_allowed").await["origin"],
        site_tls
    );
    switch(&app, json!({"origin": false})).await;
    let (res, mut socket) = hijack().await.expect("a naive server upgrades it");
    assert_eq!(res.status().as_u16(), 101);
    let (round, x, y) = app.open_round().await;
    socket
        .send(ws::Message::Text(
            json!({"type": "click", "id": 1, "round": round, "x": x, "y": y})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let reply = next_reply(&mut socket).await.unwrap();
    assert_eq!(reply["result"], "hit", "{reply}");
    assert_eq!(score_of(&scores(&app).await, victim.id), 1, "as the victim");
    switch(&app, json!({"origin": true})).await;

    // 3. Wrong protocol, run by the attacker's server against wss://.
    let refused = run_attack(&app, &site, 3, "?tls=true").await;
    assert_eq!(
        refused["target"],
        format!("https://127.0.0.1:{}", https.port())
    );
    assert_eq!(
        (&refused["succeeded"], &refused["refused"]),
        (&json!(false), &json!(true)),
        "{refused:#}"
    );
    assert_eq!(refused["steps"][0]["answer"], "HTTP 400 before any upgrade");
    logged(&app, "subprotocol", 400, "subprotocol_required").await;
    switch(&app, json!({"subprotocol": false})).await;
    let upgraded = run_attack(&app, &site, 3, "?tls=true").await;
    assert_eq!(upgraded["succeeded"], true, "{upgraded:#}");
    assert!(upgraded["steps"][1]["answer"]
        .as_str()
        .unwrap()
        .contains("Sec-WebSocket-Protocol: stomp.v12"));

    // 4. The 1 MiB frame through wss://: closed 1009 from its header on, buffered off.
    let closed = run_attack(&app, &site, 4, "?tls=true").await;
    assert_eq!(closed["refused"], true, "{closed:#}");
    assert!(closed["steps"][0]["answer"]
        .as_str()
        .unwrap()
        .starts_with("closed with 1009"));
    switch(&app, json!({"input": false})).await;
    let buffered = run_attack(&app, &site, 4, "?tls=true").await;
    assert_eq!(buffered["succeeded"], true, "{buffered:#}");
    switch(&app, json!({"input": true})).await;

    // 5. Impersonation over https:// and wss://.
    let query = format!("?tls=true&victim={}", victim.id);
    let refused = run_attack(&app, &site, 5, &query).await;
    assert_eq!(refused["refused"], true, "{refused:#}");
    assert!(refused["summary"]
        .as_str()
        .unwrap()
        .starts_with("403 impersonation"));
    switch(&app, json!({"auth": false})).await;
    let believed = run_attack(&app, &site, 5, &query).await;
    assert_eq!(believed["succeeded"], true, "{believed:#}");
    assert_eq!(
        score_of(&scores(&app).await, victim.id),
        3,
        "two more hits as the victim"
    );
    app.server.stop().await;
}
