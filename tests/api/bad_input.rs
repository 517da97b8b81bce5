//! Bad input gets a clear 4xx with `{"error", "detail"}` and changes nothing.

use serde_json::json;

use crate::clients::{Downstream, Kind};
use crate::helpers::{assert_error, TestApp};

#[actix_web::test]
async fn bad_joins_are_refused_with_a_reason_and_add_no_player() {
    let app = TestApp::spawn().await;
    app.join("Ada").await;
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        (
            "/api/join",
            "application/json",
            r#"{"name":"<img src=x onerror=alert(1)>"}"#.into(),
            400,
            "invalid_name",
        ),
        (
            "/api/join",
            "application/json",
            r#"{"name":"   "}"#.into(),
            400,
            "invalid_name",
        ),
        (
            "/api/join",
            "application/json",
            r#"{"name":"abcdefghijklmnopqrstu"}"#.into(),
            400,
            "invalid_name",
        ),
        (
            "/api/join",
            "application/json",
            r#"{"name":"ADA"}"#.into(),
            409,
            "name_taken",
        ),
        (
            "/api/join",
            "application/json",
            r#"{"name":"Bob""#.into(),
            400,
            "bad_json",
        ),
        (
            "/api/join",
            "application/json",
            r#"{"name":42}"#.into(),
            400,
            "bad_json",
        ),
        (
            "/api/join",
            "application/json",
            r#"{"name":"Bob","admin":true}"#.into(),
            400,
            "bad_json",
        ),
        (
            "/api/join",
            "application/json",
            r#"{}"#.into(),
            400,
            "bad_json",
        ),
        (
            "/api/join",
            "text/plain",
            r#"{"name":"Bob"}"#.into(),
            415,
            "unsupported_media_type",
        ),
        (
            "/api/join",
            "application/json",
            format!(r#"{{"name":"{}"}}"#, "x".repeat(2000)),
            413,
            "payload_too_large",
        ),
    ];
    for (path, ct, body, status, code) in cases {
        let (got, reply) = app.post_raw(path, None, ct, body.clone()).await;
        assert_error(got, &reply, status, code);
    }
    let (_, snap) = app.get("/api/snapshot").await;
    assert_eq!(snap["players"].as_array().unwrap().len(), 1, "{snap}");
    app.server.stop().await;
}

#[actix_web::test]
async fn bad_clicks_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let (round, _, _) = app.open_round().await;
    let (_, before) = app.get("/api/snapshot").await;
    let token = Some(ada.token.as_str());
    let cases: Vec<(Option<&str>, serde_json::Value, u16, &str)> = vec![
        (
            None,
            json!({"round": round, "x": 1, "y": 1}),
            401,
            "unauthorized",
        ),
        (
            Some("1.00000000000000000000000000000000"),
            json!({"round": round, "x": 1, "y": 1}),
            401,
            "unauthorized",
        ),
        (
            Some("garbage"),
            json!({"round": round, "x": 1, "y": 1}),
            401,
            "unauthorized",
        ),
        (
            token,
            json!({"round": round, "x": -0.5, "y": 1}),
            400,
            "out_of_board",
        ),
        (
            token,
            json!({"round": round, "x": 1, "y": 1000.01}),
            400,
            "out_of_board",
        ),
        (
            token,
            json!({"round": round + 5, "x": 1, "y": 1}),
            409,
            "round_not_started",
        ),
        (
            token,
            json!({"round": "1", "x": 1, "y": 1}),
            400,
            "bad_json",
        ),
        (token, json!({"round": -1, "x": 1, "y": 1}), 400, "bad_json"),
        (token, json!({"round": round, "x": 1}), 400, "bad_json"),
        (
            token,
            json!({"round": round, "x": 1, "y": 1, "cheat": true}),
            400,
            "bad_json",
        ),
    ];
    for (tok, body, status, code) in cases {
        let (got, reply) = app.post("/api/click", tok, &body).await;
        assert_error(got, &reply, status, code);
    }
    for raw in [
        "[1,2",
        r#"{"round":1,"x":1e999,"y":1}"#,
        r#"{"round":1,"x":NaN,"y":1}"#,
        "",
    ] {
        let (got, reply) = app
            .post_raw("/api/click", token, "application/json", raw.into())
            .await;
        assert_error(got, &reply, 400, "bad_json");
    }
    let (_, after) = app.get("/api/snapshot").await;
    assert_eq!(before["players"], after["players"]);
    assert_eq!(before["round"], after["round"]);
    assert_eq!(before["seq"], after["seq"], "no event was produced");
    app.server.stop().await;
}

#[actix_web::test]
async fn bad_queries_unknown_paths_and_wrong_methods_get_json_errors() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/poll?since=abc",
        "/api/poll?since=-1",
        "/api/poll?since=1.5",
        "/api/longpoll?since=x",
        "/api/sse?since=1e3",
        "/api/poll?sinc=1",
        "/api/ws?since=nope",
    ] {
        let (status, body) = app.get(path).await;
        assert_error(status, &body, 400, "bad_query");
    }
    let res = app
        .client
        .get(app.url("/api/sse"))
        .insert_header(("Last-Event-ID", "seven"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let (status, body) = app.get("/api/nothing-here").await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app.get("/api/join").await;
    assert_error(status, &body, 405, "method_not_allowed");
    let (status, body) = app.post("/api/snapshot", None, &json!({})).await;
    assert_error(status, &body, 405, "method_not_allowed");
    app.server.stop().await;
}

#[actix_web::test]
async fn a_websocket_without_the_subprotocol_is_refused_before_the_upgrade() {
    let app = TestApp::spawn().await;
    let err = app
        .client
        .ws(app.url("/api/ws"))
        .connect()
        .await
        .err()
        .expect("refused");
    let text = format!("{err:?}");
    assert!(
        text.contains("400") || text.contains("InvalidResponseStatus"),
        "{text}"
    );
    let err = app
        .client
        .ws(app.url("/api/ws"))
        .protocols(["chat", "other"])
        .connect()
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:?}").contains("400"), "{err:?}");
    // Offered among others: accepted, and exactly ours is echoed.
    let (res, _) = app
        .client
        .ws(app.url("/api/ws"))
        .protocols(["chat", "clickgame.v1"])
        .connect()
        .await
        .unwrap();
    assert_eq!(
        res.headers().get("sec-websocket-protocol").unwrap(),
        "clickgame.v1"
    );
    app.server.stop().await;
}

#[actix_web::test]
async fn a_bad_websocket_message_gets_an_error_reply_and_the_socket_keeps_working() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let mut ws = Downstream::open(&app, Kind::Websocket, Some(&ada.token), None, None).await;
    assert_eq!(ws.next().await["type"], "snapshot");
    for bad in [
        "not json",
        r#"{"type":"fly"}"#,
        r#"{"type":"click","round":"x","x":1,"y":1}"#,
        r#"{"type":"resume","since":-3}"#,
    ] {
        let reply = ws.ws_send_raw(bad).await;
        assert_eq!(reply["type"], "error", "{bad}: {reply}");
        assert_eq!(reply["error"], "bad_message");
    }
    let reply = ws
        .ws_send_raw(r#"{"type":"click","id":5,"round":1,"x":5000,"y":1}"#)
        .await;
    assert_eq!(reply["error"], "out_of_board");
    assert_eq!(reply["id"], 5);
    // A spectator's click is refused in-band.
    let mut spectator = Downstream::open(&app, Kind::Websocket, None, None, None).await;
    let reply = spectator
        .ws_send_raw(r#"{"type":"click","id":1,"round":1,"x":5,"y":1}"#)
        .await;
    assert_eq!(reply["error"], "unauthorized");
    // Still alive: a new player's join reaches the first socket.
    app.join("Bea").await;
    let joined = ws.until(|v| v["type"] == "player_joined").await;
    assert_eq!(joined["name"], "Bea");
    app.server.stop().await;
}

#[actix_web::test]
async fn leaving_ends_the_session() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let (status, body) = app.post("/api/leave", Some(&ada.token), &json!({})).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    let (status, body) = app
        .post(
            "/api/click",
            Some(&ada.token),
            &json!({"round": 1, "x": 1, "y": 1}),
        )
        .await;
    assert_error(status, &body, 401, "unauthorized");
    let (_, snap) = app.get("/api/snapshot").await;
    assert!(snap["players"].as_array().unwrap().is_empty());
    app.server.stop().await;
}
