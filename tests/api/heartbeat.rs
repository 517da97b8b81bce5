//! Heartbeats and timeouts: pings and the silent-client cut-off on WebSockets, keep-alive
//! comments on SSE, and credentials refused before an upgrade.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::TestApp;

#[actix_web::test]
async fn the_server_pings_and_drops_a_websocket_that_never_answers() {
    let app = TestApp::spawn_with(|c| {
        c.ws_ping_interval_ms = 50;
        c.ws_timeout_ms = 300;
    })
    .await;
    let mut raw = tokio::net::TcpStream::connect(app.server.http_addr)
        .await
        .unwrap();
    let request = format!(
        "GET /api/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: clickgame.v1\r\n\r\n",
        app.server.http_addr
    );
    raw.write_all(request.as_bytes()).await.unwrap();
    // Read everything until the server closes the TCP connection.
    let mut bytes = Vec::new();
    let read =
        actix_web::rt::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut bytes)).await;
    assert!(read.is_ok(), "the silent socket was closed by the server");
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(bytes.starts_with(b"HTTP/1.1 101"));
    let frames = &bytes[head_end..];
    // Unmasked server frames: 0x89 = FIN + ping; 0x88 = FIN + close, code 1008 (0x03F0).
    assert!(
        frames.windows(2).any(|w| w == [0x89, 0x00]),
        "pings were sent: {frames:x?}"
    );
    let close = frames
        .windows(4)
        .position(|w| w[0] == 0x88)
        .expect("a close frame");
    assert_eq!(&frames[close + 2..close + 4], &[0x03, 0xF0], "close 1008");
    app.server.stop().await;
}

#[actix_web::test]
async fn an_idle_sse_stream_carries_keep_alive_comments() {
    let app = TestApp::spawn_with(|c| c.sse_heartbeat_ms = 50).await;
    let last = app.get("/api/snapshot").await.1["seq"].as_u64().unwrap();
    let res = app
        .client
        .get(app.url(&format!("/api/sse?since={last}")))
        .send()
        .await
        .unwrap();
    let mut body = Box::pin(res);
    let mut text = String::new();
    let found = actix_web::rt::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(chunk)) = body.next().await {
            text.push_str(std::str::from_utf8(&chunk).unwrap());
            if text.matches(": keep-alive\n\n").count() >= 2 {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "{text}");
    app.server.stop().await;
}

#[actix_web::test]
async fn a_websocket_with_an_invalid_token_or_a_spent_ticket_gets_401_before_the_upgrade() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    let err = app
        .client
        .ws(app.url("/api/ws"))
        .protocols(["clickgame.v1"])
        .bearer_auth("1.ffffffffffffffffffffffffffffffff")
        .connect()
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:?}").contains("401"), "{err:?}");
    let (_, body) = app
        .post("/api/ticket", Some(&ada.token), &serde_json::json!({}))
        .await;
    let ticket = body["ticket"].as_str().unwrap().to_string();
    let url = app.url(&format!("/api/ws?ticket={ticket}"));
    let (res, _socket) = app
        .client
        .ws(&url)
        .protocols(["clickgame.v1"])
        .connect()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 101, "the first use works");
    let err = app
        .client
        .ws(&url)
        .protocols(["clickgame.v1"])
        .connect()
        .await
        .err()
        .expect("spent");
    assert!(format!("{err:?}").contains("401"), "{err:?}");
    // No credential at all: a spectator, welcome.
    let (res, _spectator) = app
        .client
        .ws(app.url("/api/ws"))
        .protocols(["clickgame.v1"])
        .connect()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 101);
    app.server.stop().await;
}
