//! The lecture's WSS best practices, one test each, asserting the exact status or close code.

use std::time::Duration;

use actix_web::web::Bytes;
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;

use crate::clients::{Downstream, Kind};
use crate::helpers::{assert_error, parse, TestApp};

const EVIL: &str = "https://evil.example";

/// Waits for the server's close frame and returns its code.
async fn close_code(framed: &mut actix_codec::Framed<awc::BoxedSocket, ws::Codec>) -> u16 {
    let deadline = actix_web::rt::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = framed.next().await {
            match frame {
                Ok(ws::Frame::Close(reason)) => return reason.map(|r| u16::from(r.code)),
                Ok(_) => continue,
                Err(e) => panic!("websocket error before close: {e}"),
            }
        }
        None
    });
    deadline
        .await
        .expect("closed within 10 s")
        .expect("a close frame with a code")
}

async fn game_socket(
    app: &TestApp,
    token: Option<&str>,
) -> actix_codec::Framed<awc::BoxedSocket, ws::Codec> {
    let mut req = app
        .client
        .ws(app.url("/api/ws"))
        .protocols(["clickgame.v1"]);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.connect().await.expect("upgrade").1
}

#[actix_web::test]
async fn a_foreign_origin_is_refused_with_403_on_every_api_entry_and_gets_no_upgrade() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/poll",
        "/api/longpoll?since=0",
        "/api/sse",
        "/api/snapshot",
    ] {
        let mut res = app
            .client
            .get(app.url(path))
            .insert_header(("Origin", EVIL))
            .send()
            .await
            .unwrap();
        let body = parse(&res.body().await.unwrap());
        assert_error(res.status(), &body, 403, "origin_not_allowed");
        assert!(res.headers().get("access-control-allow-origin").is_none());
    }
    let mut res = app
        .client
        .post(app.url("/api/join"))
        .insert_header(("Origin", EVIL))
        .send_json(&json!({"name": "Mallory"}))
        .await
        .unwrap();
    let body = parse(&res.body().await.unwrap());
    assert_error(res.status(), &body, 403, "origin_not_allowed");
    // The WebSocket handshake: refused before the upgrade, so no socket is ever opened.
    let err = app
        .client
        .ws(app.url("/api/ws"))
        .origin(EVIL)
        .protocols(["clickgame.v1"])
        .connect()
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:?}").contains("403"), "{err:?}");
    // "null" (sandboxed frames, file://) is foreign too.
    let res = app
        .client
        .get(app.url("/api/poll"))
        .insert_header(("Origin", "null"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let (_, snap) = app.get("/api/snapshot").await;
    assert!(
        snap["players"].as_array().unwrap().is_empty(),
        "Mallory never joined"
    );
    app.server.stop().await;
}

#[actix_web::test]
async fn the_servers_own_origin_an_allowed_extra_origin_and_no_origin_are_accepted() {
    let app =
        TestApp::spawn_with(|c| c.allowed_origins = vec!["https://lecture.example".into()]).await;
    let own = app.origin();
    let localhost = own.replace("127.0.0.1", "localhost");
    for origin in [own.as_str(), localhost.as_str(), "https://lecture.example"] {
        let res = app
            .client
            .get(app.url("/api/poll"))
            .insert_header(("Origin", origin))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "{origin}");
        let (res, _) = app
            .client
            .ws(app.url("/api/ws"))
            .origin(origin)
            .protocols(["clickgame.v1"])
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{origin}: {e:?}"));
        assert_eq!(res.status().as_u16(), 101);
    }
    // A different port on the same host is a different origin.
    let other_port = format!("http://127.0.0.1:{}", app.server.http_addr.port() + 1);
    let res = app
        .client
        .get(app.url("/api/poll"))
        .insert_header(("Origin", other_port))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    // No Origin at all: a non-browser client, which cannot ride on a victim's cookie.
    let res = app.client.get(app.url("/api/poll")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    app.server.stop().await;
}

#[actix_web::test]
async fn a_cross_site_post_is_refused_even_without_origin() {
    let app = TestApp::spawn().await;
    let mut res = app
        .client
        .post(app.url("/api/join"))
        .insert_header(("Sec-Fetch-Site", "cross-site"))
        .send_json(&json!({"name": "Mallory"}))
        .await
        .unwrap();
    let body = parse(&res.body().await.unwrap());
    assert_error(res.status(), &body, 403, "cross_site_request");
    let res = app
        .client
        .post(app.url("/api/join"))
        .insert_header(("Sec-Fetch-Site", "same-origin"))
        .send_json(&json!({"name": "Alice"}))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    app.server.stop().await;
}

#[actix_web::test]
async fn the_session_cookie_is_httponly_and_samesite_strict_and_not_secure_on_plain_http() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(app.url("/api/join"))
        .send_json(&json!({"name": "Ada"}))
        .await
        .unwrap();
    let cookie = res
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("clickgame_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP cannot set a Secure cookie: {cookie}"
    );
    // The cookie authenticates like the Bearer token does.
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("clickgame_session=")
        .to_string();
    let (round, _, _) = app.open_round().await;
    let res = app
        .client
        .post(app.url("/api/click"))
        .insert_header(("Cookie", format!("clickgame_session={value}")))
        .send_json(&json!({"round": round, "x": 0, "y": 0}))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    app.server.stop().await;
}

#[actix_web::test]
async fn pages_carry_a_strict_csp_and_the_other_security_headers_but_no_hsts_over_http() {
    let app = TestApp::spawn().await;
    for path in ["/", "/api/snapshot", "/api/nothing"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        let h = res.headers();
        let csp = h
            .get("content-security-policy")
            .expect("CSP")
            .to_str()
            .unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer");
        assert!(
            h.get("strict-transport-security").is_none(),
            "HSTS only over HTTPS"
        );
        assert!(h.get("access-control-allow-origin").is_none());
    }
    app.server.stop().await;
}

#[actix_web::test]
async fn clicks_over_the_rate_limit_get_429_with_retry_after() {
    let app = TestApp::spawn_with(|c| c.click_rate = 5).await;
    let ada = app.join("Ada").await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..8 {
        let mut res = app
            .client
            .post(app.url("/api/click"))
            .bearer_auth(&ada.token)
            .send_json(&json!({"round": 1, "x": 0, "y": 0}))
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        if res.status().as_u16() == 429 {
            retry_after = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let body = parse(&res.body().await.unwrap());
            assert_eq!(body["error"], "rate_limited");
        }
    }
    assert_eq!(&statuses[..5], &[200; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    app.server.stop().await;
}

#[actix_web::test]
async fn long_lived_connections_per_ip_are_capped_with_429() {
    let app = TestApp::spawn_with(|c| c.max_conns_per_ip = 2).await;
    let _a = Downstream::open(&app, Kind::Sse, None, None, None).await;
    let _b = Downstream::open(&app, Kind::Websocket, None, None, None).await;
    let mut res = app.client.get(app.url("/api/sse")).send().await.unwrap();
    let body = parse(&res.body().await.unwrap());
    assert_error(res.status(), &body, 429, "too_many_connections");
    let err = app
        .client
        .ws(app.url("/api/ws"))
        .protocols(["clickgame.v1"])
        .connect()
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:?}").contains("429"), "{err:?}");
    // Short polls are not long-lived and still work.
    assert_eq!(app.get("/api/poll").await.0.as_u16(), 200);
    drop(_b);
    // The slot frees once the server notices the socket is gone.
    let mut ok = false;
    for _ in 0..100 {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        if app
            .client
            .ws(app.url("/api/ws"))
            .protocols(["clickgame.v1"])
            .connect()
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
    }
    assert!(ok, "a closed WebSocket gives its slot back");
    app.server.stop().await;
}

#[actix_web::test]
async fn websocket_violations_close_with_the_rfc_6455_codes() {
    let app = TestApp::spawn().await;

    let mut s = game_socket(&app, None).await;
    s.send(ws::Message::Text("x".repeat(4097).into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut s).await, 1009, "over 4 KiB");

    let mut s = game_socket(&app, None).await;
    s.send(ws::Message::Binary(Bytes::from_static(b"\x00\x01")))
        .await
        .unwrap();
    assert_eq!(close_code(&mut s).await, 1003, "binary");

    let mut s = game_socket(&app, None).await;
    s.send(ws::Message::Continuation(actix_http::ws::Item::FirstText(
        Bytes::from_static(b"{\"type\":\xff"),
    )))
    .await
    .unwrap();
    s.send(ws::Message::Continuation(actix_http::ws::Item::Last(
        Bytes::from_static(b"}"),
    )))
    .await
    .unwrap();
    assert_eq!(close_code(&mut s).await, 1007, "invalid UTF-8");

    let mut s = game_socket(&app, None).await;
    for i in 0..10 {
        s.send(ws::Message::Text(format!("not json {i}").into()))
            .await
            .unwrap();
    }
    let mut errors = 0;
    let code = loop {
        match s.next().await.expect("frame").expect("ok frame") {
            ws::Frame::Text(t) => {
                let v: serde_json::Value = serde_json::from_slice(&t).unwrap();
                assert_eq!(v["error"], "bad_message");
                errors += 1;
            }
            ws::Frame::Close(r) => break u16::from(r.unwrap().code),
            _ => {}
        }
    };
    assert_eq!(
        (errors, code),
        (9, 1008),
        "nine error replies, then 1008 on the tenth"
    );
    app.server.stop().await;
}

#[actix_web::test]
async fn websocket_clicks_over_the_rate_limit_get_an_error_then_1008_if_it_goes_on() {
    let app = TestApp::spawn_with(|c| c.click_rate = 3).await;
    let ada = app.join("Ada").await;
    app.open_round().await;
    let mut s = game_socket(&app, Some(&ada.token)).await;
    for i in 0..20 {
        let click = json!({"type": "click", "id": i, "round": 1, "x": 0, "y": 0});
        if s.send(ws::Message::Text(click.to_string().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut results = Vec::new();
    let code = loop {
        match s.next().await.expect("frame").expect("ok frame") {
            ws::Frame::Text(t) => {
                let v: serde_json::Value = serde_json::from_slice(&t).unwrap();
                results.push(
                    v["result"]
                        .as_str()
                        .or(v["error"].as_str())
                        .unwrap()
                        .to_string(),
                );
            }
            ws::Frame::Close(r) => break u16::from(r.unwrap().code),
            _ => {}
        }
    };
    assert_eq!(code, 1008);
    assert_eq!(
        results
            .iter()
            .filter(|r| *r == "miss" || *r == "late")
            .count(),
        3,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|r| *r == "rate_limited").count(),
        9,
        "{results:?}"
    );
    app.server.stop().await;
}

#[actix_web::test]
async fn the_bearer_scheme_is_matched_in_any_case_for_players_and_the_lecturer() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let (round, _, _) = app.open_round().await;
    for scheme in ["Bearer ", "bearer ", "BEARER ", "bEaReR   "] {
        let mut res = app
            .client
            .post(app.url("/api/click"))
            .insert_header(("Authorization", format!("{scheme}{}", ada.token)))
            .send_json(&json!({"round": round, "x": 0, "y": 0}))
            .await
            .unwrap();
        let body = parse(&res.body().await.unwrap());
        assert_eq!(res.status().as_u16(), 200, "{scheme:?}: {body}");
        let res = app
            .client
            .post(app.url("/api/admin/pause"))
            .insert_header((
                "Authorization",
                format!("{scheme}{}", app.server.admin_token),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "admin with {scheme:?}");
    }
    // Other schemes, or a token with no scheme, are no Bearer credential.
    for value in [
        format!("Basic {}", ada.token),
        ada.token.clone(),
        format!("Bearer{}", ada.token),
    ] {
        let mut res = app
            .client
            .post(app.url("/api/click"))
            .insert_header(("Authorization", value.as_str()))
            .send_json(&json!({"round": round, "x": 0, "y": 0}))
            .await
            .unwrap();
        let body = parse(&res.body().await.unwrap());
        assert_error(res.status(), &body, 401, "unauthorized");
    }
    app.server.stop().await;
}
