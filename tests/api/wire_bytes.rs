//! Bytes that cross the wire: `/api/stats`' `bytes_written` is what the server wrote to the
//! socket for each transport — response heads, chunked framing, WebSocket frame headers, TLS
//! records — checked byte for byte against what a raw client received, and long polling's cost
//! per event against SSE's and the WebSocket's for the same events.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslVersion};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::clients::{Downstream, Kind};
use crate::helpers::TestApp;

/// A client on a bare TCP socket that keeps every byte it received.
struct Raw {
    io: TcpStream,
    received: Vec<u8>,
}

impl Raw {
    async fn connect(app: &TestApp) -> Raw {
        Raw {
            io: TcpStream::connect(app.server.http_addr).await.unwrap(),
            received: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    /// Reads until `done(all bytes so far)` holds (within 10 s).
    async fn read_until(&mut self, done: impl Fn(&[u8]) -> bool) {
        actix_web::rt::time::timeout(Duration::from_secs(10), async {
            let mut buf = [0u8; 4096];
            while !done(&self.received) {
                let n = self.io.read(&mut buf).await.unwrap();
                assert!(n > 0, "closed early: {}", self.text());
                self.received.extend_from_slice(&buf[..n]);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("not in 10 s; so far: {}", self.text()));
    }

    /// Reads until the server closes the connection.
    async fn read_to_end(&mut self) {
        actix_web::rt::time::timeout(Duration::from_secs(10), async {
            self.io.read_to_end(&mut self.received).await.unwrap()
        })
        .await
        .expect("the server closes within 10 s");
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.received).into_owned()
    }

    /// The length of the response head (status line and headers, with the blank line).
    fn head_len(&self) -> usize {
        let text = self.text();
        text.find("\r\n\r\n").expect("a complete head") + 4
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `/api/stats` for one transport.
async fn stats(app: &TestApp, transport: &str) -> Value {
    let (_, stats) = app.get("/api/stats").await;
    stats["transports"][transport].clone()
}

fn num(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// A new event for everybody: somebody joins.
async fn an_event(app: &TestApp, n: usize) {
    app.join(&format!("Guest {n}")).await;
}

/// A client's first WebSocket frame to the server, masked as RFC 6455 requires.
fn masked_text_frame(text: &str) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    assert!(text.len() < 126);
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// The server's (unmasked) frames in `bytes`, as (header length, payload).
fn server_frames(bytes: &[u8]) -> Vec<(usize, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at + 2 <= bytes.len() {
        let (header, len) = match bytes[at + 1] & 0x7f {
            126 if at + 4 <= bytes.len() => (
                4,
                usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]])),
            ),
            126 => break,
            127 => panic!("no 64-bit frames here"),
            n => (2, usize::from(n)),
        };
        if at + header + len > bytes.len() {
            break;
        }
        frames.push((header, bytes[at + header..at + header + len].to_vec()));
        at += header + len;
    }
    frames
}

#[actix_web::test]
async fn the_server_counts_every_byte_a_raw_client_received_heads_and_framing_included() {
    let app = TestApp::spawn().await;

    // AJAX: one poll, its whole response, head and all.
    let mut poll = Raw::connect(&app).await;
    poll.send(b"GET /api/poll?since=0 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await;
    poll.read_to_end().await;
    let ajax = stats(&app, "ajax").await;
    assert_eq!(
        num(&ajax, "bytes_written"),
        poll.received.len() as u64,
        "{ajax}"
    );
    assert_eq!(
        num(&ajax, "payload_bytes"),
        (poll.received.len() - poll.head_len()) as u64,
        "the payload is the body: {ajax}"
    );
    assert!(poll.head_len() > 200, "a real head: {}", poll.text());
    assert_eq!(
        num(&ajax, "bytes_estimated"),
        0,
        "HTTP/1.1 is counted, not estimated"
    );

    // Long polling: a parked request, answered by the next event.
    let since = app.server.hub.last_seq();
    let mut long = Raw::connect(&app).await;
    long.send(
        format!("GET /api/longpoll?since={since} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    // The request must be parked before the event, or it is a plain poll.
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    an_event(&app, 1).await;
    long.read_to_end().await;
    let lp = stats(&app, "longpoll").await;
    assert_eq!(
        num(&lp, "bytes_written"),
        long.received.len() as u64,
        "{lp}"
    );
    assert!(long.text().contains("Guest 1"), "{}", long.text());

    // SSE: the head once, the retry line, then each event as a chunk of the stream.
    let since = app.server.hub.last_seq();
    let mut sse = Raw::connect(&app).await;
    sse.send(format!("GET /api/sse?since={since} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .await;
    sse.read_until(|b| contains(b, b"retry: ")).await;
    for n in 2..=3 {
        an_event(&app, n).await;
        let name = format!("Guest {n}\"");
        sse.read_until(|b| contains(b, name.as_bytes()) && b.ends_with(b"\n\n\r\n"))
            .await;
    }
    let s = stats(&app, "sse").await;
    assert_eq!(num(&s, "bytes_written"), sse.received.len() as u64, "{s}");
    assert_eq!(num(&s, "events_delivered"), 2, "{s}");
    assert!(
        num(&s, "bytes_written") > num(&s, "payload_bytes") + sse.head_len() as u64,
        "head and chunked framing on top of the blocks: {s}"
    );

    // WebSocket: the 101 head, then frames with their 2-byte headers.
    let since = app.server.hub.last_seq();
    let mut ws = Raw::connect(&app).await;
    ws.send(
        b"GET /api/ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Protocol: clickgame.v1\r\n\r\n",
    )
    .await;
    ws.read_until(|b| contains(b, b"\r\n\r\n")).await;
    assert!(ws.text().starts_with("HTTP/1.1 101"), "{}", ws.text());
    let head = ws.head_len();
    ws.send(&masked_text_frame(&format!(
        r#"{{"type":"resume","since":{since}}}"#
    )))
    .await;
    an_event(&app, 4).await;
    ws.read_until(|b| server_frames(&b[head..]).len() == 1)
        .await;
    let frames = server_frames(&ws.received[head..]);
    assert_eq!(frames[0].0, 2, "a short text frame has a 2-byte header");
    let w = stats(&app, "websocket").await;
    assert_eq!(num(&w, "bytes_written"), ws.received.len() as u64, "{w}");
    assert_eq!(
        num(&w, "bytes_written"),
        (head + 2) as u64 + num(&w, "payload_bytes"),
        "101 head + frame header + payload: {w}"
    );
    app.server.stop().await;
}

#[actix_web::test]
async fn long_polling_pays_a_response_head_per_event_and_costs_more_per_event_than_sse_and_websocket(
) {
    let app = TestApp::spawn().await;
    // The first round is on the board: from now on, only the joins below happen.
    app.open_round().await;
    let since = Some(app.server.hub.last_seq());
    let mut streams = Vec::new();
    for kind in [Kind::Longpoll, Kind::Sse, Kind::Websocket] {
        streams.push(Downstream::open(&app, kind, None, since, None).await);
    }
    // Ten events, one at a time: every client has each before the next happens.
    for n in 0..10 {
        an_event(&app, n).await;
        for stream in &mut streams {
            stream.until(|v| v["type"] == "player_joined").await;
        }
    }
    let per_event = |s: &Value| num(s, "bytes_written") as f64 / num(s, "events_delivered") as f64;
    let (lp, sse, ws) = (
        stats(&app, "longpoll").await,
        stats(&app, "sse").await,
        stats(&app, "websocket").await,
    );
    for s in [&lp, &sse, &ws] {
        assert_eq!(num(s, "events_delivered"), 10, "{s}");
    }
    let answers = num(&lp, "requests");
    let heads = (num(&lp, "bytes_written") - num(&lp, "payload_bytes")) as f64 / answers as f64;
    assert!(
        heads > 200.0,
        "each long poll answer carries a head ({heads:.0} B): {lp}"
    );
    assert!(
        per_event(&lp) > per_event(&sse) && per_event(&lp) > per_event(&ws),
        "bytes per event: long polling {:.0}, SSE {:.0}, WebSocket {:.0}",
        per_event(&lp),
        per_event(&sse),
        per_event(&ws)
    );
    app.server.stop().await;
}

/// A blocking socket that counts the bytes it reads, under an openssl client.
#[derive(Debug)]
struct CountingTcp {
    io: std::net::TcpStream,
    read: Arc<AtomicUsize>,
}

impl Read for CountingTcp {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.io.read(buf)?;
        self.read.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }
}

impl Write for CountingTcp {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.io.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.io.flush()
    }
}

#[actix_web::test]
async fn over_https_the_count_includes_the_tls_records_and_over_http2_it_is_an_estimate() {
    let app = TestApp::spawn_with(|c| c.no_tls = false).await;
    let port = app.server.https_addr.expect("TLS listener").port();
    let cert = openssl::x509::X509::from_pem(
        &std::fs::read(app.data_dir.path().join("cert.pem")).unwrap(),
    )
    .unwrap();
    let connector = move |alpn: &[u8]| {
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        b.cert_store_mut().add_cert(cert.clone()).unwrap();
        // TLS 1.2: the handshake is over when `connect` returns (1.3 sends session tickets
        // after it), so every byte read afterwards belongs to the request.
        b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
        b.set_alpn_protos(alpn).unwrap();
        b.build()
    };

    // HTTP/1.1 over TLS: the server's count is every byte of the records the client read
    // after the handshake — more than the plain response they carry.
    let tls = connector(b"\x08http/1.1");
    let (raw, plain) = actix_web::rt::task::spawn_blocking(move || {
        let read = Arc::new(AtomicUsize::new(0));
        let tcp = CountingTcp {
            io: std::net::TcpStream::connect(("127.0.0.1", port)).unwrap(),
            read: read.clone(),
        };
        let mut tls = tls.connect("localhost", tcp).unwrap();
        let handshake = read.load(Ordering::Relaxed);
        tls.write_all(b"GET /api/poll?since=0 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = Vec::new();
        let _ = tls.read_to_end(&mut response);
        (read.load(Ordering::Relaxed) - handshake, response.len())
    })
    .await
    .unwrap();
    let ajax = stats(&app, "ajax").await;
    assert_eq!(num(&ajax, "bytes_written"), raw as u64, "{ajax}");
    assert!(
        raw > plain,
        "TLS records around the {plain} B response: {raw} B"
    );
    assert_eq!(num(&ajax, "bytes_estimated"), 0);

    // HTTP/2: one connection for everything, so the figure is estimated from the payload.
    let client = awc::Client::builder()
        .connector(awc::Connector::new().openssl(connector(b"\x02h2\x08http/1.1")))
        .finish();
    let mut res = client
        .get(format!("https://localhost:{port}/api/poll?since=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), awc::http::Version::HTTP_2);
    let body = res.body().await.unwrap();
    let after = stats(&app, "ajax").await;
    let estimated = num(&after, "bytes_estimated");
    assert_eq!(
        estimated,
        body.len() as u64 + 2 * 9,
        "the body plus a HEADERS and a DATA frame header: {after}"
    );
    assert_eq!(
        num(&after, "bytes_written"),
        raw as u64 + estimated,
        "{after}"
    );
    app.server.stop().await;
}
