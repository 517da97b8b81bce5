//! How a WebSocket ends when the client sends a frame RFC 6455 forbids right behind good
//! messages (issue 15 point 4): the good messages are answered first, then the close comes.

use actix_codec::{Decoder, Encoder, Framed};
use actix_web::web::{Bytes, BytesMut};
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;

use crate::helpers::TestApp;

/// Passes raw bytes out and decodes the server's (unmasked) frames in.
struct RawCodec(ws::Codec);

impl Encoder<Bytes> for RawCodec {
    type Error = actix_http::ws::ProtocolError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), Self::Error> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ws::Frame;
    type Error = actix_http::ws::ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<ws::Frame>, Self::Error> {
        self.0.decode(src)
    }
}

/// A masked client frame with a payload under 126 bytes; `first` is FIN/RSV/opcode.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![first, 0x80 | payload.len() as u8];
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

/// Sends `bytes` in one write on a fresh spectator socket and returns what came back, in
/// order: `error` codes of replies, then the close code.
async fn replies_then_close(app: &TestApp, bytes: Vec<u8>) -> (Vec<String>, u16) {
    let (_, framed) = app
        .client
        .ws(app.url("/api/ws"))
        .protocols(["clickgame.v1"])
        .connect()
        .await
        .expect("handshake");
    let mut framed: Framed<_, RawCodec> = framed.into_map_codec(RawCodec);
    framed.send(Bytes::from(bytes)).await.expect("send");
    let mut replies = Vec::new();
    loop {
        match framed.next().await {
            Some(Ok(ws::Frame::Text(t))) => {
                let v: Value = serde_json::from_slice(&t).expect("a JSON reply");
                replies.push(v["error"].as_str().unwrap_or("?").to_string());
            }
            Some(Ok(ws::Frame::Close(reason))) => {
                return (replies, reason.map_or(1005, |r| u16::from(r.code)));
            }
            Some(Ok(_)) => {}
            other => panic!("expected replies and a close frame, got {other:?}"),
        }
    }
}

#[actix_web::test]
async fn messages_ahead_of_a_forbidden_frame_are_answered_before_the_close() {
    let app = TestApp::spawn().await;
    for (what, bad) in [
        ("reserved bits set", frame(0xC1, b"x")),
        ("a reserved opcode", frame(0x83, b"x")),
    ] {
        let mut bytes = frame(0x81, b"not json");
        bytes.extend(frame(0x81, br#"{"type":"nope"}"#));
        bytes.extend(bad);
        let (replies, code) = replies_then_close(&app, bytes).await;
        assert_eq!(
            replies,
            ["bad_message", "bad_message"],
            "{what}: both messages before it get their reply"
        );
        assert_eq!(
            code, 1002,
            "{what}: then the protocol error closes the socket"
        );
    }
}

#[actix_web::test]
async fn nothing_after_a_misplaced_continuation_is_answered() {
    let app = TestApp::spawn().await;
    // A continuation with nothing to continue, then a message that must not be handled.
    let mut bytes = frame(0x80, b"orphan");
    bytes.extend(frame(0x81, b"not json"));
    let (replies, code) = replies_then_close(&app, bytes).await;
    assert!(
        replies.is_empty(),
        "answered after the bad frame: {replies:?}"
    );
    assert_eq!(code, 1002);
}

/// The `rule` refusal count in `/metrics`.
async fn refusals(app: &TestApp, rule: &str) -> u64 {
    let (_, metrics) = app.get("/metrics").await;
    let text = metrics.as_str().expect("metrics text").to_string();
    let prefix = format!("clickgame_refusals_total{{rule=\"{rule}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
}

/// Waits until the server has noticed that every WebSocket closed.
async fn until_no_websocket_is_open(app: &TestApp) {
    for _ in 0..100 {
        let (_, stats) = app.get("/api/stats").await;
        if stats["transports"]["websocket"]["open_connections"] == 0 {
            return;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the server still counts an open WebSocket");
}

#[actix_web::test]
async fn a_socket_that_vanishes_without_a_close_frame_is_no_refusal() {
    // A phone that loses the room's Wi-Fi, a laptop lid closed, a tab killed: the TCP
    // connection ends with no close frame, as RFC 6455 §7.1.5 expects (1006, "abnormal").
    // Nobody sent anything wrong, so the defence log and /metrics must not call it a refusal —
    // in a lecture they would fill with "input 1002" entries that teach the wrong lesson.
    let app = TestApp::spawn().await;
    let input_before = refusals(&app, "input").await;
    for (what, bytes) in [
        ("right after the handshake", Vec::new()),
        (
            "in the middle of a frame",
            frame(0x81, br#"{"type":"resume"}"#)[..9].to_vec(),
        ),
    ] {
        let (_, framed) = app
            .client
            .ws(app.url("/api/ws"))
            .protocols(["clickgame.v1"])
            .connect()
            .await
            .expect("handshake");
        let mut framed: Framed<_, RawCodec> = framed.into_map_codec(RawCodec);
        if !bytes.is_empty() {
            framed.send(Bytes::from(bytes)).await.expect("send");
        }
        // Dropping the connection closes the TCP stream: no close frame.
        drop(framed);
        until_no_websocket_is_open(&app).await;
        assert_eq!(
            refusals(&app, "input").await,
            input_before,
            "{what}: a vanished client is counted as an input refusal"
        );
    }
    // The counter itself works: a real protocol error still counts.
    let (_, code) = replies_then_close(&app, frame(0x80, b"orphan")).await;
    assert_eq!(code, 1002);
    until_no_websocket_is_open(&app).await;
    assert_eq!(refusals(&app, "input").await, input_before + 1);
}
