//! Figures and lecturer controls: /api/stats, /metrics, the admin token, pause, reset, poll
//! interval, simulated delay, dropping connections, one-time tickets, and keeping the room
//! civil (remove a player, rename one, close joining).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::clients::{Downstream, Kind, ALL};
use crate::helpers::{assert_error, parse, TestApp};

async fn admin(app: &TestApp, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = app.client.post(app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let mut res = req.send_json(&body).await.unwrap();
    (res.status().as_u16(), parse(&res.body().await.unwrap()))
}

#[actix_web::test]
async fn lecturer_controls_need_the_admin_token() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    for path in [
        "/api/admin/pause",
        "/api/admin/resume",
        "/api/admin/reset",
        "/api/admin/disconnect",
        "/api/admin/poll-interval",
        "/api/admin/delay",
        "/api/admin/kick",
        "/api/admin/rename",
        "/api/admin/joins",
    ] {
        for token in [None, Some("wrong"), Some(ada.token.as_str())] {
            let (status, body) =
                admin(&app, path, token, json!({"ms": 100, "transport": "sse"})).await;
            assert_error(
                awc::http::StatusCode::from_u16(status).unwrap(),
                &body,
                403,
                "admin_required",
            );
        }
    }
    let (status, _) = admin(
        &app,
        "/api/admin/pause",
        Some(&app.server.admin_token),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    app.server.stop().await;
}

#[actix_web::test]
async fn pause_reset_and_a_new_poll_interval_reach_every_client_as_events() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    app.win_round(&ada).await;
    let token = app.server.admin_token.clone();
    let since = app.get("/api/snapshot").await.1["seq"].as_u64();
    let mut streams = Vec::new();
    for kind in ALL {
        streams.push(Downstream::open(&app, kind, None, since, None).await);
    }
    assert_eq!(
        admin(&app, "/api/admin/pause", Some(&token), json!({}))
            .await
            .0,
        200
    );
    assert_eq!(
        admin(&app, "/api/admin/reset", Some(&token), json!({}))
            .await
            .0,
        200
    );
    let (status, body) = admin(
        &app,
        "/api/admin/poll-interval",
        Some(&token),
        json!({"ms": 250}),
    )
    .await;
    assert_eq!(
        (status, body["poll_interval_ms"].as_u64()),
        (200, Some(250))
    );
    let (status, body) = admin(
        &app,
        "/api/admin/poll-interval",
        Some(&token),
        json!({"ms": 1}),
    )
    .await;
    assert_error(
        awc::http::StatusCode::from_u16(status).unwrap(),
        &body,
        400,
        "bad_interval",
    );
    for s in &mut streams {
        let paused = s.until(|v| v["type"] == "game_paused").await;
        assert_eq!(paused["paused"], true);
        s.until(|v| v["type"] == "scores_reset").await;
        let settings = s.until(|v| v["type"] == "settings").await;
        assert_eq!(settings["poll_interval_ms"], 250, "{:?}", s.kind);
    }
    let (_, snap) = app.get("/api/snapshot").await;
    assert_eq!(snap["paused"], true);
    assert_eq!(snap["poll_interval_ms"], 250);
    assert_eq!(snap["players"][0]["score"], 0);
    assert_eq!(snap["transports"]["ajax"]["wins"], 0);
    app.server.stop().await;
}

#[actix_web::test]
async fn stats_and_metrics_count_requests_events_bytes_clicks_and_lag_per_transport() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let mut ws = Downstream::open(&app, Kind::Websocket, Some(&ada.token), None, None).await;
    let mut sse = Downstream::open(&app, Kind::Sse, None, None, None).await;
    let _ = ws.next().await;
    let _ = sse.next().await;
    let (round, x, y) = app.open_round().await;
    assert_eq!(ws.click(round, x, y).await["result"], "hit");
    ws.until(|v| v["type"] == "round_won").await;
    sse.until(|v| v["type"] == "round_won").await;
    for _ in 0..3 {
        app.get("/api/poll?since=0").await;
    }
    let (status, stats) = app.get("/api/stats").await;
    assert_eq!(status.as_u16(), 200);
    let t = &stats["transports"];
    assert_eq!(t["ajax"]["requests"], 3, "{stats}");
    assert!(t["ajax"]["events_delivered"].as_u64().unwrap() >= 6);
    assert_eq!(t["websocket"]["open_connections"], 1);
    assert_eq!(t["sse"]["open_connections"], 1);
    assert_eq!(t["websocket"]["clicks_accepted"], 1);
    assert!(t["websocket"]["bytes_written"].as_u64().unwrap() > 100);
    assert!(t["sse"]["delivery_lag_ms"]["count"].as_u64().unwrap() >= 1);
    assert!(t["sse"]["delivery_lag_ms"]["p95"].as_u64().is_some());
    let mut res = app.client.get(app.url("/metrics")).send().await.unwrap();
    let text = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    assert!(
        text.contains("# TYPE clickgame_http_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains("clickgame_http_requests_total{transport=\"ajax\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("clickgame_delivery_lag_ms{transport=\"sse\",quantile=\"0.95\"}"),
        "{text}"
    );
    let (_, time) = app.get("/api/time").await;
    assert!(time["ts"].as_u64().unwrap() > 1_700_000_000_000);
    app.server.stop().await;
}

#[actix_web::test]
async fn a_simulated_delay_slows_exactly_the_chosen_transport() {
    let app = TestApp::spawn().await;
    let token = app.server.admin_token.clone();
    let (status, body) = admin(
        &app,
        "/api/admin/delay",
        Some(&token),
        json!({"transport": "ajax", "ms": 300}),
    )
    .await;
    assert_eq!(
        (status, body["delay_ms"]["ajax"].as_u64()),
        (200, Some(300))
    );
    let (status, body) = admin(
        &app,
        "/api/admin/delay",
        Some(&token),
        json!({"transport": "ajax", "ms": 999999}),
    )
    .await;
    assert_error(
        awc::http::StatusCode::from_u16(status).unwrap(),
        &body,
        400,
        "bad_delay",
    );
    let started = Instant::now();
    app.get("/api/poll").await;
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "ajax is delayed"
    );
    let started = Instant::now();
    app.get("/api/snapshot").await;
    assert!(
        started.elapsed() < Duration::from_millis(290),
        "other endpoints are not"
    );
    app.server.stop().await;
}

#[actix_web::test]
async fn a_one_time_ticket_authenticates_one_connection_and_only_once() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let (status, body) = app.post("/api/ticket", None, &json!({})).await;
    assert_error(status, &body, 401, "unauthorized");
    let (_, body) = app.post("/api/ticket", Some(&ada.token), &json!({})).await;
    let ticket = body["ticket"].as_str().unwrap().to_string();
    assert_eq!(body["expires_in_ms"], 30000);
    // Spent on an SSE stream: the player's transport becomes sse.
    let res = app
        .client
        .get(app.url(&format!("/api/sse?ticket={ticket}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let mut ok = false;
    for _ in 0..50 {
        let (_, snap) = app.get("/api/snapshot").await;
        if snap["players"][0]["transport"] == "sse" {
            ok = true;
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "the ticket identified Ada");
    drop(res);
    // A second use is refused (the credential rule: a spent ticket is 401 on every
    // transport, see tests/api/credentials.rs), and is not Ada.
    let (status, body) = app.get(&format!("/api/poll?ticket={ticket}")).await;
    assert_error(status, &body, 401, "unauthorized");
    let (_, snap) = app.get("/api/snapshot").await;
    assert_eq!(
        snap["players"][0]["transport"], "sse",
        "the spent ticket did not touch Ada"
    );
    app.server.stop().await;
}

#[actix_web::test]
async fn a_ticket_wins_over_the_pages_cookie_and_spectate_ignores_it() {
    let app = TestApp::spawn().await;
    let page = app.join("Page").await;
    let bot = app.join("Bot").await;
    let cookie = format!("clickgame_session={}", page.token);
    let (_, body) = app.post("/api/ticket", Some(&bot.token), &json!({})).await;
    let ticket = body["ticket"].as_str().unwrap().to_string();
    // The bot's SSE stream, from a page that also holds the player's cookie.
    let _bot_stream = app
        .client
        .get(app.url(&format!("/api/sse?ticket={ticket}")))
        .insert_header(("Cookie", cookie.as_str()))
        .send()
        .await
        .unwrap();
    // A spectator pane on the same page.
    let _pane = app
        .client
        .get(app.url("/api/sse?spectate=1"))
        .insert_header(("Cookie", cookie.as_str()))
        .send()
        .await
        .unwrap();
    actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    let (_, snap) = app.get("/api/snapshot").await;
    let transport = |id: u64| {
        snap["players"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap()["transport"]
            .clone()
    };
    assert_eq!(
        transport(bot.id),
        "sse",
        "the ticket identified the bot: {snap}"
    );
    assert!(
        transport(page.id).is_null(),
        "the spectator pane did not count as the page's player: {snap}"
    );
    app.server.stop().await;
}

#[actix_web::test]
async fn a_removed_player_leaves_every_client_hears_why_and_their_token_dies() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let bob = app.join("Bob").await;
    let token = app.server.admin_token.clone();
    let since = app.get("/api/snapshot").await.1["seq"].as_u64();
    let mut streams = Vec::new();
    for kind in ALL {
        streams.push(Downstream::open(&app, kind, None, since, None).await);
    }
    let (status, body) = admin(
        &app,
        "/api/admin/kick",
        Some(&token),
        json!({"player": ada.id}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"player": ada.id, "kicked": true}));
    for s in &mut streams {
        let left = s.until(|v| v["type"] == "player_left").await;
        assert_eq!(left["player"], ada.id, "{:?}", s.kind);
        assert_eq!(left["reason"], "kicked", "{:?}", s.kind);
    }
    // Ada's session is over: her token opens nothing, not even as an idle player coming back.
    let (round, x, y) = app.open_round().await;
    let (status, body) = app
        .post(
            "/api/click",
            Some(&ada.token),
            &json!({"round": round, "x": x, "y": y}),
        )
        .await;
    assert_error(status, &body, 401, "unauthorized");
    let (status, body) = app.post("/api/ticket", Some(&ada.token), &json!({})).await;
    assert_error(status, &body, 401, "unauthorized");
    // Bob plays on; removing Ada again, or nobody, is a 404.
    app.win_round(&bob).await;
    for player in [ada.id, 9999] {
        let (status, body) = admin(
            &app,
            "/api/admin/kick",
            Some(&token),
            json!({"player": player}),
        )
        .await;
        assert_error(
            awc::http::StatusCode::from_u16(status).unwrap(),
            &body,
            404,
            "no_such_player",
        );
    }
    for bad in [
        json!({}),
        json!({"player": "1"}),
        json!({"player": 1, "why": "rude"}),
    ] {
        let (status, body) = admin(&app, "/api/admin/kick", Some(&token), bad).await;
        assert_error(
            awc::http::StatusCode::from_u16(status).unwrap(),
            &body,
            400,
            "bad_json",
        );
    }
    let (_, snap) = app.get("/api/snapshot").await;
    assert_eq!(snap["players"].as_array().unwrap().len(), 1);
    assert_eq!(snap["players"][0]["name"], "Bob");
    app.server.stop().await;
}

#[actix_web::test]
async fn a_rename_passes_the_checks_of_a_join_and_reaches_every_client() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let bob = app.join("Bob").await;
    let token = app.server.admin_token.clone();
    let since = app.get("/api/snapshot").await.1["seq"].as_u64();
    let mut streams = Vec::new();
    for kind in ALL {
        streams.push(Downstream::open(&app, kind, None, since, None).await);
    }
    let rename = |player: u64, name: &str| {
        admin(
            &app,
            "/api/admin/rename",
            Some(&token),
            json!({"player": player, "name": name}),
        )
    };
    for (name, status, code) in [
        ("<b>Bob</b>", 400, "invalid_name"),
        ("Bo\u{200B}b", 400, "invalid_name"),
        ("", 400, "invalid_name"),
        ("ADA", 409, "name_taken"),
    ] {
        let (got, body) = rename(bob.id, name).await;
        assert_error(
            awc::http::StatusCode::from_u16(got).unwrap(),
            &body,
            status,
            code,
        );
    }
    let (status, body) = rename(9999, "Zed").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("no_such_player"))
    );
    let (status, body) = rename(bob.id, "  Grace ").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"player": bob.id, "name": "Grace"}));
    for s in &mut streams {
        let renamed = s.until(|v| v["type"] == "player_renamed").await;
        assert_eq!(renamed["player"], bob.id, "{:?}", s.kind);
        assert_eq!(renamed["name"], "Grace", "{:?}", s.kind);
    }
    let (_, snap) = app.get("/api/snapshot").await;
    let names: Vec<&str> = snap["players"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Ada", "Grace"]);
    // The new name is taken, the old one free; Bob's session is untouched.
    let (status, body) = app.post("/api/join", None, &json!({"name": "GRACE"})).await;
    assert_error(status, &body, 409, "name_taken");
    app.join("Bob").await;
    app.win_round(&bob).await;
    let _ = ada;
    app.server.stop().await;
}

#[actix_web::test]
async fn closed_joining_refuses_newcomers_with_403_until_the_lecturer_reopens_it() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let token = app.server.admin_token.clone();
    let since = app.get("/api/snapshot").await.1["seq"].as_u64();
    let mut ws = Downstream::open(&app, Kind::Websocket, None, since, None).await;
    let (status, body) = admin(
        &app,
        "/api/admin/joins",
        Some(&token),
        json!({"open": false}),
    )
    .await;
    assert_eq!(
        (status, body["joins_open"].as_bool()),
        (200, Some(false)),
        "{body}"
    );
    let changed = ws.until(|v| v["type"] == "joins_changed").await;
    assert_eq!(changed["open"], false);
    let (status, body) = app.post("/api/join", None, &json!({"name": "Late"})).await;
    assert_error(status, &body, 403, "joins_closed");
    let (_, snap) = app.get("/api/snapshot").await;
    assert_eq!(snap["joins_open"], false);
    let (_, stats) = app.get("/api/stats").await;
    assert_eq!(stats["admin"]["joins_open"], false);
    // Players already in keep playing.
    app.win_round(&ada).await;
    let (status, body) = admin(
        &app,
        "/api/admin/joins",
        Some(&token),
        json!({"open": "no"}),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_json")));
    let (status, _) = admin(
        &app,
        "/api/admin/joins",
        Some(&token),
        json!({"open": true}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        ws.until(|v| v["type"] == "joins_changed").await["open"],
        true
    );
    app.join("Late").await;
    app.server.stop().await;
}
