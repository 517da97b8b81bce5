//! HTTP/2 as an attacker speaks it: frames written by hand over TLS (ALPN `h2`), so nothing on
//! the client side politely stays within what the server asks for.
//!
//! One TCP connection counts once against the socket caps, but on HTTP/2 it carries as many
//! streams as the client opens, and a header block may be sent in as many CONTINUATION frames
//! as it likes. The attack session found both unbounded: 200,000 streams on one connection in
//! 9 s took the server from 19 MB to 1.5 GB, and a header block that never ends was buffered up
//! to 16 MiB per connection (20 connections: 290 MB). The server now says how many streams a
//! connection may hold at once and how large a header block may be (its SETTINGS frame), and
//! enforces both.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use openssl::ssl::{SslConnector, SslMethod, SslStream, SslVerifyMode};

use crate::helpers::TestApp;

/// RFC 9113 §6.5.2.
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;
/// Frame types (RFC 9113 §6).
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
/// RST_STREAM's REFUSED_STREAM: "the stream was not processed", safe to retry.
const REFUSED_STREAM: u32 = 0x7;

async fn h2_app() -> TestApp {
    TestApp::spawn_with(|c| c.no_tls = false).await
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = u32::try_from(payload.len()).unwrap().to_be_bytes()[1..].to_vec();
    f.extend([kind, flags]);
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

/// An HPACK literal header field without indexing (new name): no dynamic table involved, so
/// the same block can open any number of streams.
fn literal(name: &str, value: &str) -> Vec<u8> {
    let mut b = vec![0x00, u8::try_from(name.len()).unwrap()];
    b.extend(name.as_bytes());
    b.push(u8::try_from(value.len()).unwrap());
    b.extend(value.as_bytes());
    b
}

/// `POST /api/join` announcing a body that never comes: a stream the server must keep open.
fn waiting_post() -> Vec<u8> {
    // 0x83 = :method POST, 0x87 = :scheme https (HPACK static table).
    let mut b = vec![0x83, 0x87];
    b.extend(literal(":path", "/api/join"));
    b.extend(literal(":authority", "localhost"));
    b.extend(literal("content-type", "application/json"));
    b.extend(literal("content-length", "100"));
    b
}

struct H2 {
    tls: SslStream<TcpStream>,
    buf: Vec<u8>,
}

/// One received frame.
#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

impl H2 {
    /// A TLS connection that negotiated `h2`, with the client preface and empty SETTINGS sent.
    fn connect(port: u16) -> H2 {
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        b.set_verify(SslVerifyMode::NONE);
        b.set_alpn_protos(b"\x02h2").unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut tls = b.build().connect("localhost", tcp).unwrap();
        assert_eq!(tls.ssl().selected_alpn_protocol(), Some(&b"h2"[..]));
        tls.get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        tls.write_all(&hello).unwrap();
        H2 {
            tls,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.tls.write_all(bytes)
    }

    /// The next frame within `wait`, `None` if none came, `Err` once the connection is gone.
    fn next(&mut self, wait: Duration) -> Result<Option<Frame>, ()> {
        let until = Instant::now() + wait;
        loop {
            if self.buf.len() >= 9 {
                let len = usize::from(self.buf[0]) << 16
                    | usize::from(self.buf[1]) << 8
                    | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let f = Frame {
                        kind: self.buf[3],
                        flags: self.buf[4],
                        stream: u32::from_be_bytes(self.buf[5..9].try_into().unwrap())
                            & 0x7fff_ffff,
                        payload: self.buf[9..9 + len].to_vec(),
                    };
                    self.buf.drain(..9 + len);
                    return Ok(Some(f));
                }
            }
            if Instant::now() >= until {
                return Ok(None);
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.tls.read(&mut chunk) {
                Ok(0) => return Err(()),
                Ok(n) => self.buf.extend(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Err(()),
            }
        }
    }

    /// The server's first SETTINGS frame, as (identifier, value) pairs; acknowledges it.
    fn server_settings(&mut self) -> Vec<(u16, u32)> {
        loop {
            let f = self
                .next(Duration::from_secs(5))
                .expect("connection open")
                .expect("the server's SETTINGS");
            if f.kind == SETTINGS && f.flags & ACK == 0 {
                self.send(&frame(SETTINGS, ACK, 0, &[])).unwrap();
                return f
                    .payload
                    .chunks(6)
                    .map(|s| {
                        (
                            u16::from_be_bytes([s[0], s[1]]),
                            u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
                        )
                    })
                    .collect();
            }
        }
    }
}

fn setting(settings: &[(u16, u32)], id: u16) -> Option<u32> {
    settings.iter().find(|(i, _)| *i == id).map(|(_, v)| *v)
}

fn https_port(app: &TestApp) -> u16 {
    app.server.https_addr.expect("TLS listener").port()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    actix_web::rt::task::spawn_blocking(f)
        .await
        .expect("blocking part finished")
}

#[actix_web::test]
async fn streams_beyond_what_one_connection_may_hold_are_refused_and_the_server_says_so() {
    let app = h2_app().await;
    let port = https_port(&app);
    let (max, refused, answered) = blocking(move || {
        let mut h2 = H2::connect(port);
        let settings = h2.server_settings();
        let max = setting(&settings, SETTINGS_MAX_CONCURRENT_STREAMS)
            .unwrap_or_else(|| panic!("no stream limit in the server's SETTINGS: {settings:?}"));
        // Every stream waits for a body that never comes, so none of them ends by itself.
        let extra = 40;
        let block = waiting_post();
        let mut all = Vec::new();
        for i in 0..max + extra {
            all.extend(frame(HEADERS, END_HEADERS, 1 + 2 * i, &block));
        }
        h2.send(&all).unwrap();
        let mut refused = 0;
        while let Ok(Some(f)) = h2.next(Duration::from_secs(2)) {
            if f.kind == RST_STREAM
                && u32::from_be_bytes(f.payload[..4].try_into().unwrap()) == REFUSED_STREAM
            {
                refused += 1;
            }
            assert_ne!(f.kind, GOAWAY, "a client within its limits is not cut off");
        }
        // The connection still serves: a stream that ends at once gets its answer.
        let mut get = vec![0x82, 0x87];
        get.extend(literal(":path", "/api/time"));
        get.extend(literal(":authority", "localhost"));
        let id = 1 + 2 * (max + extra);
        h2.send(&frame(RST_STREAM, 0, 1, &0x8u32.to_be_bytes()))
            .unwrap();
        h2.send(&frame(HEADERS, END_HEADERS | END_STREAM, id, &get))
            .unwrap();
        let mut answered = false;
        while let Ok(Some(f)) = h2.next(Duration::from_secs(5)) {
            if f.kind == HEADERS && f.stream == id {
                answered = true;
                break;
            }
        }
        (max, refused, answered)
    })
    .await;
    assert!(
        (16..=256).contains(&max),
        "a browser needs a few dozen streams, an attacker must not get thousands: {max}"
    );
    assert_eq!(refused, 40, "every stream beyond {max} is refused");
    assert!(
        answered,
        "once a stream ends, the connection has room again"
    );
    app.server.stop().await;
}

#[actix_web::test]
async fn a_header_block_that_never_ends_is_cut_off_at_the_announced_size() {
    let app = h2_app().await;
    let port = https_port(&app);
    let (limit, cut_off) = blocking(move || {
        let mut h2 = H2::connect(port);
        let settings = h2.server_settings();
        let limit = setting(&settings, SETTINGS_MAX_HEADER_LIST_SIZE).unwrap_or_else(|| {
            panic!("no header size limit in the server's SETTINGS: {settings:?}")
        });
        // HEADERS without END_HEADERS, then CONTINUATION frames of complete header fields
        // (100-byte values), 1 MiB in all: 32 times any limit a browser would need.
        let mut start = vec![0x82, 0x87];
        start.extend(literal(":path", "/api/time"));
        start.extend(literal(":authority", "localhost"));
        h2.send(&frame(HEADERS, 0, 1, &start)).unwrap();
        let field = literal("x-pad", &"a".repeat(100));
        let block = field.repeat(150);
        let mut sent = 0usize;
        while sent < 1 << 20 {
            if h2.send(&frame(CONTINUATION, 0, 1, &block)).is_err() {
                return (limit, true);
            }
            sent += block.len();
        }
        // The server has stopped listening to it by now: a GOAWAY, or the connection closed.
        loop {
            match h2.next(Duration::from_secs(5)) {
                Err(()) => return (limit, true),
                Ok(Some(f)) if f.kind == GOAWAY => return (limit, true),
                Ok(Some(_)) => {}
                Ok(None) => return (limit, false),
            }
        }
    })
    .await;
    assert!(
        limit <= 64 * 1024,
        "a header list of {limit} bytes is no request a browser sends"
    );
    assert!(
        cut_off,
        "the server was still reading a header block of 1 MiB 5 s later"
    );
    app.server.stop().await;
}
