//! One credential rule on all four transports (`docs/protocol.md`, "Credentials"): a ticket or
//! an `Authorization` header that is presented but not valid is `401` before any stream starts;
//! a session cookie that is no longer valid watches as a spectator, on all four alike.

use awc::error::WsClientError;
use serde_json::{json, Value};

use crate::clients::{Kind, ALL};
use crate::helpers::{assert_error, parse, Player, TestApp};

fn path(kind: Kind) -> &'static str {
    match kind {
        Kind::Ajax => "/api/poll",
        Kind::Longpoll => "/api/longpoll",
        Kind::Sse => "/api/sse",
        Kind::Websocket => "/api/ws",
    }
}

/// Opens `kind` with `query` and one extra header; returns the status and, on the HTTP
/// transports, the body of a refusal (a 200 stream is not read, a 101 socket is dropped).
async fn open(app: &TestApp, kind: Kind, query: &str, header: (&str, &str)) -> (u16, Value) {
    let url = app.url(&format!("{}{query}", path(kind)));
    if kind == Kind::Websocket {
        let req = app
            .client
            .ws(url)
            .protocols(["clickgame.v1"])
            .header(header.0, header.1);
        return match req.connect().await {
            Ok((res, _socket)) => (res.status().as_u16(), Value::Null),
            Err(WsClientError::InvalidResponseStatus(status)) => (status.as_u16(), Value::Null),
            Err(e) => panic!("{kind:?}: the handshake failed otherwise: {e:?}"),
        };
    }
    let mut res = app
        .client
        .get(url)
        .insert_header(header)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    if status == 200 && kind == Kind::Sse {
        return (status, Value::Null);
    }
    (status, parse(&res.body().await.unwrap()))
}

async fn ticket(app: &TestApp, player: &Player) -> String {
    let (status, body) = app
        .post("/api/ticket", Some(&player.token), &json!({}))
        .await;
    assert_eq!(status.as_u16(), 200, "{body}");
    body["ticket"].as_str().unwrap().to_string()
}

fn assert_refused(kind: Kind, what: &str, (status, body): (u16, Value)) {
    // The detail names what was wrong, never "join first" to a client that sent a credential.
    if let Some(detail) = body["detail"].as_str() {
        let names = if what.contains("ticket") {
            "ticket"
        } else {
            "Authorization"
        };
        assert!(
            detail.contains(names) && !detail.contains("join first"),
            "{what} on {kind:?}: the detail should name the {names}: {detail}"
        );
    }
    if kind == Kind::Websocket {
        assert_eq!(
            status, 401,
            "{what} on {kind:?}: refused before the upgrade"
        );
    } else {
        assert_error(
            awc::http::StatusCode::from_u16(status).unwrap(),
            &body,
            401,
            "unauthorized",
        );
    }
}

/// The first player's transport, once it is `want` (a socket's task may still be starting).
async fn transport_of_first_player(app: &TestApp, want: &str) -> Value {
    let mut seen = Value::Null;
    for _ in 0..50 {
        let (_, snap) = app.get("/api/snapshot").await;
        seen = snap["players"][0]["transport"].clone();
        if seen == want {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    seen
}

#[actix_web::test]
async fn a_spent_or_forged_ticket_and_a_forged_bearer_get_401_on_every_transport() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let spent = ticket(&app, &ada).await;
    let (status, _) = app.get(&format!("/api/poll?ticket={spent}")).await;
    assert_eq!(status.as_u16(), 200, "the ticket's one use");
    let forged_ticket = format!("t{}.{}", ada.id, "0".repeat(32));
    let forged_token = format!("{}.{}", ada.id, "f".repeat(32));
    let none = ("X-Nothing", "");
    let forged_bearer = format!("Bearer {forged_token}");
    let basic = format!("Basic {}", ada.token);
    for kind in ALL {
        let cases = [
            ("a spent ticket", format!("?ticket={spent}"), none),
            ("a forged ticket", format!("?ticket={forged_ticket}"), none),
            ("a malformed ticket", "?ticket=t1".to_string(), none),
            (
                "a forged Bearer",
                String::new(),
                ("Authorization", forged_bearer.as_str()),
            ),
            (
                "another scheme, even with a good token",
                String::new(),
                ("Authorization", basic.as_str()),
            ),
        ];
        for (what, query, header) in cases {
            assert_refused(kind, what, open(&app, kind, &query, header).await);
        }
    }
    app.server.stop().await;
}

#[actix_web::test]
async fn a_ticket_or_bearer_is_refused_even_next_to_a_valid_cookie() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let cookie = format!("clickgame_session={}", ada.token);
    for kind in ALL {
        let (status, _) = open(&app, kind, "", ("Cookie", &cookie)).await;
        assert!(
            [101, 200].contains(&status),
            "{kind:?}: the cookie alone is Ada ({status})"
        );
        // The explicit credential is the one that counts, and it is wrong.
        let query = format!("?ticket=t{}.{}", ada.id, "0".repeat(32));
        assert_refused(
            kind,
            "a forged ticket",
            open(&app, kind, &query, ("Cookie", &cookie)).await,
        );
    }
    app.server.stop().await;
}

#[actix_web::test]
async fn a_stale_session_cookie_watches_as_a_spectator_on_every_transport_and_cannot_click() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let (status, _) = app.post("/api/leave", Some(&ada.token), &json!({})).await;
    assert_eq!(status.as_u16(), 200);
    let cookie = format!("clickgame_session={}", ada.token);
    for kind in ALL {
        let (status, body) = open(&app, kind, "", ("Cookie", &cookie)).await;
        let want = if kind == Kind::Websocket { 101 } else { 200 };
        assert_eq!(status, want, "{kind:?}: {body}");
        if matches!(kind, Kind::Ajax | Kind::Longpoll) {
            assert_eq!(body["events"][0]["type"], "snapshot", "{kind:?}: {body}");
        }
    }
    let (_, snapshot) = app.get("/api/snapshot").await;
    assert_eq!(snapshot["players"], json!([]), "nobody was let back in");
    // The same stale cookie on a command is 401: that is how the page learns to join again.
    let mut res = app
        .client
        .post(app.url("/api/click"))
        .insert_header(("Cookie", cookie.as_str()))
        .send_json(&json!({"round": 1, "x": 1, "y": 1}))
        .await
        .unwrap();
    let body = parse(&res.body().await.unwrap());
    assert_error(res.status(), &body, 401, "unauthorized");
    app.server.stop().await;
}

#[actix_web::test]
async fn a_valid_ticket_or_bearer_still_opens_every_transport_as_its_player() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let bearer = format!("Bearer {}", ada.token);
    for kind in ALL {
        let (status, body) = open(&app, kind, "", ("Authorization", &bearer)).await;
        assert!([101, 200].contains(&status), "{kind:?}: {status} {body}");
        let t = ticket(&app, &ada).await;
        let (status, body) = open(&app, kind, &format!("?ticket={t}"), ("X-Nothing", "")).await;
        assert!([101, 200].contains(&status), "{kind:?}: {status} {body}");
        assert_eq!(
            transport_of_first_player(&app, kind.name()).await,
            kind.name(),
            "{kind:?}: the ticket's connection was Ada's"
        );
    }
    app.server.stop().await;
}
