//! One-time tickets (`POST /api/ticket`, `?ticket=`): spent only by a request the server
//! accepts, exactly once under a race, and issued within bounds.

use std::time::Duration;

use awc::error::WsClientError;
use serde_json::{json, Value};

use crate::clients::{Downstream, Kind};
use crate::helpers::{assert_error, TestApp};

/// `POST /api/ticket` as `token`: status, body and `Retry-After`.
async fn ask_ticket(app: &TestApp, token: &str) -> (u16, Value, Option<String>) {
    let mut res = app
        .client
        .post(app.url("/api/ticket"))
        .bearer_auth(token)
        .send_json(&json!({}))
        .await
        .unwrap();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = crate::helpers::parse(&res.body().await.unwrap());
    (res.status().as_u16(), body, retry)
}

async fn ticket(app: &TestApp, token: &str) -> String {
    let (status, body, _) = ask_ticket(app, token).await;
    assert_eq!(status, 200, "{body}");
    body["ticket"].as_str().unwrap().to_string()
}

/// The status of a WebSocket handshake on `/api/ws?<query>`, offering `clickgame.v1` or not.
async fn ws_status(app: &TestApp, query: &str, subprotocol: bool) -> u16 {
    let mut req = app.client.ws(app.url(&format!("/api/ws?{query}")));
    if subprotocol {
        req = req.protocols(["clickgame.v1"]);
    }
    match req.connect().await {
        Ok((res, _socket)) => res.status().as_u16(),
        Err(WsClientError::InvalidResponseStatus(status)) => status.as_u16(),
        Err(e) => panic!("handshake failed otherwise: {e:?}"),
    }
}

/// The ticket still opens one game socket (101), and then never again (401).
async fn assert_unspent(app: &TestApp, ticket: &str, what: &str) {
    let query = format!("ticket={ticket}");
    assert_eq!(
        ws_status(app, &query, true).await,
        101,
        "{what}: the ticket was still good"
    );
    assert_eq!(
        ws_status(app, &query, true).await,
        401,
        "{what}: and now it is spent"
    );
}

#[actix_web::test]
async fn a_websocket_refused_for_its_missing_subprotocol_leaves_the_ticket_unspent() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let t = ticket(&app, &ada.token).await;
    assert_eq!(ws_status(&app, &format!("ticket={t}"), false).await, 400);
    assert_unspent(&app, &t, "after 400 subprotocol_required").await;
    app.server.stop().await;
}

#[actix_web::test]
async fn requests_refused_by_the_connection_cap_leave_the_ticket_unspent() {
    let app = TestApp::spawn_with(|c| c.max_conns_per_ip = 1).await;
    let ada = app.join("Ada").await;
    let t = ticket(&app, &ada.token).await;
    let holder = Downstream::open(&app, Kind::Websocket, None, None, None).await;
    assert_eq!(ws_status(&app, &format!("ticket={t}"), true).await, 429);
    for path in ["/api/sse", "/api/longpoll"] {
        let (status, body) = app.get(&format!("{path}?ticket={t}")).await;
        assert_error(status, &body, 429, "too_many_connections");
    }
    drop(holder);
    // The slot frees once the server notices the socket is gone.
    let mut status = 429;
    for _ in 0..100 {
        status = ws_status(&app, &format!("ticket={t}"), true).await;
        if status != 429 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 101, "the retry is Ada's, not a 401");
    app.server.stop().await;
}

#[actix_web::test]
async fn requests_refused_for_a_bad_query_or_last_event_id_leave_the_ticket_unspent() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let t = ticket(&app, &ada.token).await;
    for path in [
        format!("/api/poll?ticket={t}&since=soon"),
        format!("/api/longpoll?ticket={t}&since=-1"),
        format!("/api/sse?ticket={t}&color=red"),
    ] {
        let (status, body) = app.get(&path).await;
        assert_error(status, &body, 400, "bad_query");
    }
    let mut res = app
        .client
        .get(app.url(&format!("/api/sse?ticket={t}")))
        .insert_header(("Last-Event-ID", "yesterday"))
        .send()
        .await
        .unwrap();
    let body = crate::helpers::parse(&res.body().await.unwrap());
    assert_error(res.status(), &body, 400, "bad_last_event_id");
    assert_eq!(
        ws_status(&app, &format!("ticket={t}&since=x"), true).await,
        400
    );
    assert_unspent(&app, &t, "after five 400s").await;
    app.server.stop().await;
}

#[actix_web::test]
async fn an_accepted_poll_spends_the_ticket_as_its_player() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let t = ticket(&app, &ada.token).await;
    let (status, _) = app.get(&format!("/api/poll?ticket={t}")).await;
    assert_eq!(status.as_u16(), 200);
    let (_, snap) = app.get("/api/snapshot").await;
    assert_eq!(
        snap["players"][0]["transport"], "ajax",
        "the poll was Ada's"
    );
    assert_eq!(ws_status(&app, &format!("ticket={t}"), true).await, 401);
    app.server.stop().await;
}

#[actix_web::test]
async fn of_eight_sockets_racing_with_one_ticket_exactly_one_opens() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let t = ticket(&app, &ada.token).await;
    let query = format!("ticket={t}");
    let statuses =
        futures_util::future::join_all((0..8).map(|_| ws_status(&app, &query, true))).await;
    let mut sorted = statuses.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [101, 401, 401, 401, 401, 401, 401, 401],
        "{statuses:?}"
    );
    app.server.stop().await;
}

#[actix_web::test]
async fn a_player_holds_at_most_four_unspent_tickets_then_gets_429_with_retry_after() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let bob = app.join("Bob").await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(ticket(&app, &ada.token).await);
    }
    let (status, body, retry) = ask_ticket(&app, &ada.token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("too_many_tickets"))
    );
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!(
        (1..=30).contains(&retry),
        "until the oldest expires: {retry}"
    );
    // Another player is not affected; spending one of Ada's makes room for one more.
    ticket(&app, &bob.token).await;
    let (status, _) = app.get(&format!("/api/poll?ticket={}", held[0])).await;
    assert_eq!(status.as_u16(), 200);
    ticket(&app, &ada.token).await;
    assert_eq!(ask_ticket(&app, &ada.token).await.0, 429);
    app.server.stop().await;
}

#[actix_web::test]
async fn issuing_tickets_is_rate_limited_after_a_burst() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let started = std::time::Instant::now();
    let mut issued = 0;
    let refusal = loop {
        let (status, body, retry) = ask_ticket(&app, &ada.token).await;
        if status != 200 {
            break (status, body, retry);
        }
        issued += 1;
        assert!(issued <= 100, "no limit after {issued} tickets");
        // Spend it at once, so the four-unspent bound is not what stops us.
        let t = body["ticket"].as_str().unwrap();
        let (status, _) = app.get(&format!("/api/poll?ticket={t}")).await;
        assert_eq!(status.as_u16(), 200);
    };
    let (status, body, retry) = refusal;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("rate_limited"))
    );
    assert_eq!(retry.as_deref(), Some("1"));
    // A burst of 8, then 2 per second: what the elapsed time allows, and no more.
    let allowed = 8 + (started.elapsed().as_secs_f64() * 2.0).ceil() as u64;
    assert!(
        (8..=allowed).contains(&issued),
        "{issued} issued, {allowed} allowed"
    );
    app.server.stop().await;
}
