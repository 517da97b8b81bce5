//! The write path of the streams (issue 15): a WebSocket is the body of its `101` response and
//! writes each event's shared frame; an SSE stream writes each event's shared block; both are
//! woken by the hub's bell. What must hold whatever the implementation: every event reaches
//! every stream once, in order, byte for byte the same; a client that stops reading costs a
//! bounded amount and is cut off after the send timeout while the others keep up; the closing
//! handshake ends with the server closing the TCP connection first (RFC 6455 §7.1.1); frames
//! split in fragments are joined, and broken UTF-8 is refused as soon as its bytes arrive.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clickgame::game::{Click, Transport};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::clients::{Downstream, Kind};
use crate::helpers::TestApp;

/// `n` missed clicks by `player`, published straight through the hub: a burst of events,
/// faster than any client could send them.
fn burst(app: &TestApp, player: u64, n: usize) {
    let round = app.server.hub.snapshot().round.expect("a round");
    // The board's far side from the target: a miss, which every client gets as `click_missed`.
    let far = |c: u32| if c > 500 { 0.0 } else { 1000.0 };
    let click = Click {
        round: round.number,
        x: far(round.x),
        y: far(round.y),
    };
    for _ in 0..n {
        let result = app.server.hub.click(player, click);
        assert!(result.is_ok(), "{result:?}");
    }
}

#[actix_web::test]
async fn a_burst_reaches_every_websocket_and_sse_stream_once_in_order_and_byte_identical() {
    let app = TestApp::spawn_with(|c| c.round_pause_ms = 0).await;
    let ada = app.join("Ada").await;
    let _ = app.open_round().await;
    let (_, snap) = app.get("/api/snapshot").await;
    let since = snap["seq"].as_u64();
    let epoch = snap["epoch"].as_str().map(str::to_string);
    let mut streams = Vec::new();
    for i in 0..40 {
        let kind = if i % 2 == 0 {
            Kind::Websocket
        } else {
            Kind::Sse
        };
        streams.push(Downstream::open(&app, kind, None, since, epoch.as_deref()).await);
    }
    // Let every WebSocket's `resume` arrive before the burst.
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    let mut seen: Vec<Vec<String>> = vec![Vec::new(); streams.len()];
    let first = since.expect("a seq") + 1;
    // Bursts of 200: under MAX_BACKLOG (256), past which a stream gets a snapshot instead.
    for _ in 0..3 {
        burst(&app, ada.id, 200);
        let last = app.server.hub.last_seq();
        for (i, stream) in streams.iter_mut().enumerate() {
            while stream.since < Some(last) {
                let raw = stream.next_raw().await;
                let v: Value = serde_json::from_str(&raw).unwrap();
                assert_eq!(
                    v["seq"].as_u64(),
                    Some(first + seen[i].len() as u64),
                    "stream {i} ({:?}): every seq once, in order",
                    stream.kind
                );
                seen[i].push(raw);
            }
        }
    }
    for (i, (stream, raws)) in streams.iter().zip(&seen).enumerate() {
        assert_eq!(raws.len(), 600);
        assert_eq!(stream.reconnects, 0, "stream {i}: nothing dropped it");
        assert!(
            raws == &seen[0],
            "stream {i} ({:?}) got other bytes than stream 0",
            stream.kind
        );
    }
    app.server.stop().await;
}

/// A raw WebSocket handshake for `/api/ws?since=0`, sent on a socket with a tiny receive
/// buffer; the caller decides whether to read.
async fn raw_websocket(addr: SocketAddr, query: &str, recv_buffer: Option<u32>) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!(
        "GET /api/ws{query} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: clickgame.v1\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

fn open_websockets(app: &TestApp) -> i64 {
    app.server
        .hub
        .metrics()
        .stats(Transport::Websocket)
        .open_connections
}

#[actix_web::test]
async fn a_websocket_that_stops_reading_is_cut_off_after_the_send_timeout_and_the_rest_keep_up() {
    let app = TestApp::spawn_with(|c| {
        c.round_pause_ms = 0;
        c.ws_send_timeout_ms = 300;
        c.history = 8192;
    })
    .await;
    let ada = app.join("Ada").await;
    let _ = app.open_round().await;
    let addr = app.server.http_addr;
    let mut stuck = raw_websocket(addr, "?since=0", Some(2048)).await;
    let since = app.server.hub.last_seq();
    let mut reader = Downstream::open(&app, Kind::Websocket, None, Some(since), None).await;
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(open_websockets(&app), 2);
    // Events until the stuck socket's buffers are full and its writes stop making progress;
    // the reader drains as it goes.
    let started = Instant::now();
    let mut sent = 0;
    while open_websockets(&app) == 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a socket that reads nothing is still open after 30 s"
        );
        burst(&app, ada.id, 200);
        sent += 200;
        while reader.since < Some(app.server.hub.last_seq()) {
            reader.next_raw().await;
        }
    }
    eprintln!(
        "non-reader cut off after {sent} events, {:?}",
        started.elapsed()
    );
    assert_eq!(open_websockets(&app), 1, "only the reader is left");
    // The reader kept up to the last event, on its first connection.
    burst(&app, ada.id, 1);
    let last = app.server.hub.last_seq();
    while reader.since < Some(last) {
        reader.next_raw().await;
    }
    assert_eq!(reader.reconnects, 0);
    // The stuck client finds its connection reset once it reads: the server did not keep its
    // unread bytes around.
    let mut buf = vec![0u8; 1 << 16];
    let end = loop {
        match actix_web::rt::time::timeout(Duration::from_secs(10), stuck.read(&mut buf)).await {
            Ok(Ok(0)) => break "end of stream",
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => break "reset",
            Ok(Err(e)) => panic!("{e:?}"),
            Err(_) => panic!("still open"),
        }
    };
    assert_eq!(end, "reset");
    app.server.stop().await;
}

/// A masked client frame with a payload under 126 bytes; `first` is FIN/RSV/opcode.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x5a, 0x11, 0xc3, 0x07];
    let mut f = vec![first, 0x80 | payload.len() as u8];
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

/// The server's side of a raw WebSocket: the `101` head, then unmasked frames.
struct Frames {
    stream: TcpStream,
    buf: Vec<u8>,
    upgraded: bool,
}

impl Frames {
    fn new(stream: TcpStream) -> Frames {
        Frames {
            stream,
            buf: Vec::new(),
            upgraded: false,
        }
    }

    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 4096];
        let n = actix_web::rt::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
            .await
            .expect("the server answers within 10 s")
            .expect("read");
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// The next server frame: (opcode, payload).
    async fn next(&mut self) -> (u8, Vec<u8>) {
        loop {
            if !self.upgraded {
                if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
                    self.buf.drain(..end + 4);
                    self.upgraded = true;
                    continue;
                }
            } else if self.buf.len() >= 2 {
                assert_eq!(self.buf[1] & 0x80, 0, "server frames are not masked");
                let (len, at) = match self.buf[1] & 0x7f {
                    126 if self.buf.len() >= 4 => (
                        usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])),
                        4,
                    ),
                    126 => (usize::MAX, 0),
                    127 => panic!("no event is that large"),
                    n => (usize::from(n), 2),
                };
                if len != usize::MAX && self.buf.len() >= at + len {
                    let opcode = self.buf[0] & 0x0f;
                    assert_eq!(self.buf[0] & 0xf0, 0x80, "final, no reserved bits");
                    let payload = self.buf[at..at + len].to_vec();
                    self.buf.drain(..at + len);
                    return (opcode, payload);
                }
            }
            assert!(self.fill().await > 0, "the connection ended mid-frame");
        }
    }

    /// Frames until a close; returns its code.
    async fn until_close(&mut self) -> u16 {
        loop {
            let (opcode, payload) = self.next().await;
            if opcode == 0x8 {
                return u16::from_be_bytes([payload[0], payload[1]]);
            }
        }
    }

    /// How long until the server ends the TCP connection (end of stream, not a reset), the
    /// client sending nothing more and not closing its side.
    async fn server_closes_within(&mut self, limit: Duration) -> Duration {
        let started = Instant::now();
        let mut chunk = [0u8; 4096];
        loop {
            match actix_web::rt::time::timeout(limit, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) => return started.elapsed(),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("the connection failed instead of closing: {e:?}"),
                Err(_) => panic!("the server did not close the connection within {limit:?}"),
            }
        }
    }
}

#[actix_web::test]
async fn a_client_close_is_echoed_and_then_the_server_closes_the_tcp_connection_first() {
    let app = TestApp::spawn().await;
    let mut ws = Frames::new(raw_websocket(app.server.http_addr, "", None).await);
    ws.stream
        .write_all(&frame(0x88, &1000u16.to_be_bytes()))
        .await
        .unwrap();
    assert_eq!(ws.until_close().await, 1000, "the client's code, echoed");
    // actix-http used to linger here for the client's end of stream, up to its 1 s disconnect
    // timeout; RFC 6455 §7.1.1 has the server close first, at once.
    let after = ws.server_closes_within(Duration::from_secs(5)).await;
    assert!(after < Duration::from_millis(900), "closed after {after:?}");
    app.server.stop().await;
}

#[actix_web::test]
async fn a_close_the_server_starts_waits_for_the_clients_close_then_closes_tcp_first() {
    let app = TestApp::spawn().await;
    let addr = app.server.http_addr;
    let mut answering = Frames::new(raw_websocket(addr, "?since=0", None).await);
    let mut silent = Frames::new(raw_websocket(addr, "?since=0", None).await);
    // Both are streaming (the snapshot arrived) before the lecturer drops everyone.
    assert_eq!(answering.next().await.0, 0x1);
    assert_eq!(silent.next().await.0, 0x1);
    app.server.hub.disconnect_all();
    assert_eq!(answering.until_close().await, 1012, "service restart");
    assert_eq!(silent.until_close().await, 1012);
    answering
        .stream
        .write_all(&frame(0x88, &1012u16.to_be_bytes()))
        .await
        .unwrap();
    let answered = answering.server_closes_within(Duration::from_secs(5)).await;
    assert!(
        answered < Duration::from_millis(900),
        "the handshake was complete: closed after {answered:?}"
    );
    // A client that never answers the close still sees the server close first, after the
    // closing wait.
    let waited = silent.server_closes_within(Duration::from_secs(10)).await;
    eprintln!("closed {answered:?} after the answer, {waited:?} without one");
    app.server.stop().await;
}

#[actix_web::test]
async fn a_fragmented_message_is_joined_and_broken_utf8_fails_as_soon_as_it_arrives() {
    let app = TestApp::spawn().await;
    let addr = app.server.http_addr;
    let mut ws = Frames::new(raw_websocket(addr, "", None).await);
    // `{"type":"nope"}` in three fragments, a ping between two of them.
    let mut bytes = frame(0x01, br#"{"type""#);
    bytes.extend(frame(0x89, b"between"));
    bytes.extend(frame(0x00, br#":"no"#));
    bytes.extend(frame(0x80, br#"pe"}"#));
    ws.stream.write_all(&bytes).await.unwrap();
    assert_eq!(
        ws.next().await,
        (0xA, b"between".to_vec()),
        "the ping's pong"
    );
    let (opcode, reply) = ws.next().await;
    assert_eq!(opcode, 0x1);
    let reply: Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(
        reply["error"], "bad_message",
        "the joined message was read: {reply}"
    );
    // A first fragment that is not UTF-8 (0xFF never is), and no last fragment ever: the
    // close comes without waiting for the rest of the message.
    ws.stream
        .write_all(&frame(0x01, b"{\"type\":\"\xff"))
        .await
        .unwrap();
    assert_eq!(ws.until_close().await, 1007);
    // The same inside one frame: its header announces 100 bytes, the first 8 arrive, and the
    // bad byte among them is enough.
    let mut ws = Frames::new(raw_websocket(addr, "", None).await);
    let key = [1u8, 2, 3, 4];
    let mut start = vec![0x81, 0x80 | 100];
    start.extend_from_slice(&key);
    start.extend(
        b"{\"a\":\"\xff"
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4]),
    );
    ws.stream.write_all(&start).await.unwrap();
    assert_eq!(ws.until_close().await, 1007);
    app.server.stop().await;
}
