//! Every spelling of an API path meets the Origin check, or names nothing at all.
//!
//! The attack (issue 9, item 1): the Origin check once looked at the raw path
//! (`starts_with("/api/")`) while the router matches the percent-decoded one, so
//! `POST /%61pi/click` with a foreign `Origin` and the victim's cookie was a counted click. Each
//! test below sends one family of spellings byte for byte (no client in between to tidy the
//! path), twice: without `Origin`, to learn whether the router reaches a handler with that
//! spelling (the table says which, so a change in actix's routing shows up here), and as the
//! attacker — foreign `Origin`, `Sec-Fetch-Site: cross-site`, the victim's cookie *and* Bearer
//! token. The attacker must get `403` or a JSON `404`, never a handler's answer; and the
//! victim's misses must count the clean requests only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{parse, Player, TestApp};

const EVIL: &str = "http://127.0.0.1:1"; // same site as the server, another origin

/// One reply to a raw request: status, head (lower-cased) and body.
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Value,
}

/// Sends `request` exactly as given and reads the reply: to the end (the request says
/// `Connection: close`), or only the head of a `101`, whose connection stays open.
pub async fn raw(addr: SocketAddr, request: String) -> Reply {
    actix_web::rt::task::spawn_blocking(move || {
        let mut tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        tcp.write_all(request.as_bytes()).expect("send");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = tcp.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if text.starts_with("HTTP/1.1 101") && text.contains("\r\n\r\n") {
                break;
            }
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        Reply {
            status,
            head: head.to_ascii_lowercase(),
            body: parse(body.as_bytes()),
        }
    })
    .await
    .expect("the raw request finished")
}

/// Whether the router sends a spelling to the API handler (learned without `Origin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Router {
    /// Reaches the handler: only the Origin check stands between the attacker and it.
    Handler,
    /// Matches no route: a JSON `404`, with or without `Origin`.
    Nothing,
}
use Router::{Handler, Nothing};

struct Victim {
    player: Player,
    round: u64,
    /// A point off the target, so a click is a miss and the round stays open.
    away: (u32, u32),
}

async fn victim(app: &TestApp) -> Victim {
    let player = app.join("Victim").await;
    let (round, x, _) = app.open_round().await;
    let away = if x < 500.0 { (999, 999) } else { (0, 0) };
    Victim {
        player,
        round,
        away,
    }
}

fn click_request(app: &TestApp, target: &str, v: &Victim, attacker: bool) -> String {
    let body = format!(
        r#"{{"round":{},"x":{},"y":{}}}"#,
        v.round, v.away.0, v.away.1
    );
    let mut req = format!(
        "POST {target} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\nAuthorization: Bearer {}\r\n",
        app.server.http_addr,
        body.len(),
        v.player.token
    );
    if attacker {
        req.push_str(&format!(
            "Origin: {EVIL}\r\nSec-Fetch-Site: same-site\r\nCookie: clickgame_session={}\r\n",
            v.player.token
        ));
    }
    req + "\r\n" + &body
}

fn misses(snapshot: &Value, id: u64) -> u64 {
    snapshot["players"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .map(|p| p["misses"].as_u64().unwrap())
        .unwrap()
}

/// Sends each spelling of `POST /api/click` clean and as the attacker; checks both answers
/// and that only the clean clicks counted.
async fn clicks_meet_the_check(family: &str, targets: &[(&str, Router)]) {
    let app = TestApp::spawn_with(|c| c.click_rate = 10_000).await;
    let v = victim(&app).await;
    let mut counted = 0;
    for &(target, router) in targets {
        let target = target.replace("{addr}", &app.server.http_addr.to_string());
        let clean = raw(
            app.server.http_addr,
            click_request(&app, &target, &v, false),
        )
        .await;
        match router {
            Handler => {
                assert_eq!(clean.status, 200, "{family}: {target} reaches the handler");
                assert_eq!(clean.body["result"], "miss", "{family}: {target}");
                counted += 1;
            }
            Nothing => {
                assert_eq!(clean.status, 404, "{family}: {target}: {}", clean.body);
                assert_eq!(clean.body["error"], "not_found", "{family}: {target}");
            }
        }
        let attack = raw(app.server.http_addr, click_request(&app, &target, &v, true)).await;
        assert!(
            matches!(attack.status, 403 | 404),
            "{family}: the attacker's {target} got {} {}",
            attack.status,
            attack.body
        );
        assert!(
            attack.head.contains("content-type: application/json"),
            "{family}: {target}: a JSON refusal"
        );
        if router == Handler {
            assert_eq!(
                attack.body["error"], "origin_not_allowed",
                "{family}: {target}"
            );
        }
    }
    let (_, snap) = app.get("/api/snapshot").await;
    assert_eq!(
        misses(&snap, v.player.id),
        counted,
        "{family}: only the clean clicks counted for the victim"
    );
    app.server.stop().await;
}

#[actix_web::test]
async fn percent_encoded_api_paths_meet_the_origin_check() {
    clicks_meet_the_check(
        "percent-encoding",
        &[
            ("/api/click", Handler),
            ("/%61pi/click", Handler),
            ("/%61%70%69/%63%6c%69%63%6b", Handler),
            ("/%61%70%69/%63%6C%69%63%6B", Handler),
            ("/api/%63lick", Handler),
            ("http://{addr}/%61pi/click", Handler),
            // Double encoding is decoded once: `%2561` is `%61`, which names nothing.
            ("/%2561pi/click", Nothing),
            // An encoded slash is never a separator.
            ("/api%2Fclick", Nothing),
            ("/api/click%2F", Nothing),
            ("/api/click%00", Nothing),
        ],
    )
    .await;
}

#[actix_web::test]
async fn api_paths_in_another_case_name_nothing() {
    clicks_meet_the_check(
        "case",
        &[
            ("/API/click", Nothing),
            ("/Api/click", Nothing),
            ("/api/CLICK", Nothing),
            ("/%41PI/click", Nothing),
        ],
    )
    .await;
}

#[actix_web::test]
async fn dot_segments_are_not_resolved_so_they_name_nothing() {
    clicks_meet_the_check(
        "dot segments",
        &[
            ("/./api/click", Nothing),
            ("/x/../api/click", Nothing),
            ("/api/./click", Nothing),
            ("/api/x/../click", Nothing),
            ("/%2e/api/click", Nothing),
            ("/x/%2e%2e/api/click", Nothing),
            ("/.%2e/api/click", Nothing),
        ],
    )
    .await;
}

#[actix_web::test]
async fn duplicate_and_trailing_slashes_name_nothing() {
    clicks_meet_the_check(
        "slashes",
        &[
            ("//api/click", Nothing),
            ("///api/click", Nothing),
            ("/api//click", Nothing),
            ("/api/click/", Nothing),
            ("/api/click//", Nothing),
        ],
    )
    .await;
}

fn upgrade_request(app: &TestApp, target: &str, token: &str, origin: Option<&str>) -> String {
    let mut req = format!(
        "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: clickgame.v1\r\nCookie: clickgame_session={token}\r\n",
        app.server.http_addr
    );
    if let Some(origin) = origin {
        req.push_str(&format!("Origin: {origin}\r\n"));
    }
    req + "\r\n"
}

#[actix_web::test]
async fn no_spelling_of_the_websocket_path_upgrades_a_foreign_origin() {
    let app = TestApp::spawn().await;
    let v = app.join("Victim").await;
    for (target, router) in [
        ("/api/ws", Handler),
        ("/%61pi/ws", Handler),
        ("/api/%77s", Handler),
        ("/%61%70%69/%77%73", Handler),
        ("/%2561pi/ws", Nothing),
        ("/API/ws", Nothing),
        ("/./api/ws", Nothing),
        ("/x/../api/ws", Nothing),
        ("//api/ws", Nothing),
        ("/api//ws", Nothing),
        ("/api/ws/", Nothing),
        ("/api%2Fws", Nothing),
    ] {
        let clean = raw(
            app.server.http_addr,
            upgrade_request(&app, target, &v.token, None),
        )
        .await;
        match router {
            Handler => assert_eq!(clean.status, 101, "{target} reaches the handler"),
            Nothing => assert_eq!(
                (clean.status, clean.body["error"].as_str()),
                (404, Some("not_found")),
                "{target}"
            ),
        }
        let attack = raw(
            app.server.http_addr,
            upgrade_request(&app, target, &v.token, Some(EVIL)),
        )
        .await;
        assert!(
            matches!(attack.status, 403 | 404),
            "the attacker's {target} got {} {}",
            attack.status,
            attack.body
        );
        if router == Handler {
            assert_eq!(attack.body["error"], "origin_not_allowed", "{target}");
        }
    }
    app.server.stop().await;
}

#[actix_web::test]
async fn the_websocket_echo_and_metrics_refuse_a_foreign_origin_too() {
    let app = TestApp::spawn_with(|c| c.ws_echo_path = Some("/echo".into())).await;
    for target in ["/echo", "/%65cho"] {
        let clean = raw(
            app.server.http_addr,
            upgrade_request(&app, target, "x", None),
        )
        .await;
        assert_eq!(
            clean.status, 101,
            "{target} without Origin: Autobahn's case"
        );
        let attack = raw(
            app.server.http_addr,
            upgrade_request(&app, target, "x", Some(EVIL)),
        )
        .await;
        assert_eq!(attack.status, 403, "{target}");
        assert_eq!(attack.body["error"], "origin_not_allowed");
    }
    let get = |origin: Option<&str>| {
        format!(
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{}\r\n",
            app.server.http_addr,
            origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"))
        )
    };
    assert_eq!(raw(app.server.http_addr, get(None)).await.status, 200);
    let attack = raw(app.server.http_addr, get(Some(EVIL))).await;
    assert_eq!(attack.status, 403);
    assert_eq!(attack.body["error"], "origin_not_allowed");
    app.server.stop().await;
}

#[actix_web::test]
async fn other_methods_on_pages_and_unservable_file_paths_get_a_json_404() {
    let app = TestApp::spawn().await;
    for request in [
        "POST /index.html HTTP/1.1",
        "DELETE / HTTP/1.1",
        "GET /./index.html HTTP/1.1",
        "GET /js%2Fmain.js HTTP/1.1",
        "GET /.git/config HTTP/1.1",
    ] {
        let reply = raw(
            app.server.http_addr,
            format!(
                "{request}\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                app.server.http_addr
            ),
        )
        .await;
        assert_eq!(reply.status, 404, "{request}: {}", reply.body);
        assert_eq!(reply.body["error"], "not_found", "{request}");
        assert!(
            reply.head.contains("content-security-policy"),
            "{request}: the security headers still apply"
        );
    }
    let page = raw(
        app.server.http_addr,
        format!(
            "GET /js/main.js HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            app.server.http_addr
        ),
    )
    .await;
    assert_eq!(page.status, 200, "the pages are still served");
    app.server.stop().await;
}
